/*
 * qcow2_bitmap.c: the persistent dirty bitmap directory, for info.
 *
 * Spec: QEMU docs/interop/qcow2.txt, "Bitmaps extension" and "Bitmap
 * directory".  The directory is a run of 8-byte aligned entries: u64
 * bitmap table offset, u32 table size (in entries), u32 flags (bit 0
 * in_use, bit 1 auto), u8 type (1: dirty tracking), u8 granularity_bits,
 * u16 name size, u32 extra data size, the extra data, the name.
 *
 * The rules are qemu 7.2's, which refuses to open an image whose directory
 * breaks them: exactly nb_bitmaps entries filling the directory, no extra
 * data, table size 1..2^27 entries and at most 512 MiB of bitmap data,
 * table offset non-zero and cluster aligned, granularity_bits 9..31, no
 * reserved flags, names at most 1023 bytes, and a table large enough for
 * the disk unless the bitmap is marked in use.  The directory itself is
 * bounded by the header extension (checked in qcow2_header.c); bitmap
 * tables and data are not read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2.h"

#define BM_ENTRY_LEN 24
#define BM_FLAG_IN_USE (1U << 0)
#define BM_FLAG_AUTO (1U << 1)
#define BM_KNOWN_FLAGS (BM_FLAG_IN_USE | BM_FLAG_AUTO)
#define BM_TYPE_DIRTY_TRACKING 1
#define BM_MIN_GRANULARITY_BITS 9
#define BM_MAX_GRANULARITY_BITS 31
#define BM_MAX_NAME 1023
#define BM_MAX_TABLE_ENTRIES 0x8000000U
#define BM_MAX_DATA_BYTES 0x20000000ULL

typedef unsigned long long ull;

struct bm_entry {
	uint64_t table_offset;
	uint32_t table_size;
	uint32_t flags;
	uint8_t type;
	uint8_t granularity_bits;
	uint16_t name_size;
	uint32_t extra_size;
	const uint8_t *name;
};

/*
 * Check one entry against qemu's constraints; the name was checked and
 * copied by the caller.
 */
static int check_entry(const struct bm_entry *b, const char *name,
		       uint64_t cs, uint64_t disk_size, struct qerr *e)
{
	uint64_t data_bytes = (uint64_t)b->table_size * cs;

	if (b->extra_size)
		return qerr_set(e, -ENOTSUP,
				"bitmap '%s': invalid extra_data_size %u (must "
				"be 0)", name, b->extra_size);
	if (b->type != BM_TYPE_DIRTY_TRACKING)
		return qerr_set(e, -EINVAL,
				"bitmap '%s': invalid type %u (must be 1)",
				name, b->type);
	if (b->granularity_bits < BM_MIN_GRANULARITY_BITS ||
	    b->granularity_bits > BM_MAX_GRANULARITY_BITS)
		return qerr_set(e, -EINVAL,
				"bitmap '%s': invalid granularity_bits %u "
				"(must be %d to %d)",
				name, b->granularity_bits,
				BM_MIN_GRANULARITY_BITS,
				BM_MAX_GRANULARITY_BITS);
	if (b->flags & ~BM_KNOWN_FLAGS)
		return qerr_set(e, -EINVAL,
				"bitmap '%s': invalid flags %#x (reserved bits "
				"set)", name, b->flags);
	if (b->table_offset == 0 || b->table_offset % cs)
		return qerr_set(e, -EINVAL,
				"bitmap '%s': invalid bitmap_table_offset "
				"%#llx (must be a non-zero multiple of the "
				"cluster size)", name, (ull)b->table_offset);
	if (b->table_size == 0 || b->table_size > BM_MAX_TABLE_ENTRIES ||
	    data_bytes > BM_MAX_DATA_BYTES)
		return qerr_set(e, -EINVAL,
				"bitmap '%s': invalid bitmap_table_size %u "
				"(must be 1 to %u and describe at most %llu "
				"bytes)", name, b->table_size,
				BM_MAX_TABLE_ENTRIES, BM_MAX_DATA_BYTES);
	/* A consistent bitmap must cover the disk; one in use may not. */
	if (!(b->flags & BM_FLAG_IN_USE) &&
	    disk_size > ((data_bytes * 8) << b->granularity_bits))
		return qerr_set(e, -EINVAL,
				"bitmap '%s': invalid bitmap_table_size %u (too "
				"small for the %llu-byte disk)",
				name, b->table_size, (ull)disk_size);
	return 0;
}

