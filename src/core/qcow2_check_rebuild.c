/*
 * qcow2_check_rebuild.c: `check -r all` when the refcount structure itself
 * is broken: write a new refcount table and new blocks from the counts in
 * memory, in free space, and switch the header to them last.
 *
 * Spec: qcow2.txt "Host cluster management"; crash ordering from
 * QCOW2-NOTES.md ("write a new table in full before the header points at
 * it").  Placement follows qemu-img 7.2, so the same image ends with the
 * same layout: each refcount block goes to the first free cluster at or
 * after the start of the range it describes, the table to the first run
 * of free clusters from the start of the file; the new clusters count
 * themselves, which may ask for one more block or a longer table, and the
 * placement repeats until it is stable.
 *
 * "Free" here is stricter than qemu's: besides counting no reference, a
 * cluster must not hold a refcount the old structure still claims (a
 * leaked cluster whose data may be the real target of a damaged entry),
 * nor be touched by a refcount table entry we could not count (reserved
 * bits, unaligned): qemu overwrites those, and in the second case even the
 * old block it still reads.  Until the header switch nothing points at
 * the new clusters, so a crash leaves the old structure untouched; after
 * it, the old structure is merely leaked, and the leak repair that follows
 * frees it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_check.h"
#include "core/qcow2_engine.h"

struct newrefs {
	uint64_t *table;	/* block offsets, host order */
	uint64_t entries;	/* a whole number of clusters of entries */
};

/* First run of n free clusters from *first (qemu's alloc_clusters_imrt). */
static int alloc_run(struct qchk *q, uint64_t n, uint64_t *first,
		     uint64_t *start)
{
	uint64_t c = *first, run = 0;
	bool gap_seen = false;

	while (run < n) {
		if (c >= (QCOW2_MAX_HOST_OFFSET >> q->cluster_bits))
			return -ENOSPC;
		if (qchk_refs_get(&q->refs, c) == 0 &&
		    !qchk_refs_avoided(&q->refs, c)) {
			if (!gap_seen) {
				*first = c;
				gap_seen = true;
			}
			run++;
		} else {
			run = 0;
		}
		c++;
	}
	*start = c - n;
	for (uint64_t i = 0; i < n; i++)
		if (qchk_refs_set(&q->refs, *start + i, 1) < 0)
			return -ENOMEM;
	return 0;
}

/*
 * Give a block to every range with a cluster in use in [start, end).
 * Returns 1 when the table had to grow, 0, or a negative errno.
 */
static int place_blocks(struct qchk *q, struct newrefs *nr, uint64_t start,
			uint64_t end)
{
	uint64_t per = 1ULL << q->rb_bits, first = 0, per_table = q->cs / 8;
	int grown = 0;

	for (uint64_t c = start; c < end; c++) {
		uint64_t ti = c >> q->rb_bits, b;
		int ret;

		if (qchk_refs_get(&q->refs, c) == 0)
			continue;
		if (ti < nr->entries && nr->table[ti]) {
			c = ti * per + per - 1;
			continue;
		}
		if (first < ti * per)
			first = ti * per;
		ret = alloc_run(q, 1, &first, &b);
		if (ret < 0)
			return ret;
		if (b >= end)
			end = b + 1;
		if (ti >= nr->entries) {
			uint64_t want = (ti + per_table) / per_table * per_table;
			uint64_t *t = realloc(nr->table, want * 8);

			if (!t)
				return -ENOMEM;
			memset(t + nr->entries, 0, (want - nr->entries) * 8);
			nr->table = t;
			nr->entries = want;
			grown = 1;
		}
		nr->table[ti] = b << q->cluster_bits;
		c = ti * per + per - 1;
	}
	return grown;
}

