/*
 * qcow2_layout.h: place and write the metadata of a new qcow2 image exactly
 * where qemu-img 7.2 puts it (internal to qcow2 creation).
 *
 * qemu builds a new image by running its ordinary allocator: three
 * clusters (header, refcount table, one refcount block), then an L1 table,
 * then, for preallocation, L2 tables, data clusters and as many refcount
 * blocks and refcount tables as the allocations need, relocating the
 * refcount table when it fills up.  Where everything lands (and which
 * freed clusters keep stale bytes) follows from that allocator's rules, so
 * qcow2_layout_write() replays those rules on an in-memory model and
 * writes the result.  See qcow2_layout.c for the rules.
 */
#ifndef QIMG_CORE_QCOW2_LAYOUT_H
#define QIMG_CORE_QCOW2_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/file.h"
#include "core/raw.h"

struct qcow2_layout_params {
	unsigned cluster_bits;		/* 9..21 */
	unsigned refcount_order;	/* 0..6 */
	bool extended_l2;		/* 16-byte L2 entries */
	uint64_t size;			/* virtual size, a multiple of 512 */
	enum img_prealloc prealloc;
	struct qfile *file;		/* the new, empty qcow2 file */
	struct qfile *data;		/* external data file, or NULL */
	/*
	 * The LUKS area (crypto header extension), or crypto_len 0: qemu
	 * allocates it after the L1 table and any preallocation, zero-fills
	 * its clusters and writes the header into them.
	 */
	const uint8_t *crypto_hdr;
	uint64_t crypto_len;
};

/* What the header must point at once everything else is on disk. */
struct qcow2_layout_result {
	uint32_t l1_size;
	uint64_t l1_table_offset;	/* 0 when l1_size is 0 */
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint64_t crypto_offset;		/* 0 when crypto_len is 0 */
};

/*
 * Write every cluster of a new image except cluster 0 (the header, which
 * the caller writes last so that a crash never leaves a header pointing
 * at unwritten tables): refcount table(s) and blocks, L1 table, and for
 * preallocation the L2 tables and data area (falloc/full preallocate it
 * in the file, or in the data file), then the LUKS area if any.  The qcow2 file ends where qemu's
 * ends: it is not padded to a cluster.  Returns 0 or a negative errno
 * with the reason in e (-EFBIG when the image needs more metadata than
 * qcow2 allows).
 */
int qcow2_layout_write(const struct qcow2_layout_params *p,
		       struct qcow2_layout_result *r, struct qerr *e);

#endif
