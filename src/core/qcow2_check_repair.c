/*
 * qcow2_check_repair.c: the writes a repair makes, and where it may make
 * them.
 *
 * Spec: qcow2.txt header fields (incompatible features at byte 72,
 * autoclear at 88), refcount blocks, L1/L2 entries; the crash ordering is
 * QCOW2-NOTES.md's.  Each repair write is one of:
 *   - an L1/L2 entry losing bits nobody reads, or a reference (reserved
 *     bits, COPIED of a compressed cluster, a reference past the end of
 *     the file, a preallocated cluster at an unaligned offset): a crash
 *     leaves at most a leak;
 *   - a refcount block entry set to the counted value: raised (safe at any
 *     time) or lowered after the references that went away are synced
 *     (qcow2_check.c syncs between the walk and the comparison);
 *   - OFLAG_COPIED, set only after refcount 1 is synced;
 *   - header feature bits, written last and synced.
 * Refcount entries are encoded with the engine's codec (qcow2_rc_set) on a
 * one-block write-back buffer: the comparison walks blocks in order, so
 * each block is read and written at most once.
 *
 * Where: a repair never writes a cluster the check found shared by two
 * structures, nor an L2 table that sits on other known metadata (header,
 * L1 tables, refcount table and blocks, snapshot table, bitmaps), as
 * qemu's overlap check would refuse; such problems are reported and left.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_check.h"
#include "core/qcow2_engine.h"

int qchk_write(struct qchk *q, const void *buf, size_t len, uint64_t off)
{
	int ret = qfile_pwrite(q->file, buf, len, off, &q->c->r->err);

	if (ret == 0 && off + len > q->file_size)
		q->file_size = off + len;
	return ret;
}

int qchk_write_be64(struct qchk *q, uint64_t off, uint64_t v)
{
	uint8_t be[8];

	be64_put(be, v);
	return qchk_write(q, be, sizeof(be), off);
}

int qchk_sync(struct qchk *q)
{
	return qfile_flush(q->file, &q->c->r->err);
}

int qchk_rb_flush(struct qchk *q)
{
	int ret;

	if (!q->rb_dirty)
		return 0;
	ret = qchk_write(q, q->rb, q->cs, q->rb_off);
	if (ret == 0)
		q->rb_dirty = false;
	return ret;
}

int qchk_rb_load(struct qchk *q, uint64_t off)
{
	int ret;

	if (q->rb_off == off && off)
		return 0;
	ret = qchk_rb_flush(q);
	if (ret < 0)
		return ret;
	q->rb_off = 0;
	ret = qfile_pread_zero(q->file, q->rb, q->cs, off, &q->c->r->err);
	if (ret == 0)
		q->rb_off = off;
	return ret;
}

int qchk_fix_refcount(struct qchk *q, uint64_t idx, uint64_t v)
{
	uint64_t ti = idx >> q->rb_bits, off;
	int ret;

	if (ti >= q->reft_entries)
		return -EIO;
	off = q->reftable[ti] & QCHK_REFT_OFFSET_MASK;
	if (!off || (off & (q->cs - 1)) ||
	    !qchk_safe_to_write(q, off, ROLE_REFBLOCK))
		return -EIO;
	ret = qchk_rb_load(q, off);
	if (ret < 0)
		return ret;
	if (v > q->refcount_max)
		v = q->refcount_max;
	qcow2_rc_set(q->rb, q->refcount_order, idx & ((1ULL << q->rb_bits) - 1),
		     v);
	q->rb_dirty = true;
	return 0;
}

int qchk_grow_file(struct qchk *q, uint64_t size)
{
	int ret;

	if (size <= q->file_size)
		return 0;
	/* qemu's bound on the clusters a check tracks, before any write. */
	if (((size + q->cs - 1) >> q->cluster_bits) > INT_MAX)
		return -EFBIG;
	ret = qfile_truncate(q->file, size, &q->c->r->err);
	if (ret < 0)
		return ret;
	q->file_size = size;
	return qchk_refs_grow(&q->refs, (size + q->cs - 1) >> q->cluster_bits);
}

