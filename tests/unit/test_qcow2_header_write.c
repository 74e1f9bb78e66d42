/*
 * test_qcow2_header_write.c: qcow2_meta_serialize: the bytes of the
 * header qemu-img 7.2 writes for "create -f qcow2 x 1G", extension order
 * and padding, kept unknown header bytes and extensions, v2, -ENOSPC, and
 * the round trip serialize -> qcow2_meta_parse for every field.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/qcow2.h"
#include "tests/unit/unit.h"

#define CS 65536

/* The header create writes for a default 1 GiB image. */
static void default_meta(struct qcow2_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->h.magic = QCOW2_MAGIC;
	m->h.version = 3;
	m->h.cluster_bits = 16;
	m->h.size = 1ULL << 30;
	m->h.l1_size = 2;
	m->h.l1_table_offset = 0x30000;
	m->h.refcount_table_offset = 0x10000;
	m->h.refcount_table_clusters = 1;
	m->h.refcount_order = 4;
	m->h.header_length = 112;
	CHECK(qcow2_meta_set_default_features(m) == 0);
}

/* Names and a bitmaps extension, as an image with every feature has. */
static void add_names(struct qcow2_meta *m, char *base, char *fmt,
		      char *data, uint64_t bitmap_dir)
{
	m->backing_file = base;
	m->backing_fmt = fmt;
	m->data_file = data;
	m->has_bitmaps_ext = true;
	m->nb_bitmaps = bitmap_dir >> 16;
	m->bitmap_dir_size = 40;
	m->bitmap_dir_offset = bitmap_dir;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Byte layout of qemu-img's default header (QEMU-IMG-REFERENCE 6.2). */
static void test_default_layout(uint8_t *buf)
{
	static const uint8_t fixed[] = {
		0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3,	/* magic, version */
		0, 0, 0, 0, 0, 0, 0, 0,			/* backing offset */
		0, 0, 0, 0, 0, 0, 0, 16,		/* size, cluster_bits */
		0, 0, 0, 0, 0x40, 0, 0, 0,		/* 1 GiB */
		0, 0, 0, 0, 0, 0, 0, 2,			/* crypt, l1_size */
		0, 0, 0, 0, 0, 3, 0, 0,			/* l1 offset */
		0, 0, 0, 0, 0, 1, 0, 0,			/* refcount table */
		0, 0, 0, 1, 0, 0, 0, 0,			/* clusters, snaps */
		0, 0, 0, 0, 0, 0, 0, 0,			/* snapshots offset */
		0, 0, 0, 0, 0, 0, 0, 0,			/* incompatible */
		0, 0, 0, 0, 0, 0, 0, 0,			/* compatible */
		0, 0, 0, 0, 0, 0, 0, 0,			/* autoclear */
		0, 0, 0, 4, 0, 0, 0, 112,		/* order, length */
		0, 0, 0, 0, 0, 0, 0, 0,			/* compression, pad */
	};
	struct qcow2_meta m;
	struct qerr e = { 0 };

	default_meta(&m);
	memset(buf, 0xaa, CS);
	CHECK(qcow2_meta_serialize(&m, buf, CS, &e) == 0);
	CHECK(memcmp(buf, fixed, sizeof(fixed)) == 0);
	CHECK_EQ_U64(be32_get(buf + 0x70), QCOW2_EXT_FEATURE_TABLE);
	CHECK_EQ_U64(be32_get(buf + 0x74), 384);
	CHECK_EQ_U64(buf[0x78], 0);
	CHECK_EQ_U64(buf[0x79], 0);
	CHECK_STR((char *)buf + 0x7a, "dirty bit");
	/* The last entry: autoclear bit 1. */
	CHECK_EQ_U64(buf[0x78 + 7 * 48], 2);
	CHECK_EQ_U64(buf[0x78 + 7 * 48 + 1], 1);
	CHECK_STR((char *)buf + 0x78 + 7 * 48 + 2, "raw external data");
	/* End marker at 0x1f8, then nothing. */
	CHECK(all_zero(buf + 0x1f8, CS - 0x1f8));
	free(m.features);
}

/* Every extension, in qemu's order, each padded to 8. */
static void test_order_and_padding(uint8_t *buf)
{
	static uint8_t unk1[] = { 1, 2, 3 }, unk2[] = { 9 };
	struct qcow2_ext unknown[] = { { 0x12345678, 3, unk1 },
				       { 0x9abcdef0, 1, unk2 } };
	struct qcow2_meta m;
	struct qerr e = { 0 };
	size_t p = 112;

	default_meta(&m);
	add_names(&m, "base.qcow2", "qcow2", "d.raw", 0x20000);
	m.has_crypto_ext = true;
	m.crypto_offset = 0x40000;
	m.crypto_length = 0x1f9000;
	m.unknown = unknown;
	m.nb_unknown = 2;
	m.h.compression_type = 1;
	CHECK(qcow2_meta_serialize(&m, buf, CS, &e) == 0);
	CHECK_EQ_U64(buf[104], 1);
	CHECK(all_zero(buf + 105, 7));
	CHECK_EQ_U64(be32_get(buf + p), QCOW2_EXT_BACKING_FORMAT);
	CHECK_EQ_U64(be32_get(buf + p + 4), 5);
	CHECK(memcmp(buf + p + 8, "qcow2\0\0\0", 8) == 0);
	p += 16;
	CHECK_EQ_U64(be32_get(buf + p), QCOW2_EXT_DATA_FILE);
	CHECK(memcmp(buf + p + 8, "d.raw\0\0\0", 8) == 0);
	p += 16;
	CHECK_EQ_U64(be32_get(buf + p), QCOW2_EXT_CRYPTO);
	CHECK_EQ_U64(be64_get(buf + p + 8), 0x40000);
	CHECK_EQ_U64(be64_get(buf + p + 16), 0x1f9000);
	p += 24;
	CHECK_EQ_U64(be32_get(buf + p), QCOW2_EXT_FEATURE_TABLE);
	p += 8 + 384;
	CHECK_EQ_U64(be32_get(buf + p), QCOW2_EXT_BITMAPS);
	CHECK_EQ_U64(be32_get(buf + p + 4), 24);
	CHECK_EQ_U64(be32_get(buf + p + 8), 2);
	CHECK_EQ_U64(be64_get(buf + p + 16), 40);
	CHECK_EQ_U64(be64_get(buf + p + 24), 0x20000);
	p += 32;
	CHECK_EQ_U64(be32_get(buf + p), 0x12345678);
	CHECK(memcmp(buf + p + 8, "\1\2\3\0\0\0\0\0", 8) == 0);
	p += 16;
	CHECK_EQ_U64(be32_get(buf + p), 0x9abcdef0);
	p += 16;
	CHECK_EQ_U64(be64_get(buf + p), 0);	/* end marker */
	p += 8;
	CHECK_EQ_U64(m.h.backing_file_offset, p);
	CHECK_EQ_U64(m.h.backing_file_size, 10);
	CHECK_EQ_U64(be64_get(buf + 8), p);
	CHECK_EQ_U64(be32_get(buf + 16), 10);
	CHECK(memcmp(buf + p, "base.qcow2", 10) == 0);
	CHECK(all_zero(buf + p + 10, CS - p - 10));
	free(m.features);
}

static void test_v2_extra_nospc(uint8_t *buf)
{
	static uint8_t extra[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	char name[QCOW2_MAX_BACKING_NAME + 2];
	struct qcow2_meta m;
	struct qerr e = { 0 };

	/* Unknown header bytes past 112 are kept. */
	default_meta(&m);
	m.h.header_length = 120;
	m.extra_header = extra;
	m.extra_header_len = sizeof(extra);
	CHECK(qcow2_meta_serialize(&m, buf, CS, &e) == 0);
	CHECK(memcmp(buf + 112, extra, 8) == 0);
	CHECK_EQ_U64(be32_get(buf + 120), QCOW2_EXT_FEATURE_TABLE);
	/* v2: 72 bytes, no v3 fields, extensions right after. */
	m.h.version = 2;
	m.has_feature_table = false;
	m.backing_fmt = "raw";
	m.backing_file = "b";
	CHECK(qcow2_meta_serialize(&m, buf, CS, &e) == 0);
	CHECK_EQ_U64(be32_get(buf + 4), 2);
	CHECK_EQ_U64(be32_get(buf + 72), QCOW2_EXT_BACKING_FORMAT);
	CHECK_EQ_U64(be64_get(buf + 88), 0);
	CHECK_EQ_U64(m.h.backing_file_offset, 96);
	/* A 512-byte cluster cannot hold the table plus a long name. */
	m.h.version = 3;
	m.h.header_length = 112;
	m.has_feature_table = true;
	memset(name, 'x', sizeof(name));
	name[QCOW2_MAX_BACKING_NAME] = '\0';
	m.backing_file = name;
	CHECK(qcow2_meta_serialize(&m, buf, 512, &e) == -ENOSPC);
	CHECK(all_zero(buf, 512));
	CHECK(qcow2_meta_serialize(&m, buf, 2048, &e) == 0);
	name[QCOW2_MAX_BACKING_NAME] = 'x';
	name[QCOW2_MAX_BACKING_NAME + 1] = '\0';
	qerr_clear(&e);
	CHECK(qcow2_meta_serialize(&m, buf, CS, &e) == -EINVAL);
	m.backing_file = NULL;
	m.h.header_length = 100;
	CHECK(qcow2_meta_serialize(&m, buf, CS, &e) == -EINVAL);
	free(m.features);
}

/* serialize -> parse gives back every field. */
static void test_round_trip(uint8_t *buf)
{
	static uint8_t extra[16] = { 0xde, 0xad, 0xbe, 0xef };
	static uint8_t unk[5] = { 5, 4, 3, 2, 1 };
	struct qcow2_ext unknown = { 0x11223344, 5, unk };
	struct qcow2_meta m, r;
	struct qerr e = { 0 };
	int ret;

	default_meta(&m);
	m.h.header_length = 128;
	m.extra_header = extra;
	m.extra_header_len = sizeof(extra);
	m.h.incompatible_features = QCOW2_INCOMPAT_DATA_FILE |
				    QCOW2_INCOMPAT_COMPRESSION;
	m.h.compression_type = QCOW2_COMPRESSION_ZSTD;
	m.h.compatible_features = QCOW2_COMPAT_LAZY_REFCOUNTS;
	m.h.autoclear_features = QCOW2_AUTOCLEAR_BITMAPS |
				 QCOW2_AUTOCLEAR_DATA_FILE_RAW;
	m.h.nb_snapshots = 1;
	m.h.snapshots_offset = 0x50000;
	add_names(&m, "dir/base.img", "raw", "data.img", 0x10000);
	m.unknown = &unknown;
	m.nb_unknown = 1;
	CHECK(qcow2_meta_serialize(&m, buf, CS, &e) == 0);
	memset(&r, 0, sizeof(r));
	ret = qcow2_meta_parse(buf, CS, 1ULL << 30, &r, &e);
	CHECK(ret == 0);
	if (ret < 0) {
		fprintf(stderr, "parse: %s\n", qerr_msg(&e));
		free(m.features);
		return;
	}
	CHECK(memcmp(&r.h, &m.h, sizeof(m.h)) == 0);
	CHECK_EQ_U64(r.extra_header_len, 16);
	CHECK(r.extra_header && memcmp(r.extra_header, extra, 16) == 0);
	CHECK_STR(r.backing_file, "dir/base.img");
	CHECK_STR(r.backing_fmt, "raw");
	CHECK_STR(r.data_file, "data.img");
	CHECK(!r.has_crypto_ext);
	CHECK(r.has_bitmaps_ext);
	CHECK_EQ_U64(r.nb_bitmaps, 1);
	CHECK_EQ_U64(r.bitmap_dir_size, 40);
	CHECK_EQ_U64(r.bitmap_dir_offset, 0x10000);
	CHECK(r.has_feature_table);
	CHECK_EQ_U64(r.nb_features, 8);
	CHECK(r.features && memcmp(r.features, m.features,
				   8 * sizeof(*m.features)) == 0);
	CHECK_EQ_U64(r.nb_unknown, 1);
	CHECK(r.unknown && r.unknown[0].type == 0x11223344 &&
	      r.unknown[0].len == 5 && memcmp(r.unknown[0].data, unk, 5) == 0);
	qcow2_meta_free(&r);
	free(m.features);
}

void test_qcow2_header_write(void)
{
	uint8_t *buf = malloc(CS);

	if (!buf) {
		CHECK(buf != NULL);
		return;
	}
	test_default_layout(buf);
	test_order_and_padding(buf);
	test_v2_extra_nospc(buf);
	test_round_trip(buf);
	free(buf);
}
