/*
 * convert.h: copy one or more images, concatenated, into a target image:
 * the core of "qimg convert", without option parsing or printing.
 *
 * The caller opens the sources (with their backing chains) and the target
 * and describes the copy in struct convert_opts; convert_run() does it:
 *   - a planner walks the sources' block status through their chains
 *     (chain.h) so that unallocated and zero ranges are never read, and,
 *     with a target backing file, ranges the source's own backing provides
 *     are never written;
 *   - worker threads read the data ranges (each through its own handle on
 *     the source, so formats need not be thread-safe) in chunks of a few
 *     MiB, find zero runs (-S, sparse.h) or compress clusters
 *     (compress_pipeline.h);
 *   - the calling thread writes the chunks in guest order, so the target
 *     is byte-identical whatever the number of threads, and flushes it
 *     once at the end; a raw target is written by the workers themselves
 *     (any order gives the same file), errors still reported in order.
 * Memory is bounded: a ring of 2 * threads + 2 chunk buffers.
 */
#ifndef QIMG_CORE_CONVERT_H
#define QIMG_CORE_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/img.h"

struct convert_opts {
	struct img **srcs;	/* opened with their chains, read-only */
	size_t nb_srcs;
	/*
	 * Open another read handle on source i for a worker thread, the way
	 * the caller opened srcs[i].  NULL: workers share srcs[i] and take
	 * turns reading it.
	 */
	int (*reopen)(void *opaque, size_t i, struct img **out,
		      struct qerr *e);
	void *opaque;

	struct img *target;	/* opened for writing, at least total size */
	/*
	 * Open another write handle on the target, for worker threads that
	 * write raw targets themselves.  NULL: only the calling thread writes.
	 */
	int (*reopen_target)(void *opaque, struct img **out, struct qerr *e);
	uint64_t target_cluster; /* allocation unit of the target, 0: none */
	bool zero_init;		/* every target byte reads as zero now */
	/*
	 * The target's backing file is the source's own backing file (-B):
	 * copy only what the (single) source's top layer allocates.
	 */
	bool target_has_backing;

	uint64_t min_sparse;	/* -S in bytes (multiple of 512); 0: write all */
	bool compress;		/* write compressed clusters (-c) */
	bool copy_range;	/* try copy_file_range for raw to raw (-C) */
	bool salvage;		/* unreadable sectors become zeros */
	unsigned threads;	/* worker threads, >= 1 */
	uint64_t rate_limit;	/* bytes per second, 0: none */
	bool sync;		/* fdatasync at the end (cache mode not unsafe) */

	/*
	 * Progress: when set, the data to copy is counted first and
	 * progress(opaque, done, total) is called after each chunk.
	 */
	void (*progress)(void *opaque, uint64_t done, uint64_t total);
	/* Salvage warnings, in guest order, from the calling thread. */
	void (*warn)(void *opaque, const char *msg);
};

/* Where and why a copy failed. */
struct convert_error {
	int code;		/* negative errno */
	int src;		/* failing source index, -1: the target */
	char msg[QERR_MSG_MAX];	/* "error while reading at byte N: ..." */
};

/*
 * Copy as described.  Returns 0, or a negative errno with err filled in
 * (the target then holds a partial copy).
 */
int convert_run(const struct convert_opts *o, struct convert_error *err);

#endif
