/*
 * io_rw.c: the qemu-io commands that move data: read, readv, aio_read,
 * write, writev, aio_write, aio_flush and discard.
 *
 * Each command checks its options and arguments in the order qemu-io 7.2
 * does (which decides the message a script sees when several are wrong),
 * then runs one timed operation through img_read/img_write/
 * img_write_zeroes/img_discard in chunks of IO_CHUNK bytes, then prints:
 * the pattern verdict, the hex dump (-v) and the statistics, unless -q.
 * Requests outside the image fail with EIO before reaching the image, as
 * qemu's block layer fails them.  The aio_ commands run synchronously.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/io.h"

/* Data moves in pieces of this size; one "op" may span many. */
#define IO_CHUNK (1 << 20)

/* What a write puts in the image: a byte pattern, or a file repeated. */
struct io_source {
	uint8_t pattern;
	uint8_t *data;		/* write -s: the file's bytes, or NULL */
	size_t data_len;
};

/* A read's pattern check over [start, start+len) of the request. */
struct io_verify {
	bool on;
	uint8_t pattern;
	int64_t start;
	int64_t len;
	bool failed;
};

/* The flags a read or write command collects. */
struct io_rw_opts {
	bool quiet;		/* -q */
	bool machine;		/* -C */
	bool dump;		/* -v */
	bool zero;		/* -z */
	bool unmap;		/* -u */
	bool no_fallback;	/* -n */
	bool fua;		/* -f */
	bool vmstate;		/* -b */
	bool compressed;	/* -c */
	bool invalid;		/* -i */
	bool has_pattern;	/* -P */
	bool has_start;		/* read -s */
	bool has_len;		/* read -l */
	bool s_is_file;		/* -s names a source file (write) */
	struct io_source src;
	struct io_verify verify;
	const char *src_file;	/* -s FILE (write) */
};

/* Fill buf with the bytes the source puts at [pos, pos+len) of a request. */
static void io_source_fill(const struct io_source *s, uint8_t *buf,
			   uint64_t pos, size_t len)
{
	size_t done = 0;

	if (!s->data) {
		memset(buf, s->pattern, len);
		return;
	}
	while (done < len) {
		size_t at = (size_t)((pos + done) % s->data_len);
		size_t n = s->data_len - at;

		if (n > len - done)
			n = len - done;
		memcpy(buf + done, s->data + at, n);
		done += n;
	}
}

/* Check the part of [pos, pos+len) of the request that the check covers. */
static void io_verify_chunk(struct io_verify *v, const uint8_t *buf,
			    int64_t pos, int64_t len)
{
	int64_t from = v->start > pos ? v->start : pos;
	int64_t to = v->start + v->len < pos + len ? v->start + v->len
						    : pos + len;

	if (!v->on || v->failed)
		return;
	for (int64_t i = from; i < to; i++) {
		if (buf[i - pos] != v->pattern) {
			v->failed = true;
			return;
		}
	}
}

/* qemu-io's dump: 16 bytes a line, hex, then letters and digits only. */
static void io_dump(const uint8_t *buf, int64_t off, int64_t len)
{
	for (int64_t i = 0; i < len; i += 16) {
		int64_t n = len - i < 16 ? len - i : 16;

		printf("%08" PRIx64 ":  ", (uint64_t)(off + i));
		for (int64_t j = 0; j < n; j++)
			printf("%02x ", buf[i + j]);
		putchar(' ');
		for (int64_t j = 0; j < n; j++) {
			unsigned char c = buf[i + j];

			putchar((c >= '0' && c <= '9') ||
						(c >= 'a' && c <= 'z') ||
						(c >= 'A' && c <= 'Z')
					? c
					: '.');
		}
		putchar('\n');
	}
}

/* qemu's block layer refuses requests past the end with EIO. */
static int io_check_range(const struct img *img, int64_t off, int64_t len)
{
	if ((uint64_t)off > img->size || (uint64_t)len > img->size - off)
		return -EIO;
	return 0;
}

/*
 * -C: copy what the backing chain shows through into this image, as
 * qemu's copy-on-read does, so later reads find it allocated here.
 */
