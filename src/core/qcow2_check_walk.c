/*
 * qcow2_check_walk.c: the reference count pass: count, in memory, every
 * reference the image's structures make to a host cluster, and check the
 * L1 and L2 tables on the way.
 *
 * Spec: qcow2.txt "Host cluster management", "Cluster mapping" (L1 and L2
 * entries, reserved bits, compressed descriptors, extended L2 bitmaps),
 * "Snapshots", "Bitmaps".  What is counted, in qemu-img 7.2's order (the
 * order decides which of two overlapping structures looks like the
 * intruder, so it is kept): the header cluster, the active L1 table and
 * its tree (with the allocation statistics), each snapshot's L1 tree, the
 * snapshot table, the refcount table, the encryption header, the bitmaps,
 * and last the refcount blocks.
 *
 * Tables are read whole (L1 in chunks, each L2 in one read) with bytes
 * past the end of the file reading as zeros, as qemu reads them, so a
 * damaged image gives the same lines.  Repairs of single entries (reserved
 * bits, a preallocated entry at an unaligned offset, a reference past the
 * end of the file) rewrite the table in place at once: each only removes
 * a reference or clears bits nothing reads, so an interrupted repair
 * leaves at most a leak.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_check.h"

#define L1_CHUNK 65536		/* entries read at once */
#define QCHK_BITMAP_ZERO 0xffffffff00000000ULL

enum qchk_ctype qchk_ctype(const struct qchk *q, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return T_COMPRESSED;
	if ((e & QCOW2_OFLAG_ZERO) && !q->extl2)
		return (e & QCOW2_L2E_OFFSET_MASK) ? T_ZERO_ALLOC : T_ZERO_PLAIN;
	if (!(e & QCOW2_L2E_OFFSET_MASK)) {
		/* With a data file offset 0 is valid, told apart by COPIED. */
		if (q->data_file && (e & QCOW2_OFLAG_COPIED))
			return T_NORMAL;
		return T_UNALLOC;
	}
	return T_NORMAL;
}

/* Compressed descriptor: host offset and length, as qemu parses it. */
static void cdesc(const struct qchk *q, uint64_t e, uint64_t *off,
		  uint64_t *len)
{
	unsigned x = 70 - q->cluster_bits;
	uint64_t sectors = ((e >> x) & ((1ULL << (q->cluster_bits - 8)) - 1)) + 1;

	*off = e & ((1ULL << x) - 1);
	*len = sectors * 512 - (*off & 511);
}

/* One L2 table being checked. */
struct l2walk {
	bool stats;
	bool writable;		/* repairs may rewrite it */
	bool copied;		/* feed its entries to the COPIED pass */
	bool dirty;
};

static uint64_t l2_get(const struct qchk *q, uint64_t i)
{
	return be64_get(q->l2buf + i * q->l2e_bytes);
}

static uint64_t l2_bitmap(const struct qchk *q, uint64_t i)
{
	return q->extl2 ? be64_get(q->l2buf + i * 16 + 8) : 0;
}

static void l2_set(struct qchk *q, uint64_t i, uint64_t e, uint64_t bm)
{
	be64_put(q->l2buf + i * q->l2e_bytes, e);
	if (q->extl2)
		be64_put(q->l2buf + i * 16 + 8, bm);
}

/* Report, and when asked and possible mark entry i for rewriting. */
static bool l2_fix(struct qchk *q, struct l2walk *w, enum check_code code,
		   const struct check_args *a, unsigned flags)
{
	if (!w->writable)
		flags |= CHECK_NOFIX;
	if (!check_problem(q->c, code, a, flags))
		return false;
	w->dirty = true;
	return true;
}

/*
 * A reference past the end of the file that our repair removes: the entry
 * becomes one that reads the same (zeros) without a host cluster.  v2 has
 * no zero flag: only without a backing file is "unallocated" the same.
 */
static bool zero_instead(const struct qchk *q, uint64_t e, uint64_t bm,
			 uint64_t *ne, uint64_t *nbm)
{
	if (q->extl2) {
		*ne = 0;
		*nbm = (bm & QCHK_BITMAP_ZERO) | ((bm & QCHK_BITMAP_ALLOC) << 32);
		return true;
	}
	*nbm = 0;
	if (q->v3) {
		*ne = QCOW2_OFLAG_ZERO;
		return true;
	}
	*ne = 0;
	return !q->st->meta.backing_file && !(e & QCOW2_OFLAG_ZERO);
}

