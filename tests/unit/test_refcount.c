/*
 * test_refcount.c: refcount entry packing for every refcount_order, and
 * cluster allocation on a tiny hand-made image: first free run, refcount
 * blocks that describe themselves, a refcount table that must move, and
 * overflow/underflow refused.  After each scenario the file is re-read
 * from scratch and every cluster's refcount compared with what the
 * structure on disk says is in use.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/qcow2_engine.h"
#include "tests/unit/unit.h"

static void test_packing(void)
{
	for (unsigned order = 0; order <= 6; order++) {
		unsigned bits = 1U << order;
		uint64_t max = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
		uint64_t n = 512 * 8 / bits;
		uint8_t block[512] = { 0 };

		/* A distinct value per entry, then read them all back. */
		for (uint64_t i = 0; i < n; i++)
			qcow2_rc_set(block, order, i, (i * 0x9e3779b97f4a7c15ULL) & max);
		for (uint64_t i = 0; i < n; i++)
			CHECK_EQ_U64(qcow2_rc_get(block, order, i),
				     (i * 0x9e3779b97f4a7c15ULL) & max);
	}
	/* Sub-byte widths pack from the least significant bit. */
	{
		uint8_t b[4] = { 0 };

		qcow2_rc_set(b, 0, 0, 1);
		CHECK_EQ_U64(b[0], 0x01);
		qcow2_rc_set(b, 0, 7, 1);
		CHECK_EQ_U64(b[0], 0x81);
		qcow2_rc_set(b, 1, 5, 3);	/* byte 1, bits 2-3 */
		CHECK_EQ_U64(b[1], 0x0c);
		qcow2_rc_set(b, 2, 5, 0xa);	/* byte 2, high nibble */
		CHECK_EQ_U64(b[2], 0xa0);
		qcow2_rc_set(b, 2, 5, 0);
		CHECK_EQ_U64(b[2], 0x00);
		CHECK_EQ_U64(b[1], 0x0c);
	}
	/* Wider entries are big-endian. */
	{
		uint8_t b[16] = { 0 };

		qcow2_rc_set(b, 4, 1, 0x1234);
		CHECK_EQ_U64(b[2], 0x12);
		CHECK_EQ_U64(b[3], 0x34);
		qcow2_rc_set(b, 5, 1, 0x01020304);
		CHECK_EQ_U64(b[4], 0x01);
		CHECK_EQ_U64(b[7], 0x04);
		qcow2_rc_set(b, 6, 1, 0x0102030405060708ULL);
		CHECK_EQ_U64(b[8], 0x01);
		CHECK_EQ_U64(b[15], 0x08);
		qcow2_rc_set(b, 3, 0, 0xff);
		CHECK_EQ_U64(b[0], 0xff);
	}
}

/* A tiny v3 image: 512-byte clusters, header, reftable, block, L1. */
struct tiny {
	char path[64];
	struct img img;
	struct qcow2_state s;
	struct qcow2_engine *eng;
};

static int tiny_open(struct tiny *t, unsigned order)
{
	uint8_t buf[2048] = { 0 };
	struct qerr e = { 0 };
	int fd;

	snprintf(t->path, sizeof(t->path), "/tmp/qimg-unit-rc.XXXXXX");
	fd = mkstemp(t->path);
	if (fd < 0)
		return -1;
	be32_put(buf + 20, 9);			/* cluster_bits */
	be64_put(buf + 48, 512);		/* refcount table offset */
	be32_put(buf + 56, 1);			/* and clusters */
	be64_put(buf + 512, 1024);		/* reftable[0] -> block */
	for (unsigned c = 0; c < 4; c++)	/* header, table, block, L1 */
		qcow2_rc_set(buf + 1024, order, c, 1);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		close(fd);
		return -1;
	}
	close(fd);
	memset(&t->img, 0, sizeof(t->img));
	memset(&t->s, 0, sizeof(t->s));
	if (qfile_open(&t->img.file, t->path, QFILE_RDWR, &e) < 0)
		return -1;
	t->img.flags = IMG_RDWR;
	t->img.size = 32768;
	t->img.priv = &t->s;
	t->s.cluster_size = 512;
	t->s.meta.h.version = 3;
	t->s.meta.h.cluster_bits = 9;
	t->s.meta.h.size = 32768;
	t->s.meta.h.l1_size = 1;
	t->s.meta.h.l1_table_offset = 1536;
	t->s.meta.h.refcount_table_offset = 512;
	t->s.meta.h.refcount_table_clusters = 1;
	t->s.meta.h.refcount_order = order;
	t->s.meta.h.header_length = 104;
	return qcow2_engine_get(&t->img, &t->eng);
}

static void tiny_close(struct tiny *t)
{
	qcow2_engine_close(&t->img);
	qfile_close(t->img.file);
	unlink(t->path);
}

/*
 * Re-read refcounts from the file: every cluster in `used` (bitmap of
 * clusters the test allocated) plus the header, the L1 table, the refcount
 * table and the blocks it names must have refcount 1, all others 0.
 */
