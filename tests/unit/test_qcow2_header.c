/*
 * test_qcow2_header.c: qcow2_meta_parse on headers built in memory: valid
 * v2 and v3 images with every extension, then one case per validation rule
 * (each refused with the message that names the field and value), and the
 * extension walk's edge cases.
 *
 * The test image has 4 KiB clusters, a 1 GiB virtual size and a 64 KiB
 * file: cluster 0 header, refcount table at 4 KiB, L1 (512 entries) at
 * 8 KiB.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/qcow2.h"
#include "tests/unit/unit.h"

#define CS 4096
#define FILE_SIZE (64 * 1024)

struct himg {
	uint8_t b[CS];
	size_t ext;		/* where the next extension goes */
};

static void v3(struct himg *h)
{
	memset(h, 0, sizeof(*h));
	be32_put(h->b, QCOW2_MAGIC);
	be32_put(h->b + 4, 3);
	be32_put(h->b + 20, 12);		/* cluster_bits */
	be64_put(h->b + 24, 1ULL << 30);	/* size */
	be32_put(h->b + 36, 512);		/* l1_size */
	be64_put(h->b + 40, 2 * CS);		/* l1_table_offset */
	be64_put(h->b + 48, CS);		/* refcount_table_offset */
	be32_put(h->b + 56, 1);			/* refcount_table_clusters */
	be32_put(h->b + 96, 4);			/* refcount_order */
	be32_put(h->b + 100, 112);		/* header_length */
	h->ext = 112;
}

static void v2(struct himg *h)
{
	v3(h);
	be32_put(h->b + 4, 2);
	memset(h->b + 72, 0, 40);
	h->ext = 72;
}

static void add_ext(struct himg *h, uint32_t type, const void *d, uint32_t len)
{
	be32_put(h->b + h->ext, type);
	be32_put(h->b + h->ext + 4, len);
	memcpy(h->b + h->ext + 8, d, len);
	h->ext += 8 + ((len + 7) & ~7U);
}

static void set_backing(struct himg *h, const char *name, size_t len)
{
	size_t off = h->ext + 8;	/* after an end marker */

	memcpy(h->b + off, name, len);
	be64_put(h->b + 8, off);
	be32_put(h->b + 16, (uint32_t)len);
}

static int parse(const struct himg *h, uint64_t fs, struct qcow2_meta *m,
		 struct qerr *e)
{
	qerr_clear(e);
	return qcow2_meta_parse(h->b, sizeof(h->b), fs, m, e);
}

/* Parsing must fail with exactly msg, and leave nothing allocated. */
#define EXPECT_ERR(h, fs, msg)                                             \
	do {                                                               \
		struct qcow2_meta m_;                                      \
		struct qerr e_;                                            \
		CHECK(parse((h), (fs), &m_, &e_) < 0);                     \
		CHECK_STR(qerr_msg(&e_), (msg));                           \
		CHECK(m_.unknown == NULL && m_.features == NULL);          \
	} while (0)

static void test_valid_v3(void)
{
	static const uint8_t unk[5] = "hello";
	uint8_t ft[2 * 48] = { 0 }, crypto[16];
	struct qcow2_meta m;
	struct qerr e;
	struct himg h;

	v3(&h);
	be32_put(h.b + 32, 2);	/* LUKS */
	h.b[104] = 1;		/* zstd */
	be64_put(h.b + 72, QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_DIRTY);
	be64_put(h.b + 80, QCOW2_COMPAT_LAZY_REFCOUNTS);
	add_ext(&h, QCOW2_EXT_BACKING_FORMAT, "qcow2", 5);
	add_ext(&h, 0x12345678, unk, sizeof(unk));
	be64_put(crypto, 3 * CS);
	be64_put(crypto + 8, 2 * CS);
	add_ext(&h, QCOW2_EXT_CRYPTO, crypto, sizeof(crypto));
	ft[1] = 0;
	memcpy(ft + 2, "dirty bit", 9);
	ft[48] = 1;
	memcpy(ft + 50, "lazy refcounts", 14);
	add_ext(&h, QCOW2_EXT_FEATURE_TABLE, ft, sizeof(ft));
	add_ext(&h, 0x87654321, "", 0);
	set_backing(&h, "base.qcow2", 10);

	CHECK(parse(&h, FILE_SIZE, &m, &e) == 0);
	CHECK_EQ_U64(m.h.version, 3);
	CHECK_EQ_U64(m.h.cluster_bits, 12);
	CHECK_EQ_U64(m.h.size, 1ULL << 30);
	CHECK_EQ_U64(m.h.compression_type, 1);
	CHECK_EQ_U64(m.h.header_length, 112);
	CHECK_STR(m.backing_file, "base.qcow2");
	CHECK_STR(m.backing_fmt, "qcow2");
	CHECK(m.has_crypto_ext);
	CHECK_EQ_U64(m.crypto_offset, 3 * CS);
	CHECK_EQ_U64(m.crypto_length, 2 * CS);
	CHECK(m.has_feature_table);
	CHECK_EQ_U64(m.nb_features, 2);
	CHECK_STR(m.features[1].name, "lazy refcounts");
	CHECK_EQ_U64(m.features[1].type, 1);
	CHECK_EQ_U64(m.nb_unknown, 2);
	CHECK_EQ_U64(m.unknown[0].type, 0x12345678);
	CHECK_EQ_U64(m.unknown[0].len, 5);
	CHECK(m.unknown[0].len == 5 && memcmp(m.unknown[0].data, "hello", 5) == 0);
	CHECK_EQ_U64(m.unknown[1].type, 0x87654321);
	CHECK_EQ_U64(m.unknown[1].len, 0);
	CHECK(m.extra_header == NULL);
	qcow2_meta_free(&m);
}

