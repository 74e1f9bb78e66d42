/*
 * qcow2_engine.h: the qcow2 read/write engine: guest-to-host mapping through
 * L1 and L2 tables, cluster allocation from refcounts, metadata caches, and
 * the write ordering that keeps an image consistent across a crash.
 *
 * Spec: QEMU docs/interop/qcow2.txt, "Host cluster management", "Cluster
 * mapping", "Extended L2 Entries"; the crash rules are in
 * shared/docs/QCOW2-NOTES.md.  The engine hangs off qcow2_state.engine and
 * is created on the first I/O call, so opening an image for `info` never
 * loads L1, L2 or refcount tables.
 *
 * Write ordering (every path keeps these; the caches enforce the first two
 * with dependencies, the rest are explicit syncs):
 *   1. a refcount is raised and synced before any L1/L2/refcount-table entry
 *      that points at the cluster reaches the file;
 *   2. references are removed (and synced) before the refcount is lowered,
 *      and a cluster freed in memory is not handed out again before the
 *      removal of its last reference has reached the file;
 *   3. guest data (and copy-on-write fill) is written before the L2 entry
 *      that maps it, with a sync in between when old data was copied;
 *   4. a new L2 table is written and synced before the L1 entry;
 *   5. a new table (refcount table, L1) is written in full and synced
 *      before the header points at it, and the old one is freed after.
 * With lazy refcounts the dirty bit is set first and rule 1 is relaxed
 * (refcounts are rebuilt on the next open); rules 2 to 5 always hold.
 *
 * Every function returns 0 or a negative errno and leaves the reason in
 * img->err (eng->err).
 *
 * For other metadata code (snapshots, check -r, commit, amend):
 *   - qcow2_engine_get() then qcow2_prepare_write() before changing
 *     anything: it refuses what must not be written and brings refcounts
 *     of a dirty image up to date;
 *   - allocate with qcow2_alloc_clusters(), change refcounts with
 *     qcow2_refcount_update() (checked, ordered against the L2 cache);
 *     pin L2 tables with qcow2_cache_get() and mark them dirty, never
 *     write tables behind the caches' back;
 *   - qcow2_engine_flush() before rewriting the header or anything the
 *     caches hold, and keep eng->l1 / qcow2_state.meta in step with what
 *     is written (qcow2_header_set_* do both);
 *   - the active L1 is eng->l1 in memory; an L1 entry is written through
 *     (8 bytes) after the L2 table it names is on the file.
 */
#ifndef QIMG_CORE_QCOW2_ENGINE_H
#define QIMG_CORE_QCOW2_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qcow2.h"

/* Extended L2: 32 subclusters per cluster, 16-byte entries. */
#define QCOW2_SUBCLUSTERS 32
#define QCOW2_BITMAP_ALLOC_MASK 0x00000000ffffffffULL
#define QCOW2_BITMAP_ZERO_MASK 0xffffffff00000000ULL
/* Reserved bits of an L1 entry, of a standard L2 entry (bit 0 apart). */
#define QCOW2_L1E_RESERVED 0x7f000000000001ffULL
#define QCOW2_L2E_STD_RESERVED 0x3f000000000001feULL
#define QCOW2_REFT_RESERVED 0x00000000000001ffULL
/* Highest host offset a standard entry can hold (bits 9..55). */
#define QCOW2_MAX_HOST_OFFSET (1ULL << 56)

/* What a guest (sub)cluster is, from its L2 entry. */
enum qcow2_ctype {
	QC_UNALLOC,	 /* reads from the backing chain (or zeros) */
	QC_UNALLOC_HOST, /* extended L2: unallocated subcluster, host set */
	QC_ZERO,	 /* reads as zeros, no host cluster */
	QC_ZERO_ALLOC,	 /* reads as zeros, host cluster preallocated */
	QC_NORMAL,	 /* data at host offset */
	QC_COMPRESSED,	 /* compressed data (whole cluster) */
};

/* A run of guest bytes of one kind (qcow2_map_extent). */
struct qcow2_extent {
	enum qcow2_ctype type;
	uint64_t len;		/* bytes from the asked offset */
	uint64_t host_off;	/* QC_NORMAL/ZERO_ALLOC/UNALLOC_HOST: host
				   offset of the asked guest offset */
	uint64_t l2e;		/* raw L2 entry (first cluster of the run) */
};

struct qcow2_cache;

