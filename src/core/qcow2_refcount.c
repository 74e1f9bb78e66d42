/*
 * qcow2_refcount.c: reference counts of host clusters, and cluster
 * allocation from them.
 *
 * Spec: qcow2.txt "Host cluster management".  A refcount table (u64 block
 * offsets, contiguous) points at refcount blocks (one cluster each) of
 * 1 << refcount_order bit entries: sub-byte widths pack from the least
 * significant bit, 16/32/64-bit entries are big-endian.  A missing block
 * means refcount 0 for every cluster it would describe.
 *
 * Invariants kept here:
 *   - a refcount is never raised past refcount_max nor lowered below 0;
 *     the whole range is checked before any entry changes;
 *   - a new refcount block is written (and synced) before the table entry
 *     that points at it, and it counts itself when it lies in the range it
 *     describes, else its own refcount is raised (and synced) first;
 *   - a grown refcount table is written in full, with the new blocks that
 *     describe it, and synced before the header points at it; the old
 *     table is freed afterwards;
 *   - raising refcounts makes the L2 cache depend on the refcount cache
 *     (the L2 entries that use the clusters reach the file later);
 *     lowering them makes the refcount cache depend on the L2 cache, and
 *     a cluster whose refcount reached 0 is not handed out before that
 *     dependency has been flushed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_engine.h"

/* Where entry idx of a sub-byte (1, 2 or 4 bit) refcount block lives. */
static unsigned subbyte(unsigned order, uint64_t idx, uint64_t *byte,
			unsigned *mask)
{
	unsigned bits = 1U << order, per = 8U >> order;
	unsigned shift = (unsigned)(idx % per) * bits;

	*byte = idx / per;
	*mask = ((1U << bits) - 1) << shift;
	return shift;
}

uint64_t qcow2_rc_get(const uint8_t *block, unsigned order, uint64_t idx)
{
	uint64_t byte;
	unsigned mask, shift;

	if (order < 3) {
		shift = subbyte(order, idx, &byte, &mask);
		return (block[byte] & mask) >> shift;
	}
	if (order == 3)
		return block[idx];
	if (order == 4)
		return be16_get(block + idx * 2);
	if (order == 5)
		return be32_get(block + idx * 4);
	return be64_get(block + idx * 8);
}

void qcow2_rc_set(uint8_t *block, unsigned order, uint64_t idx, uint64_t v)
{
	uint64_t byte;
	unsigned mask, shift;

	if (order < 3) {
		shift = subbyte(order, idx, &byte, &mask);
		block[byte] = (uint8_t)((block[byte] & ~mask) | ((v << shift) & mask));
	} else if (order == 3) {
		block[idx] = (uint8_t)v;
	} else if (order == 4) {
		be16_put(block + idx * 2, (uint16_t)v);
	} else if (order == 5) {
		be32_put(block + idx * 4, (uint32_t)v);
	} else {
		be64_put(block + idx * 8, v);
	}
}

int qcow2_reftable_load(struct qcow2_engine *eng)
{
	const struct qcow2_header *h = &eng->s->meta.h;
	uint64_t bytes = (uint64_t)h->refcount_table_clusters << eng->cluster_bits;
	uint8_t *raw;
	int ret;

	if (eng->reftable)
		return 0;

	if (bytes == 0 || bytes > QCOW2_MAX_REFTABLE_BYTES)
		return qerr_set(eng->err, -EIO,
				"refcount table of %u clusters is invalid",
				h->refcount_table_clusters);
	raw = malloc(bytes);
	if (!raw)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	ret = qfile_pread(eng->file, raw, bytes, h->refcount_table_offset,
			  eng->err);
	if (ret < 0) {
		free(raw);
		return ret;
	}
	for (uint64_t i = 0; i < bytes / 8 && ret == 0; i++) {
		uint64_t e = be64_get(raw + i * 8);

		((uint64_t *)raw)[i] = e;
		if (e & QCOW2_REFT_RESERVED)
			ret = qerr_set(eng->err, -EIO,
					"refcount table entry %llu (0x%llx) has "
					"reserved bits set",
					(unsigned long long)i,
					(unsigned long long)e);
		else if (e & (eng->cluster_size - 1))
			ret = qerr_set(eng->err, -EIO,
					"refcount block offset 0x%llx in "
					"refcount table entry %llu is not "
					"cluster aligned",
					(unsigned long long)e,
					(unsigned long long)i);
		else if (e && e >= eng->phys_size)
			ret = qerr_set(eng->err, -EIO,
					"refcount block offset 0x%llx in "
					"refcount table entry %llu is past the "
					"end of the file",
					(unsigned long long)e,
					(unsigned long long)i);
	}
	if (ret < 0) {
		free(raw);
		return qcow2_corrupt(eng, "%s", qerr_msg(eng->err));
	}
	eng->reftable = (uint64_t *)raw;
	eng->reftable_entries = bytes / 8;
	eng->reftable_offset = h->refcount_table_offset;
	eng->reftable_clusters = h->refcount_table_clusters;
	return 0;
}

