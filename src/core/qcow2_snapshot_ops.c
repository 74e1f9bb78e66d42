/*
 * qcow2_snapshot_ops.c: create, apply, delete and load internal snapshots.
 *
 * Spec: qcow2.txt "Snapshots", "Host cluster management" (refcounts of
 * shared clusters), "Cluster mapping" (COPIED: refcount exactly 1, kept
 * for everything the active L1 reaches).  References are counted per path,
 * as qemu-img check counts them: a data cluster reached from the active
 * L1 and from a snapshot's L1 has refcount 2 even through one shared L2
 * table.
 *
 * Every operation is one transaction (qcow2_snapshot_txn.c): a first pass
 * over the trees involved marks what will change and decides which L2
 * tables need a copy, the new clusters are allocated, a second pass makes
 * the refcount changes (in copies of the refcount blocks) and writes the
 * copies, and the header switches to the new L1, refcount table and
 * snapshot table in one write.  Tables the active L1 reaches are never
 * edited in place: where the COPIED flags of an active L2 table must
 * change, the active tree gets a copy of the table with the right flags.
 * (Only the active tree's flags count; a snapshot's are ignored, so a
 * table only snapshots reach may be edited.)  So:
 *   - create: the snapshot keeps the old active L1 and its L2 tables; the
 *     active state gets a new L1, sharing the L2 tables whose entries are
 *     all shared already and copies of the others (COPIED cleared);
 *   - apply: the active state gets a new L1 made from the snapshot's,
 *     sharing its L2 tables, whose COPIED flags (left by a create) are
 *     cleared in place first; the old active tree loses its references;
 *   - delete: the snapshot's tree loses its references; active L2 tables
 *     whose flags change get copies with the flags recomputed.
 * A kill at any point leaves the image before or after the operation,
 * with at worst leaked clusters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/qcow2_snapshot.h"
#include "core/qcow2_snapshot_priv.h"

typedef unsigned long long ull;

/* The refcount ranges of an L1 table (its clusters) and the old table. */
static int ref_l1(struct snap_op *op, uint64_t off, uint32_t size)
{
	return snap_ref(op, off, (uint64_t)size * 8, -1);
}

static int ref_old_table(struct snap_op *op)
{
	struct qcow2_state *s = op->img->priv;

	return snap_ref(op, s->meta.h.snapshots_offset, op->old_tab_len, -1);
}

/* The new L1 and table on the file, then the switch (virtual size size). */
static int finish(struct snap_op *op, uint64_t size)
{
	int ret = snap_write_l1(op);

	if (ret == 0)
		ret = snap_table_write(op, op->tab, op->n);
	return ret ? ret : snap_commit(op, size, (uint32_t)op->n);
}

/* ---- create ---- */

static int check_new_name(struct snap_op *op, const char *name)
{
	if (op->n >= QCOW2_MAX_SNAPSHOTS)
		return snap_plain_error(op->img, -EFBIG);
	if (strlen(name) > QCOW2_SNAP_MAX_NAME)
		return qerr_set(&op->img->err, -EINVAL, "the name is longer "
				"than %d bytes", QCOW2_SNAP_MAX_NAME);
	if (qcow2_snap_find(op->tab, op->n, NULL, name) >= 0)
		return qerr_set(&op->img->err, -EEXIST, "a snapshot with this "
				"name already exists");
	return 0;
}

/* The new entry, last in op->tab: the active state as it is now. */
static int append_entry(struct snap_op *op, const char *name)
{
	struct qcow2_engine *eng = op->eng;
	struct qcow2_snap *t = realloc(op->tab, (op->n + 1) * sizeof(*t));
	struct qcow2_snap *sn;
	struct timespec ts;
	char id[32];

	if (!t)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	op->tab = t;
	qcow2_snap_new_id(t, op->n, id, sizeof(id));
	if (qcow2_snap_find(t, op->n, id, NULL) >= 0)
		return snap_plain_error(op->img, -EEXIST);
	sn = &t[op->n];
	memset(sn, 0, sizeof(*sn));
	op->n++;
	sn->id = strdup(id);
	sn->name = strdup(name);
	if (!sn->id || !sn->name)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	/* qemu-img's clock: wall time in microseconds */
	clock_gettime(CLOCK_REALTIME, &ts);
	sn->date_sec = (uint32_t)ts.tv_sec;
	sn->date_nsec = (uint32_t)(ts.tv_nsec / 1000 * 1000);
	sn->l1_offset = eng->l1_offset;
	sn->l1_size = eng->l1_size;
	sn->disk_size = op->img->size;
	sn->icount = 0;
	sn->extra_len = QCOW2_SNAP_EXTRA_KNOWN;
	return 0;
}