static int l2_compressed(struct qchk *q, struct l2walk *w, uint64_t i,
			 uint64_t e, uint64_t bm)
{
	struct check_args a = { .n = { 0 } };
	uint64_t off, len;
	int ret;

	if (e & QCOW2_OFLAG_COPIED) {
		cdesc(q, e, &off, &len);
		a.n[0] = off;
		if (l2_fix(q, w, CHK_COMP_COPIED, &a, 0)) {
			e &= ~QCOW2_OFLAG_COPIED;
			l2_set(q, i, e, bm);
			check_repaired(q->c, CHK_COMP_COPIED);
		}
		e &= ~QCOW2_OFLAG_COPIED;
	}
	if (q->data_file) {
		a.n[0] = i;
		a.n[1] = e;
		check_problem(q->c, CHK_COMP_DATA_FILE, &a, 0);
		return 0;
	}
	if (bm) {
		a.n[0] = i;
		a.n[1] = e;
		check_problem(q->c, CHK_COMP_BITMAP, &a, 0);
		return 0;
	}
	cdesc(q, e, &off, &len);
	ret = qchk_ref(q, off, len, ROLE_DATA, CHECK_NOFIX);
	if (ret < 0)
		return ret;
	if (w->stats) {
		q->c->r->allocated_clusters++;
		q->c->r->compressed_clusters++;
		/* Compressed clusters are fragmented by nature (qemu). */
		q->c->r->fragmented_clusters++;
	}
	return 0;
}

static int l2_standard(struct qchk *q, struct l2walk *w, uint64_t i,
		       uint64_t e, uint64_t bm)
{
	uint64_t off = e & QCOW2_L2E_OFFSET_MASK, ne = 0, nbm = 0;
	struct check_args a = { .n = { off } };
	int ret;

	if ((bm >> 32) & bm)
		check_problem(q->c, CHK_SC_BITMAP, &a, 0);
	if (off & (q->cs - 1)) {
		bool data = q->extl2 ? (bm & QCHK_BITMAP_ALLOC) != 0
				     : !(e & QCOW2_OFLAG_ZERO);

		if (data) {
			check_problem(q->c, CHK_DATA_UNALIGNED, &a, 0);
		} else if (l2_fix(q, w, CHK_PREALLOC_UNALIGNED, &a, 0)) {
			/* Reads as zeros either way; drop the host cluster. */
			if (q->extl2)
				l2_set(q, i, 0, bm & QCHK_BITMAP_ZERO);
			else
				l2_set(q, i, QCOW2_OFLAG_ZERO, 0);
			check_repaired(q->c, CHK_PREALLOC_UNALIGNED);
			return 0;
		}
	}
	if (w->stats) {
		q->c->r->allocated_clusters++;
		if (q->next_contig && off != q->next_contig)
			q->c->r->fragmented_clusters++;
		q->next_contig = off + q->cs;
	}
	if (q->data_file)
		return 0;
	ret = qchk_ref(q, off, q->cs, ROLE_DATA,
		       w->writable && zero_instead(q, e, bm, &ne, &nbm)
			       ? 0 : CHECK_NOFIX);
	if (ret == 2) {
		l2_set(q, i, ne, nbm);
		w->dirty = true;
		check_repaired(q->c, CHK_PAST_EOF);
	}
	return ret < 0 ? ret : 0;
}

/* Check and count the entries of the L2 table in q->l2buf. */
static int l2_entries(struct qchk *q, struct l2walk *w)
{
	uint64_t n = 1ULL << q->l2_bits;
	int ret = 0;

	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint64_t e = l2_get(q, i), bm = l2_bitmap(q, i);
		enum qchk_ctype t = qchk_ctype(q, e);

		if (t != T_COMPRESSED && (e & QCHK_L2E_STD_RESERVED)) {
			struct check_args a = { .n = { e } };

			if (l2_fix(q, w, CHK_L2E_RESERVED, &a, 0)) {
				e &= ~QCHK_L2E_STD_RESERVED;
				l2_set(q, i, e, bm);
				check_repaired(q->c, CHK_L2E_RESERVED);
			}
		}
		switch (t) {
		case T_COMPRESSED:
			ret = l2_compressed(q, w, i, e, bm);
			break;
		case T_ZERO_ALLOC:
		case T_NORMAL:
			if (w->copied)
				qchk_early_l2(q, e);
			ret = l2_standard(q, w, i, e, bm);
			break;
		case T_ZERO_PLAIN:
			break;
		case T_UNALLOC:
			if (bm & QCHK_BITMAP_ALLOC)
				check_problem(q->c, CHK_UNALLOC_BITMAP, NULL, 0);
			break;
		}
	}
	return ret;
}

