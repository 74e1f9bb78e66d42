/*
 * qcow2.h: qcow2 on-disk constants, the parsed header with its extensions,
 * and the functions the qcow2 files share.
 *
 * Spec: QEMU docs/interop/qcow2.txt (digest and traps in
 * shared/docs/QCOW2-NOTES.md).  All on-disk integers are big-endian.
 *
 * struct qcow2_meta is everything cluster 0 says: the fixed header (v2: 72
 * bytes, v3: header_length >= 104), the header extensions, and the backing
 * file name.  Parsing validates every field before anything uses it, so
 * code holding a qcow2_meta may trust: cluster_bits in 9..21, sizes that do
 * not overflow when multiplied, table offsets cluster-aligned, tables that
 * fit qemu's limits.  Unknown header bytes and unknown extensions are kept
 * so that rewriting the header preserves them byte for byte.
 */
#ifndef QIMG_CORE_QCOW2_H
#define QIMG_CORE_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/img.h"

#define QCOW2_MAGIC 0x514649fbU		/* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104		/* without compression_type */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_L1_BYTES (32U << 20)		/* qemu's L1 table cap */
#define QCOW2_MAX_REFTABLE_BYTES (8U << 20)	/* qemu's refcount table cap */
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAPSHOT_TABLE (64U << 20)	/* qemu's snapshot table cap */
#define QCOW2_MAX_BITMAPS 65535
#define QCOW2_MAX_BITMAP_DIR (64U << 20)

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1fULL
/* Compatible feature bits. */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
/* Autoclear feature bits. */
#define QCOW2_AUTOCLEAR_BITMAPS (1ULL << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ULL << 1)
#define QCOW2_AUTOCLEAR_KNOWN 0x3ULL

/* Header extension types. */
#define QCOW2_EXT_END 0x00000000U
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857U
#define QCOW2_EXT_BITMAPS 0x23852875U
#define QCOW2_EXT_CRYPTO 0x0537be77U
#define QCOW2_EXT_DATA_FILE 0x44415441U

#define QCOW2_CRYPT_NONE 0
#define QCOW2_CRYPT_AES 1
#define QCOW2_CRYPT_LUKS 2

#define QCOW2_COMPRESSION_ZLIB 0
#define QCOW2_COMPRESSION_ZSTD 1

/* L1/L2 entry bits. */
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_ZERO (1ULL << 0)
#define QCOW2_L1E_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_L2E_OFFSET_MASK 0x00fffffffffffe00ULL

/* The fixed header fields (v2 fields, then the v3 additions). */
struct qcow2_header {
	uint32_t magic;
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	/* v3 (v2 images get the v2 implied values: refcount_order 4, ...) */
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;	/* byte 104 when header_length > 104 */
};

/* One entry of the feature name table extension. */
struct qcow2_feature {
	uint8_t type;		/* 0 incompatible, 1 compatible, 2 autoclear */
	uint8_t bit;
	char name[47];		/* NUL-terminated copy of the 46-byte field */
};

/* An extension this code does not interpret, kept verbatim. */
struct qcow2_ext {
	uint32_t type;
	uint32_t len;
	uint8_t *data;
};

struct qcow2_meta {
	struct qcow2_header h;
	/* Header bytes past the fields we know (header_length > 112). */
	uint8_t *extra_header;
	size_t extra_header_len;

	char *backing_file;	/* NULL when none */
	char *backing_fmt;	/* backing format extension, or NULL */
	char *data_file;	/* external data file extension, or NULL */

	bool has_crypto_ext;
	uint64_t crypto_offset;	/* full-disk-encryption header location */
	uint64_t crypto_length;

	bool has_bitmaps_ext;
	uint32_t nb_bitmaps;
	uint64_t bitmap_dir_size;
	uint64_t bitmap_dir_offset;

	struct qcow2_feature *features;	/* feature name table, if present */
	size_t nb_features;
	/* Whether a feature name table extension was present at all. */
	bool has_feature_table;

	struct qcow2_ext *unknown;	/* unknown extensions, in file order */
	size_t nb_unknown;
};

/*
 * The qcow2 driver's state (img->priv).  qcow2.c's open fills the header
 * part; the engine (L1/L2 mapping, refcounts, caches) hangs its state off
 * `engine`, so the reader and the engine can grow independently.
 */
struct qcow2_engine;

struct crypto_ctx;

