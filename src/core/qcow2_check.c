/*
 * qcow2_check.c: the qcow2 check: run the passes, compare the refcounts
 * stored in the image with the references counted in memory, check the
 * OFLAG_COPIED flags, and decide what is repaired.
 *
 * Spec: qcow2.txt "Host cluster management" (refcount table and blocks,
 * every refcount equal to its number of references) and the COPIED bit of
 * L1/L2 entries ("refcount is exactly one").  The flow and the counts are
 * qemu-img 7.2's (qcow2_co_check_locked / qcow2_check_refcounts):
 *
 *   1. snapshot table (qcow2_check_snap.c);
 *   2. count every reference (qcow2_check_walk.c), with the statistics;
 *   3. compare without repairing; if the refcount structure itself is
 *      broken (a refcount of 0 on a used cluster, a bad table entry, a
 *      block used twice) and -r all was given, rebuild it from the counts
 *      (qcow2_check_rebuild.c), count again and free what the old
 *      structure leaves leaked; with only -r leaks that is an error;
 *      otherwise, when repairing, compare again and repair as it goes;
 *   4. OFLAG_COPIED against the stored refcounts, repaired with -r all
 *      (with -r leaks only when nothing else is wrong);
 *   5. when repairing left no corruption, clear the dirty and corrupt bits;
 *   6. --data (qcow2_check_data.c).
 *
 * Stored refcounts are read one block at a time in order; after the
 * comparison a block where stored and counted agree is answered from
 * memory, so the COPIED pass costs no refcount reads on a clean image.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_check.h"
#include "core/qcow2_engine.h"

struct counts {
	uint64_t corruptions, leaks, check_errors, corr_fixed, leaks_fixed;
};

static struct counts counts_get(const struct check_result *r)
{
	struct counts c = { r->corruptions, r->leaks, r->check_errors,
			    r->corruptions_fixed, r->leaks_fixed };

	return c;
}

static void counts_set(struct check_result *r, const struct counts *c)
{
	r->corruptions = c->corruptions;
	r->leaks = c->leaks;
	r->check_errors = c->check_errors;
	r->corruptions_fixed = c->corr_fixed;
	r->leaks_fixed = c->leaks_fixed;
}

static void unsure_set(struct qchk *q, uint64_t block)
{
	if (block < q->unsure_n)
		q->unsure[block >> 6] |= 1ULL << (block & 63);
}

static bool unsure_get(const struct qchk *q, uint64_t block)
{
	return block >= q->unsure_n ||
	       ((q->unsure[block >> 6] >> (block & 63)) & 1);
}

/*
 * qemu's one-time line when a refcount block offset is unaligned.  An
 * image opened for repair is also marked corrupt, as qemu marks it, so
 * that nothing writes it before a repair succeeds (which clears the mark).
 */
static void say_corrupt(struct qchk *q, uint64_t off, uint64_t ti)
{
	const struct qcow2_header *h = &q->st->meta.h;
	struct check_args a = { .n = { off, ti } };

	if (q->corrupt_said)
		return;
	q->corrupt_said = true;
	if (!q->o->fix || !q->v3) {
		check_problem(q->c, CHK_REFB_CORRUPT, &a, 0);
		return;
	}
	check_problem(q->c, CHK_REFB_CORRUPT_MARK, &a, 0);
	if (!(h->incompatible_features & QCOW2_INCOMPAT_CORRUPT))
		qchk_set_incompat(q, h->incompatible_features |
				     QCOW2_INCOMPAT_CORRUPT);
}

/*
 * Load the block of table index ti into q->rb: 1 loaded, 0 no block (all
 * refcounts 0), or a negative errno (unaligned offset, read error).
 */
static int load_block(struct qchk *q, uint64_t ti)
{
	uint64_t off;

	if (ti >= q->reft_entries)
		return 0;
	off = q->reftable[ti] & QCHK_REFT_OFFSET_MASK;
	if (!off)
		return 0;
	if (off & (q->cs - 1)) {
		say_corrupt(q, off, ti);
		return -EIO;
	}
	return qchk_rb_load(q, off) < 0 ? -EIO : 1;
}

