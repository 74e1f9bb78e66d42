/*
 * convert_open.c: the second half of "qimg convert": open the sources,
 * check and create the target, run the core's copy and report, in
 * qemu-img 7.2's order so the same mistake gives the same message.
 *
 * Sources are opened read-only with their backing chains; each worker
 * thread gets its own handles through open_src(), so the formats need not
 * be thread-safe.  The target is created (unless -n) before any source
 * data is read, as qemu-img does, and flushed once at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cmd.h"
#include "cmd/convert_int.h"
#include "core/compress_pipeline.h"
#include "core/convert.h"
#include "core/qcow2.h"
#include "util/imgopts.h"
#include "util/msg.h"
#include "util/progress.h"

struct spec {
	const char *text;	/* as given */
	char *file;
	char *fmt;		/* NULL: probe */
	bool has_io;		/* given as --image-opts */
	struct image_opts io;
	struct img_open_opts chain[IMAGE_OPTS_MAX_BACKING + 1];
};

struct ctx {
	struct convert_args *a;
	struct spec *specs;	/* one per source */
	struct img **srcs;
	struct spec tspec;
	struct img *target;
	uint64_t total;
	bool target_has_backing;
	struct progress prog;
};

/* A source or target named by an option string (--image-opts). */
static int make_spec(const char *name, const char *fmt, bool opts,
		     struct spec *s)
{
	struct qerr e = { 0 };

	s->text = name;
	if (opts) {
		s->has_io = true;
		if (image_opts_parse(name, &s->io, &e) < 0) {
			msg_error("Could not open '%s': %s", name, qerr_msg(&e));
			return -1;
		}
		image_opts_open_opts(&s->io, s->chain);
		s->file = strdup(s->io.filename);
		s->fmt = s->io.driver ? strdup(s->io.driver) : NULL;
		return s->file && (!s->io.driver || s->fmt) ? 0 : -1;
	}
	s->file = strdup(name);
	s->fmt = fmt ? strdup(fmt) : NULL;
	return s->file && (!fmt || s->fmt) ? 0 : -1;
}

/* The options an opened image's format does not take (--image-opts). */
static int check_spec(const struct spec *s, const struct img *img)
{
	struct qerr e = { 0 };

	if (!s->has_io || image_opts_check(&s->io, img->drv->name, &e) == 0)
		return 0;
	msg_error("Could not open '%s': %s", s->text, qerr_msg(&e));
	return -1;
}

/*
 * The keys an image named by s (and its backing chain) is opened with
 * (--image-opts), in *o; o->backing points into s.
 */
static void spec_open_opts(const struct spec *s, struct img_open_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (s->has_io)
		*o = s->chain[0];	/* made once: workers call this too */
}

static void spec_free(struct spec *s)
{
	free(s->file);
	free(s->fmt);
	if (s->has_io)
		image_opts_free(&s->io);
}

const struct opt_desc convert_snapshot_opts[] = {
	{ .name = "snapshot.id", .type = OPT_STR },
	{ .name = "snapshot.name", .type = OPT_STR },
	{ .name = NULL },
};

static int load_snapshot(const char *p, struct img *img);

/* Open source i (with -l, its snapshot); the workers' handles too. */
static int open_src(void *opaque, size_t i, struct img **out, struct qerr *e)
{
	struct ctx *x = opaque;
	unsigned flags = x->a->force_share ? IMG_FORCE_SHARE : 0;
	struct img_open_opts oo;
	int ret;

	/* Workers' handles share the first handle's unlocked keys. */
	spec_open_opts(&x->specs[i], &oo);
	oo.keys_from = x->srcs[i];
	ret = img_open_with(out, x->specs[i].file, x->specs[i].fmt, flags,
			    &oo, e);

	if (ret == 0 && x->a->snapshot &&
	    (ret = load_snapshot(x->a->snapshot, *out)) < 0) {
		qerr_set(e, ret, "Failed to load snapshot: %s",
			 qerr_msg(&(*out)->err));
		img_close(*out);
		*out = NULL;
	}
	return ret;
}

