/*
 * io_misc.c: the qemu-io commands that do not move data: alloc and map
 * (allocation in the top image, from img_block_status), info, length,
 * truncate, flush, and the session commands (help, quit, sleep, sigraise,
 * abort, and the blkdebug breakpoint commands, which need a debug driver
 * qimg does not have).
 *
 * "Allocated" means what qemu's bdrv_is_allocated means: this layer
 * decides the content of the range (data, or zeros recorded here), as
 * opposed to the backing file showing through.  Raw images are allocated
 * everywhere.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/io.h"
#include "core/resize.h"
#include "util/render.h"

/*
 * Is the run at off allocated in the top image?  *num is its length, at
 * most bytes and never past the end; 0 at or after the end of the image.
 */
static int io_is_allocated(struct img *img, int64_t off, int64_t bytes,
			   int64_t *num, bool *alloc)
{
	struct img_bstatus st;
	int ret;

	*num = 0;
	*alloc = false;
	if ((uint64_t)off >= img->size || bytes <= 0)
		return 0;
	if ((uint64_t)bytes > img->size - off)
		bytes = (int64_t)(img->size - off);
	ret = img_block_status(img, off, bytes, &st);
	if (ret < 0)
		return ret;
	*num = st.len < (uint64_t)bytes ? (int64_t)st.len : bytes;
	*alloc = (st.flags & IMG_BS_ALLOCATED) != 0;
	return 0;
}

/* alloc offset [count]: "N/M bytes allocated at offset X" */
int io_alloc(struct io_ctx *io, int argc, char **argv)
{
	int64_t off, start, count = 512, remaining, sum = 0;
	char s[64];

	if (io_parse_num(argv[1], &off) < 0)
		return -1;
	if (argc == 3 && io_parse_num(argv[2], &count) < 0)
		return -1;
	start = off;
	remaining = count;
	while (remaining > 0) {
		int64_t num;
		bool alloc;
		int ret = io_is_allocated(io->img, off, remaining, &num,
					  &alloc);

		if (ret < 0) {
			printf("is_allocated failed: %s\n", io_strerror(ret));
			return -1;
		}
		if (num == 0) {
			/* Past the end: count only what the image has. */
			count -= remaining;
			break;
		}
		if (alloc)
			sum += num;
		off += num;
		remaining -= num;
	}
	io_size_str((double)start, s, sizeof(s));
	printf("%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n", sum,
	       count, s);
	return 0;
}

/* map: runs of equal allocation, merged, from 0 to the end. */
int io_map(struct io_ctx *io, int argc, char **argv)
{
	int64_t off = 0, bytes = (int64_t)io->img->size;

	while (bytes > 0) {
		int64_t num, more;
		bool alloc, next;
		char s1[64], s2[64];
		int ret = io_is_allocated(io->img, off, bytes, &num, &alloc);

		while (ret == 0 && num > 0 && num < bytes) {
			ret = io_is_allocated(io->img, off + num, bytes - num,
					      &more, &next);
			if (ret < 0 || more == 0 || next != alloc)
				break;
			num += more;
		}
		if (ret < 0) {
			io_error("Failed to get allocation status: %s",
				 io_strerror(ret));
			return -1;
		}
		if (num == 0) {
			io_error("Unexpected end of image");
			return -1;
		}
		io_size_str((double)num, s1, sizeof(s1));
		io_size_str((double)off, s2, sizeof(s2));
		printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64
		       ")\n",
		       s1, (uint64_t)num, alloc ? "    allocated" : "not allocated",
		       s2, (uint64_t)off);
		off += num;
		bytes -= num;
	}
	return 0;
}

/*
 * Where qcow2 keeps VM state: right after the guest data, at the virtual
 * size rounded up to what one L2 table maps.
 */
static uint64_t io_vmstate_offset(const struct img *img,
				  const struct img_info *info)
{
	const struct kv *el2;
	unsigned cbits = 0, shift;

	if (strcmp(img->drv->name, "qcow2") != 0 || info->cluster_size == 0)
		return 0;
	while ((1U << cbits) < info->cluster_size)
		cbits++;
	el2 = info->format_specific
		      ? kv_get(info->format_specific, "extended-l2")
		      : NULL;
	/* An L2 table has cluster_size / 8 entries (16-byte ones with el2). */
	shift = cbits + cbits - (el2 && el2->v.b ? 4 : 3);
	if (shift >= 63)
		return 0;
	return (img->size + (1ULL << shift) - 1) >> shift << shift;
}

int io_info(struct io_ctx *io, int argc, char **argv)
{
	struct img_info info;
	char s1[64], s2[64];
	int ret = img_info_get(io->img, &info);

	if (ret < 0) {
		io_error("%s", qerr_msg(&io->img->err));
		qerr_clear(&io->img->err);
		img_info_free(&info);
		return -1;
	}
	printf("format name: %s\n", io->img->drv->name);
	io_size_str((double)info.cluster_size, s1, sizeof(s1));
	io_size_str((double)io_vmstate_offset(io->img, &info), s2, sizeof(s2));
	printf("cluster size: %s\n", s1);
	printf("vm state offset: %s\n", s2);
	if (info.format_specific) {
		printf("Format specific information:\n");
		render_kv(stdout, info.format_specific, 1);
	}
	img_info_free(&info);
	return 0;
}

