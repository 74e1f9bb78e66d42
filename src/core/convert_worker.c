/*
 * convert_worker.c: the worker threads of the convert core and the ring
 * they share with the planner and the writer (see convert.c for the slot
 * states).
 *
 * A worker takes the oldest QUEUED job, reads it through its own source
 * handles (formats need not be thread-safe; raw reads are plain preads),
 * then either finds its zero runs or compresses its clusters, and marks it
 * DONE.  The writer, in the calling thread, waits for the oldest job only,
 * so jobs are written in guest order whatever the timing of the workers.
 * A failing job records its error and the writer reports it when it gets
 * there, after writing everything before it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/compress_pipeline.h"
#include "core/convert_int.h"

static struct job *slot(struct conv *c, uint64_t k)
{
	return &c->ring[k % c->nslots];
}

struct worker_view {
	struct img **srcs;
	bool shared;		/* handles shared with other threads */
	struct cdecoder *dec;
};

/* Read one source range, through a shared handle under the read lock. */
static int read_src(struct conv *c, struct worker_view *v, size_t i,
		    uint64_t soff, uint8_t *buf, uint64_t len)
{
	int ret;

	if (v->shared)
		pthread_mutex_lock(&c->read_lock);
	ret = cread(v->dec, v->srcs[i], soff, buf, len);
	if (v->shared)
		pthread_mutex_unlock(&c->read_lock);
	return ret;
}

/*
 * Salvage: read sector by sector; the unreadable ones become zeros, each
 * with a warning naming its offset in the source.
 */
static void salvage_read(struct conv *c, struct worker_view *v, size_t i,
			 struct job *j, uint64_t soff, uint8_t *buf,
			 uint64_t len)
{
	for (uint64_t done = 0; done < len; done += SECTOR_SIZE) {
		uint64_t n = len - done < SECTOR_SIZE ? len - done : SECTOR_SIZE;
		int ret = read_src(c, v, i, soff + done, buf + done, n);

		if (ret < 0) {
			job_warn(j, "error while reading offset %llu: %s",
				 (unsigned long long)(soff + done),
				 strerror(-ret));
			qerr_clear(&v->srcs[i]->err);
			memset(buf + done, 0, n);
		}
	}
}

static int read_global(struct conv *c, struct worker_view *v, struct job *j,
		       uint64_t off, uint8_t *buf, uint64_t len)
{
	const struct convert_opts *o = c->o;
	size_t i = 0;

	while (i + 1 < o->nb_srcs && off >= c->src_start[i + 1])
		i++;
	while (len > 0) {
		uint64_t soff = off - c->src_start[i];
		uint64_t n = o->srcs[i]->size - soff;
		int ret;

		if (n > len)
			n = len;
		ret = read_src(c, v, i, soff, buf, n);
		if (ret < 0 && o->salvage) {
			qerr_clear(&v->srcs[i]->err);
			salvage_read(c, v, i, j, soff, buf, n);
		} else if (ret < 0) {
			j->err = ret;
			j->err_src = (int)i;
			snprintf(j->errmsg, sizeof(j->errmsg),
				 "error while reading at byte %llu: %s",
				 (unsigned long long)off,
				 conv_io_detail(&v->srcs[i]->err, ret));
			return ret;
		}
		off += n;
		buf += n;
		len -= n;
		i++;
	}
	return 0;
}

int conv_read(struct conv *c, struct img **srcs, struct job *j,
	      uint64_t off, uint8_t *buf, uint64_t len)
{
	struct worker_view v = { srcs, c->o->reopen == NULL, NULL };

	return read_global(c, &v, j, off, buf, len);
}

/* Per cluster: 0 for zeros, the compressed length, or the cluster size. */
static void compress_job(struct conv *c, struct worker *w, struct job *j)
{
	uint64_t cl = c->cluster;
	size_t n = (size_t)((j->len + cl - 1) / cl);

	for (size_t k = 0; k < n; k++) {
		const uint8_t *in = j->buf + k * cl;
		uint64_t len = j->len - k * cl < cl ? j->len - k * cl : cl;
		size_t out;

		if (c->o->min_sparse && buf_is_zero(in, len)) {
			j->clen[k] = 0;
			continue;
		}
		out = ccodec_compress(w->codec, in, len, j->cbuf + k * cl, cl);
		j->clen[k] = out ? (uint32_t)out : (uint32_t)cl;
	}
}

