/*
 * qcow2_snapshot_tree.c: the pieces the snapshot operations are made of:
 * opening an operation (engine ready for writing, snapshot table read),
 * walking L1/L2 trees to mark or change the refcounts of what they reach,
 * copying L2 tables for the active tree, building and writing the new
 * active L1 and snapshot table, and the commit that switches the header.
 *
 * Spec: qcow2.txt "Snapshots", "Cluster mapping", "Host cluster
 * management".  Invariants: a walk validates every L1 and L2 entry the
 * way the engine does before using it (a bad one marks the image
 * corrupt); the two passes of an operation enumerate the same ranges
 * (the first marks, the second changes); existing tables are only read,
 * new ones are written to clusters nothing points at until the switch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_snapshot.h"
#include "core/qcow2_snapshot_priv.h"

typedef unsigned long long ull;

/* A plain errno, which qemu-img prints as "-95 (Operation not supported)". */
int snap_plain_error(struct img *img, int code)
{
	if (img->err.code == 0) {
		img->err.code = code;
		img->err.msg[0] = '\0';
	}
	return code;
}

/* The length of a table as read (entries keep their extra data size). */
static uint64_t table_len_on_disk(const struct qcow2_snap *t, size_t n)
{
	uint64_t len = 0;

	for (size_t i = 0; i < n; i++)
		len = ((len + 7) & ~7ULL) + 40 + t[i].extra_len +
		      strlen(t[i].id) + strlen(t[i].name);
	return len;
}