/*
 * The target's keys: --target-image-opts, or for a target we create, the
 * secret its -o encrypt.key-secret names (as qemu-img opens it).
 */
static void target_open_opts(struct ctx *x, struct img_open_opts *o)
{
	spec_open_opts(&x->tspec, o);
	if (!x->a->skip_create)
		o->key_secret = optlist_get(&x->a->opts, "encrypt.key-secret");
}

static int open_target_again(void *opaque, struct img **out, struct qerr *e)
{
	struct ctx *x = opaque;
	struct img_open_opts oo;

	target_open_opts(x, &oo);
	oo.keys_from = x->target;
	return img_open_with(out, x->tspec.file, x->tspec.fmt,
			     IMG_RDWR | IMG_NO_BACKING, &oo, e);
}

/*
 * -l: show img the snapshot named by "ID_OR_NAME" or
 * "snapshot.id=ID[,snapshot.name=NAME]" (checked by convert.c), on every
 * handle on the source, the workers' too.  On failure img->err holds the
 * reason.
 */
static int load_snapshot(const char *p, struct img *img)
{
	struct optlist l = { 0 };
	struct qerr e = { 0 };
	int ret;

	if (strncmp(p, "snapshot.", 9) != 0)
		return img_snapshot_load_any(img, p);
	if (optlist_parse(&l, p, &e) < 0)
		return qerr_set(&img->err, e.code, "%s", qerr_msg(&e));
	ret = img_snapshot_load(img, optlist_get(&l, "snapshot.id"),
				optlist_get(&l, "snapshot.name"));
	optlist_free(&l);
	return ret;
}

static int open_sources(struct ctx *x)
{
	struct convert_args *a = x->a;
	struct qerr e = { 0 };

	x->specs = calloc((size_t)a->nb_srcs, sizeof(*x->specs));
	x->srcs = calloc((size_t)a->nb_srcs, sizeof(*x->srcs));
	if (!x->specs || !x->srcs) {
		msg_error("out of memory");
		return -1;
	}
	for (int i = 0; i < a->nb_srcs; i++) {
		if (make_spec(a->srcs[i], a->fmt, a->image_opts,
			      &x->specs[i]) < 0)
			return -1;
		if (open_src(x, (size_t)i, &x->srcs[i], &e) < 0) {
			cmd_report(x->specs[i].file, &e);
			return -1;
		}
		if (check_spec(&x->specs[i], x->srcs[i]) < 0)
			return -1;
		x->total += x->srcs[i]->size;
	}
	for (int i = 0; i < a->nb_srcs; i++) {
		if (!x->srcs[i]->drv->read) {
			msg_file_error(x->specs[i].file, "reading %s images is "
				       "not supported yet",
				       x->srcs[i]->drv->name);
			return -1;
		}
	}
	return 0;
}

static bool has_opt(const struct img_driver *drv, const char *name)
{
	for (const struct opt_desc *d = drv->create_opts; d && d->name; d++)
		if (strcmp(d->name, name) == 0)
			return true;
	return false;
}

/* -c with this target and these creation options? */
static const char *compress_conflict(const struct img_driver *drv,
				     struct optlist *o)
{
	const char *enc = optlist_get(o, "encrypt.format");
	const char *old = optlist_get(o, "encryption");
	const char *pre = optlist_get(o, "preallocation");
	bool on = false;

	if (drv != &qcow2_driver)
		return "Compression not supported for this file format";
	if (enc || (old && parse_bool(old, &on) == 0 && on))
		return "Compression and encryption not supported at the same "
		       "time";
	if (pre && strcmp(pre, "off") != 0)
		return "Compression and preallocation not supported at the "
		       "same time";
	return NULL;
}

