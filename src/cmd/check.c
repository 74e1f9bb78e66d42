/*
 * check.c: "qimg check": is an image consistent, and repair it if asked.
 *
 *   qimg check [--object objectdef] [--image-opts] [-q] [-f fmt]
 *              [--output=human|json] [-r leaks|all] [-T src_cache] [-U]
 *              [--data] filename
 *
 * The core (core/check.h) runs the format's passes and hands every
 * problem line to report_line() below as it is found: those go to stderr,
 * in qemu-img 7.2's words.  The summary goes to stdout, as text or JSON,
 * exactly as qemu-img prints it.  With -r, when anything was repaired, the
 * repair summary is printed and the image is checked again; the exit
 * status then describes the image after the repair: 0 consistent, 1 the
 * check could not complete, 2 corruptions, 3 only leaks, 63 the format
 * has no check.
 *
 * --data (qimg only) also reads every allocated cluster back; clusters
 * that cannot be read or decompressed count as corruptions and are listed
 * under "unreadable-clusters" in the JSON output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/check.h"
#include "core/img.h"
#include "util/json.h"
#include "util/msg.h"

static const char check_usage[] =
	"usage: qimg check [--object objectdef] [--image-opts] [-q] [-f fmt] "
	"[--output=human|json] [-r leaks|all] [-T src_cache] [-U] [--data] "
	"filename\n";

#define CHECK_OPT_DATA 0x1100

/* qemu-img's exit status for a check that cannot run on this format. */
#define EXIT_NO_CHECK 63

struct check_args_cli {
	const char *filename;
	struct cmd_image_args img;	/* -f, --image-opts, -U, --object */
	enum output_format output;
	bool quiet;
	unsigned fix;
	unsigned flags;
	bool data;
};

static void report_line(void *opaque, const struct check_problem *p)
{
	fflush(stdout);
	if (p->tool)
		msg_file_error(opaque, "%s", p->text);
	else
		fprintf(stderr, "%s\n", p->text);
}

static void print_human(const struct check_result *r)
{
	if (!(r->corruptions || r->leaks || r->check_errors)) {
		printf("No errors were found on the image.\n");
	} else {
		if (r->corruptions)
			printf("\n%llu errors were found on the image.\n"
			       "Data may be corrupted, or further writes to "
			       "the image may corrupt it.\n",
			       (unsigned long long)r->corruptions);
		if (r->leaks)
			printf("\n%llu leaked clusters were found on the "
			       "image.\n"
			       "This means waste of disk space, but no harm "
			       "to data.\n",
			       (unsigned long long)r->leaks);
		if (r->check_errors)
			printf("\n%llu internal errors have occurred during "
			       "the check.\n",
			       (unsigned long long)r->check_errors);
	}
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, "
		       "%0.2f%% compressed clusters\n",
		       (unsigned long long)r->allocated_clusters,
		       (unsigned long long)r->total_clusters,
		       r->allocated_clusters * 100.0 / r->total_clusters,
		       r->fragmented_clusters * 100.0 / r->allocated_clusters,
		       r->compressed_clusters * 100.0 / r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n",
		       (unsigned long long)r->image_end_offset);
}

static void json_opt(struct json *j, const char *key, uint64_t v)
{
	if (v)
		json_uint(j, key, v);
}

static void json_bad(struct json *j, const struct check_result *r)
{
	static const char *const why[] = {
		[CHK_DATA_READ] = "read error",
		[CHK_DATA_DECOMPRESS] = "bad compressed data",
		[CHK_DATA_SIZE] = "compressed data too long",
	};

	json_arr_begin(j, "unreadable-clusters");
	for (size_t i = 0; i < r->nbad; i++) {
		const struct check_bad_data *b = &r->bad[i];

		json_obj_begin(j, NULL);
		json_uint(j, "guest-offset", b->guest_offset);
		json_uint(j, "host-offset", b->host_offset);
		if (b->snapshot)
			json_str(j, "snapshot", b->snapshot);
		json_str(j, "reason", why[b->code] ? why[b->code] : "?");
		json_obj_end(j);
	}
	json_arr_end(j);
	json_opt(j, "unreadable-clusters-not-listed", r->bad_dropped);
}

/* qemu's key order (its QAPI object printed in hash order). */
static void print_json(const struct check_result *r, const char *filename,
		       const char *format)
{
	struct json j;

	json_init(&j, stdout, false);
	json_obj_begin(&j, NULL);
	json_opt(&j, "image-end-offset", r->image_end_offset);
	json_opt(&j, "compressed-clusters", r->compressed_clusters);
	json_opt(&j, "total-clusters", r->total_clusters);
	json_opt(&j, "corruptions", r->corruptions);
	json_opt(&j, "corruptions-fixed", r->corruptions_fixed);
	json_uint(&j, "check-errors", r->check_errors);
	json_opt(&j, "leaks", r->leaks);
	json_opt(&j, "leaks-fixed", r->leaks_fixed);
	json_opt(&j, "allocated-clusters", r->allocated_clusters);
	json_str(&j, "filename", filename);
	json_str(&j, "format", format);
	json_opt(&j, "fragmented-clusters", r->fragmented_clusters);
	if (r->data_checked)
		json_bad(&j, r);
	json_obj_end(&j);
	json_finish(&j);
}

