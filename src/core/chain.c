/*
 * chain.c: block status through a backing chain (see chain.h).
 *
 * Invariants: the run returned never crosses a change of deciding layer or
 * of status, is never longer than asked, and is > 0 bytes whenever
 * off < top->size, so callers that advance by st->len always make
 * progress.  Layers are visited top down at most once per call; the chain
 * depth is bounded by img_open (IMG_MAX_CHAIN).
 */
#include <errno.h>
#include <string.h>

#include "core/chain.h"

int chain_layer_status(struct img *layer, uint64_t off, uint64_t len,
		       struct img_bstatus *st)
{
	int ret;

	if (layer->drv->block_status) {
		ret = img_block_status(layer, off, len, st);
		if (ret == 0 && (st->len == 0 || st->len > len))
			return qerr_set(&layer->err, -EIO,
					"block status at offset %llu returned "
					"a run of %llu bytes",
					(unsigned long long)off,
					(unsigned long long)st->len);
		return ret;
	}
	memset(st, 0, sizeof(*st));
	st->len = len;
	st->flags = IMG_BS_DATA | IMG_BS_ALLOCATED;
	return 0;
}

int chain_block_status(struct img *top, const struct img *base, uint64_t off,
		       uint64_t len, struct chain_status *st)
{
	struct img *layer = top;
	struct img_bstatus bs;
	int depth = 0, ret;

	memset(st, 0, sizeof(*st));
	if (off >= top->size)
		return 0;
	if (len > top->size - off)
		len = top->size - off;
	for (;;) {
		if (layer == base) {		/* reads from base */
			st->len = len;
			st->depth = depth;
			return 0;
		}
		if (off >= layer->size) {	/* past a shorter backing file */
			st->len = len;
			st->flags = IMG_BS_ZERO;
			st->depth = depth;
			return 0;
		}
		if (len > layer->size - off)
			len = layer->size - off;
		ret = chain_layer_status(layer, off, len, &bs);
		if (ret < 0) {
			st->layer = layer;
			st->depth = depth;
			return ret;
		}
		len = bs.len;
		if (bs.flags & IMG_BS_ALLOCATED) {
			st->len = len;
			st->flags = bs.flags;
			st->depth = depth;
			st->layer = layer;
			return 0;
		}
		if (!layer->backing) {		/* bottom: reads as zeros */
			st->len = len;
			st->flags = IMG_BS_ZERO;
			st->depth = depth;
			return 0;
		}
		layer = layer->backing;
		depth++;
	}
}