/* Decode the entry at p (avail bytes left); *len is its padded length. */
static int decode_entry(const uint8_t *p, size_t avail, struct bm_entry *b,
			size_t *len, struct qerr *e)
{
	uint64_t n;

	if (avail < BM_ENTRY_LEN)
		return qerr_set(e, -EINVAL,
				"the bitmap directory ends inside an entry");
	b->table_offset = be64_get(p);
	b->table_size = be32_get(p + 8);
	b->flags = be32_get(p + 12);
	b->type = p[16];
	b->granularity_bits = p[17];
	b->name_size = be16_get(p + 18);
	b->extra_size = be32_get(p + 20);
	n = ((uint64_t)BM_ENTRY_LEN + b->extra_size + b->name_size + 7) & ~7ULL;
	if (n > avail)
		return qerr_set(e, -EINVAL,
				"the bitmap directory ends inside an entry");
	b->name = p + BM_ENTRY_LEN + b->extra_size;
	*len = (size_t)n;
	return 0;
}

static void add_bitmap(struct kv *arr, const struct bm_entry *b,
		       const char *name)
{
	struct kv *obj = kv_add_obj(arr, NULL);
	struct kv *flags = kv_add_arr(obj, "flags");

	if (b->flags & BM_FLAG_IN_USE)
		kv_add_str(flags, NULL, "in-use");
	if (b->flags & BM_FLAG_AUTO)
		kv_add_str(flags, NULL, "auto");
	kv_add_str(obj, "name", name);
	kv_add_int(obj, "granularity", 1LL << b->granularity_bits);
}

static int walk_directory(const uint8_t *dir, size_t size,
			  const struct qcow2_meta *m, struct kv *arr,
			  struct qerr *e)
{
	uint64_t cs = qcow2_cluster_size(&m->h);
	uint64_t disk_size = m->h.size & ~511ULL;
	size_t off = 0, len = 0, count = 0;
	char name[BM_MAX_NAME + 1];
	struct bm_entry b = { 0 };
	int ret;

	while (off < size) {
		ret = decode_entry(dir + off, size - off, &b, &len, e);
		if (ret < 0)
			return ret;
		if (++count > m->nb_bitmaps)
			return qerr_set(e, -EINVAL,
					"the bitmap directory holds more than "
					"nb_bitmaps %u entries",
					m->nb_bitmaps);
		if (b.name_size > BM_MAX_NAME)
			return qerr_set(e, -EINVAL,
					"bitmap %zu: invalid name_size %u (must "
					"be at most %d)",
					count - 1, b.name_size, BM_MAX_NAME);
		if (memchr(b.name, '\0', b.name_size))
			return qerr_set(e, -EINVAL,
					"bitmap %zu: the name contains a NUL "
					"byte", count - 1);
		memcpy(name, b.name, b.name_size);
		name[b.name_size] = '\0';
		ret = check_entry(&b, name, cs, disk_size, e);
		if (ret < 0)
			return ret;
		add_bitmap(arr, &b, name);
		off += len;
	}
	if (count != m->nb_bitmaps)
		return qerr_set(e, -EINVAL,
				"the bitmap directory holds %zu entries, not "
				"nb_bitmaps %u", count, m->nb_bitmaps);
	return 0;
}

int qcow2_bitmaps_info(struct qfile *f, const struct qcow2_meta *m,
		       uint64_t file_size, struct kv *data, struct qerr *e)
{
	uint8_t *dir;
	int ret;

	if (!m->has_bitmaps_ext)
		return 0;
	/* qcow2_meta_parse bounded the directory and put it in the file. */
	if (m->bitmap_dir_size > file_size ||
	    m->bitmap_dir_offset > file_size - m->bitmap_dir_size)
		return qerr_set(e, -EINVAL,
				"the bitmap directory lies past the end of the "
				"file");
	dir = malloc((size_t)m->bitmap_dir_size);
	if (!dir)
		return qerr_set(e, -ENOMEM, "out of memory");
	ret = qfile_pread(f, dir, (size_t)m->bitmap_dir_size,
			  m->bitmap_dir_offset, e);
	if (ret == 0)
		ret = walk_directory(dir, (size_t)m->bitmap_dir_size, m,
				     kv_add_arr(data, "bitmaps"), e);
	free(dir);
	return ret;
}