static void verify_disk(struct tiny *t, const uint8_t *used, uint64_t nused)
{
	struct qerr e = { 0 };
	uint8_t hdr[64], blk[512];
	uint64_t toff, tclusters, file;
	uint64_t per = 4096 >> t->eng->refcount_order;
	uint8_t *expect, *table;
	unsigned order = t->eng->refcount_order;
	int bad = 0;

	CHECK(qfile_pread(t->img.file, hdr, sizeof(hdr), 0, &e) == 0);
	CHECK(qfile_size(t->img.file, &file, &e) == 0);
	toff = be64_get(hdr + 48);
	tclusters = be32_get(hdr + 56);
	file = (file + 511) / 512;
	expect = calloc(file + nused + 1, 1);
	table = malloc(tclusters * 512);
	CHECK(qfile_pread(t->img.file, table, tclusters * 512, toff, &e) == 0);
	expect[0] = expect[3] = 1;
	for (uint64_t c = 0; c < tclusters; c++)
		expect[toff / 512 + c] = 1;
	for (uint64_t i = 0; i < tclusters * 64; i++)
		if (be64_get(table + i * 8))
			expect[be64_get(table + i * 8) / 512] = 1;
	for (uint64_t c = 0; c < nused; c++)
		if (used[c])
			expect[c] = 1;
	for (uint64_t c = 0; c < file; c++) {
		uint64_t boff = be64_get(table + (c / per) * 8), rc = 0;

		if (boff && qfile_pread(t->img.file, blk, 512, boff, &e) == 0)
			rc = qcow2_rc_get(blk, order, c % per);
		else if (boff)
			rc = 999;
		if (rc != expect[c] && bad++ < 5)
			fprintf(stderr, "order %u: cluster %llu refcount %llu, "
				"expected %u\n", order, (unsigned long long)c,
				(unsigned long long)rc, expect[c]);
	}
	CHECK(bad == 0);
	free(expect);
	free(table);
}

static void test_alloc_order(unsigned order)
{
	struct tiny t;
	uint64_t off, rc, nused = 1 << 20;
	uint8_t *used = calloc(nused, 1);
	int bad_overlap = 0;

	CHECK(tiny_open(&t, order) == 0);
	if (!t.eng)
		return;
	/* First free cluster after the four in use. */
	CHECK(qcow2_alloc_clusters(t.eng, 1, &off) == 0);
	CHECK_EQ_U64(off, 4 * 512);
	used[4] = 1;
	CHECK(qcow2_refcount_get(t.eng, 4, &rc) == 0);
	CHECK_EQ_U64(rc, 1);
	/* Taken clusters cannot be taken again. */
	CHECK(qcow2_alloc_clusters_at(t.eng, 4 * 512, 1) == -EEXIST);
	CHECK(qcow2_alloc_clusters_at(t.eng, 5 * 512, 2) == 0);
	used[5] = used[6] = 1;
	/* Overflow refused before anything changes. */
	if (order == 0) {
		CHECK(qcow2_refcount_update(t.eng, 4 * 512, 3 * 512, 1) == -ERANGE);
		qerr_clear(&t.img.err);
	} else {
		CHECK(qcow2_refcount_update(t.eng, 4 * 512, 512, 1) == 0);
		CHECK(qcow2_refcount_get(t.eng, 4, &rc) == 0);
		CHECK_EQ_U64(rc, 2);
		CHECK(qcow2_refcount_update(t.eng, 4 * 512, 512, -1) == 0);
	}
	CHECK(qcow2_refcount_get(t.eng, 4, &rc) == 0);
	CHECK_EQ_U64(rc, 1);
	/* Free one, and the next allocation reuses it. */
	CHECK(qcow2_refcount_update(t.eng, 5 * 512, 512, -1) == 0);
	used[5] = 0;
	CHECK(qcow2_alloc_clusters(t.eng, 1, &off) == 0);
	CHECK_EQ_U64(off, 5 * 512);
	used[5] = 1;
	/* Underflow of a free cluster is corruption. */
	CHECK(qcow2_refcount_update(t.eng, 6 * 512, 512, -1) == 0);
	CHECK(qcow2_refcount_update(t.eng, 6 * 512, 512, -1) == -EIO);
	CHECK(qcow2_alloc_clusters_at(t.eng, 6 * 512, 1) == 0);
	qerr_clear(&t.img.err);
	t.eng->failed = false;
	/* A run too long for the hole goes after the last used cluster. */
	CHECK(qcow2_alloc_clusters(t.eng, 3, &off) == 0);
	CHECK(off >= 7 * 512);
	for (uint64_t c = off / 512; c < off / 512 + 3; c++)
		used[c] = 1;
	/*
	 * Far past the first block: new blocks (describing themselves), and
	 * past the 64-entry table: a table that moves.
	 */
	for (int k = 0; k < 6; k++) {
		uint64_t n = (64ULL * (4096 >> order)) / 4 + (uint64_t)k * 77;

		CHECK(qcow2_alloc_clusters(t.eng, n, &off) == 0);
		if (off / 512 + n > nused)
			break;
		for (uint64_t c = off / 512; c < off / 512 + n; c++) {
			if (used[c])
				bad_overlap++;
			used[c] = 1;
		}
	}
	CHECK(t.eng->reftable_offset != 512);
	CHECK(bad_overlap == 0);
	CHECK(qcow2_engine_flush(t.eng) == 0);
	verify_disk(&t, used, nused);
	tiny_close(&t);
	free(used);
}

void test_refcount(void)
{
	test_packing();
	for (unsigned order = 0; order <= 6; order++)
		test_alloc_order(order);
}