int io_length(struct io_ctx *io, int argc, char **argv)
{
	char s[64];

	io_size_str((double)io->img->size, s, sizeof(s));
	printf("%s\n", s);
	return 0;
}

/* truncate [-m prealloc_mode] off: img_resize, as qemu-img resize does. */
int io_truncate(struct io_ctx *io, int argc, char **argv)
{
	static const struct {
		const char *name;
		enum img_prealloc mode;
	} modes[] = {
		{ "off", IMG_PREALLOC_OFF },
		{ "metadata", IMG_PREALLOC_METADATA },
		{ "falloc", IMG_PREALLOC_FALLOC },
		{ "full", IMG_PREALLOC_FULL },
	};
	enum img_prealloc mode = IMG_PREALLOC_OFF;
	int64_t size;
	size_t i;
	int c;

	opterr = 0;
	while ((c = getopt(argc, argv, ":m:")) != -1) {
		if (c != 'm') {
			io_bad_option(argv[0], optopt, c == ':');
			io_print_usage(io->cur);
			return -1;
		}
		for (i = 0; i < sizeof(modes) / sizeof(modes[0]) &&
			    strcmp(modes[i].name, optarg) != 0;
		     i++)
			;
		if (i == sizeof(modes) / sizeof(modes[0])) {
			io_error("Invalid preallocation mode '%s'", optarg);
			return -1;
		}
		mode = modes[i].mode;
	}
	/* qemu-io ignores extra arguments (and crashes on a missing one). */
	if (optind >= argc) {
		io_print_usage(io->cur);
		return -1;
	}
	if (io_parse_num(argv[optind], &size) < 0)
		return -1;
	if (img_resize(io->img, (uint64_t)size, mode) < 0) {
		io_error("%s", qerr_msg(&io->img->err));
		qerr_clear(&io->img->err);
		return -1;
	}
	return 0;
}

int io_flush(struct io_ctx *io, int argc, char **argv)
{
	if (img_flush(io->img) < 0) {
		io_error("%s", qerr_msg(&io->img->err));
		qerr_clear(&io->img->err);
		return -1;
	}
	return 0;
}

/* help [command] */
int io_help(struct io_ctx *io, int argc, char **argv)
{
	const struct io_cmd *cmd;

	if (argc == 1) {
		for (int i = 0; io_cmds[i].name; i++)
			io_print_usage(&io_cmds[i]);
		printf("\nUse 'help commandname' for extended help.\n");
		return 0;
	}
	cmd = io_cmd_find(argv[1]);
	if (!cmd) {
		printf("command %s not found\n", argv[1]);
		return -1;
	}
	io_print_usage(cmd);
	if (cmd->help)
		fputs(cmd->help, stdout);
	return 0;
}

int io_quit(struct io_ctx *io, int argc, char **argv)
{
	io->quit = true;
	return 0;
}

/* sleep MS */
int io_sleep(struct io_ctx *io, int argc, char **argv)
{
	struct timespec ts;
	char *end;
	long ms = strtol(argv[1], &end, 0);

	if (ms < 0 || *end) {
		printf("%s is not a valid number\n", argv[1]);
		return -1;
	}
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = ms % 1000 * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return 0;
}

/* sigraise SIGNAL: stdout is flushed first, as in qemu-io. */
int io_sigraise(struct io_ctx *io, int argc, char **argv)
{
	int64_t sig;

	if (io_parse_num(argv[1], &sig) < 0)
		return -1;
	if (sig > NSIG) {
		printf("signal argument '%s' is too large to be a valid "
		       "signal\n", argv[1]);
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	raise((int)sig);
	return 0;
}

/* abort: like qemu-io, without flushing, so buffered stdout is lost. */
int io_abort(struct io_ctx *io, int argc, char **argv)
{
	abort();
}

int io_break(struct io_ctx *io, int argc, char **argv)
{
	printf("Could not set breakpoint: %s\n", io_strerror(-ENOTSUP));
	return -1;
}

int io_remove_break(struct io_ctx *io, int argc, char **argv)
{
	printf("Could not remove breakpoint %s: %s\n", argv[1],
	       io_strerror(-ENOTSUP));
	return -1;
}

int io_resume(struct io_ctx *io, int argc, char **argv)
{
	printf("Could not resume request: %s\n", io_strerror(-ENOTSUP));
	return -1;
}

/* qemu-io waits forever here without blkdebug; failing is kinder. */
int io_wait_break(struct io_ctx *io, int argc, char **argv)
{
	printf("Could not wait for breakpoint %s: %s\n", argv[1],
	       io_strerror(-ENOTSUP));
	return -1;
}
