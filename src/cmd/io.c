/*
 * io.c: "qimg io", a drop-in for qemu-io 7.2: the command line, the
 * command loop (-c strings, or lines from stdin behind a "qemu-io> "
 * prompt), dispatch through the table in io_table.c, and the number, size
 * and statistics printers every command shares.  The commands themselves
 * live in io_rw.c (data), io_misc.c (everything else) and io_open.c.
 * Everything goes through the generic image API (core/img.h).
 *
 * Output is qemu-io's word for word, so a script's output with the timing
 * figures filtered is the same for both tools.  Deliberate differences:
 *   - aio_read/aio_write run synchronously, in order, and print their
 *     result at once; their failures (I/O errors, pattern mismatches) make
 *     the exit status 1, where qemu-io, having only submitted them, exits 0.
 *     (Synchronous failures already give exit status 1 in qemu-io 7.2.)
 *   - Messages qemu-io prefixes with "qemu-io: " are prefixed "qimg: ";
 *     the interactive prompt stays "qemu-io> " (it is part of stdout).
 *   - Cache (-t, -n) and AIO (-i, -k) modes are validated as qemu-io does
 *     and then ignored: qimg always does plain pread/pwrite.
 *   - -s (snapshot mode) is refused; -T (trace) and -m (misalign) are
 *     accepted and do nothing; --object takes only secrets (kept for
 *     encrypted images), as the rest of qimg does.
 *   - read/write -b (VM state) fail with "Operation not supported", as
 *     qemu-io says for raw images (qcow2 keeps VM state; qimg does not
 *     write it); write -c goes through img_write_compressed; write -n
 *     only lifts the request length limit, as zeroing never falls back to
 *     a slow path here that it would forbid.
 *   - break, remove_break, resume and wait_break fail with "Operation not
 *     supported" (qemu-io says so too without blkdebug, except wait_break,
 *     which waits forever).
 *   - Sizes of a request are limited as qemu-io limits them, but data
 *     moves in 1 MiB chunks, so memory stays small (except read -v, which
 *     must see the whole buffer before it prints the dump).
 *   - open/reopen -o and --image-opts accept driver, file.filename,
 *     file.driver=file, read-only, force-share, cache.*, aio, discard
 *     (and filename for driver=file); other options are refused with
 *     qemu's message.
 *   - A raw image whose format was probed refuses writes that would make
 *     sector 0 look like a qcow2 header (qemu checks every format it
 *     knows); reopen -o read-only=on names the image file where qemu
 *     names an internal node ('#block123').
 *   - Errors from the image layer are worded as qimg's core words them
 *     (for example "could not open 'x': No such file or directory").
 *   - qemu-io crashes on "truncate -m MODE" without a size; qimg io prints
 *     the usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cmd/cmd.h"
#include "cmd/io.h"
#include "core/secret.h"
#include "util/size.h"

static const char io_usage_text[] =
	"Usage: qimg io [OPTIONS]... [-c STRING]... [file]\n"
	"Disk exerciser (qemu-io compatible)\n"
	"\n"
	"  --object OBJECTDEF   define an object such as 'secret' for\n"
	"                       passwords and/or encryption keys\n"
	"  --image-opts         treat file as option string\n"
	"  -c, --cmd STRING     execute command with its arguments\n"
	"                       from the given string\n"
	"  -f, --format FMT     specifies the block driver to use\n"
	"  -r, --read-only      export read-only\n"
	"  -s, --snapshot       use snapshot file (not supported)\n"
	"  -n, --nocache        disable host cache, short for -t none\n"
	"  -C, --copy-on-read   enable copy-on-read\n"
	"  -m, --misalign       misalign allocations for O_DIRECT\n"
	"  -k, --native-aio     use kernel AIO implementation\n"
	"                       (Linux only, prefer use of -i)\n"
	"  -i, --aio=MODE       use AIO mode (threads, native or io_uring)\n"
	"  -t, --cache=MODE     use the given cache mode for the image\n"
	"  -d, --discard=MODE   use the given discard mode for the image\n"
	"  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
	"                       specify tracing options (ignored)\n"
	"  -U, --force-share    force shared permissions\n"
	"  -h, --help           display this help and exit\n"
	"  -V, --version        output version information and exit\n"
	"\n"
	"See 'qimg io -c help' for information on available commands.\n";

/* ---- numbers and sizes ------------------------------------------------ */

