/*
 * qcow2_alloc.c: the write side of the mapping: L2 tables for writing,
 * in-place writes, and copy-on-write into newly allocated clusters.
 *
 * Spec: qcow2.txt "Cluster mapping" (COPIED flags), "Extended L2 Entries"
 * (subcluster allocation) and "Snapshots" (refcount > 1 means copy on
 * write).  A guest cluster is written in place only when its host cluster
 * is ours alone (COPIED, or any cluster of an external data file); else a
 * new cluster is allocated, the bytes of it the write does not cover are
 * filled from the old content (backing chain, zeros, shared or compressed
 * data), the data is written, then the L2 entry is switched and only then
 * is the old reference dropped.
 *
 * Invariants: COPIED is set exactly on entries whose cluster has refcount
 * 1 (new clusters, new L2 tables); an L1 entry points at a new L2 table
 * only after that table is on the file; fill data is synced before the L2
 * entry that exposes it (the L2 cache depends on a flush).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_engine.h"

/* Largest run of clusters written with one allocation. */
#define MAX_RUN_BYTES (32ULL << 20)
#define MAX_RUN_CLUSTERS 512

static int l1_write_entry(struct qcow2_engine *eng, uint64_t idx)
{
	uint8_t be[8];

	be64_put(be, eng->l1[idx]);
	return qcow2_pwrite(eng, eng->file, be, 8, eng->l1_offset + idx * 8);
}

/* A new L2 table for L1 entry l1i: empty, or a copy of old_off. */
static int l2_new(struct qcow2_engine *eng, uint64_t l1i, uint64_t old_off,
		  uint64_t **table)
{
	uint64_t new_off, *t, *old;
	uint64_t n = 1ULL << eng->l2_bits;
	int ret = qcow2_alloc_clusters(eng, 1, &new_off);

	if (ret < 0)
		return ret;
	ret = qcow2_cache_get_empty(eng->l2_cache, new_off, (void **)&t);
	if (ret < 0)
		return ret;
	if (old_off) {
		ret = qcow2_cache_get(eng->l2_cache, old_off, (void **)&old);
		if (ret < 0)
			goto fail;
		memcpy(t, old, eng->cluster_size);
		qcow2_cache_put(eng->l2_cache, (void **)&old);
		/* Every cluster it names is now shared with the old table. */
		for (uint64_t i = 0; i < n; i++) {
			uint64_t e = qcow2_l2_get(eng, t, i);

			qcow2_l2_set(eng, t, i, e & ~QCOW2_OFLAG_COPIED,
				     qcow2_l2_bitmap(eng, t, i));
		}
	}
	qcow2_cache_mark_dirty(eng->l2_cache, t);
	ret = qcow2_cache_write_table(eng->l2_cache, t);
	if (ret == 0)
		ret = qcow2_sync(eng);
	if (ret < 0)
		goto fail;
	eng->l1[l1i] = new_off | QCOW2_OFLAG_COPIED;
	ret = l1_write_entry(eng, l1i);
	if (ret == 0 && old_off)
		ret = qcow2_refcount_update(eng, old_off, eng->cluster_size, -1);
	if (ret < 0)
		goto fail;
	*table = t;
	return 0;
fail:
	qcow2_cache_put(eng->l2_cache, (void **)&t);
	return ret;
}

