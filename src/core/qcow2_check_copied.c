/*
 * qcow2_check_copied.c: the OFLAG_COPIED pass: bit 63 of an active L1
 * entry, and of an active L2 entry naming a host cluster, must be set
 * exactly when that cluster's stored refcount is 1.
 *
 * Spec: qcow2.txt "Cluster mapping" (COPIED: "the refcount of the cluster
 * is exactly one"); QCOW2-NOTES.md (meaningless in snapshot L1s, never set
 * on compressed entries).  Like qemu-img 7.2 the pass compares with the
 * refcounts as stored (after any refcount repair), runs after the
 * refcount comparison and reports in active L1 order.
 *
 * A plain check (nothing can change the stored refcounts) does this work
 * during the first walk instead, while each L2 table is in memory, and
 * only prints the lines after the comparison; the refcounts come from a
 * few cached refcount blocks.  That saves reading every L2 table twice.
 * When more mismatches turn up than are worth keeping, the pass runs
 * afterwards the usual way.  Repairs (qemu's rules): always with -r all;
 * with -r leaks only when nothing else is wrong any more; setting COPIED
 * is safe because the refcount repairs were synced before this pass.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_check.h"
#include "core/qcow2_engine.h"

#define EARLY_MAX 65536

/* Does the COPIED flag of an entry agree with refcount rc? */
static bool copied_ok(uint64_t e, uint64_t rc)
{
	return (rc == 1) == ((e & QCOW2_OFLAG_COPIED) != 0);
}

static uint64_t copied_fixed(uint64_t e, uint64_t rc)
{
	return rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
}

/* The entry at file position pos as it was before the pre-pass. */
static uint64_t original(const struct qchk *q, uint64_t pos, uint64_t e)
{
	uint64_t v;

	return qchk_map_get(&q->precleared, pos, &v) ? v : e;
}

static bool has_host_cluster(const struct qchk *q, uint64_t e)
{
	enum qchk_ctype t = qchk_ctype(q, e);

	return t == T_NORMAL || t == T_ZERO_ALLOC;
}

static int l2_read(struct qchk *q, uint64_t l2_off)
{
	int ret = qfile_pread_zero(q->file, q->l2buf, q->cs, l2_off,
				   &q->c->r->err);

	if (ret < 0) {
		struct check_args a = { .s = { "Could not read L2 table" } };

		check_problem(q->c, CHK_REPAIR_FAILED, &a, 0);
	}
	return ret;
}

static int l2_write(struct qchk *q, uint64_t l2_off)
{
	int ret = qchk_write(q, q->l2buf, q->cs, l2_off);

	if (ret < 0) {
		struct check_args a = { .s = { "Could not write L2 table" } };

		check_problem(q->c, CHK_REPAIR_FAILED, &a, 0);
	}
	return ret;
}

/* The data clusters of the active L2 table at l2_off. */
static int copied_l2(struct qchk *q, uint64_t l2_off, bool repair)
{
	uint64_t n = 1ULL << q->l2_bits, fixed = 0;
	unsigned flags = repair && qchk_safe_to_write(q, l2_off, ROLE_L2)
				 ? CHECK_FORCE_FIX : CHECK_NOFIX;
	bool dirty = false;
	int ret = l2_read(q, l2_off);

	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint8_t *p = q->l2buf + i * q->l2e_bytes;
		uint64_t cur = be64_get(p), rc = 1;
		uint64_t e = original(q, l2_off + i * q->l2e_bytes, cur), want = e;
		struct check_args a = { .n = { e } };

		if (!has_host_cluster(q, e))
			continue;
		if (!q->data_file &&
		    qchk_stored(q, (e & QCOW2_L2E_OFFSET_MASK) >> q->cluster_bits,
				&rc) < 0)
			continue;
		a.n[1] = rc;
		if (!copied_ok(e, rc) &&
		    check_problem(q->c, CHK_COPIED_L2, &a, flags)) {
			want = copied_fixed(e, rc);
			fixed++;
		}
		if (want != cur) {
			be64_put(p, want);
			dirty = true;
		}
	}
	if (ret == 0 && dirty)
		ret = l2_write(q, l2_off);
	while (ret == 0 && fixed--)
		check_repaired(q->c, CHK_COPIED_L2);
	return ret;
}