static int walk_l2(struct qchk *q, uint64_t l2_off, bool stats, bool copied)
{
	struct l2walk w = { .stats = stats, .copied = copied };
	int ret;

	ret = qfile_pread_zero(q->file, q->l2buf, q->cs, l2_off, &q->c->r->err);
	if (ret < 0) {
		check_problem(q->c, CHK_IO_L2, NULL, 0);
		return ret;
	}
	w.writable = qchk_safe_to_write(q, l2_off, ROLE_L2);
	q->next_contig = 0;	/* qemu measures contiguity within a table */
	ret = l2_entries(q, &w);
	if (ret == 0 && w.dirty)
		ret = qchk_write(q, q->l2buf, q->cs, l2_off);
	if (ret < 0) {
		struct check_args a = { .s = { "Failed to overwrite L2 table "
					       "entry" } };

		check_problem(q->c, CHK_REPAIR_FAILED, &a, 0);
	}
	return ret;
}

/* One L1 entry: its reserved bits, its L2 table, that table's entries. */
static int l1_entry(struct qchk *q, uint64_t l1_off, uint64_t idx,
		    uint64_t e, bool active, bool stats)
{
	bool writable = qchk_safe_to_write(q, l1_off + idx * 8,
					   active ? ROLE_L1 : ROLE_SNAP_L1);
	unsigned nofix = writable ? 0 : CHECK_NOFIX;
	struct check_args a = { .n = { e } };
	bool copied = false;
	uint64_t l2_off;
	int ret;

	/* qemu skips only an all-zero entry: 0x1 walks an L2 table at 0
	 * (its COPIED pass does skip that one: qchk_early_l1). */
	if (!e)
		return 0;
	if (e & QCHK_L1E_RESERVED) {
		if (check_problem(q->c, CHK_L1E_RESERVED, &a, nofix) &&
		    qchk_write_be64(q, l1_off + idx * 8, e & ~QCHK_L1E_RESERVED) == 0) {
			e &= ~QCHK_L1E_RESERVED;
			check_repaired(q->c, CHK_L1E_RESERVED);
		}
	}
	l2_off = e & QCOW2_L1E_OFFSET_MASK;
	if (active && q->early)
		copied = qchk_early_l1(q, (uint32_t)idx, e);
	ret = qchk_ref(q, l2_off, q->cs, ROLE_L2, nofix);
	if (ret < 0)
		return ret;
	if (ret == 2 && qchk_write_be64(q, l1_off + idx * 8, 0) == 0) {
		check_repaired(q->c, CHK_PAST_EOF);
		return 0;	/* the entry is gone, and read as zeros */
	}
	if (l2_off & (q->cs - 1)) {
		a.n[0] = l2_off;
		check_problem(q->c, CHK_L2_UNALIGNED, &a, 0);
	}
	/* Past the end the table reads as zeros: nothing to count. */
	return ret ? 0 : walk_l2(q, l2_off, stats, copied);
}

static int walk_l1(struct qchk *q, uint64_t l1_off, uint32_t l1_size,
		   bool active, bool stats)
{
	uint64_t bytes = (uint64_t)l1_size * 8;
	uint8_t *buf;
	int ret;

	ret = qchk_ref(q, l1_off, bytes, active ? ROLE_L1 : ROLE_SNAP_L1,
		       CHECK_NOFIX);
	if (ret < 0 || l1_size == 0)
		return ret < 0 ? ret : 0;
	buf = malloc(bytes < L1_CHUNK * 8 ? bytes : L1_CHUNK * 8);
	if (!buf) {
		q->c->r->check_errors++;
		return qerr_set(&q->c->r->err, -ENOMEM, "out of memory");
	}
	ret = 0;
	for (uint64_t base = 0; base < l1_size && ret == 0; base += L1_CHUNK) {
		uint64_t n = l1_size - base < L1_CHUNK ? l1_size - base : L1_CHUNK;

		ret = qfile_pread_zero(q->file, buf, n * 8, l1_off + base * 8,
				       &q->c->r->err);
		if (ret < 0) {
			check_problem(q->c, CHK_IO_L1, NULL, 0);
			break;
		}
		for (uint64_t i = 0; i < n && ret == 0; i++)
			ret = l1_entry(q, l1_off, base + i,
				       be64_get(buf + i * 8), active, stats);
	}
	free(buf);
	return ret;
}

