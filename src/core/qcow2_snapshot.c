/*
 * qcow2_snapshot.c: the internal snapshot table: read it (for info,
 * snapshot -l and the snapshot operations), write it back, find entries.
 *
 * Spec: QEMU docs/interop/qcow2.txt, "Snapshots".  The table holds
 * nb_snapshots variable-length entries, each 8-byte aligned: a 40-byte
 * header (L1 offset and size, id and name lengths, date, VM clock, 32-bit
 * VM state size, extra data size), the extra data (v3 needs at least 16
 * bytes: 64-bit VM state size and disk size; qemu also writes a 64-bit
 * icount, -1 when not recorded), then the id and the name.
 *
 * Bounds (qemu 7.2's): at most 65536 entries, extra data at most 1 KiB per
 * entry, the whole table at most 64 MiB, every entry inside the file.  The
 * snapshots' own L1 tables are not read here.
 *
 * Writing follows qemu: every entry gets the 24 bytes of extra data qemu
 * knows (a missing disk size becomes the image's size, a missing icount
 * -1), and extra bytes past those are kept byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_snapshot.h"

#define SNAP_HEADER_LEN 40
#define SNAP_MAX_EXTRA 1024
#define SNAP_V3_MIN_EXTRA 16
#define SNAP_EXTRA_VMSTATE_END 8	/* extra bytes holding the 64-bit size */
#define SNAP_EXTRA_DISK_END 16
#define SNAP_EXTRA_ICOUNT_END 24
/* An entry's variable part at most: extra data, id and name. */
#define SNAP_MAX_TAIL (SNAP_MAX_EXTRA + 2 * 65535)

typedef unsigned long long ull;

static char *dup_field(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* The extra data of sn (extra bytes at p): known fields, unknown bytes. */
static int parse_extra(struct qcow2_snap *sn, const uint8_t *p,
		       uint32_t extra, uint64_t disk_size)
{
	sn->extra_len = extra;
	sn->disk_size = disk_size;
	sn->icount = UINT64_MAX;
	if (extra >= SNAP_EXTRA_VMSTATE_END)
		sn->vm_state_size = be64_get(p);
	if (extra >= SNAP_EXTRA_DISK_END)
		sn->disk_size = be64_get(p + 8);
	if (extra >= SNAP_EXTRA_ICOUNT_END)
		sn->icount = be64_get(p + 16);
	if (extra > QCOW2_SNAP_EXTRA_KNOWN) {
		sn->extra_unknown_len = extra - QCOW2_SNAP_EXTRA_KNOWN;
		sn->extra_unknown = malloc(sn->extra_unknown_len);
		if (!sn->extra_unknown)
			return -ENOMEM;
		memcpy(sn->extra_unknown, p + QCOW2_SNAP_EXTRA_KNOWN,
		       sn->extra_unknown_len);
	}
	return 0;
}

/* Parse the entry at off (i-th); *next is where the next one starts. */
static int read_entry(struct qfile *f, const struct qcow2_meta *m,
		      uint64_t file_size, size_t i, uint64_t off,
		      uint8_t *tail, struct qcow2_snap *sn, uint64_t disk_size,
		      uint64_t *next, struct qerr *e)
{
	uint8_t hd[SNAP_HEADER_LEN];
	uint32_t extra, id_len, name_len;
	uint64_t len;
	int ret;

	if (off > file_size || file_size - off < SNAP_HEADER_LEN)
		return qerr_set(e, -EINVAL,
				"snapshot table entry %zu (offset %#llx) lies "
				"past the end of the file (%llu bytes)",
				i, (ull)off, (ull)file_size);
	ret = qfile_pread(f, hd, sizeof(hd), off, e);
	if (ret < 0)
		return ret;
	id_len = be16_get(hd + 12);
	name_len = be16_get(hd + 14);
	extra = be32_get(hd + 36);
	if (extra > SNAP_MAX_EXTRA)
		return qerr_set(e, -EFBIG,
				"snapshot table entry %zu: invalid "
				"extra_data_size %u (must be at most %d)",
				i, extra, SNAP_MAX_EXTRA);
	if (m->h.version >= 3 && extra < SNAP_V3_MIN_EXTRA)
		return qerr_set(e, -EINVAL,
				"snapshot table entry %zu: invalid "
				"extra_data_size %u (a version 3 image needs at "
				"least %d)",
				i, extra, SNAP_V3_MIN_EXTRA);
	len = (uint64_t)extra + id_len + name_len;
	if (file_size - off - SNAP_HEADER_LEN < len)
		return qerr_set(e, -EINVAL,
				"snapshot table entry %zu (offset %#llx, %llu "
				"bytes) lies past the end of the file (%llu "
				"bytes)",
				i, (ull)off, (ull)(SNAP_HEADER_LEN + len),
				(ull)file_size);
	ret = qfile_pread(f, tail, (size_t)len, off + SNAP_HEADER_LEN, e);
	if (ret < 0)
		return ret;
	if (memchr(tail + extra, '\0', id_len + name_len))
		return qerr_set(e, -EINVAL,
				"snapshot table entry %zu: the id or name "
				"contains a NUL byte", i);

	sn->l1_offset = be64_get(hd);
	sn->l1_size = be32_get(hd + 8);
	sn->date_sec = be32_get(hd + 16);
	sn->date_nsec = be32_get(hd + 20);
	sn->vm_clock_nsec = be64_get(hd + 24);
	sn->vm_state_size = be32_get(hd + 32);
	sn->id = dup_field(tail + extra, id_len);
	sn->name = dup_field(tail + extra + id_len, name_len);
	if (!sn->id || !sn->name ||
	    parse_extra(sn, tail, extra, disk_size) < 0)
		return qerr_set(e, -ENOMEM, "out of memory");
	*next = off + SNAP_HEADER_LEN + len;
	return 0;
}

void qcow2_snap_free(struct qcow2_snap *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++) {
		free(t[i].id);
		free(t[i].name);
		free(t[i].extra_unknown);
	}
	free(t);
}

