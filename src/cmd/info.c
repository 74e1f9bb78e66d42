/*
 * info.c: "qimg info": what an image is, as qemu-img 7.2's info shows it.
 *
 *   qimg info [-f fmt] [--output=human|json] [--backing-chain] [-U]
 *             [--image-opts] [--object objectdef] filename
 *
 * The image is opened for metadata only (IMG_NO_IO: no data file, no
 * secret) and without its backing chain; --backing-chain then opens the
 * chain (loops and depth are refused by img_open_backing) and everything
 * is collected before anything is printed, so a failure prints only the
 * error.  Human output is qemu-img's line for line; JSON has qemu's keys,
 * nesting and types, written in the order qemu 7.2 prints them (its
 * dictionaries iterate in hash order).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/img.h"
#include "util/json.h"
#include "util/msg.h"
#include "util/imgopts.h"
#include "util/opts.h"
#include "util/render.h"
#include "util/size.h"

static const char info_usage[] =
	"usage: qimg info [-f fmt] [--output=human|json] [--backing-chain] "
	"[-U] [--image-opts] [--object objectdef] filename\n";

struct info_args {
	struct cmd_image_args img;	/* -f, --image-opts, -U, --object */
	const char *filename;
	enum output_format output;
	bool chain;
	unsigned flags;
};

/*
 * The name qemu shows for an --image-opts image carrying options beyond
 * the file name: its "json:{...}" pseudo file name.
 */