/* Clusters a table entry touches that the count could not see. */
static int avoid_old(struct qchk *q)
{
	for (uint64_t i = 0; i < q->reft_entries; i++) {
		uint64_t e = q->reftable[i], off = e & QCHK_REFT_OFFSET_MASK;

		if (!(e & QCHK_REFT_RESERVED) && !(off & (q->cs - 1)))
			continue;
		for (uint64_t k = off >> q->cluster_bits;
		     k <= (off + q->cs - 1) >> q->cluster_bits; k++)
			if (k < q->refs.n && qchk_refs_avoid(&q->refs, k) < 0)
				return -ENOMEM;
	}
	return 0;
}

static int layout(struct qchk *q, struct newrefs *nr, uint64_t *table_off,
		  uint64_t *table_clusters)
{
	int ret = place_blocks(q, nr, 0, q->refs.n);

	while (ret > 0) {
		uint64_t first = 0, start;
		uint64_t tc = (nr->entries * 8 + q->cs - 1) / q->cs;

		if (tc * q->cs > QCOW2_MAX_REFTABLE_BYTES)
			return -EFBIG;
		ret = alloc_run(q, tc, &first, &start);
		if (ret < 0)
			return ret;
		*table_off = start << q->cluster_bits;
		*table_clusters = tc;
		ret = place_blocks(q, nr, start, start + tc);
	}
	return ret;
}

static int write_blocks(struct qchk *q, const struct newrefs *nr)
{
	uint64_t per = 1ULL << q->rb_bits;
	uint8_t *block = malloc(q->cs);
	int ret = 0;

	if (!block)
		return -ENOMEM;
	for (uint64_t ti = 0; ti < nr->entries && ret == 0; ti++) {
		if (!nr->table[ti])
			continue;
		memset(block, 0, q->cs);
		for (uint64_t i = 0; i < per; i++) {
			uint64_t v = qchk_refs_get(&q->refs, ti * per + i);

			if (v)
				qcow2_rc_set(block, q->refcount_order, i,
					     v > q->refcount_max ? q->refcount_max : v);
		}
		ret = qchk_write(q, block, q->cs, nr->table[ti]);
	}
	free(block);
	return ret;
}

static int write_table(struct qchk *q, const struct newrefs *nr,
		       uint64_t off, uint64_t clusters)
{
	uint8_t *raw = calloc(clusters, q->cs), hdr[12];
	int ret;

	if (!raw)
		return -ENOMEM;
	for (uint64_t i = 0; i < nr->entries; i++)
		be64_put(raw + i * 8, nr->table[i]);
	ret = qchk_write(q, raw, clusters * q->cs, off);
	free(raw);
	/* Everything new is on the disk before the header names it. */
	if (ret == 0)
		ret = qchk_sync(q);
	be64_put(hdr, off);
	be32_put(hdr + 8, (uint32_t)clusters);
	if (ret == 0)
		ret = qchk_write(q, hdr, sizeof(hdr), 48);
	if (ret == 0)
		ret = qchk_sync(q);
	return ret;
}

static int rebuild_failed(struct qchk *q, const char *what, int ret)
{
	char msg[256];
	struct check_args a = { .s = { msg } };

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-ret));
	check_problem(q->c, CHK_REBUILD_FAILED, &a, 0);
	return ret;
}

int qchk_rebuild(struct qchk *q)
{
	struct qcow2_header *h = &q->st->meta.h;
	struct newrefs nr = { 0 };
	uint64_t off = 0, clusters = 0;
	int ret;

	ret = qchk_rb_flush(q);
	if (ret == 0)
		ret = avoid_old(q);
	if (ret == 0)
		ret = layout(q, &nr, &off, &clusters);
	if (ret < 0) {
		free(nr.table);
		return rebuild_failed(q, "allocating the refcount structure",
				      ret);
	}
	ret = write_blocks(q, &nr);
	if (ret < 0) {
		free(nr.table);
		return rebuild_failed(q, "writing refblock", ret);
	}
	ret = write_table(q, &nr, off, clusters);
	free(nr.table);
	if (ret < 0)
		return rebuild_failed(q, "writing the refcount table", ret);
	h->refcount_table_offset = off;
	h->refcount_table_clusters = (uint32_t)clusters;
	q->rb_off = 0;
	return 0;
}