int snap_op_begin(struct img *img, struct snap_op *op, bool write)
{
	struct qcow2_state *s = img->priv;
	const struct qcow2_header *h = &s->meta.h;
	int ret;

	memset(op, 0, sizeof(*op));
	op->img = img;
	if (write && h->version >= 3 &&
	    (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
		return snap_plain_error(img, -ENOTSUP);
	ret = qcow2_engine_get(img, &op->eng);
	if (ret == 0 && write) {
		/* No guest data changes here: valid bitmaps stay valid. */
		op->eng->keep_bitmaps = true;
		ret = qcow2_prepare_write(op->eng);
		op->eng->keep_bitmaps = false;
	}
	if (ret == 0)
		ret = qcow2_engine_flush(op->eng);
	if (ret < 0)
		return ret;
	op->l2 = malloc(op->eng->cluster_size);
	op->l2new = malloc(op->eng->cluster_size);
	if (!op->l2 || !op->l2new)
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	ret = qcow2_snap_table_read(img->file, &s->meta, op->eng->phys_size,
				    img->size, &op->tab, &op->n, &img->err);
	if (ret == 0)
		op->old_tab_len = table_len_on_disk(op->tab, op->n);
	return ret;
}

int snap_op_end(struct snap_op *op, int ret)
{
	if (op->txn_live) {
		if (ret < 0)
			txn_abort(&op->txn);
		txn_free(&op->txn);
	}
	free(op->l2);
	free(op->l2new);
	free(op->copy);
	free(op->active_l2);
	free(op->nl1);
	qcow2_snap_free(op->tab, op->n);
	return ret;
}

/* L1 entry i of an L1 table in memory, validated as the engine does. */
int snap_l1_entry_of(struct qcow2_engine *eng, const uint64_t *l1,
		       uint32_t n, uint64_t i, uint64_t *l2_off)
{
	uint64_t *saved = eng->l1;
	uint32_t saved_n = eng->l1_size;
	int ret;

	eng->l1 = (uint64_t *)l1;
	eng->l1_size = n;
	ret = qcow2_l1_entry(eng, i, l2_off);
	eng->l1 = saved;
	eng->l1_size = saved_n;
	return ret;
}

/* A snapshot's L1 table, validated, in host order (*out is malloc'd). */
int snap_load_l1(struct qcow2_engine *eng, const struct qcow2_snap *sn,
		   uint64_t **out)
{
	uint64_t bytes = (uint64_t)sn->l1_size * 8;
	uint8_t *raw;
	int ret = 0;

	if (bytes > QCOW2_MAX_L1_BYTES)
		return qcow2_corrupt(eng, "snapshot %s: L1 table of %u entries "
				     "is too large", sn->id, sn->l1_size);
	if (bytes && (sn->l1_offset & (eng->cluster_size - 1)))
		return qcow2_corrupt(eng, "snapshot %s: L1 table offset 0x%llx "
				     "is not cluster aligned", sn->id,
				     (ull)sn->l1_offset);
	if (bytes && (sn->l1_offset >= eng->phys_size ||
		      eng->phys_size - sn->l1_offset < bytes))
		return qcow2_corrupt(eng, "snapshot %s: L1 table at 0x%llx is "
				     "past the end of the file", sn->id,
				     (ull)sn->l1_offset);
	*out = calloc(sn->l1_size ? sn->l1_size : 1, 8);
	if (!*out)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	raw = (uint8_t *)*out;
	if (bytes)
		ret = qfile_pread(eng->file, raw, bytes, sn->l1_offset,
				  eng->err);
	for (uint32_t i = 0; i < sn->l1_size && ret == 0; i++)
		(*out)[i] = be64_get(raw + (uint64_t)i * 8);
	return ret;
}

int snap_read_l2(struct snap_op *op, uint64_t off)
{
	return qfile_pread_zero(op->eng->file, op->l2, op->eng->cluster_size,
				off, op->eng->err);
}

/* Mark (first pass) or change (second pass) the refcounts of a range. */
int snap_ref(struct snap_op *op, uint64_t off, uint64_t len, int delta)
{
	if (op->pass == PASS_MARK)
		return txn_mark(&op->txn, off, len);
	return txn_add(&op->txn, off, len, delta);
}

/* The data clusters the entries of op->l2 (L1 index l1i) reference. */
static int l2_refs(struct snap_op *op, uint64_t l1i, int delta)
{
	struct qcow2_engine *eng = op->eng;
	uint64_t n = 1ULL << eng->l2_bits;
	uint64_t base = l1i << (eng->cluster_bits + eng->l2_bits);
	int ret = 0;

	for (uint64_t j = 0; j < n && ret == 0; j++) {
		uint64_t e = qcow2_l2_get(eng, op->l2, j), off, len;
		uint64_t bm = qcow2_l2_bitmap(eng, op->l2, j);

		if (e == 0 && bm == 0)
			continue;
		ret = qcow2_l2_check(eng, base + (j << eng->cluster_bits), e,
				     bm);
		if (ret < 0)
			break;
		if (e & QCOW2_OFLAG_COMPRESSED) {
			qcow2_cdesc_decode(eng->cluster_bits, e, &off, &len);
			ret = snap_ref(op, off, len, delta);
		} else if ((off = e & QCOW2_L2E_OFFSET_MASK) != 0) {
			ret = snap_ref(op, off, eng->cluster_size, delta);
		}
	}
	return ret;
}

/* A tree loses one path: its L2 tables and every cluster they reach. */
int snap_drop_tree(struct snap_op *op, const uint64_t *l1, uint32_t n)
{
	int ret = 0;

	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint64_t x;

		ret = snap_l1_entry_of(op->eng, l1, n, i, &x);
		if (ret < 0 || !x)
			continue;
		ret = snap_ref(op, x, op->eng->cluster_size, -1);
		if (ret == 0)
			ret = snap_read_l2(op, x);
		if (ret == 0)
			ret = l2_refs(op, i, -1);
	}
	return ret;
}

static bool has_copied(const struct qcow2_engine *eng, const uint64_t *t)
{
	for (uint64_t j = 0; j < (1ULL << eng->l2_bits); j++)
		if (qcow2_l2_get(eng, t, j) & QCOW2_OFLAG_COPIED)
			return true;
	return false;
}

/* op->l2 with every COPIED flag cleared, written to the copy at off. */
static int write_unshared_copy(struct snap_op *op, uint64_t off)
{
	struct qcow2_engine *eng = op->eng;

	memcpy(op->l2new, op->l2, eng->cluster_size);
	for (uint64_t j = 0; j < (1ULL << eng->l2_bits); j++) {
		uint64_t e = qcow2_l2_get(eng, op->l2new, j);

		if (e & QCOW2_OFLAG_COPIED)
			qcow2_l2_set(eng, op->l2new, j, e & ~QCOW2_OFLAG_COPIED,
				     qcow2_l2_bitmap(eng, op->l2new, j));
	}
	return qcow2_pwrite(eng, eng->file, op->l2new, eng->cluster_size, off);
}

/* First pass over a table with COPIED entries: copy it, or clean it. */
static int plan_unshared(struct snap_op *op, uint64_t i, uint64_t x)
{
	/* A snapshot's flags mean nothing: only the active tree is checked. */
	if (op->active_l2 &&
	    snap_bsearch(op->active_l2, op->nactive_l2, x) < 0) {
		op->copy[i] = COPY_CLEAN;
		return snap_ref(op, x, op->eng->cluster_size, +1);
	}
	op->copy[i] = COPY_PENDING;
	op->ncopies++;
	return 0;
}

int snap_share_tree(struct snap_op *op, const uint64_t *l1, uint32_t n)
{
	struct qcow2_engine *eng = op->eng;
	int ret = 0;

	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint64_t x;

		ret = snap_l1_entry_of(eng, l1, n, i, &x);
		if (ret < 0 || !x)
			continue;
		ret = snap_read_l2(op, x);
		if (ret < 0)
			break;
		if (op->pass == PASS_MARK && has_copied(eng, op->l2)) {
			ret = plan_unshared(op, i, x);
		} else if (op->pass == PASS_APPLY &&
			   op->copy[i] == COPY_CLEAN) {
			ret = write_unshared_copy(op, x);
			if (ret == 0)
				ret = snap_ref(op, x, eng->cluster_size, +1);
		} else if (op->pass == PASS_APPLY && op->copy[i]) {
			ret = write_unshared_copy(op, op->copy[i]);
		} else {
			ret = snap_ref(op, x, eng->cluster_size, +1);
		}
		if (ret == 0)
			ret = l2_refs(op, i, +1);
	}
	return ret;
}

