/*
 * qcow2_header_write.c: serialise a struct qcow2_meta into cluster 0, the
 * inverse of qcow2_meta_parse().
 *
 * Spec: docs/interop/qcow2.txt, "Header" and "Header extensions".  Layout
 * written, all big-endian:
 *   - the fixed header: 72 bytes for v2; header_length bytes for v3 (104
 *     fixed bytes, then the compression_type byte and padding to 112, then
 *     any header bytes a newer writer put there, kept verbatim);
 *   - the extensions, each "u32 type, u32 length, data padded to 8", in
 *     the order qemu 7.2 writes them: backing format, external data file,
 *     crypto header pointer, feature name table, bitmaps, then unknown
 *     extensions in the order they were read;
 *   - the end marker (type 0, length 0);
 *   - the backing file name, not NUL-terminated.
 * Invariants: nothing is written past cap; every byte not written here is
 * zero (the buffer is cleared first), so the result is reproducible.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2.h"

/* Size of one feature name table entry: type, bit, 46-byte name. */
#define FEATURE_ENTRY_LEN 48
#define FEATURE_NAME_LEN 46

/* Byte offsets of the v3 fields in the fixed header. */
#define HDR_COMPRESSION_TYPE 104
#define HDR_V3_PADDED_LEN 112

struct wbuf {
	uint8_t *buf;
	size_t cap;
	size_t pos;
	bool overflow;
};

/* Reserve len bytes at the cursor; NULL (and overflow) if they do not fit. */
static uint8_t *wbuf_take(struct wbuf *w, size_t len)
{
	uint8_t *p;

	if (w->overflow || len > w->cap - w->pos) {
		w->overflow = true;
		return NULL;
	}
	p = w->buf + w->pos;
	w->pos += len;
	return p;
}

/* Append an extension header and room for len data bytes padded to 8. */
static uint8_t *ext_begin(struct wbuf *w, uint32_t type, uint32_t len)
{
	size_t padded = ((size_t)len + 7) & ~(size_t)7;
	uint8_t *p = wbuf_take(w, 8 + padded);

	if (!p)
		return NULL;
	be32_put(p, type);
	be32_put(p + 4, len);
	return p + 8;
}

static void ext_bytes(struct wbuf *w, uint32_t type, const void *data,
		      size_t len)
{
	uint8_t *p;

	if (len > UINT32_MAX) {
		w->overflow = true;
		return;
	}
	p = ext_begin(w, type, (uint32_t)len);
	if (p && len)
		memcpy(p, data, len);
}

static void put_fixed_header(const struct qcow2_header *h, uint8_t *p)
{
	be32_put(p + 0, QCOW2_MAGIC);
	be32_put(p + 4, h->version);
	be64_put(p + 8, h->backing_file_offset);
	be32_put(p + 16, h->backing_file_size);
	be32_put(p + 20, h->cluster_bits);
	be64_put(p + 24, h->size);
	be32_put(p + 32, h->crypt_method);
	be32_put(p + 36, h->l1_size);
	be64_put(p + 40, h->l1_table_offset);
	be64_put(p + 48, h->refcount_table_offset);
	be32_put(p + 56, h->refcount_table_clusters);
	be32_put(p + 60, h->nb_snapshots);
	be64_put(p + 64, h->snapshots_offset);
	if (h->version < 3)
		return;
	be64_put(p + 72, h->incompatible_features);
	be64_put(p + 80, h->compatible_features);
	be64_put(p + 88, h->autoclear_features);
	be32_put(p + 96, h->refcount_order);
	be32_put(p + 100, h->header_length);
	if (h->header_length > HDR_COMPRESSION_TYPE)
		p[HDR_COMPRESSION_TYPE] = h->compression_type;
}

/* The fixed header; returns its length or a negative errno. */
static int write_header(struct qcow2_meta *m, struct wbuf *w, struct qerr *e)
{
	const struct qcow2_header *h = &m->h;
	size_t len = QCOW2_V2_HEADER_LEN;
	uint8_t *p;

	if (h->version != 2 && h->version != 3)
		return qerr_set(e, -EINVAL, "unsupported qcow2 version %u",
				h->version);
	if (h->version == 3) {
		if (h->header_length < QCOW2_V3_HEADER_LEN ||
		    h->header_length % 8 != 0)
			return qerr_set(e, -EINVAL,
					"invalid header length %u",
					h->header_length);
		len = h->header_length;
	}
	p = wbuf_take(w, len);
	if (!p)
		return 0;	/* reported as -ENOSPC by the caller */
	put_fixed_header(h, p);
	if (len > HDR_V3_PADDED_LEN && m->extra_header) {
		size_t n = len - HDR_V3_PADDED_LEN;

		if (n > m->extra_header_len)
			n = m->extra_header_len;
		memcpy(p + HDR_V3_PADDED_LEN, m->extra_header, n);
	}
	return 0;
}