/* Between the passes of create: the new clusters, then the copies. */
static int create_alloc(struct snap_op *op, uint32_t n)
{
	int ret = snap_alloc_copies(op, n);

	if (ret == 0)
		ret = snap_alloc_nl1(op, n);
	if (ret == 0)
		ret = snap_table_alloc(op, op->tab, op->n);
	return ret ? ret : txn_prepare(&op->txn);
}

static int create_run(struct snap_op *op)
{
	struct qcow2_engine *eng = op->eng;
	uint32_t n = eng->l1_size;
	int ret = snap_alloc_copy_map(op, n);

	for (int pass = PASS_MARK; pass <= PASS_APPLY && ret == 0; pass++) {
		op->pass = (enum pass)pass;
		ret = snap_share_tree(op, eng->l1, n);
		if (ret == 0)
			ret = ref_old_table(op);
		if (ret == 0 && pass == PASS_MARK)
			ret = create_alloc(op, n);
	}
	if (ret == 0)
		ret = snap_build_l1_from_share(op, eng->l1, n);
	return ret ? ret : finish(op, eng->s->meta.h.size);
}

int qcow2_snapshot_create(struct img *img, const char *name)
{
	struct snap_op op;
	int ret = snap_op_begin(img, &op, true);

	if (ret == 0)
		ret = check_new_name(&op, name);
	if (ret == 0)
		ret = append_entry(&op, name);
	if (ret == 0)
		ret = create_run(&op);
	return snap_op_end(&op, ret);
}

/* ---- apply ---- */

/* Entries an L1 needs for a virtual size. */
static int l1_needed(struct qcow2_engine *eng, uint64_t size, uint32_t *n)
{
	uint64_t span = 1ULL << (eng->cluster_bits + eng->l2_bits);
	uint64_t need = size / span + (size % span != 0);

	if (need * 8 > QCOW2_MAX_L1_BYTES)
		return qcow2_corrupt(eng, "the snapshot's disk size %llu needs "
				     "an L1 table larger than %u MiB",
				     (ull)size, QCOW2_MAX_L1_BYTES >> 20);
	*n = (uint32_t)need;
	return 0;
}

static int cmp_off(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The active L2 tables, sorted (tables outside may be cleaned in place). */
static int collect_active_l2(struct snap_op *op)
{
	struct qcow2_engine *eng = op->eng;

	op->active_l2 = malloc((eng->l1_size ? eng->l1_size : 1) * 8ULL);
	if (!op->active_l2)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < eng->l1_size; i++)
		if (eng->l1[i] & QCOW2_L1E_OFFSET_MASK)
			op->active_l2[op->nactive_l2++] =
				eng->l1[i] & QCOW2_L1E_OFFSET_MASK;
	qsort(op->active_l2, op->nactive_l2, 8, cmp_off);
	return 0;
}

static int apply_run(struct snap_op *op, long k, const uint64_t *sl1)
{
	struct qcow2_engine *eng = op->eng;
	const struct qcow2_snap *sn = &op->tab[k];
	uint32_t n1 = 0;
	int ret = l1_needed(eng, sn->disk_size, &n1);

	if (ret == 0)
		ret = collect_active_l2(op);

	if (n1 < sn->l1_size)
		n1 = sn->l1_size;
	if (ret == 0)
		ret = snap_alloc_copy_map(op, sn->l1_size);
	op->pass = PASS_MARK;
	for (int pass = 0; pass < 2 && ret == 0; pass++) {
		ret = snap_drop_tree(op, eng->l1, eng->l1_size);
		if (ret == 0)
			ret = ref_l1(op, eng->l1_offset, eng->l1_size);
		if (ret == 0)
			ret = snap_share_tree(op, sl1, sn->l1_size);
		if (ret == 0 && pass == 0)
			ret = snap_alloc_copies(op, sn->l1_size);
		if (ret == 0 && pass == 0)
			ret = snap_alloc_nl1(op, n1);
		if (ret == 0 && pass == 0)
			ret = txn_prepare(&op->txn);
		op->pass = PASS_APPLY;
	}
	if (ret == 0)
		ret = snap_build_l1_from_share(op, sl1, sn->l1_size);
	/* The table stays where it is. */
	op->tab_off = eng->s->meta.h.snapshots_offset;
	return ret ? ret : finish(op, sn->disk_size);
}

/* The snapshot id and name select (both as given; NULL matches any). */
static int find_snapshot(struct snap_op *op, const char *id,
			 const char *name, long *k)
{
	*k = qcow2_snap_find(op->tab, op->n, id, name);
	if (*k < 0)
		return qerr_set(&op->img->err, -ENOENT, "Can't find snapshot");
	return 0;
}