static void test_valid_v2_and_extras(void)
{
	uint8_t bm[24] = { 0 };
	struct qcow2_meta m;
	struct qerr e;
	struct himg h;

	v2(&h);
	add_ext(&h, QCOW2_EXT_BACKING_FORMAT, "raw", 3);
	CHECK(parse(&h, FILE_SIZE, &m, &e) == 0);
	CHECK_EQ_U64(m.h.refcount_order, 4);
	CHECK_EQ_U64(m.h.header_length, 72);
	CHECK_EQ_U64(m.h.incompatible_features, 0);
	CHECK_STR(m.backing_fmt, "raw");
	CHECK(m.backing_file == NULL);
	qcow2_meta_free(&m);

	/* Unknown header bytes past 112 are kept; a later extension of a
	 * known type replaces the earlier one (qemu: last wins). */
	v3(&h);
	be32_put(h.b + 100, 120);
	memcpy(h.b + 112, "EXTRAHDR", 8);
	h.ext = 120;
	add_ext(&h, QCOW2_EXT_BACKING_FORMAT, "qcow2", 5);
	add_ext(&h, QCOW2_EXT_BACKING_FORMAT, "raw", 3);
	add_ext(&h, QCOW2_EXT_DATA_FILE, "d.raw", 5);
	CHECK(parse(&h, FILE_SIZE, &m, &e) == 0);
	CHECK_EQ_U64(m.extra_header_len, 8);
	CHECK(m.extra_header && memcmp(m.extra_header, "EXTRAHDR", 8) == 0);
	CHECK_STR(m.backing_fmt, "raw");
	CHECK_STR(m.data_file, "d.raw");
	qcow2_meta_free(&m);

	/* Bitmaps: honoured only with autoclear bit 0. */
	v3(&h);
	be32_put(bm, 2);
	be64_put(bm + 8, 64);
	be64_put(bm + 16, 4 * CS);
	add_ext(&h, QCOW2_EXT_BITMAPS, bm, sizeof(bm));
	CHECK(parse(&h, FILE_SIZE, &m, &e) == 0);
	CHECK(!m.has_bitmaps_ext);
	qcow2_meta_free(&m);
	be64_put(h.b + 88, QCOW2_AUTOCLEAR_BITMAPS);
	CHECK(parse(&h, FILE_SIZE, &m, &e) == 0);
	CHECK(m.has_bitmaps_ext);
	CHECK_EQ_U64(m.nb_bitmaps, 2);
	CHECK_EQ_U64(m.bitmap_dir_size, 64);
	CHECK_EQ_U64(m.bitmap_dir_offset, 4 * CS);
	qcow2_meta_free(&m);

	/* Trailing NULs in a backing name are padding, not part of it. */
	v3(&h);
	set_backing(&h, "b.img\0\0\0", 8);
	CHECK(parse(&h, FILE_SIZE, &m, &e) == 0);
	CHECK_STR(m.backing_file, "b.img");
	qcow2_meta_free(&m);
}