static char *json_filename(const struct image_opts *io, const char *fmt)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fputs("json:{\"encrypt.key-secret\": ", f);
	json_write_string(f, io->keys[0].key_secret);
	fputs(", \"driver\": ", f);
	json_write_string(f, fmt);
	fputs(", \"file\": {\"driver\": \"file\", \"filename\": ", f);
	json_write_string(f, io->filename);
	fputs("}}", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void print_human(const struct img_info *in)
{
	char vsize[32], dsize[32] = "unavailable";

	size_human(vsize, sizeof(vsize), in->virtual_size);
	if (in->has_actual_size)
		size_human(dsize, sizeof(dsize), in->actual_size);
	printf("image: %s\nfile format: %s\nvirtual size: %s (%" PRIu64
	       " bytes)\ndisk size: %s\n",
	       in->filename, in->format, vsize, in->virtual_size, dsize);
	if (in->encrypted)
		printf("encrypted: yes\n");
	if (in->cluster_size)
		printf("cluster_size: %u\n", in->cluster_size);
	if (in->dirty)
		printf("cleanly shut down: no\n");
	if (in->backing_file) {
		printf("backing file: %s", in->backing_file);
		if (!in->full_backing_file)
			printf(" (cannot determine actual path)");
		else if (strcmp(in->backing_file, in->full_backing_file) != 0)
			printf(" (actual path: %s)", in->full_backing_file);
		printf("\n");
		if (in->backing_fmt)
			printf("backing file format: %s\n", in->backing_fmt);
	}
	if (in->nb_snapshots)
		render_snapshots(stdout, in->snapshots, in->nb_snapshots);
	if (in->format_specific) {
		printf("Format specific information:\n");
		render_kv(stdout, in->format_specific, 1);
	}
}

/* One ImageInfo object; keys in qemu 7.2's (hash) order. */
static void print_json_one(struct json *j, const struct img_info *in)
{
	json_obj_begin(j, NULL);
	if (in->backing_file && in->backing_fmt)
		json_str(j, "backing-filename-format", in->backing_fmt);
	if (in->nb_snapshots)
		render_snapshots_json(j, "snapshots", in->snapshots,
				      in->nb_snapshots);
	json_int(j, "virtual-size", (int64_t)in->virtual_size);
	json_str(j, "filename", in->filename);
	if (in->cluster_size)
		json_int(j, "cluster-size", in->cluster_size);
	json_str(j, "format", in->format);
	if (in->has_actual_size)
		json_int(j, "actual-size", (int64_t)in->actual_size);
	if (in->format_specific) {
		json_obj_begin(j, "format-specific");
		json_str(j, "type", in->format);
		json_kv(j, "data", in->format_specific);
		json_obj_end(j);
	}
	if (in->backing_file && in->full_backing_file)
		json_str(j, "full-backing-filename", in->full_backing_file);
	if (in->encrypted)
		json_bool(j, "encrypted", true);
	if (in->backing_file)
		json_str(j, "backing-filename", in->backing_file);
	json_bool(j, "dirty-flag", in->dirty);
	json_obj_end(j);
}

static void print_infos(const struct info_args *a, const struct img_info *v,
			size_t n)
{
	struct json j;

	if (a->output == OUTPUT_HUMAN) {
		for (size_t i = 0; i < n; i++) {
			if (i)
				printf("\n");
			print_human(&v[i]);
		}
		return;
	}
	json_init(&j, stdout, false);
	if (a->chain)
		json_arr_begin(&j, NULL);
	for (size_t i = 0; i < n; i++)
		print_json_one(&j, &v[i]);
	if (a->chain)
		json_arr_end(&j);
	json_finish(&j);
}

/* Collect the info of img and, with --backing-chain, of its chain. */
static int collect(struct img *img, bool chain, const char *shown,
		   struct img_info **out, size_t *count)
{
	size_t n = 0, cap = chain ? IMG_MAX_CHAIN : 1;
	struct img_info *v = calloc(cap, sizeof(*v));

	*out = v;
	*count = 0;
	if (!v) {
		msg_file_error(img->filename, "out of memory");
		return -1;
	}
	for (struct img *cur = img; cur && n < cap; cur = cur->backing) {
		*count = ++n;
		if (img_info_get(cur, &v[n - 1]) < 0) {
			cmd_report(cur == img ? shown : cur->filename,
				   &cur->err);
			return -1;
		}
	}
	if (strcmp(shown, v[0].filename) != 0) {
		free(v[0].filename);
		v[0].filename = strdup(shown);
		if (!v[0].filename) {
			msg_file_error(shown, "out of memory");
			return -1;
		}
	}
	return 0;
}

static int info_run(const struct info_args *a)
{
	const char *path = a->filename, *fmt = a->img.fmt, *shown = a->filename;
	struct img_open_opts chain[IMAGE_OPTS_MAX_BACKING + 1], *oo = NULL;
	struct image_opts io = { 0 };
	struct img_info *infos = NULL;
	struct qerr e = { 0 };
	struct img *img = NULL;
	char *json_name = NULL;
	size_t n = 0;
	int status = 1;

	if (a->img.image_opts) {
		if (image_opts_parse(a->filename, &io, &e) < 0) {
			msg_error("Could not open '%s': %s", a->filename,
				  qerr_msg(&e));
			goto out;
		}
		path = io.filename;
		fmt = io.driver;
		oo = image_opts_open_opts(&io, chain);
	}
	if (img_open_with(&img, path, fmt, a->flags, oo, &e) < 0) {
		cmd_report(path, &e);
		goto out;
	}
	if (a->img.image_opts) {
		if (image_opts_check(&io, img->drv->name, &e) < 0) {
			msg_error("Could not open '%s': %s", a->filename,
				  qerr_msg(&e));
			goto out;
		}
		if (io.keys[0].key_secret) {
			json_name = json_filename(&io, img->drv->name);
			if (!json_name) {
				msg_file_error(a->filename, "out of memory");
				goto out;
			}
			shown = json_name;
		} else {
			shown = path;
		}
	}
	if (a->chain && img_open_backing(img) < 0) {
		cmd_report(shown, &img->err);
		goto out;
	}
	if (collect(img, a->chain, shown, &infos, &n) == 0) {
		print_infos(a, infos, n);
		status = 0;
	}
out:
	for (size_t i = 0; i < n; i++)
		img_info_free(&infos[i]);
	free(infos);
	free(json_name);
	img_close(img);
	image_opts_free(&io);
	return status;
}

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, CMD_OPT_OUTPUT },
		{ "object", required_argument, NULL, CMD_OPT_OBJECT },
		{ "image-opts", no_argument, NULL, CMD_OPT_IMAGE_OPTS },
		{ "backing-chain", no_argument, NULL, CMD_OPT_BACKING_CHAIN },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	struct info_args a = { .output = OUTPUT_HUMAN,
			       .flags = IMG_NO_BACKING | IMG_NO_IO };
	const char *output = NULL;
	int c;

	while ((c = cmd_getopt_image(argc, argv, ":hf:U", longopts,
				     &a.img)) != -1) {
		switch (c) {
		case 'h':
			return cmd_help(info_usage);
		case CMD_OPT_DONE:
			return 0;
		case CMD_OPT_OUTPUT:
			output = optarg;	/* checked after the file name */
			break;
		case CMD_OPT_BACKING_CHAIN:
			a.chain = true;
			break;
		default:
			return 1;
		}
	}
	a.filename = cmd_image_operand(argc, argv, output, &a.output, &a.img);
	if (!a.filename)
		return 1;
	if (a.img.force_share)
		a.flags |= IMG_FORCE_SHARE;
	return info_run(&a);
}