struct qcow2_engine {
	struct img *img;
	struct qcow2_state *s;
	struct qfile *file;	/* the qcow2 file: all metadata */
	struct qfile *data;	/* guest data: the file or the data file */
	struct qerr *err;	/* &img->err */
	bool has_data_file;	/* host offset == guest offset, no refcount */
	bool data_file_raw;	/* data file must stay a valid raw image */
	bool writable;

	unsigned cluster_bits;
	uint64_t cluster_size;
	unsigned l2_bits;	/* log2 of the entries per L2 table */
	unsigned l2_entry_bytes; /* 8, or 16 with extended L2 */
	bool extl2;
	unsigned sc_bits;	/* log2 of the subcluster size */
	unsigned csize_shift;	/* compressed descriptor: x */
	uint64_t csize_mask;	/* sector count field, after the shift */
	uint64_t coffset_mask;	/* host byte offset field */

	uint64_t *l1;		/* active L1, host order, in memory */
	uint32_t l1_size;
	uint64_t l1_offset;

	unsigned refcount_order;
	uint64_t refcount_max;
	unsigned rb_bits;	/* log2 of the entries per refcount block */
	uint64_t *reftable;	/* host order, in memory */
	uint64_t reftable_entries;
	uint64_t reftable_offset;
	uint32_t reftable_clusters;

	uint64_t free_hint;	/* no free cluster index below this one */
	uint64_t alloc_end;	/* bytes: end of every cluster ever in use */
	uint64_t phys_size;	/* bytes: length of the qcow2 file */
	uint64_t data_phys_size; /* bytes: length of the data file */
	uint64_t comp_next;	/* next free byte in the open compressed
				   cluster, 0 when none */
	bool pending_free;	/* a refcount reached 0 whose reference
				   removal may not be on disk yet */

	struct qcow2_cache *l2_cache;
	struct qcow2_cache *rb_cache;

	bool write_ready;	/* prepare_write done */
	bool lazy;		/* we set the dirty bit for lazy refcounts */
	bool failed;		/* a write failed: do not mark clean */
	/*
	 * Set by a caller that changes metadata only (snapshots) before
	 * qcow2_prepare_write: valid bitmaps stay valid and lazy refcounts
	 * are not armed; the next guest write prepares again (clear it first).
	 */
	bool keep_bitmaps;

	uint8_t *cow_buf;	/* one cluster, for copy-on-write fill */
	uint8_t *cbuf;		/* one cluster, decompressed data */
	uint64_t cbuf_l2e;	/* descriptor whose data is in cbuf, or 0 */
	uint8_t *zbuf;		/* compressed bytes (2 clusters) */
	struct crypto_ctx *crypto; /* the image's keys (not ours), or NULL */
	uint8_t *crypt_buf;	/* QCOW2_CRYPT_BUF bytes, on first use */
};

/* ---- qcow2_engine.c: lifecycle, header fields, write preparation ---- */

/*
 * The engine of img (a qcow2 image), created on first use: loads the
 * active L1 table and the refcount table and sets up the caches.
 */
int qcow2_engine_get(struct img *img, struct qcow2_engine **out);
/*
 * Flush everything, clear the dirty bit we set, free the engine.  Called
 * by the driver's close; safe when no engine exists.  Errors are left in
 * img->err.
 */
int qcow2_engine_close(struct img *img);
/* Write back both caches, in dependency order, and sync the files. */
int qcow2_engine_flush(struct qcow2_engine *eng);
/*
 * Everything a first write needs: refuse corrupt or encrypted images,
 * clear unknown autoclear bits, rebuild refcounts of a dirty image, set
 * the dirty bit for lazy refcounts.  Idempotent.
 */
int qcow2_prepare_write(struct qcow2_engine *eng);
/* Rewrite the incompatible (or autoclear) feature field in the header. */
int qcow2_header_set_incompat(struct qcow2_engine *eng, uint64_t bits);
int qcow2_header_set_autoclear(struct qcow2_engine *eng, uint64_t bits);
/* Point the header at a new refcount table; the table must be synced. */
int qcow2_header_set_reftable(struct qcow2_engine *eng, uint64_t off,
			      uint32_t clusters);
/* Point the header at a new L1 table and size; the table must be synced. */
int qcow2_header_set_l1(struct qcow2_engine *eng, uint64_t size,
			uint64_t l1_off, uint32_t l1_size);
