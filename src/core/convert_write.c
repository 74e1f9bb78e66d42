/*
 * convert_write.c: the writer of the convert core (see convert.c): writes
 * each finished job in guest order, zeros where the target does not
 * already read as zeros, compressed clusters through the engine's
 * in-order writer, copy_file_range for -C, the rate limit, progress, and
 * the single flush at the end.
 *
 * Writes are as large as the job allows: a data run of a chunk is one
 * write, consecutive uncompressed clusters are one write, consecutive zero
 * clusters one zero-write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/compress_pipeline.h"
#include "core/convert_int.h"
#include "core/qcow2.h"

#define ZERO_BUF (1u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *conv_io_detail(const struct qerr *e, int code)
{
	if (!e->msg[0] || strncmp(e->msg, "read error at offset ", 21) == 0 ||
	    strncmp(e->msg, "write error at offset ", 22) == 0)
		return strerror(-code);
	return e->msg;
}

/* Record a failed write on the job; the writer reports it in order. */
static int write_fail(struct job *j, struct img *t, int ret, uint64_t off)
{
	j->err = ret;
	j->err_src = -1;
	snprintf(j->errmsg, sizeof(j->errmsg),
		 "error while writing at byte %llu: %s",
		 (unsigned long long)off, conv_io_detail(&t->err, ret));
	return ret;
}