static int io_copy_up(struct img *img, int64_t off, const uint8_t *buf,
		      int64_t len)
{
	struct img_bstatus st;
	int64_t pos = 0;

	while (pos < len) {
		int ret = img_block_status(img, off + pos, len - pos, &st);

		if (ret < 0)
			return ret;
		if (st.len == 0)
			break;
		if (!(st.flags & IMG_BS_ALLOCATED)) {
			ret = img_write(img, off + pos, buf + pos, st.len);
			if (ret < 0)
				return ret;
		}
		pos += st.len;
	}
	return 0;
}

static int io_read_range(struct io_ctx *io, int64_t off, uint8_t *buf,
			 int64_t len)
{
	int ret = img_read(io->img, off, buf, len);

	if (ret == 0 && io->copy_on_read && io->img->backing &&
	    (io->img->flags & IMG_RDWR))
		ret = io_copy_up(io->img, off, buf, len);
	return ret;
}

/*
 * One timed read of count bytes at off, then the verdict, dump and
 * statistics.  failop names the operation in "%s failed: ...".
 */
static int io_do_read(struct io_ctx *io, const char *failop, int64_t off,
		      int64_t count, struct io_rw_opts *o)
{
	size_t bufsize = o->dump ? (size_t)count
				 : (size_t)(count < IO_CHUNK ? count : IO_CHUNK);
	uint8_t *buf = malloc(bufsize ? bufsize : 1);
	struct io_timer t;
	int64_t pos = 0;
	int ret;

	if (!buf) {
		printf("%s failed: %s\n", failop, io_strerror(-ENOMEM));
		return -1;
	}
	io_timer_start(&t);
	ret = io_check_range(io->img, off, count);
	while (ret == 0 && pos < count) {
		int64_t n = count - pos < (int64_t)bufsize ? count - pos
							    : (int64_t)bufsize;
		uint8_t *p = o->dump ? buf + pos : buf;

		ret = io_read_range(io, off + pos, p, n);
		if (ret == 0)
			io_verify_chunk(&o->verify, p, pos, n);
		pos += n;
	}
	io_timer_stop(&t);
	if (ret < 0) {
		printf("%s failed: %s\n", failop, io_strerror(ret));
		free(buf);
		return -1;
	}
	if (o->verify.failed)
		printf("Pattern verification failed at offset %" PRId64
		       ", %" PRId64 " bytes\n",
		       off + o->verify.start, o->verify.len);
	if (!o->quiet) {
		if (o->dump)
			io_dump(buf, off, count);
		io_print_report("read", &t, off, count, o->machine);
	}
	free(buf);
	return o->verify.failed ? -1 : 0;
}

/*
 * A format was guessed as raw: refuse a write that would make sector 0
 * probe as another format (qemu's guard against a guest turning its disk
 * into, say, a qcow2 header that points at host files).
 */
static int io_probe_guard(struct io_ctx *io, int64_t off, int64_t count,
			  const struct io_source *src)
{
	const struct img_driver *const *drv = img_drivers();
	uint8_t sector[512] = { 0 };
	uint64_t have = io->img->size < 512 ? io->img->size : 512;
	int64_t n = count < 512 - off ? count : 512 - off;
	int raw_score, ret;

	if (!io->probed_raw || off >= 512 || count == 0)
		return 0;
	ret = img_read(io->img, 0, sector, have);
	if (ret < 0)
		return ret;
	io_source_fill(src, sector + off, 0, n);
	raw_score = raw_driver.probe(sector, sizeof(sector));
	for (; *drv; drv++)
		if (*drv != &raw_driver && (*drv)->probe &&
		    (*drv)->probe(sector, sizeof(sector)) > raw_score)
			return -EPERM;
	return 0;
}

static int io_write_data(struct io_ctx *io, int64_t off, int64_t count,
			 const struct io_source *src)
{
	size_t bufsize = count < IO_CHUNK ? (size_t)count : IO_CHUNK;
	uint8_t *buf;
	int ret = io_probe_guard(io, off, count, src);

	if (ret < 0 || count == 0)
		return ret;
	buf = malloc(bufsize);
	if (!buf)
		return -ENOMEM;
	for (int64_t pos = 0; ret == 0 && pos < count; pos += bufsize) {
		size_t n = count - pos < (int64_t)bufsize ? (size_t)(count - pos)
							   : bufsize;

		io_source_fill(src, buf, pos, n);
		ret = img_write(io->img, off + pos, buf, n);
	}
	free(buf);
	return ret;
}

/*
 * write -c: one request for the whole range, as qemu makes it, so the
 * format checks the alignment before any cluster is written.
 */