/* The run of an operation on one snapshot (k) with its L1 table (sl1). */
typedef int (*snap_run_fn)(struct snap_op *op, long k, const uint64_t *sl1);

static int on_snapshot(struct img *img, const char *id, const char *name,
		       snap_run_fn run)
{
	struct snap_op op;
	uint64_t *sl1 = NULL;
	long k = -1;
	int ret = snap_op_begin(img, &op, true);

	if (ret == 0)
		ret = find_snapshot(&op, id, name, &k);
	if (ret == 0)
		ret = snap_load_l1(op.eng, &op.tab[k], &sl1);
	if (ret == 0)
		ret = run(&op, k, sl1);
	free(sl1);
	return snap_op_end(&op, ret);
}

int qcow2_snapshot_apply(struct img *img, const char *id, const char *name)
{
	const struct qcow2_meta *m = &((struct qcow2_state *)img->priv)->meta;

	/* Bitmaps would not know what changed: qemu refuses too. */
	if (m->h.version >= 3 && m->has_bitmaps_ext && m->nb_bitmaps &&
	    (m->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return qerr_set(&img->err, -EBUSY,
				"Device has active dirty bitmaps");
	return on_snapshot(img, id, name, apply_run);
}

/* ---- delete ---- */

/* Host entries of op->l2 without COPIED: their refcounts may drop to 1. */
static bool has_shared(const struct qcow2_engine *eng, const uint64_t *t)
{
	for (uint64_t j = 0; j < (1ULL << eng->l2_bits); j++) {
		uint64_t e = qcow2_l2_get(eng, t, j);

		if (!(e & QCOW2_OFLAG_COMPRESSED) &&
		    (e & QCOW2_L2E_OFFSET_MASK) && !(e & QCOW2_OFLAG_COPIED))
			return true;
	}
	return false;
}

/*
 * op->l2 with COPIED recomputed from the refcounts the transaction leaves,
 * into op->l2new; true when a flag changed.
 */
static int recompute_flags(struct snap_op *op, bool *changed)
{
	struct qcow2_engine *eng = op->eng;
	int ret = txn_flush(&op->txn);

	*changed = false;
	memcpy(op->l2new, op->l2, eng->cluster_size);
	for (uint64_t j = 0; j < (1ULL << eng->l2_bits) && ret == 0; j++) {
		uint64_t e = qcow2_l2_get(eng, op->l2, j), off, rc, ne;

		off = e & QCOW2_L2E_OFFSET_MASK;
		if ((e & QCOW2_OFLAG_COMPRESSED) || !off)
			continue;
		ret = txn_rc(&op->txn, off >> eng->cluster_bits, &rc);
		ne = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
		if (ret == 0 && ne != e) {
			qcow2_l2_set(eng, op->l2new, j, ne,
				     qcow2_l2_bitmap(eng, op->l2, j));
			*changed = true;
		}
	}
	return ret;
}

/* Second pass over a candidate: use the copy, or give it back. */
static int fix_table(struct snap_op *op, uint64_t i, uint64_t x)
{
	struct qcow2_engine *eng = op->eng;
	uint64_t rc;
	bool changed = false;
	int ret = snap_read_l2(op, x);

	if (ret == 0)
		ret = recompute_flags(op, &changed);
	if (ret == 0)
		ret = txn_rc(&op->txn, x >> eng->cluster_bits, &rc);
	if (ret < 0)
		return ret;
	if (!changed) {
		op->nl1[i] = x | (rc == 1 ? QCOW2_OFLAG_COPIED : 0);
		return txn_add(&op->txn, op->copy[i], eng->cluster_size, -1);
	}
	op->nl1[i] = op->copy[i] | QCOW2_OFLAG_COPIED;
	ret = qcow2_pwrite(eng, eng->file, op->l2new, eng->cluster_size,
			   op->copy[i]);
	return ret ? ret : txn_add(&op->txn, x, eng->cluster_size, -1);
}

/*
 * The active tree after a delete: tables that share clusters (an L1 entry
 * or a host entry without COPIED) are candidates for a copy with flags
 * recomputed; the first pass marks them, the second decides.
 */
static int fix_active(struct snap_op *op)
{
	struct qcow2_engine *eng = op->eng;
	int ret = 0;

	for (uint64_t i = 0; i < eng->l1_size && ret == 0; i++) {
		uint64_t x;

		ret = snap_l1_entry_of(eng, eng->l1, eng->l1_size, i, &x);
		if (ret < 0 || !x)
			continue;
		if (op->pass == PASS_APPLY) {
			if (op->copy[i])
				ret = fix_table(op, i, x);
			continue;
		}
		ret = snap_read_l2(op, x);
		if (ret == 0 && (!(eng->l1[i] & QCOW2_OFLAG_COPIED) ||
				 has_shared(eng, op->l2))) {
			op->copy[i] = COPY_PENDING;
			op->ncopies++;
			ret = snap_ref(op, x, eng->cluster_size, -1);
		}
	}
	return ret;
}

/* First pass of a delete, then the allocations. */
static int delete_plan(struct snap_op *op, const struct qcow2_snap *sn,
		       const uint64_t *sl1)
{
	struct qcow2_engine *eng = op->eng;
	int ret;

	op->pass = PASS_MARK;
	ret = snap_drop_tree(op, sl1, sn->l1_size);
	if (ret == 0)
		ret = ref_l1(op, sn->l1_offset, sn->l1_size);
	if (ret == 0)
		ret = ref_old_table(op);
	if (ret == 0)
		ret = fix_active(op);
	if (ret == 0 && op->ncopies)
		ret = ref_l1(op, eng->l1_offset, eng->l1_size);
	if (ret == 0)
		ret = snap_alloc_copies(op, eng->l1_size);
	/* A copy that turns out unneeded is given back in the same switch. */
	for (uint32_t i = 0; i < eng->l1_size && ret == 0; i++)
		if (op->copy[i])
			ret = txn_mark(&op->txn, op->copy[i],
				       eng->cluster_size);
	if (ret == 0 && op->ncopies)
		ret = snap_alloc_nl1(op, eng->l1_size);
	return ret;
}

static int delete_run(struct snap_op *op, long k, const uint64_t *sl1)
{
	struct qcow2_engine *eng = op->eng;
	struct qcow2_snap sn = op->tab[k];
	int ret = snap_alloc_copy_map(op, eng->l1_size);

	if (ret == 0)
		ret = delete_plan(op, &sn, sl1);
	/* The table without entry k (its strings freed once it is gone). */
	memmove(&op->tab[k], &op->tab[k + 1], (op->n - k - 1) * sizeof(sn));
	op->n--;
	if (ret == 0)
		ret = snap_table_alloc(op, op->tab, op->n);
	if (ret == 0)
		ret = txn_prepare(&op->txn);
	op->pass = PASS_APPLY;
	if (ret == 0)
		ret = snap_drop_tree(op, sl1, sn.l1_size);
	if (ret == 0)
		ret = ref_l1(op, sn.l1_offset, sn.l1_size);
	if (ret == 0)
		ret = ref_old_table(op);
	if (ret == 0 && op->ncopies) {
		ret = ref_l1(op, eng->l1_offset, eng->l1_size);
		memcpy(op->nl1, eng->l1, (uint64_t)eng->l1_size * 8);
	}
	if (ret == 0)
		ret = fix_active(op);
	if (ret == 0)
		ret = finish(op, eng->s->meta.h.size);
	free(sn.id);
	free(sn.name);
	free(sn.extra_unknown);
	return ret;
}

int qcow2_snapshot_delete(struct img *img, const char *id, const char *name)
{
	return on_snapshot(img, id, name, delete_run);
}

/* ---- load (read-only view) and list ---- */

int qcow2_snapshot_load(struct img *img, const char *id, const char *name)
{
	struct snap_op op;
	uint64_t *sl1 = NULL;
	long k = -1;
	int ret;

	if (img->flags & IMG_RDWR)
		return qerr_set(&img->err, -EINVAL, "a snapshot can only be "
				"loaded into an image opened read-only");
	ret = snap_op_begin(img, &op, false);
	if (ret == 0)
		ret = find_snapshot(&op, id, name, &k);
	if (ret == 0)
		ret = snap_load_l1(op.eng, &op.tab[k], &sl1);
	if (ret == 0) {
		struct qcow2_engine *eng = op.eng;

		free(eng->l1);
		eng->l1 = sl1;
		eng->l1_size = op.tab[k].l1_size;
		eng->l1_offset = op.tab[k].l1_offset;
		eng->writable = false;
		img->size = op.tab[k].disk_size & ~511ULL;
		sl1 = NULL;
	}
	free(sl1);
	return snap_op_end(&op, ret);
}

int qcow2_snapshot_list(struct img *img, struct img_snapshot **out,
			size_t *n)
{
	struct qcow2_state *s = img->priv;
	uint64_t size;
	int ret = qfile_size(img->file, &size, &img->err);

	if (ret < 0)
		return ret;
	return qcow2_snapshots_read(img->file, &s->meta, size, out, n,
				    &img->err);
}