int io_parse_num(const char *s, int64_t *out)
{
	uint64_t v;
	int hex_suffix;
	int ret = size_parse(s, &v, &hex_suffix);

	if (ret == -ERANGE) {
		printf("Parsing error: argument too large -- %s\n", s);
		return -1;
	}
	if (ret < 0) {
		printf("Parsing error: non-numeric argument, or "
		       "extraneous/unrecognized suffix -- %s\n", s);
		return -1;
	}
	if (hex_suffix)
		io_warn("Using a multiplier suffix on hex numbers is "
			 "deprecated: %s", s);
	*out = (int64_t)v;
	return 0;
}

int io_parse_pattern(const char *s, uint8_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < 0 || v > 255) {
		printf("%s is not a valid pattern byte\n", s);
		return -1;
	}
	*out = (uint8_t)v;
	return 0;
}

/*
 * qemu-io's cvtstr: three decimals in the largest binary unit not above
 * the value ("%f" below 1 KiB), and a ".000" fraction cut off.
 */
void io_size_str(double v, char *buf, size_t len)
{
	static const char *const units[] = { " KiB", " MiB", " GiB",
					     " TiB", " PiB", " EiB" };
	const char *suffix = " bytes";
	char num[64], *cut;
	int i;

	for (i = 5; i >= 0; i--) {
		double unit = (double)(1ULL << (10 * (i + 1)));

		if (v >= unit) {
			suffix = units[i];
			snprintf(num, sizeof(num), "%.3f", v / unit);
			break;
		}
	}
	if (i < 0)
		snprintf(num, sizeof(num), "%f", v);
	cut = strstr(num, ".000");
	if (cut)
		*cut = '\0';
	snprintf(buf, len, "%s%s", num, suffix);
}

static void io_vmsg(const char *kind, const char *fmt, va_list ap)
{
	fputs(kind, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void io_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	io_vmsg("qimg: ", fmt, ap);
	va_end(ap);
}

void io_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	io_vmsg("qimg: warning: ", fmt, ap);
	va_end(ap);
}

const char *io_strerror(int ret)
{
	return strerror(ret < 0 ? -ret : ret);
}

/* ---- statistics ------------------------------------------------------- */

void io_timer_start(struct io_timer *t)
{
	clock_gettime(CLOCK_MONOTONIC, &t->start);
	t->end = t->start;
}

void io_timer_stop(struct io_timer *t)
{
	clock_gettime(CLOCK_MONOTONIC, &t->end);
}

static double io_timer_secs(const struct io_timer *t)
{
	return (double)(t->end.tv_sec - t->start.tv_sec) +
	       (double)(t->end.tv_nsec - t->start.tv_nsec) / 1e9;
}

/* "00.01 sec" under a second, else "H:MM:SS.ss" (always for -C). */
static void io_time_str(double secs, bool fixed, char *buf, size_t len)
{
	unsigned long whole = (unsigned long)secs;
	double rest = secs - (double)whole;

	if (fixed || whole)
		snprintf(buf, len, "%lu:%02lu:%05.2f", whole / 3600,
			 whole / 60 % 60, (double)(whole % 60) + rest);
	else
		snprintf(buf, len, "%05.2f sec", rest);
}

void io_print_report(const char *op, const struct io_timer *t, int64_t off,
		     int64_t count, bool machine)
{
	double secs = io_timer_secs(t);
	char ts[64], bytes[64], rate[64];

	io_time_str(secs, machine, ts, sizeof(ts));
	if (machine) {
		printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", count, 1, ts,
		       (double)count / secs, 1.0 / secs);
		return;
	}
	printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n", op,
	       count, count, off);
	io_size_str((double)count, bytes, sizeof(bytes));
	io_size_str((double)count / secs, rate, sizeof(rate));
	printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", bytes, 1, ts,
	       rate, 1.0 / secs);
}

/* ---- dispatch --------------------------------------------------------- */

void io_print_usage(const struct io_cmd *cmd)
{
	printf("%s\n", cmd->usage);
}

void io_bad_option(const char *cmd, int opt, bool missing_arg)
{
	if (missing_arg)
		fprintf(stderr, "%s: option requires an argument -- '%c'\n",
			cmd, opt);
	else
		fprintf(stderr, "%s: invalid option -- '%c'\n", cmd, opt);
}

const struct io_cmd *io_cmd_find(const char *name)
{
	for (int i = 0; io_cmds[i].name; i++)
		if (strcmp(io_cmds[i].name, name) == 0 ||
		    (io_cmds[i].alt && strcmp(io_cmds[i].alt, name) == 0))
			return &io_cmds[i];
	return NULL;
}