/*
 * Clusters for the copies the first pass asked for, one at a time: the
 * allocator then fills the holes earlier operations left.
 */
int snap_alloc_copies(struct snap_op *op, uint32_t n)
{
	int ret = 0;

	for (uint32_t i = 0; i < n && ret == 0; i++)
		if (op->copy[i] == COPY_PENDING)
			ret = txn_alloc(&op->txn, 1, &op->copy[i]);
	return ret;
}

static int alloc_bytes(struct snap_op *op, uint64_t bytes, uint64_t *off)
{
	uint64_t cs = op->eng->cluster_size;

	if (bytes == 0) {
		*off = 0;
		return 0;
	}
	return txn_alloc(&op->txn, (bytes + cs - 1) / cs, off);
}

/* The new active L1 from a shared tree: copies, or shared tables. */
int snap_build_l1_from_share(struct snap_op *op, const uint64_t *l1,
			       uint32_t n)
{
	struct qcow2_engine *eng = op->eng;
	int ret = txn_flush(&op->txn);

	for (uint32_t i = 0; i < n && i < op->nl1_size && ret == 0; i++) {
		uint64_t x = l1[i] & QCOW2_L1E_OFFSET_MASK, rc;

		if (op->copy[i] > COPY_CLEAN) {
			op->nl1[i] = op->copy[i] | QCOW2_OFLAG_COPIED;
		} else if (x) {
			ret = txn_rc(&op->txn, x >> eng->cluster_bits, &rc);
			op->nl1[i] = x | (rc == 1 ? QCOW2_OFLAG_COPIED : 0);
		}
	}
	return ret;
}

int snap_write_l1(struct snap_op *op)
{
	uint64_t bytes = (uint64_t)op->nl1_size * 8;
	uint8_t *raw;
	int ret;

	if (!op->nl1 || bytes == 0)
		return 0;
	raw = malloc(bytes);
	if (!raw)
		return qerr_set(op->eng->err, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < op->nl1_size; i++)
		be64_put(raw + (uint64_t)i * 8, op->nl1[i]);
	ret = qcow2_pwrite(op->eng, op->eng->file, raw, bytes, op->nl1_off);
	free(raw);
	return ret;
}

/* The new snapshot table (tab, n entries): allocated at PASS_MARK time. */
int snap_table_alloc(struct snap_op *op, const struct qcow2_snap *tab,
		       size_t n)
{
	op->tab_len = qcow2_snap_table_size(tab, n);
	if (op->tab_len > QCOW2_MAX_SNAPSHOT_TABLE)
		return snap_plain_error(op->img, -EFBIG);
	return alloc_bytes(op, op->tab_len, &op->tab_off);
}

int snap_table_write(struct snap_op *op, const struct qcow2_snap *tab,
		       size_t n)
{
	uint8_t *buf;
	int ret;

	if (op->tab_len == 0)
		return 0;
	buf = malloc(op->tab_len);
	if (!buf)
		return qerr_set(op->eng->err, -ENOMEM, "out of memory");
	qcow2_snap_table_write(tab, n, buf);
	ret = qcow2_pwrite(op->eng, op->eng->file, buf, op->tab_len,
			   op->tab_off);
	free(buf);
	return ret;
}

int snap_alloc_nl1(struct snap_op *op, uint32_t size)
{
	op->nl1_size = size;
	op->nl1 = calloc(size ? size : 1, 8);
	if (!op->nl1)
		return qerr_set(op->eng->err, -ENOMEM, "out of memory");
	if (size == 0) {
		op->nl1_off = op->eng->l1_offset;
		return 0;
	}
	return alloc_bytes(op, (uint64_t)size * 8, &op->nl1_off);
}

int snap_alloc_copy_map(struct snap_op *op, uint32_t n)
{
	op->copy = calloc(n ? n : 1, sizeof(*op->copy));
	if (!op->copy)
		return qerr_set(op->eng->err, -ENOMEM, "out of memory");
	op->txn_live = true;
	return txn_init(&op->txn, op->eng);
}

/* After the switch: the engine follows the new active L1. */
static void adopt_l1(struct snap_op *op)
{
	struct qcow2_engine *eng = op->eng;

	if (!op->nl1)
		return;
	free(eng->l1);
	eng->l1 = op->nl1;
	eng->l1_size = op->nl1_size;
	eng->l1_offset = op->nl1_off;
	op->nl1 = NULL;
}

int snap_commit(struct snap_op *op, uint64_t size, uint32_t nb)
{
	struct qcow2_engine *eng = op->eng;
	struct txn_header h = {
		.size = size,
		.l1_size = op->nl1 ? op->nl1_size : eng->l1_size,
		.l1_off = op->nl1 ? op->nl1_off : eng->l1_offset,
		.nb_snapshots = nb,
		.snapshots_off = op->tab_off,
	};
	int ret = txn_commit(&op->txn, &h);

	/* Past the switch the new state is the image's, whatever fails next. */
	if (op->txn.switched) {
		adopt_l1(op);
		op->img->size = size & ~511ULL;
	}
	return ret;
}

