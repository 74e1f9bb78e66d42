/*
 * test_sparse.c: zero detection for convert -S.  The expected runs are
 * the allocations qemu-img 7.2 produced for the same data (see
 * QEMU-IMG-REFERENCE.md 3.8 and the -S experiments in tests/cli/50-convert.bats).
 */
#include <stdlib.h>

#include "core/sparse.h"
#include "tests/unit/unit.h"

static uint8_t *sectors(uint32_t n)
{
	return calloc(n, SECTOR_SIZE);
}

static void mark(uint8_t *buf, uint64_t byte)
{
	buf[byte] = 0x41;
}

#define RUN(r, s, l, d)                                                    \
	do {                                                               \
		CHECK_EQ_U64((r).start, s);                                \
		CHECK_EQ_U64((r).len, l);                                  \
		CHECK((r).data == (d));                                    \
	} while (0)

static void test_small_units(void)
{
	struct sparse_run runs[8];
	uint8_t *buf = sectors(8);
	size_t n;

	mark(buf, 1536);	/* sector 3 */
	/* -S 4k: the zeros before the data cannot reach a 4k boundary */
	n = sparse_scan(buf, 8, 0, 8, 8, runs);
	CHECK_EQ_U64(n, 1);
	RUN(runs[0], 0, 8, true);
	/* -S 1k: runs on 1k boundaries */
	n = sparse_scan(buf, 8, 0, 2, 2, runs);
	CHECK_EQ_U64(n, 3);
	RUN(runs[0], 0, 2, false);
	RUN(runs[1], 2, 2, true);
	RUN(runs[2], 4, 4, false);
	/* a hole shorter than min between data is written */
	mark(buf, 7 * 512);
	n = sparse_scan(buf, 8, 0, 8, 1, runs);
	CHECK_EQ_U64(n, 2);
	RUN(runs[0], 0, 3, false);
	RUN(runs[1], 3, 5, true);
	free(buf);
}

static void test_zeros_image(void)
{
	/* 4 MiB: 'A' sector at 1M, 'B' at 2M + 8k, the rest zeros */
	uint32_t n_sect = 8192;
	struct sparse_run *runs = calloc(n_sect, sizeof(*runs));
	uint8_t *buf = sectors(n_sect);
	size_t n;

	mark(buf, 1048576);
	mark(buf, 2097152 + 8192);
	/* -S 1M: data from 1M to 3M */
	n = sparse_scan(buf, n_sect, 0, 2048, 2048, runs);
	CHECK_EQ_U64(n, 3);
	RUN(runs[0], 0, 2048, false);
	RUN(runs[1], 2048, 4096, true);
	RUN(runs[2], 6144, 2048, false);
	/* -S 4k into 64k clusters: one cluster at 1M, one at 2M */
	n = sparse_scan(buf, n_sect, 0, 8, 128, runs);
	CHECK_EQ_U64(n, 5);
	RUN(runs[0], 0, 2048, false);
	RUN(runs[1], 2048, 128, true);
	RUN(runs[2], 2176, 1920, false);
	RUN(runs[3], 4096, 128, true);
	RUN(runs[4], 4224, 3968, false);
	/* offsets count from the image start, not from the buffer */
	n = sparse_scan(buf + 512 * 2048, n_sect - 2048, 2048, 8, 128, runs);
	RUN(runs[0], 0, 128, true);
	free(runs);
	free(buf);
}

void test_sparse(void)
{
	uint8_t z[1000] = { 0 };

	CHECK(buf_is_zero(z, sizeof(z)));
	z[999] = 1;
	CHECK(!buf_is_zero(z, sizeof(z)));
	z[999] = 0;
	z[70] = 1;
	CHECK(!buf_is_zero(z, sizeof(z)));
	CHECK(buf_is_zero(z, 70));
	CHECK_EQ_U64(pow2_floor(1), 1);
	CHECK_EQ_U64(pow2_floor(2048), 2048);
	CHECK_EQ_U64(pow2_floor(3000), 2048);
	test_small_units();
	test_zeros_image();
}