/* One active L1 entry (at byte offset at): its COPIED flag and L2 table. */
static int copied_l1e(struct qchk *q, uint32_t i, uint64_t at, uint64_t cur,
		      bool repair)
{
	uint64_t e = original(q, at, cur), want = e, rc;
	uint64_t l2_off = e & QCOW2_L1E_OFFSET_MASK;
	struct check_args a = { .n = { i, e } };
	unsigned flags;
	int ret;

	if (!l2_off)
		return 0;
	/* qemu skips the whole table when its refcount cannot be read. */
	if (qchk_stored(q, l2_off >> q->cluster_bits, &rc) < 0)
		return 0;
	if (!copied_ok(e, rc)) {
		a.n[2] = rc;
		flags = repair && qchk_safe_to_write(q, at, ROLE_L1)
				? CHECK_FORCE_FIX : CHECK_NOFIX;
		if (check_problem(q->c, CHK_COPIED_L1, &a, flags))
			want = copied_fixed(e, rc);
	}
	if (want != cur) {
		ret = qchk_write_be64(q, at, want);
		if (ret < 0)
			return ret;
	}
	if (want != e)
		check_repaired(q->c, CHK_COPIED_L1);
	return copied_l2(q, l2_off, repair);
}

/* Call fn on every entry of the active L1 table, in order. */
static int each_l1e(struct qchk *q, bool repair,
		    int (*fn)(struct qchk *, uint32_t, uint64_t, uint64_t,
			      bool))
{
	const struct qcow2_header *h = &q->st->meta.h;
	uint64_t chunk = 4096, *buf = malloc(chunk * 8);
	int ret = 0;

	if (!buf)
		return qerr_set(&q->c->r->err, -ENOMEM, "out of memory");
	for (uint64_t base = 0; base < h->l1_size && ret == 0; base += chunk) {
		uint64_t n = h->l1_size - base < chunk ? h->l1_size - base : chunk;
		uint64_t at = h->l1_table_offset + base * 8;

		ret = qfile_pread_zero(q->file, buf, n * 8, at, &q->c->r->err);
		for (uint64_t i = 0; i < n && ret == 0; i++)
			ret = fn(q, (uint32_t)(base + i), at + i * 8,
				 be64_get((uint8_t *)&buf[i]), repair);
	}
	free(buf);
	return ret;
}

/* qemu's check_oflag_copied over the active L1 table and its tree. */
static int copied(struct qchk *q, unsigned fix)
{
	const struct check_result *r = q->c->r;
	bool repair = (fix & CHECK_FIX_ERRORS) ||
		      ((fix & CHECK_FIX_LEAKS) && !r->check_errors &&
		       !r->corruptions && !r->leaks);

	return each_l1e(q, repair, copied_l1e);
}

/* Counted refcount of the cluster at off (1 for a data file's). */
static bool counted_one(const struct qchk *q, uint64_t off)
{
	return q->data_file || qchk_refs_get(&q->refs, off >> q->cluster_bits) == 1;
}

static int preclear_l1e(struct qchk *q, uint32_t i, uint64_t at, uint64_t e,
			bool unused)
{
	uint64_t l2_off = e & QCOW2_L1E_OFFSET_MASK, n = 1ULL << q->l2_bits;
	bool dirty = false;
	int ret = 0;

	(void)i;
	(void)unused;
	if (!l2_off)
		return 0;
	if ((e & QCOW2_OFLAG_COPIED) &&
	    qchk_refs_get(&q->refs, l2_off >> q->cluster_bits) != 1 &&
	    qchk_safe_to_write(q, at, ROLE_L1)) {
		ret = qchk_map_put(&q->precleared, at, e);
		if (ret == 0)
			ret = qchk_write_be64(q, at, e & ~QCOW2_OFLAG_COPIED);
	}
	if (ret < 0 || !qchk_safe_to_write(q, l2_off, ROLE_L2))
		return ret;
	ret = l2_read(q, l2_off);
	for (uint64_t k = 0; k < n && ret == 0; k++) {
		uint8_t *p = q->l2buf + k * q->l2e_bytes;
		uint64_t v = be64_get(p);

		if (!has_host_cluster(q, v) || !(v & QCOW2_OFLAG_COPIED) ||
		    counted_one(q, v & QCOW2_L2E_OFFSET_MASK))
			continue;
		ret = qchk_map_put(&q->precleared, l2_off + k * q->l2e_bytes, v);
		be64_put(p, v & ~QCOW2_OFLAG_COPIED);
		dirty = true;
	}
	if (ret == 0 && dirty)
		ret = l2_write(q, l2_off);
	return ret;
}