/* Creation options for the target: -o, the size, -B/-F. */
static int target_options(struct ctx *x, const struct img_driver *drv)
{
	struct convert_args *a = x->a;
	struct optlist *o = &a->opts;
	struct qerr e = { 0 };
	char size[32];
	const char *why = NULL;

	if (optlist_check(o, drv->create_opts, &e) < 0) {
		msg_file_error(x->tspec.file, "%s", qerr_msg(&e));
		return -1;
	}
	if (a->out_base && !has_opt(drv, "backing_file"))
		why = "Backing file";
	else if (a->base_fmt && !has_opt(drv, "backing_fmt"))
		why = "Backing file format";
	if (why) {
		msg_error("%s not supported for file format '%s'", why,
			  drv->name);
		return -1;
	}
	if ((a->out_base && optlist_set(o, "backing_file", a->out_base)) ||
	    (a->base_fmt && optlist_set(o, "backing_fmt", a->base_fmt)))
		return -1;
	x->target_has_backing = optlist_has(o, "backing_file");
	if (a->compress && (why = compress_conflict(drv, o))) {
		msg_error("%s", why);
		return -1;
	}
	if (x->target_has_backing && !optlist_has(o, "backing_fmt")) {
		msg_error("Use of backing file requires explicit backing "
			  "format");
		return -1;
	}
	snprintf(size, sizeof(size), "%llu", (unsigned long long)x->total);
	optlist_del(o, "size");
	return optlist_set(o, "size", size) < 0 ? -1 : 0;
}

static int create_target(struct ctx *x, const struct img_driver *drv)
{
	struct qerr e = { 0 };

	if (drv->create(x->tspec.file, &x->a->opts, &e) < 0) {
		msg_file_error(x->tspec.file, "error while converting %s: %s",
			       drv->name, qerr_msg(&e));
		return -1;
	}
	cmd_warn_legacy_aes(drv, &x->a->opts, x->tspec.file);
	return 0;
}

static int check_target(struct ctx *x, const struct img_driver *drv)
{
	struct convert_args *a = x->a;
	const char *why;

	if (a->skip_create && x->target->size < x->total) {
		msg_file_error(x->tspec.file,
			       "output file is smaller than input file");
		return -1;
	}
	if (a->skip_create) {
		x->target_has_backing = a->out_base != NULL;
		if (a->compress && !cwrite_supported(x->target, &why)) {
			msg_error("%s", why);
			return -1;
		}
	} else if (a->compress && !cwrite_supported(x->target, &why)) {
		msg_file_error(x->tspec.file, "%s", why);
		return -1;
	}
	if (a->target_is_zero && x->target_has_backing) {
		msg_error("Cannot use --target-is-zero when the destination "
			  "image has a backing file");
		return -1;
	}
	return 0;
}

/*
 * Is the target (when it exists) one of the images being read, or in
 * their backing chains?  qemu-img is stopped by its image locks; without
 * them, creating the target would truncate a source.
 */
static bool target_is_source(struct ctx *x)
{
	struct stat st, cur;

	if (stat(x->tspec.file, &st) < 0)
		return false;
	for (int i = 0; i < x->a->nb_srcs; i++)
		for (struct img *l = x->srcs[i]; l; l = l->backing)
			if (fstat(l->file->fd, &cur) == 0 &&
			    cur.st_dev == st.st_dev && cur.st_ino == st.st_ino)
				return true;
	return false;
}

