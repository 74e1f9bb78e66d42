/*
 * qcow2_resize.c: changing the virtual size of a qcow2 image (see
 * resize.h), on top of the engine's L1/L2 mapping, allocator and caches.
 *
 * Spec: qcow2.txt header field "size" (bytes 24..31), "l1_size" and
 * "l1_table_offset", "Cluster mapping" and "Host cluster management".
 * Only the size, L1 size and L1 offset fields of the header are ever
 * rewritten (in place, by the engine), so every other field, the unknown
 * header bytes and every extension stay byte for byte what they were.
 *
 * Crash safety: the header's size field is written last when growing and
 * first when shrinking, and nothing guest-visible inside the old size
 * changes before that, so an interrupted resize leaves the old or the new
 * size with the content the user asked for, and at worst leaked clusters:
 *  - growing: a larger L1 table is written in full and synced before the
 *    header points at it (the engine's rule 5); the new area is made to
 *    read as zeros (stale mappings and a longer backing file) and then
 *    preallocated, all of it past the old end; caches are flushed; then
 *    the header gets the new size;
 *  - shrinking: the header gets the new size; then the mappings past the
 *    new end go: an L2 table wholly past it is unhooked from the L1 table
 *    (synced) before its references are dropped, entries of a table that
 *    straddles the end are cleared before the references they held are
 *    dropped (the refcount cache waits for the L2 cache); refcount blocks
 *    left counting nothing are freed (table entry first); finally the
 *    file is truncated after the last cluster still in use.
 * The L1 table keeps its size when shrinking, as qemu's does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_engine.h"
#include "core/resize.h"

static uint64_t round_up(uint64_t v, uint64_t unit)
{
	return (v + unit - 1) & ~(unit - 1);
}

/* Bytes of guest space one L2 table maps. */
static uint64_t table_span(const struct qcow2_engine *eng)
{
	return 1ULL << (eng->cluster_bits + eng->l2_bits);
}

/* Does a (valid) L2 entry hold a reference to a host cluster? */
static bool holds_ref(const struct qcow2_engine *eng, uint64_t e)
{
	return (e & QCOW2_OFLAG_COMPRESSED) ||
	       (!eng->has_data_file && (e & QCOW2_L2E_OFFSET_MASK));
}

/* Has a (valid, standard) L2 entry a host cluster, or is it compressed? */
static bool has_host(const struct qcow2_engine *eng, uint64_t e)
{
	return (e & (QCOW2_OFLAG_COMPRESSED | QCOW2_L2E_OFFSET_MASK)) ||
	       (eng->has_data_file && (e & QCOW2_OFLAG_COPIED));
}

/* ---- growing ---- */

/*
 * Make [old, size) read as zeros in this layer: clusters mapped there
 * (left by an interrupted shrink, or by another tool) and the tail of a
 * partial last cluster hold stale bytes, and a longer backing file would
 * show through unallocated ones.
 */
static int clear_new_area(struct img *img, struct qcow2_engine *eng,
			  uint64_t old, uint64_t size)
{
	uint64_t through = img->backing ? img->backing->size : 0;
	uint64_t off = old, zstart = 0, zlen = 0;
	int ret = 0;

	while (off < size && ret == 0) {
		struct qcow2_extent ext;
		bool stale;

		ret = qcow2_map_extent(eng, off, size - off, &ext);
		if (ret < 0)
			break;
		stale = ext.type == QC_NORMAL || ext.type == QC_COMPRESSED ||
			((ext.type == QC_UNALLOC ||
			  ext.type == QC_UNALLOC_HOST) && off < through);
		if (stale && zlen && zstart + zlen == off) {
			zlen += ext.len;
		} else if (stale) {
			if (zlen)
				ret = qcow2_write_zeroes(img, zstart, zlen,
							 IMG_ZERO_MAY_UNMAP);
			zstart = off;
			zlen = ext.len;
		}
		off += ext.len;
	}
	if (ret == 0 && zlen)
		ret = qcow2_write_zeroes(img, zstart, zlen, IMG_ZERO_MAY_UNMAP);
	return ret;
}

/*
 * Host bytes [host, host+len) of fresh clusters must read as zeros before
 * an L2 entry points at them: clusters reused from inside the file may
 * hold old data; past the end of the file they are made to exist as the
 * mode asks (metadata: a sparse extension; falloc: allocated; full:
 * written zeros).
 */
static int prepare_data(struct qcow2_engine *eng, uint64_t host, uint64_t len,
			enum img_prealloc mode)
{
	struct qfile *f = eng->data;
	uint64_t *phys = f == eng->file ? &eng->phys_size : &eng->data_phys_size;
	uint64_t end = host + len, in = end < *phys ? end : *phys;
	int ret = 0;