int qchk_stored(struct qchk *q, uint64_t idx, uint64_t *rc)
{
	uint64_t ti = idx >> q->rb_bits;
	int ret;

	if (idx < q->refs.n && !unsure_get(q, ti)) {
		*rc = qchk_refs_get(&q->refs, idx);
		return 0;
	}
	*rc = 0;
	ret = load_block(q, ti);
	if (ret <= 0)
		return ret;
	*rc = qcow2_rc_get(q->rb, q->refcount_order,
			   idx & ((1ULL << q->rb_bits) - 1));
	return 0;
}

/* One mismatch: report it, repair it when the mode says so. */
static void mismatch(struct qchk *q, uint64_t i, uint64_t stored,
		     uint64_t counted, bool have_block)
{
	struct check_args a = { .n = { i, stored, counted } };
	enum check_code code;

	if (stored < counted)
		q->raises = true;
	if (stored == 0) {
		code = CHK_REF_ZERO;
		q->rebuild = true;
	} else {
		code = stored > counted ? CHK_LEAK : CHK_REF_LOW;
	}
	if (code == CHK_LEAK && counted == 0 && qchk_refs_avoid(&q->refs, i) < 0)
		q->c->r->check_errors++;
	if (check_problem(q->c, code, &a, have_block ? 0 : CHECK_NOFIX) &&
	    qchk_fix_refcount(q, i, counted) == 0) {
		check_repaired(q->c, code);
		return;
	}
	unsure_set(q, i >> q->rb_bits);
}

/*
 * Compare stored and counted refcounts of every cluster the file holds
 * (qemu's compare_refcounts); *highest is the last cluster in use.
 */
static int compare(struct qchk *q, unsigned mode, uint64_t *highest)
{
	uint64_t per = 1ULL << q->rb_bits, n = q->refs.n;

	uint64_t blocks = (n + per - 1) / per + 1;

	q->c->mode = mode;
	*highest = 0;
	if (blocks > q->unsure_n) {
		uint64_t *u = realloc(q->unsure, (blocks + 63) / 64 * 8);

		if (!u)
			return qerr_set(&q->c->r->err, -ENOMEM, "out of memory");
		q->unsure = u;
		q->unsure_n = blocks;
	}
	memset(q->unsure, 0, (q->unsure_n + 63) / 64 * 8);
	for (uint64_t ti = 0; ti * per < n; ti++) {
		uint64_t start = ti * per, end = start + per < n ? start + per : n;
		int have = load_block(q, ti);

		for (uint64_t i = start; i < end; i++) {
			uint64_t counted = qchk_refs_get(&q->refs, i), stored = 0;

			if (have < 0) {
				struct check_args a = { .n = { i, EIO } };

				check_problem(q->c, CHK_GET_REFCOUNT, &a, 0);
				unsure_set(q, ti);
				continue;
			}
			if (have)
				stored = qcow2_rc_get(q->rb, q->refcount_order,
						      i - start);
			if (stored || counted)
				*highest = i;
			if (stored != counted)
				mismatch(q, i, stored, counted, have > 0);
		}
		if (qchk_rb_flush(q) < 0)
			return -EIO;
	}
	q->c->mode = 0;
	return 0;
}

/* Read the refcount table named by the header (host order). */
int qchk_reftable_load(struct qchk *q)
{
	const struct qcow2_header *h = &q->st->meta.h;
	uint64_t bytes = (uint64_t)h->refcount_table_clusters << q->cluster_bits;
	uint64_t *t = malloc(bytes ? bytes : 8);
	int ret;

	if (!t)
		return qerr_set(&q->c->r->err, -ENOMEM, "out of memory");
	ret = qfile_pread_zero(q->file, t, bytes, h->refcount_table_offset,
			       &q->c->r->err);
	if (ret < 0) {
		free(t);
		return ret;
	}
	for (uint64_t i = 0; i < bytes / 8; i++)
		t[i] = be64_get((uint8_t *)&t[i]);
	free(q->reftable);
	q->reftable = t;
	q->reft_entries = bytes / 8;
	q->rb_off = 0;
	return 0;
}

