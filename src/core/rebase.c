/*
 * rebase.c: safe rebase (see rebase.h): copy into an image what switching
 * its backing chain would change, looking only where it can change.
 *
 * The image is walked in windows of WINDOW bytes (whole clusters).  In a
 * window, block status sorts the bytes into: allocated in the image (the
 * switch cannot change them: skipped); reading as zeros through both
 * chains (nothing to compare); decided below the new backing file when it
 * is a layer of the old chain (identical through both: skipped); and the
 * rest, where old and new are read (zeros are not read but filled in) and
 * compared.  A cluster with any difference is written whole with the
 * image's current guest content: the old content already read when the
 * window covers the cluster completely, else a read through the image.
 * Runs of such clusters go out in one write, as zero clusters where they
 * are all zeros.
 *
 * Invariant: every write stores the content the guest already sees, into
 * a range the image did not allocate (or allocated identically), so the
 * guest view never changes, whenever the process stops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/chain.h"
#include "core/qcow2.h"
#include "core/rebase.h"

#define WINDOW (8ULL << 20)

enum rkind {
	R_CMP,		/* old and new must be compared */
	R_ZERO,		/* zeros through both chains */
	R_SAME,		/* decided below the new backing file: identical */
};

struct win {
	const struct rebase_params *p;
	struct img *old;	/* the old backing chain, or NULL */
	const struct img *stop;	/* new backing inside the old chain, or NULL */
	uint64_t cs;		/* the image's cluster size */
	uint64_t start, end;	/* guest range of this window */
	uint8_t *oldb, *newb;	/* WINDOW bytes each, indexed by off - start */
	uint8_t *diff;		/* per cluster: differs */
	uint64_t *known;	/* per cluster: bytes of oldb holding content */
};

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Pass a failure of another layer on to the image's error record. */
static int layer_error(struct win *w, struct img *layer, int ret,
		       const char *what)
{
	return qerr_set(&w->p->img->err, ret, "%s: %s", what,
			layer ? qerr_msg(&layer->err) : strerror(-ret));
}

/*
 * Status through chain top (NULL: none) of the run at off, at most len:
 * *zero when it reads as zeros, *same when it is decided at or below stop.
 * *layer is the deciding layer when it holds data.
 */
static int side_status(struct win *w, struct img *top, const struct img *stop,
		       uint64_t off, uint64_t len, bool *zero, bool *same,
		       struct img **layer, uint64_t *n)
{
	struct chain_status st;
	int ret;

	*zero = true;
	*same = false;
	*layer = NULL;
	*n = len;
	if (!top || off >= top->size)
		return 0;
	ret = chain_block_status(top, stop, off, len, &st);
	if (ret < 0)
		return layer_error(w, st.layer, ret,
				   "error while reading image metadata");
	*n = st.len;
	*same = stop && st.flags == 0;
	*zero = (st.flags & IMG_BS_ZERO) != 0;
	if (st.flags & IMG_BS_DATA)
		*layer = st.layer;
	return 0;
}

/* Fill buf (len bytes of guest offset off) from layer, or with zeros. */
static int fill(struct win *w, struct img *layer, uint64_t off, uint8_t *buf,
		uint64_t len, const char *what)
{
	int ret;

	if (!layer) {
		memset(buf, 0, len);
		return 0;
	}
	ret = img_read(layer, off, buf, len);
	return ret < 0 ? layer_error(w, layer, ret, what) : 0;
}

/* Record [a, b) of kind k: which clusters now differ or have content. */
static void note(struct win *w, uint64_t a, uint64_t b, enum rkind k)
{
	while (a < b) {
		uint64_t c = (a - w->start) / w->cs;
		uint64_t ce = min64(w->start + (c + 1) * w->cs, b);
		uint64_t i = a - w->start, n = ce - a;

		if (k != R_SAME)
			w->known[c] += n;
		if (k == R_CMP && !w->diff[c] &&
		    memcmp(w->oldb + i, w->newb + i, n) != 0)
			w->diff[c] = 1;
		a = ce;
	}
}

/* Sort [off, off+len), which the image does not allocate, and compare. */
static int classify_run(struct win *w, uint64_t off, uint64_t len)
{
	struct img *nb = w->p->new_backing;
	uint64_t end = off + len;

	while (off < end) {
		struct img *ol, *nl;
		bool oz, nz = true, same, unused;
		uint64_t on, nn = 0, n;
		int ret;

		ret = side_status(w, w->old, w->stop, off, end - off, &oz,
				  &same, &ol, &on);
		if (ret == 0 && !same)
			ret = side_status(w, nb, NULL, off, on, &nz, &unused,
					  &nl, &nn);
		if (ret < 0)
			return ret;
		if (same) {
			note(w, off, off + on, R_SAME);
			off += on;
			continue;
		}
		n = min64(on, nn);
		if (oz && nz) {
			memset(w->oldb + (off - w->start), 0, n);
			note(w, off, off + n, R_ZERO);
		} else {
			ret = fill(w, ol, off, w->oldb + (off - w->start), n,
				   "error while reading from old backing file");
			if (ret == 0)
				ret = fill(w, nl, off,
					   w->newb + (off - w->start), n,
					   "error while reading from new "
					   "backing file");
			if (ret < 0)
				return ret;
			note(w, off, off + n, R_CMP);
		}
		off += n;
	}
	return 0;
}

