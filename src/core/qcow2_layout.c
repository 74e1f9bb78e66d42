/*
 * qcow2_layout.c: lay out a new qcow2 image the way qemu-img 7.2 does, by
 * replaying its allocator on an in-memory model (see qcow2_layout.h).
 *
 * Spec: docs/interop/qcow2.txt, "Host cluster management" (refcount table
 * and blocks) and "Cluster mapping" (L1/L2).  The placement rules below
 * are qemu's observable behaviour, verified by creating images with
 * qemu-img and comparing them byte for byte:
 *
 *  - A cursor (free_index) walks the clusters; an allocation of n clusters
 *    takes the first run of n clusters with refcount 0 at or after it and
 *    leaves the cursor after the run.  Freeing a cluster moves the cursor
 *    back to it.  A cluster whose refcount block does not exist has
 *    refcount 0.
 *  - Raising the refcount of a cluster whose refcount block is missing
 *    first allocates that block (at the cursor).  A block that covers
 *    itself records its own refcount; one that does not gets its refcount
 *    raised like any allocation (which may allocate one more block).  The
 *    block is hooked into the refcount table and the whole allocation is
 *    undone and retried from its first cluster, because the block may now
 *    sit where the allocation was going.
 *  - When the refcount table has no slot for a new block, a new table and
 *    the blocks that cover it are placed in a fresh area past everything
 *    in use (sized for the need plus half again), every entry is copied,
 *    and the old table's clusters are freed (their bytes stay in the
 *    file).  falloc/full preallocation places such an area of exactly the
 *    needed size at the end of the file first, then the data right after.
 *  - metadata preallocation walks the guest range in requests of at most
 *    2 GiB: each L2 table is allocated when its first cluster is reached,
 *    data clusters are allocated as one contiguous run per L2 table, and
 *    the file is then extended (sparsely) to the end of the last run.
 *  - The LUKS area of an encrypted image is allocated last, after the
 *    preallocation (qemu sets up encryption once the image has its size),
 *    and its whole clusters are written (zero past the header).
 *
 * Refcounts of a new image are 0 or 1, so the model keeps one bit per
 * host cluster.  Tables and L2 entries are written as they are decided;
 * refcount blocks and the L1 table are written once at the end; the caller
 * writes cluster 0 last.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2.h"
#include "core/qcow2_layout.h"

#define INV UINT64_MAX
#define MAX_HOST_OFFSET ((1ULL << 56) - 1)
/* Largest single request qemu's block layer issues. */
#define MAX_REQUEST_BYTES 0x7ffffe00ULL
#define INT_MAX_BYTES 0x7fffffffULL
/* Host clusters the model tracks (a 512 MiB bitmap). */
#define MAX_TRACKED_CLUSTERS (1ULL << 32)
#define L2_SLOTS 4

struct l2_slot {
	uint64_t l1_index;
	uint64_t offset;
	uint8_t *buf;		/* NULL: slot unused */
};

struct lay {
	const struct qcow2_layout_params *p;
	struct qerr *e;
	unsigned bits;		/* cluster_bits */
	uint64_t cs;		/* cluster size */
	unsigned rb_bits;	/* log2 of refcounts per block */
	unsigned l2_bits;	/* log2 of entries per L2 table */
	unsigned l2_elen;	/* bytes per L2 entry */
	uint64_t *rc;		/* one bit per host cluster: refcount 1 */
	uint64_t rc_words;
	uint64_t *rt;		/* refcount table */
	uint64_t rt_size;	/* entries */
	uint64_t rt_offset;
	uint64_t free_index;
	uint64_t file_len;	/* length of the qcow2 file as qemu leaves it */
	uint64_t data_len;	/* length of the external data file */
	uint64_t *l1;
	uint64_t l1_size;
	uint64_t l1_offset;
	struct l2_slot l2[L2_SLOTS];
	unsigned l2_next;	/* round-robin victim */
};

static int alloc_refcount_block(struct lay *q, uint64_t ci);

static uint64_t div_round_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static bool rc_bit(const struct lay *q, uint64_t c)
{
	uint64_t w = c >> 6;

	return w < q->rc_words && ((q->rc[w] >> (c & 63)) & 1);
}