/* After a rebuild: count again, free what the old structure leaked. */
static int after_rebuild(struct qchk *q, unsigned fix, const struct counts *old,
			 uint64_t *highest)
{
	struct check_result *r = q->c->r;
	struct counts saved, zero = { 0 };
	uint64_t fresh = 0;
	int ret;

	r->corruptions = 0;
	r->leaks = 0;
	q->rebuild = false;
	q->noverlaps = 0;
	qchk_refs_clear(&q->refs);
	/* The metadata the repairs must not write over has moved. */
	free(q->protect);
	q->protect = NULL;
	q->nprotect = 0;
	q->protect_built = false;
	ret = qchk_reftable_load(q);
	if (ret == 0)
		ret = qchk_count(q, false);
	if (ret < 0)
		return ret;
	if (fix & CHECK_FIX_LEAKS) {
		/* Leaks found now are the old structure's: not counted. */
		saved = counts_get(r);
		counts_set(r, &zero);
		ret = compare(q, CHECK_FIX_LEAKS, highest);
		if (q->rebuild)
			check_problem(q->c, CHK_REBUILT_BROKEN, NULL, 0);
		fresh = r->leaks;
		counts_set(r, &saved);
		if (ret < 0)
			return ret;
	}
	if (r->corruptions < old->corruptions)
		r->corruptions_fixed += old->corruptions - r->corruptions;
	if (r->leaks < old->leaks)
		r->leaks_fixed += old->leaks - r->leaks;
	r->leaks += fresh;
	return 0;
}

/* qemu's qcow2_check_refcounts: count, compare, repair, COPIED. */
static int refcounts(struct qchk *q, unsigned fix)
{
	struct check_result *r = q->c->r;
	struct counts pre, old;
	uint64_t highest = 0;
	int ret;

	/* A plain check learns COPIED in the first walk (no second read). */
	q->early = !fix;
	q->c->mode = fix;
	ret = qchk_count(q, true);
	q->c->mode = 0;
	if (ret < 0)
		return ret;
	/* References the walk removed are on the disk before refcounts drop. */
	if (fix && (ret = qchk_sync(q)) < 0)
		return ret;
	pre = counts_get(r);
	ret = compare(q, 0, &highest);
	if (ret < 0)
		return ret;
	/* Make COPIED safe before any refcount goes up (see the pre-pass). */
	if ((fix & CHECK_FIX_ERRORS) && (q->rebuild || q->raises)) {
		q->c->mode = fix;
		ret = qchk_copied_preclear(q);
		q->c->mode = 0;
		if (ret < 0)
			return ret;
	}
	if (q->rebuild && (fix & CHECK_FIX_ERRORS)) {
		old = counts_get(r);
		check_problem(q->c, CHK_REBUILDING, NULL, 0);
		ret = qchk_rebuild(q);
		if (ret == 0)
			ret = after_rebuild(q, fix, &old, &highest);
	} else if (fix) {
		if (q->rebuild) {
			check_problem(q->c, CHK_NEED_REBUILD, NULL, 0);
			return qerr_set(&r->err, -EIO, "%s", strerror(EIO));
		}
		if (r->leaks || r->corruptions) {
			counts_set(r, &pre);
			ret = compare(q, fix, &highest);
		}
	}
	/* COPIED may be set only once refcount 1 is on the disk. */
	if (ret == 0 && fix)
		ret = qchk_sync(q);
	q->c->mode = fix;
	if (ret == 0)
		ret = qchk_copied(q, fix);
	q->c->mode = 0;
	if (ret == 0)
		qchk_overlaps_report(q);
	r->image_end_offset = (highest + 1) << q->cluster_bits;
	return ret;
}