static int io_write_compressed(struct io_ctx *io, int64_t off, int64_t count,
			       const struct io_source *src)
{
	uint8_t *buf = malloc(count ? (size_t)count : 1);
	int ret;

	if (!buf)
		return -ENOMEM;
	io_source_fill(src, buf, 0, (size_t)count);
	ret = img_write_compressed(io->img, off, buf, (size_t)count);
	free(buf);
	return ret;
}

/* One timed write (data, zeros or compressed), then the statistics. */
static int io_do_write(struct io_ctx *io, const char *failop, int64_t off,
		       int64_t count, const struct io_rw_opts *o)
{
	struct io_timer t;
	int ret;

	io_timer_start(&t);
	ret = io_check_range(io->img, off, count);
	if (ret == 0 && o->vmstate)
		ret = -ENOTSUP;
	else if (ret == 0 && o->zero && count > 0)
		ret = img_write_zeroes(io->img, off, count,
				       o->unmap ? IMG_ZERO_MAY_UNMAP : 0);
	else if (ret == 0 && o->compressed)
		ret = io_write_compressed(io, off, count, &o->src);
	else if (ret == 0 && !o->zero)
		ret = io_write_data(io, off, count, &o->src);
	if (ret == 0 && o->fua)
		ret = img_flush(io->img);
	io_timer_stop(&t);
	if (ret < 0) {
		printf("%s failed: %s\n", failop, io_strerror(ret));
		return -1;
	}
	if (!o->quiet)
		io_print_report("wrote", &t, off, count, o->machine);
	return 0;
}

/*
 * The lengths of readv/writev/aio_*: each one and their sum at most
 * IO_MAX_REQUEST, with qemu-io's messages.
 */
static int io_parse_lengths(int n, char **args, int64_t *total)
{
	*total = 0;
	for (int i = 0; i < n; i++) {
		int64_t len;

		if (io_parse_num(args[i], &len) < 0)
			return -1;
		if (len > IO_MAX_REQUEST) {
			printf("Argument '%s' exceeds maximum size %lld\n",
			       args[i], IO_MAX_REQUEST);
			return -1;
		}
		if (*total > IO_MAX_REQUEST - len) {
			printf("The total number of bytes exceed the maximum "
			       "size %lld\n", IO_MAX_REQUEST);
			return -1;
		}
		*total += len;
	}
	return 0;
}

/*
 * The option letters the data commands share.  Returns 0, or -1 after
 * printing the complaint (bad pattern, bad number, unknown option).
 */
static int io_rw_getopt(struct io_ctx *io, int argc, char **argv,
			const char *optstring, struct io_rw_opts *o)
{
	int c;

	opterr = 0;
	while ((c = getopt(argc, argv, optstring)) != -1) {
		switch (c) {
		case 'b': o->vmstate = true; break;
		case 'c': o->compressed = true; break;
		case 'C': o->machine = true; break;
		case 'f': o->fua = true; break;
		case 'i': o->invalid = true; break;
		case 'n': o->no_fallback = true; break;
		case 'p': break;	/* ignored, as in qemu-io */
		case 'q': o->quiet = true; break;
		case 'u': o->unmap = true; break;
		case 'v': o->dump = true; break;
		case 'z': o->zero = true; break;
		case 'P':
			o->has_pattern = true;
			if (io_parse_pattern(optarg, &o->src.pattern) < 0)
				return -1;
			o->verify.pattern = o->src.pattern;
			break;
		case 's':
			if (o->s_is_file) {
				o->src_file = optarg;
				break;
			}
			if (io_parse_num(optarg, &o->verify.start) < 0)
				return -1;
			o->has_start = true;
			break;
		case 'l':
			if (io_parse_num(optarg, &o->verify.len) < 0)
				return -1;
			o->has_len = true;
			break;
		default:
			io_bad_option(argv[0], optopt, c == ':');
			io_print_usage(io->cur);
			return -1;
		}
	}
	return 0;
}

/* read, write and discard end with "off len": anything else is usage. */
static int io_want_off_len(struct io_ctx *io, int argc)
{
	if (optind != argc - 2) {
		io_print_usage(io->cur);
		return -1;
	}
	return 0;
}

/*
 * Parse "off len" and hold len to qemu's request limit unless unlimited;
 * how completes qemu-io's message ("" or " without -n").
 */
