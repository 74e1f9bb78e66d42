/*
 * test_compress.c: compressed cluster descriptors for every cluster size
 * (9..21 bits), and the zlib/zstd codecs: round trips, trailing bytes of a
 * following cluster accepted, bad and short streams refused with -EIO.
 */
#include <errno.h>
#include <stdlib.h>

#include "config.h"
#include "core/qcow2_engine.h"
#include "tests/unit/unit.h"

static void test_descriptors(void)
{
	for (unsigned cb = 9; cb <= 21; cb++) {
		uint64_t cs = 1ULL << cb, x = 70 - cb;
		uint64_t offs[] = { 512, 513, 4095, cs, cs + 511, cs * 3 - 1,
				    (1ULL << 40) + 7, (1ULL << (x < 56 ? x : 56)) - 600 };
		uint64_t lens[] = { 1, 200, 511, 512, 513, cs / 2, cs - 1 };

		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
				uint64_t off = offs[i], len = lens[j], d, o, l;

				if (len == 0 || len >= cs)
					continue;
				d = qcow2_cdesc_encode(cb, off, len);
				/* Never touches the compressed/COPIED bits. */
				CHECK((d >> 62) == 0);
				qcow2_cdesc_decode(cb, d | QCOW2_OFLAG_COMPRESSED, &o, &l);
				CHECK_EQ_U64(o, off);
				/* Up to the end of the last sector used. */
				CHECK_EQ_U64(o + l, ((off + len + 511) / 512) * 512);
				CHECK(l >= len && l - len < 512);
			}
		}
		/* The sector field: x..61, count minus one. */
		CHECK_EQ_U64(qcow2_cdesc_encode(cb, 1024, 1024) >> x, 1);
		CHECK_EQ_U64(qcow2_cdesc_encode(cb, 1000, 100) >> x, 1);
		CHECK_EQ_U64(qcow2_cdesc_encode(cb, 1024, 512) >> x, 0);
	}
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	static const char words[] = "qcow2 compressed cluster test data ";

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(words[(i / seed) % (sizeof(words) - 1)] + (i >> 12));
}

static void test_codec(int type)
{
	size_t cs = 65536;
	uint8_t *src = malloc(cs), *z = malloc(2 * cs), *out = malloc(cs);
	long n;

	fill(src, cs, 13);
	n = qcow2_compress(type, src, cs, z, cs - 1);
	CHECK(n > 0 && (size_t)n < cs);
	if (n <= 0)
		goto out;
	/* Followed by garbage (the next cluster's bytes): still fine. */
	memset(z + n, 0xa5, 1000);
	CHECK(qcow2_decompress(type, z, (size_t)n + 1000, out, cs) == 0);
	CHECK(memcmp(src, out, cs) == 0);
	/* Too short an output: the stream ends before a whole cluster. */
	CHECK(qcow2_decompress(type, z, (size_t)n / 2, out, cs) == -EIO);
	/* Wrong bytes. */
	memset(z, 0xff, 64);
	CHECK(qcow2_decompress(type, z, (size_t)n, out, cs) == -EIO);
	/* Incompressible data does not fit in less than a cluster. */
	srand(7);
	for (size_t i = 0; i < cs; i++)
		src[i] = (uint8_t)rand();
	CHECK(qcow2_compress(type, src, cs, z, cs - 1) == -ENOSPC);
out:
	free(src);
	free(z);
	free(out);
}

void test_compress(void)
{
	test_descriptors();
	test_codec(QCOW2_COMPRESSION_ZLIB);
#if HAVE_ZSTD
	test_codec(QCOW2_COMPRESSION_ZSTD);
#else
	CHECK(qcow2_compress(QCOW2_COMPRESSION_ZSTD, NULL, 0, NULL, 0) == -ENOTSUP);
#endif
}