/*
 * Metadata corruption found while working: record it in eng->err (-EIO)
 * and, when the image is writable, set the corrupt bit so nothing writes
 * it again before `check -r`.  Returns -EIO.
 */
int qcow2_corrupt(struct qcow2_engine *eng, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* File I/O that keeps phys_size current (and the fault hooks honest). */
int qcow2_pwrite(struct qcow2_engine *eng, struct qfile *f, const void *buf,
		 size_t len, uint64_t off);
int qcow2_sync(struct qcow2_engine *eng);
/* Lengthen the qcow2 file to size (a hole), never shorten it. */
int qcow2_extend(struct qcow2_engine *eng, uint64_t size);

/* ---- qcow2_refcount.c: refcount entries, allocation ---- */

/* Entry idx of a refcount block with entries of 1 << order bits. */
uint64_t qcow2_rc_get(const uint8_t *block, unsigned order, uint64_t idx);
void qcow2_rc_set(uint8_t *block, unsigned order, uint64_t idx, uint64_t v);

/*
 * Load and validate the refcount table named by the header, once; every
 * refcount function below calls it, so reads never need it.
 */
int qcow2_reftable_load(struct qcow2_engine *eng);
/* Refcount of host cluster index idx (0 beyond the refcount table). */
int qcow2_refcount_get(struct qcow2_engine *eng, uint64_t idx, uint64_t *rc);
/*
 * Allocate n contiguous free clusters (first fit from the lowest free
 * cluster, else at the end of the file) and set their refcounts to 1,
 * growing the refcount structure when needed.  *off is the byte offset.
 */
int qcow2_alloc_clusters(struct qcow2_engine *eng, uint64_t n, uint64_t *off);
/*
 * Allocate exactly the clusters [off, off + n * cluster_size) if they are
 * all free; -EEXIST (no message) when one is in use.
 */
int qcow2_alloc_clusters_at(struct qcow2_engine *eng, uint64_t off,
			    uint64_t n);
/*
 * Add delta to the refcount of every cluster touched by [off, off+len).
 * Increments must target clusters that already have a refcount block
 * (in use ones); an overflow of refcount_bits or an underflow is refused
 * before anything changes.  Decrements are ordered after the L2 changes
 * that dropped the references (rb cache depends on the L2 cache).
 */
int qcow2_refcount_update(struct qcow2_engine *eng, uint64_t off,
			  uint64_t len, int delta);
/*
 * Free every refcount block that counts nothing but, possibly, itself
 * (after a shrink): its table entry is cleared and synced before the
 * block's own refcount goes.  Callers flush the caches first.
 */
int qcow2_refblocks_trim(struct qcow2_engine *eng);
/* Drop the references a (valid) L2 entry holds: data or compressed. */
int qcow2_free_l2e(struct qcow2_engine *eng, uint64_t l2e);

/* ---- qcow2_cache.c: bounded write-back table caches ---- */

/*
 * A cache of `count` cluster-sized tables read from eng->file.  Tables are
 * pinned between get and put; only unpinned ones are evicted (written back
 * first when dirty).  Before a cache writes anything it flushes the cache
 * it depends on (written and synced), and syncs the files when
 * depends_on_flush was asked for.
 */
struct qcow2_cache *qcow2_cache_new(struct qcow2_engine *eng, size_t count,
				    const char *what);
void qcow2_cache_free(struct qcow2_cache *c);
/* Pin the table at host offset off, reading it when not cached. */
int qcow2_cache_get(struct qcow2_cache *c, uint64_t off, void **table);
/* Pin a table for a freshly allocated cluster: zero-filled, not read. */
int qcow2_cache_get_empty(struct qcow2_cache *c, uint64_t off, void **table);
void qcow2_cache_put(struct qcow2_cache *c, void **table);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table);
/* Write one table now (after the dependencies). */
int qcow2_cache_write_table(struct qcow2_cache *c, void *table);
/* Write every dirty table (after the dependencies), no sync. */
int qcow2_cache_write(struct qcow2_cache *c);
/* Write every dirty table and sync. */
int qcow2_cache_flush(struct qcow2_cache *c);
/* c must not write before dep has been flushed (cycles are broken). */
int qcow2_cache_set_dependency(struct qcow2_cache *c, struct qcow2_cache *dep);
/* c must not write before the files have been synced. */
void qcow2_cache_depends_on_flush(struct qcow2_cache *c);
/* Flush what c waits for (its dependency, a pending sync). */
int qcow2_cache_flush_deps(struct qcow2_cache *c);
/* Forget the table at off (its cluster was freed); drops dirty data. */
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t off);
/* Does a cached table lie in [off, off+len)? */
bool qcow2_cache_contains(const struct qcow2_cache *c, uint64_t off,
			  uint64_t len);