/* Zero-writes the driver lacks: punch a hole in a raw file, else write. */
static int zero_fallback(struct img *t, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[ZERO_BUF];
	int ret = 0;

	if (t->drv == &raw_driver &&
	    fallocate(t->file->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	while (len > 0 && ret == 0) {
		uint64_t n = len < ZERO_BUF ? len : ZERO_BUF;

		ret = img_write(t, off, zeros, n);
		off += n;
		len -= n;
	}
	return ret;
}

static int write_zeros(struct conv *c, struct img *t, struct job *j,
		       uint64_t off, uint64_t len)
{
	int ret;

	if (c->o->zero_init || len == 0)
		return 0;
	ret = img_write_zeroes(t, off, len, IMG_ZERO_MAY_UNMAP);
	if (ret == -ENOTSUP) {
		qerr_clear(&t->err);
		ret = zero_fallback(t, off, len);
	}
	return ret < 0 ? write_fail(j, t, ret, off) : 0;
}

static int write_data(struct img *t, struct job *j, uint64_t off,
		      const uint8_t *buf, uint64_t len)
{
	int ret = img_write(t, off, buf, len);

	return ret < 0 ? write_fail(j, t, ret, off) : 0;
}

int conv_write_plain(struct conv *c, struct img *t, struct job *j)
{
	int ret = 0;

	if (!c->min)
		return write_data(t, j, j->off, j->buf, j->len);
	for (size_t k = 0; k < j->nruns && ret == 0; k++) {
		const struct sparse_run *r = &j->runs[k];
		uint64_t off = j->off + (uint64_t)r->start * SECTOR_SIZE;
		uint64_t len = (uint64_t)r->len * SECTOR_SIZE;

		if (r->data)
			ret = write_data(t, j, off, j->buf + (off - j->off),
					 len);
		else
			ret = write_zeros(c, t, j, off, len);
	}
	return ret;
}

/*
 * Clusters of a compressed job: runs of zeros and of raw clusters merge;
 * the compressed ones are packed and written at the end of the job.
 */
static int write_compressed(struct conv *c, struct job *j)
{
	struct img *t = c->o->target;
	uint64_t cl = c->cluster, end = j->off + j->len;
	size_t n = (size_t)((j->len + cl - 1) / cl), k = 0;
	int ret = 0;

	while (k < n && ret == 0) {
		uint64_t off = j->off + k * cl;
		uint32_t kind = j->clen[k];
		size_t m = k + 1;
		uint64_t stop;

		if (kind != 0 && kind != cl) {
			ret = cwriter_put(c->cw, off, j->cbuf + k * cl, kind);
			if (ret < 0)
				return write_fail(j, t, ret, off);
			k++;
			continue;
		}
		while (m < n && j->clen[m] == kind)
			m++;
		stop = j->off + m * cl < end ? j->off + m * cl : end;
		if (kind == 0)
			ret = write_zeros(c, t, j, off, stop - off);
		else
			ret = write_data(t, j, off, j->buf + k * cl, stop - off);
		k = m;
	}
	if (ret == 0 && (ret = cwriter_flush(c->cw)) < 0)
		return write_fail(j, t, ret, j->off);
	return ret;
}

bool conv_can_copy_range(struct conv *c)
{
	const struct convert_opts *o = c->o;

	if (o->target->drv != &raw_driver || o->compress)
		return false;
	for (size_t i = 0; i < o->nb_srcs; i++)
		if (o->srcs[i]->drv != &raw_driver || o->srcs[i]->backing)
			return false;
	return true;
}

/*
 * -C: let the kernel copy (reflink where the file system can).  When it
 * cannot, fall back to reading and writing, for this job and the rest.
 */
static int copy_job(struct conv *c, struct job *j)
{
	const struct convert_opts *o = c->o;
	uint64_t off = j->off, end = j->off + j->len;
	uint8_t *buf;
	int ret;

	while (c->copy_range && off < end) {
		size_t i = 0;
		loff_t soff, doff = (loff_t)off;
		ssize_t n;

		while (i + 1 < o->nb_srcs && off >= c->src_start[i + 1])
			i++;
		soff = (loff_t)(off - c->src_start[i]);
		n = copy_file_range(o->srcs[i]->file->fd, &soff,
				    o->target->file->fd, &doff,
				    (size_t)(end - off), 0);
		if (n <= 0)
			c->copy_range = false;	/* no offload here */
		else
			off += (uint64_t)n;
	}
	if (off >= end)
		return 0;
	buf = malloc(c->chunk);
	if (!buf)
		return conv_fail(c, -ENOMEM, -1, "out of memory");
	ret = conv_read(c, o->srcs, j, off, buf, end - off);
	if (ret == 0)
		ret = write_data(o->target, j, off, buf, end - off);
	free(buf);
	return ret;
}

static void rate_limit(struct conv *c, uint64_t bytes)
{
	double want, elapsed;

	if (!c->o->rate_limit)
		return;
	if (!c->start)
		c->start = now();
	c->written += bytes;
	want = (double)c->written / (double)c->o->rate_limit;
	elapsed = now() - c->start;
	if (want > elapsed) {
		double d = want - elapsed;
		struct timespec ts = { (time_t)d,
				       (long)((d - (double)(time_t)d) * 1e9) };

		nanosleep(&ts, NULL);
	}
}

static void emit_warnings(struct conv *c, struct job *j)
{
	char *line = j->warnings, *nl;

	if (!c->o->warn)
		return;
	while (line && (nl = strchr(line, '\n'))) {
		*nl = '\0';
		c->o->warn(c->o->opaque, line);
		line = nl + 1;
	}
}

int conv_write_job(struct conv *c, struct job *j)
{
	struct img *t = c->o->target;
	int ret = 0;

	emit_warnings(c, j);
	if (j->err)
		return conv_fail(c, j->err, j->err_src, "%s", j->errmsg);
	switch (j->kind) {
	case JOB_SKIP:
		return 0;
	case JOB_ZERO:
		ret = write_zeros(c, t, j, j->off, j->len);
		break;
	case JOB_DATA:
		if (c->o->compress)
			ret = write_compressed(c, j);
		else if (!j->written)
			ret = conv_write_plain(c, t, j);
		break;
	case JOB_COPY:
		ret = copy_job(c, j);
		break;
	}
	if (ret < 0)
		return conv_fail(c, ret, j->err_src, "%s", j->errmsg);
	if (j->kind == JOB_ZERO)
		return 0;
	rate_limit(c, j->len);
	if (c->o->progress && c->progress_total) {
		c->progress_done += j->len;
		c->o->progress(c->o->opaque, c->progress_done,
			       c->progress_total);
	}
	return 0;
}

void conv_no_sync(struct conv *c)
{
	struct img *t = c->o->target;

	if (c->o->sync)
		return;
	t->file->no_sync = true;
	if (t->drv == &qcow2_driver && t->priv) {
		struct qcow2_state *s = t->priv;

		if (s->data_file)
			s->data_file->no_sync = true;
	}
}

int conv_flush(struct conv *c)
{
	struct img *t = c->o->target;
	int ret = img_flush(t);

	if (ret < 0)
		return conv_fail(c, ret, -1, "error while flushing: %s",
				 conv_io_detail(&t->err, ret));
	return 0;
}