struct qcow2_state {
	struct qcow2_meta meta;
	uint64_t cluster_size;
	uint64_t file_size;		/* length of the qcow2 file at open */
	struct qfile *data_file;	/* external data file, or NULL */
	struct qcow2_engine *engine;	/* NULL until the engine is opened */
	/* Keys for guest data of an encrypted image; NULL: none given. */
	struct crypto_ctx *crypto;
};

/* Derived geometry, computed once from a validated header. */
static inline uint64_t qcow2_cluster_size(const struct qcow2_header *h)
{
	return 1ULL << h->cluster_bits;
}

/*
 * Parse cluster 0.  buf holds the first min(cluster size, file size) bytes
 * of the file (at least 4 KiB when the file is that long); file_size is the
 * file's length, used to reject tables and names that lie past its end.
 * Validates every field (see the traps in QCOW2-NOTES.md) and names the
 * offending field and value in e.  On success the caller owns m and frees
 * it with qcow2_meta_free().  Never allocates more than the header itself
 * can justify (extension data is bounded by the cluster).
 */
int qcow2_meta_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		     struct qcow2_meta *m, struct qerr *e);

/*
 * Read cluster 0 of f and parse it (qcow2_meta_parse).
 */
int qcow2_meta_read(struct qfile *f, struct qcow2_meta *m, struct qerr *e);
/*
 * The same for check (IMG_CHECK): the refcount, snapshot and L1 tables may
 * lie past the end of the file, as qemu opens such images; the check then
 * reports them (their bytes read as zeros).
 */
int qcow2_meta_read_check(struct qfile *f, struct qcow2_meta *m,
			  struct qerr *e);

/*
 * Serialize m into buf (cap bytes, normally one cluster, zero-filled by
 * this function first): the header (v2: 72 bytes; v3: header_length bytes
 * including compression_type and extra_header), then the extensions in
 * qemu's order (backing format, external data file, crypto header pointer,
 * feature name table when m->has_feature_table, bitmaps, the unknown ones
 * in their original order), the end marker, and the backing file name.
 * Sets m->h.backing_file_offset/size to where the name landed.  -ENOSPC
 * when it does not fit in cap.
 */
int qcow2_meta_serialize(struct qcow2_meta *m, uint8_t *buf, size_t cap,
			 struct qerr *e);

/*
 * Creation (qcow2_create.c): the options qemu-img 7.2 lists for qcow2, in
 * the order its "Formatting ..." line prints them, and the create entry
 * point of qcow2_driver.
 */
extern const struct opt_desc qcow2_create_opts[];
int qcow2_create(const char *filename, struct optlist *opts, struct qerr *e);

/* Fill m->features with the 8 features qemu 7.2 lists; sets has_feature_table. */
int qcow2_meta_set_default_features(struct qcow2_meta *m);

void qcow2_meta_free(struct qcow2_meta *m);

/*
 * Check (qcow2_check.c): the qcow2 driver's check entry (core/check.h):
 * metadata consistency as qemu-img 7.2 checks it, repairs with o->fix,
 * --data reads.
 */
int qcow2_check(struct img *img, const struct check_opts *o,
		struct check_result *r);

/* Big-endian helpers. */
static inline uint16_t be16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be64_get(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}
static inline void be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

/*
 * Snapshot table (qcow2_snapshot.c): read the table named by the header,
 * bounded by nb_snapshots <= 65536 and the table fitting in the file, and
 * convert it to struct img_snapshot (ids and names NUL-terminated, invalid
 * lengths refused).  *out is malloc'd; free each id/name and the array.
 */
int qcow2_snapshots_read(struct qfile *f, const struct qcow2_meta *m,
			 uint64_t file_size, struct img_snapshot **out,
			 size_t *count, struct qerr *e);

/*
 * Bitmap directory (qcow2_bitmap.c): read the directory named by the
 * bitmaps extension and add qemu-img's "bitmaps" array (flags, name,
 * granularity) to data.  Bounded by the extension's size and count.
 */
int qcow2_bitmaps_info(struct qfile *f, const struct qcow2_meta *m,
		       uint64_t file_size, struct kv *data, struct qerr *e);

/*
 * LUKS header (luks_header.c): read the LUKS1 header at the crypto
 * extension's offset and add qemu-img's "encrypt" object (format luks,
 * cipher alg, cipher mode, ivgen alg, ivgen hash alg, hash alg, uuid,
 * payload offset, master key iters, slots) to data.  Needs no secret.
 */
int luks_info(struct qfile *f, uint64_t offset, uint64_t length,
	      uint64_t file_size, struct kv *data, struct qerr *e);

#endif