static void work_job(struct conv *c, struct worker *w, struct job *j)
{
	struct worker_view v = { w->srcs, !w->own, w->dec };

	if (read_global(c, &v, j, j->off, j->buf, j->len) < 0)
		return;
	if (c->o->compress)
		compress_job(c, w, j);
	else if (c->min)
		j->nruns = sparse_scan(j->buf, (uint32_t)(j->len / SECTOR_SIZE),
				       j->off / SECTOR_SIZE, c->min, c->align,
				       j->runs);
	if (c->worker_writes && !c->o->compress &&
	    conv_write_plain(c, w->target, j) == 0)
		j->written = true;
}

/* The oldest QUEUED job, or NULL; called with the lock held. */
static struct job *take_job(struct conv *c)
{
	uint64_t k = c->take > c->tail ? c->take : c->tail;

	for (; k < c->head; k++) {
		struct job *j = slot(c, k);

		if (j->state == SLOT_QUEUED) {
			c->take = k + 1;
			return j;
		}
	}
	c->take = k;
	return NULL;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conv *c = w->c;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct job *j;

		while (!c->stop && !(j = take_job(c)))
			pthread_cond_wait(&c->work_cv, &c->lock);
		if (c->stop)
			break;
		j->state = SLOT_RUNNING;
		pthread_mutex_unlock(&c->lock);
		work_job(c, w, j);
		pthread_mutex_lock(&c->lock);
		j->state = SLOT_DONE;
		pthread_cond_broadcast(&c->done_cv);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void *xalloc(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, n ? n : 1) != 0)
		return NULL;
	return p;
}

/* Buffers of one slot, sized for the chunk. */
static int slot_alloc(struct conv *c, struct job *j)
{
	size_t nclusters = c->cluster ? (size_t)(c->chunk / c->cluster) : 0;

	j->buf = xalloc(c->chunk);
	if (!j->buf)
		return -ENOMEM;
	if (c->o->compress) {
		j->cbuf = xalloc(c->chunk);
		j->clen = calloc(nclusters, sizeof(*j->clen));
		if (!j->cbuf || !j->clen)
			return -ENOMEM;
	} else {
		j->runs = calloc(c->chunk / SECTOR_SIZE, sizeof(*j->runs));
		if (!j->runs)
			return -ENOMEM;
	}
	return 0;
}

static void slot_free(struct job *j)
{
	free(j->buf);
	free(j->cbuf);
	free(j->clen);
	free(j->runs);
	free(j->warnings);
}

/* Handles and codec of worker w; opened before any thread starts. */
static int worker_init(struct conv *c, struct worker *w)
{
	const struct convert_opts *o = c->o;
	struct qerr e = { 0 };
	int ret;

	w->c = c;
	if (o->reopen) {
		w->srcs = calloc(o->nb_srcs, sizeof(*w->srcs));
		if (!w->srcs)
			return conv_fail(c, -ENOMEM, -1, "out of memory");
		w->own = true;
		for (size_t i = 0; i < o->nb_srcs; i++) {
			ret = o->reopen(o->opaque, i, &w->srcs[i], &e);
			if (ret < 0)
				return conv_fail(c, ret, (int)i, "%s",
						 qerr_msg(&e));
		}
	} else {
		w->srcs = o->srcs;
	}
	if (c->worker_writes) {
		ret = o->reopen_target(o->opaque, &w->target, &e);
		if (ret < 0)
			return conv_fail(c, ret, -1, "%s", qerr_msg(&e));
		w->target->file->no_sync = true;	/* one flush, by the caller */
	}
	ret = cdecoder_new(&w->dec, &e);
	if (ret < 0)
		return conv_fail(c, ret, -1, "%s", qerr_msg(&e));
	if (o->compress) {
		ret = ccodec_new(&w->codec, c->ctype, c->cluster, &e);
		if (ret < 0)
			return conv_fail(c, ret, -1, "%s", qerr_msg(&e));
	}
	return 0;
}