/* Pin the refcount block of table index ti (which must exist). */
static int rb_get(struct qcow2_engine *eng, uint64_t ti, uint8_t **block)
{
	return qcow2_cache_get(eng->rb_cache, eng->reftable[ti],
			       (void **)block);
}

static bool rb_exists(const struct qcow2_engine *eng, uint64_t ti)
{
	return ti < eng->reftable_entries && eng->reftable[ti] != 0;
}

int qcow2_refcount_get(struct qcow2_engine *eng, uint64_t idx, uint64_t *rc)
{
	uint64_t ti = idx >> eng->rb_bits;
	uint8_t *block;
	int ret = qcow2_reftable_load(eng);

	*rc = 0;
	if (ret < 0)
		return ret;
	if (!rb_exists(eng, ti))
		return 0;
	ret = rb_get(eng, ti, &block);
	if (ret < 0)
		return ret;
	*rc = qcow2_rc_get(block, eng->refcount_order,
			   idx & ((1ULL << eng->rb_bits) - 1));
	qcow2_cache_put(eng->rb_cache, (void **)&block);
	return 0;
}

static uint64_t max_cluster_index(const struct qcow2_engine *eng)
{
	return QCOW2_MAX_HOST_OFFSET >> eng->cluster_bits;
}

/*
 * First run of n free clusters at or after the lowest free cluster.  Free
 * means refcount 0, which includes every cluster without a refcount block.
 */
static int find_free_run(struct qcow2_engine *eng, uint64_t n,
			 uint64_t *start)
{
	uint64_t idx = eng->free_hint, run = 0, run_start = idx;
	uint64_t per = 1ULL << eng->rb_bits;
	bool first_free_seen = false;

	while (run < n) {
		uint64_t ti = idx >> eng->rb_bits, end;
		uint8_t *block;
		int ret;

		if (idx + (n - run) > max_cluster_index(eng))
			return qerr_set(eng->err, -ENOSPC,
					"no free cluster below the 64 PiB "
					"host offset limit");
		if (!rb_exists(eng, ti)) {
			uint64_t take = (ti + 1) * per - idx;

			if (take > n - run)
				take = n - run;
			if (!first_free_seen) {
				eng->free_hint = idx;
				first_free_seen = true;
			}
			run += take;
			idx += take;
			continue;
		}
		ret = rb_get(eng, ti, &block);
		if (ret < 0)
			return ret;
		end = (ti + 1) * per;
		for (; idx < end && run < n; idx++) {
			if (qcow2_rc_get(block, eng->refcount_order,
					 idx & (per - 1)) == 0) {
				if (!first_free_seen) {
					eng->free_hint = idx;
					first_free_seen = true;
				}
				run++;
			} else {
				run = 0;
				run_start = idx + 1;
			}
		}
		qcow2_cache_put(eng->rb_cache, (void **)&block);
	}
	*start = run_start;
	return 0;
}

/* Write an 8-byte refcount table entry in place. */
static int reftable_write_entry(struct qcow2_engine *eng, uint64_t ti)
{
	uint8_t be[8];

	be64_put(be, eng->reftable[ti]);
	return qcow2_pwrite(eng, eng->file, be, 8,
			    eng->reftable_offset + ti * 8);
}

