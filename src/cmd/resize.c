/*
 * resize.c: "qimg resize", qemu-img 7.2's resize.
 *
 *   qimg resize [--object objectdef] [--image-opts] [-f fmt]
 *               [--preallocation=prealloc] [-q] [--shrink]
 *               filename [+ | -]size
 *
 * As in qemu-img, the size is taken off the end of the command line before
 * the options are parsed, so "-32M" right after the file name is a size,
 * not an option.  A leading '+' or '-' makes it relative to the current
 * virtual size (the arithmetic wraps at 2^64 as qemu's does, so absurd
 * relative sizes fail the same way).  The checks then run in qemu's order:
 * size syntax, open, positive result, preallocation only for growing,
 * --shrink for any reduction; the format's own rules (a qcow2 size is a
 * multiple of 512, ...) come from the core.
 *
 * Differences from qemu-img: --object secrets are checked but encrypted
 * images cannot be written yet; errors the core reports name the image
 * ("qimg: FILE: message").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/img.h"
#include "core/resize.h"
#include "util/msg.h"
#include "util/size.h"

static const char resize_usage[] =
	"usage: qimg resize [--object objectdef] [--image-opts] [-f fmt]\n"
	"                   [--preallocation=prealloc] [-q] [--shrink] "
	"filename [+ | -]size\n";

#define OPT_PREALLOC 0x2000
#define OPT_SHRINK 0x2001

struct resize_args {
	struct cmd_image_args img;	/* -f, --image-opts, --object */
	const char *filename;
	const char *size_arg;
	enum img_prealloc prealloc;
	bool quiet;
	bool shrink;
};

static int parse_prealloc(const char *s, enum img_prealloc *out)
{
	static const char *const names[] = { "off", "metadata", "falloc",
					     "full" };
	static const enum img_prealloc modes[] = {
		IMG_PREALLOC_OFF, IMG_PREALLOC_METADATA, IMG_PREALLOC_FALLOC,
		IMG_PREALLOC_FULL
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = modes[i];
			return 0;
		}
	}
	msg_error("Invalid preallocation mode '%s'", s);
	return -1;
}

/* The size argument: *rel is -1, 0 or +1; *n the number after the sign. */
static int parse_size_arg(const char *arg, int *rel, uint64_t *n)
{
	const char *s = arg;
	int ret;

	*rel = 0;
	if (*s == '+' || *s == '-')
		*rel = *s++ == '+' ? 1 : -1;
	ret = size_parse_u64(s, n);
	if (ret == -ERANGE) {
		msg_error("Value '%s' is out of range for parameter 'size'", s);
		return -1;
	}
	if (ret < 0 || *s == '+') {
		msg_error("Parameter 'size' expects a non-negative number "
			  "below 2^64\n"
			  "Optional suffix k, M, G, T, P or E means kilo-, "
			  "mega-, giga-, tera-, peta-\n"
			  "and exabytes, respectively.");
		return -1;
	}
	return 0;
}

/* qemu-img's checks between the open and the resize itself. */
static int check_new_size(const struct resize_args *a, uint64_t cur,
			  int64_t total)
{
	if (total <= 0) {
		msg_error("New image size must be positive");
		return -1;
	}
	if ((uint64_t)total <= cur && a->prealloc != IMG_PREALLOC_OFF) {
		msg_error("Preallocation can only be used for growing images");
		return -1;
	}
	if ((uint64_t)total < cur && !a->shrink) {
		msg_error("Use the --shrink option to perform a shrink "
			  "operation.");
		msg_warn("Shrinking an image will delete all data beyond the "
			 "shrunken image's end. Before performing such an "
			 "operation, make sure there is no important data "
			 "there.");
		return -1;
	}
	return 0;
}

static int resize_run(const struct resize_args *a)
{
	struct img *img = NULL;
	uint64_t n, cur;
	int64_t total;
	int rel, status = 1;

	if (parse_size_arg(a->size_arg, &rel, &n) < 0)
		return 1;
	if (cmd_open_image(a->filename, a->img.fmt, a->img.image_opts, IMG_RDWR,
			   &img) < 0)
		return 1;
	cur = img->size;
	/* Two's-complement wrap, as qemu's int64 arithmetic does. */
	total = (int64_t)(rel == 0 ? n : rel > 0 ? cur + n : cur - n);
	if (check_new_size(a, cur, total) < 0)
		goto out;
	if (img_resize(img, (uint64_t)total, a->prealloc) < 0 ||
	    img_flush(img) < 0) {
		cmd_report(a->filename, &img->err);
		goto out;
	}
	status = 0;
out:
	img_close(img);
	if (status == 0 && !a->quiet)
		printf("Image resized.\n");
	return status;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

int cmd_resize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, CMD_OPT_OBJECT },
		{ "image-opts", no_argument, NULL, CMD_OPT_IMAGE_OPTS },
		{ "preallocation", required_argument, NULL, OPT_PREALLOC },
		{ "shrink", no_argument, NULL, OPT_SHRINK },
		{ NULL, 0, NULL, 0 },
	};
	struct resize_args a = { .prealloc = IMG_PREALLOC_OFF };
	int c;

	if (wants_help(argc, argv))
		return cmd_help(resize_usage);
	if (argc < 3)
		return cmd_usage_error("Not enough arguments");
	/* The size goes first, so that "-32M" is not taken for an option. */
	a.size_arg = argv[--argc];
	while ((c = cmd_getopt_image(argc, argv, ":hf:q", longopts,
				     &a.img)) != -1) {
		switch (c) {
		case 'h':
			return cmd_help(resize_usage);
		case CMD_OPT_DONE:
			return 0;
		case 'q':
			a.quiet = true;
			break;
		case OPT_PREALLOC:
			if (parse_prealloc(optarg, &a.prealloc) < 0)
				return 1;
			break;
		case OPT_SHRINK:
			a.shrink = true;
			break;
		default:
			return 1;
		}
	}
	if (optind != argc - 1)
		return cmd_usage_error("Expecting image file name and size");
	a.filename = argv[optind];
	return resize_run(&a);
}