static int walk_snapshots(struct qchk *q)
{
	int ret = 0;

	if (q->data_file && q->nb_snaps) {
		struct check_args a = { .n = { q->nb_snaps } };

		check_problem(q->c, CHK_SNAP_DATA_FILE, &a, 0);
	}
	for (uint32_t i = 0; i < q->nb_snaps && ret == 0; i++) {
		const struct qchk_snap *sn = &q->snaps[i];
		struct check_args a = { .n = { sn->l1_offset },
					.s = { sn->id, sn->name } };

		if (sn->l1_offset & (q->cs - 1)) {
			check_problem(q->c, CHK_SNAP_L1_UNALIGNED, &a, 0);
			continue;
		}
		if (sn->l1_size > QCHK_MAX_L1_ENTRIES) {
			a.n[0] = sn->l1_size;
			check_problem(q->c, CHK_SNAP_L1_TOO_LARGE, &a, 0);
			continue;
		}
		ret = walk_l1(q, sn->l1_offset, sn->l1_size, false, false);
	}
	return ret;
}

/*
 * The refcount blocks named by the table (qemu's check_refcount_metadata):
 * counted last, so that a block found in use by anything else shows as a
 * refcount above 1.
 */
static int count_refblocks(struct qchk *q)
{
	for (uint64_t i = 0; i < q->reft_entries; i++) {
		uint64_t e = q->reftable[i], off = e & QCHK_REFT_OFFSET_MASK;
		uint64_t k = off >> q->cluster_bits, rc;
		struct check_args a = { .n = { i } };
		int ret;

		if (e & QCHK_REFT_RESERVED) {
			check_problem(q->c, CHK_REFT_RESERVED, &a, 0);
			q->rebuild = true;
			continue;
		}
		if (off & (q->cs - 1)) {
			check_problem(q->c, CHK_REFB_UNALIGNED, &a, 0);
			q->rebuild = true;
			continue;
		}
		if (k >= q->refs.n) {
			if (!check_problem(q->c, CHK_REFB_OUTSIDE, &a, 0))
				continue;
			/* qemu's repair: make the file long enough for it. */
			ret = qchk_grow_file(q, off + q->cs);
			if (ret < 0) {
				a.n[0] = (uint64_t)-ret;
				check_problem(q->c, CHK_REFB_RESIZE_ERR, &a, 0);
				check_problem(q->c, CHK_REFB_RESIZE_FAIL, &a, 0);
				q->rebuild = true;
				continue;
			}
			check_repaired(q->c, CHK_REFB_OUTSIDE);
			ret = qchk_ref(q, off, q->cs, ROLE_REFBLOCK, CHECK_NOFIX);
			if (ret < 0)
				return ret;
			continue;
		}
		if (off == 0)
			continue;
		ret = qchk_ref(q, off, q->cs, ROLE_REFBLOCK, CHECK_NOFIX);
		if (ret < 0)
			return ret;
		rc = qchk_refs_get(&q->refs, k);
		if (rc != 1) {
			a.n[1] = rc;
			check_problem(q->c, CHK_REFB_REFCOUNT, &a, 0);
			q->rebuild = true;
		}
	}
	return 0;
}

int qchk_count(struct qchk *q, bool stats)
{
	const struct qcow2_meta *m = &q->st->meta;
	int ret;

	ret = qchk_ref(q, 0, q->cs, ROLE_HEADER, CHECK_NOFIX);
	if (ret >= 0)
		ret = walk_l1(q, m->h.l1_table_offset, m->h.l1_size, true,
			      stats);
	if (ret >= 0)
		ret = walk_snapshots(q);
	if (ret >= 0)
		ret = qchk_ref(q, m->h.snapshots_offset, q->snaps_size,
			       ROLE_SNAPTABLE, CHECK_NOFIX);
	if (ret >= 0)
		ret = qchk_ref(q, m->h.refcount_table_offset,
			       q->reft_entries * 8, ROLE_REFTABLE, CHECK_NOFIX);
	if (ret >= 0 && m->has_crypto_ext)
		ret = qchk_ref(q, m->crypto_offset, m->crypto_length,
			       ROLE_CRYPTO, CHECK_NOFIX);
	if (ret >= 0)
		ret = qchk_bitmaps(q);
	if (ret >= 0)
		ret = count_refblocks(q);
	if (ret == -ENOMEM) {
		q->c->r->check_errors++;
		qerr_set(&q->c->r->err, ret, "out of memory");
	}
	return ret < 0 ? ret : 0;
}
