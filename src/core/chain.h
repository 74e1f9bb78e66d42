/*
 * chain.h: block status through a whole backing chain.
 *
 * A guest range of an image reads from the first layer, top down, that
 * allocates it; past the bottom (or past the end of a shorter backing
 * file) it reads as zeros.  chain_block_status() answers "what does this
 * range read as, and which layer decides" for convert, rebase and compare,
 * so none of them reads unallocated or zero ranges.
 *
 * Raw layers report their file's holes (SEEK_HOLE/SEEK_DATA) as zeros and
 * the rest as data, both allocated in the raw layer.  A layer whose driver
 * has no block status is all data.
 */
#ifndef QIMG_CORE_CHAIN_H
#define QIMG_CORE_CHAIN_H

#include <stdint.h>

#include "core/img.h"

struct chain_status {
	uint64_t len;		/* length of the run, > 0 unless off == size */
	unsigned flags;		/* enum img_bs_flags of the deciding layer */
	int depth;		/* deciding layer: 0 = top, 1 = its backing... */
	struct img *layer;	/* deciding layer, or NULL (zeros past the
				   chain's bottom, or unallocated above base) */
};

/*
 * Status of the run starting at off (at most len bytes, within top->size)
 * as read through top's chain down to, but not including, base (NULL: the
 * whole chain).  Sets st->flags to:
 *   IMG_BS_DATA|IMG_BS_ALLOCATED (+OFFSET...)  a layer holds data;
 *   IMG_BS_ZERO|IMG_BS_ALLOCATED              a layer says zeros;
 *   IMG_BS_ZERO                               nothing allocates it and
 *                                             it reads as zeros;
 *   0                                         unallocated above base
 *                                             (reads from base).
 * Returns 0 or a negative errno with the reason in the failing layer's
 * img->err (st->layer is that layer).
 */
int chain_block_status(struct img *top, const struct img *base, uint64_t off,
		       uint64_t len, struct chain_status *st);

/*
 * Status of the run at off (at most len bytes) in one layer only (no
 * backing), all data when the driver cannot tell.
 */
int chain_layer_status(struct img *layer, uint64_t off, uint64_t len,
		       struct img_bstatus *st);

#endif