static int header_bits(struct qchk *q, uint64_t off, uint64_t bits)
{
	int ret = qchk_write_be64(q, off, bits);

	return ret ? ret : qchk_sync(q);
}

int qchk_set_incompat(struct qchk *q, uint64_t bits)
{
	int ret = qchk_sync(q);

	if (ret == 0)
		ret = header_bits(q, 72, bits);
	if (ret == 0)
		q->st->meta.h.incompatible_features = bits;
	return ret;
}

int qchk_set_autoclear(struct qchk *q, uint64_t bits)
{
	int ret = header_bits(q, 88, bits);

	if (ret == 0)
		q->st->meta.h.autoclear_features = bits;
	return ret;
}

/* ---- the known metadata, as ranges of clusters ---- */

static int protect_add(struct qchk *q, uint64_t off, uint64_t len,
		       uint64_t *cap)
{
	uint64_t *v;

	if (len == 0 || off >= q->file_size)
		return 0;
	if (q->nprotect == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		v = realloc(q->protect, *cap * 2 * sizeof(*v));
		if (!v)
			return -ENOMEM;
		q->protect = v;
	}
	q->protect[2 * q->nprotect] = off >> q->cluster_bits;
	q->protect[2 * q->nprotect + 1] = ((off + len - 1) >> q->cluster_bits) + 1;
	q->nprotect++;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int protect_build(struct qchk *q)
{
	const struct qcow2_meta *m = &q->st->meta;
	uint64_t cap = 0;
	int ret;

	q->protect_built = true;
	ret = protect_add(q, 0, q->cs, &cap);
	if (ret == 0)
		ret = protect_add(q, m->h.l1_table_offset,
				  (uint64_t)m->h.l1_size * 8, &cap);
	if (ret == 0)
		ret = protect_add(q, m->h.refcount_table_offset,
				  q->reft_entries * 8, &cap);
	for (uint64_t i = 0; i < q->reft_entries && ret == 0; i++)
		ret = protect_add(q, q->reftable[i] & QCHK_REFT_OFFSET_MASK &
					     ~(q->cs - 1),
				  (q->reftable[i] & QCHK_REFT_OFFSET_MASK) ? q->cs : 0,
				  &cap);
	if (ret == 0)
		ret = protect_add(q, m->h.snapshots_offset, q->snaps_size, &cap);
	for (uint32_t i = 0; i < q->nb_snaps && ret == 0; i++)
		ret = protect_add(q, q->snaps[i].l1_offset,
				  (uint64_t)q->snaps[i].l1_size * 8, &cap);
	if (ret == 0 && m->has_crypto_ext)
		ret = protect_add(q, m->crypto_offset, m->crypto_length, &cap);
	if (ret == 0 && m->has_bitmaps_ext)
		ret = protect_add(q, m->bitmap_dir_offset, m->bitmap_dir_size,
				  &cap);
	if (ret == 0 && q->nprotect)
		qsort(q->protect, q->nprotect, 2 * sizeof(uint64_t), range_cmp);
	return ret;
}

/* Is cluster k inside one of the known metadata ranges? */
static bool protected(const struct qchk *q, uint64_t k)
{
	uint64_t lo = 0, hi = q->nprotect;

	/* Ranges are sorted by start; any of those starting at or before k
	 * may cover it, and they are few unless the image is hostile. */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (q->protect[2 * mid] <= k)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo-- > 0)
		if (q->protect[2 * lo + 1] > k)
			return true;
	return false;
}

bool qchk_safe_to_write(struct qchk *q, uint64_t off, enum qchk_role role)
{
	uint64_t k = off >> q->cluster_bits, r;

	if (!q->c->mode)
		return false;
	if (role == ROLE_L2 && (off & (q->cs - 1)))
		return false;
	r = qchk_refs_role(&q->refs, k);
	if ((r & 0xff) != role || (r & QCHK_SHARED))
		return false;
	if (role != ROLE_L2)
		return true;
	if (!q->protect_built && protect_build(q) < 0)
		return false;
	return !protected(q, k);
}