	if (host < in) {
		if (mode == IMG_PREALLOC_METADATA)
			ret = qfile_punch_hole(f, host, in - host, eng->err);
		if (mode == IMG_PREALLOC_FALLOC ||
		    (mode == IMG_PREALLOC_METADATA && ret == -ENOTSUP))
			ret = qfile_zero_range(f, host, in - host, eng->err);
		if (mode == IMG_PREALLOC_FULL || ret == -ENOTSUP)
			ret = qfile_write_zeros(f, host, in - host, eng->err);
	}
	if (ret == 0 && end > *phys) {
		uint64_t from = host > *phys ? host : *phys;

		if (mode == IMG_PREALLOC_FALLOC)
			ret = qfile_fallocate(f, from, end - from, eng->err);
		else if (mode == IMG_PREALLOC_FULL)
			ret = qfile_write_zeros(f, from, end - from, eng->err);
		else
			ret = qfile_truncate(f, end, eng->err);
		if (ret == 0)
			*phys = end;
	}
	if (ret < 0) {
		eng->failed = true;
		return ret;
	}
	/* The zeros must be on disk before any L2 entry exposes them. */
	qcow2_cache_depends_on_flush(eng->l2_cache);
	return 0;
}

/* Give the entries [i, i+n) of table t (guest offset g of entry i) hosts. */
static int prealloc_run(struct qcow2_engine *eng, uint64_t *t, uint64_t i,
			uint64_t n, uint64_t g, enum img_prealloc mode)
{
	uint64_t host = g;	/* an external data file maps 1:1 */
	int ret = 0;

	if (!eng->has_data_file)
		ret = qcow2_alloc_clusters(eng, n, &host);
	if (ret == 0)
		ret = prepare_data(eng, host, n << eng->cluster_bits, mode);
	if (ret < 0)
		return ret;
	for (uint64_t k = 0; k < n; k++) {
		uint64_t e = qcow2_l2_get(eng, t, i + k);

		/* A zero entry stays zero: it gains a host, not data. */
		qcow2_l2_set(eng, t, i + k,
			     (host + (k << eng->cluster_bits)) |
				     QCOW2_OFLAG_COPIED | (e & QCOW2_OFLAG_ZERO),
			     qcow2_l2_bitmap(eng, t, i + k));
	}
	qcow2_cache_mark_dirty(eng->l2_cache, t);
	return 0;
}

/* Preallocate the clusters without a host in [g, end), one L2 table. */
static int prealloc_table(struct qcow2_engine *eng, uint64_t g, uint64_t end,
			  enum img_prealloc mode)
{
	uint64_t *t = NULL, i0 = qcow2_l2_index(eng, g);
	uint64_t n = (end - g) >> eng->cluster_bits, k = 0;
	int ret = qcow2_l2_for_write(eng, g, &t);

	while (ret == 0 && k < n) {
		uint64_t run = 0, e, gk = g + (k << eng->cluster_bits);

		for (; k + run < n; run++) {
			e = qcow2_l2_get(eng, t, i0 + k + run);
			ret = qcow2_l2_check(eng, gk + (run << eng->cluster_bits),
					     e, qcow2_l2_bitmap(eng, t,
								i0 + k + run));
			if (ret < 0 || has_host(eng, e))
				break;
		}
		if (ret == 0 && run)
			ret = prealloc_run(eng, t, i0 + k, run, gk, mode);
		k += run + 1;	/* past the run and the entry that ended it */
	}
	if (t)
		qcow2_cache_put(eng->l2_cache, (void **)&t);
	return ret;
}

static int preallocate(struct img *img, struct qcow2_engine *eng,
		       uint64_t old, uint64_t size, enum img_prealloc mode)
{
	uint64_t cs = eng->cluster_size, span = table_span(eng);
	uint64_t g = round_up(old, cs), end = round_up(size, cs);
	int ret = 0;

	/*
	 * A partial last cluster without a host: write its new tail as
	 * zeros, which allocates it with its head copied in.
	 */
	if (old & (cs - 1)) {
		struct qcow2_extent ext;
		uint64_t tail = (g < size ? g : size) - old;

		ret = qcow2_map_extent(eng, old & ~(cs - 1), cs, &ext);
		if (ret == 0 && ext.type != QC_NORMAL &&
		    ext.type != QC_COMPRESSED && ext.type != QC_ZERO_ALLOC) {
			uint8_t *zeros = calloc(1, tail);

			if (!zeros)
				return qerr_set(eng->err, -ENOMEM,
						"out of memory");
			ret = qcow2_write(img, old, zeros, tail);
			free(zeros);
		}
	}
	while (ret == 0 && g < end) {
		uint64_t te = (g | (span - 1)) + 1;

		if (te > end)
			te = end;
		ret = prealloc_table(eng, g, te, mode);
		g = te;
	}
	return ret;
}