/* Forget every unpinned table and the dependency (dirty data is lost). */
void qcow2_cache_reset(struct qcow2_cache *c);
/* Bytes of table memory held (for the memory-bound test). */
size_t qcow2_cache_bytes(const struct qcow2_cache *c);
bool qcow2_cache_has_dirty(const struct qcow2_cache *c);

/* ---- qcow2_compress.c: compressed clusters ---- */

/*
 * Compress one cluster (len bytes) into dst (cap bytes) with the image's
 * compression type (zlib raw deflate, windowBits -12; or a zstd frame).
 * Returns the compressed length, or -ENOSPC when it does not fit in cap
 * (the caller stores the cluster uncompressed), or -ENOTSUP without zstd.
 */
long qcow2_compress(int type, const uint8_t *src, size_t len, uint8_t *dst,
		    size_t cap);
/*
 * Decompress src (slen bytes, may carry trailing bytes of the next
 * compressed cluster) into exactly dlen bytes of dst.  -EIO when the
 * stream is bad or produces fewer than dlen bytes.
 */
int qcow2_decompress(int type, const uint8_t *src, size_t slen, uint8_t *dst,
		     size_t dlen);
/* Build the compressed descriptor (without bit 62) for off and len bytes. */
uint64_t qcow2_cdesc_encode(unsigned cluster_bits, uint64_t off, uint64_t len);
/*
 * Decode a compressed descriptor: *off the host byte offset, *len the
 * bytes from off to the end of its last sector.
 */
void qcow2_cdesc_decode(unsigned cluster_bits, uint64_t l2e, uint64_t *off,
			uint64_t *len);

/* ---- qcow2_map.c: L1/L2 lookup and validation ---- */

/* Guest cluster index helpers. */
static inline uint64_t qcow2_l1_index(const struct qcow2_engine *eng,
				      uint64_t guest_off)
{
	return guest_off >> (eng->cluster_bits + eng->l2_bits);
}
static inline uint64_t qcow2_l2_index(const struct qcow2_engine *eng,
				      uint64_t guest_off)
{
	return (guest_off >> eng->cluster_bits) &
	       ((1ULL << eng->l2_bits) - 1);
}
static inline uint64_t qcow2_l2_get(const struct qcow2_engine *eng,
				    const uint64_t *t, uint64_t i)
{
	return be64_get((const uint8_t *)&t[i * (eng->l2_entry_bytes / 8)]);
}
static inline uint64_t qcow2_l2_bitmap(const struct qcow2_engine *eng,
				       const uint64_t *t, uint64_t i)
{
	return eng->extl2 ? be64_get((const uint8_t *)&t[i * 2 + 1]) : 0;
}
void qcow2_l2_set(const struct qcow2_engine *eng, uint64_t *t, uint64_t i,
		  uint64_t l2e, uint64_t bitmap);

/* Validate L1[idx]; *l2_off is its L2 table offset (0 unallocated). */
int qcow2_l1_entry(struct qcow2_engine *eng, uint64_t idx, uint64_t *l2_off);
/*
 * Validate the L2 entry (and bitmap) of guest offset guest_off; names the
 * entry in the error.
 */
int qcow2_l2_check(struct qcow2_engine *eng, uint64_t guest_off,
		   uint64_t l2e, uint64_t bitmap);
/* Type of the (sub)cluster holding guest_off under a validated entry. */
enum qcow2_ctype qcow2_ctype_of(const struct qcow2_engine *eng,
				uint64_t guest_off, uint64_t l2e,
				uint64_t bitmap);
/*
 * Map the run starting at guest_off (at most max_len bytes, never past
 * one L2 table or, for compressed data, one cluster): every entry it
 * covers is validated.
 */
int qcow2_map_extent(struct qcow2_engine *eng, uint64_t guest_off,
		     uint64_t max_len, struct qcow2_extent *ext);
/*
 * Read len bytes of guest data at guest_off, all inside one cluster whose
 * validated entry is l2e/bitmap (backing chain, zeros, data, compressed).
 */