static int rc_put(struct lay *q, uint64_t c, bool v)
{
	uint64_t w = c >> 6;

	if (w >= q->rc_words) {
		uint64_t n = q->rc_words ? q->rc_words : 1024;
		uint64_t *nrc;

		if (!v)
			return 0;
		if (c >= MAX_TRACKED_CLUSTERS)
			return qerr_set(q->e, -EFBIG,
					"the image needs more than %llu host "
					"clusters",
					(unsigned long long)MAX_TRACKED_CLUSTERS);
		while (n <= w)
			n *= 2;
		nrc = realloc(q->rc, n * sizeof(*nrc));
		if (!nrc)
			return qerr_set(q->e, -ENOMEM, "out of memory");
		memset(nrc + q->rc_words, 0,
		       (n - q->rc_words) * sizeof(*nrc));
		q->rc = nrc;
		q->rc_words = n;
	}
	if (v)
		q->rc[w] |= 1ULL << (c & 63);
	else
		q->rc[w] &= ~(1ULL << (c & 63));
	return 0;
}

/* qemu's view: no refcount block means refcount 0. */
static bool get_refcount(const struct lay *q, uint64_t c)
{
	uint64_t ti = c >> q->rb_bits;

	return ti < q->rt_size && q->rt[ti] && rc_bit(q, c);
}

static int file_write(struct lay *q, struct qfile *f, const void *buf,
		      uint64_t len, uint64_t off)
{
	if (f == q->p->file)
		q->file_len = max_u64(q->file_len, off + len);
	return qfile_pwrite(f, buf, len, off, q->e);
}

/* Find n free clusters at the cursor without raising their refcounts. */
static int alloc_noref(struct lay *q, uint64_t n, uint64_t *off)
{
	uint64_t i = 0;

	while (i < n) {
		if (get_refcount(q, q->free_index++))
			i = 0;
		else
			i++;
	}
	if (q->free_index - 1 > (MAX_HOST_OFFSET >> q->bits))
		return qerr_set(q->e, -EFBIG, "the image file would exceed "
				"the largest qcow2 host offset");
	*off = (q->free_index - n) << q->bits;
	return 0;
}

/*
 * Raise (or lower) the refcount of every cluster in [off, off+len).
 * -EAGAIN after undoing its own changes when a new refcount block was
 * placed: the caller must search for free clusters again.
 */
static int update_refcount(struct lay *q, uint64_t off, uint64_t len,
			   bool decrease)
{
	uint64_t start, last, co, old_ti = INV;
	int ret = 0;

	if (len == 0)
		return 0;
	start = off & ~(q->cs - 1);
	last = (off + len - 1) & ~(q->cs - 1);
	for (co = start; co <= last; co += q->cs) {
		uint64_t ci = co >> q->bits, ti = ci >> q->rb_bits;

		if (ti != old_ti) {
			ret = alloc_refcount_block(q, ci);
			if (ret == -EAGAIN && q->free_index > (start >> q->bits))
				q->free_index = start >> q->bits;
			if (ret < 0)
				break;
			old_ti = ti;
		}
		if (rc_bit(q, ci) == !decrease) {
			ret = qerr_set(q->e, -EIO, "internal error: refcount "
				       "of cluster %llu out of range",
				       (unsigned long long)ci);
			break;
		}
		ret = rc_put(q, ci, !decrease);
		if (ret < 0)
			break;
		if (decrease && q->free_index > ci)
			q->free_index = ci;
	}
	if (ret < 0 && co > off)
		update_refcount(q, off, co - off, !decrease);
	return ret;
}

static int alloc_clusters(struct lay *q, uint64_t len, uint64_t *off)
{
	int ret;

	do {
		ret = alloc_noref(q, div_round_up(len, q->cs), off);
		if (ret == 0)
			ret = update_refcount(q, *off, len, false);
	} while (ret == -EAGAIN);
	return ret;
}

/* Allocate up to n clusters exactly at off; *got says how many were free. */
static int alloc_clusters_at(struct lay *q, uint64_t off, uint64_t n,
			     uint64_t *got)
{
	uint64_t i;
	int ret;

	do {
		uint64_t ci = off >> q->bits;

		for (i = 0; i < n; i++)
			if (get_refcount(q, ci + i))
				break;
		ret = update_refcount(q, off, i << q->bits, false);
	} while (ret == -EAGAIN);
	*got = i;
	return ret;
}

/* Refcount blocks needed to cover `clusters` plus the refcount metadata. */
static uint64_t refblocks_needed(const struct lay *q, uint64_t clusters,
				 bool generous)
{
	uint64_t per_table = q->cs / 8, per_block = 1ULL << q->rb_bits;
	uint64_t table = 0, blocks = 0, n = 0, last;

	do {
		last = n;
		blocks = div_round_up(clusters + table + blocks, per_block);
		table = div_round_up(blocks, per_table);
		n = clusters + blocks + table;
		if (n == last && generous) {
			clusters += div_round_up(table, 2);
			n = 0;
			generous = false;
		}
	} while (n != last);
	return blocks;
}

