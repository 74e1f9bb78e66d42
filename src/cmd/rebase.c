/*
 * rebase.c: "qimg rebase", qemu-img 7.2's rebase.
 *
 *   qimg rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt]
 *               [-t cache] [-T src_cache] [-p] [-u] -b backing_file
 *               [-F backing_fmt] filename
 *
 * Safe mode (the default) opens the image with its old chain and the new
 * backing file with its own chain (reusing the layer when the new backing
 * file is already in the old chain), has the core copy in whatever the
 * switch would change, flushes, and only then rewrites the header.  -u
 * opens the image alone and rewrites the header only.  A relative -b is
 * resolved against the image's directory and stored as given.
 *
 * Differences from qemu-img (the man page says so too):
 *  - "-b X" without -F, and images whose format has no backing file, are
 *    refused before anything is copied (qemu copies, then refuses);
 *  - a new backing chain that contains the image itself is refused (qemu
 *    fails on its own image lock; with -u it writes the loop);
 *  - cache modes are checked and otherwise ignored; --object secrets are
 *    checked, but encrypted images cannot be written yet;
 *  - -F names qimg does not know (vmdk, ...) are invalid format names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cmd.h"
#include "core/img.h"
#include "core/rebase.h"
#include "util/msg.h"
#include "util/progress.h"

static const char rebase_usage[] =
	"usage: qimg rebase [--object objectdef] [--image-opts] [-U] [-q] "
	"[-f fmt]\n"
	"                   [-t cache] [-T src_cache] [-p] [-u] "
	"-b backing_file\n"
	"                   [-F backing_fmt] filename\n";

struct rebase_args {
	struct cmd_image_args img;	/* -f, --image-opts, -U, --object */
	const char *filename;
	const char *backing;	/* -b, NULL when not given */
	const char *backing_fmt;
	const char *cache, *src_cache;
	bool unsafe, progress, quiet;
};

struct rebase_ctx {
	const struct rebase_args *a;
	struct img *img;
	struct img *new_backing;	/* owned unless reused from the chain */
	bool reused;
	struct progress prog;
};

static bool cache_mode_ok(const char *s)
{
	static const char *const modes[] = { "none", "off", "writeback",
					     "writethrough", "directsync",
					     "unsafe", NULL };

	for (int i = 0; modes[i]; i++)
		if (strcmp(s, modes[i]) == 0)
			return true;
	return false;
}

/* "Could not change the backing file to 'X': why" (qemu's wording). */
static int change_failed(const struct rebase_args *a, const char *why)
{
	msg_error("Could not change the backing file to '%s': %s",
		  a->backing ? a->backing : "(null)", why);
	return -1;
}

/* Is the file at path the same file as img (device and inode)? */
static bool same_file(const char *path, const struct img *img)
{
	struct stat s1, s2;

	return stat(path, &s1) == 0 && fstat(img->file->fd, &s2) == 0 &&
	       s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino;
}

/* The layer of the old chain that is path (opened as fmt), or NULL. */
static struct img *find_in_chain(struct img *img, const char *path,
				 const char *fmt)
{
	for (struct img *l = img->backing; l; l = l->backing)
		if (same_file(path, l) && strcmp(l->drv->name, fmt) == 0)
			return l;
	return NULL;
}

static int open_new_backing(struct rebase_ctx *x)
{
	const struct rebase_args *a = x->a;
	unsigned flags = a->img.force_share ? IMG_FORCE_SHARE : 0;
	struct qerr e = { 0 };
	char *path = img_backing_path(x->img->filename, a->backing);
	int ret = -1;

	if (!path) {
		msg_error("out of memory");
		return -1;
	}
	x->new_backing = find_in_chain(x->img, path, a->backing_fmt);
	if (x->new_backing) {
		x->reused = true;
		ret = 0;
		goto out;
	}
	if (img_open(&x->new_backing, path, a->backing_fmt, flags, &e) < 0) {
		msg_error("Could not open new backing file '%s': %s",
			  a->backing, qerr_msg(&e));
		goto out;
	}
	for (struct img *l = x->new_backing; l; l = l->backing) {
		if (same_file(l->filename, x->img)) {
			msg_error("Could not open new backing file '%s': its "
				  "backing chain would include '%s' itself",
				  a->backing, a->filename);
			goto out;
		}
	}
	ret = 0;
out:
	free(path);
	return ret;
}

