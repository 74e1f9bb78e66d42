/*
 * create.c: "qimg create", qemu-img 7.2's create.
 *
 *   qimg create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u]
 *               [-o options] [--object objectdef] filename [size]
 *
 * The steps follow qemu-img's: -o lists accumulate (last value wins);
 * "-o help" lists the format's options; every option is checked against
 * the format's list and parsed by type; -b, -F and the size argument join
 * the list; the backing file is opened (unless -u) for its size and to
 * insist on a backing format; then the image is created.
 *
 * Deliberate differences from qemu-img (the man page says so too):
 *  - qemu prints "Formatting ..." before the driver validates its options,
 *    so a refused create prints it and then the error; qimg validates
 *    first and prints the line only for an image it is about to create.
 *    Validation never touches a file, so a refused create leaves an
 *    existing file as it was (qemu truncates, then deletes it);
 *  - "Backing file specified without backing format / Detected format of
 *    X." ends with a newline (qemu's lacks one);
 *  - a negative number for a numeric option (refcount_bits=-1) is refused
 *    as "expects a number" (qemu wraps it and complains about its value);
 *  - legacy AES encryption (encrypt.format=aes, encryption=on) gets a
 *    warning that it is insecure (qemu-img 7.2 creates it silently).
 * Encryption errors (missing or unknown secret, unusable cipher) come after
 * the "Formatting" line, as qemu prints them: the driver reports them only
 * on the real create.  --object registers secrets (core/secret.h).
 * Errors are "qimg: FILE: message" and exit status 1; multi-line messages
 * keep qemu's line breaks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "core/img.h"
#include "util/msg.h"
#include "util/opts.h"
#include "util/size.h"

static const char create_usage[] =
	"usage: qimg create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] "
	"[-u]\n"
	"                   [-o options] [--object objectdef] filename "
	"[size]\n";

struct create_args {
	const char *fmt;
	const char *backing;
	const char *backing_fmt;
	const char *filename;
	const char *size_arg;
	bool unsafe;
	bool quiet;
	struct optlist opts;
};

static const char *type_name(enum opt_type t)
{
	switch (t) {
	case OPT_SIZE: return "size";
	case OPT_BOOL: return "bool (on/off)";
	case OPT_NUM: return "num";
	default: return "str";
	}
}

static int desc_cmp(const void *a, const void *b)
{
	const struct opt_desc *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/*
 * Options of the file underneath rather than of the format: "-o help"
 * lists them only when a file name is given, as qemu-img does.  For raw,
 * preallocation is one of them (qcow2 has its own).
 */
static bool is_protocol_opt(const struct img_driver *drv, const char *name)
{
	return strcmp(name, "nocow") == 0 ||
	       strcmp(name, "extent_size_hint") == 0 ||
	       (drv == &raw_driver && strcmp(name, "preallocation") == 0);
}

/* qemu-img's "-o help": the options sorted by name. */
static int print_option_help(const struct img_driver *drv, const char *file)
{
	const struct opt_desc *list[64];
	size_t n = 0;

	for (const struct opt_desc *d = drv->create_opts; d->name; d++)
		if ((file || !is_protocol_opt(drv, d->name)) &&
		    n < sizeof(list) / sizeof(*list))
			list[n++] = d;
	qsort(list, n, sizeof(*list), desc_cmp);
	if (file)
		printf("Supported options:\n");
	else
		printf("Supported %s options:\n", drv->name);
	for (size_t i = 0; i < n; i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s=<%s>", list[i]->name,
			 type_name(list[i]->type));
		printf("  %-22s - %s\n", left, list[i]->help);
	}
	if (!file)
		printf("\nThe protocol level may support further options.\n"
		       "Specify the target filename to include those "
		       "options.\n");
	return 0;
}

static const struct opt_desc *find_desc(const struct img_driver *drv,
					const char *name)
{
	for (const struct opt_desc *d = drv->create_opts; d->name; d++)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* A number as qemu's option parser takes it (decimal, 0x hex, 0 octal). */
static int parse_num(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || end == s || *end || s[0] == '-' ? -EINVAL : 0;
}

/* Every -o key must be known, and its value must parse as its type. */
static int check_opts(const struct img_driver *drv, const char *file,
		      const struct optlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct opt_desc *d = find_desc(drv, l->v[i].key);
		const char *v = l->v[i].val;
		uint64_t u;
		bool b;

		if (!d) {
			msg_file_error(file, "Invalid parameter '%s'",
				       l->v[i].key);
			return 1;
		}
		if (d->type == OPT_BOOL && parse_bool(v, &b) < 0) {
			msg_file_error(file, "Parameter '%s' expects 'on' or "
				       "'off'", d->name);
			return 1;
		}
		if (d->type == OPT_NUM && parse_num(v, &u) < 0) {
			msg_file_error(file, "Parameter '%s' expects a number",
				       d->name);
			return 1;
		}
		if (d->type == OPT_SIZE && size_parse(v, &u, NULL) < 0) {
			msg_file_error(file, "Parameter '%s' expects a "
				       "non-negative number below 2^64\n"
				       "Optional suffix k, M, G, T, P or E "
				       "means kilo-, mega-, giga-, tera-, "
				       "peta-\nand exabytes, respectively.",
				       d->name);
			return 1;
		}
	}
	return 0;
}