static int classify(struct win *w)
{
	struct img *img = w->p->img;
	uint64_t off = w->start;

	while (off < w->end) {
		struct img_bstatus bs;
		int ret = img_block_status(img, off, w->end - off, &bs);

		if (ret == 0 && (bs.len == 0 || bs.len > w->end - off))
			ret = qerr_set(&img->err, -EIO, "block status at offset "
				       "%llu returned a run of %llu bytes",
				       (unsigned long long)off,
				       (unsigned long long)bs.len);
		if (ret == 0 && !(bs.flags & IMG_BS_ALLOCATED))
			ret = classify_run(w, off, bs.len);
		if (ret < 0)
			return ret;
		off += bs.len;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Write clusters [a, b) of the window, whose content is in oldb. */
static int write_run(struct win *w, uint64_t a, uint64_t b)
{
	struct img *img = w->p->img;
	const uint8_t *buf = w->oldb + (a - w->start);
	int ret;

	if (all_zero(buf, b - a))
		ret = img_write_zeroes(img, a, b - a, 0);
	else
		ret = img_write(img, a, buf, b - a);
	if (ret < 0)
		qerr_set(&img->err, ret, "Error while writing to COW image: %s",
			 strerror(-ret));
	return ret;
}

/* Write every differing cluster of the window, in runs. */
static int write_diffs(struct win *w)
{
	uint64_t nc = (w->end - w->start + w->cs - 1) / w->cs;
	uint64_t run_a = 0, run_b = 0;
	bool run_zero = false;
	int ret = 0;

	for (uint64_t c = 0; c < nc && ret == 0; c++) {
		uint64_t a = w->start + c * w->cs, b = min64(a + w->cs, w->end);
		bool z;

		if (!w->diff[c])
			continue;
		if (w->known[c] != b - a) {
			ret = img_read(w->p->img, a, w->oldb + (a - w->start),
				       b - a);
			if (ret < 0)
				break;
		}
		z = all_zero(w->oldb + (a - w->start), b - a);
		if (run_b == a && z == run_zero) {
			run_b = b;
			continue;
		}
		if (run_b > run_a)
			ret = write_run(w, run_a, run_b);
		run_a = a;
		run_b = b;
		run_zero = z;
	}
	if (ret == 0 && run_b > run_a)
		ret = write_run(w, run_a, run_b);
	return ret;
}

/* The new backing file when it is a layer of the old chain, else NULL. */
static const struct img *find_stop(const struct rebase_params *p)
{
	for (const struct img *l = p->img->backing; l; l = l->backing)
		if (l == p->new_backing)
			return l;
	return NULL;
}

int rebase_copy(const struct rebase_params *p)
{
	struct img *img = p->img;
	struct win w = { .p = p, .old = img->backing, .cs = 65536 };
	uint64_t window, nc;
	int ret = 0;

	if (img->drv == &qcow2_driver)
		w.cs = ((struct qcow2_state *)img->priv)->cluster_size;
	w.stop = find_stop(p);
	window = WINDOW < w.cs ? w.cs : WINDOW;
	nc = window / w.cs;
	w.oldb = malloc(window);
	w.newb = malloc(window);
	w.diff = malloc(nc);
	w.known = malloc(nc * sizeof(*w.known));
	if (!w.oldb || !w.newb || !w.diff || !w.known) {
		ret = qerr_set(&img->err, -ENOMEM, "out of memory");
		goto out;
	}
	for (w.start = 0; w.start < img->size && ret == 0; w.start = w.end) {
		w.end = min64(w.start + window, img->size);
		memset(w.diff, 0, nc);
		memset(w.known, 0, nc * sizeof(*w.known));
		ret = classify(&w);
		if (ret == 0)
			ret = write_diffs(&w);
		if (ret == 0 && p->progress)
			p->progress(p->opaque, w.end, img->size);
	}
out:
	free(w.oldb);
	free(w.newb);
	free(w.diff);
	free(w.known);
	return ret;
}

int img_set_backing(struct img *img, const char *name, const char *fmt)
{
	if (!(img->flags & IMG_RDWR))
		return qerr_set(&img->err, -EROFS, "image is not writable");
	if (img->drv == &qcow2_driver)
		return qcow2_set_backing(img, name, fmt);
	return qerr_set(&img->err, -ENOTSUP, "%s", strerror(ENOTSUP));
}
