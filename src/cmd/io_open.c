/*
 * io_open.c: opening images the ways qemu-io does: the file argument of
 * "qimg io", the "open", "close" and "reopen" commands, --image-opts and
 * "-o key=value" option strings, and the cache, aio and discard modes.
 *
 * Cache and aio modes are validated with qemu-io's messages and then have
 * no effect (qimg does plain pread/pwrite); aio=native still needs
 * cache.direct, as in qemu, so a script that qemu-io refuses is refused
 * here too.  When the format was probed and guessed raw on a writable
 * image, the session remembers it: qemu then refuses writes that would
 * make sector 0 look like another format (io_rw.c checks that).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/io.h"
#include "util/imgopts.h"
#include "util/opts.h"

int io_parse_cache(const char *mode, bool *direct)
{
	if (strcmp(mode, "none") == 0 || strcmp(mode, "off") == 0 ||
	    strcmp(mode, "directsync") == 0) {
		*direct = true;
		return 0;
	}
	if (strcmp(mode, "writeback") == 0 || strcmp(mode, "unsafe") == 0 ||
	    strcmp(mode, "writethrough") == 0) {
		*direct = false;
		return 0;
	}
	io_error("Invalid cache option: %s", mode);
	return -1;
}

int io_parse_aio(const char *mode, bool *native)
{
	if (strcmp(mode, "threads") == 0 || strcmp(mode, "io_uring") == 0) {
		*native = false;
		return 0;
	}
	if (strcmp(mode, "native") == 0) {
		*native = true;
		return 0;
	}
	io_error("Invalid aio option: %s", mode);
	return -1;
}

int io_parse_discard(const char *mode, bool *unmap)
{
	if (strcmp(mode, "off") == 0 || strcmp(mode, "ignore") == 0) {
		*unmap = false;
		return 0;
	}
	if (strcmp(mode, "on") == 0 || strcmp(mode, "unmap") == 0) {
		*unmap = true;
		return 0;
	}
	io_error("Invalid discard option: %s", mode);
	return -1;
}

/* What an option string asks for, once understood. */
struct io_target {
	const char *path;
	const char *fmt;
	const char *bad_key;	/* first option nobody takes */
	bool bad_is_file;	/* ... and it was a file.* option */
	/* encrypt.key-secret, encrypt.format; [d]: backing.{d}encrypt.* */
	struct img_open_opts keys[IMAGE_OPTS_MAX_BACKING + 1];
};

static bool io_opt_bool(const char *val, bool *out)
{
	return parse_bool(val, out) == 0;
}

/*
 * Fold the option list into req and t.  Options of the image node and of
 * its "file" child that qimg can honour or safely ignore are taken; the
 * first other one is remembered for qemu's "does not support" message.
 */
static int io_fold_opts(struct optlist *l, struct io_open_req *req,
			struct io_target *t)
{
	bool b;
	int d;

	image_opts_link(t->keys);
	for (size_t i = 0; i < l->n; i++) {
		const char *k = l->v[i].key, *v = l->v[i].val;

		if (strcmp(k, "driver") == 0)
			t->fmt = v;
		else if (strcmp(k, "file.filename") == 0)
			t->path = v;
		else if ((d = image_opts_key_depth(k, &b)) >= 0)
			*(b ? &t->keys[d].encrypt_format
			    : &t->keys[d].key_secret) = v;
		else if (strcmp(k, "file.driver") == 0 &&
			 strcmp(v, "file") == 0)
			continue;
		else if (strcmp(k, "read-only") == 0 && io_opt_bool(v, &b))
			req->read_only = b;
		else if (strcmp(k, "force-share") == 0 && io_opt_bool(v, &b))
			req->force_share = b;
		else if (strcmp(k, "cache.direct") == 0 && io_opt_bool(v, &b))
			req->direct = b;
		else if (strcmp(k, "cache.no-flush") == 0 &&
			 io_opt_bool(v, &b))
			continue;
		else if (strcmp(k, "discard") == 0) {
			if (io_parse_discard(v, &req->unmap) < 0)
				return -1;
		} else if (strcmp(k, "aio") == 0 || strcmp(k, "file.aio") == 0) {
			if (io_parse_aio(v, &req->native_aio) < 0)
				return -1;
		} else if (strcmp(k, "filename") == 0 && t->fmt &&
			   strcmp(t->fmt, "file") == 0) {
			t->path = v;
		} else if (!t->bad_key) {
			t->bad_key = k;
			t->bad_is_file = strncmp(k, "file.", 5) == 0;
		}
	}
	return 0;
}

