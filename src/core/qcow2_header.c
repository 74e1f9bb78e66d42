/*
 * qcow2_header.c: parse and validate cluster 0 of a qcow2 image: the fixed
 * header (v2: 72 bytes, v3: header_length bytes), the header extensions and
 * the backing file name.
 *
 * Spec: QEMU docs/interop/qcow2.txt, "Header" and "Header extensions";
 * the limits are qemu 7.2's (L1 table 32 MiB, refcount table 8 MiB, 65536
 * snapshots, cluster_bits 9..21).
 *
 * Invariants: nothing read from the file is used before it is checked; every
 * allocation is bounded by cluster 0 (at most 2 MiB), so a hostile header
 * cannot make us allocate more than the header itself.  Bytes of cluster 0
 * that lie past the end of a short file read as zeros, as they do in qemu.
 * Tables the header names must lie inside the file; their contents are not
 * read here (opening stays O(header)).  Every message names the field and
 * the bad value; where qemu-img 7.2 has a well-known message (format,
 * version, unsupported features) its words are kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2.h"

#define QCOW2_MAX_L1_ENTRIES (QCOW2_MAX_L1_BYTES / 8)
#define QCOW2_FIXED_HEADER_LEN 112	/* through compression_type + padding */
#define QCOW2_EXTL2_MIN_CLUSTER_BITS 14
#define QCOW2_MAX_REFCOUNT_ORDER 6
#define QCOW2_SNAPSHOT_ENTRY_MIN 40
#define QCOW2_FEATURE_ENTRY_LEN 48
#define QCOW2_BITMAPS_EXT_LEN 24
#define QCOW2_CRYPTO_EXT_LEN 16
#define QCOW2_BACKING_FMT_MAX 15	/* qemu keeps it in 16 bytes */
/* qemu caps the bitmap directory at 1 KiB per possible bitmap. */
#define QCOW2_MAX_BITMAP_DIR_BYTES (1024ULL * QCOW2_MAX_BITMAPS)

typedef unsigned long long ull;

/* Cluster 0 as parsing sees it: bytes past len read as zeros. */
struct c0 {
	const uint8_t *buf;
	size_t len;
	uint64_t file_size;
	uint64_t cs;		/* cluster size, once cluster_bits is valid */
};

static void c0_copy(const struct c0 *c, void *dst, uint64_t off, size_t n)
{
	size_t have = 0;

	if (off < c->len)
		have = c->len - off < n ? (size_t)(c->len - off) : n;
	if (have)
		memcpy(dst, c->buf + off, have);
	memset((uint8_t *)dst + have, 0, n - have);
}

/*
 * Copy an on-disk name of n bytes into a NUL-terminated string.  Trailing
 * NUL padding is dropped; a NUL followed by more text would make the name
 * mean something else to tools that stop at the NUL, so it is refused.
 */
static int copy_name(const uint8_t *p, size_t n, const char *what,
		     char **out, struct qerr *e)
{
	size_t len = n;
	char *s;

	while (len > 0 && p[len - 1] == '\0')
		len--;
	if (memchr(p, '\0', len))
		return qerr_set(e, -EINVAL, "%s contains a NUL byte", what);
	s = malloc(len + 1);
	if (!s)
		return qerr_set(e, -ENOMEM, "out of memory");
	memcpy(s, p, len);
	s[len] = '\0';
	free(*out);
	*out = s;
	return 0;
}