static void test_fixed_fields(void)
{
	struct himg h;

	v3(&h);
	h.b[3] = 0;
	EXPECT_ERR(&h, FILE_SIZE, "Image is not in qcow2 format");
	v3(&h);
	be32_put(h.b + 4, 4);
	EXPECT_ERR(&h, FILE_SIZE, "Unsupported qcow2 version 4");
	v3(&h);
	EXPECT_ERR(&h, 100, "truncated header: the file has 100 bytes, a "
			    "version 3 header needs 104");
	v3(&h);
	be32_put(h.b + 20, 8);
	EXPECT_ERR(&h, FILE_SIZE, "invalid cluster_bits 8 (must be 9 to 21)");
	be32_put(h.b + 20, 22);
	EXPECT_ERR(&h, FILE_SIZE, "invalid cluster_bits 22 (must be 9 to 21)");
	v3(&h);
	be32_put(h.b + 100, 100);
	EXPECT_ERR(&h, FILE_SIZE, "invalid header_length 100 (must be at "
				  "least 104 and a multiple of 8)");
	be32_put(h.b + 100, 108);
	EXPECT_ERR(&h, FILE_SIZE, "invalid header_length 108 (must be at "
				  "least 104 and a multiple of 8)");
	be32_put(h.b + 100, 8192);
	EXPECT_ERR(&h, FILE_SIZE, "invalid header_length 8192 (larger than "
				  "the cluster size 4096)");
	v3(&h);
	be32_put(h.b + 32, 3);
	EXPECT_ERR(&h, FILE_SIZE, "invalid crypt_method 3 (must be 0 none, 1 "
				  "AES or 2 LUKS)");
	v3(&h);
	be32_put(h.b + 96, 7);
	EXPECT_ERR(&h, FILE_SIZE, "invalid refcount_order 7 (must be 0 to 6)");
}

static void test_features(void)
{
	uint8_t ft[48] = { 0 };
	struct himg h;

	v3(&h);
	be64_put(h.b + 72, 1ULL << 20);
	EXPECT_ERR(&h, FILE_SIZE, "Unsupported qcow2 feature(s): Unknown "
				  "incompatible feature: 100000");
	ft[1] = 5;
	memcpy(ft + 2, "frobnication", 12);
	add_ext(&h, QCOW2_EXT_FEATURE_TABLE, ft, sizeof(ft));
	be64_put(h.b + 72, (1ULL << 5) | (1ULL << 9));
	EXPECT_ERR(&h, FILE_SIZE, "Unsupported qcow2 feature(s): "
				  "frobnication, Unknown incompatible "
				  "feature: 200");
	v3(&h);
	be64_put(h.b + 72, QCOW2_INCOMPAT_EXTL2);
	EXPECT_ERR(&h, FILE_SIZE, "invalid cluster_bits 12 with extended L2 "
				  "entries (must be at least 14)");
	v3(&h);
	h.b[104] = 2;
	be64_put(h.b + 72, QCOW2_INCOMPAT_COMPRESSION);
	EXPECT_ERR(&h, FILE_SIZE, "invalid compression_type 2 (must be 0 for "
				  "zlib or 1 for zstd)");
	be64_put(h.b + 72, 0);
	h.b[104] = 1;
	EXPECT_ERR(&h, FILE_SIZE, "invalid compression_type 1 without "
				  "incompatible feature bit 3 (compression "
				  "type)");
	h.b[104] = 0;
	be64_put(h.b + 72, QCOW2_INCOMPAT_COMPRESSION);
	EXPECT_ERR(&h, FILE_SIZE, "invalid incompatible feature bit 3 "
				  "(compression type) with compression_type "
				  "0 (zlib)");
	/* v2 LUKS is valid (qemu 7.2 makes it), but not without its
	 * extension. */
	v2(&h);
	be32_put(h.b + 32, 2);
	EXPECT_ERR(&h, FILE_SIZE, "invalid crypt_method 2 (LUKS) without the "
				  "encryption header extension");
	v3(&h);
	be32_put(h.b + 32, 2);
	EXPECT_ERR(&h, FILE_SIZE, "invalid crypt_method 2 (LUKS) without the "
				  "encryption header extension");
	v3(&h);
	be64_put(h.b + 72, QCOW2_INCOMPAT_DATA_FILE);
	EXPECT_ERR(&h, FILE_SIZE, "incompatible feature bit 2 (external data "
				  "file) is set but no data file is named");
}