/* qemu-io's argument-count complaint, on stderr without a prefix. */
static int io_check_argc(const struct io_cmd *cmd, const char *name,
			 int nargs)
{
	if (nargs >= cmd->argmin &&
	    (cmd->argmax == -1 || nargs <= cmd->argmax))
		return 0;
	fprintf(stderr, "bad argument count %d to %s, expected ", nargs, name);
	if (cmd->argmax == -1)
		fprintf(stderr, "at least %d arguments\n", cmd->argmin);
	else if (cmd->argmin == cmd->argmax)
		fprintf(stderr, "%d arguments\n", cmd->argmin);
	else
		fprintf(stderr, "between %d and %d arguments\n", cmd->argmin,
			cmd->argmax);
	return -1;
}

/* Split on single spaces, as qemu-io does (no quoting, no tabs). */
static char **io_split(char *line, int *argc)
{
	size_t cap = 8;
	char **argv = malloc(cap * sizeof(*argv));
	char *tok, *save = NULL;

	*argc = 0;
	if (!argv)
		return NULL;
	for (tok = strtok_r(line, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		if ((size_t)*argc + 1 >= cap) {
			char **n = realloc(argv, 2 * cap * sizeof(*argv));
			if (!n) {
				free(argv);
				return NULL;
			}
			argv = n;
			cap *= 2;
		}
		argv[(*argc)++] = tok;
	}
	argv[*argc] = NULL;
	return argv;
}

int io_run_line(struct io_ctx *io, char *line)
{
	const struct io_cmd *cmd;
	char **argv;
	int argc, ret;

	argv = io_split(line, &argc);
	if (!argv) {
		io_error("out of memory");
		return -1;
	}
	if (argc == 0) {
		free(argv);
		return 0;
	}
	cmd = io_cmd_find(argv[0]);
	if (!cmd) {
		fprintf(stderr, "command \"%s\" not found\n", argv[0]);
		ret = -1;
	} else if (!io->img && !(cmd->flags & IO_NOFILE_OK)) {
		fprintf(stderr, "no file open, try 'help open'\n");
		ret = -1;
	} else if (io_check_argc(cmd, argv[0], argc - 1) < 0) {
		ret = -1;
	} else if ((cmd->flags & IO_WRITES) && !(io->img->flags & IMG_RDWR)) {
		io_error("Block node is read-only");
		ret = -1;
	} else {
		io->cur = cmd;
		optind = 0;	/* full getopt reset for the command's options */
		ret = cmd->fn(io, argc, argv);
	}
	free(argv);
	return ret;
}

/* Commands from stdin, one a line, each after a "qemu-io> " prompt. */
static int io_run_stdin(struct io_ctx *io)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;

	while (!io->quit) {
		fputs("qemu-io> ", stdout);
		fflush(stdout);
		n = getline(&line, &cap, stdin);
		if (n < 0)
			break;
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (io_run_line(io, line) < 0)
			status = 1;
	}
	free(line);
	return status;
}

static int io_run_cmds(struct io_ctx *io, char **cmds, size_t n)
{
	int status = 0;

	for (size_t i = 0; i < n && !io->quit; i++) {
		char *copy = strdup(cmds[i]);

		if (!copy) {
			io_error("out of memory");
			return 1;
		}
		if (io_run_line(io, copy) < 0)
			status = 1;
		free(copy);
	}
	return status;
}

/* ---- the command line ------------------------------------------------- */

enum { OPT_OBJECT = 0x100, OPT_IMAGE_OPTS };

static const struct option io_longopts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "cmd", required_argument, NULL, 'c' },
	{ "format", required_argument, NULL, 'f' },
	{ "read-only", no_argument, NULL, 'r' },
	{ "snapshot", no_argument, NULL, 's' },
	{ "nocache", no_argument, NULL, 'n' },
	{ "copy-on-read", no_argument, NULL, 'C' },
	{ "misalign", no_argument, NULL, 'm' },
	{ "native-aio", no_argument, NULL, 'k' },
	{ "discard", required_argument, NULL, 'd' },
	{ "cache", required_argument, NULL, 't' },
	{ "trace", required_argument, NULL, 'T' },
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "force-share", no_argument, NULL, 'U' },
	{ "aio", required_argument, NULL, 'i' },
	{ NULL, 0, NULL, 0 },
};