/* The fixed header: magic, version, cluster size, v3 fields. */
static int parse_fixed(struct c0 *c, struct qcow2_meta *m, struct qerr *e)
{
	struct qcow2_header *h = &m->h;
	uint8_t b[QCOW2_FIXED_HEADER_LEN];
	uint32_t need;

	c0_copy(c, b, 0, sizeof(b));
	h->magic = be32_get(b);
	if (c->file_size < 8 || h->magic != QCOW2_MAGIC)
		return qerr_set(e, -EINVAL, "Image is not in qcow2 format");
	h->version = be32_get(b + 4);
	if (h->version != 2 && h->version != 3)
		return qerr_set(e, -ENOTSUP, "Unsupported qcow2 version %u",
				h->version);
	need = h->version == 2 ? QCOW2_V2_HEADER_LEN : QCOW2_V3_HEADER_LEN;
	if (c->file_size < need)
		return qerr_set(e, -EINVAL,
				"truncated header: the file has %llu bytes, a "
				"version %u header needs %u",
				(ull)c->file_size, h->version, need);
	h->backing_file_offset = be64_get(b + 8);
	h->backing_file_size = be32_get(b + 16);
	h->cluster_bits = be32_get(b + 20);
	h->size = be64_get(b + 24);
	h->crypt_method = be32_get(b + 32);
	h->l1_size = be32_get(b + 36);
	h->l1_table_offset = be64_get(b + 40);
	h->refcount_table_offset = be64_get(b + 48);
	h->refcount_table_clusters = be32_get(b + 56);
	h->nb_snapshots = be32_get(b + 60);
	h->snapshots_offset = be64_get(b + 64);

	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return qerr_set(e, -EINVAL,
				"invalid cluster_bits %u (must be %d to %d)",
				h->cluster_bits, QCOW2_MIN_CLUSTER_BITS,
				QCOW2_MAX_CLUSTER_BITS);
	c->cs = 1ULL << h->cluster_bits;

	if (h->version == 2) {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_LEN;
		return 0;
	}
	h->incompatible_features = be64_get(b + 72);
	h->compatible_features = be64_get(b + 80);
	h->autoclear_features = be64_get(b + 88);
	h->refcount_order = be32_get(b + 96);
	h->header_length = be32_get(b + 100);
	if (h->header_length < QCOW2_V3_HEADER_LEN || h->header_length % 8)
		return qerr_set(e, -EINVAL,
				"invalid header_length %u (must be at least %d "
				"and a multiple of 8)",
				h->header_length, QCOW2_V3_HEADER_LEN);
	if (h->header_length > c->cs)
		return qerr_set(e, -EINVAL,
				"invalid header_length %u (larger than the "
				"cluster size %llu)",
				h->header_length, (ull)c->cs);
	if (h->header_length > c->file_size)
		return qerr_set(e, -EINVAL,
				"truncated header: header_length is %u but the "
				"file has %llu bytes",
				h->header_length, (ull)c->file_size);
	if (h->header_length > QCOW2_V3_HEADER_LEN)
		h->compression_type = b[QCOW2_V3_HEADER_LEN];
	if (h->header_length > QCOW2_FIXED_HEADER_LEN) {
		m->extra_header_len = h->header_length - QCOW2_FIXED_HEADER_LEN;
		m->extra_header = malloc(m->extra_header_len);
		if (!m->extra_header)
			return qerr_set(e, -ENOMEM, "out of memory");
		c0_copy(c, m->extra_header, QCOW2_FIXED_HEADER_LEN,
			m->extra_header_len);
	}
	return 0;
}

/*
 * A table (or other structure) of bytes bytes at off, named by field:
 * cluster aligned, not over the header, inside the file.
 */
static int check_table(const char *what, const char *field, uint64_t off,
		       uint64_t bytes, uint64_t cs, uint64_t file_size,
		       struct qerr *e)
{
	if (off % cs)
		return qerr_set(e, -EINVAL,
				"invalid %s %#llx (not a multiple of the "
				"cluster size %llu)",
				field, (ull)off, (ull)cs);
	if (bytes == 0)
		return 0;
	if (off == 0)
		return qerr_set(e, -EINVAL,
				"invalid %s 0 (the %s would overlap the "
				"header)", field, what);
	if (off > file_size || bytes > file_size - off)
		return qerr_set(e, -EINVAL,
				"the %s (offset %#llx, %llu bytes) lies past "
				"the end of the file (%llu bytes)",
				what, (ull)off, (ull)bytes, (ull)file_size);
	return 0;
}

