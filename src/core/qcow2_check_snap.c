/*
 * qcow2_check_snap.c: the snapshot table and the bitmaps, as the check
 * sees them.
 *
 * Spec: qcow2.txt "Snapshots" (40-byte entry header, extra data, id, name,
 * each entry padded to 8 bytes; version 3 entries need at least 16 bytes
 * of extra data) and "Bitmaps" (the directory, the bitmap tables, the
 * clusters they name).  The snapshot pass runs first and only parses: the
 * L1 trees are walked by the reference pass.  Entries whose extra data is
 * too short are reported (qemu's "incomplete") and remembered for the
 * repair; extra data above qemu's 1 KiB limit stops the check as qemu's
 * does.  Bytes past the end of the file read as zeros, as in qemu.
 *
 * Bitmaps count only when the bitmaps extension is valid (its autoclear
 * bit set): otherwise qemu ignores them and so do we.  A bitmap table
 * entry with reserved bits or an unaligned offset is a corruption (qemu
 * counts it without a word; we name it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_check.h"
#include "core/qcow2_engine.h"

#define SNAP_HDR 40
#define SNAP_MAX_EXTRA 1024
#define SNAP_V3_EXTRA 16
#define BME_RESERVED 0xff000000000001feULL
#define BME_OFFSET_MASK 0x00fffffffffffe00ULL
#define BME_ALL_ONES 1ULL
#define BM_DIR_ENTRY 24
#define BM_MAX_TABLE (1U << 27)
#define BM_CHUNK 65536

static char *dup_str(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

void qchk_snapshots_free(struct qchk *q)
{
	for (uint32_t i = 0; i < q->nb_snaps; i++) {
		free(q->snaps[i].id);
		free(q->snaps[i].name);
	}
	free(q->snaps);
	q->snaps = NULL;
	q->nb_snaps = 0;
	q->snaps_size = 0;
}

/* The table cannot be read: qemu's words, and the check stops. */
static int snap_read_failed(struct qchk *q, int code, const char *why)
{
	struct check_args a = { .s = { why } };

	check_problem(q->c, CHK_SNAP_READ, &a, 0);
	return qerr_set(&q->c->r->err, code, "%s", why);
}

/* Read one entry at *off; the strings are the snapshot's. */
static int read_snap(struct qchk *q, uint32_t i, uint64_t *off,
		     struct qchk_snap *sn)
{
	struct qerr *e = &q->c->r->err;
	uint8_t hd[SNAP_HDR], *tail;
	uint32_t extra;
	uint16_t id_len, name_len;
	int ret;

	ret = qfile_pread_zero(q->file, hd, sizeof(hd), *off, e);
	if (ret < 0)
		return snap_read_failed(q, ret, "Failed to read snapshot table");
	sn->entry_offset = *off;
	sn->l1_offset = be64_get(hd);
	sn->l1_size = be32_get(hd + 8);
	id_len = be16_get(hd + 12);
	name_len = be16_get(hd + 14);
	extra = be32_get(hd + 36);
	sn->extra_size = extra;
	if (extra > SNAP_MAX_EXTRA) {
		struct check_args a = { .n = { i } };

		check_problem(q->c, CHK_SNAP_EXTRA_LARGE, &a, 0);
		check_problem(q->c, CHK_SNAP_EXTRA_HINT, NULL, 0);
		return qerr_set(e, -EFBIG, "Too much extra metadata in "
				"snapshot table entry %u", i);
	}
	sn->incomplete = q->v3 && extra < SNAP_V3_EXTRA;
	tail = malloc((size_t)extra + id_len + name_len + 1);
	if (!tail)
		return qerr_set(e, -ENOMEM, "out of memory");
	ret = qfile_pread_zero(q->file, tail, (size_t)extra + id_len + name_len,
			       *off + SNAP_HDR, e);
	if (ret == 0) {
		sn->id = dup_str(tail + extra, id_len);
		sn->name = dup_str(tail + extra + id_len, name_len);
		if (!sn->id || !sn->name)
			ret = qerr_set(e, -ENOMEM, "out of memory");
	}
	free(tail);
	if (ret == -EIO)
		return snap_read_failed(q, ret, "Failed to read snapshot table");
	*off += SNAP_HDR + (uint64_t)extra + id_len + name_len;
	*off = (*off + 7) & ~7ULL;
	return ret;
}

