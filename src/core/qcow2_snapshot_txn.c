/*
 * qcow2_snapshot_txn.c: the crash-safe transaction of the snapshot
 * operations: refcount changes made in copies of the refcount blocks they
 * touch ("shadows"), then one header write that switches the L1 table, the
 * refcount table and the snapshot table together (see the header file for
 * why, and the order of the calls).
 *
 * Spec: qcow2.txt "Header" (bytes 24..71), "Host cluster management".
 * Invariants:
 *   - until the header switch, nothing reachable from the header changes:
 *     new clusters are taken from the live refcounts (the engine's
 *     allocator) and written while unreferenced, so a kill leaves leaks;
 *   - the shadows are copied from the live blocks only after the last
 *     allocation, so they count every new cluster;
 *   - the shadows and the new refcount table are written and synced
 *     before the header switch; the replaced blocks and the old table are
 *     freed in the shadows, so the switch frees them too (only a table
 *     that grew during the allocations is freed after it);
 *   - refcount changes are applied in sorted batches, one cache lookup per
 *     run of clusters in the same block, checked for overflow and for
 *     references to clusters whose refcount is 0.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_snapshot_priv.h"

/* Pending changes held before a sorted batch is applied (8 MiB). */
#define TXN_BUF_ENTRIES (1U << 20)
/* Memory for shadow blocks held at once (the rest wait in their clusters). */
#define TXN_CACHE_BYTES (8U << 20)

typedef unsigned long long ull;

int txn_init(struct snap_txn *t, struct qcow2_engine *eng)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->eng = eng;
	ret = qcow2_reftable_load(eng);
	if (ret < 0)
		return ret;
	t->nbits = eng->reftable_entries;
	t->min_freed = UINT64_MAX;
	t->marked = calloc((t->nbits + 7) / 8 + 1, 1);
	t->buf = malloc(TXN_BUF_ENTRIES * sizeof(*t->buf));
	if (!t->marked || !t->buf)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	return 0;
}

static void memo_release(struct snap_txn *t)
{
	if (t->memo)
		qcow2_cache_put(t->memo_cache, (void **)&t->memo);
	t->memo = NULL;
}