static void io_open_error(const struct io_open_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void io_open_error(const struct io_open_req *req, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (req->filename && !req->image_opts)
		io_error("can't open device %s: %s", req->filename, msg);
	else
		io_error("can't open: %s", msg);
}

static void io_probe_warning(const char *path)
{
	cmd_probe_warning(path);
}

/* Open the resolved target; on success io->img is set. */
static int io_open_target(struct io_ctx *io, const struct io_open_req *req,
			  const struct io_target *t)
{
	const char *fmt = t->fmt;
	unsigned flags = req->read_only ? 0 : IMG_RDWR;
	struct qerr e = { 0 };
	struct img *img;

	if (fmt && strcmp(fmt, "file") == 0)
		fmt = "raw";
	if (fmt && !img_driver_find(fmt)) {
		io_open_error(req, "Unknown driver '%s'", fmt);
		return -1;
	}
	if (req->native_aio && !req->direct) {
		io_open_error(req, "aio=native was specified, but it requires "
			      "cache.direct=on, which was not specified.");
		return -1;
	}
	if (req->force_share && !req->read_only) {
		io_open_error(req, "force-share=on can only be used with "
			      "read-only images");
		return -1;
	}
	if (req->copy_on_read && req->read_only) {
		io_open_error(req, "Can't use copy-on-read on read-only device");
		return -1;
	}
	if (req->force_share)
		flags |= IMG_FORCE_SHARE;
	if (img_open_with(&img, t->path, fmt, flags, t->keys, &e) < 0) {
		io_open_error(req, "%s", qerr_msg(&e));
		return -1;
	}
	if (t->bad_key) {
		if (t->bad_is_file)
			io_open_error(req, "Block protocol 'file' doesn't "
				      "support the option '%s'",
				      t->bad_key + 5);
		else
			io_open_error(req, "Block format '%s' does not support "
				      "the option '%s'",
				      img->drv->name, t->bad_key);
		img_close(img);
		return -1;
	}
	io->img = img;
	io->probed_raw = !fmt && img->drv == &raw_driver;
	io->unmap = req->unmap;
	io->copy_on_read = req->copy_on_read;
	if (io->probed_raw && !req->read_only)
		io_probe_warning(t->path);
	return 0;
}

int io_open_image(struct io_ctx *io, const struct io_open_req *req)
{
	struct io_open_req r = *req;
	struct io_target t = { .fmt = req->fmt };
	struct optlist l = { 0 };
	struct qerr e = { 0 };
	int ret = 0;

	if (!req->image_opts)
		t.path = req->filename;
	if (req->image_opts || req->opts) {
		const char *text = req->image_opts ? req->filename : req->opts;

		if (optlist_parse(&l, text, &e) < 0) {
			io_open_error(req, "%s", qerr_msg(&e));
			optlist_free(&l);
			return -1;
		}
		ret = io_fold_opts(&l, &r, &t);
	}
	if (ret == 0 && !t.path) {
		io_open_error(req, "%s",
			      t.fmt ? "A block device must be specified for "
				      "\"file\""
				    : "Must specify either driver or file");
		ret = -1;
	}
	if (ret == 0)
		ret = io_open_target(io, &r, &t);
	optlist_free(&l);
	return ret;
}

/* Flush (if writable) and close the open image. */
static int io_close_image(struct io_ctx *io)
{
	int ret = 0;

	if (io->img && (io->img->flags & IMG_RDWR))
		ret = img_flush(io->img);
	img_close(io->img);
	io->img = NULL;
	io->probed_raw = false;
	return ret;
}

int io_close(struct io_ctx *io, int argc, char **argv)
{
	return io_close_image(io) < 0 ? -1 : 0;
}

int io_open(struct io_ctx *io, int argc, char **argv)
{
	struct io_open_req req = { .unmap = true };
	char *opts = NULL;
	int c, ret;

	opterr = 0;
	while ((c = getopt(argc, argv, ":snCro:kt:d:i:U")) != -1) {
		switch (c) {
		case 's':
			io_error("snapshot mode (-s) is not supported");
			free(opts);
			return -1;
		case 'n':
			req.direct = true;
			break;
		case 'C':
			req.copy_on_read = true;
			break;
		case 'r':
			req.read_only = true;
			break;
		case 'o': {
			/* Several -o accumulate, as in qemu. */
			size_t len = (opts ? strlen(opts) + 1 : 0) +
				     strlen(optarg) + 1;
			char *n = malloc(len);

			if (!n) {
				free(opts);
				return -1;
			}
			snprintf(n, len, "%s%s%s", opts ? opts : "",
				 opts ? "," : "", optarg);
			free(opts);
			opts = n;
			break;
		}
		case 'k':
			req.native_aio = true;
			break;
		case 't':
			ret = io_parse_cache(optarg, &req.direct);
			goto check;
		case 'd':
			ret = io_parse_discard(optarg, &req.unmap);
			goto check;
		case 'i':
			ret = io_parse_aio(optarg, &req.native_aio);
		check:
			if (ret < 0) {
				free(opts);
				return -1;
			}
			break;
		case 'U':
			req.force_share = true;
			break;
		default:
			io_bad_option(argv[0], optopt, c == ':');
			io_print_usage(io->cur);
			free(opts);
			return -1;
		}
	}
	if (io->img) {
		io_error("file open already, try 'help close'");
		free(opts);
		return -1;
	}
	if (optind == argc - 1) {
		req.filename = argv[optind];
	} else if (optind != argc) {
		io_print_usage(io->cur);
		free(opts);
		return -1;
	}
	req.opts = opts;
	ret = io_open_image(io, &req);
	free(opts);
	return ret;
}

/*
 * Options reopen may change: read-only (which may not be combined with -r
 * or -w, and, as in qemu, may not take writing away from the session:
 * only "reopen -r" does that), and the harmless ones.
 */
static int io_reopen_opts(struct io_ctx *io, struct optlist *l, int *rw)
{
	bool b;

	for (size_t i = 0; i < l->n; i++) {
		const char *k = l->v[i].key, *v = l->v[i].val;

		if (strcmp(k, "read-only") == 0 && io_opt_bool(v, &b)) {
			if (*rw != -1) {
				io_error("Cannot set both -r/-w and "
					 "'read-only'");
				return -1;
			}
			if (b && (io->img->flags & IMG_RDWR)) {
				io_error("Read-only block node '%s' cannot "
					 "support read-write users",
					 io->img->filename);
				return -1;
			}
			*rw = !b;
		} else if (strcmp(k, "discard") == 0) {
			if (io_parse_discard(v, &io->unmap) < 0)
				return -1;
		} else if ((strcmp(k, "cache.direct") == 0 ||
			    strcmp(k, "cache.no-flush") == 0) &&
			   io_opt_bool(v, &b)) {
			continue;
		} else {
			io_error("Cannot change the option '%s'", k);
			return -1;
		}
	}
	return 0;
}

/*
 * Reopen with another mode: close (which flushes every cache) and open
 * again, so two handles never hold one image; if the new mode cannot be
 * had, the old one is restored.
 */
static int io_reopen_mode(struct io_ctx *io, bool writable)
{
	unsigned flags = writable ? IMG_RDWR : 0;
	bool probed = io->probed_raw;
	struct qerr e = { 0 };
	char *path = strdup(io->img->filename);
	const char *fmt = io->img->drv->name;
	int ret;

	if (!path) {
		io_error("out of memory");
		return -1;
	}
	if (io_close_image(io) < 0)
		io_error("%s: flush failed", path);
	ret = img_open(&io->img, path, fmt, flags, &e);
	if (ret < 0) {
		io_error("%s", qerr_msg(&e));
		qerr_clear(&e);
		if (img_open(&io->img, path, fmt, flags ^ IMG_RDWR, &e) < 0)
			io_error("%s", qerr_msg(&e));
	}
	io->probed_raw = io->img && probed;
	free(path);
	return ret < 0 ? -1 : 0;
}

int io_reopen(struct io_ctx *io, int argc, char **argv)
{
	struct optlist l = { 0 };
	struct qerr e = { 0 };
	bool direct;
	int c, rw = -1, ret = 0;

	opterr = 0;
	while (ret == 0 && (c = getopt(argc, argv, ":c:o:rw")) != -1) {
		switch (c) {
		case 'c':
			ret = io_parse_cache(optarg, &direct);
			break;
		case 'o':
			if (optlist_parse(&l, optarg, &e) < 0) {
				io_error("%s", qerr_msg(&e));
				ret = -1;
			}
			break;
		case 'r':
		case 'w':
			if (rw != -1) {
				io_error("Only one -r/-w option may be given");
				ret = -1;
			}
			rw = c == 'w';
			break;
		default:
			io_bad_option(argv[0], optopt, c == ':');
			io_print_usage(io->cur);
			ret = -1;
		}
	}
	if (ret == 0 && optind != argc) {
		io_print_usage(io->cur);
		ret = -1;
	}
	if (ret == 0)
		ret = io_reopen_opts(io, &l, &rw);
	optlist_free(&l);
	if (ret == 0 && rw != -1 && rw != !!(io->img->flags & IMG_RDWR))
		ret = io_reopen_mode(io, rw);
	return ret;
}