int qcow2_l2_for_write(struct qcow2_engine *eng, uint64_t guest_off,
		       uint64_t **table)
{
	uint64_t l1i = qcow2_l1_index(eng, guest_off), l2_off, rc;
	int ret;

	if (l1i >= eng->l1_size)
		return qerr_set(eng->err, -EIO, "guest offset 0x%llx is past "
				"the L1 table",
				(unsigned long long)guest_off);
	ret = qcow2_l1_entry(eng, l1i, &l2_off);
	if (ret < 0)
		return ret;
	if (!l2_off)
		return l2_new(eng, l1i, 0, table);
	if (!(eng->l1[l1i] & QCOW2_OFLAG_COPIED)) {
		ret = qcow2_refcount_get(eng, l2_off >> eng->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		if (rc == 0)
			return qcow2_corrupt(eng, "L2 table at 0x%llx (L1 entry "
					     "%llu) has refcount 0",
					     (unsigned long long)l2_off,
					     (unsigned long long)l1i);
		if (rc > 1)
			return l2_new(eng, l1i, l2_off, table);
		/* Ours alone: the flag was just missing. */
		eng->l1[l1i] |= QCOW2_OFLAG_COPIED;
		ret = l1_write_entry(eng, l1i);
		if (ret < 0)
			return ret;
	}
	return qcow2_cache_get(eng->l2_cache, l2_off, (void **)table);
}

/*
 * Host clusters the engine must never overwrite with guest data: the
 * header, the active L1 table, the refcount table, the snapshot table
 * (its first cluster), the LUKS header area and any table in the caches
 * (qemu's "cached" overlap check, roughly).
 */
static int check_overlap(struct qcow2_engine *eng, uint64_t host, uint64_t len)
{
	const struct qcow2_header *h = &eng->s->meta.h;
	uint64_t end = host + len;
	struct {
		uint64_t off, len;
		const char *what;
	} meta[] = {
		{ 0, eng->cluster_size, "the header" },
		{ eng->l1_offset, (uint64_t)eng->l1_size * 8, "the L1 table" },
		{ eng->reftable_offset,
		  (uint64_t)eng->reftable_clusters << eng->cluster_bits,
		  "the refcount table" },
		{ h->snapshots_offset, h->nb_snapshots ? eng->cluster_size : 0,
		  "the snapshot table" },
		/* Losing the LUKS key slots loses every byte of data. */
		{ eng->s->meta.crypto_offset,
		  eng->s->meta.has_crypto_ext ? eng->s->meta.crypto_length : 0,
		  "the encryption header" },
	};

	if (eng->has_data_file)
		return 0;
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
		if (meta[i].len && host < meta[i].off + meta[i].len &&
		    meta[i].off < end)
			return qcow2_corrupt(eng, "guest data write at host "
					     "offset 0x%llx would overwrite %s",
					     (unsigned long long)host,
					     meta[i].what);
	if (qcow2_cache_contains(eng->l2_cache, host, len) ||
	    qcow2_cache_contains(eng->rb_cache, host, len))
		return qcow2_corrupt(eng, "guest data write at host offset "
				     "0x%llx would overwrite a metadata table",
				     (unsigned long long)host);
	return 0;
}

/* State of one write inside an L2 table. */
struct wstate {
	struct qcow2_engine *eng;
	uint64_t *t;
	bool filled;		/* copy-on-write fill was written */
	/* A pending write straight from the caller's buffer. */
	uint64_t p_host, p_guest;
	const uint8_t *p_buf;
	size_t p_len;
	/* Entry changes of the run, applied once its data is written. */
	size_t n;
	struct {
		uint64_t i, ne, nbm, old;
	} upd[MAX_RUN_CLUSTERS];
};

static int direct_flush(struct wstate *w)
{
	int ret = 0;

	if (w->p_len)
		ret = qcow2_data_pwrite(w->eng, w->p_host, w->p_guest, w->p_buf,
					w->p_len);
	w->p_len = 0;
	return ret;
}

static int direct_add(struct wstate *w, uint64_t host, uint64_t guest,
		      const uint8_t *buf, size_t len)
{
	if (w->p_len && w->p_host + w->p_len == host &&
	    w->p_buf + w->p_len == buf) {
		w->p_len += len;
		return 0;
	}
	int ret = direct_flush(w);

	w->p_host = host;
	w->p_guest = guest;
	w->p_buf = buf;
	w->p_len = len;
	return ret;
}

static bool in_place(const struct qcow2_engine *eng, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return false;
	if (eng->has_data_file)
		return (e & QCOW2_L2E_OFFSET_MASK) || (e & QCOW2_OFLAG_COPIED);
	return (e & QCOW2_L2E_OFFSET_MASK) && (e & QCOW2_OFLAG_COPIED);
}

static uint64_t units_touched(const struct qcow2_engine *eng, uint64_t ws,
			      uint64_t we)
{
	unsigned a, b;

	if (!eng->extl2)
		return 1;
	a = (unsigned)(ws >> eng->sc_bits);
	b = (unsigned)((we - 1) >> eng->sc_bits);
	return (b == 31 ? ~0U : (1U << (b + 1)) - 1) & ~((1U << a) - 1);
}

/* Units (subclusters, or the cluster) the old entry holds data for. */
static uint64_t units_with_data(const struct qcow2_engine *eng, uint64_t e,
				uint64_t bm)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return eng->extl2 ? 0xffffffffULL : 1;
	if (!eng->extl2)
		return ((e & QCOW2_L2E_OFFSET_MASK) && !(e & QCOW2_OFLAG_ZERO)) ||
			       (eng->has_data_file && (e & QCOW2_OFLAG_COPIED) &&
				!(e & QCOW2_OFLAG_ZERO))
			       ? 1 : 0;
	return bm & QCOW2_BITMAP_ALLOC_MASK;
}