int qcow2_read_in_cluster(struct qcow2_engine *eng, uint64_t guest_off,
			  uint64_t l2e, uint64_t bitmap, uint8_t *buf,
			  size_t len);
/* Read from the backing chain: zeros past its end or without one. */
int qcow2_backing_read(struct qcow2_engine *eng, uint64_t off, uint8_t *buf,
		       size_t len);
/* ---- qcow2_crypt.c: the data path ---- */

/* Bounce buffer for encryption: whole sectors, a few per cluster. */
#define QCOW2_CRYPT_BUF (1U << 20)

/*
 * The data path's two doors: every guest data byte moving between memory
 * and the data file passes here, and is decrypted or encrypted here when
 * the image is encrypted (IV from the host sector for LUKS, the guest
 * sector for legacy AES).  Reads may start and end anywhere (whole
 * sectors are read and decrypted); encrypted writes must be whole
 * sectors (qcow2_write() makes them so).  Without keys an encrypted
 * image's data is refused, never passed through.
 */
int qcow2_data_pread(struct qcow2_engine *eng, uint64_t host_off,
		     uint64_t guest_off, void *buf, size_t len);
int qcow2_data_pwrite(struct qcow2_engine *eng, uint64_t host_off,
		      uint64_t guest_off, const void *buf, size_t len);
/* The error for guest I/O on an encrypted image opened without keys. */
int qcow2_no_key(struct qcow2_engine *eng);
/*
 * Encrypted images store whole sectors: write [off, off+len) of the guest
 * by reading the partial first and last sectors, merging and writing
 * whole ones (through qcow2_write).  For qcow2_write() only.
 */
int qcow2_write_sectors_rmw(struct img *img, uint64_t off, const void *buf,
			    size_t len);

/* ---- qcow2_alloc.c: L2 tables and clusters for writes ---- */

/*
 * Pin the L2 table covering guest_off for writing: allocate it when the
 * L1 entry is empty, copy it when it is shared (not COPIED), so that the
 * table returned may be modified in place (mark it dirty).
 */
int qcow2_l2_for_write(struct qcow2_engine *eng, uint64_t guest_off,
		       uint64_t **table);
/*
 * Write guest data [off, off+len) (within one L2 table): in place where
 * the cluster is ours, copy-on-write elsewhere.
 */
int qcow2_write_l2_range(struct qcow2_engine *eng, uint64_t off,
			 const uint8_t *buf, uint64_t len);

/* ---- qcow2_rebuild.c: refcounts of a dirty image ---- */

/*
 * Recount every cluster from the header, L1/L2 tables of the active state
 * and the snapshots, and write a fresh refcount structure at the end of
 * the file (the header switched last).  Used before writing an image left
 * dirty by lazy refcounts.
 */
int qcow2_rebuild_refcounts(struct qcow2_engine *eng);

/* ---- the exported data API (qcow2_io.c) ---- */

int qcow2_read(struct img *img, uint64_t off, void *buf, size_t len);
int qcow2_write(struct img *img, uint64_t off, const void *buf, size_t len);
int qcow2_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		       unsigned flags);
int qcow2_discard(struct img *img, uint64_t off, uint64_t len);
int qcow2_block_status(struct img *img, uint64_t off, uint64_t len,
		       struct img_bstatus *st);
int qcow2_flush(struct img *img);
int qcow2_truncate(struct img *img, uint64_t size);
/*
 * Replace the active L1 table by a larger one of l1_size entries: written
 * in full and synced before the header points at it (with the header's
 * size field set to size), the old table freed after (resize).
 */
int qcow2_l1_grow(struct qcow2_engine *eng, uint64_t size, uint32_t l1_size);
/*
 * Store one guest cluster compressed (convert -c).  guest_off is cluster
 * aligned; buf holds the cluster (only min(cluster, size - guest_off)
 * bytes are read; the rest of the cluster is taken as zeros).  Data that
 * does not compress below one cluster is stored uncompressed.  Like qemu,
 * -EIO when the cluster already has a host cluster.
 */
int qcow2_write_compressed(struct img *img, uint64_t guest_off,
			   const void *buf);
/* The driver's write_compressed: whole clusters (or up to the end). */
int qcow2_write_compressed_range(struct img *img, uint64_t off, const void *buf,
				 size_t len);

#endif
