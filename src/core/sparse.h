/*
 * sparse.h: zero detection for sparse output (convert -S).
 *
 * sparse_scan() splits a buffer of 512-byte sectors into runs to write
 * (data) and runs to skip (zeros), with qemu-img 7.2's meaning of -S:
 *   - zeros at the start or at the end of the buffer are skipped whatever
 *     their length; zeros between data are skipped only when the run is at
 *     least `min` sectors long, so small holes do not split a write;
 *   - run boundaries fall on multiples of `align` sectors (counted from the
 *     image start): a data run is extended to the next boundary, a zero run
 *     is cut back to the previous one, and a zero run that cannot reach a
 *     boundary is data (the write would have to cover it anyway).
 * `align` is a power of two: the largest power of two <= min, or the
 * target's cluster, whichever is larger, so skipped zero runs are always
 * whole target clusters and no write is split inside one.
 */
#ifndef QIMG_CORE_SPARSE_H
#define QIMG_CORE_SPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECTOR_SIZE 512

struct sparse_run {
	uint32_t start;		/* first sector, relative to the buffer */
	uint32_t len;		/* sectors */
	bool data;		/* write it (true) or skip it as zeros */
};

/* Does buf hold only zero bytes? Fast on data (stops at the first word). */
bool buf_is_zero(const void *buf, size_t len);

/*
 * Split nsect sectors of buf, the first being image sector first_sector,
 * into alternating runs (adjacent runs differ in kind; together they cover
 * the buffer in order).  runs must have room for nsect entries.  min >= 1
 * and align >= 1 (a power of two) are in sectors.  Returns the number of
 * runs.
 */
size_t sparse_scan(const uint8_t *buf, uint32_t nsect, uint64_t first_sector,
		   uint32_t min, uint32_t align, struct sparse_run *runs);

/* The largest power of two <= v (v >= 1). */
uint64_t pow2_floor(uint64_t v);

#endif
