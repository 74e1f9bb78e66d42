/*
 * qcow2_check.h: the state shared by the passes of the qcow2 check
 * (qcow2_check*.c); not an interface for anything else.
 *
 * The passes, in qemu-img 7.2's order (qcow2_check.c runs them):
 *   snapshot table  qcow2_check_snap.c  parse the table, entry problems
 *   references      qcow2_check_walk.c  header, active L1/L2 (statistics),
 *                                       every snapshot's L1/L2, snapshot
 *                                       table, refcount table, encryption
 *                                       header, bitmaps, refcount blocks
 *   compare         qcow2_check.c       stored refcounts against the
 *                                       references counted in memory
 *   COPIED          qcow2_check.c       OFLAG_COPIED against the stored
 *                                       refcounts
 *   data            qcow2_check_data.c  --data: read every cluster back
 * Repairs (qcow2_check_repair.c) are asked for by the passes as they
 * report; the refcount rebuild is qcow2_check_rebuild.c.
 *
 * The in-memory refcounts (qcow2_check_refs.c) are a compact array of
 * 4-bit counters, one per cluster of the file, with the few larger counts
 * in a side table, so memory is O(clusters in the file) and a quarter of
 * what a 16-bit array takes; a bitmap marks the clusters that hold
 * metadata, which is how overlaps are found without pairwise comparison.
 */
#ifndef QIMG_CORE_QCOW2_CHECK_H
#define QIMG_CORE_QCOW2_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/check.h"
#include "core/qcow2.h"

/* Refcount table entries: bits 9..63 the block offset, 0..8 reserved. */
#define QCHK_REFT_OFFSET_MASK 0xfffffffffffffe00ULL
#define QCHK_REFT_RESERVED 0x1ffULL
#define QCHK_L1E_RESERVED 0x7f000000000001ffULL
#define QCHK_L2E_STD_RESERVED 0x3f000000000001feULL
#define QCHK_BITMAP_ALLOC 0x00000000ffffffffULL
#define QCHK_MAX_L1_ENTRIES (QCOW2_MAX_L1_BYTES / 8)

/* What a cluster is used for (overlap reports name it). */
enum qchk_role {
	ROLE_DATA,
	ROLE_HEADER,
	ROLE_L1,
	ROLE_L2,
	ROLE_REFTABLE,
	ROLE_REFBLOCK,
	ROLE_SNAPTABLE,
	ROLE_SNAP_L1,
	ROLE_CRYPTO,
	ROLE_BITMAP_DIR,
	ROLE_BITMAP_TABLE,
	ROLE_BITMAP_DATA,
	ROLE_NEW_REFS,		/* the rebuilt refcount structure */
};

/* u64 -> u64 open-addressing map (keys are cluster indexes). */
struct qchk_map {
	uint64_t *keys;		/* key + 1; 0 is an empty slot */
	uint64_t *vals;
	uint64_t cap;		/* slots, a power of two */
	uint64_t n;
};

/* The references counted in memory. */
struct qchk_refs {
	uint8_t *nib;		/* two 4-bit counters per byte */
	uint64_t n;		/* clusters tracked (qemu's nb_clusters) */
	uint64_t cap;		/* clusters the arrays can hold */
	uint64_t max;		/* the image's refcount_max */
	struct qchk_map big;	/* counts of 15 and more */
	uint64_t *meta;		/* bit set: the cluster holds metadata */
	struct qchk_map roles;	/* metadata clusters: role | QCHK_SHARED */
	uint64_t *avoid;	/* rebuild must not write here (or NULL) */
};

#define QCHK_SHARED (1ULL << 32)	/* role flag: overlaps something */

struct qchk_snap {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id, *name;
	uint64_t entry_offset;	/* where the entry sits in the table */
	uint32_t extra_size;
	bool incomplete;	/* v3 entry with less than 16 extra bytes */
};

/* A COPIED mismatch found during the first walk. */
struct qchk_copied {
	bool l1;		/* an L1 entry (else an L2 entry) */
	uint64_t index;		/* L1 index */
	uint64_t entry;
	uint64_t rc;
};

#define QCHK_WRB 8		/* refcount blocks cached for the walk */

struct qchk {
	struct img *img;
	struct qcow2_state *st;
	struct qfile *file;
	struct check_ctx *c;
	const struct check_opts *o;

	/* geometry */
	unsigned cluster_bits;
	uint64_t cs;
	unsigned l2_bits;
	unsigned l2e_bytes;	/* 8, or 16 with extended L2 */
	bool extl2;
	bool data_file;		/* external data file: data not counted */
	bool v3;
	unsigned refcount_order;
	uint64_t refcount_max;
	unsigned rb_bits;	/* log2 of the entries per refcount block */
	uint64_t file_size;

	struct qchk_refs refs;

	/* stored refcount table (host order) */
	uint64_t *reftable;
	uint64_t reft_entries;

	/* snapshot table, as read by the snapshot pass */
	struct qchk_snap *snaps;
	uint32_t nb_snaps;
	uint64_t snaps_size;

	/* walk state */
	uint8_t *l2buf;		/* one cluster */
	uint64_t next_contig;	/* fragmentation statistics */
	bool rebuild;		/* refcount structure must be rebuilt */
	bool corrupt_said;	/* the one "Image is corrupt" line is out */

	/* stored refcounts: one block cached for lookups and repairs */
	uint8_t *rb;
	uint64_t rb_off;	/* offset of the cached block, 0: none */
	bool rb_dirty;
	uint64_t *unsure;	/* per block: stored may differ from counted */
	uint64_t unsure_n;	/* bits in unsure */

	/* clusters of the known metadata, sorted (repairs never write
	   an L2 table that lands on one) */
	uint64_t *protect;	/* [start, end) cluster pairs */
	uint64_t nprotect;	/* pairs */
	bool protect_built;

