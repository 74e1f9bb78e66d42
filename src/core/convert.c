/*
 * convert.c: the copy loop of "qimg convert" (see convert.h).
 *
 * Three roles, one file each for their data:
 *   - the planner (this file, plan_*) cuts the concatenated sources into
 *     jobs: DATA (read, then write or compress), ZERO (write zeros unless
 *     the target already reads as zeros), SKIP (the target's backing file
 *     provides it) and COPY (copy_file_range, -C).  It asks the chain's
 *     block status, and shapes runs to whole target clusters so the target
 *     never has to fill a partly written cluster;
 *   - workers (convert_worker.c) read DATA jobs through their own source
 *     handles and find zero runs or compress clusters;
 *   - the writer (convert_write.c) runs in the calling thread and writes
 *     jobs strictly in order.
 * Jobs live in a ring of slots; a slot's state moves FREE -> QUEUED (DATA)
 * or DONE (others) under the planner, QUEUED -> RUNNING -> DONE under a
 * worker, DONE -> FREE under the writer.  Only the thread that owns a
 * slot's current state touches its buffers, and the lock guards states.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/chain.h"
#include "core/compress_pipeline.h"
#include "core/convert_int.h"

/* Source index holding global offset pos (pos < total). */
static size_t src_index(const struct conv *c, uint64_t pos)
{
	size_t i = 0;

	while (i + 1 < c->o->nb_srcs && pos >= c->src_start[i + 1])
		i++;
	return i;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/*
 * Keep runs in whole sectors (a raw file's data may end mid-sector, at the
 * end of the file): data grows to the sector end, anything else shrinks to
 * it, or becomes data when it lies inside one sector.  size is a multiple
 * of 512 (both formats round the virtual size).
 */
static uint64_t sector_shape(uint64_t off, uint64_t len, uint64_t size,
			     enum job_kind *kind)
{
	uint64_t end = off + len, down = end / SECTOR_SIZE * SECTOR_SIZE;

	if (end % SECTOR_SIZE == 0 || end >= size)
		return len;
	if (*kind != JOB_DATA && down > off)
		return down - off;
	*kind = JOB_DATA;
	end = down + SECTOR_SIZE;
	return (end < size ? end : size) - off;
}

/* One block-status query at global pos (at most max bytes; 0: to the end
 * of the source), as a job kind. */
static int status_query(struct conv *c, uint64_t pos, uint64_t max,
			enum job_kind *kind, uint64_t *len,
			struct chain_status *st)
{
	const struct convert_opts *o = c->o;
	size_t i = src_index(c, pos);
	struct img *s = o->srcs[i];
	uint64_t soff = pos - c->src_start[i], rest = s->size - soff;
	int ret = chain_block_status(s, o->target_has_backing ? s->backing
							      : NULL,
				     soff, max && max < rest ? max : rest, st);

	if (ret < 0)
		return ret;
	if (st->flags & IMG_BS_DATA)
		*kind = JOB_DATA;
	else if (st->flags & IMG_BS_ZERO)
		*kind = o->min_sparse ? JOB_ZERO : JOB_DATA;
	else
		*kind = JOB_SKIP;
	*len = sector_shape(soff, st->len, s->size, kind);
	return 0;
}

static void status_clear(struct conv *c, uint64_t pos, struct chain_status *st)
{
	qerr_clear(st->layer ? &st->layer->err
			     : &c->o->srcs[src_index(c, pos)]->err);
}

/*
 * Block status at pos.  A format may refuse a long range because of one
 * bad entry somewhere in it; then shorter ranges are asked (halving down
 * to a sector), so the error is reported, or salvaged, where the bad entry
 * is, as qemu-img does.  The error of the one-sector query is kept.
 */
static int status_kind(struct conv *c, uint64_t pos, enum job_kind *kind,
		       uint64_t *len, struct chain_status *st)
{
	int ret = status_query(c, pos, 0, kind, len, st);
	uint64_t max = c->total - pos;

	while (ret < 0 && max > SECTOR_SIZE) {
		max = max / 2 / SECTOR_SIZE * SECTOR_SIZE;
		if (max < SECTOR_SIZE)
			max = SECTOR_SIZE;
		status_clear(c, pos, st);
		ret = status_query(c, pos, max, kind, len, st);
	}
	return ret;
}

/*
 * Grow the run [pos, pos + *len) of kind over following runs of the same
 * kind in the same source (formats report a cluster or an L2 table at a
 * time), up to a chunk for data.  The first run of another kind is kept
 * for the next call.  A failing query just ends the run: the next call
 * asks again and reports it.
 */
static void coalesce(struct conv *c, uint64_t pos, enum job_kind kind,
		     uint64_t *len)
{
	size_t i = src_index(c, pos);
	uint64_t end = c->src_start[i] + c->o->srcs[i]->size;
	uint64_t limit = kind == JOB_DATA ? c->chunk : CONV_COALESCE_MAX;
	struct chain_status st;
	enum job_kind k;
	uint64_t l;

	while (*len < limit && pos + *len < end) {
		if (status_query(c, pos + *len, 0, &k, &l, &st) < 0) {
			status_clear(c, pos + *len, &st);
			return;
		}
		if (k != kind) {
			c->la_pos = pos + *len;
			c->la_kind = k;
			c->la_len = l;
			return;
		}
		*len += l;
	}
}

/*
 * Block status of the source range at global pos, as a job kind.  In
 * salvage mode an unreadable status is one sector of data, with a warning
 * queued on the job.
 */
static int plan_status(struct conv *c, struct job *j, uint64_t pos,
		       enum job_kind *kind, uint64_t *len)
{
	const struct convert_opts *o = c->o;
	size_t i = src_index(c, pos);
	struct img *s = o->srcs[i];
	uint64_t soff = pos - c->src_start[i], rest = s->size - soff;
	struct chain_status st;
	int ret;

	if (o->min_sparse == 0 && !o->target_has_backing) {
		*kind = JOB_DATA;
		*len = rest;
		return 0;
	}
	if (c->la_len && c->la_pos == pos) {
		*kind = c->la_kind;
		*len = c->la_len;
		c->la_len = 0;
	} else if ((ret = status_kind(c, pos, kind, len, &st)) < 0) {
		struct img *bad = st.layer ? st.layer : s;

		if (!o->salvage)
			return conv_fail(c, ret, (int)i,
					 "error while reading block status at "
					 "offset %llu: %s",
					 (unsigned long long)soff,
					 qerr_msg(&bad->err));
		job_warn(j, "error while reading block status at offset "
			 "%llu: %s", (unsigned long long)soff, strerror(-ret));
		qerr_clear(&bad->err);
		*kind = JOB_DATA;
		*len = rest < SECTOR_SIZE ? rest : SECTOR_SIZE;
		return 0;
	}
	coalesce(c, pos, *kind, len);
	return 0;
}

/*
 * Move the end of a run starting at pos to a target cluster boundary:
 * data grows to the boundary; zeros (and, when compressing, ranges left
 * to the backing file) shrink to it, or become data when they do not
 * reach one, because the cluster must then be written whole.
 */
static void plan_shape(struct conv *c, uint64_t pos, enum job_kind *kind,
		       uint64_t *len)
{
	uint64_t cl = c->shape_unit, end = pos + *len, down;

	if (cl <= SECTOR_SIZE || end % cl == 0 || end >= c->total)
		return;
	if (*kind == JOB_SKIP && !c->o->compress)
		return;
	if (*kind != JOB_DATA) {
		down = end / cl * cl;
		if (down > pos) {
			*len = down - pos;
			return;
		}
		*kind = JOB_DATA;
	}
	end = align_up(end, cl);
	*len = (end < c->total ? end : c->total) - pos;
}

/* Plan the next job into j; sets c->plan_done when nothing is left. */
int plan_job(struct conv *c, struct job *j)
{
	uint64_t pos = c->plan_pos, len = 0, limit;
	enum job_kind kind = JOB_SKIP;
	int ret;

	job_reset(j);
	if (pos >= c->total) {
		c->plan_done = true;
		return 0;
	}
	if (c->ext_end > pos) {		/* the rest of the current run */
		kind = c->ext_kind;
		len = c->ext_end - pos;
	} else {
		ret = plan_status(c, j, pos, &kind, &len);
		if (ret < 0)
			return ret;
		plan_shape(c, pos, &kind, &len);
		c->ext_kind = kind;
		c->ext_end = pos + len;
	}
	if (kind == JOB_DATA) {		/* at most one chunk, chunk-aligned */
		limit = (pos / c->chunk + 1) * c->chunk;
		if (pos + len > limit)
			len = limit - pos;
		if (c->copy_range)
			kind = JOB_COPY;
	}
	j->kind = kind;
	j->off = pos;
	j->len = len;
	c->plan_pos = pos + len;
	return 0;
}

/* Count the bytes the copy will read (the progress total). */
static int plan_count(struct conv *c, uint64_t *total)
{
	struct job j = { 0 };
	int ret = 0;

	*total = 0;
	while (ret == 0) {
		ret = plan_job(c, &j);
		if (ret < 0 || c->plan_done)
			break;
		if (j.kind == JOB_DATA || j.kind == JOB_COPY)
			*total += j.len;
	}
	free(j.warnings);
	c->plan_pos = 0;
	c->ext_end = 0;
	c->la_len = 0;
	c->plan_done = false;
	return ret;
}

int conv_fail(struct conv *c, int code, int src, const char *fmt, ...)
{
	va_list ap;

	if (c->err->code)
		return c->err->code;
	c->err->code = code < 0 ? code : -EIO;
	c->err->src = src;
	va_start(ap, fmt);
	vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
	va_end(ap);
	return c->err->code;
}

void job_warn(struct job *j, const char *fmt, ...)
{
	char line[QERR_MSG_MAX];
	size_t n, have = j->warnings ? strlen(j->warnings) : 0;
	char *w;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	w = realloc(j->warnings, have + n + 2);
	if (!w)
		return;		/* a lost warning is better than a lost copy */
	memcpy(w + have, line, n);
	w[have + n] = '\n';
	w[have + n + 1] = '\0';
	j->warnings = w;
}

void job_reset(struct job *j)
{
	free(j->warnings);
	j->warnings = NULL;
	j->kind = JOB_SKIP;
	j->off = j->len = 0;
	j->nruns = 0;
	j->written = false;
	j->err = 0;
}

/* Geometry: chunk size, zero-detection units, cluster shaping. */
static int conv_setup(struct conv *c)
{
	const struct convert_opts *o = c->o;
	uint64_t unit;

	c->src_start = calloc(o->nb_srcs, sizeof(*c->src_start));
	if (!c->src_start)
		return conv_fail(c, -ENOMEM, -1, "out of memory");
	for (size_t i = 0; i < o->nb_srcs; i++) {
		c->src_start[i] = c->total;
		c->total += o->srcs[i]->size;
	}
	if (o->compress) {
		int ret = cwriter_open(&c->cw, o->target);

		if (ret < 0)
			return conv_fail(c, ret, -1, "%s",
					 qerr_msg(&o->target->err));
		c->ctype = cwriter_type(c->cw);
		c->cluster = cwriter_cluster(c->cw);
		c->shape_unit = c->cluster;
	} else {
		c->shape_unit = o->target_cluster;
	}
	c->min = (uint32_t)(o->min_sparse / SECTOR_SIZE);
	unit = c->min ? pow2_floor(c->min) : 1;
	if (o->target_cluster / SECTOR_SIZE > unit)
		unit = o->target_cluster / SECTOR_SIZE;
	c->align = (uint32_t)unit;
	/* Zero detection needs no bigger chunks: qemu-img scans 2 MiB too. */
	c->chunk = CONV_CHUNK;
	if (c->chunk < c->shape_unit)
		c->chunk = c->shape_unit;
	c->copy_range = o->copy_range && conv_can_copy_range(c);
	/* A raw file takes writes at any offset from any thread: each worker
	 * writes what it read, through its own handle. */
	c->worker_writes = o->reopen_target && !o->compress &&
			   !c->copy_range && !o->rate_limit &&
			   o->target->drv == &raw_driver;
	return 0;
}

int convert_run(const struct convert_opts *o, struct convert_error *err)
{
	struct conv c = { 0 };
	int ret;

	memset(err, 0, sizeof(*err));
	c.o = o;
	c.err = err;
	conv_no_sync(&c);
	ret = conv_setup(&c);
	if (ret == 0 && o->progress) {
		ret = plan_count(&c, &c.progress_total);
		if (ret == 0)
			o->progress(o->opaque, 0, c.progress_total);
	}
	if (ret == 0)
		ret = conv_pipeline(&c);
	if (ret == 0)
		ret = conv_flush(&c);
	cwriter_close(c.cw);
	free(c.src_start);
	return ret;
}