static bool zero_block(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/*
 * Past the end of the file every byte reads as zero (to us and to qemu),
 * so zeros at the edges of a write starting there need not be written:
 * this keeps a small write into a fresh 2 MiB cluster from writing 2 MiB.
 */
static void trim_zeros(const uint8_t *buf, uint64_t *a, uint64_t *b)
{
	while (*a < *b) {
		uint64_t n = 512 - (*a & 511);

		if (n > *b - *a)
			n = *b - *a;
		if (!zero_block(buf + *a, n))
			break;
		*a += n;
	}
	while (*b > *a) {
		uint64_t n = *b & 511 ? *b & 511 : 512;

		if (n > *b - *a)
			n = *b - *a;
		if (!zero_block(buf + *b - n, n))
			break;
		*b -= n;
	}
}

/* Write the staged bytes [*rs, *re) of the COW buffer, if any. */
static int stage_flush(struct qcow2_engine *eng, uint64_t gc, uint64_t hc,
		       uint64_t *rs, uint64_t *re)
{
	uint64_t a = *rs, b = *re;
	uint64_t eof = eng->data == eng->file ? eng->phys_size : eng->data_phys_size;
	int ret = 0;

	if (b > a && hc + a >= eof) {
		/* Encrypted zeros are not zero bytes on disk. */
		if (!eng->crypto)
			trim_zeros(eng->cow_buf, &a, &b);
		/* The file must still hold the cluster (entries are checked). */
		if (eng->data == eng->file && hc + eng->cluster_size > eof)
			ret = qcow2_extend(eng, hc + eng->cluster_size);
	}
	if (b > a && ret == 0)
		ret = qcow2_data_pwrite(eng, hc + a, gc + a, eng->cow_buf + a, b - a);
	*rs = *re = 0;
	return ret;
}

/*
 * Write the window [ws, we) of one cluster (guest cluster gc, host hc)
 * through the COW buffer: units in `need` are written whole, the bytes
 * around the window taken from the old content (entry e/bm), except units
 * in `have` (already holding this data in place), where only the window
 * is written.
 */
static int cow_cluster(struct wstate *w, uint64_t gc, uint64_t hc,
		       uint64_t e, uint64_t bm, uint64_t ws, uint64_t we,
		       const uint8_t *buf, uint64_t need, uint64_t have)
{
	struct qcow2_engine *eng = w->eng;
	unsigned nunits = eng->extl2 ? QCOW2_SUBCLUSTERS : 1;
	uint64_t usize = 1ULL << eng->sc_bits, rs = 0, re = 0;
	uint8_t *cb = eng->cow_buf;
	int ret = direct_flush(w);

	for (unsigned u = 0; u < nunits && ret == 0; u++) {
		uint64_t us = (uint64_t)u * usize, ue = us + usize, a, b, x, y;

		if (!(need & (1ULL << u))) {
			ret = stage_flush(eng, gc, hc, &rs, &re);
			continue;
		}
		x = us > ws ? us : ws;	/* window part of the unit */
		y = ue < we ? ue : we;
		if (have & (1ULL << u)) {
			a = x;
			b = y;
		} else {
			a = us;
			b = ue;
			if (x >= y) {
				x = y = ue;
			}
			if (ret == 0 && us < x) {
				ret = qcow2_read_in_cluster(eng, gc + us, e, bm,
							    cb + us, x - us);
				w->filled = true;
			}
			if (ret == 0 && y < ue) {
				ret = qcow2_read_in_cluster(eng, gc + y, e, bm,
							    cb + y, ue - y);
				w->filled = true;
			}
		}
		if (ret < 0)
			break;
		if (x < y)
			memcpy(cb + x, buf + (x - ws), y - x);
		if (re > rs && re == a) {
			re = b;
			continue;
		}
		ret = stage_flush(eng, gc, hc, &rs, &re);
		rs = a;
		re = b;
	}
	if (ret == 0)
		ret = stage_flush(eng, gc, hc, &rs, &re);
	return ret;
}

/*
 * Write one cluster of the request: window [ws, we) of guest cluster gc
 * with L2 index i, into its new cluster `host` (fresh) or in place.
 */
static int write_cluster(struct wstate *w, uint64_t i, uint64_t gc,
			 bool fresh, uint64_t host, uint64_t ws, uint64_t we,
			 const uint8_t *buf)
{
	struct qcow2_engine *eng = w->eng;
	uint64_t e = qcow2_l2_get(eng, w->t, i), bm = qcow2_l2_bitmap(eng, w->t, i);
	uint64_t touched = units_touched(eng, ws, we), need, have, alloc;
	uint64_t ne, nbm = 0;
	int ret;

	if (fresh) {
		have = 0;
		need = touched | (eng->extl2 ? units_with_data(eng, e, bm) : 1);
		alloc = need;
	} else {
		host = e & QCOW2_L2E_OFFSET_MASK;
		have = units_with_data(eng, e, bm);
		need = touched;
		alloc = have | touched;
	}
	/* New clusters come from free space; ours could be mislabelled. */
	ret = fresh ? 0 : check_overlap(eng, host, eng->cluster_size);
	if (ret < 0)
		return ret;
	if (ws == 0 && we == eng->cluster_size)
		ret = direct_add(w, host, gc, buf, eng->cluster_size);
	else
		ret = cow_cluster(w, gc, host, e, bm, ws, we, buf, need, have);
	if (ret < 0)
		return ret;
	ne = host | QCOW2_OFLAG_COPIED;
	if (eng->extl2)
		nbm = alloc | ((bm & QCOW2_BITMAP_ZERO_MASK) & ~(alloc << 32));
	if (ne != e || nbm != bm) {
		w->upd[w->n].i = i;
		w->upd[w->n].ne = ne;
		w->upd[w->n].nbm = nbm;
		/* A replaced cluster's references go once the entry changed. */
		w->upd[w->n].old = fresh && (e & ~QCOW2_OFLAG_ZERO) ? e : 0;
		w->n++;
	}
	return 0;
}

/* Consecutive clusters from L2 index i that are (not) written in place. */
static uint64_t count_kind(struct wstate *w, uint64_t i, uint64_t max,
			   bool inplace)
{
	uint64_t n = 0;

	while (n < max &&
	       in_place(w->eng, qcow2_l2_get(w->eng, w->t, i + n)) == inplace)
		n++;
	return n;
}

/*
 * Write clusters [i, i+n) of the table, new clusters when fresh; then
 * switch their entries, then drop what the old entries referenced.
 */
static int write_run(struct wstate *w, uint64_t i, uint64_t n, bool fresh,
		     uint64_t *pos, uint64_t end, const uint8_t **buf)
{
	struct qcow2_engine *eng = w->eng;
	uint64_t cs = eng->cluster_size, host = 0;
	int ret = 0;

	w->n = 0;
	w->filled = false;
	if (fresh && eng->has_data_file)
		host = *pos & ~(cs - 1);
	else if (fresh)
		ret = qcow2_alloc_clusters(eng, n, &host);
	for (uint64_t k = 0; k < n && ret == 0; k++) {
		uint64_t gc = *pos & ~(cs - 1), ws = *pos - gc;
		uint64_t we = end - gc < cs ? end - gc : cs;

		ret = write_cluster(w, i + k, gc, fresh, host + k * cs, ws, we,
				    *buf);
		*buf += we - ws;
		*pos = gc + we;
	}
	if (ret == 0)
		ret = direct_flush(w);
	if (ret < 0)
		return ret;	/* new clusters leak; no entry names them */
	if (w->filled)
		qcow2_cache_depends_on_flush(eng->l2_cache);
	for (size_t k = 0; k < w->n; k++)
		qcow2_l2_set(eng, w->t, w->upd[k].i, w->upd[k].ne, w->upd[k].nbm);
	if (w->n)
		qcow2_cache_mark_dirty(eng->l2_cache, w->t);
	for (size_t k = 0; k < w->n && ret == 0; k++)
		if (w->upd[k].old)
			ret = qcow2_free_l2e(eng, w->upd[k].old);
	return ret;
}

/* Validate the entries of the clusters touched by [off, end). */
static int check_range(struct qcow2_engine *eng, const uint64_t *t,
		       uint64_t off, uint64_t end)
{
	uint64_t cs = eng->cluster_size;

	for (uint64_t g = off & ~(cs - 1); g < end; g += cs) {
		uint64_t i = qcow2_l2_index(eng, g);
		int ret = qcow2_l2_check(eng, g, qcow2_l2_get(eng, t, i),
					 qcow2_l2_bitmap(eng, t, i));

		if (ret < 0)
			return ret;
	}
	return 0;
}

int qcow2_write_l2_range(struct qcow2_engine *eng, uint64_t off,
			 const uint8_t *buf, uint64_t len)
{
	struct wstate *w = malloc(sizeof(*w));
	uint64_t pos = off, end = off + len;
	uint64_t max_run = MAX_RUN_BYTES >> eng->cluster_bits;
	int ret;

	if (!w)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	memset(w, 0, offsetof(struct wstate, upd));
	w->eng = eng;
	ret = qcow2_l2_for_write(eng, off, &w->t);
	if (ret < 0) {
		free(w);
		return ret;
	}
	if (max_run == 0)
		max_run = 1;
	if (max_run > MAX_RUN_CLUSTERS)
		max_run = MAX_RUN_CLUSTERS;
	ret = check_range(eng, w->t, off, end);
	while (pos < end && ret == 0) {
		uint64_t i = qcow2_l2_index(eng, pos);
		uint64_t left = ((end - 1) >> eng->cluster_bits) -
				(pos >> eng->cluster_bits) + 1;
		bool inplace = in_place(eng, qcow2_l2_get(eng, w->t, i));
		uint64_t n = count_kind(w, i, left < max_run ? left : max_run,
					inplace);

		ret = write_run(w, i, n, !inplace, &pos, end, &buf);
	}
	qcow2_cache_put(eng->l2_cache, (void **)&w->t);
	free(w);
	return ret;
}
