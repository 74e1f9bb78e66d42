/*
 * qcow2_check_refs.c: the references the check counts, in memory.
 *
 * Spec: qcow2.txt "Host cluster management": every cluster in use has a
 * refcount equal to the number of references to it.  The check counts
 * those references from the structures themselves and compares them with
 * what the refcount blocks say.
 *
 * Layout: one 4-bit counter per cluster of the file (two per byte); a
 * counter of 15 means "look in the side map", which holds the exact count
 * of the rare clusters referenced 15 times or more (snapshot-heavy images).
 * Counting stops at the image's refcount_max, as qemu's does (an overflow
 * is reported).  A bitmap marks clusters holding metadata, and a map
 * gives those clusters their role: a second reference to a metadata
 * cluster, or metadata landing on a cluster already counted, is an
 * overlap, found in O(1) per reference with no pairwise comparison.  The
 * only legitimate sharing of metadata is an L2 table referenced from
 * several L1 tables (snapshots).
 *
 * Invariants: n never shrinks; every array covers cap >= n clusters and is
 * zero beyond n.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_check.h"

#define NIB_BIG 15

static uint64_t hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

bool qchk_map_get(const struct qchk_map *m, uint64_t key, uint64_t *val)
{
	if (!m->cap)
		return false;
	for (uint64_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == 0)
			return false;
		if (m->keys[i] == key + 1) {
			*val = m->vals[i];
			return true;
		}
	}
}


static int map_grow(struct qchk_map *m)
{
	struct qchk_map old = *m;
	uint64_t cap = old.cap ? old.cap * 2 : 64;

	m->keys = calloc(cap, sizeof(*m->keys));
	m->vals = calloc(cap, sizeof(*m->vals));
	if (!m->keys || !m->vals) {
		free(m->keys);
		free(m->vals);
		*m = old;
		return -ENOMEM;
	}
	m->cap = cap;
	m->n = 0;
	for (uint64_t i = 0; i < old.cap; i++)
		if (old.keys[i])
			qchk_map_put(m, old.keys[i] - 1, old.vals[i]);
	free(old.keys);
	free(old.vals);
	return 0;
}

int qchk_map_put(struct qchk_map *m, uint64_t key, uint64_t val)
{
	uint64_t i;

	if ((m->n + 1) * 2 > m->cap && map_grow(m) < 0)
		return -ENOMEM;
	for (i = hash(key) & (m->cap - 1); m->keys[i] && m->keys[i] != key + 1;
	     i = (i + 1) & (m->cap - 1))
		;
	if (!m->keys[i])
		m->n++;
	m->keys[i] = key + 1;
	m->vals[i] = val;
	return 0;
}

void qchk_map_free(struct qchk_map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static bool bit_get(const uint64_t *bm, uint64_t i)
{
	return bm && (bm[i >> 6] >> (i & 63)) & 1;
}

static void bit_set(uint64_t *bm, uint64_t i)
{
	bm[i >> 6] |= 1ULL << (i & 63);
}

/* Grow a zeroed array of old_n to new_n elements of size sz. */
static int grow_zeroed(void *pp, size_t sz, uint64_t old_n, uint64_t new_n)
{
	void **p = pp;
	uint8_t *mem;

	if (new_n > SIZE_MAX / sz)
		return -ENOMEM;
	mem = realloc(*p, new_n * sz);
	if (!mem)
		return -ENOMEM;
	memset(mem + old_n * sz, 0, (new_n - old_n) * sz);
	*p = mem;
	return 0;
}

int qchk_refs_init(struct qchk_refs *r, uint64_t n, uint64_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
	return qchk_refs_grow(r, n);
}

int qchk_refs_grow(struct qchk_refs *r, uint64_t n)
{
	uint64_t cap;

	if (n > r->n)
		r->n = n;
	if (n <= r->cap)
		return 0;
	/* Geometric growth: references just past the end come one by one. */
	cap = r->cap + r->cap / 2;
	cap = (cap < n ? n : cap) + 64;
	cap = (cap + 63) & ~63ULL;
	if (grow_zeroed(&r->nib, 1, r->cap / 2, cap / 2) < 0 ||
	    grow_zeroed(&r->meta, 8, r->cap / 64, cap / 64) < 0 ||
	    (r->avoid && grow_zeroed(&r->avoid, 8, r->cap / 64, cap / 64) < 0))
		return -ENOMEM;
	r->cap = cap;
	return 0;
}

void qchk_refs_free(struct qchk_refs *r)
{
	free(r->nib);
	free(r->meta);
	free(r->avoid);
	qchk_map_free(&r->big);
	qchk_map_free(&r->roles);
	memset(r, 0, sizeof(*r));
}

void qchk_refs_clear(struct qchk_refs *r)
{
	memset(r->nib, 0, r->cap / 2);
	memset(r->meta, 0, r->cap / 8);
	qchk_map_free(&r->big);
	qchk_map_free(&r->roles);
}

uint64_t qchk_refs_big(const struct qchk_refs *r, uint64_t idx)
{
	uint64_t v = NIB_BIG;

	qchk_map_get(&r->big, idx, &v);
	return v;
}

int qchk_refs_set(struct qchk_refs *r, uint64_t idx, uint64_t v)
{
	unsigned shift = (idx & 1) * 4;
	unsigned nib = v < NIB_BIG ? (unsigned)v : NIB_BIG;

	if (idx >= r->n && qchk_refs_grow(r, idx + 1) < 0)
		return -ENOMEM;
	if (nib == NIB_BIG && qchk_map_put(&r->big, idx, v) < 0)
		return -ENOMEM;
	r->nib[idx >> 1] = (uint8_t)((r->nib[idx >> 1] & ~(0xf << shift)) |
				     (nib << shift));
	return 0;
}