static int open_target(struct ctx *x)
{
	struct convert_args *a = x->a;
	const char *fmt = a->out_fmt ? a->out_fmt : "raw";
	const struct img_driver *drv;
	struct img_open_opts oo;
	struct qerr e = { 0 };

	if (make_spec(a->out, fmt, a->target_image_opts, &x->tspec) < 0)
		return -1;
	if (!x->tspec.fmt && !(x->tspec.fmt = strdup("raw")))
		return -1;
	drv = img_driver_find(x->tspec.fmt);
	if (!drv) {
		msg_error("Unknown file format '%s'", x->tspec.fmt);
		return -1;
	}
	if (a->cache && !convert_valid_cache(a->cache)) {
		msg_error("Invalid cache option: %s", a->cache);
		return -1;
	}
	if (!a->skip_create && target_options(x, drv) < 0)
		return -1;
	if (!drv->write) {
		msg_file_error(x->tspec.file, "writing %s images is not "
			       "supported yet", drv->name);
		return -1;
	}
	if (target_is_source(x)) {
		msg_file_error(x->tspec.file, "the output image is also an "
			       "input image");
		return -1;
	}
	if (!a->skip_create && create_target(x, drv) < 0)
		return -1;
	target_open_opts(x, &oo);
	if (img_open_with(&x->target, x->tspec.file, x->tspec.fmt, IMG_RDWR,
			  &oo, &e) < 0) {
		cmd_report(x->tspec.file, &e);
		return -1;
	}
	if (check_spec(&x->tspec, x->target) < 0)
		return -1;
	return check_target(x, drv);
}

static void on_progress(void *opaque, uint64_t done, uint64_t total)
{
	struct ctx *x = opaque;

	progress_update(&x->prog, done, total);
}

static void on_warn(void *opaque, const char *text)
{
	struct ctx *x = opaque;

	if (!x->a->quiet)
		msg_warn("%s", text);
}

static int copy(struct ctx *x)
{
	struct convert_args *a = x->a;
	struct convert_opts o = { 0 };
	struct convert_error err;
	struct img_info info;
	int ret;

	o.srcs = x->srcs;
	o.nb_srcs = (size_t)a->nb_srcs;
	o.reopen = open_src;
	o.opaque = x;
	o.target = x->target;
	o.reopen_target = open_target_again;
	if (img_info_get(x->target, &info) == 0)
		o.target_cluster = info.cluster_size;
	img_info_free(&info);
	qerr_clear(&x->target->err);
	o.zero_init = (!a->skip_create && !x->target_has_backing) ||
		      a->target_is_zero;
	o.target_has_backing = x->target_has_backing;
	o.min_sparse = a->min_sparse;
	o.compress = a->compress;
	o.copy_range = a->copy_range;
	o.salvage = a->salvage;
	o.threads = a->threads;
	o.rate_limit = a->rate_limit;
	o.sync = a->cache && strcmp(a->cache, "unsafe") != 0;
	if (a->quiet)
		progress_init(&x->prog, PROGRESS_NONE, 1.0);
	else
		progress_init(&x->prog,
			      a->progress_json	  ? PROGRESS_JSON
			      : a->progress_human ? PROGRESS_HUMAN
						  : PROGRESS_NONE,
			      1.0);
	if (x->prog.mode != PROGRESS_NONE)
		o.progress = on_progress;
	o.warn = on_warn;
	ret = convert_run(&o, &err);
	progress_end(&x->prog, ret == 0);
	if (ret < 0)
		msg_file_error(err.src >= 0 ? x->specs[err.src].file
					    : x->tspec.file,
			       "%s", err.msg);
	return ret;
}

int convert_main(struct convert_args *a)
{
	struct ctx x = { 0 };
	int ret = -1;

	x.a = a;
	if (open_sources(&x) == 0 && open_target(&x) == 0)
		ret = copy(&x);
	img_close(x.target);
	for (int i = 0; x.srcs && i < a->nb_srcs; i++)
		img_close(x.srcs[i]);
	for (int i = 0; x.specs && i < a->nb_srcs; i++)
		spec_free(&x.specs[i]);
	free(x.specs);
	free(x.srcs);
	spec_free(&x.tspec);
	return ret < 0 ? 1 : 0;
}

/*
 * "-o help" is create's: the same list, sorted, with the protocol options
 * when a target file name is given (qemu-img prints the same text).
 */
int convert_option_help(struct convert_args *a)
{
	char *argv[] = { "create", "-f", NULL, "-o", "help", NULL, NULL };

	argv[2] = (char *)(a->out_fmt ? a->out_fmt : "raw");
	argv[5] = (char *)a->out;
	optind = 0;
	return cmd_create(a->out ? 6 : 5, argv);
}