static void write_feature_table(const struct qcow2_meta *m, struct wbuf *w)
{
	uint8_t *p;

	if (m->nb_features > UINT32_MAX / FEATURE_ENTRY_LEN) {
		w->overflow = true;
		return;
	}
	p = ext_begin(w, QCOW2_EXT_FEATURE_TABLE,
		      (uint32_t)(m->nb_features * FEATURE_ENTRY_LEN));
	for (size_t i = 0; p && i < m->nb_features; i++) {
		uint8_t *ent = p + i * FEATURE_ENTRY_LEN;
		size_t n = strnlen(m->features[i].name, FEATURE_NAME_LEN);

		ent[0] = m->features[i].type;
		ent[1] = m->features[i].bit;
		memcpy(ent + 2, m->features[i].name, n);
	}
}

static void write_extensions(const struct qcow2_meta *m, struct wbuf *w)
{
	uint8_t *p;

	if (m->backing_fmt)
		ext_bytes(w, QCOW2_EXT_BACKING_FORMAT, m->backing_fmt,
			  strlen(m->backing_fmt));
	if (m->data_file)
		ext_bytes(w, QCOW2_EXT_DATA_FILE, m->data_file,
			  strlen(m->data_file));
	if (m->has_crypto_ext && (p = ext_begin(w, QCOW2_EXT_CRYPTO, 16))) {
		be64_put(p, m->crypto_offset);
		be64_put(p + 8, m->crypto_length);
	}
	if (m->has_feature_table)
		write_feature_table(m, w);
	if (m->has_bitmaps_ext && (p = ext_begin(w, QCOW2_EXT_BITMAPS, 24))) {
		be32_put(p, m->nb_bitmaps);
		be64_put(p + 8, m->bitmap_dir_size);
		be64_put(p + 16, m->bitmap_dir_offset);
	}
	for (size_t i = 0; i < m->nb_unknown; i++)
		ext_bytes(w, m->unknown[i].type, m->unknown[i].data,
			  m->unknown[i].len);
	ext_begin(w, QCOW2_EXT_END, 0);
}

int qcow2_meta_serialize(struct qcow2_meta *m, uint8_t *buf, size_t cap,
			 struct qerr *e)
{
	struct wbuf w = { .buf = buf, .cap = cap };
	size_t name_len = m->backing_file ? strlen(m->backing_file) : 0;
	uint8_t *name = NULL;
	int ret;

	if (name_len > QCOW2_MAX_BACKING_NAME)
		return qerr_set(e, -EINVAL,
				"backing file name is longer than %d bytes",
				QCOW2_MAX_BACKING_NAME);
	memset(buf, 0, cap);
	ret = write_header(m, &w, e);
	if (ret < 0)
		return ret;
	write_extensions(m, &w);
	if (name_len)
		name = wbuf_take(&w, name_len);
	if (w.overflow) {
		memset(buf, 0, cap);
		return qerr_set(e, -ENOSPC,
				"the header, its extensions and the backing "
				"file name do not fit in %zu bytes",
				cap);
	}
	m->h.backing_file_offset = name ? (uint64_t)(name - buf) : 0;
	m->h.backing_file_size = (uint32_t)name_len;
	if (name)
		memcpy(name, m->backing_file, name_len);
	/* The header went out before the name's place was known. */
	be64_put(buf + 8, m->h.backing_file_offset);
	be32_put(buf + 16, m->h.backing_file_size);
	return 0;
}

int qcow2_meta_set_default_features(struct qcow2_meta *m)
{
	static const struct {
		uint8_t type, bit;
		const char *name;
	} defaults[] = {
		{ 0, 0, "dirty bit" },
		{ 0, 1, "corrupt bit" },
		{ 0, 2, "external data file" },
		{ 0, 3, "compression type" },
		{ 0, 4, "extended L2 entries" },
		{ 1, 0, "lazy refcounts" },
		{ 2, 0, "bitmaps" },
		{ 2, 1, "raw external data" },
	};
	size_t n = sizeof(defaults) / sizeof(defaults[0]);
	struct qcow2_feature *f = calloc(n, sizeof(*f));

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		f[i].type = defaults[i].type;
		f[i].bit = defaults[i].bit;
		strcpy(f[i].name, defaults[i].name);
	}
	free(m->features);
	m->features = f;
	m->nb_features = n;
	m->has_feature_table = true;
	return 0;
}