static int ext_feature_table(struct qcow2_meta *m, const uint8_t *d,
			     uint32_t len, struct qerr *e)
{
	size_t n = len / QCOW2_FEATURE_ENTRY_LEN;
	struct qcow2_feature *f = calloc(n ? n : 1, sizeof(*f));

	if (!f)
		return qerr_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = d + i * QCOW2_FEATURE_ENTRY_LEN;

		f[i].type = p[0];
		f[i].bit = p[1];
		memcpy(f[i].name, p + 2, QCOW2_FEATURE_ENTRY_LEN - 2);
		f[i].name[QCOW2_FEATURE_ENTRY_LEN - 2] = '\0';
	}
	free(m->features);	/* a later table wins, as in qemu */
	m->features = f;
	m->nb_features = n;
	m->has_feature_table = true;
	return 0;
}

static int ext_bitmaps(struct qcow2_meta *m, const uint8_t *d, uint32_t len,
		       uint64_t cs, uint64_t file_size, struct qerr *e)
{
	uint32_t nb, reserved;
	uint64_t size, off;
	int ret;

	/*
	 * Without autoclear bit 0 a program that does not know bitmaps wrote
	 * the image since: qemu ignores the extension (and drops it when it
	 * rewrites the header), so do we.
	 */
	if (!(m->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	if (len != QCOW2_BITMAPS_EXT_LEN)
		return qerr_set(e, -EINVAL,
				"invalid bitmaps extension length %u (must be "
				"%d)", len, QCOW2_BITMAPS_EXT_LEN);
	nb = be32_get(d);
	reserved = be32_get(d + 4);
	size = be64_get(d + 8);
	off = be64_get(d + 16);
	if (reserved)
		return qerr_set(e, -EINVAL,
				"invalid bitmaps extension reserved field %#x "
				"(must be 0)", reserved);
	if (nb == 0 || nb > QCOW2_MAX_BITMAPS)
		return qerr_set(e, -EINVAL,
				"invalid nb_bitmaps %u (must be 1 to %d)", nb,
				QCOW2_MAX_BITMAPS);
	if (size == 0 || size > QCOW2_MAX_BITMAP_DIR_BYTES)
		return qerr_set(e, -EINVAL,
				"invalid bitmap_directory_size %llu (must be 1 "
				"to %llu)",
				(ull)size, (ull)QCOW2_MAX_BITMAP_DIR_BYTES);
	ret = check_table("bitmap directory", "bitmap_directory_offset", off,
			  size, cs, file_size, e);
	if (ret < 0)
		return ret;
	m->has_bitmaps_ext = true;
	m->nb_bitmaps = nb;
	m->bitmap_dir_size = size;
	m->bitmap_dir_offset = off;
	return 0;
}

static int ext_crypto(struct qcow2_meta *m, const uint8_t *d, uint32_t len,
		      uint64_t cs, uint64_t file_size, struct qerr *e)
{
	uint64_t off, size;
	int ret;

	if (m->h.crypt_method != QCOW2_CRYPT_LUKS)
		return qerr_set(e, -EINVAL,
				"unexpected encryption header extension "
				"(crypt_method is %u, not 2 for LUKS)",
				m->h.crypt_method);
	if (len != QCOW2_CRYPTO_EXT_LEN)
		return qerr_set(e, -EINVAL,
				"invalid encryption header extension length %u "
				"(must be %d)", len, QCOW2_CRYPTO_EXT_LEN);
	off = be64_get(d);
	size = be64_get(d + 8);
	ret = check_table("encryption header", "encryption header offset",
			  off, size, cs, file_size, e);
	if (ret < 0)
		return ret;
	m->has_crypto_ext = true;
	m->crypto_offset = off;
	m->crypto_length = size;
	return 0;
}

static int ext_unknown(struct qcow2_meta *m, uint32_t type, uint8_t *d,
		       uint32_t len, struct qerr *e)
{
	struct qcow2_ext *u;

	/* Grow by doubling: at most cluster/8 extensions fit in cluster 0. */
	if ((m->nb_unknown & (m->nb_unknown - 1)) == 0) {
		size_t cap = m->nb_unknown ? m->nb_unknown * 2 : 1;

		u = realloc(m->unknown, cap * sizeof(*u));
		if (!u)
			return qerr_set(e, -ENOMEM, "out of memory");
		m->unknown = u;
	}
	u = &m->unknown[m->nb_unknown++];
	u->type = type;
	u->len = len;
	u->data = d;
	return 0;
}

/*
 * Interpret one extension.  d (len bytes, malloc'd) is consumed: kept for
 * unknown extensions, freed otherwise.  A known extension seen twice
 * replaces the first, as in qemu.
 */
static int ext_take(struct qcow2_meta *m, const struct c0 *c, uint32_t type,
		    uint8_t *d, uint32_t len, struct qerr *e)
{
	int ret = 0;

	switch (type) {
	case QCOW2_EXT_BACKING_FORMAT:
		if (len > QCOW2_BACKING_FMT_MAX)
			ret = qerr_set(e, -EINVAL,
				       "invalid backing format extension "
				       "length %u (must be at most %d)",
				       len, QCOW2_BACKING_FMT_MAX);
		else
			ret = copy_name(d, len, "backing format",
					&m->backing_fmt, e);
		if (ret == 0 && m->backing_fmt && !m->backing_fmt[0]) {
			free(m->backing_fmt);
			m->backing_fmt = NULL;
		}
		break;
	case QCOW2_EXT_FEATURE_TABLE:
		ret = ext_feature_table(m, d, len, e);
		break;
	case QCOW2_EXT_BITMAPS:
		ret = ext_bitmaps(m, d, len, c->cs, c->file_size, e);
		break;
	case QCOW2_EXT_CRYPTO:
		ret = ext_crypto(m, d, len, c->cs, c->file_size, e);
		break;
	case QCOW2_EXT_DATA_FILE:
		ret = copy_name(d, len, "data file name", &m->data_file, e);
		break;
	default:
		return ext_unknown(m, type, d, len, e);
	}
	free(d);
	return ret;
}

/*
 * Walk the extensions from header_length to end (the backing file name, or
 * the end of cluster 0).  Each must fit before end; an end marker must
 * come before end too.
 */
static int walk_extensions(const struct c0 *c, struct qcow2_meta *m,
			   uint64_t end, struct qerr *e)
{
	uint64_t off = m->h.header_length;

	for (;;) {
		uint8_t eh[8], *d;
		uint32_t type, len;
		int ret;

		if (off > end || end - off < 8)
			return qerr_set(e, -EINVAL,
					"the header extensions have no end "
					"marker before offset %#llx",
					(ull)end);
		c0_copy(c, eh, off, sizeof(eh));
		type = be32_get(eh);
		len = be32_get(eh + 4);
		off += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - off)
			return qerr_set(e, -EINVAL,
					"header extension %#010x at offset "
					"%#llx: length %u runs past %s at "
					"offset %#llx",
					type, (ull)(off - 8), len,
					m->h.backing_file_offset
						? "the backing file name"
						: "the end of cluster 0",
					(ull)end);
		d = malloc(len ? len : 1);
		if (!d)
			return qerr_set(e, -ENOMEM, "out of memory");
		c0_copy(c, d, off, len);
		ret = ext_take(m, c, type, d, len, e);
		if (ret < 0)
			return ret;
		off += ((uint64_t)len + 7) & ~7ULL;
	}
}

/*
 * qemu-img's refusal of unknown incompatible bits, in its words: names from
 * the feature name table (read up to the first unnamed entry, as qemu
 * does), then the bits nobody named.
 */
static int unsupported_features(const struct qcow2_meta *m, struct qerr *e)
{
	uint64_t mask = m->h.incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
	char list[QERR_MSG_MAX];
	size_t used = 0;

	list[0] = '\0';
	for (size_t i = 0; i < m->nb_features && m->features[i].name[0]; i++) {
		const struct qcow2_feature *f = &m->features[i];

		if (f->type != 0 || f->bit >= 64 || !(mask & (1ULL << f->bit)))
			continue;
		mask &= ~(1ULL << f->bit);
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used,
						 "%s", used ? ", " : "");
		/* Names come from the file: keep the message on one line. */
		for (const char *p = f->name; *p && used + 1 < sizeof(list);
		     p++)
			list[used++] = (*p < 0x20 && *p >= 0) || *p == 0x7f
					       ? '?' : *p;
		if (used < sizeof(list))
			list[used] = '\0';
	}
	if (mask && used < sizeof(list))
		snprintf(list + used, sizeof(list) - used,
			 "%sUnknown incompatible feature: %llx",
			 used ? ", " : "", (ull)mask);
	return qerr_reset(e, -ENOTSUP, "Unsupported qcow2 feature(s): %s",
			  list);
}