static int io_parse_off_len(char **argv, int64_t *off, int64_t *count,
			    bool unlimited, const char *how)
{
	if (io_parse_num(argv[optind], off) < 0 ||
	    io_parse_num(argv[optind + 1], count) < 0)
		return -1;
	if (*count > IO_MAX_REQUEST && !unlimited) {
		printf("length cannot exceed %lld%s, given %s\n",
		       IO_MAX_REQUEST, how, argv[optind + 1]);
		return -1;
	}
	return 0;
}

/* read [-abCqv] [-P pattern [-s off] [-l len]] off len */
int io_read(struct io_ctx *io, int argc, char **argv)
{
	struct io_rw_opts o = { 0 };
	int64_t off, count;

	if (io_rw_getopt(io, argc, argv, ":bCl:pP:qs:v", &o) < 0 ||
	    io_want_off_len(io, argc) < 0 ||
	    io_parse_off_len(argv, &off, &count, false, "") < 0)
		return -1;
	if (!o.has_pattern && (o.has_start || o.has_len)) {
		io_print_usage(io->cur);
		return -1;
	}
	if (!o.has_len)
		o.verify.len = count - o.verify.start;
	if (o.verify.len < 0 || o.verify.start > count - o.verify.len) {
		printf("pattern verification range exceeds end of read "
		       "data\n");
		return -1;
	}
	o.verify.on = o.has_pattern;
	if (o.vmstate) {
		if (off & 511) {
			printf("%" PRId64 " is not a sector-aligned value for "
			       "'offset'\n", off);
			return -1;
		}
		if (count & 511) {
			printf("%" PRId64 " is not a sector-aligned value for "
			       "'count'\n", count);
			return -1;
		}
		printf("read failed: %s\n", io_strerror(-ENOTSUP));
		return -1;
	}
	return io_do_read(io, "read", off, count, &o);
}

/* readv and aio_read: off len [len..], the whole range checked by -P. */
static int io_readv_common(struct io_ctx *io, int argc, char **argv,
			   const char *optstring, const char *failop)
{
	struct io_rw_opts o = { 0 };
	int64_t off, count;

	if (io_rw_getopt(io, argc, argv, optstring, &o) < 0)
		return -1;
	if (optind > argc - 2) {
		io_print_usage(io->cur);
		return -1;
	}
	if (o.invalid) {
		printf("injecting invalid read request\n");
		return 0;
	}
	if (io_parse_num(argv[optind], &off) < 0 ||
	    io_parse_lengths(argc - optind - 1, argv + optind + 1, &count) < 0)
		return -1;
	o.verify.on = o.has_pattern;
	o.verify.start = 0;
	o.verify.len = count;
	return io_do_read(io, failop, off, count, &o);
}

/* readv [-Cqv] [-P pattern] off len [len..] */
int io_readv(struct io_ctx *io, int argc, char **argv)
{
	return io_readv_common(io, argc, argv, ":CqvP:", "readv");
}

/* aio_read [-Ciqv] [-P pattern] off len [len..] */
int io_aio_read(struct io_ctx *io, int argc, char **argv)
{
	return io_readv_common(io, argc, argv, ":CiqvP:", "readv");
}

