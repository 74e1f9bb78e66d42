/*
 * qcow2_snapshot_priv.h: private to qcow2_snapshot_*.c: the transaction
 * behind every snapshot operation (qcow2_snapshot_txn.c) and the tree
 * pieces the operations are made of (qcow2_snapshot_tree.c).
 *
 * The transaction.
 *
 * Why: a snapshot operation changes refcounts between 1 and 2 and, with
 * them, the COPIED flags of the active tree.  qemu-img check calls both a
 * refcount of 2 under a COPIED entry and a refcount of 1 under an entry
 * without COPIED a corruption, so the two must change in one atomic step.
 * The only atomic step qcow2 has is the header: bytes 24..71 hold the
 * virtual size, the active L1, the refcount table and the snapshot table,
 * and fit in one sector.  So the refcount blocks that change are copied
 * ("shadows"), the changes are made in the copies, a new refcount table
 * points at them, and the header switches to the new L1, refcount table
 * and snapshot table in one write.
 *
 * Use:
 *   1. txn_init; txn_mark every range whose refcount will change;
 *      txn_alloc every new cluster (these go through the engine's
 *      allocator into the live refcounts: leaks if we die);
 *   2. txn_prepare: shadows and the new refcount table are allocated
 *      (last, so the shadows capture every allocation);
 *   3. txn_add the changes (buffered, sorted, applied per block); txn_rc
 *      reads a refcount as it will be;
 *   4. txn_commit: the blocks that got copies and the old refcount table
 *      are freed in the copies too, shadows and the new table written and
 *      synced, the header switched, the engine adopts the new table;
 *   txn_abort instead gives back what txn_alloc took.
 */
#ifndef QIMG_CORE_QCOW2_SNAPSHOT_PRIV_H
#define QIMG_CORE_QCOW2_SNAPSHOT_PRIV_H

#include "core/qcow2_engine.h"
#include "core/qcow2_snapshot.h"

struct txn_alloc_rec {
	uint64_t off;
	uint64_t n;
};

struct snap_txn {
	struct qcow2_engine *eng;
	uint64_t nbits;		/* refcount table entries the bitmap covers */
	uint8_t *marked;	/* bitmap: table index gets a shadow block */
	/* After txn_prepare: the shadows, sorted by table index. */
	size_t nshadow;
	uint64_t *sh_ti;
	uint64_t *sh_off;
	uint8_t *sh_init;	/* shadow holds a copy of the live block */
	struct qcow2_cache *cache;
	uint64_t rt_off;	/* the new refcount table */
	uint32_t rt_clusters;
	uint64_t old_rt_off;	/* the table it replaces (as marked) */
	uint64_t old_rt_bytes;
	bool prepared;
	bool switched;		/* the header points at the new structure */
	/* What txn_alloc took (given back by txn_abort). */
	struct txn_alloc_rec *allocs;
	size_t nallocs;
	size_t cap_allocs;
	/* Pending changes: cluster indices, all of one sign. */
	uint64_t *buf;
	size_t nbuf;
	int sign;
	uint64_t min_freed;	/* lowest cluster whose refcount reached 0 */
	/* txn_rc keeps the block it read last pinned (memo_cache). */
	struct qcow2_cache *memo_cache;
	uint8_t *memo;
	uint64_t memo_ti;
};

/* Index of x in the sorted array a[0..n), or -1. */
static inline long snap_bsearch(const uint64_t *a, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && a[lo] == x ? (long)lo : -1;
}

/* The header fields the commit switches (bytes 24..71). */
struct txn_header {
	uint64_t size;
	uint32_t l1_size;
	uint64_t l1_off;
	uint32_t nb_snapshots;
	uint64_t snapshots_off;
};

int txn_init(struct snap_txn *t, struct qcow2_engine *eng);
/* Free the memory (after commit or abort). */
void txn_free(struct snap_txn *t);
/* The refcounts of [off, off+len) will change. */
int txn_mark(struct snap_txn *t, uint64_t off, uint64_t len);
/* n new clusters (refcount 1), contiguous; before txn_prepare only. */
int txn_alloc(struct snap_txn *t, uint64_t n, uint64_t *off);
int txn_prepare(struct snap_txn *t);
/* Refcount of every cluster of [off, off+len) += delta (+1 or -1). */
int txn_add(struct snap_txn *t, uint64_t off, uint64_t len, int delta);
/* Apply what txn_add buffered. */
int txn_flush(struct snap_txn *t);
/* Refcount of cluster idx as the transaction leaves it (after txn_flush). */
int txn_rc(struct snap_txn *t, uint64_t idx, uint64_t *rc);
int txn_commit(struct snap_txn *t, const struct txn_header *h);
/* Give back the allocations (best effort: on failure they leak). */
void txn_abort(struct snap_txn *t);