int qcow2_snap_table_read(struct qfile *f, const struct qcow2_meta *m,
			  uint64_t file_size, uint64_t disk_size,
			  struct qcow2_snap **out, size_t *count,
			  struct qerr *e)
{
	uint32_t n = m->h.nb_snapshots;
	uint64_t start = m->h.snapshots_offset, off = start;
	struct qcow2_snap *arr;
	uint8_t *tail;
	size_t i;
	int ret = 0;

	*out = NULL;
	*count = 0;
	if (n == 0)
		return 0;
	if (n > QCOW2_MAX_SNAPSHOTS)
		return qerr_set(e, -EINVAL,
				"invalid nb_snapshots %u (must be at most %d)",
				n, QCOW2_MAX_SNAPSHOTS);
	arr = calloc(n, sizeof(*arr));
	tail = malloc(SNAP_MAX_TAIL);
	if (!arr || !tail) {
		free(arr);
		free(tail);
		return qerr_set(e, -ENOMEM, "out of memory");
	}
	for (i = 0; i < n && ret == 0; i++) {
		off = (off + 7) & ~7ULL;
		ret = read_entry(f, m, file_size, i, off, tail, &arr[i],
				 disk_size, &off, e);
		if (ret == 0 && off - start > QCOW2_MAX_SNAPSHOT_TABLE)
			ret = qerr_set(e, -EFBIG,
				       "the snapshot table is larger than "
				       "%u bytes", QCOW2_MAX_SNAPSHOT_TABLE);
	}
	free(tail);
	if (ret < 0) {
		qcow2_snap_free(arr, n);
		return ret;
	}
	*out = arr;
	*count = n;
	return 0;
}

