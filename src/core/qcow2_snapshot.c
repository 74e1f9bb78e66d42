/*
 * qcow2_snapshot.c: read the internal snapshot table for info and
 * snapshot -l.
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
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2.h"

#define SNAP_HEADER_LEN 40
#define SNAP_MAX_EXTRA 1024
#define SNAP_V3_MIN_EXTRA 16
#define SNAP_EXTRA_VMSTATE_END 8	/* extra bytes holding the 64-bit size */
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

/* Parse the entry at off (i-th); *next is where the next one starts. */
static int read_entry(struct qfile *f, const struct qcow2_meta *m,
		      uint64_t file_size, size_t i, uint64_t off,
		      uint8_t *tail, struct img_snapshot *sn, uint64_t *next,
		      struct qerr *e)
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

	sn->date_sec = be32_get(hd + 16);
	sn->date_nsec = be32_get(hd + 20);
	sn->vm_clock_nsec = be64_get(hd + 24);
	sn->vm_state_size = be32_get(hd + 32);
	if (extra >= SNAP_EXTRA_VMSTATE_END)
		sn->vm_state_size = be64_get(tail);
	if (extra >= SNAP_EXTRA_ICOUNT_END) {
		sn->icount = be64_get(tail + 16);
		sn->has_icount = sn->icount != UINT64_MAX;
	}
	sn->id = dup_field(tail + extra, id_len);
	sn->name = dup_field(tail + extra + id_len, name_len);
	if (!sn->id || !sn->name)
		return qerr_set(e, -ENOMEM, "out of memory");
	*next = off + SNAP_HEADER_LEN + len;
	return 0;
}

int qcow2_snapshots_read(struct qfile *f, const struct qcow2_meta *m,
			 uint64_t file_size, struct img_snapshot **out,
			 size_t *count, struct qerr *e)
{
	uint32_t n = m->h.nb_snapshots;
	uint64_t start = m->h.snapshots_offset, off = start;
	struct img_snapshot *arr;
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
		ret = read_entry(f, m, file_size, i, off, tail, &arr[i], &off,
				 e);
		if (ret == 0 && off - start > QCOW2_MAX_SNAPSHOT_TABLE)
			ret = qerr_set(e, -EFBIG,
				       "the snapshot table is larger than "
				       "%u bytes", QCOW2_MAX_SNAPSHOT_TABLE);
	}
	free(tail);
	if (ret < 0) {
		for (size_t j = 0; j < n; j++) {
			free(arr[j].id);
			free(arr[j].name);
		}
		free(arr);
		return ret;
	}
	*out = arr;
	*count = n;
	return 0;
}