static int setup(struct qchk *q, struct img *img, struct check_ctx *c)
{
	struct qcow2_state *st = img->priv;
	const struct qcow2_header *h = &st->meta.h;
	struct check_result *r = c->r;
	uint64_t nb;
	int ret;

	q->img = img;
	q->st = st;
	q->file = img->file;
	q->c = c;
	q->o = c->o;
	q->cluster_bits = h->cluster_bits;
	q->cs = 1ULL << h->cluster_bits;
	q->v3 = h->version >= 3;
	q->extl2 = q->v3 && (h->incompatible_features & QCOW2_INCOMPAT_EXTL2);
	q->data_file = q->v3 && (h->incompatible_features &
				 QCOW2_INCOMPAT_DATA_FILE);
	q->l2e_bytes = q->extl2 ? 16 : 8;
	q->l2_bits = h->cluster_bits - (q->extl2 ? 4 : 3);
	q->refcount_order = q->v3 ? h->refcount_order : 4;
	q->refcount_max = q->refcount_order == 6
				  ? UINT64_MAX
				  : (1ULL << (1U << q->refcount_order)) - 1;
	q->rb_bits = h->cluster_bits + 3 - q->refcount_order;
	ret = qfile_size(q->file, &q->file_size, &r->err);
	if (ret < 0) {
		r->check_errors++;
		return ret;
	}
	nb = (q->file_size + q->cs - 1) >> q->cluster_bits;
	if (nb > INT_MAX) {
		r->check_errors++;
		return qerr_set(&r->err, -EFBIG, "%s", strerror(EFBIG));
	}
	r->total_clusters = (img->size + q->cs - 1) >> q->cluster_bits;
	q->l2buf = malloc(q->cs);
	q->rb = malloc(q->cs);
	if (!q->l2buf || !q->rb ||
	    qchk_refs_init(&q->refs, nb, q->refcount_max) < 0) {
		r->check_errors++;
		return qerr_set(&r->err, -ENOMEM, "out of memory");
	}
	return qchk_reftable_load(q);
}

static void teardown(struct qchk *q)
{
	qchk_snapshots_free(q);
	qchk_refs_free(&q->refs);
	free(q->reftable);
	free(q->l2buf);
	free(q->rb);
	free(q->unsure);
	free(q->protect);
	free(q->early_v);
	qchk_map_free(&q->precleared);
	free(q->overlaps);
	for (int i = 0; i < QCHK_WRB; i++)
		free(q->wrb[i]);
}

/* After a repair that left nothing wrong: the image is clean again. */
static int mark_clean(struct qchk *q)
{
	const struct qcow2_header *h = &q->st->meta.h;
	uint64_t bits = h->incompatible_features;

	if (!q->v3 || !(bits & (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)))
		return 0;
	return qchk_set_incompat(q, bits & ~(QCOW2_INCOMPAT_DIRTY |
					     QCOW2_INCOMPAT_CORRUPT));
}

int qcow2_check(struct img *img, const struct check_opts *o,
		struct check_result *r)
{
	struct check_ctx c = { .o = o, .r = r };
	struct qchk q = { 0 };
	int ret;

	ret = setup(&q, img, &c);
	/* A writable open drops the autoclear bits nobody here knows. */
	if (ret == 0 && o->fix && q.v3 &&
	    (q.st->meta.h.autoclear_features & ~QCOW2_AUTOCLEAR_KNOWN))
		ret = qchk_set_autoclear(&q, q.st->meta.h.autoclear_features &
						     QCOW2_AUTOCLEAR_KNOWN);
	c.mode = o->fix;
	if (ret == 0)
		ret = qchk_snapshots_read(&q);
	c.mode = 0;
	if (ret == 0)
		ret = refcounts(&q, o->fix);
	if (ret == 0 && (o->fix & CHECK_FIX_ERRORS))
		ret = qchk_snapshots_fix(&q);
	if (ret == 0 && o->fix && !r->check_errors && !r->corruptions)
		ret = mark_clean(&q);
	if (ret == 0 && o->data)
		ret = qchk_data(&q);
	if (ret < 0 && !r->err.code)
		qerr_set(&r->err, ret, "%s", strerror(-ret));
	teardown(&q);
	return ret;
}
