/*
 * io.h: what the files of "qimg io" (io.c, io_rw.c, io_misc.c,
 * io_table.c) share: the session state, the command table entry, and the
 * helpers that print numbers, sizes and statistics exactly as qemu-io 7.2
 * does.  Nothing here is used outside src/cmd/io*.c.
 *
 * Conventions every command keeps: a command returns 0 on success and a
 * negative value on failure (the session then exits 1); what qemu-io prints
 * with printf goes to stdout, what it prints with error_report goes to
 * stderr with our "qimg: " prefix, argument-count and unknown-command
 * messages go to stderr without a prefix, as qemu-io prints them.
 *
 * Unlike the rest of qimg, stdout is not flushed before stderr is written:
 * qemu-io leaves stdout fully buffered when it is not a terminal (flushing
 * only after the interactive prompt and before sigraise), and scripts that
 * merge both streams (2>&1) see its stderr lines first.  Doing the same
 * keeps merged output identical.
 */
#ifndef QIMG_CMD_IO_H
#define QIMG_CMD_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/img.h"

/* qemu's BDRV_REQUEST_MAX_BYTES: the longest single request qemu-io takes. */
#define IO_MAX_REQUEST 2147483136LL

struct io_cmd;

/* One qemu-io session: at most one open image. */
struct io_ctx {
	const struct io_cmd *cur;	/* the command running (for usage) */
	struct img *img;	/* NULL when no file is open */
	bool probed_raw;	/* format guessed as raw: guard sector 0 */
	bool unmap;		/* discard mode unmap (qemu-io's default) */
	bool copy_on_read;	/* -C: copy backing data up on reads */
	bool quit;		/* "quit" was run */
};

enum io_cmd_flags {
	IO_NOFILE_OK = 1 << 0,	/* runs without an open file */
	IO_WRITES = 1 << 1,	/* needs a writable image */
};

struct io_cmd {
	const char *name;
	const char *alt;	/* one-letter alias, or NULL */
	int (*fn)(struct io_ctx *io, int argc, char **argv);
	int argmin;
	int argmax;		/* -1: no maximum */
	unsigned flags;		/* enum io_cmd_flags */
	const char *usage;	/* "name args -- one line", as help prints it */
	const char *help;	/* the extended help after a blank line, or NULL */
};

/* The command table (io_table.c), sorted by name, NULL-terminated. */
extern const struct io_cmd io_cmds[];
const struct io_cmd *io_cmd_find(const char *name);

/* Commands (io_rw.c). */
int io_read(struct io_ctx *io, int argc, char **argv);
int io_readv(struct io_ctx *io, int argc, char **argv);
int io_write(struct io_ctx *io, int argc, char **argv);
int io_writev(struct io_ctx *io, int argc, char **argv);
int io_aio_read(struct io_ctx *io, int argc, char **argv);
int io_aio_write(struct io_ctx *io, int argc, char **argv);
int io_aio_flush(struct io_ctx *io, int argc, char **argv);
int io_discard(struct io_ctx *io, int argc, char **argv);

/* Commands (io_misc.c). */
int io_alloc(struct io_ctx *io, int argc, char **argv);
int io_map(struct io_ctx *io, int argc, char **argv);
int io_info(struct io_ctx *io, int argc, char **argv);
int io_length(struct io_ctx *io, int argc, char **argv);
int io_truncate(struct io_ctx *io, int argc, char **argv);
int io_flush(struct io_ctx *io, int argc, char **argv);
int io_close(struct io_ctx *io, int argc, char **argv);
int io_sigraise(struct io_ctx *io, int argc, char **argv);
int io_sleep(struct io_ctx *io, int argc, char **argv);
int io_abort(struct io_ctx *io, int argc, char **argv);
int io_help(struct io_ctx *io, int argc, char **argv);
int io_quit(struct io_ctx *io, int argc, char **argv);
int io_break(struct io_ctx *io, int argc, char **argv);
int io_remove_break(struct io_ctx *io, int argc, char **argv);
int io_resume(struct io_ctx *io, int argc, char **argv);
int io_wait_break(struct io_ctx *io, int argc, char **argv);

/* Commands (io_open.c): opening and reopening images. */
int io_open(struct io_ctx *io, int argc, char **argv);
int io_reopen(struct io_ctx *io, int argc, char **argv);

/* How an image is to be opened (main options, "open" and --image-opts). */
struct io_open_req {
	const char *filename;	/* NULL: from the options only */
	const char *fmt;	/* -f, or NULL */
	char *opts;		/* -o / --image-opts text, or NULL */
	bool image_opts;	/* filename itself is an option string */
	bool read_only;
	bool force_share;
	bool native_aio;	/* aio=native: needs cache.direct */
	bool direct;		/* cache.direct (-n, -t none/directsync) */
	bool unmap;		/* discard=unmap */
	bool copy_on_read;	/* -C */
};

/* Open req into io->img; prints qemu-io's messages; 0 or -1. */
int io_open_image(struct io_ctx *io, const struct io_open_req *req);
/* Validate -t/-i/-d values with qemu-io's messages; 0 or -1. */
int io_parse_cache(const char *mode, bool *direct);
int io_parse_aio(const char *mode, bool *native);
int io_parse_discard(const char *mode, bool *unmap);

/* Run one command line (split on spaces); 0 or negative on failure. */
int io_run_line(struct io_ctx *io, char *line);

/*
 * qemu-io's cvtnum: a size with qemu's suffixes into *out (>= 0).  Prints
 * "Parsing error: ..." on stdout and returns -1 when s is not one.
 */
int io_parse_num(const char *s, int64_t *out);
/* qemu-io's pattern byte (strtol base 0, 0..255); prints and -1 if not. */
int io_parse_pattern(const char *s, uint8_t *out);
/* qemu-io's cvtstr: 512 -> "512 bytes", 1536 -> "1.500 KiB". */
void io_size_str(double v, char *buf, size_t len);
/* The usage line of cmd on stdout. */
void io_print_usage(const struct io_cmd *cmd);
/* Print a getopt complaint as glibc does: "read: invalid option -- 'X'". */
void io_bad_option(const char *cmd, int opt, bool missing_arg);

/* Statistics: start and end of the timed part of an operation. */
struct io_timer {
	struct timespec start;
	struct timespec end;
};
void io_timer_start(struct io_timer *t);
void io_timer_stop(struct io_timer *t);
/*
 * The two lines after an operation ("read 512/512 bytes at offset 0" and
 * "512 bytes, 1 ops; 00.00 sec (...)"), or with machine the one -C line.
 */
void io_print_report(const char *op, const struct io_timer *t, int64_t off,
		     int64_t count, bool machine);

/* "qimg: message" / "qimg: warning: message" on stderr, stdout untouched. */
void io_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void io_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* strerror of a negative errno, as "read failed: %s" prints it. */
const char *io_strerror(int ret);

#endif