int qchk_snapshots_read(struct qchk *q)
{
	const struct qcow2_header *h = &q->st->meta.h;
	uint64_t off = h->snapshots_offset;
	int ret = 0;

	if (h->nb_snapshots == 0)
		return 0;
	q->snaps = calloc(h->nb_snapshots, sizeof(*q->snaps));
	if (!q->snaps)
		return qerr_set(&q->c->r->err, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < h->nb_snapshots && ret == 0; i++) {
		q->nb_snaps = i + 1;
		ret = read_snap(q, i, &off, &q->snaps[i]);
		if (ret == 0 && off - h->snapshots_offset > QCOW2_MAX_SNAPSHOT_TABLE)
			ret = snap_read_failed(q, -EFBIG,
					       "Snapshot table is too big");
	}
	if (ret < 0)
		return ret;
	q->snaps_size = off - h->snapshots_offset;
	for (uint32_t i = 0; i < q->nb_snaps; i++) {
		struct check_args a = { .n = { i } };

		if (q->snaps[i].incomplete)
			check_problem(q->c, CHK_SNAP_INCOMPLETE, &a, 0);
	}
	return 0;
}

/* One bitmap: its table and the clusters the table names. */
static int bitmap_table(struct qchk *q, const char *name, uint64_t off,
			uint32_t size)
{
	uint64_t n = size < BM_CHUNK ? size : BM_CHUNK;
	uint8_t *buf;
	int ret;

	ret = qchk_ref(q, off, (uint64_t)size * 8, ROLE_BITMAP_TABLE,
		       CHECK_NOFIX);
	if (ret < 0 || size == 0)
		return ret < 0 ? ret : 0;
	buf = malloc(n * 8);
	if (!buf)
		return -ENOMEM;
	ret = 0;
	for (uint64_t base = 0; base < size && ret >= 0; base += BM_CHUNK) {
		uint64_t cnt = size - base < BM_CHUNK ? size - base : BM_CHUNK;

		ret = qfile_pread_zero(q->file, buf, cnt * 8, off + base * 8,
				       &q->c->r->err);
		for (uint64_t i = 0; i < cnt && ret >= 0; i++) {
			uint64_t e = be64_get(buf + i * 8);
			uint64_t data = e & BME_OFFSET_MASK;
			struct check_args a = { .n = { base + i, e },
						.s = { name } };

			if ((e & BME_RESERVED) ||
			    (data && ((e & BME_ALL_ONES) || (data & (q->cs - 1))))) {
				check_problem(q->c, CHK_BITMAP_ENTRY, &a, 0);
				continue;
			}
			if (data)
				ret = qchk_ref(q, data, q->cs, ROLE_BITMAP_DATA,
					       CHECK_NOFIX);
		}
	}
	free(buf);
	return ret < 0 ? ret : 0;
}

static int bitmap_dir_bad(struct qchk *q, const char *why)
{
	struct check_args a = { .s = { why } };

	check_problem(q->c, CHK_BITMAP_DIR, &a, 0);
	return qerr_set(&q->c->r->err, -EINVAL, "invalid bitmap directory: %s",
			why);
}