/* Feature bits and the fields they pair with. */
static int check_features(const struct qcow2_meta *m, uint64_t cs,
			  struct qerr *e)
{
	const struct qcow2_header *h = &m->h;

	if ((h->incompatible_features & QCOW2_INCOMPAT_EXTL2) &&
	    h->cluster_bits < QCOW2_EXTL2_MIN_CLUSTER_BITS)
		return qerr_set(e, -EINVAL,
				"invalid cluster_bits %u with extended L2 "
				"entries (must be at least %d)",
				h->cluster_bits, QCOW2_EXTL2_MIN_CLUSTER_BITS);
	if (h->refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
		return qerr_set(e, -EINVAL,
				"invalid refcount_order %u (must be 0 to %d)",
				h->refcount_order, QCOW2_MAX_REFCOUNT_ORDER);
	if (h->compression_type > QCOW2_COMPRESSION_ZSTD)
		return qerr_set(e, -ENOTSUP,
				"invalid compression_type %u (must be 0 for "
				"zlib or 1 for zstd)",
				h->compression_type);
	if (h->compression_type != QCOW2_COMPRESSION_ZLIB &&
	    !(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return qerr_set(e, -EINVAL,
				"invalid compression_type %u without "
				"incompatible feature bit 3 (compression type)",
				h->compression_type);
	if (h->compression_type == QCOW2_COMPRESSION_ZLIB &&
	    (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return qerr_set(e, -EINVAL,
				"invalid incompatible feature bit 3 "
				"(compression type) with compression_type 0 "
				"(zlib)");
	/* qemu 7.2 makes and opens LUKS in v2 images too (extensions exist
	 * in v2 headers). */
	if (h->crypt_method == QCOW2_CRYPT_LUKS && !m->has_crypto_ext)
		return qerr_set(e, -EINVAL,
				"invalid crypt_method 2 (LUKS) without the "
				"encryption header extension");
	if ((h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) &&
	    !m->data_file)
		return qerr_set(e, -EINVAL,
				"incompatible feature bit 2 (external data "
				"file) is set but no data file is named");
	return 0;
}

/* Refcount table, snapshot table, L1 table and the virtual size. */
static int check_tables(const struct qcow2_meta *m, uint64_t cs,
			uint64_t file_size, struct qerr *e)
{
	const struct qcow2_header *h = &m->h;
	bool extl2 = h->incompatible_features & QCOW2_INCOMPAT_EXTL2;
	unsigned l1_shift = 2 * h->cluster_bits - (extl2 ? 4 : 3);
	uint64_t max_size, need;
	int ret;

	if (h->refcount_table_clusters == 0)
		return qerr_set(e, -EINVAL,
				"invalid refcount_table_clusters 0 (the image "
				"has no refcount table)");
	if (h->refcount_table_clusters > QCOW2_MAX_REFTABLE_BYTES / cs)
		return qerr_set(e, -EINVAL,
				"invalid refcount_table_clusters %u (the table "
				"would exceed %u bytes)",
				h->refcount_table_clusters,
				QCOW2_MAX_REFTABLE_BYTES);
	ret = check_table("refcount table", "refcount_table_offset",
			  h->refcount_table_offset,
			  h->refcount_table_clusters * cs, cs, file_size, e);
	if (ret < 0)
		return ret;

	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return qerr_set(e, -EINVAL,
				"invalid nb_snapshots %u (must be at most %d)",
				h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	/* Entries vary in length; the minimum must fit, the rest is checked
	 * entry by entry when the table is read. */
	ret = check_table("snapshot table", "snapshots_offset",
			  h->snapshots_offset,
			  (uint64_t)h->nb_snapshots * QCOW2_SNAPSHOT_ENTRY_MIN,
			  cs, file_size, e);
	if (ret < 0)
		return ret;

	if (h->l1_size > QCOW2_MAX_L1_ENTRIES)
		return qerr_set(e, -EINVAL,
				"invalid l1_size %u (must be at most %u, a %u "
				"byte table)",
				h->l1_size, QCOW2_MAX_L1_ENTRIES,
				QCOW2_MAX_L1_BYTES);
	/* One L1 entry maps cluster_size * entries-per-L2 bytes. */
	max_size = (uint64_t)QCOW2_MAX_L1_ENTRIES << l1_shift;
	if (h->size > max_size)
		return qerr_set(e, -EFBIG,
				"invalid size %llu (larger than %llu, the "
				"limit for %llu-byte clusters)",
				(ull)h->size, (ull)max_size, (ull)cs);
	need = h->size ? ((h->size - 1) >> l1_shift) + 1 : 0;
	if (h->l1_size < need)
		return qerr_set(e, -EINVAL,
				"invalid l1_size %u (the virtual size %llu "
				"needs %llu entries)",
				h->l1_size, (ull)h->size, (ull)need);
	return check_table("L1 table", "l1_table_offset", h->l1_table_offset,
			   (uint64_t)h->l1_size * 8, cs, file_size, e);
}

/* Where the backing file name lies: after the header, inside cluster 0. */
static int check_backing_place(const struct qcow2_header *h, uint64_t cs,
			       struct qerr *e)
{
	if (h->backing_file_offset == 0)
		return 0;
	if (h->backing_file_offset < h->header_length)
		return qerr_set(e, -EINVAL,
				"invalid backing_file_offset %#llx (overlaps "
				"the %u-byte header)",
				(ull)h->backing_file_offset, h->header_length);
	if (h->backing_file_offset > cs)
		return qerr_set(e, -EINVAL,
				"invalid backing_file_offset %#llx (past "
				"cluster 0, which ends at %#llx)",
				(ull)h->backing_file_offset, (ull)cs);
	return 0;
}

static int read_backing_name(const struct c0 *c, struct qcow2_meta *m,
			     struct qerr *e)
{
	const struct qcow2_header *h = &m->h;
	uint8_t name[QCOW2_MAX_BACKING_NAME];
	int ret;

	if (h->backing_file_offset == 0 || h->backing_file_size == 0)
		return 0;
	if (h->backing_file_size > QCOW2_MAX_BACKING_NAME)
		return qerr_set(e, -EINVAL,
				"invalid backing_file_size %u (must be at "
				"most %d)",
				h->backing_file_size, QCOW2_MAX_BACKING_NAME);
	if (h->backing_file_size > c->cs - h->backing_file_offset)
		return qerr_set(e, -EINVAL,
				"invalid backing_file_size %u (the name at "
				"offset %#llx runs past cluster 0)",
				h->backing_file_size,
				(ull)h->backing_file_offset);
	if (h->backing_file_offset + h->backing_file_size > c->file_size)
		return qerr_set(e, -EINVAL,
				"the backing file name (offset %#llx, %u "
				"bytes) lies past the end of the file (%llu "
				"bytes)",
				(ull)h->backing_file_offset,
				h->backing_file_size, (ull)c->file_size);
	c0_copy(c, name, h->backing_file_offset, h->backing_file_size);
	ret = copy_name(name, h->backing_file_size, "backing file name",
			&m->backing_file, e);
	if (ret == 0 && !m->backing_file[0]) {
		/* An all-NUL name means no backing file, as in qemu. */
		free(m->backing_file);
		m->backing_file = NULL;
	}
	return ret;
}

/* table_limit: where the tables must end (the file size, or no limit). */
static int meta_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		      uint64_t table_limit, struct qcow2_meta *m,
		      struct qerr *e)
{
	struct c0 c = { buf, len, file_size, 0 };
	const struct qcow2_header *h = &m->h;
	uint64_t ext_end;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = parse_fixed(&c, m, e);
	if (ret == 0)
		ret = check_backing_place(h, c.cs, e);
	if (ret == 0 && h->crypt_method > QCOW2_CRYPT_LUKS)
		ret = qerr_set(e, -ENOTSUP,
			       "invalid crypt_method %u (must be 0 none, "
			       "1 AES or 2 LUKS)",
			       h->crypt_method);
	if (ret < 0)
		goto fail;

	ext_end = h->backing_file_offset ? h->backing_file_offset : c.cs;
	ret = walk_extensions(&c, m, ext_end, e);
	/* Unknown incompatible bits decide first: nothing else can be
	 * trusted, and the feature table may name them. */
	if (h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN)
		ret = unsupported_features(m, e);
	if (ret == 0)
		ret = check_features(m, c.cs, e);
	if (ret == 0)
		ret = check_tables(m, c.cs, table_limit, e);
	if (ret == 0)
		ret = read_backing_name(&c, m, e);
	if (ret == 0)
		return 0;
fail:
	qcow2_meta_free(m);
	return ret;
}

int qcow2_meta_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		     struct qcow2_meta *m, struct qerr *e)
{
	return meta_parse(buf, len, file_size, file_size, m, e);
}

static int meta_read(struct qfile *f, struct qcow2_meta *m, bool bounded,
		     struct qerr *e)
{
	enum { FIRST = 4096 };
	uint64_t file_size, cs = FIRST;
	uint8_t *buf;
	size_t len;
	int ret;

	ret = qfile_size(f, &file_size, e);
	if (ret < 0)
		return ret;
	len = file_size < FIRST ? (size_t)file_size : FIRST;
	buf = malloc(FIRST);
	if (!buf)
		return qerr_set(e, -ENOMEM, "out of memory");
	ret = qfile_pread(f, buf, len, 0, e);
	/* Cluster 0 may be larger than what we read: read all of it, once
	 * cluster_bits is known to be sane (parse checks it again). */
	if (ret == 0 && len >= 24) {
		uint32_t bits = be32_get(buf + 20);

		if (bits >= QCOW2_MIN_CLUSTER_BITS &&
		    bits <= QCOW2_MAX_CLUSTER_BITS)
			cs = 1ULL << bits;
	}
	if (ret == 0 && cs > FIRST && file_size > FIRST) {
		uint8_t *big = realloc(buf, cs);

		if (!big) {
			ret = qerr_set(e, -ENOMEM, "out of memory");
		} else {
			buf = big;
			len = file_size < cs ? (size_t)file_size : (size_t)cs;
			ret = qfile_pread(f, buf, len, 0, e);
		}
	}
	if (ret == 0)
		ret = meta_parse(buf, len, file_size,
				 bounded ? file_size : UINT64_MAX, m, e);
	free(buf);
	return ret;
}

int qcow2_meta_read(struct qfile *f, struct qcow2_meta *m, struct qerr *e)
{
	return meta_read(f, m, true, e);
}

int qcow2_meta_read_check(struct qfile *f, struct qcow2_meta *m,
			  struct qerr *e)
{
	return meta_read(f, m, false, e);
}

void qcow2_meta_free(struct qcow2_meta *m)
{
	free(m->extra_header);
	free(m->backing_file);
	free(m->backing_fmt);
	free(m->data_file);
	free(m->features);
	for (size_t i = 0; i < m->nb_unknown; i++)
		free(m->unknown[i].data);
	free(m->unknown);
	memset(m, 0, sizeof(*m));
}