	/* COPIED found during the first walk (plain check only) */
	bool early;
	struct qchk_copied *early_v;
	size_t early_n;
	bool early_overflow;
	uint8_t *wrb[QCHK_WRB];
	uint64_t wrb_off[QCHK_WRB];

	/* entries whose COPIED bit was cleared before refcounts were raised:
	   file position -> the entry as it was */
	struct qchk_map precleared;
	bool raises;		/* a refcount below its references */

	/* overlaps found by the last reference pass (the first ones) */
	struct qchk_overlap *overlaps;
	size_t noverlaps;
};

/* An overlap seen by the reference pass. */
struct qchk_overlap {
	uint64_t cluster;
	uint8_t a, b;		/* enum qchk_role of the two users */
};

#define QCHK_OVERLAPS_KEPT 1000

/* qcow2_check_refs.c: the in-memory references */
bool qchk_map_get(const struct qchk_map *m, uint64_t key, uint64_t *val);
int qchk_map_put(struct qchk_map *m, uint64_t key, uint64_t val);
void qchk_map_free(struct qchk_map *m);
int qchk_refs_init(struct qchk_refs *r, uint64_t n, uint64_t max);
void qchk_refs_free(struct qchk_refs *r);
int qchk_refs_grow(struct qchk_refs *r, uint64_t n);
uint64_t qchk_refs_big(const struct qchk_refs *r, uint64_t idx);
static inline uint64_t qchk_refs_get(const struct qchk_refs *r, uint64_t idx)
{
	unsigned v;

	if (idx >= r->n)
		return 0;
	v = (r->nib[idx >> 1] >> ((idx & 1) * 4)) & 0xf;
	return v == 15 ? qchk_refs_big(r, idx) : v;
}
int qchk_refs_set(struct qchk_refs *r, uint64_t idx, uint64_t v);
/* Forget every count (keeping the size), as before a second count. */
void qchk_refs_clear(struct qchk_refs *r);
/* Role of a metadata cluster (ROLE_DATA when none), with QCHK_SHARED. */
uint64_t qchk_refs_role(const struct qchk_refs *r, uint64_t idx);
int qchk_refs_avoid(struct qchk_refs *r, uint64_t idx);
bool qchk_refs_avoided(const struct qchk_refs *r, uint64_t idx);
/*
 * Count a reference to [off, off+len) for role (qemu's inc_refcounts_imrt
 * and its end-of-file test, plus overlap detection).  Returns 0 when
 * counted, 1 when the range lies a cluster or more past the end of the
 * file (reported, not counted; flags go to that report), or a negative
 * errno.
 */
int qchk_ref(struct qchk *q, uint64_t off, uint64_t len,
	     enum qchk_role role, unsigned flags);
/*
 * After the comparison: overlaps qemu's counts cannot show (both users
 * counted in the stored refcount) are corruptions of their own, reported
 * only when nothing else was found, so that wherever qemu-img finds
 * something the counts stay its counts.
 */
void qchk_overlaps_report(struct qchk *q);
/* Human name of a role ("an L2 table"). */
const char *qchk_role_name(enum qchk_role role);

/* qcow2_check_walk.c: the reference count pass */
enum qchk_ctype { T_UNALLOC, T_ZERO_PLAIN, T_ZERO_ALLOC, T_NORMAL,
		  T_COMPRESSED };
/* qemu's cluster type of an L2 entry (extended L2 has no zero flag). */
enum qchk_ctype qchk_ctype(const struct qchk *q, uint64_t e);
int qchk_count(struct qchk *q, bool stats);

/* qcow2_check_snap.c: the snapshot table */
int qchk_snapshots_read(struct qchk *q);
void qchk_snapshots_free(struct qchk *q);
/* -r all: rewrite a table whose entries were incomplete. */
int qchk_snapshots_fix(struct qchk *q);
int qchk_bitmaps(struct qchk *q);

/* qcow2_check.c: stored refcounts */
int qchk_stored(struct qchk *q, uint64_t idx, uint64_t *rc);
int qchk_reftable_load(struct qchk *q);

/* qcow2_check_copied.c */
/* False: the L2 table's entries are not for the COPIED pass. */
bool qchk_early_l1(struct qchk *q, uint32_t i, uint64_t e);
void qchk_early_l2(struct qchk *q, uint64_t e);
int qchk_copied(struct qchk *q, unsigned fix);
/*
 * -r all, before any refcount is raised or the structure rebuilt: clear
 * COPIED where the counted refcount is not 1, so no moment of the repair
 * has COPIED set on a cluster whose stored refcount says it is shared.
 * The COPIED pass reports these entries as it would have.
 */
int qchk_copied_preclear(struct qchk *q);

/* qcow2_check_repair.c */
int qchk_write(struct qchk *q, const void *buf, size_t len, uint64_t off);
int qchk_sync(struct qchk *q);
int qchk_rb_load(struct qchk *q, uint64_t off);
int qchk_rb_flush(struct qchk *q);
int qchk_fix_refcount(struct qchk *q, uint64_t idx, uint64_t v);
/* Rewrite one 8-byte big-endian field (an L1 entry, a header field). */
int qchk_write_be64(struct qchk *q, uint64_t off, uint64_t v);
int qchk_grow_file(struct qchk *q, uint64_t size);
int qchk_set_incompat(struct qchk *q, uint64_t bits);
int qchk_set_autoclear(struct qchk *q, uint64_t bits);
bool qchk_safe_to_write(struct qchk *q, uint64_t off, enum qchk_role role);

/* qcow2_check_rebuild.c */
int qchk_rebuild(struct qchk *q);

/* qcow2_check_data.c */
int qchk_data(struct qchk *q);

#endif