static int write_be64_table(struct lay *q, const uint64_t *t, uint64_t n,
			  uint64_t off)
{
	uint8_t *buf = malloc(n * 8);
	int ret;

	if (!buf)
		return qerr_set(q->e, -ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++)
		be64_put(buf + i * 8, t[i]);
	ret = file_write(q, q->p->file, buf, n * 8, off);
	free(buf);
	return ret;
}

/* Mark the new refcount structures in [start, end) as used. */
static int area_set_refcounts(struct lay *q, uint64_t i, uint64_t start,
			      uint64_t end)
{
	uint64_t per_block = 1ULL << q->rb_bits;
	uint64_t first = i * per_block * q->cs, j, stop;
	int ret;

	if (first >= end)
		return 0;
	j = first < start ? (start - first) / q->cs : 0;
	stop = min_u64((end - first) / q->cs, per_block);
	for (; j < stop; j++) {
		ret = rc_put(q, i * per_block + j, true);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * Place a new refcount table, and the blocks it lacks from start_off's
 * block on, at start_off; hook new_block in at new_ti if non-zero; free
 * the old table.  *end is the first byte after the new structures.
 */
static int refcount_area(struct lay *q, uint64_t start_off, uint64_t extra,
			 bool exact, uint64_t new_ti, uint64_t new_block,
			 uint64_t *end)
{
	uint64_t total = refblocks_needed(q, start_off / q->cs + extra, !exact);
	uint64_t area_ti = (start_off / q->cs) >> q->rb_bits;
	uint64_t size, clusters, missing = 0, table_off, block_off;
	uint64_t old_off = q->rt_offset, old_size = q->rt_size, *t;
	int ret;

	size = exact ? total : total + div_round_up(total, 2);
	size = div_round_up(size, q->cs / 8) * (q->cs / 8);
	if (total > QCOW2_MAX_REFTABLE_BYTES || size > QCOW2_MAX_REFTABLE_BYTES)
		return qerr_set(q->e, -EFBIG, "the refcount table would "
				"exceed qemu's limit");
	clusters = size * 8 / q->cs;
	t = calloc(size, sizeof(*t));
	if (!t)
		return qerr_set(q->e, -ENOMEM, "out of memory");
	memcpy(t, q->rt, min_u64(size, q->rt_size) * sizeof(*t));
	if (new_block)
		t[new_ti] = new_block;
	for (uint64_t i = area_ti; i < total; i++)
		missing += !t[i];
	table_off = start_off + missing * q->cs;
	*end = table_off + clusters * q->cs;
	block_off = start_off;
	for (uint64_t i = area_ti; i < total; i++) {
		if (!t[i]) {
			t[i] = block_off;
			block_off += q->cs;
		}
		ret = area_set_refcounts(q, i, start_off, *end);
		if (ret < 0) {
			free(t);
			return ret;
		}
	}
	q->file_len = max_u64(q->file_len, table_off);
	ret = write_be64_table(q, t, size, table_off);
	if (ret < 0) {
		free(t);
		return ret;
	}
	free(q->rt);
	q->rt = t;
	q->rt_size = size;
	q->rt_offset = table_off;
	return update_refcount(q, old_off, old_size * 8, true);
}

/*
 * Make sure the refcount block covering cluster ci exists.  0 when it
 * already did; -EAGAIN after placing one (see update_refcount).
 */
static int alloc_refcount_block(struct lay *q, uint64_t ci)
{
	uint64_t ti = ci >> q->rb_bits, nb, nb_ci, used, end;
	uint8_t entry[8];
	int ret;

	if (ti < q->rt_size && q->rt[ti])
		return 0;
	ret = alloc_noref(q, 1, &nb);
	if (ret < 0)
		return ret;
	if (nb == 0)
		return qerr_set(q->e, -EIO, "internal error: refcount block "
				"at offset 0");
	nb_ci = nb >> q->bits;
	if ((nb_ci >> q->rb_bits) == ti)
		ret = rc_put(q, nb_ci, true);	/* it describes itself */
	else
		ret = update_refcount(q, nb, q->cs, false);
	if (ret < 0)
		return ret;
	q->file_len = max_u64(q->file_len, nb + q->cs);
	if (ti < q->rt_size) {
		q->rt[ti] = nb;
		be64_put(entry, nb);
		ret = file_write(q, q->p->file, entry, 8, q->rt_offset + ti * 8);
		return ret < 0 ? ret : -EAGAIN;
	}
	used = div_round_up(max_u64(ci + 1, nb_ci + 1), 1ULL << q->rb_bits);
	if (used > (MAX_HOST_OFFSET >> q->bits) >> q->rb_bits)
		return qerr_set(q->e, -EFBIG, "the refcount structures would "
				"exceed the largest qcow2 host offset");
	ret = refcount_area(q, (used << q->rb_bits) * q->cs, 0, false, ti, nb,
			    &end);
	return ret < 0 ? ret : -EAGAIN;
}

static int l2_flush_slot(struct lay *q, struct l2_slot *s)
{
	int ret = 0;

	if (s->buf)
		ret = file_write(q, q->p->file, s->buf, q->cs, s->offset);
	free(s->buf);
	s->buf = NULL;
	return ret;
}

/*
 * The L2 table for guest offset g, allocating it when the L1 entry is
 * empty (a fresh image never revisits a table, but a cached miss reads
 * it back from the file all the same).
 */
static int l2_get(struct lay *q, uint64_t g, uint8_t **table)
{
	uint64_t l1i = g >> (q->bits + q->l2_bits), off;
	struct l2_slot *s;
	bool fresh;
	int ret;

	for (int i = 0; i < L2_SLOTS; i++) {
		if (q->l2[i].buf && q->l2[i].l1_index == l1i) {
			*table = q->l2[i].buf;
			return 0;
		}
	}
	if (l1i >= q->l1_size)
		return qerr_set(q->e, -EIO, "internal error: guest offset "
				"past the L1 table");
	off = q->l1[l1i] & QCOW2_L1E_OFFSET_MASK;
	fresh = off == 0;
	if (fresh) {
		ret = alloc_clusters(q, q->cs, &off);
		if (ret < 0)
			return ret;
		q->file_len = max_u64(q->file_len, off + q->cs);
		q->l1[l1i] = off | QCOW2_OFLAG_COPIED;
	}
	s = &q->l2[q->l2_next];
	q->l2_next = (q->l2_next + 1) % L2_SLOTS;
	ret = l2_flush_slot(q, s);
	if (ret < 0)
		return ret;
	s->buf = calloc(1, q->cs);
	if (!s->buf)
		return qerr_set(q->e, -ENOMEM, "out of memory");
	s->l1_index = l1i;
	s->offset = off;
	if (!fresh &&
	    (ret = qfile_pread_zero(q->p->file, s->buf, q->cs, off, q->e)) < 0)
		return ret;
	*table = s->buf;
	return 0;
}

/*
 * Map n guest clusters from guest offset g to host offset h, as a
 * preallocation does: COPIED set, and for extended L2 entries an empty
 * subcluster bitmap (subclusters read as zeros or from the backing file).
 */
static int link_l2(struct lay *q, uint64_t g, uint64_t h, uint64_t n)
{
	uint64_t mask = (1ULL << q->l2_bits) - 1;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t gi = g + (i << q->bits);
		uint8_t *t;
		int ret = l2_get(q, gi, &t);

		if (ret < 0)
			return ret;
		be64_put(t + ((gi >> q->bits) & mask) * q->l2_elen,
			 (h + (i << q->bits)) | QCOW2_OFLAG_COPIED);
	}
	return 0;
}

/*
 * One request of a metadata preallocation: map as much of [off, off+*bytes)
 * as one contiguous host run allows.  On return *bytes is what was
 * mapped and *host where it starts.
 */
static int alloc_host_offset(struct lay *q, uint64_t off, uint64_t *bytes,
			     uint64_t *host)
{
	uint64_t start = off, remaining = *bytes, cur = 0, cl = INV;
	uint64_t mask = q->cs - 1;
	uint8_t *t;
	int ret;

	*host = INV;
	for (;;) {
		uint64_t in, nb, l2i, alloc, n;

		if (*host == INV && cl != INV)
			*host = cl;
		start += cur;
		remaining -= cur;
		if (cl != INV)
			cl += cur;
		if (remaining == 0)
			break;
		cur = remaining;
		ret = l2_get(q, start, &t);
		if (ret < 0)
			return ret;
		in = start & mask;
		l2i = (start >> q->bits) & ((1ULL << q->l2_bits) - 1);
		nb = div_round_up(in + cur, q->cs);
		nb = min_u64(nb, (1ULL << q->l2_bits) - l2i);
		nb = min_u64(nb, MAX_REQUEST_BYTES >> q->bits);
		if (q->p->data) {
			alloc = start & ~mask;	/* 1:1 in the data file */
		} else if (cl == INV) {
			ret = alloc_clusters(q, nb << q->bits, &alloc);
		} else {
			alloc = cl & ~mask;
			ret = alloc_clusters_at(q, alloc, nb, &nb);
		}
		if (ret < 0)
			return ret;
		if (nb == 0) {
			cur = 0;
			break;
		}
		cl = alloc + in;
		cur = min_u64(cur, min_u64(cur + in, nb << q->bits) - in);
		n = div_round_up(in + cur, q->cs);
		ret = link_l2(q, start & ~mask, alloc, n);
		if (ret < 0)
			return ret;
	}
	*bytes -= remaining;
	return 0;
}

static int preallocate_metadata(struct lay *q, enum img_prealloc mode)
{
	uint64_t off = 0, bytes = q->p->size, host = 0, cur = 0, end;
	struct qfile *f = q->p->data ? q->p->data : q->p->file;
	uint64_t *len = q->p->data ? &q->data_len : &q->file_len;
	int ret;

	while (bytes) {
		cur = min_u64(bytes, INT_MAX_BYTES & ~(q->cs - 1));
		ret = alloc_host_offset(q, off, &cur, &host);
		if (ret < 0)
			return ret;
		bytes -= cur;
		off += cur;
	}
	if (mode == IMG_PREALLOC_METADATA)
		mode = IMG_PREALLOC_OFF;
	/* qemu extends the file to the end of the last data cluster. */
	end = div_round_up(host + cur, q->cs) * q->cs;
	if (q->p->size && end > *len) {
		if (f == q->p->file) {
			/* The qcow2 file is sized at the end (lay_finish). */
			*len = end;
			return 0;
		}
		return raw_grow_file(f, len, end, mode, q->e);
	}
	return 0;
}

/* falloc/full without a data file: refcounts, then data, then L2 tables. */
static int preallocate_data(struct lay *q)
{
	uint64_t last = div_round_up(q->file_len, q->cs), old, start, got;
	uint64_t data = div_round_up(q->p->size, q->cs), host, g = 0, len;
	uint64_t l2s = div_round_up(data, 1ULL << q->l2_bits) + 1;
	int ret;

	while (last > 0 && !get_refcount(q, last - 1))
		last--;
	old = last * q->cs;
	ret = refcount_area(q, old, data + l2s, true, 0, 0, &start);
	if (ret == 0)
		ret = alloc_clusters_at(q, start, data, &got);
	if (ret < 0)
		return ret;
	if (got != data)
		return qerr_set(q->e, -EIO, "internal error: preallocated "
				"area is not free");
	len = q->file_len;
	ret = raw_grow_file(q->p->file, &len, start + data * q->cs,
			    q->p->prealloc, q->e);
	if (ret < 0)
		return ret;
	q->file_len = len;
	host = start;
	while (data) {
		uint64_t l2i = (g >> q->bits) & ((1ULL << q->l2_bits) - 1);
		uint64_t n = min_u64(data, (1ULL << q->l2_bits) - l2i);

		ret = link_l2(q, g, host, n);
		if (ret < 0)
			return ret;
		g += n << q->bits;
		host += n << q->bits;
		data -= n;
	}
	return 0;
}

/* Write the refcount blocks from the model. */
static int write_refblocks(struct lay *q)
{
	uint64_t per_block = 1ULL << q->rb_bits;
	unsigned order = q->p->refcount_order;
	uint8_t *buf = malloc(q->cs);
	int ret = 0;

	if (!buf)
		return qerr_set(q->e, -ENOMEM, "out of memory");
	for (uint64_t ti = 0; ti < q->rt_size && ret == 0; ti++) {
		uint64_t first = ti * per_block;

		if (!q->rt[ti])
			continue;
		memset(buf, 0, q->cs);
		for (uint64_t j = 0; j < per_block; j++) {
			uint64_t c = first + j;

			if ((c & 63) == 0 &&
			    ((c >> 6) >= q->rc_words || !q->rc[c >> 6])) {
				j += 63;
				continue;
			}
			if (!rc_bit(q, c))
				continue;
			if (order < 3)
				buf[(j << order) >> 3] |=
					(uint8_t)(1u << ((j << order) & 7));
			else
				buf[(j + 1) * (1u << (order - 3)) - 1] = 1;
		}
		ret = file_write(q, q->p->file, buf, q->cs, q->rt[ti]);
	}
	free(buf);
	return ret;
}

static int lay_finish(struct lay *q)
{
	int ret = 0;

	for (int i = 0; i < L2_SLOTS && ret == 0; i++)
		ret = l2_flush_slot(q, &q->l2[i]);
	if (ret == 0 && q->l1_size)
		ret = write_be64_table(q, q->l1, q->l1_size, q->l1_offset);
	if (ret == 0)
		ret = write_refblocks(q);
	if (ret == 0)
		ret = qfile_truncate(q->p->file, q->file_len, q->e);
	return ret;
}

/* The LUKS area: allocated like any metadata, then written in full. */
static int place_crypto(struct lay *q, uint64_t *off)
{
	uint64_t len = q->p->crypto_len;
	int ret = alloc_clusters(q, len, off);

	if (ret == 0)
		ret = file_write(q, q->p->file, q->p->crypto_hdr, len, *off);
	if (ret == 0)
		q->file_len = max_u64(q->file_len,
				      *off + div_round_up(len, q->cs) * q->cs);
	return ret;
}

static int lay_run(struct lay *q, uint64_t *crypto_off)
{
	const struct qcow2_layout_params *p = q->p;
	uint64_t off, l2_span = 1ULL << (q->bits + q->l2_bits);
	int ret;

	/* Header, refcount table and one (empty) refcount block. */
	q->rt_size = q->cs / 8;
	q->rt = calloc(q->rt_size, sizeof(*q->rt));
	if (!q->rt)
		return qerr_set(q->e, -ENOMEM, "out of memory");
	q->rt[0] = 2 * q->cs;
	q->rt_offset = q->cs;
	ret = write_be64_table(q, q->rt, q->rt_size, q->cs);
	q->file_len = 3 * q->cs;
	if (ret == 0)
		ret = alloc_clusters(q, 3 * q->cs, &off);
	if (ret < 0)
		return ret;
	/* The L1 table, sized exactly (the file is not padded). */
	q->l1_size = div_round_up(p->size, l2_span);
	if (q->l1_size) {
		q->l1 = calloc(q->l1_size, sizeof(*q->l1));
		if (!q->l1)
			return qerr_set(q->e, -ENOMEM, "out of memory");
		ret = alloc_clusters(q, q->l1_size * 8, &q->l1_offset);
		if (ret < 0)
			return ret;
		q->file_len = max_u64(q->file_len, q->l1_offset + q->l1_size * 8);
	}
	switch (p->prealloc) {
	case IMG_PREALLOC_OFF:
		if (p->data)
			ret = raw_grow_file(p->data, &q->data_len, p->size,
					    IMG_PREALLOC_OFF, q->e);
		break;
	case IMG_PREALLOC_METADATA:
		ret = preallocate_metadata(q, p->prealloc);
		break;
	case IMG_PREALLOC_FALLOC:
	case IMG_PREALLOC_FULL:
		if (p->data)
			ret = preallocate_metadata(q, p->prealloc);
		else
			ret = preallocate_data(q);
		break;
	}
	if (ret == 0 && p->crypto_len)
		ret = place_crypto(q, crypto_off);
	return ret < 0 ? ret : lay_finish(q);
}

int qcow2_layout_write(const struct qcow2_layout_params *p,
		       struct qcow2_layout_result *r, struct qerr *e)
{
	struct lay q = {
		.p = p,
		.e = e,
		.bits = p->cluster_bits,
		.cs = 1ULL << p->cluster_bits,
		.rb_bits = p->cluster_bits + 3 - p->refcount_order,
		.l2_elen = p->extended_l2 ? 16 : 8,
	};
	uint64_t crypto_off = 0;
	int ret;

	q.l2_bits = p->cluster_bits - (p->extended_l2 ? 4 : 3);
	ret = lay_run(&q, &crypto_off);
	if (ret == 0) {
		r->l1_size = (uint32_t)q.l1_size;
		r->l1_table_offset = q.l1_size ? q.l1_offset : 0;
		r->refcount_table_offset = q.rt_offset;
		r->refcount_table_clusters = (uint32_t)(q.rt_size * 8 / q.cs);
		r->crypto_offset = crypto_off;
	}
	for (int i = 0; i < L2_SLOTS; i++)
		free(q.l2[i].buf);
	free(q.rc);
	free(q.rt);
	free(q.l1);
	return ret;
}