/* The external data file follows the virtual size (qemu does so too). */
static int resize_data_file(struct qcow2_engine *eng, uint64_t size,
			    enum img_prealloc mode)
{
	uint64_t cur = eng->data_phys_size;
	int ret;

	if (!eng->has_data_file || size == cur)
		return 0;
	if (size < cur)
		ret = qfile_truncate(eng->data, size, eng->err);
	else
		ret = raw_grow_file(eng->data, &cur, size,
				    mode == IMG_PREALLOC_METADATA
					    ? IMG_PREALLOC_OFF
					    : mode,
				    eng->err);
	if (ret < 0)
		eng->failed = true;
	else
		eng->data_phys_size = size;
	return ret;
}

static int grow(struct img *img, struct qcow2_engine *eng, uint64_t size,
		enum img_prealloc mode)
{
	struct qcow2_header *h = &eng->s->meta.h;
	uint64_t old = img->size, span = table_span(eng);
	uint64_t need = size / span + (size % span != 0);
	uint64_t whole = round_up(old, eng->cluster_size);
	int ret = 0;

	if (need * 8 > QCOW2_MAX_L1_BYTES)
		return qerr_set(eng->err, -EFBIG, "Failed to grow the L1 table: "
				"File too large");
	/* v2 has no zero clusters to hide a longer backing file with. */
	if (h->version < 3 && img->backing && img->backing->size > whole &&
	    size > whole)
		return qerr_set(eng->err, -ENOTSUP, "Failed to zero out new "
				"clusters: Operation not supported");
	/* The raw data file must read as the guest does: map all of it. */
	if (eng->data_file_raw && mode == IMG_PREALLOC_OFF)
		mode = IMG_PREALLOC_METADATA;
	if (need > eng->l1_size)
		ret = qcow2_l1_grow(eng, h->size, (uint32_t)need);
	if (ret < 0)
		return ret;
	img->size = size;
	ret = clear_new_area(img, eng, old, size);
	if (ret == 0 && mode != IMG_PREALLOC_OFF)
		ret = preallocate(img, eng, old, size, mode);
	if (ret == 0)
		ret = resize_data_file(eng, size, mode);
	if (ret == 0)
		ret = qcow2_engine_flush(eng);
	if (ret == 0)
		ret = qcow2_header_set_l1(eng, size, eng->l1_offset,
					  eng->l1_size);
	if (ret < 0)
		img->size = old;
	return ret;
}

/* ---- shrinking ---- */

static int l1_entry_clear(struct qcow2_engine *eng, uint64_t idx)
{
	uint8_t be[8] = { 0 };

	eng->l1[idx] = 0;
	return qcow2_pwrite(eng, eng->file, be, 8, eng->l1_offset + idx * 8);
}

/*
 * L2 table l2_off (L1 entry l1i) maps nothing inside the new size: unhook
 * it, and once that is on disk drop its reference, and when it was the
 * last one (no snapshot shares the table) the references its entries held.
 */
static int drop_table(struct qcow2_engine *eng, uint64_t l1i, uint64_t l2_off)
{
	uint64_t n = 1ULL << eng->l2_bits, g0 = l1i * table_span(eng), rc;
	uint64_t *t = NULL;
	int ret = l1_entry_clear(eng, l1i);

	if (ret == 0)
		ret = qcow2_sync(eng);
	if (ret == 0)
		ret = qcow2_refcount_get(eng, l2_off >> eng->cluster_bits, &rc);
	if (ret < 0 || rc != 1)
		return ret ? ret
			   : qcow2_refcount_update(eng, l2_off,
						   eng->cluster_size, -1);
	ret = qcow2_cache_get(eng->l2_cache, l2_off, (void **)&t);
	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint64_t e = qcow2_l2_get(eng, t, i);

		ret = qcow2_l2_check(eng, g0 + (i << eng->cluster_bits), e,
				     qcow2_l2_bitmap(eng, t, i));
		if (ret == 0 && holds_ref(eng, e))
			ret = qcow2_free_l2e(eng, e);
	}
	if (t)
		qcow2_cache_put(eng->l2_cache, (void **)&t);
	if (ret == 0)
		ret = qcow2_refcount_update(eng, l2_off, eng->cluster_size, -1);
	return ret;
}