/* The size argument, with qemu-img's two-line complaint. */
static int parse_size_arg(const char *s, uint64_t *size)
{
	int ret = size_parse(s, size, NULL);

	if (ret == -ERANGE) {
		msg_error("Invalid image size specified. Must be between 0 "
			  "and 9223372036854775807.");
		return 1;
	}
	if (ret < 0) {
		/* qemu's two lines, each with the program prefix. */
		msg_error("Invalid image size specified. You may use k, M, G, "
			  "T, P or E suffixes for");
		msg_error("kilobytes, megabytes, gigabytes, terabytes, "
			  "petabytes and exabytes.");
		return 1;
	}
	return 0;
}

/*
 * Open the backing file and its chain as qemu-img does (relative names
 * resolve against the new image's directory), insist on a backing format,
 * and take the backing file's virtual size when no size was given.
 */
static int open_backing(struct create_args *a)
{
	char *path = img_backing_path(a->filename, a->backing);
	struct qerr e = { 0 };
	struct img *img;
	char num[32];
	int ret;

	if (!path) {
		msg_file_error(a->filename, "out of memory");
		return 1;
	}
	ret = img_open(&img, path, a->backing_fmt, IMG_NO_BACKING, &e);
	if (ret < 0) {
		bool os = ret == -ENOENT || ret == -EACCES || ret == -EISDIR ||
			  ret == -ENOTDIR || ret == -ELOOP;

		msg_file_error(a->filename, "Could not open '%s': %s\n"
			       "Could not open backing image.",
			       path, os ? strerror(-ret) : qerr_msg(&e));
		free(path);
		return 1;
	}
	free(path);
	/* qemu opens the whole chain: a broken chain is refused too. */
	ret = img_open_backing(img);
	if (ret < 0) {
		const char *why = qerr_msg(&img->err);
		static const char inner[] = "could not open backing file: ";

		if (strncmp(why, inner, sizeof(inner) - 1) == 0)
			why += sizeof(inner) - 1;
		msg_file_error(a->filename, "Could not open backing file: "
			       "%c%s\nCould not open backing image.",
			       why[0] == 'c' ? 'C' : why[0], why + !!why[0]);
		img_close(img);
		return 1;
	}
	if (!a->backing_fmt) {
		msg_file_error(a->filename, "Backing file specified without "
			       "backing format\nDetected format of %s.",
			       img->drv->name);
		img_close(img);
		return 1;
	}
	ret = 0;
	if (!optlist_has(&a->opts, "size")) {
		snprintf(num, sizeof(num), "%llu",
			 (unsigned long long)img->size);
		ret = optlist_set(&a->opts, "size", num);
	}
	img_close(img);
	if (ret < 0) {
		msg_file_error(a->filename, "out of memory");
		return 1;
	}
	return 0;
}

/* Put -b, -F and the size argument into the option list. */
static int merge_args(const struct img_driver *drv, struct create_args *a)
{
	uint64_t size;
	char num[32];

	if (a->size_arg) {
		if (optlist_has(&a->opts, "size")) {
			msg_file_error(a->filename, "The image size must be "
				       "specified only once");
			return 1;
		}
		if (parse_size_arg(a->size_arg, &size))
			return 1;
		snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
		if (optlist_set(&a->opts, "size", num) < 0)
			return 1;
	}
	if (a->backing && (!find_desc(drv, "backing_file") ||
			   optlist_set(&a->opts, "backing_file", a->backing))) {
		msg_file_error(a->filename, "Backing file not supported for "
			       "file format '%s'", drv->name);
		return 1;
	}
	if (a->backing_fmt &&
	    (!find_desc(drv, "backing_fmt") ||
	     optlist_set(&a->opts, "backing_fmt", a->backing_fmt))) {
		msg_file_error(a->filename, "Backing file format not supported "
			       "for file format '%s'", drv->name);
		return 1;
	}
	a->backing = optlist_get(&a->opts, "backing_file");
	a->backing_fmt = optlist_get(&a->opts, "backing_fmt");
	return 0;
}

static int check_backing(struct create_args *a)
{
	if (!a->backing)
		return 0;
	if (strcmp(a->filename, a->backing) == 0) {
		msg_file_error(a->filename, "Error: Trying to create an image "
			       "with the same filename as the backing file");
		return 1;
	}
	if (a->backing[0] == '\0') {
		msg_file_error(a->filename, "Expected backing file name, got "
			       "empty string");
		return 1;
	}
	if (!a->unsafe)
		return open_backing(a);
	if (!a->backing_fmt) {
		msg_file_error(a->filename, "Backing file specified without "
			       "backing format");
		return 1;
	}
	return 0;
}