uint64_t qchk_refs_role(const struct qchk_refs *r, uint64_t idx)
{
	uint64_t v = ROLE_DATA;

	if (idx < r->n && bit_get(r->meta, idx))
		qchk_map_get(&r->roles, idx, &v);
	return v;
}

int qchk_refs_avoid(struct qchk_refs *r, uint64_t idx)
{
	if (idx >= r->n && qchk_refs_grow(r, idx + 1) < 0)
		return -ENOMEM;
	if (!r->avoid) {
		r->avoid = calloc(r->cap / 64, 8);
		if (!r->avoid)
			return -ENOMEM;
	}
	bit_set(r->avoid, idx);
	return 0;
}

bool qchk_refs_avoided(const struct qchk_refs *r, uint64_t idx)
{
	return idx < r->n && bit_get(r->avoid, idx);
}

const char *qchk_role_name(enum qchk_role role)
{
	static const char *const names[] = {
		[ROLE_DATA] = "guest data",
		[ROLE_HEADER] = "the image header",
		[ROLE_L1] = "the active L1 table",
		[ROLE_L2] = "an L2 table",
		[ROLE_REFTABLE] = "the refcount table",
		[ROLE_REFBLOCK] = "a refcount block",
		[ROLE_SNAPTABLE] = "the snapshot table",
		[ROLE_SNAP_L1] = "a snapshot L1 table",
		[ROLE_CRYPTO] = "the encryption header",
		[ROLE_BITMAP_DIR] = "the bitmap directory",
		[ROLE_BITMAP_TABLE] = "a bitmap table",
		[ROLE_BITMAP_DATA] = "bitmap data",
		[ROLE_NEW_REFS] = "the new refcount structure",
	};

	return (unsigned)role < sizeof(names) / sizeof(names[0]) ? names[role]
								 : "?";
}

static void remember(struct qchk *q, uint64_t k, enum qchk_role a,
		     enum qchk_role b)
{
	struct qchk_overlap *v;

	if (q->noverlaps >= QCHK_OVERLAPS_KEPT)
		return;
	v = realloc(q->overlaps, (q->noverlaps + 1) * sizeof(*v));
	if (!v)
		return;
	q->overlaps = v;
	v[q->noverlaps++] = (struct qchk_overlap){ k, (uint8_t)a, (uint8_t)b };
}

void qchk_overlaps_report(struct qchk *q)
{
	const struct check_result *r = q->c->r;

	if (r->corruptions || r->check_errors)
		return;
	for (size_t i = 0; i < q->noverlaps; i++) {
		const struct qchk_overlap *o = &q->overlaps[i];
		struct check_args a = { .n = { o->cluster },
					.s = { qchk_role_name(o->a),
					       qchk_role_name(o->b) } };

		check_problem(q->c, CHK_OVERLAP_ONLY, &a, 0);
	}
}

/* Note who else uses cluster k when role arrives there. */
static int overlap(struct qchk *q, uint64_t k, uint64_t count,
		   enum qchk_role role)
{
	struct qchk_refs *r = &q->refs;
	uint64_t old = ROLE_DATA;
	bool meta = bit_get(r->meta, k);
	struct check_args a = { .n = { k } };

	if (meta)
		qchk_map_get(&r->roles, k, &old);
	if (meta && (old & 0xff) == ROLE_L2 && role == ROLE_L2)
		return 0;	/* an L2 table shared by snapshots */
	if (meta || (role != ROLE_DATA && count > 0)) {
		a.s[0] = qchk_role_name((enum qchk_role)(old & 0xff));
		a.s[1] = qchk_role_name(role);
		check_problem(q->c, CHK_OVERLAP, &a, 0);
		remember(q, k, (enum qchk_role)(old & 0xff), role);
		old |= QCHK_SHARED;
		if (meta)
			return qchk_map_put(&r->roles, k, old);
	}
	if (role == ROLE_DATA)
		return 0;
	bit_set(r->meta, k);
	return qchk_map_put(&r->roles, k, (uint64_t)role | (old & QCHK_SHARED));
}

int qchk_ref(struct qchk *q, uint64_t off, uint64_t len,
	     enum qchk_role role, unsigned flags)
{
	struct qchk_refs *r = &q->refs;
	uint64_t first, last;

	if (len == 0)
		return 0;
	/* The last cluster may be partly in the file; more is corruption. */
	if (off + len > q->file_size && off + len - q->file_size >= q->cs) {
		struct check_args a = { .n = { off, len } };

		return check_problem(q->c, CHK_PAST_EOF, &a, flags) ? 2 : 1;
	}
	first = off >> q->cluster_bits;
	last = (off + len - 1) >> q->cluster_bits;
	if (last >= r->n && qchk_refs_grow(r, last + 1) < 0)
		return -ENOMEM;
	for (uint64_t k = first; k <= last; k++) {
		uint8_t *p = &r->nib[k >> 1];
		unsigned shift = (k & 1) * 4, v = (*p >> shift) & 0xf;
		uint64_t count;
		bool meta = bit_get(r->meta, k);

		/* The common case: data, a small count, nothing to note. */
		if (role == ROLE_DATA && !meta && v + 1 < NIB_BIG && v < r->max) {
			*p = (uint8_t)(*p + (1U << shift));
			continue;
		}
		count = qchk_refs_get(r, k);

		if (count >= r->max) {
			struct check_args a = { .n = { k << q->cluster_bits } };

			check_problem(q->c, CHK_OVERFLOW, &a, 0);
			continue;
		}
		if ((meta || role != ROLE_DATA) && overlap(q, k, count, role) < 0)
			return -ENOMEM;
		if (qchk_refs_set(r, k, count + 1) < 0)
			return -ENOMEM;
	}
	return 0;
}