/* Refcount of cluster idx in an existing block += delta (checked). */
static int rc_add(struct qcow2_engine *eng, uint64_t idx, int delta)
{
	uint64_t ti = idx >> eng->rb_bits, i = idx & ((1ULL << eng->rb_bits) - 1);
	uint8_t *block;
	uint64_t v;
	int ret = rb_get(eng, ti, &block);

	if (ret < 0)
		return ret;
	v = qcow2_rc_get(block, eng->refcount_order, i);
	if (delta > 0 && v > eng->refcount_max - (uint64_t)delta)
		ret = qerr_set(eng->err, -ERANGE,
			       "refcount of cluster at 0x%llx would exceed "
			       "%llu",
			       (unsigned long long)(idx << eng->cluster_bits),
			       (unsigned long long)eng->refcount_max);
	else if (delta < 0 && v < (uint64_t)-delta)
		ret = qcow2_corrupt(eng, "refcount of cluster at 0x%llx "
				    "would become negative",
				    (unsigned long long)(idx << eng->cluster_bits));
	if (ret == 0) {
		qcow2_rc_set(block, eng->refcount_order, i,
			     v + (uint64_t)(int64_t)delta);
		qcow2_cache_mark_dirty(eng->rb_cache, block);
	}
	qcow2_cache_put(eng->rb_cache, (void **)&block);
	return ret;
}

static int reftable_grow(struct qcow2_engine *eng, uint64_t need_ti);

/*
 * Give table index ti a refcount block.  The block goes to the first free
 * cluster; if that cluster is one it describes, it counts itself.
 */
static int rb_alloc(struct qcow2_engine *eng, uint64_t ti, int depth)
{
	uint8_t *buf = NULL;
	int ret = 0;

	if (depth > 8)
		return qerr_set(eng->err, -EIO,
				"refcount block allocation does not converge");
	while (!rb_exists(eng, ti)) {
		uint64_t b, bti;

		if (ti >= eng->reftable_entries) {
			ret = reftable_grow(eng, ti);
			if (ret < 0)
				break;
			continue;
		}
		ret = find_free_run(eng, 1, &b);
		if (ret < 0)
			break;
		bti = b >> eng->rb_bits;
		if (bti != ti && !rb_exists(eng, bti)) {
			ret = rb_alloc(eng, bti, depth + 1);
			if (ret < 0)
				break;
			continue;
		}
		buf = calloc(1, eng->cluster_size);
		if (!buf)
			return qerr_set(eng->err, -ENOMEM, "out of memory");
		qcow2_cache_discard(eng->rb_cache, b << eng->cluster_bits);
		qcow2_cache_discard(eng->l2_cache, b << eng->cluster_bits);
		if (bti == ti) {
			qcow2_rc_set(buf, eng->refcount_order,
				     b & ((1ULL << eng->rb_bits) - 1), 1);
		} else {
			ret = rc_add(eng, b, 1);
			if (ret == 0)
				ret = qcow2_cache_flush(eng->rb_cache);
		}
		if (ret == 0)
			ret = qcow2_pwrite(eng, eng->file, buf,
					   eng->cluster_size,
					   b << eng->cluster_bits);
		if (ret == 0)
			ret = qcow2_sync(eng);
		free(buf);
		if (ret < 0)
			break;
		if ((b + 1) << eng->cluster_bits > eng->alloc_end)
			eng->alloc_end = (b + 1) << eng->cluster_bits;
		eng->reftable[ti] = b << eng->cluster_bits;
		ret = reftable_write_entry(eng, ti);
		if (ret < 0)
			break;
	}
	return ret;
}

/* Number of regions in [a, end) clusters that have no refcount block. */
static uint64_t missing_blocks(const struct qcow2_engine *eng, uint64_t a,
			       uint64_t end)
{
	uint64_t n = 0;

	for (uint64_t r = a >> eng->rb_bits; r <= (end - 1) >> eng->rb_bits;
	     r++)
		if (!rb_exists(eng, r))
			n++;
	return n;
}

/*
 * Lay out a grown refcount table and the new blocks describing it at the
 * end of the file: blocks at [a, a+nb), table at [a+nb, a+nb+tc) clusters.
 */
static int grow_layout(struct qcow2_engine *eng, uint64_t need_ti,
		       uint64_t a, uint64_t *entries, uint64_t *nb,
		       uint64_t *tc)
{
	uint64_t per = eng->cluster_size / 8;
	uint64_t want = eng->reftable_entries + eng->reftable_entries / 2;

	if (want < need_ti + 1)
		want = need_ti + 1;
	for (int iter = 0; iter < 64; iter++) {
		uint64_t n = 0, m, last;

		want = (want + per - 1) / per * per;
		if (want * 8 > QCOW2_MAX_REFTABLE_BYTES)
			return qerr_set(eng->err, -EFBIG,
					"the refcount table would exceed "
					"%u MiB",
					QCOW2_MAX_REFTABLE_BYTES >> 20);
		*tc = want / per;
		while ((m = missing_blocks(eng, a, a + n + *tc)) != n)
			n = m;
		last = (a + n + *tc - 1) >> eng->rb_bits;
		if (last < want) {
			*entries = want;
			*nb = n;
			return 0;
		}
		want = last + 1;
	}
	return qerr_set(eng->err, -EIO, "refcount table growth does not "
			"converge");
}