int qchk_copied_preclear(struct qchk *q)
{
	int ret = each_l1e(q, true, preclear_l1e);

	return ret ? ret : qchk_sync(q);
}

/* Stored refcount of cluster idx for the first walk: no messages. */
static int walk_stored(struct qchk *q, uint64_t idx, uint64_t *rc)
{
	uint64_t ti = idx >> q->rb_bits, off;
	unsigned slot = ti % QCHK_WRB;
	int ret;

	*rc = 0;
	if (ti >= q->reft_entries)
		return 0;
	off = q->reftable[ti] & QCHK_REFT_OFFSET_MASK;
	if (!off)
		return 0;
	if (off & (q->cs - 1))
		return -EIO;
	if (!q->wrb[slot] && !(q->wrb[slot] = malloc(q->cs)))
		return -ENOMEM;
	if (q->wrb_off[slot] != off) {
		q->wrb_off[slot] = 0;
		ret = qfile_pread_zero(q->file, q->wrb[slot], q->cs, off,
				       &q->c->r->err);
		if (ret < 0)
			return ret;
		q->wrb_off[slot] = off;
	}
	*rc = qcow2_rc_get(q->wrb[slot], q->refcount_order,
			   idx & ((1ULL << q->rb_bits) - 1));
	return 0;
}

static void early_add(struct qchk *q, bool l1, uint64_t i, uint64_t e,
		      uint64_t rc)
{
	struct qchk_copied *v;

	if (q->early_overflow)
		return;
	if (q->early_n == EARLY_MAX) {
		q->early_overflow = true;
		return;
	}
	if (q->early_n % 256 == 0) {
		v = realloc(q->early_v, (q->early_n + 256) * sizeof(*v));
		if (!v) {
			q->early_overflow = true;
			return;
		}
		q->early_v = v;
	}
	q->early_v[q->early_n++] = (struct qchk_copied){ l1, i, e, rc };
}

bool qchk_early_l1(struct qchk *q, uint32_t i, uint64_t e)
{
	uint64_t l2_off = e & QCOW2_L1E_OFFSET_MASK, rc;

	if (!l2_off || walk_stored(q, l2_off >> q->cluster_bits, &rc) < 0)
		return false;
	if (!copied_ok(e, rc))
		early_add(q, true, i, e, rc);
	return true;
}

void qchk_early_l2(struct qchk *q, uint64_t e)
{
	uint64_t rc = 1;

	if (!q->data_file &&
	    walk_stored(q, (e & QCOW2_L2E_OFFSET_MASK) >> q->cluster_bits,
			&rc) < 0)
		return;
	if (!copied_ok(e, rc))
		early_add(q, false, 0, e, rc);
}

int qchk_copied(struct qchk *q, unsigned fix)
{
	if (!q->early || q->early_overflow)
		return copied(q, fix);
	for (size_t i = 0; i < q->early_n; i++) {
		const struct qchk_copied *p = &q->early_v[i];
		struct check_args a = { .n = { p->entry, p->rc } };

		if (p->l1) {
			a.n[0] = p->index;
			a.n[1] = p->entry;
			a.n[2] = p->rc;
		}
		check_problem(q->c, p->l1 ? CHK_COPIED_L1 : CHK_COPIED_L2, &a,
			      CHECK_NOFIX);
	}
	return 0;
}