static void worker_fini(struct conv *c, struct worker *w)
{
	if (w->own && w->srcs)
		for (size_t i = 0; i < c->o->nb_srcs; i++)
			img_close(w->srcs[i]);
	if (w->own)
		free(w->srcs);
	ccodec_free(w->codec);
	cdecoder_free(w->dec);
	img_close(w->target);
}

static int pipeline_init(struct conv *c)
{
	int ret;

	c->nworkers = c->o->threads ? c->o->threads : 1;
	c->nslots = 2 * (size_t)c->nworkers + 2;
	c->ring = calloc(c->nslots, sizeof(*c->ring));
	c->workers = calloc(c->nworkers, sizeof(*c->workers));
	if (!c->ring || !c->workers)
		return conv_fail(c, -ENOMEM, -1, "out of memory");
	for (size_t k = 0; k < c->nslots; k++)
		if (slot_alloc(c, &c->ring[k]) < 0)
			return conv_fail(c, -ENOMEM, -1, "out of memory");
	for (unsigned k = 0; k < c->nworkers; k++) {
		ret = worker_init(c, &c->workers[k]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Plan jobs into every free slot; DATA jobs go to the workers. */
static int fill_ring(struct conv *c)
{
	while (!c->plan_done && c->head - c->tail < c->nslots) {
		struct job *j = slot(c, c->head);
		int ret = plan_job(c, j);

		if (ret < 0)
			return ret;
		if (c->plan_done)
			break;
		pthread_mutex_lock(&c->lock);
		j->state = j->kind == JOB_DATA ? SLOT_QUEUED : SLOT_DONE;
		c->head++;
		pthread_cond_signal(&c->work_cv);
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

/* Plan, hand out and write until every job is written or one fails. */
static int pipeline_loop(struct conv *c)
{
	for (;;) {
		struct job *j;
		int ret = fill_ring(c);

		if (ret < 0)
			return ret;
		if (c->tail == c->head)
			return 0;
		j = slot(c, c->tail);
		pthread_mutex_lock(&c->lock);
		while (j->state != SLOT_DONE)
			pthread_cond_wait(&c->done_cv, &c->lock);
		pthread_mutex_unlock(&c->lock);
		ret = conv_write_job(c, j);
		if (ret < 0)
			return ret;
		pthread_mutex_lock(&c->lock);
		j->state = SLOT_FREE;
		c->tail++;
		pthread_mutex_unlock(&c->lock);
	}
}

int conv_pipeline(struct conv *c)
{
	unsigned started = 0;
	int ret;

	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->read_lock, NULL);
	pthread_cond_init(&c->work_cv, NULL);
	pthread_cond_init(&c->done_cv, NULL);
	ret = pipeline_init(c);
	for (; ret == 0 && started < c->nworkers; started++) {
		if (pthread_create(&c->workers[started].thread, NULL,
				   worker_main, &c->workers[started]) != 0)
			ret = conv_fail(c, -EAGAIN, -1,
					"cannot start a worker thread");
	}
	if (ret == 0)
		ret = pipeline_loop(c);
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->work_cv);
	pthread_mutex_unlock(&c->lock);
	for (unsigned k = 0; k < started; k++)
		pthread_join(c->workers[k].thread, NULL);
	for (unsigned k = 0; c->workers && k < c->nworkers; k++)
		worker_fini(c, &c->workers[k]);
	for (size_t k = 0; c->ring && k < c->nslots; k++)
		slot_free(&c->ring[k]);
	free(c->workers);
	free(c->ring);
	pthread_cond_destroy(&c->work_cv);
	pthread_cond_destroy(&c->done_cv);
	pthread_mutex_destroy(&c->read_lock);
	pthread_mutex_destroy(&c->lock);
	return ret;
}