/* Fill the new table and blocks for the area [a, a+nb+tc) clusters. */
static int grow_fill(struct qcow2_engine *eng, uint64_t a, uint64_t nb,
		     uint64_t tc, uint64_t *table, uint8_t *blocks)
{
	uint64_t per = 1ULL << eng->rb_bits, k = 0;
	int ret;

	for (uint64_t r = a >> eng->rb_bits; k < nb; r++) {
		if (rb_exists(eng, r))
			continue;
		table[r] = (a + k) << eng->cluster_bits;
		k++;
	}
	for (uint64_t c = a; c < a + nb + tc; c++) {
		uint64_t r = c >> eng->rb_bits;

		if (rb_exists(eng, r)) {
			uint64_t rc;

			ret = qcow2_refcount_get(eng, c, &rc);
			if (ret == 0 && rc != 0)
				ret = qcow2_corrupt(eng, "cluster 0x%llx past "
						    "the end of the image has "
						    "refcount %llu",
						    (unsigned long long)(c << eng->cluster_bits),
						    (unsigned long long)rc);
			if (ret == 0)
				ret = rc_add(eng, c, 1);
			if (ret < 0)
				return ret;
			continue;
		}
		k = (table[r] >> eng->cluster_bits) - a;
		qcow2_rc_set(blocks + (k << eng->cluster_bits),
			     eng->refcount_order, c & (per - 1), 1);
	}
	return 0;
}

/*
 * Replace the refcount table by a larger one covering need_ti.  Nothing
 * points at the new table or its blocks until the header switches, after
 * a sync; the old table is freed last.
 */