/* An option error: our message on stderr, the usage on stdout. */
static void io_cmdline_error(char **argv, bool missing_arg)
{
	const char *arg = argv[optind - 1];
	bool is_long = strncmp(arg, "--", 2) == 0;

	if (missing_arg && is_long)
		io_error("option '%s' requires an argument", arg);
	else if (missing_arg)
		io_error("option requires an argument -- '%c'", optopt);
	else if (optopt && !is_long)
		io_error("invalid option -- '%c'", optopt);
	else
		io_error("unrecognized option '%s'", arg);
	fputs(io_usage_text, stdout);
}

struct io_cmdline {
	struct io_open_req req;
	char **cmds;
	size_t ncmds;
	bool image_opts;
};

static int io_add_cmd(struct io_cmdline *cl, char *cmd)
{
	char **n = realloc(cl->cmds, (cl->ncmds + 1) * sizeof(*n));

	if (!n) {
		io_error("out of memory");
		return -1;
	}
	cl->cmds = n;
	cl->cmds[cl->ncmds++] = cmd;
	return 0;
}

/*
 * --object: secrets go to the shared store (for encrypted images); other
 * objects are refused with qemu's words.  0, or 1 + the exit status.
 */
static int io_add_object(const char *spec)
{
	struct qerr e = { 0 };
	int ret = secret_object_add(spec, &e);

	if (ret < 0) {
		io_error("%s", qerr_msg(&e));
		return 2;
	}
	if (ret > 0) {
		fputs(secret_object_help(ret), stdout);
		return 1;
	}
	return 0;
}

/* Parse argv; 0 to go on, else 1 + the exit status (help, errors). */
static int io_parse_cmdline(int argc, char **argv, struct io_cmdline *cl)
{
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hVc:d:f:rsnCmkt:T:Ui:",
				io_longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(io_usage_text, stdout);
			return 1;
		case 'V':
			printf("qimg io version " QIMG_VERSION "\n");
			return 1;
		case 'c':
			if (io_add_cmd(cl, optarg) < 0)
				return 2;
			break;
		case 'd':
			if (io_parse_discard(optarg, &cl->req.unmap) < 0)
				return 2;
			break;
		case 'f':
			cl->req.fmt = optarg;
			break;
		case 'r':
			cl->req.read_only = true;
			break;
		case 's':
			io_error("snapshot mode (-s) is not supported");
			return 2;
		case 'n':
			cl->req.direct = true;
			break;
		case 'C':
			cl->req.copy_on_read = true;
			break;
		case 'k':
			cl->req.native_aio = true;
			break;
		case 't':
			if (io_parse_cache(optarg, &cl->req.direct) < 0)
				return 2;
			break;
		case 'i':
			if (io_parse_aio(optarg, &cl->req.native_aio) < 0)
				return 2;
			break;
		case 'U':
			cl->req.force_share = true;
			break;
		case 'm':
		case 'T':
			break;
		case OPT_OBJECT:
			ret = io_add_object(optarg);
			if (ret)
				return ret;
			break;
		case OPT_IMAGE_OPTS:
			cl->image_opts = true;
			break;
		default:
			io_cmdline_error(argv, c == ':');
			return 2;
		}
	}
	if (argc - optind > 1) {
		fputs(io_usage_text, stdout);
		return 2;
	}
	if (cl->image_opts && cl->req.fmt) {
		io_error("--image-opts and -f are mutually exclusive");
		return 2;
	}
	return 0;
}

int cmd_io(int argc, char **argv)
{
	struct io_ctx io = { .unmap = true };
	struct io_cmdline cl = { .req = { .unmap = true } };
	int status, ret;

	ret = io_parse_cmdline(argc, argv, &cl);
	if (ret) {
		free(cl.cmds);
		secret_store_clear();
		return ret - 1;
	}
	if (optind < argc) {
		cl.req.filename = argv[optind];
		cl.req.image_opts = cl.image_opts;
	}
	if (cl.req.filename && io_open_image(&io, &cl.req) < 0)
		status = 1;
	else if (cl.ncmds)
		status = io_run_cmds(&io, cl.cmds, cl.ncmds);
	else
		status = io_run_stdin(&io);
	if (io.img && (io.img->flags & IMG_RDWR) && img_flush(io.img) < 0)
		status = 1;
	img_close(io.img);
	free(cl.cmds);
	secret_store_clear();
	return status;
}
