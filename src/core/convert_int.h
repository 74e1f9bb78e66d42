/*
 * convert_int.h: state shared by the files of the convert core
 * (convert.c plans, convert_worker.c reads and compresses,
 * convert_write.c writes).  Not an API: see convert.h.
 */
#ifndef QIMG_CORE_CONVERT_INT_H
#define QIMG_CORE_CONVERT_INT_H

#include <pthread.h>

#include "core/convert.h"
#include "core/sparse.h"

/* Bytes read and written per DATA job (a 2 MiB request, as qemu-img). */
#define CONV_CHUNK (2u << 20)
/* Zero and skipped runs are merged up to this length per job. */
#define CONV_COALESCE_MAX (1ULL << 30)

enum job_kind {
	JOB_DATA,	/* read, find zeros or compress, write */
	JOB_ZERO,	/* reads as zeros: write zeros unless zero_init */
	JOB_SKIP,	/* provided by the target's backing file */
	JOB_COPY,	/* copy_file_range from a raw source (-C) */
};

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

struct job {
	enum job_kind kind;
	enum slot_state state;
	uint64_t off, len;	/* in the concatenated sources = target */
	uint8_t *buf;		/* chunk bytes read */
	uint8_t *cbuf;		/* compressed clusters, one cluster apart */
	uint32_t *clen;		/* per cluster: 0 zeros, else compressed
				   length, or cluster size: store as is */
	struct sparse_run *runs; /* zero detection result */
	size_t nruns;
	bool written;		/* a worker wrote it (raw targets) */
	int err;		/* worker failure (message in errmsg) */
	int err_src;
	char errmsg[QERR_MSG_MAX];
	char *warnings;		/* salvage warnings, one per line */
};

struct worker {
	pthread_t thread;
	struct conv *c;
	struct img **srcs;	/* own handles, or the shared ones */
	bool own;
	struct ccodec *codec;
	struct cdecoder *dec;
	struct img *target;	/* own target handle when workers write */
};

struct conv {
	const struct convert_opts *o;
	struct convert_error *err;
	uint64_t *src_start;	/* global offset of each source */
	uint64_t total;		/* sum of the source sizes */
	uint64_t chunk;		/* bytes per DATA job at most */
	uint32_t min, align;	/* zero detection, sectors */
	uint64_t shape_unit;	/* runs are shaped to this (a cluster) */
	uint64_t cluster;	/* compressed cluster size */
	int ctype;		/* compression type */
	struct cwriter *cw;	/* compressed clusters go through it */
	bool copy_range;
	bool worker_writes;	/* workers write plain jobs themselves */

	/* planner */
	uint64_t plan_pos;
	uint64_t ext_end;	/* end of the run being cut into jobs */
	enum job_kind ext_kind;
	bool plan_done;
	uint64_t la_pos, la_len;	/* a run looked at ahead, len 0: none */
	enum job_kind la_kind;

	/* ring */
	struct job *ring;
	size_t nslots;
	uint64_t head, tail, take;
	pthread_mutex_t lock;
	pthread_cond_t work_cv, done_cv;
	pthread_mutex_t read_lock;	/* shared source handles */
	bool stop;
	struct worker *workers;
	unsigned nworkers;

	/* writer */
	uint64_t progress_total, progress_done;
	uint64_t written;	/* for the rate limit */
	double start;
};

/* convert.c */
int plan_job(struct conv *c, struct job *j);
int conv_fail(struct conv *c, int code, int src, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void job_warn(struct job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void job_reset(struct job *j);

/* convert_worker.c: run the ring until every job is written. */
int conv_pipeline(struct conv *c);
/* Read [off, off+len) of the concatenated sources into buf. */
int conv_read(struct conv *c, struct img **srcs, struct job *j,
	      uint64_t off, uint8_t *buf, uint64_t len);

/* convert_write.c */
/*
 * Write a plain (uncompressed) DATA job into t: its data runs, and zeros
 * where the target does not read as zeros.  Any thread, with its own t;
 * a failure is recorded on the job.
 */
int conv_write_plain(struct conv *c, struct img *t, struct job *j);
/*
 * The detail of a failed I/O: the layer's own message when it says more
 * than the errno (a corrupt image, say), else qemu-img's strerror text.
 */
const char *conv_io_detail(const struct qerr *e, int code);
int conv_write_job(struct conv *c, struct job *j);
int conv_flush(struct conv *c);
/*
 * Cache mode unsafe (qemu-img convert's default for the target): the
 * target's flushes, the engine's ordering syncs included, write to the
 * page cache only, as qemu's cache=unsafe ignores them.
 */
void conv_no_sync(struct conv *c);
bool conv_can_copy_range(struct conv *c);

#endif