/* "Formatting 'NAME', fmt=FMT k=v ...": sizes and numbers normalised. */
static void print_formatting(const struct img_driver *drv,
			     struct create_args *a)
{
	printf("Formatting '%s', fmt=%s", a->filename, drv->name);
	for (const struct opt_desc *d = drv->create_opts; d->name; d++) {
		const char *v = optlist_get(&a->opts, d->name);
		uint64_t u = 0;

		if (!v)
			v = d->def;
		if (!v)
			continue;
		if (d->type == OPT_SIZE && size_parse(v, &u, NULL) == 0)
			printf(" %s=%llu", d->name, (unsigned long long)u);
		else if (d->type == OPT_NUM && parse_num(v, &u) == 0)
			printf(" %s=%lld", d->name, (long long)u);
		else
			printf(" %s=%s", d->name, v);
	}
	printf("\n");
	fflush(stdout);
}

/* Report a driver's failure; -EFBIG gets qemu-img's generic wording. */
static int report_create_error(const struct img_driver *drv,
			       const char *file, int ret, const struct qerr *e)
{
	if (ret == -EFBIG)
		msg_file_error(file, "The image size is too large for file "
			       "format '%s'%s", drv->name,
			       find_desc(drv, "cluster_size")
				       ? " (try using a larger cluster size)"
				       : "");
	else
		cmd_report(file, e);
	return 1;
}

static int do_create(const struct img_driver *drv, struct create_args *a)
{
	struct qerr e = { 0 };
	int ret;

	if (check_opts(drv, a->filename, &a->opts) || merge_args(drv, a) ||
	    check_backing(a))
		return 1;
	if (!optlist_has(&a->opts, "size")) {
		msg_file_error(a->filename, "Image creation needs a size "
			       "parameter");
		return 1;
	}
	ret = drv->create(NULL, &a->opts, &e);
	if (ret < 0)
		return report_create_error(drv, a->filename, ret, &e);
	if (!a->quiet)
		print_formatting(drv, a);
	ret = drv->create(a->filename, &a->opts, &e);
	if (ret < 0)
		return report_create_error(drv, a->filename, ret, &e);
	cmd_warn_legacy_aes(drv, &a->opts, a->filename);
	return 0;
}

static int parse_args(int argc, char **argv, struct create_args *a)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, CMD_OPT_OBJECT },
		{ NULL, 0, NULL, 0 },
	};
	struct qerr e = { 0 };
	int c;

	while ((c = cmd_getopt(argc, argv, ":hqf:b:F:uo:", longopts)) != -1) {
		switch (c) {
		case 'h':
			return cmd_help(create_usage) - 1;
		case 'q':
			a->quiet = true;
			break;
		case 'f':
			a->fmt = optarg;
			break;
		case 'b':
			a->backing = optarg;
			break;
		case 'F':
			a->backing_fmt = optarg;
			break;
		case 'u':
			a->unsafe = true;
			break;
		case 'o':
			if (optlist_parse(&a->opts, optarg, &e) < 0) {
				msg_error("Invalid option list: %s", optarg);
				return 1;
			}
			break;
		case CMD_OPT_OBJECT:
			if ((c = cmd_add_object(optarg)) != 0)
				return c < 0 ? 1 : -1;	/* -1: help printed */
			break;
		default:
			return 1;
		}
	}
	return 0;
}

int cmd_create(int argc, char **argv)
{
	struct create_args a = { .fmt = "raw" };
	const struct img_driver *drv;
	int ret;

	ret = parse_args(argc, argv, &a);
	if (ret) {
		optlist_free(&a.opts);
		return ret < 0 ? 0 : ret;
	}
	if (optind < argc)
		a.filename = argv[optind++];
	drv = img_driver_find(a.fmt);
	if (a.opts.help) {
		if (drv)
			ret = print_option_help(drv, a.filename);
		else
			msg_error("Unknown file format '%s'", a.fmt);
		optlist_free(&a.opts);
		return drv ? ret : 1;
	}
	if (!a.filename) {
		optlist_free(&a.opts);
		return cmd_usage_error("Expecting image file name");
	}
	if (optind < argc)
		a.size_arg = argv[optind++];
	if (a.size_arg) {
		uint64_t size;

		if (parse_size_arg(a.size_arg, &size)) {
			optlist_free(&a.opts);
			return 1;
		}
	}
	if (optind < argc) {
		optlist_free(&a.opts);
		return cmd_usage_error("Unexpected argument: %s", argv[optind]);
	}
	if (!drv) {
		msg_file_error(a.filename, "Unknown file format '%s'", a.fmt);
		ret = 1;
	} else {
		ret = do_create(drv, &a);
	}
	optlist_free(&a.opts);
	return ret;
}