int qchk_bitmaps(struct qchk *q)
{
	const struct qcow2_meta *m = &q->st->meta;
	uint64_t size = m->bitmap_dir_size, pos = 0;
	uint8_t *dir;
	int ret;

	if (!m->has_bitmaps_ext || m->nb_bitmaps == 0 ||
	    !(m->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	ret = qchk_ref(q, m->bitmap_dir_offset, size, ROLE_BITMAP_DIR,
		       CHECK_NOFIX);
	if (ret < 0)
		return ret;
	if (size > QCOW2_MAX_BITMAP_DIR)
		return bitmap_dir_bad(q, "the directory is too large");
	dir = malloc(size ? size : 1);
	if (!dir)
		return -ENOMEM;
	ret = qfile_pread_zero(q->file, dir, size, m->bitmap_dir_offset,
			       &q->c->r->err);
	for (uint32_t i = 0; i < m->nb_bitmaps && ret == 0; i++) {
		uint64_t len;
		uint16_t name_len;
		uint32_t extra, tsize;
		char *name;

		if (pos + BM_DIR_ENTRY > size) {
			ret = bitmap_dir_bad(q, "an entry runs past its end");
			break;
		}
		tsize = be32_get(dir + pos + 8);
		name_len = be16_get(dir + pos + 18);
		extra = be32_get(dir + pos + 20);
		len = BM_DIR_ENTRY + (uint64_t)extra + name_len;
		if (pos + len > size || tsize > BM_MAX_TABLE) {
			ret = bitmap_dir_bad(q, "an entry is invalid");
			break;
		}
		name = dup_str(dir + pos + BM_DIR_ENTRY + extra, name_len);
		if (!name) {
			ret = -ENOMEM;
			break;
		}
		ret = bitmap_table(q, name, be64_get(dir + pos), tsize);
		free(name);
		pos = (pos + len + 7) & ~7ULL;
	}
	free(dir);
	return ret;
}

/*
 * The table with every incomplete entry given the 24 bytes of extra data
 * qemu writes (VM state size, disk size, icount unknown), the others as
 * they are.  *len is its length.
 */
static int snap_table_build(struct qchk *q, uint8_t **out, uint64_t *len)
{
	const struct qcow2_header *h = &q->st->meta.h;
	uint64_t size = q->snaps_size + (uint64_t)q->nb_snaps * 24, pos = 0;
	uint8_t *t = calloc(1, size), *old = malloc(q->snaps_size ? q->snaps_size : 1);
	int ret = 0;

	if (!t || !old) {
		free(t);
		free(old);
		return -ENOMEM;
	}
	ret = qfile_pread_zero(q->file, old, q->snaps_size, h->snapshots_offset,
			       &q->c->r->err);
	for (uint32_t i = 0; i < q->nb_snaps && ret == 0; i++) {
		const struct qchk_snap *sn = &q->snaps[i];
		const uint8_t *e = old + (sn->entry_offset - h->snapshots_offset);
		uint32_t extra = sn->extra_size, id = be16_get(e + 12),
			 name = be16_get(e + 14);

		memcpy(t + pos, e, SNAP_HDR);
		if (sn->incomplete) {
			memcpy(t + pos + SNAP_HDR, e + SNAP_HDR, extra);
			if (extra < 8)
				be64_put(t + pos + SNAP_HDR, be32_get(e + 32));
			if (extra < 16)
				be64_put(t + pos + SNAP_HDR + 8, h->size);
			be64_put(t + pos + SNAP_HDR + 16, UINT64_MAX);
			be32_put(t + pos + 36, 24);
			memcpy(t + pos + SNAP_HDR + 24, e + SNAP_HDR + extra,
			       (size_t)id + name);
			pos += SNAP_HDR + 24 + (uint64_t)id + name;
		} else {
			uint64_t n = SNAP_HDR + (uint64_t)extra + id + name;

			memcpy(t + pos, e, n);
			pos += n;
		}
		pos = (pos + 7) & ~7ULL;
	}
	free(old);
	if (ret < 0) {
		free(t);
		return ret;
	}
	*out = t;
	*len = pos;
	return 0;
}

/*
 * Write the repaired table to new clusters (the engine allocates them and
 * raises their refcounts, synced), switch the header to it, then free the
 * old table: a crash leaves either table whole and at most a leak.
 */
static int snap_table_rewrite(struct qchk *q)
{
	struct qcow2_header *h = &q->st->meta.h;
	struct qcow2_engine *eng;
	uint64_t len, off, old_off = h->snapshots_offset, old_len = q->snaps_size;
	uint8_t *t = NULL, hdr[12];
	int ret;

	ret = snap_table_build(q, &t, &len);
	if (ret == 0)
		ret = qcow2_engine_get(q->img, &eng);
	if (ret == 0)
		ret = qcow2_alloc_clusters(eng, (len + q->cs - 1) >> q->cluster_bits,
					   &off);
	if (ret == 0)
		ret = qcow2_pwrite(eng, q->file, t, len, off);
	if (ret == 0)
		ret = qcow2_engine_flush(eng);
	be32_put(hdr, q->nb_snaps);
	be64_put(hdr + 4, off);
	if (ret == 0)
		ret = qchk_write(q, hdr, sizeof(hdr), 60);
	if (ret == 0)
		ret = qchk_sync(q);
	if (ret == 0) {
		h->snapshots_offset = off;
		ret = qcow2_refcount_update(eng, old_off, old_len, -1);
	}
	if (ret == 0)
		ret = qcow2_engine_flush(eng);
	free(t);
	if (q->st->engine)
		qcow2_engine_close(q->img);
	return ret;
}

int qchk_snapshots_fix(struct qchk *q)
{
	struct check_result *r = q->c->r;
	uint64_t n = 0;
	int ret;

	for (uint32_t i = 0; i < q->nb_snaps; i++)
		n += q->snaps[i].incomplete;
	/* Allocating needs refcounts that can be trusted. */
	if (!n || r->corruptions > n || r->check_errors)
		return 0;
	ret = snap_table_rewrite(q);
	if (ret < 0) {
		struct check_args a = { .s = { "failed to update snapshot table" } };

		check_problem(q->c, CHK_REPAIR_FAILED, &a, 0);
		return ret;
	}
	while (n--)
		check_repaired(q->c, CHK_SNAP_INCOMPLETE);
	return 0;
}