static void test_tables(void)
{
	struct himg h;

	v3(&h);
	be32_put(h.b + 56, 0);
	EXPECT_ERR(&h, FILE_SIZE, "invalid refcount_table_clusters 0 (the "
				  "image has no refcount table)");
	be32_put(h.b + 56, 2049);
	EXPECT_ERR(&h, FILE_SIZE, "invalid refcount_table_clusters 2049 (the "
				  "table would exceed 8388608 bytes)");
	v3(&h);
	be64_put(h.b + 48, CS + 8);
	EXPECT_ERR(&h, FILE_SIZE, "invalid refcount_table_offset 0x1008 (not "
				  "a multiple of the cluster size 4096)");
	be64_put(h.b + 48, 0);
	EXPECT_ERR(&h, FILE_SIZE, "invalid refcount_table_offset 0 (the "
				  "refcount table would overlap the header)");
	be64_put(h.b + 48, FILE_SIZE);
	EXPECT_ERR(&h, FILE_SIZE, "the refcount table (offset 0x10000, 4096 "
				  "bytes) lies past the end of the file "
				  "(65536 bytes)");
	v3(&h);
	be32_put(h.b + 60, 65537);
	EXPECT_ERR(&h, FILE_SIZE, "invalid nb_snapshots 65537 (must be at "
				  "most 65536)");
	be32_put(h.b + 60, 1);
	EXPECT_ERR(&h, FILE_SIZE, "invalid snapshots_offset 0 (the snapshot "
				  "table would overlap the header)");
	be64_put(h.b + 64, 100);
	EXPECT_ERR(&h, FILE_SIZE, "invalid snapshots_offset 0x64 (not a "
				  "multiple of the cluster size 4096)");
	be32_put(h.b + 60, 65536);
	be64_put(h.b + 64, 4 * CS);
	EXPECT_ERR(&h, FILE_SIZE, "the snapshot table (offset 0x4000, 2621440 "
				  "bytes) lies past the end of the file (65536 "
				  "bytes)");
	v3(&h);
	be32_put(h.b + 36, (32U << 20) / 8 + 1);
	EXPECT_ERR(&h, FILE_SIZE, "invalid l1_size 4194305 (must be at most "
				  "4194304, a 33554432 byte table)");
	be32_put(h.b + 36, 511);
	EXPECT_ERR(&h, FILE_SIZE, "invalid l1_size 511 (the virtual size "
				  "1073741824 needs 512 entries)");
	be32_put(h.b + 36, 513);
	be64_put(h.b + 40, FILE_SIZE - CS);
	EXPECT_ERR(&h, FILE_SIZE, "the L1 table (offset 0xf000, 4104 bytes) "
				  "lies past the end of the file (65536 "
				  "bytes)");
	v3(&h);
	be64_put(h.b + 40, 2 * CS + 512);
	EXPECT_ERR(&h, FILE_SIZE, "invalid l1_table_offset 0x2200 (not a "
				  "multiple of the cluster size 4096)");
	v3(&h);
	be64_put(h.b + 24, 1ULL << 62);
	EXPECT_ERR(&h, FILE_SIZE, "invalid size 4611686018427387904 (larger "
				  "than 8796093022208, the limit for "
				  "4096-byte clusters)");
}

static void test_backing_name(void)
{
	char longname[1100];
	struct himg h;

	v3(&h);
	set_backing(&h, "a\0b", 3);
	EXPECT_ERR(&h, FILE_SIZE, "backing file name contains a NUL byte");
	memset(longname, 'x', sizeof(longname));
	v3(&h);
	set_backing(&h, longname, 1024);
	EXPECT_ERR(&h, FILE_SIZE, "invalid backing_file_size 1024 (must be at "
				  "most 1023)");
	v3(&h);
	be64_put(h.b + 8, 4000);
	be32_put(h.b + 16, 200);
	EXPECT_ERR(&h, FILE_SIZE, "invalid backing_file_size 200 (the name at "
				  "offset 0xfa0 runs past cluster 0)");
	v3(&h);
	be64_put(h.b + 8, 64);
	be32_put(h.b + 16, 4);
	EXPECT_ERR(&h, FILE_SIZE, "invalid backing_file_offset 0x40 (overlaps "
				  "the 112-byte header)");
	be64_put(h.b + 8, CS + 1);
	EXPECT_ERR(&h, FILE_SIZE, "invalid backing_file_offset 0x1001 (past "
				  "cluster 0, which ends at 0x1000)");
	v3(&h);
	EXPECT_ERR(&h, 108, "truncated header: header_length is 112 but the "
			    "file has 108 bytes");
}

