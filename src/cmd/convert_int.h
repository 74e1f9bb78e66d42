/*
 * convert_int.h (cmd): the parsed command line of "qimg convert", shared
 * by convert.c (parsing, early checks) and convert_open.c (opening,
 * creating, running, reporting).
 */
#ifndef QIMG_CMD_CONVERT_INT_H
#define QIMG_CMD_CONVERT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/opts.h"

#define CONVERT_MAX_THREADS 64

struct convert_args {
	const char *fmt, *out_fmt, *out_base, *base_fmt, *snapshot;
	const char *cache, *src_cache;
	struct optlist opts;	/* -o, accumulated */
	bool has_opts;
	bool image_opts, target_image_opts, target_is_zero, force_share;
	bool copy_range, compress, quiet, progress_human, progress_json;
	bool skip_create, salvage;
	bool explicit_sparse;
	uint64_t min_sparse;	/* bytes */
	uint64_t rate_limit;	/* bytes per second */
	unsigned threads;
	char **srcs;
	int nb_srcs;
	const char *out;
};

/* The keys of -l snapshot.id=ID,snapshot.name=NAME. */
extern const struct opt_desc convert_snapshot_opts[];
/* Is mode one of qemu's cache modes (none, writeback, ..., unsafe)? */
bool convert_valid_cache(const char *mode);
/* Open, create, copy, report; returns the exit status. */
int convert_main(struct convert_args *a);
/* "-o help": the target format's creation options; exit status. */
int convert_option_help(struct convert_args *a);

#endif
