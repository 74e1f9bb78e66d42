/*
 * convert.c: "qimg convert": copy one or more images, concatenated, into a
 * new (or, with -n, an existing) image of any supported format, with
 * qemu-img 7.2's options, messages and exit status (QEMU-IMG-REFERENCE.md
 * sections 1.4, 3.7, 3.8).  Option parsing and the checks qemu-img makes
 * before it opens anything live here; opening and creating the images is
 * convert_open.c; the copy itself is the core's convert_run().
 *
 * Differences from qemu-img, on purpose: work is spread over every core
 * (-j/--threads to choose; -m and -W are accepted and validated but the
 * output is always written in order), --progress=json, and
 * "--target-is-zero" with a target backing file fails with exit 1 (7.2
 * prints the error and exits 0).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "cmd/convert_int.h"
#include "core/secret.h"
#include "util/msg.h"
#include "util/size.h"

static const char convert_usage[] =
	"usage: qimg convert [--object objectdef] [--image-opts] "
	"[--target-image-opts] [--target-is-zero] [-U] [-C] [-c] [-p] [-q] "
	"[-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] "
	"[-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] "
	"[-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] "
	"[--salvage] [-j N|--threads N] [--progress=json] "
	"filename [filename2 [...]] output_filename\n";

enum {
	OPT_TARGET_IMAGE_OPTS = 0x1100,
	OPT_TARGET_IS_ZERO,
	OPT_SALVAGE,
	OPT_PROGRESS,
};

static const struct option convert_longopts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "object", required_argument, NULL, CMD_OPT_OBJECT },
	{ "image-opts", no_argument, NULL, CMD_OPT_IMAGE_OPTS },
	{ "target-image-opts", no_argument, NULL, OPT_TARGET_IMAGE_OPTS },
	{ "target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO },
	{ "salvage", no_argument, NULL, OPT_SALVAGE },
	{ "force-share", no_argument, NULL, 'U' },
	{ "threads", required_argument, NULL, 'j' },
	{ "progress", required_argument, NULL, OPT_PROGRESS },
	{ NULL, 0, NULL, 0 },
};

static const char *const cache_modes[] = {
	"none", "writeback", "writethrough", "directsync", "unsafe", NULL,
};

bool convert_valid_cache(const char *mode)
{
	for (int i = 0; cache_modes[i]; i++)
		if (strcmp(mode, cache_modes[i]) == 0)
			return true;
	return false;
}

/* qemu's two-line message for a size it cannot parse. */
static int bad_size(const char *what)
{
	msg_error("Invalid %s specified. You may use k, M, G, T, P or E "
		  "suffixes for", what);
	msg_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and "
		  "exabytes.");
	return -1;
}

static int parse_sparse(struct convert_args *a, const char *arg)
{
	uint64_t v;

	if (size_parse(arg, &v, NULL) < 0)
		return bad_size("buffer size for sparse output");
	if (v % 512 || v > (16u << 20)) {
		msg_error("Invalid buffer size for sparse output specified. "
			  "Valid sizes are multiples of 512 up to 16777216. "
			  "Select 0 to disable sparse detection (fully "
			  "allocates output).");
		return -1;
	}
	a->min_sparse = v;
	a->explicit_sparse = true;
	return 0;
}

static int parse_threads(struct convert_args *a, const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > CONVERT_MAX_THREADS) {
		msg_error("Invalid number of threads '%s': use 1 to %d", arg,
			  CONVERT_MAX_THREADS);
		return -1;
	}
	a->threads = (unsigned)v;
	return 0;
}

static int parse_int_opt(struct convert_args *a, int c, const char *arg)
{
	struct qerr e = { 0 };
	char *end;
	long v;

	switch (c) {
	case 'S':
		return parse_sparse(a, arg);
	case 'j':
		return parse_threads(a, arg);
	case 'm':
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || end == arg || *end || v < 1 || v > 16) {
			msg_error("Invalid number of coroutines. Allowed number "
				  "of coroutines is between 1 and 16");
			return -1;
		}
		return 0;
	case 'r':
		if (size_parse(arg, &a->rate_limit, NULL) < 0)
			return bad_size("rate limit");
		return 0;
	case 'o':
		if (optlist_parse(&a->opts, arg, &e) < 0) {
			msg_error("%s", qerr_msg(&e));
			return -1;
		}
		a->has_opts = true;
		return 0;
	}
	return 0;
}

static int parse_progress(struct convert_args *a, const char *arg)
{
	if (strcmp(arg, "json") != 0) {
		msg_error("--progress must be used with json as argument");
		return -1;
	}
	a->progress_json = true;
	return 0;
}

/* -l: "snapshot.id=ID[,snapshot.name=NAME]" is checked now, as qemu-img
 * does; anything else is an ID or a name, looked up at open. */
static int parse_snapshot(struct convert_args *a, const char *arg)
{
	struct optlist l = { 0 };
	struct qerr e = { 0 };
	int ret = 0;

	a->snapshot = arg;
	if (strncmp(arg, "snapshot.", 9) != 0)
		return 0;
	if (optlist_parse(&l, arg, &e) < 0 ||
	    optlist_check(&l, convert_snapshot_opts, &e) < 0) {
		msg_error("%s", qerr_msg(&e));
		msg_error("Failed in parsing snapshot param '%s'", arg);
		ret = -1;
	}
	optlist_free(&l);
	return ret;
}