static void test_extension_walk(void)
{
	uint8_t d[24] = { 0 };
	struct qcow2_meta m;
	struct qerr e;
	struct himg h;

	/* A length running past cluster 0. */
	v3(&h);
	be32_put(h.b + 112, 0x12345678);
	be32_put(h.b + 116, CS);
	EXPECT_ERR(&h, FILE_SIZE, "header extension 0x12345678 at offset "
				  "0x70: length 4096 runs past the end of "
				  "cluster 0 at offset 0x1000");
	/* A length running into the backing file name. */
	v3(&h);
	add_ext(&h, 0x12345678, "abcdefgh", 8);
	set_backing(&h, "base", 4);
	be32_put(h.b + 116, 20);
	EXPECT_ERR(&h, FILE_SIZE, "header extension 0x12345678 at offset "
				  "0x70: length 20 runs past the backing file "
				  "name at offset 0x88");
	/* Extensions filling cluster 0 with no end marker. */
	v3(&h);
	be32_put(h.b + 112, 0x12345678);
	be32_put(h.b + 116, CS - 112 - 8);
	EXPECT_ERR(&h, FILE_SIZE, "the header extensions have no end marker "
				  "before offset 0x1000");
	/* Padding pushing the next extension past the end. */
	be32_put(h.b + 116, CS - 112 - 8 - 3);
	EXPECT_ERR(&h, FILE_SIZE, "the header extensions have no end marker "
				  "before offset 0x1000");
	/* Bytes past the end of a short file read as zeros: an end marker. */
	v3(&h);
	add_ext(&h, 0x12345678, "abc", 3);
	CHECK(qcow2_meta_parse(h.b, 112 + 16, FILE_SIZE, &m, &e) == 0);
	CHECK_EQ_U64(m.nb_unknown, 1);
	qcow2_meta_free(&m);

	v3(&h);
	add_ext(&h, QCOW2_EXT_BACKING_FORMAT, "0123456789abcdef", 16);
	EXPECT_ERR(&h, FILE_SIZE, "invalid backing format extension length 16 "
				  "(must be at most 15)");
	v3(&h);
	add_ext(&h, QCOW2_EXT_DATA_FILE, "a\0b", 3);
	EXPECT_ERR(&h, FILE_SIZE, "data file name contains a NUL byte");

	v3(&h);
	be64_put(h.b + 88, QCOW2_AUTOCLEAR_BITMAPS);
	add_ext(&h, QCOW2_EXT_BITMAPS, d, 16);
	EXPECT_ERR(&h, FILE_SIZE, "invalid bitmaps extension length 16 (must "
				  "be 24)");
	v3(&h);
	be64_put(h.b + 88, QCOW2_AUTOCLEAR_BITMAPS);
	add_ext(&h, QCOW2_EXT_BITMAPS, d, 24);
	EXPECT_ERR(&h, FILE_SIZE, "invalid nb_bitmaps 0 (must be 1 to 65535)");
	be32_put(h.b + 112 + 8, 1);
	be32_put(h.b + 112 + 12, 7);
	EXPECT_ERR(&h, FILE_SIZE, "invalid bitmaps extension reserved field "
				  "0x7 (must be 0)");
	be32_put(h.b + 112 + 12, 0);
	be64_put(h.b + 112 + 16, 64);
	be64_put(h.b + 112 + 24, CS + 8);
	EXPECT_ERR(&h, FILE_SIZE, "invalid bitmap_directory_offset 0x1008 "
				  "(not a multiple of the cluster size 4096)");
	be64_put(h.b + 112 + 24, FILE_SIZE);
	EXPECT_ERR(&h, FILE_SIZE, "the bitmap directory (offset 0x10000, 64 "
				  "bytes) lies past the end of the file (65536 "
				  "bytes)");
	be64_put(h.b + 112 + 16, 1ULL << 40);
	EXPECT_ERR(&h, FILE_SIZE, "invalid bitmap_directory_size "
				  "1099511627776 (must be 1 to 67107840)");

	v3(&h);
	add_ext(&h, QCOW2_EXT_CRYPTO, d, 16);
	EXPECT_ERR(&h, FILE_SIZE, "unexpected encryption header extension "
				  "(crypt_method is 0, not 2 for LUKS)");
	be32_put(h.b + 32, 2);
	be32_put(h.b + 112 + 8 + 12, 4096);	/* length */
	EXPECT_ERR(&h, FILE_SIZE, "invalid encryption header offset 0 (the "
				  "encryption header would overlap the header)");
	be32_put(h.b + 116, 8);
	EXPECT_ERR(&h, FILE_SIZE, "invalid encryption header extension length "
				  "8 (must be 16)");
}

void test_qcow2_header(void)
{
	test_valid_v3();
	test_valid_v2_and_extras();
	test_fixed_fields();
	test_features();
	test_tables();
	test_backing_name();
	test_extension_walk();
}