/* ---- qcow2_snapshot_tree.c ---- */

/* A table that needs a copy, before the copy has a cluster. */
#define COPY_PENDING 1
/* A snapshot's table cleaned of COPIED in place, then shared (apply). */
#define COPY_CLEAN 2

enum pass { PASS_MARK, PASS_APPLY };

struct snap_op {
	struct img *img;
	struct qcow2_engine *eng;
	struct snap_txn txn;
	bool txn_live;
	enum pass pass;
	uint64_t *l2;		/* the L2 table being walked */
	uint64_t *l2new;	/* its copy */
	struct qcow2_snap *tab;	/* the snapshot table */
	size_t n;
	uint64_t *copy;		/* per L1 index: new cluster of the copy */
	uint64_t ncopies;
	/* apply: the active L2 tables, sorted; tables not among them may be
	 * cleaned in place instead of copied */
	uint64_t *active_l2;
	size_t nactive_l2;
	uint64_t *nl1;		/* the new active L1, or NULL: L1 unchanged */
	uint32_t nl1_size;
	uint64_t nl1_off;
	uint64_t tab_off;	/* the new snapshot table */
	uint64_t tab_len;
	uint64_t old_tab_len;	/* the current one's length on disk */
};

/*
 * Start an operation: the engine (ready for writing when write), flushed,
 * buffers, and the snapshot table in op->tab.  snap_op_end frees it all
 * (and gives back the allocations of a failed transaction); returns ret.
 */
int snap_op_begin(struct img *img, struct snap_op *op, bool write);
int snap_op_end(struct snap_op *op, int ret);
/* A plain errno as the error (no message): qemu-img prints "-27 (...)". */
int snap_plain_error(struct img *img, int code);
/* L1 entry i of an L1 table in memory, validated as the engine does. */
int snap_l1_entry_of(struct qcow2_engine *eng, const uint64_t *l1,
		     uint32_t n, uint64_t i, uint64_t *l2_off);
/* A snapshot's L1 table, validated, host order (*out is malloc'd). */
int snap_load_l1(struct qcow2_engine *eng, const struct qcow2_snap *sn,
		 uint64_t **out);
/* Read the L2 table at off into op->l2. */
int snap_read_l2(struct snap_op *op, uint64_t off);
/* Mark (PASS_MARK) or change (PASS_APPLY) the refcounts of a range. */
int snap_ref(struct snap_op *op, uint64_t off, uint64_t len, int delta);
/* The tree of l1 loses one path: its L2 tables and what they reach. */
int snap_drop_tree(struct snap_op *op, const uint64_t *l1, uint32_t n);
/*
 * The tree of l1 gains a path (it is both a snapshot's and the active
 * one): L2 tables with COPIED entries get copies (op->copy, flags
 * cleared) for the active L1, or, when op->active_l2 is set and they are
 * not active tables, are cleaned in place; the others are shared.
 * Everything they reach gains a reference.
 */
int snap_share_tree(struct snap_op *op, const uint64_t *l1, uint32_t n);
/* The copy map (n L1 entries) and the transaction. */
int snap_alloc_copy_map(struct snap_op *op, uint32_t n);
/* Clusters for the copies marked COPY_PENDING. */
int snap_alloc_copies(struct snap_op *op, uint32_t n);
/* The new active L1 of size entries (op->nl1, zeroed) and its clusters. */
int snap_alloc_nl1(struct snap_op *op, uint32_t size);
/* op->nl1 from a shared tree: copies with COPIED, shared tables without. */
int snap_build_l1_from_share(struct snap_op *op, const uint64_t *l1,
			     uint32_t n);
int snap_write_l1(struct snap_op *op);
/* The new snapshot table: clusters (first pass), then its bytes. */
int snap_table_alloc(struct snap_op *op, const struct qcow2_snap *tab,
		     size_t n);
int snap_table_write(struct snap_op *op, const struct qcow2_snap *tab,
		     size_t n);
/* Switch to the new state (virtual size, nb snapshots); adopt the L1. */
int snap_commit(struct snap_op *op, uint64_t size, uint32_t nb);

#endif