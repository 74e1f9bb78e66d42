/*
 * qcow2_rebuild.c: rebuild the refcounts of a dirty image (lazy refcounts
 * left it unclean) before the first write, as qemu does on open.
 *
 * Spec: qcow2.txt incompatible bit 0 ("scan L1/L2 tables to repair
 * refcounts before accessing the image") and "Host cluster management".
 * Every cluster in use is counted the way qemu-img check counts it: the
 * header cluster, the active L1 table, the snapshot table and each
 * snapshot's L1 table, the full-disk-encryption header, and for every L1
 * (active and snapshots) each L2 table it names and each data cluster its
 * entries name (compressed data: every cluster its sectors touch), once
 * per L1 that reaches it.  Bitmaps are not counted: writing clears their
 * autoclear bit first, which tells qemu they are stale.
 *
 * The new refcount table and blocks are written past the end of the file
 * and synced, then the header switches to them: a crash during the
 * rebuild leaves the old structure (and the dirty bit), so the next open
 * rebuilds again.  The old refcount structure is simply not counted: its
 * clusters become free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_engine.h"

struct counts {
	struct qcow2_engine *eng;
	uint32_t *n;		/* references per cluster index */
	uint64_t len;		/* entries in n */
	uint64_t limit;		/* clusters inside the file */
	uint8_t *l2;		/* one L2 table */
};

static int count_range(struct counts *c, uint64_t off, uint64_t len,
		       const char *what)
{
	struct qcow2_engine *eng = c->eng;
	uint64_t first = off >> eng->cluster_bits;
	uint64_t last = (off + len - 1) >> eng->cluster_bits;

	if (len == 0)
		return 0;
	if (last >= c->limit || off + len < off)
		return qcow2_corrupt(eng, "cannot rebuild refcounts: %s at "
				     "0x%llx is past the end of the file",
				     what, (unsigned long long)off);
	for (uint64_t i = first; i <= last; i++) {
		if (c->n[i] == UINT32_MAX)
			return qcow2_corrupt(eng, "cannot rebuild refcounts: "
					     "too many references to cluster "
					     "0x%llx",
					     (unsigned long long)(i << eng->cluster_bits));
		c->n[i]++;
	}
	return 0;
}

static int count_l2(struct counts *c, uint64_t l2_off)
{
	struct qcow2_engine *eng = c->eng;
	uint64_t n = 1ULL << eng->l2_bits;
	int ret = qfile_pread(eng->file, c->l2, eng->cluster_size, l2_off,
			      eng->err);

	for (uint64_t i = 0; i < n && ret == 0; i++) {
		const uint64_t *t = (const uint64_t *)c->l2;
		uint64_t e = qcow2_l2_get(eng, t, i), off, len;

		if (e & QCOW2_OFLAG_COMPRESSED) {
			qcow2_cdesc_decode(eng->cluster_bits, e, &off, &len);
			ret = count_range(c, off, len, "compressed data");
			continue;
		}
		off = e & QCOW2_L2E_OFFSET_MASK;
		if (!off || eng->has_data_file)
			continue;
		if (off & (eng->cluster_size - 1))
			return qcow2_corrupt(eng, "cannot rebuild refcounts: "
					     "cluster offset 0x%llx in the L2 "
					     "table at 0x%llx is not aligned",
					     (unsigned long long)off,
					     (unsigned long long)l2_off);
		ret = count_range(c, off, eng->cluster_size, "a data cluster");
	}
	return ret;
}