static void report_progress(void *opaque, uint64_t done, uint64_t total)
{
	progress_update(opaque, done, total);
}

/* Everything after the image is open; returns 0 or -1 (printed). */
static int rebase_image(struct rebase_ctx *x)
{
	const struct rebase_args *a = x->a;
	const char *name = a->backing && *a->backing ? a->backing : NULL;
	struct img *img = x->img;
	int ret;

	if (a->backing_fmt && !img_driver_find(a->backing_fmt)) {
		msg_error("Invalid format name: '%s'", a->backing_fmt);
		return -1;
	}
	if (name && !a->backing_fmt)
		return change_failed(a, "backing format must be specified");
	if (img->drv != &qcow2_driver)
		return change_failed(a, strerror(ENOTSUP));
	if (a->unsafe && name) {
		char *path = img_backing_path(img->filename, name);
		bool self = path && same_file(path, img);

		free(path);
		if (self)
			return change_failed(a, "it is the image itself");
	}
	if (!a->unsafe) {
		struct rebase_params p = { .img = img,
					   .progress = report_progress,
					   .opaque = &x->prog };

		if (name && open_new_backing(x) < 0)
			return -1;
		p.new_backing = x->new_backing;
		ret = rebase_copy(&p);
		if (ret == 0)
			ret = img_flush(img);
		if (ret < 0) {
			cmd_report(a->filename, &img->err);
			return -1;
		}
	}
	if (img_set_backing(img, name, name ? a->backing_fmt : NULL) < 0)
		return change_failed(a, qerr_msg(&img->err));
	return 0;
}

static int rebase_run(const struct rebase_args *a)
{
	struct rebase_ctx x = { .a = a };
	unsigned flags = IMG_RDWR | (a->unsafe ? IMG_NO_BACKING : 0);
	int ret = -1;

	progress_init(&x.prog, a->progress ? PROGRESS_HUMAN : PROGRESS_NONE,
		      2.0);
	if (a->cache && !cache_mode_ok(a->cache)) {
		msg_error("Invalid cache option: %s", a->cache);
		goto out;
	}
	if (a->src_cache && !cache_mode_ok(a->src_cache)) {
		msg_error("Invalid source cache option: %s", a->src_cache);
		goto out;
	}
	if (cmd_open_image(a->filename, a->img.fmt, a->img.image_opts, flags,
			   &x.img) < 0)
		goto out;
	ret = rebase_image(&x);
out:
	progress_end(&x.prog, ret == 0);
	if (!x.reused)
		img_close(x.new_backing);
	img_close(x.img);
	return ret == 0 ? 0 : 1;
}

int cmd_rebase(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, CMD_OPT_OBJECT },
		{ "image-opts", no_argument, NULL, CMD_OPT_IMAGE_OPTS },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	struct rebase_args a = { 0 };
	int c;

	while ((c = cmd_getopt_image(argc, argv, ":hf:F:b:upt:T:qU", longopts,
				     &a.img)) != -1) {
		switch (c) {
		case 'h':
			return cmd_help(rebase_usage);
		case CMD_OPT_DONE:
			return 0;
		case 'F':
			a.backing_fmt = optarg;
			break;
		case 'b':
			a.backing = optarg;
			break;
		case 'u':
			a.unsafe = true;
			break;
		case 'p':
			a.progress = true;
			break;
		case 't':
			a.cache = optarg;
			break;
		case 'T':
			a.src_cache = optarg;
			break;
		case 'q':
			a.quiet = true;
			break;
		default:
			return 1;
		}
	}
	if (a.quiet)
		a.progress = false;
	if (optind != argc - 1)
		return cmd_usage_error("Expecting one image file name");
	if (!a.unsafe && !a.backing)
		return cmd_usage_error("Must specify backing file (-b) or use "
				       "unsafe mode (-u)");
	a.filename = argv[optind];
	return rebase_run(&a);
}