/* Read the -s file whose bytes a write repeats; errors on stderr. */
static int io_load_source(const char *path, struct io_source *src)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		err = errno;
	} else if (st.st_size == 0 && !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: file is empty\n", path);
		close(fd);
		return -1;
	} else if (!(src->data = malloc(st.st_size ? st.st_size : 1))) {
		err = ENOMEM;
	} else if ((n = pread(fd, src->data, st.st_size, 0)) < 0) {
		err = errno;
	} else if (n == 0) {
		err = EISDIR;
	} else {
		src->data_len = (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (err) {
		fprintf(stderr, "%s: %s\n", path, strerror(err));
		free(src->data);
		src->data = NULL;
		return -1;
	}
	return 0;
}

/* write's flag combinations, checked in qemu-io's order. */
static int io_write_flags_ok(const struct io_rw_opts *o)
{
	const char *msg = NULL;

	if (o->vmstate && o->zero)
		msg = "-b and -z cannot be specified at the same time";
	else if (o->fua && (o->vmstate || o->compressed))
		msg = "-f and -b or -c cannot be specified at the same time";
	else if (o->zero + o->has_pattern + !!o->src_file > 1)
		msg = "Only one of -z, -P, and -s can be specified at the "
		      "same time";
	else if (o->no_fallback && !o->zero)
		msg = "-n requires -z to be specified";
	else if (o->unmap && !o->zero)
		msg = "-u requires -z to be specified";
	if (msg)
		printf("%s\n", msg);
	return msg ? -1 : 0;
}

static int io_check_aligned(int64_t v, const char *what)
{
	if (v & 511) {
		printf("%" PRId64 " is not a sector-aligned value for '%s'\n", v,
		       what);
		return -1;
	}
	return 0;
}

/* write [-bcCfnquz] [-P pattern | -s source_file] off len */
int io_write(struct io_ctx *io, int argc, char **argv)
{
	struct io_rw_opts o = { .src.pattern = 0xcd, .s_is_file = true };
	int64_t off, count;
	int ret;

	if (io_rw_getopt(io, argc, argv, ":bcCfnpP:qs:uz", &o) < 0 ||
	    io_want_off_len(io, argc) < 0 || io_write_flags_ok(&o) < 0 ||
	    io_parse_off_len(argv, &off, &count, o.no_fallback,
			     " without -n") < 0)
		return -1;
	if ((o.vmstate || o.compressed) &&
	    (io_check_aligned(off, "offset") < 0 ||
	     io_check_aligned(count, "count") < 0))
		return -1;
	if (o.src_file && io_load_source(o.src_file, &o.src) < 0)
		return -1;
	ret = io_do_write(io, "write", off, count, &o);
	free(o.src.data);
	return ret;
}

/* writev [-Cfq] [-P pattern] off len [len..] */
int io_writev(struct io_ctx *io, int argc, char **argv)
{
	struct io_rw_opts o = { .src.pattern = 0xcd };
	int64_t off, count;

	if (io_rw_getopt(io, argc, argv, ":CfqP:", &o) < 0)
		return -1;
	if (optind > argc - 2) {
		io_print_usage(io->cur);
		return -1;
	}
	if (io_parse_num(argv[optind], &off) < 0 ||
	    io_parse_lengths(argc - optind - 1, argv + optind + 1, &count) < 0)
		return -1;
	return io_do_write(io, "writev", off, count, &o);
}

/* aio_write [-Cfiquz] [-P pattern] off len [len..] */
int io_aio_write(struct io_ctx *io, int argc, char **argv)
{
	struct io_rw_opts o = { .src.pattern = 0xcd };
	int64_t off, count;

	if (io_rw_getopt(io, argc, argv, ":CfiqP:uz", &o) < 0)
		return -1;
	if (optind > argc - 2) {
		io_print_usage(io->cur);
		return -1;
	}
	if (o.invalid) {
		printf("injecting invalid write request\n");
		return 0;
	}
	if (o.zero && optind != argc - 2) {
		printf("-z supports only a single length parameter\n");
		return -1;
	}
	if (o.unmap && !o.zero) {
		printf("-u requires -z to be specified\n");
		return -1;
	}
	if (io_parse_num(argv[optind], &off) < 0)
		return -1;
	if (o.zero ? io_parse_num(argv[optind + 1], &count) < 0
		   : io_parse_lengths(argc - optind - 1, argv + optind + 1,
				      &count) < 0)
		return -1;
	return io_do_write(io, "aio_write", off, count, &o);
}

/* aio_flush: every aio request already completed when it was issued. */
int io_aio_flush(struct io_ctx *io, int argc, char **argv)
{
	return 0;
}

/* discard [-Cq] off len */
int io_discard(struct io_ctx *io, int argc, char **argv)
{
	struct io_rw_opts o = { 0 };
	struct io_timer t;
	int64_t off, count;
	int ret;

	if (io_rw_getopt(io, argc, argv, ":Cq", &o) < 0 ||
	    io_want_off_len(io, argc) < 0 ||
	    io_parse_off_len(argv, &off, &count, false, "") < 0)
		return -1;
	io_timer_start(&t);
	ret = io_check_range(io->img, off, count);
	if (ret == 0 && io->unmap && count > 0)
		ret = img_discard(io->img, off, count);
	io_timer_stop(&t);
	if (ret < 0) {
		printf("discard failed: %s\n", io_strerror(ret));
		return -1;
	}
	if (!o.quiet)
		io_print_report("discard", &t, off, count, o.machine);
	return 0;
}