static int reftable_grow(struct qcow2_engine *eng, uint64_t need_ti)
{
	uint64_t cs = eng->cluster_size, a, entries = 0, nb = 0, tc = 0;
	uint64_t old_off = eng->reftable_offset, old_clusters = eng->reftable_clusters;
	uint64_t *table = NULL;
	uint8_t *blocks = NULL, *raw = NULL;
	int ret;

	a = (eng->alloc_end + cs - 1) >> eng->cluster_bits;
	if (eng->phys_size > a << eng->cluster_bits)
		a = (eng->phys_size + cs - 1) >> eng->cluster_bits;
	ret = grow_layout(eng, need_ti, a, &entries, &nb, &tc);
	if (ret < 0)
		return ret;
	table = calloc(entries, 8);
	blocks = calloc(nb ? nb : 1, cs);
	raw = malloc(entries * 8);
	if (!table || !blocks || !raw) {
		ret = qerr_set(eng->err, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(table, eng->reftable, eng->reftable_entries * 8);
	ret = grow_fill(eng, a, nb, tc, table, blocks);
	if (ret < 0)
		goto out;
	for (uint64_t i = 0; i < entries; i++)
		be64_put(raw + i * 8, table[i]);
	if (nb)
		ret = qcow2_pwrite(eng, eng->file, blocks, nb * cs,
				   a << eng->cluster_bits);
	if (ret == 0)
		ret = qcow2_pwrite(eng, eng->file, raw, entries * 8,
				   (a + nb) << eng->cluster_bits);
	if (ret == 0)
		ret = qcow2_cache_flush(eng->rb_cache);	/* syncs all */
	if (ret == 0)
		ret = qcow2_header_set_reftable(eng, (a + nb) << eng->cluster_bits,
						(uint32_t)tc);
	if (ret < 0)
		goto out;
	free(eng->reftable);
	eng->reftable = table;
	table = NULL;
	eng->reftable_entries = entries;
	eng->reftable_offset = (a + nb) << eng->cluster_bits;
	eng->reftable_clusters = (uint32_t)tc;
	if ((a + nb + tc) << eng->cluster_bits > eng->alloc_end)
		eng->alloc_end = (a + nb + tc) << eng->cluster_bits;
	ret = qcow2_refcount_update(eng, old_off, old_clusters * cs, -1);
out:
	free(table);
	free(blocks);
	free(raw);
	return ret;
}

/* The refcount cache must not write before pending L2 changes are out. */
static int flush_pending_free(struct qcow2_engine *eng)
{
	int ret;

	if (!eng->pending_free)
		return 0;
	ret = qcow2_cache_flush_deps(eng->rb_cache);
	if (ret == 0)
		ret = qcow2_cache_flush(eng->l2_cache);
	if (ret == 0)
		eng->pending_free = false;
	return ret;
}

/* Blocks for every cluster of [start, start+n); 1 if any was created. */
static int ensure_blocks(struct qcow2_engine *eng, uint64_t start, uint64_t n)
{
	int changed = 0;

	for (uint64_t r = start >> eng->rb_bits;
	     r <= (start + n - 1) >> eng->rb_bits; r++) {
		if (rb_exists(eng, r))
			continue;
		int ret = rb_alloc(eng, r, 0);

		if (ret < 0)
			return ret;
		changed = 1;
	}
	return changed;
}

/* Take the free, block-covered clusters [start, start+n). */
static int take_clusters(struct qcow2_engine *eng, uint64_t start, uint64_t n)
{
	int ret = 0;

	if (!eng->lazy)
		ret = qcow2_cache_set_dependency(eng->l2_cache, eng->rb_cache);
	for (uint64_t c = start; c < start + n && ret == 0; c++) {
		qcow2_cache_discard(eng->l2_cache, c << eng->cluster_bits);
		qcow2_cache_discard(eng->rb_cache, c << eng->cluster_bits);
		ret = rc_add(eng, c, 1);
	}
	if (ret < 0)
		return ret;
	if (start == eng->free_hint)
		eng->free_hint = start + n;
	if ((start + n) << eng->cluster_bits > eng->alloc_end)
		eng->alloc_end = (start + n) << eng->cluster_bits;
	return 0;
}

static int range_is_free(struct qcow2_engine *eng, uint64_t start, uint64_t n)
{
	for (uint64_t c = start; c < start + n; c++) {
		uint64_t rc;
		int ret = qcow2_refcount_get(eng, c, &rc);

		if (ret < 0)
			return ret;
		if (rc)
			return -EEXIST;
	}
	return 0;
}

/*
 * Take n clusters: the first free run (fixed false) or exactly those at
 * *start (fixed true, -EEXIST when one is in use).  Refcount blocks are
 * created first; since one may land in the run, the run is looked for
 * again until no block had to be made.
 */
static int alloc_run(struct qcow2_engine *eng, uint64_t n, uint64_t *start,
		     bool fixed)
{
	int ret = qcow2_reftable_load(eng);

	if (ret == 0)
		ret = flush_pending_free(eng);
	while (ret == 0) {
		ret = fixed ? range_is_free(eng, *start, n)
			    : find_free_run(eng, n, start);
		if (ret == 0)
			ret = ensure_blocks(eng, *start, n);
		if (ret == 0)
			return take_clusters(eng, *start, n);
		if (ret > 0)
			ret = 0;
	}
	return ret;
}

int qcow2_alloc_clusters(struct qcow2_engine *eng, uint64_t n, uint64_t *off)
{
	uint64_t start = 0;
	int ret;

	if (n == 0 || n > (1ULL << 30))
		return qerr_set(eng->err, -EINVAL,
				"cannot allocate %llu clusters at once",
				(unsigned long long)n);
	ret = alloc_run(eng, n, &start, false);
	if (ret == 0)
		*off = start << eng->cluster_bits;
	return ret;
}

int qcow2_alloc_clusters_at(struct qcow2_engine *eng, uint64_t off,
			    uint64_t n)
{
	uint64_t start = off >> eng->cluster_bits;

	if (n == 0 || start + n > max_cluster_index(eng))
		return -EEXIST;
	return alloc_run(eng, n, &start, true);
}

/* After a refcount reached 0: the cluster may be reused, carefully. */
static void cluster_freed(struct qcow2_engine *eng, uint64_t c)
{
	uint64_t off = c << eng->cluster_bits;

	if (c < eng->free_hint)
		eng->free_hint = c;
	eng->pending_free = true;
	qcow2_cache_discard(eng->l2_cache, off);
	qcow2_cache_discard(eng->rb_cache, off);
	if (eng->comp_next && (eng->comp_next >> eng->cluster_bits) == c)
		eng->comp_next = 0;
}

int qcow2_refcount_update(struct qcow2_engine *eng, uint64_t off,
			  uint64_t len, int delta)
{
	uint64_t first, last;
	int ret;

	if (len == 0 || delta == 0)
		return 0;
	ret = qcow2_reftable_load(eng);
	if (ret < 0)
		return ret;
	first = off >> eng->cluster_bits;
	last = (off + len - 1) >> eng->cluster_bits;
	/* Check the whole range before changing anything. */
	for (uint64_t c = first; c <= last; c++) {
		uint64_t rc;

		if (!rb_exists(eng, c >> eng->rb_bits)) {
			if (delta > 0)
				return qerr_set(eng->err, -EIO,
						"cluster 0x%llx has no refcount "
						"block",
						(unsigned long long)(c << eng->cluster_bits));
			return qcow2_corrupt(eng, "refcount of cluster at "
					     "0x%llx would become negative",
					     (unsigned long long)(c << eng->cluster_bits));
		}
		ret = qcow2_refcount_get(eng, c, &rc);
		if (ret < 0)
			return ret;
		if (delta > 0 && rc > eng->refcount_max - (uint64_t)delta)
			return qerr_set(eng->err, -ERANGE,
					"refcount of cluster at 0x%llx would "
					"exceed %llu",
					(unsigned long long)(c << eng->cluster_bits),
					(unsigned long long)eng->refcount_max);
		if (delta < 0 && rc < (uint64_t)-delta)
			return qcow2_corrupt(eng, "refcount of cluster at "
					     "0x%llx would become negative",
					     (unsigned long long)(c << eng->cluster_bits));
	}
	ret = 0;
	if (delta < 0)
		ret = qcow2_cache_set_dependency(eng->rb_cache, eng->l2_cache);
	else if (!eng->lazy)
		ret = qcow2_cache_set_dependency(eng->l2_cache, eng->rb_cache);
	for (uint64_t c = first; c <= last && ret == 0; c++) {
		uint64_t rc;

		ret = rc_add(eng, c, delta);
		if (ret == 0 && delta < 0)
			ret = qcow2_refcount_get(eng, c, &rc);
		if (ret == 0 && delta < 0 && rc == 0)
			cluster_freed(eng, c);
	}
	return ret;
}

int qcow2_free_l2e(struct qcow2_engine *eng, uint64_t l2e)
{
	uint64_t off, len;

	if (l2e & QCOW2_OFLAG_COMPRESSED) {
		qcow2_cdesc_decode(eng->cluster_bits, l2e, &off, &len);
		if (eng->cbuf_l2e == l2e)
			eng->cbuf_l2e = 0;
		return qcow2_refcount_update(eng, off, len, -1);
	}
	off = l2e & QCOW2_L2E_OFFSET_MASK;
	if (eng->has_data_file || (off == 0 && !(l2e & QCOW2_OFLAG_COPIED)))
		return 0;
	return qcow2_refcount_update(eng, off, eng->cluster_size, -1);
}

/* Does refcount block ti count nothing but, possibly, itself? */
static int rb_unused(struct qcow2_engine *eng, uint64_t ti, bool *unused)
{
	uint64_t per = 1ULL << eng->rb_bits, c = eng->reftable[ti] >> eng->cluster_bits;
	bool self = (c >> eng->rb_bits) == ti;
	uint8_t *block;
	int ret = rb_get(eng, ti, &block);

	*unused = ret == 0;
	for (uint64_t i = 0; i < per && *unused; i++) {
		uint64_t v = qcow2_rc_get(block, eng->refcount_order, i);

		if (v && !(self && i == (c & (per - 1)) && v == 1))
			*unused = false;
	}
	if (ret == 0)
		qcow2_cache_put(eng->rb_cache, (void **)&block);
	return ret;
}

int qcow2_refblocks_trim(struct qcow2_engine *eng)
{
	bool changed = true;
	int ret = qcow2_reftable_load(eng);

	/* Freeing one block can empty the block that counted it: repeat. */
	while (ret == 0 && changed) {
		changed = false;
		for (uint64_t ti = 0; ti < eng->reftable_entries && ret == 0;
		     ti++) {
			uint64_t off = eng->reftable[ti], c = off >> eng->cluster_bits;
			bool unused;

			if (!off)
				continue;
			ret = rb_unused(eng, ti, &unused);
			if (ret < 0 || !unused)
				continue;
			/* Unhook it on disk before its own count goes. */
			eng->reftable[ti] = 0;
			ret = reftable_write_entry(eng, ti);
			if (ret == 0)
				ret = qcow2_sync(eng);
			if (ret < 0)
				break;
			changed = true;
			if ((c >> eng->rb_bits) == ti)
				cluster_freed(eng, c);	/* it counted itself */
			else
				ret = qcow2_refcount_update(eng, off,
							    eng->cluster_size, -1);
		}
	}
	return ret;
}