/* Count an L1 table (in the file, host order after reading) and its tree. */
static int count_l1(struct counts *c, uint64_t l1_off, uint32_t l1_size)
{
	struct qcow2_engine *eng = c->eng;
	uint64_t bytes = (uint64_t)l1_size * 8;
	uint8_t *raw;
	int ret;

	if (l1_size == 0)
		return 0;
	if (bytes > QCOW2_MAX_L1_BYTES || (l1_off & (eng->cluster_size - 1)))
		return qcow2_corrupt(eng, "cannot rebuild refcounts: L1 table "
				     "at 0x%llx is invalid",
				     (unsigned long long)l1_off);
	ret = count_range(c, l1_off, bytes, "an L1 table");
	if (ret < 0)
		return ret;
	raw = malloc(bytes);
	if (!raw)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	ret = qfile_pread(eng->file, raw, bytes, l1_off, eng->err);
	for (uint32_t i = 0; i < l1_size && ret == 0; i++) {
		uint64_t off = be64_get(raw + (uint64_t)i * 8) & QCOW2_L1E_OFFSET_MASK;

		if (!off)
			continue;
		if (off & (eng->cluster_size - 1))
			ret = qcow2_corrupt(eng, "cannot rebuild refcounts: L2 "
					    "offset 0x%llx is not aligned",
					    (unsigned long long)off);
		if (ret == 0)
			ret = count_range(c, off, eng->cluster_size, "an L2 table");
		if (ret == 0)
			ret = count_l2(c, off);
	}
	free(raw);
	return ret;
}

/* The snapshot table: its clusters, and each snapshot's L1 tree. */
static int count_snapshots(struct counts *c)
{
	struct qcow2_engine *eng = c->eng;
	const struct qcow2_header *h = &eng->s->meta.h;
	uint64_t pos = 0, cap = QCOW2_MAX_SNAPSHOT_TABLE;
	uint8_t *tab;
	int ret = 0;

	if (h->nb_snapshots == 0)
		return 0;
	if (h->snapshots_offset >= eng->phys_size)
		return qcow2_corrupt(eng, "cannot rebuild refcounts: the "
				     "snapshot table is past the end of the "
				     "file");
	if (cap > eng->phys_size - h->snapshots_offset)
		cap = eng->phys_size - h->snapshots_offset;
	tab = malloc(cap);
	if (!tab)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	ret = qfile_pread(eng->file, tab, cap, h->snapshots_offset, eng->err);
	for (uint32_t i = 0; i < h->nb_snapshots && ret == 0; i++) {
		uint64_t size;

		if (pos + 40 > cap) {
			ret = qcow2_corrupt(eng, "cannot rebuild refcounts: "
					    "the snapshot table is truncated");
			break;
		}
		size = 40 + (uint64_t)be32_get(tab + pos + 36) +
		       be16_get(tab + pos + 12) + be16_get(tab + pos + 14);
		size = (size + 7) & ~7ULL;
		if (pos + size > cap) {
			ret = qcow2_corrupt(eng, "cannot rebuild refcounts: "
					    "the snapshot table is truncated");
			break;
		}
		ret = count_l1(c, be64_get(tab + pos), be32_get(tab + pos + 8));
		pos += size;
	}
	if (ret == 0)
		ret = count_range(c, h->snapshots_offset, pos, "the snapshot table");
	free(tab);
	return ret;
}

/* Regions [0, total) clusters that need a refcount block. */
static uint64_t blocks_needed(const struct counts *c, uint64_t total,
			      uint64_t a, uint64_t nb, uint64_t tc)
{
	const struct qcow2_engine *eng = c->eng;
	uint64_t per = 1ULL << eng->rb_bits, n = 0;

	for (uint64_t r = 0; r * per < total; r++) {
		bool used = (a + nb + tc > r * per && a < (r + 1) * per);

		for (uint64_t i = r * per; !used && i < (r + 1) * per && i < c->len; i++)
			used = c->n[i] != 0;
		n += used;
	}
	return n;
}