/* Run the check, and after a repair the second one qemu-img runs. */
static int run_checks(const struct check_args_cli *a, struct img *img,
		      struct check_result *r)
{
	struct check_opts o = { .fix = a->fix, .data = a->data,
				.report = report_line,
				.opaque = (void *)a->filename };
	uint64_t lf, cf;
	int ret;

	ret = check_image(img, &o, r);
	if (ret < 0 || !(r->corruptions_fixed || r->leaks_fixed))
		return ret;
	if (a->output == OUTPUT_HUMAN && !a->quiet)
		printf("The following inconsistencies were found and "
		       "repaired:\n\n    %llu leaked clusters\n    %llu "
		       "corruptions\n\nDouble checking the fixed image now...\n",
		       (unsigned long long)r->leaks_fixed,
		       (unsigned long long)r->corruptions_fixed);
	lf = r->leaks_fixed;
	cf = r->corruptions_fixed;
	check_result_free(r);
	o.fix = 0;
	ret = check_image(img, &o, r);
	r->leaks_fixed = lf;
	r->corruptions_fixed = cf;
	return ret;
}

static int open_image(const struct check_args_cli *a, struct img **img)
{
	return cmd_open_image(a->filename, a->img.fmt, a->img.image_opts, a->flags,
			      img);
}

static int check_run(const struct check_args_cli *a)
{
	struct check_result r = { 0 };
	struct img *img = NULL;
	int ret, status;

	if (open_image(a, &img) < 0)
		return 1;
	ret = run_checks(a, img, &r);
	if (ret == -ENOTSUP) {
		msg_file_error(a->filename,
			       "This image format does not support checks");
		status = EXIT_NO_CHECK;
		goto out;
	}
	if (ret == 0 && !a->quiet) {
		if (a->output == OUTPUT_JSON)
			print_json(&r, a->filename, img->drv->name);
		else
			print_human(&r);
	}
	if (ret < 0 || r.check_errors) {
		if (ret < 0)
			msg_file_error(a->filename, "Check failed: %s",
				       strerror(-ret));
		else
			msg_file_error(a->filename, "Check failed");
		status = 1;
	} else {
		status = r.corruptions ? 2 : r.leaks ? 3 : 0;
	}
out:
	check_result_free(&r);
	img_close(img);
	return status;
}

/* -T: qemu-img's cache modes (accepted; qimg has no cache to set). */
static bool cache_mode_ok(const char *mode)
{
	static const char *const modes[] = { "none", "writeback", "unsafe",
					     "directsync", "writethrough",
					     NULL };

	for (int i = 0; modes[i]; i++)
		if (strcmp(mode, modes[i]) == 0)
			return true;
	return false;
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, CMD_OPT_OUTPUT },
		{ "object", required_argument, NULL, CMD_OPT_OBJECT },
		{ "image-opts", no_argument, NULL, CMD_OPT_IMAGE_OPTS },
		{ "force-share", no_argument, NULL, 'U' },
		{ "repair", required_argument, NULL, 'r' },
		{ "format", required_argument, NULL, 'f' },
		{ "data", no_argument, NULL, CHECK_OPT_DATA },
		{ NULL, 0, NULL, 0 },
	};
	struct check_args_cli a = { .output = OUTPUT_HUMAN,
				    .flags = IMG_CHECK };
	const char *output = NULL;
	int c;

	while ((c = cmd_getopt_image(argc, argv, ":hf:r:T:qU", longopts,
				     &a.img)) != -1) {
		switch (c) {
		case 'h':
			return cmd_help(check_usage);
		case CMD_OPT_DONE:
			return 0;
		case 'r':
			if (strcmp(optarg, "leaks") == 0)
				a.fix = CHECK_FIX_LEAKS;
			else if (strcmp(optarg, "all") == 0)
				a.fix = CHECK_FIX_LEAKS | CHECK_FIX_ERRORS;
			else
				return cmd_usage_error(
					"Unknown option value for -r (expecting "
					"'leaks' or 'all'): %s", optarg);
			break;
		case 'T':
			if (!cache_mode_ok(optarg)) {
				msg_error("Invalid source cache option: %s",
					  optarg);
				return 1;
			}
			break;
		case 'q':
			a.quiet = true;
			break;
		case CMD_OPT_OUTPUT:
			output = optarg;
			break;
		case CHECK_OPT_DATA:
			a.data = true;
			break;
		default:
			return 1;
		}
	}
	a.filename = cmd_image_operand(argc, argv, output, &a.output, &a.img);
	if (!a.filename)
		return 1;
	if (a.fix)
		a.flags |= IMG_RDWR;
	if (a.img.force_share)
		a.flags |= IMG_FORCE_SHARE;
	return check_run(&a);
}