/* Clear the entries for [g, end) of one L2 table, then drop their refs. */
static int drop_entries(struct qcow2_engine *eng, uint64_t g, uint64_t end)
{
	uint64_t *t = NULL, old[64];
	size_t nold = 0;
	int ret = qcow2_l2_for_write(eng, g, &t);

	for (; g < end && ret == 0; g += eng->cluster_size) {
		uint64_t i = qcow2_l2_index(eng, g), e = qcow2_l2_get(eng, t, i);
		uint64_t bm = qcow2_l2_bitmap(eng, t, i);

		if (!e && !bm)
			continue;
		ret = qcow2_l2_check(eng, g, e, bm);
		if (ret < 0)
			break;
		qcow2_l2_set(eng, t, i, 0, 0);
		qcow2_cache_mark_dirty(eng->l2_cache, t);
		if (!holds_ref(eng, e))
			continue;
		if (nold == sizeof(old) / sizeof(*old)) {
			for (size_t j = 0; j < nold && ret == 0; j++)
				ret = qcow2_free_l2e(eng, old[j]);
			nold = 0;
		}
		old[nold++] = e;
	}
	for (size_t j = 0; j < nold && ret == 0; j++)
		ret = qcow2_free_l2e(eng, old[j]);
	if (t)
		qcow2_cache_put(eng->l2_cache, (void **)&t);
	return ret;
}

/* Drop every mapping from guest offset from (cluster aligned) on. */
static int drop_tail(struct qcow2_engine *eng, uint64_t from)
{
	uint64_t span = table_span(eng);
	int ret = 0;

	for (uint64_t l1i = from / span; l1i < eng->l1_size && ret == 0;
	     l1i++) {
		uint64_t l2_off, g0 = l1i * span;

		ret = qcow2_l1_entry(eng, l1i, &l2_off);
		if (ret < 0 || !l2_off)
			continue;
		if (g0 >= from)
			ret = drop_table(eng, l1i, l2_off);
		else
			ret = drop_entries(eng, from, g0 + span);
	}
	return ret;
}

/* Cut the file after the last cluster with a non-zero refcount. */
static int truncate_file(struct qcow2_engine *eng)
{
	uint64_t last = (eng->phys_size + eng->cluster_size - 1) >>
			eng->cluster_bits;
	uint64_t len;
	int ret = 0;

	while (last > 0) {
		uint64_t rc, ti = (last - 1) >> eng->rb_bits;

		/* No refcount block: the whole region it would count is free. */
		if (ti >= eng->reftable_entries || !eng->reftable[ti]) {
			last = ti << eng->rb_bits;
			continue;
		}
		ret = qcow2_refcount_get(eng, last - 1, &rc);
		if (ret < 0 || rc)
			break;
		last--;
	}
	len = last << eng->cluster_bits;
	if (ret < 0 || len >= eng->phys_size)
		return ret;
	ret = qfile_truncate(eng->file, len, eng->err);
	if (ret < 0) {
		eng->failed = true;
		return ret;
	}
	eng->phys_size = len;
	if (eng->alloc_end > len)
		eng->alloc_end = len;
	return 0;
}

static int shrink(struct img *img, struct qcow2_engine *eng, uint64_t size)
{
	int ret = qcow2_engine_flush(eng);

	if (ret == 0)
		ret = qcow2_header_set_l1(eng, size, eng->l1_offset,
					  eng->l1_size);
	if (ret < 0)
		return ret;
	img->size = size;
	ret = drop_tail(eng, round_up(size, eng->cluster_size));
	if (ret == 0)
		ret = qcow2_engine_flush(eng);
	if (ret == 0)
		ret = qcow2_refblocks_trim(eng);
	if (ret == 0)
		ret = qcow2_engine_flush(eng);
	if (ret == 0)
		ret = truncate_file(eng);
	if (ret == 0)
		ret = resize_data_file(eng, size, IMG_PREALLOC_OFF);
	return ret;
}

int qcow2_resize(struct img *img, uint64_t size, enum img_prealloc mode)
{
	struct qcow2_state *s = img->priv;
	const struct qcow2_header *h = &s->meta.h;
	struct qcow2_engine *eng;
	int ret;

	if (size % 512)
		return qerr_set(&img->err, -EINVAL,
				"The new size must be a multiple of 512");
	if (h->nb_snapshots && h->version < 3)
		return qerr_set(&img->err, -ENOTSUP,
				"Can't resize a v2 image which has snapshots");
	if (size == img->size && mode == IMG_PREALLOC_OFF)
		return 0;
	ret = qcow2_engine_get(img, &eng);
	if (ret == 0)
		ret = qcow2_prepare_write(eng);
	if (ret < 0)
		return ret;
	if (size < img->size)
		return shrink(img, eng, size);
	return grow(img, eng, size, mode);
}