/* Write the new structure at cluster a: nb blocks, then tc table clusters. */
static int write_structure(struct counts *c, uint64_t a, uint64_t nb,
			   uint64_t tc)
{
	struct qcow2_engine *eng = c->eng;
	uint64_t cs = eng->cluster_size, per = 1ULL << eng->rb_bits, k = 0;
	uint64_t entries = tc * cs / 8;
	uint8_t *table = calloc(tc, cs), *block = malloc(cs);
	int ret = 0;

	if (!table || !block) {
		free(table);
		free(block);
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	}
	for (uint64_t r = 0; r < entries && r * per < a + nb + tc && ret == 0; r++) {
		bool used = false;

		memset(block, 0, cs);
		for (uint64_t i = r * per; i < (r + 1) * per; i++) {
			uint64_t v = i < c->len ? c->n[i] : 0;

			if (i >= a && i < a + nb + tc)
				v = 1;
			if (v > eng->refcount_max) {
				ret = qcow2_corrupt(eng, "cannot rebuild "
						    "refcounts: cluster 0x%llx "
						    "has %llu references",
						    (unsigned long long)(i << eng->cluster_bits),
						    (unsigned long long)v);
				break;
			}
			if (v) {
				used = true;
				qcow2_rc_set(block, eng->refcount_order, i & (per - 1), v);
			}
		}
		if (!used || ret < 0)
			continue;
		be64_put(table + r * 8, (a + k) << eng->cluster_bits);
		ret = qcow2_pwrite(eng, eng->file, block, cs,
				   (a + k) << eng->cluster_bits);
		k++;
	}
	if (ret == 0)
		ret = qcow2_pwrite(eng, eng->file, table, tc * cs,
				   (a + nb) << eng->cluster_bits);
	if (ret == 0)
		ret = qcow2_sync(eng);
	free(block);
	if (ret == 0) {
		uint64_t *mem = realloc(eng->reftable, entries * 8);

		if (!mem) {
			free(table);
			return qerr_set(eng->err, -ENOMEM, "out of memory");
		}
		for (uint64_t r = 0; r < entries; r++)
			mem[r] = be64_get(table + r * 8);
		eng->reftable = mem;
	}
	free(table);
	return ret;
}

static int rebuild_layout(struct counts *c, uint64_t a, uint64_t *nb,
			  uint64_t *tc)
{
	struct qcow2_engine *eng = c->eng;
	uint64_t per = 1ULL << eng->rb_bits, cs = eng->cluster_size;

	*nb = 0;
	*tc = 1;
	for (int iter = 0; iter < 64; iter++) {
		uint64_t total = a + *nb + *tc;
		uint64_t regions = (total + per - 1) / per;
		uint64_t t = (regions * 8 + cs - 1) / cs;
		uint64_t b = blocks_needed(c, total, a, *nb, *tc);

		if (t * cs > QCOW2_MAX_REFTABLE_BYTES)
			return qerr_set(eng->err, -EFBIG, "cannot rebuild "
					"refcounts: the refcount table would "
					"exceed %u MiB",
					QCOW2_MAX_REFTABLE_BYTES >> 20);
		if (t == *tc && b == *nb)
			return 0;
		*tc = t > *tc ? t : *tc;
		*nb = b > *nb ? b : *nb;
	}
	return qerr_set(eng->err, -EIO, "refcount rebuild does not converge");
}

int qcow2_rebuild_refcounts(struct qcow2_engine *eng)
{
	const struct qcow2_meta *m = &eng->s->meta;
	uint64_t cs = eng->cluster_size, a, nb, tc;
	struct counts c = { .eng = eng };
	int ret;

	c.limit = (eng->phys_size + cs - 1) >> eng->cluster_bits;
	c.len = c.limit ? c.limit : 1;
	c.n = calloc(c.len, sizeof(*c.n));
	c.l2 = malloc(cs);
	if (!c.n || !c.l2) {
		ret = qerr_set(eng->err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = count_range(&c, 0, cs, "the header");
	if (ret == 0)
		ret = count_l1(&c, m->h.l1_table_offset, m->h.l1_size);
	if (ret == 0)
		ret = count_snapshots(&c);
	if (ret == 0 && m->has_crypto_ext)
		ret = count_range(&c, m->crypto_offset, m->crypto_length,
				  "the encryption header");
	if (ret < 0)
		goto out;
	a = c.limit;
	ret = rebuild_layout(&c, a, &nb, &tc);
	if (ret == 0)
		ret = write_structure(&c, a, nb, tc);
	if (ret == 0)
		ret = qcow2_header_set_reftable(eng, (a + nb) << eng->cluster_bits,
						(uint32_t)tc);
	if (ret < 0)
		goto out;
	eng->reftable_entries = tc * cs / 8;
	eng->reftable_offset = (a + nb) << eng->cluster_bits;
	eng->reftable_clusters = (uint32_t)tc;
	eng->alloc_end = (a + nb + tc) << eng->cluster_bits;
	eng->free_hint = 0;
	/* Every cached block describes the old structure. */
	qcow2_cache_reset(eng->rb_cache);
out:
	free(c.n);
	free(c.l2);
	return ret;
}