int qcow2_snapshots_read(struct qfile *f, const struct qcow2_meta *m,
			 uint64_t file_size, struct img_snapshot **out,
			 size_t *count, struct qerr *e)
{
	struct qcow2_snap *t;
	struct img_snapshot *arr;
	size_t n;
	int ret = qcow2_snap_table_read(f, m, file_size, m->h.size, &t, &n, e);

	*out = NULL;
	*count = 0;
	if (ret < 0 || n == 0)
		return ret;
	arr = calloc(n, sizeof(*arr));
	if (!arr) {
		qcow2_snap_free(t, n);
		return qerr_set(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		arr[i].id = t[i].id;
		arr[i].name = t[i].name;
		t[i].id = t[i].name = NULL;
		arr[i].vm_state_size = t[i].vm_state_size;
		arr[i].date_sec = t[i].date_sec;
		arr[i].date_nsec = t[i].date_nsec;
		arr[i].vm_clock_nsec = t[i].vm_clock_nsec;
		arr[i].icount = t[i].icount;
		arr[i].has_icount = t[i].icount != UINT64_MAX;
	}
	qcow2_snap_free(t, n);
	*out = arr;
	*count = n;
	return 0;
}

static uint64_t entry_size(const struct qcow2_snap *sn)
{
	return SNAP_HEADER_LEN + QCOW2_SNAP_EXTRA_KNOWN +
	       (uint64_t)sn->extra_unknown_len + strlen(sn->id) +
	       strlen(sn->name);
}

uint64_t qcow2_snap_table_size(const struct qcow2_snap *t, size_t n)
{
	uint64_t len = 0;

	for (size_t i = 0; i < n; i++)
		len = ((len + 7) & ~7ULL) + entry_size(&t[i]);
	return len;
}

void qcow2_snap_table_write(const struct qcow2_snap *t, size_t n,
			    uint8_t *buf)
{
	uint64_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		const struct qcow2_snap *sn = &t[i];
		size_t id_len = strlen(sn->id), name_len = strlen(sn->name);
		uint8_t *p;

		while (pos & 7)
			buf[pos++] = 0;
		p = buf + pos;
		be64_put(p, sn->l1_offset);
		be32_put(p + 8, sn->l1_size);
		be16_put(p + 12, (uint16_t)id_len);
		be16_put(p + 14, (uint16_t)name_len);
		be32_put(p + 16, sn->date_sec);
		be32_put(p + 20, sn->date_nsec);
		be64_put(p + 24, sn->vm_clock_nsec);
		/* qemu cuts the old 32-bit field; the 64-bit one is exact */
		be32_put(p + 32, (uint32_t)sn->vm_state_size);
		be32_put(p + 36,
			 QCOW2_SNAP_EXTRA_KNOWN + sn->extra_unknown_len);
		p += SNAP_HEADER_LEN;
		be64_put(p, sn->vm_state_size);
		be64_put(p + 8, sn->disk_size);
		be64_put(p + 16, sn->icount);
		p += QCOW2_SNAP_EXTRA_KNOWN;
		if (sn->extra_unknown_len)
			memcpy(p, sn->extra_unknown, sn->extra_unknown_len);
		p += sn->extra_unknown_len;
		memcpy(p, sn->id, id_len);
		memcpy(p + id_len, sn->name, name_len);
		pos += entry_size(sn);
	}
}

long qcow2_snap_find(const struct qcow2_snap *t, size_t n, const char *id,
		     const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (id && strcmp(t[i].id, id) != 0)
			continue;
		if (name && strcmp(t[i].name, name) != 0)
			continue;
		return (long)i;
	}
	return -1;
}

void qcow2_snap_new_id(const struct qcow2_snap *t, size_t n, char *buf,
		       size_t len)
{
	unsigned long max = 0;

	/* strtoul as qemu uses it: "abc" is 0, "-1" wraps, a huge one caps */
	for (size_t i = 0; i < n; i++) {
		unsigned long v = strtoul(t[i].id, NULL, 10);

		if (v > max)
			max = v;
	}
	snprintf(buf, len, "%lu", max + 1);
}