/*
 * --object: qemu's secret objects (for encrypted images); "help" lists
 * what exists and ends the command with status 0 (returns 1).
 */
static int parse_object(const char *arg)
{
	struct qerr e = { 0 };
	int ret = secret_object_add(arg, &e);

	if (ret < 0) {
		msg_error("%s", qerr_msg(&e));
		return -1;
	}
	if (ret > 0) {
		fputs(secret_object_help((enum secret_help)ret), stdout);
		return 1;
	}
	return 0;
}

/*
 * One option; returns 0, 1 when it printed help (exit 0), or -1 after
 * printing an error.
 */
static int parse_one(struct convert_args *a, int c)
{
	switch (c) {
	case 'f': a->fmt = optarg; break;
	case 'O': a->out_fmt = optarg; break;
	case 'B': a->out_base = optarg; break;
	case 'F': a->base_fmt = optarg; break;
	case 'l': return parse_snapshot(a, optarg);
	case 't': a->cache = optarg; break;
	case 'T': a->src_cache = optarg; break;
	case 'c': a->compress = true; break;
	case 'C': a->copy_range = true; break;
	case 'n': a->skip_create = true; break;
	case 'p': a->progress_human = true; break;
	case 'q': a->quiet = true; break;
	case 'U': a->force_share = true; break;
	case 'W': break;	/* writes are always in order: harmless */
	case CMD_OPT_OBJECT: return parse_object(optarg);
	case CMD_OPT_IMAGE_OPTS: a->image_opts = true; break;
	case OPT_TARGET_IMAGE_OPTS: a->target_image_opts = true; break;
	case OPT_TARGET_IS_ZERO: a->target_is_zero = true; break;
	case OPT_SALVAGE: a->salvage = true; break;
	case OPT_PROGRESS: return parse_progress(a, optarg);
	default: return parse_int_opt(a, c, optarg);
	}
	return 0;
}

/* The checks qemu-img makes right after its option loop, in its order. */
static int check_conflicts(struct convert_args *a)
{
	const char *why = NULL;

	if (a->compress && a->copy_range)
		why = "Cannot enable copy offloading when -c is used";
	else if (a->explicit_sparse && a->copy_range)
		why = "Cannot enable copy offloading when -S is used";
	else if (a->salvage && a->copy_range)
		why = "Cannot use copy offloading in salvaging mode";
	else if (a->target_image_opts && !a->skip_create)
		why = "--target-image-opts requires use of -n flag";
	else if (a->skip_create && a->has_opts)
		why = "-o has no effect when skipping image creation";
	else if (a->target_is_zero && !a->skip_create)
		why = "--target-is-zero requires use of -n flag";
	else if ((a->image_opts && a->fmt) ||
		 (a->target_image_opts && a->out_fmt))
		why = "--image-opts and --format are mutually exclusive";
	if (why) {
		msg_error("%s", why);
		return -1;
	}
	return 0;
}

static int check_sources(struct convert_args *a)
{
	const char *why = NULL;

	if (a->nb_srcs < 1)
		why = "Must specify image file name";
	else if (a->nb_srcs > 1 && a->snapshot)
		why = "No support for concatenating multiple snapshot";
	else if (a->nb_srcs > 1 && a->out_base)
		why = "Having a backing file for the target makes no sense "
		      "when concatenating multiple input images";
	else if (a->src_cache && !convert_valid_cache(a->src_cache)) {
		msg_error("Invalid source cache option: %s", a->src_cache);
		return -1;
	}
	if (why) {
		msg_error("%s", why);
		return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct convert_args *a)
{
	int c, ret;

	a->min_sparse = 4096;
	a->threads = 0;
	while ((c = cmd_getopt(argc, argv, "hf:O:B:CF:co:l:S:pt:T:qnm:WUr:j:",
			       convert_longopts)) != -1) {
		if (c == '?')
			return -1;
		if (c == 'h')
			return 1;
		ret = parse_one(a, c);
		if (ret < 0)
			return -1;
		if (ret > 0)
			return 3;
	}
	if (check_conflicts(a) < 0)
		return -1;
	a->nb_srcs = argc - optind - 1;
	if (a->nb_srcs >= 1) {
		a->srcs = argv + optind;
		a->out = argv[argc - 1];
	}
	if (a->opts.help)
		return 2;
	return check_sources(a) < 0 ? -1 : 0;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > CONVERT_MAX_THREADS ? CONVERT_MAX_THREADS : (unsigned)n;
}

int cmd_convert(int argc, char **argv)
{
	struct convert_args a = { 0 };
	int ret = parse_args(argc, argv, &a);

	if (ret == 1) {
		optlist_free(&a.opts);
		return cmd_help(convert_usage);
	}
	if (ret == 2) {
		ret = convert_option_help(&a);
		optlist_free(&a.opts);
		return ret;
	}
	if (ret == 3) {		/* --object help */
		optlist_free(&a.opts);
		return 0;
	}
	if (ret < 0) {
		optlist_free(&a.opts);
		return 1;
	}
	if (!a.threads)
		a.threads = default_threads();
	/* Encryption and decryption of large writes use as many. */
	crypto_set_threads(a.threads);
	/* A file-size limit is a write error to report, not a crash. */
	signal(SIGXFSZ, SIG_IGN);
	ret = convert_main(&a);
	optlist_free(&a.opts);
	return ret;
}