void txn_free(struct snap_txn *t)
{
	memo_release(t);
	qcow2_cache_free(t->cache);
	free(t->marked);
	free(t->sh_ti);
	free(t->sh_off);
	free(t->sh_init);
	free(t->allocs);
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

static bool is_marked(const struct snap_txn *t, uint64_t ti)
{
	return ti < t->nbits && (t->marked[ti >> 3] & (1U << (ti & 7)));
}

/* The bitmap follows the live table, which allocations may have grown. */
static int grow_bits(struct snap_txn *t)
{
	uint64_t n = t->eng->reftable_entries, old = (t->nbits + 7) / 8 + 1;
	uint8_t *m;

	if (n <= t->nbits)
		return 0;
	m = realloc(t->marked, (n + 7) / 8 + 1);
	if (!m)
		return qerr_set(t->eng->err, -ENOMEM, "out of memory");
	memset(m + old, 0, (n + 7) / 8 + 1 - old);
	t->marked = m;
	t->nbits = n;
	return 0;
}

int txn_mark(struct snap_txn *t, uint64_t off, uint64_t len)
{
	struct qcow2_engine *eng = t->eng;
	unsigned shift = eng->cluster_bits + eng->rb_bits;
	int ret = grow_bits(t);

	if (len == 0 || ret < 0)
		return ret;
	for (uint64_t ti = off >> shift; ti <= (off + len - 1) >> shift; ti++) {
		if (ti >= t->nbits || eng->reftable[ti] == 0)
			return qcow2_corrupt(eng, "cluster 0x%llx is in use "
					     "but has no refcount block",
					     (ull)(off >> eng->cluster_bits
						   << eng->cluster_bits));
		t->marked[ti >> 3] |= (uint8_t)(1U << (ti & 7));
	}
	return 0;
}

int txn_alloc(struct snap_txn *t, uint64_t n, uint64_t *off)
{
	struct qcow2_engine *eng = t->eng;
	int ret;

	if (t->prepared)
		return qerr_set(eng->err, -EIO, "internal error: allocation "
				"after the refcount copies were made");
	if (t->nallocs == t->cap_allocs) {
		size_t cap = t->cap_allocs ? t->cap_allocs * 2 : 64;
		struct txn_alloc_rec *a = realloc(t->allocs, cap * sizeof(*a));

		if (!a)
			return qerr_set(eng->err, -ENOMEM, "out of memory");
		t->allocs = a;
		t->cap_allocs = cap;
	}
	ret = qcow2_alloc_clusters(eng, n, off);
	if (ret == 0)
		t->allocs[t->nallocs++] = (struct txn_alloc_rec){ *off, n };
	return ret;
}

/* Give back the last allocation (a table that came out too small). */
static int txn_unalloc_last(struct snap_txn *t)
{
	struct txn_alloc_rec *a = &t->allocs[--t->nallocs];

	return qcow2_refcount_update(t->eng, a->off,
				     a->n << t->eng->cluster_bits, -1);
}

/* The new refcount table: big enough for every live entry, last. */
static int alloc_reftable(struct snap_txn *t)
{
	struct qcow2_engine *eng = t->eng;

	for (int tries = 0; tries < 8; tries++) {
		uint64_t bytes = eng->reftable_entries * 8;
		uint64_t n = (bytes + eng->cluster_size - 1) /
			     eng->cluster_size;
		int ret;

		if (bytes > QCOW2_MAX_REFTABLE_BYTES)
			return qerr_set(eng->err, -EFBIG, "the refcount table "
					"would exceed %u MiB",
					QCOW2_MAX_REFTABLE_BYTES >> 20);
		ret = txn_alloc(t, n, &t->rt_off);
		if (ret < 0)
			return ret;
		/* Allocating may have grown the live table past our copy. */
		if (eng->reftable_entries * 8 <= n << eng->cluster_bits) {
			t->rt_clusters = (uint32_t)n;
			return 0;
		}
		ret = txn_unalloc_last(t);
		if (ret < 0)
			return ret;
	}
	return qerr_set(eng->err, -EIO, "the refcount table keeps growing");
}

static int alloc_shadows(struct snap_txn *t)
{
	struct qcow2_engine *eng = t->eng;
	size_t k = 0;

	for (uint64_t ti = 0; ti < t->nbits; ti++)
		if (is_marked(t, ti))
			t->nshadow++;
	if (t->nshadow == 0)
		return 0;
	t->sh_ti = malloc(t->nshadow * sizeof(*t->sh_ti));
	t->sh_off = malloc(t->nshadow * sizeof(*t->sh_off));
	t->sh_init = calloc(t->nshadow, 1);
	if (!t->sh_ti || !t->sh_off || !t->sh_init)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	for (uint64_t ti = 0; ti < t->nbits; ti++)
		if (is_marked(t, ti))
			t->sh_ti[k++] = ti;
	/* One at a time: the holes earlier operations left are filled. */
	for (k = 0; k < t->nshadow; k++) {
		int ret = txn_alloc(t, 1, &t->sh_off[k]);

		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The blocks that get copies and the refcount table are freed in the
 * switch too: mark where their own refcounts are, until nothing new
 * (a block's refcount may sit in a block that only now gets a copy).
 */
static int mark_structure(struct snap_txn *t)
{
	struct qcow2_engine *eng = t->eng;
	unsigned shift = eng->cluster_bits + eng->rb_bits;
	bool changed = true;
	int ret;

	t->old_rt_off = eng->reftable_offset;
	t->old_rt_bytes = (uint64_t)eng->reftable_clusters << eng->cluster_bits;
	ret = txn_mark(t, t->old_rt_off, t->old_rt_bytes);
	while (changed && ret == 0) {
		changed = false;
		for (uint64_t ti = 0; ti < t->nbits && ret == 0; ti++) {
			if (!is_marked(t, ti) ||
			    is_marked(t, eng->reftable[ti] >> shift))
				continue;
			ret = txn_mark(t, eng->reftable[ti], eng->cluster_size);
			changed = true;
		}
	}
	return ret;
}

int txn_prepare(struct snap_txn *t)
{
	struct qcow2_engine *eng = t->eng;
	uint64_t slots = TXN_CACHE_BYTES / eng->cluster_size;
	int ret = mark_structure(t);

	if (ret == 0)
		ret = alloc_shadows(t);

	if (ret == 0)
		ret = alloc_reftable(t);
	/* Every allocation on the file before the shadows copy it. */
	if (ret == 0)
		ret = qcow2_engine_flush(eng);
	if (ret < 0)
		return ret;
	if (slots < 8)
		slots = 8;
	t->cache = qcow2_cache_new(eng, slots > 512 ? 512 : (size_t)slots,
				   "refcount block copy");
	if (!t->cache)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	t->prepared = true;
	return 0;
}

/* Pin shadow k, copying the live block into it on first use. */
static int shadow_get(struct snap_txn *t, size_t k, uint8_t **block)
{
	struct qcow2_engine *eng = t->eng;
	uint8_t *live;
	int ret;

	if (t->sh_init[k])
		return qcow2_cache_get(t->cache, t->sh_off[k], (void **)block);
	ret = qcow2_cache_get_empty(t->cache, t->sh_off[k], (void **)block);
	if (ret < 0)
		return ret;
	ret = qcow2_cache_get(eng->rb_cache, eng->reftable[t->sh_ti[k]],
			      (void **)&live);
	if (ret < 0) {
		qcow2_cache_put(t->cache, (void **)block);
		return ret;
	}
	memcpy(*block, live, eng->cluster_size);
	qcow2_cache_put(eng->rb_cache, (void **)&live);
	qcow2_cache_mark_dirty(t->cache, *block);
	t->sh_init[k] = 1;
	return 0;
}

static long shadow_for(struct snap_txn *t, uint64_t ti)
{
	long k = t->prepared ? snap_bsearch(t->sh_ti, t->nshadow, ti) : -1;

	if (k < 0)
		qerr_set(t->eng->err, -EIO, "internal error: refcount block "
			 "%llu has no copy", (ull)ti);
	return k;
}

int txn_add(struct snap_txn *t, uint64_t off, uint64_t len, int delta)
{
	struct qcow2_engine *eng = t->eng;
	uint64_t first, last;
	int ret;

	if (len == 0)
		return 0;
	if (t->nbuf && delta != t->sign) {
		ret = txn_flush(t);
		if (ret < 0)
			return ret;
	}
	t->sign = delta;
	first = off >> eng->cluster_bits;
	last = (off + len - 1) >> eng->cluster_bits;
	for (uint64_t c = first; c <= last; c++) {
		if (t->nbuf == TXN_BUF_ENTRIES) {
			ret = txn_flush(t);
			if (ret < 0)
				return ret;
		}
		t->buf[t->nbuf++] = c;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One change to entry idx of a block: checked as the engine checks. */
static int change_one(struct snap_txn *t, uint8_t *block, uint64_t c)
{
	struct qcow2_engine *eng = t->eng;
	uint64_t idx = c & ((1ULL << eng->rb_bits) - 1);
	uint64_t v = qcow2_rc_get(block, eng->refcount_order, idx);

	if (t->sign > 0 && v == 0)
		return qcow2_corrupt(eng, "cluster at 0x%llx is in use but its "
				     "refcount is 0",
				     (ull)(c << eng->cluster_bits));
	if (t->sign > 0 && v >= eng->refcount_max)
		return qerr_set(eng->err, -ERANGE, "refcount of cluster at "
				"0x%llx would exceed %llu",
				(ull)(c << eng->cluster_bits),
				(ull)eng->refcount_max);
	if (t->sign < 0 && v == 0)
		return qcow2_corrupt(eng, "refcount of cluster at 0x%llx would "
				     "become negative",
				     (ull)(c << eng->cluster_bits));
	v = t->sign > 0 ? v + 1 : v - 1;
	qcow2_rc_set(block, eng->refcount_order, idx, v);
	if (v == 0 && c < t->min_freed)
		t->min_freed = c;
	return 0;
}

int txn_flush(struct snap_txn *t)
{
	struct qcow2_engine *eng = t->eng;
	size_t i = 0;
	int ret = 0;

	memo_release(t);

	/* Mostly in order already (tables are walked in file order). */
	for (size_t j = 1; j < t->nbuf; j++) {
		if (t->buf[j] < t->buf[j - 1]) {
			qsort(t->buf, t->nbuf, sizeof(*t->buf), cmp_u64);
			break;
		}
	}
	while (i < t->nbuf && ret == 0) {
		uint64_t ti = t->buf[i] >> eng->rb_bits;
		long k = shadow_for(t, ti);
		uint8_t *block;

		if (k < 0)
			return -EIO;
		ret = shadow_get(t, (size_t)k, &block);
		if (ret < 0)
			return ret;
		while (ret == 0 && i < t->nbuf &&
		       t->buf[i] >> eng->rb_bits == ti)
			ret = change_one(t, block, t->buf[i++]);
		qcow2_cache_mark_dirty(t->cache, block);
		qcow2_cache_put(t->cache, (void **)&block);
	}
	t->nbuf = 0;
	return ret;
}

/* Pin the block holding table index ti as it is now: shadow, or live. */
static int memo_get(struct snap_txn *t, uint64_t ti)
{
	struct qcow2_engine *eng = t->eng;
	long k;

	if (t->memo && t->memo_ti == ti)
		return 0;
	memo_release(t);
	t->memo_ti = ti;
	if (!t->prepared || !is_marked(t, ti)) {
		if (ti >= eng->reftable_entries || eng->reftable[ti] == 0)
			return 0;	/* no block: every refcount is 0 */
		t->memo_cache = eng->rb_cache;
		return qcow2_cache_get(eng->rb_cache, eng->reftable[ti],
				       (void **)&t->memo);
	}
	k = shadow_for(t, ti);
	if (k < 0)
		return -EIO;
	t->memo_cache = t->cache;
	return shadow_get(t, (size_t)k, &t->memo);
}

int txn_rc(struct snap_txn *t, uint64_t idx, uint64_t *rc)
{
	struct qcow2_engine *eng = t->eng;
	uint64_t ti = idx >> eng->rb_bits;
	int ret = memo_get(t, ti);

	*rc = 0;
	if (ret < 0 || !t->memo)
		return ret;
	*rc = qcow2_rc_get(t->memo, eng->refcount_order,
			   idx & ((1ULL << eng->rb_bits) - 1));
	return 0;
}

/* Shadows and the new refcount table on the file, synced. */
static int write_structure(struct snap_txn *t, uint64_t **table)
{
	struct qcow2_engine *eng = t->eng;
	uint64_t bytes = (uint64_t)t->rt_clusters << eng->cluster_bits;
	uint8_t *raw;
	int ret = 0;

	for (size_t k = 0; k < t->nshadow && ret == 0; k++) {
		uint8_t *block;

		if (t->sh_init[k])
			continue;
		ret = shadow_get(t, k, &block);
		if (ret == 0)
			qcow2_cache_put(t->cache, (void **)&block);
	}
	if (ret == 0)
		ret = qcow2_cache_flush(t->cache);
	if (ret < 0)
		return ret;
	if (eng->reftable_entries * 8 > bytes)
		return qerr_set(eng->err, -EIO, "internal error: the refcount "
				"table grew during a snapshot operation");
	*table = calloc(bytes / 8, 8);
	raw = calloc(1, bytes);
	if (!*table || !raw) {
		free(raw);
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	}
	memcpy(*table, eng->reftable, eng->reftable_entries * 8);
	for (size_t k = 0; k < t->nshadow; k++)
		(*table)[t->sh_ti[k]] = t->sh_off[k];
	for (uint64_t i = 0; i < bytes / 8; i++)
		be64_put(raw + i * 8, (*table)[i]);
	ret = qcow2_pwrite(eng, eng->file, raw, bytes, t->rt_off);
	free(raw);
	return ret ? ret : qcow2_sync(eng);
}

/* Bytes 24..71 of the header in one write: the atomic switch. */
static int switch_header(struct snap_txn *t, const struct txn_header *h)
{
	struct qcow2_engine *eng = t->eng;
	struct qcow2_header *mh = &eng->s->meta.h;
	uint8_t b[48];
	int ret;

	be64_put(b, h->size);
	be32_put(b + 8, mh->crypt_method);
	be32_put(b + 12, h->l1_size);
	be64_put(b + 16, h->l1_off);
	be64_put(b + 24, t->rt_off);
	be32_put(b + 32, t->rt_clusters);
	be32_put(b + 36, h->nb_snapshots);
	be64_put(b + 40, h->snapshots_off);
	ret = qcow2_pwrite(eng, eng->file, b, sizeof(b), 24);
	if (ret == 0)
		ret = qcow2_sync(eng);
	if (ret < 0)
		return ret;
	mh->size = h->size;
	mh->l1_size = h->l1_size;
	mh->l1_table_offset = h->l1_off;
	mh->refcount_table_offset = t->rt_off;
	mh->refcount_table_clusters = t->rt_clusters;
	mh->nb_snapshots = h->nb_snapshots;
	mh->snapshots_offset = h->snapshots_off;
	t->switched = true;
	return 0;
}

/* The blocks replaced and the old table go with the switch. */
static int free_structure(struct snap_txn *t)
{
	struct qcow2_engine *eng = t->eng;
	int ret = 0;

	for (size_t k = 0; k < t->nshadow && ret == 0; k++)
		ret = txn_add(t, eng->reftable[t->sh_ti[k]], eng->cluster_size,
			      -1);
	/* A table that grew while we allocated was freed then already. */
	if (ret == 0 && eng->reftable_offset == t->old_rt_off)
		ret = txn_add(t, t->old_rt_off, t->old_rt_bytes, -1);
	return ret ? ret : txn_flush(t);
}

int txn_commit(struct snap_txn *t, const struct txn_header *h)
{
	struct qcow2_engine *eng = t->eng;
	uint64_t *table = NULL, *old = eng->reftable;
	uint64_t old_off = eng->reftable_offset;
	uint64_t old_bytes = (uint64_t)eng->reftable_clusters
			     << eng->cluster_bits;
	int ret = free_structure(t);

	if (ret == 0)
		ret = write_structure(t, &table);
	if (ret == 0)
		ret = switch_header(t, h);
	if (ret < 0) {
		free(table);
		return ret;
	}
	/* The new structure is the image's now: nothing to give back. */
	t->nallocs = 0;
	eng->reftable = table;
	eng->reftable_entries = (uint64_t)t->rt_clusters
				<< (eng->cluster_bits - 3);
	eng->reftable_offset = t->rt_off;
	eng->reftable_clusters = t->rt_clusters;
	qcow2_cache_reset(eng->rb_cache);
	qcow2_cache_reset(eng->l2_cache);
	if (t->min_freed < eng->free_hint)
		eng->free_hint = t->min_freed;
	eng->comp_next = 0;
	eng->cbuf_l2e = 0;
	free(old);
	/* Only a table the allocations grew is left: unreferenced, freed. */
	if (old_off != t->old_rt_off)
		ret = qcow2_refcount_update(eng, old_off, old_bytes, -1);
	return ret ? ret : qcow2_engine_flush(eng);
}

void txn_abort(struct snap_txn *t)
{
	struct qcow2_engine *eng = t->eng;
	struct qerr ignore = { 0 }, *saved = eng->err;

	memo_release(t);
	if (t->nallocs == 0)
		return;
	/* The reason already recorded stays the one reported. */
	eng->err = &ignore;
	for (size_t i = t->nallocs; i > 0; i--) {
		const struct txn_alloc_rec *a = &t->allocs[i - 1];

		if (qcow2_refcount_update(eng, a->off,
					  a->n << eng->cluster_bits, -1) < 0)
			break;
	}
	qcow2_engine_flush(eng);
	t->nallocs = 0;
	eng->err = saved;
}
