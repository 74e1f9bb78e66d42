/*
 * sparse.c: zero detection for sparse output (see sparse.h for the
 * meaning, which is qemu-img 7.2's "-S").
 *
 * The scan works in two levels: same_run() finds the run of sectors that
 * are all zero or all non-zero at the start of the buffer and aligns its
 * end; data_or_zeros() then grows a data run across zero runs shorter than
 * min.  Every sector is scanned at most twice.
 */
#include <string.h>

#include "core/sparse.h"

bool buf_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t acc = 0;
	size_t i = 0;

	/* Data usually shows in the first bytes: test them alone first. */
	for (; i < len && i < 16; i++)
		if (p[i])
			return false;
	for (; i + 64 <= len; i += 64) {
		uint64_t w[8];

		memcpy(w, p + i, sizeof(w));
		acc = w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
		if (acc)
			return false;
	}
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

uint64_t pow2_floor(uint64_t v)
{
	uint64_t p = 1;

	while (p <= v / 2)
		p *= 2;
	return p;
}

static bool sector_is_zero(const uint8_t *buf, uint32_t i)
{
	return buf_is_zero(buf + (size_t)i * SECTOR_SIZE, SECTOR_SIZE);
}

/*
 * The run of like sectors at the start of buf (n > 0 sectors, first one
 * at image sector s), with its end moved to an alignment boundary as
 * sparse.h describes.  Sets *cnt; returns true for data.
 */
static bool same_run(const uint8_t *buf, uint32_t n, uint64_t s,
		     uint32_t align, uint32_t *cnt)
{
	bool zero = sector_is_zero(buf, 0);
	uint32_t i = 1, tail;

	while (i < n && sector_is_zero(buf, i) == zero)
		i++;
	if (i == n) {		/* the whole rest is alike: no need to align */
		*cnt = n;
		return !zero;
	}
	tail = (uint32_t)((s + i) & (align - 1));
	if (tail) {
		if (zero && i <= tail)
			zero = false;	/* data follows within the same unit */
		if (zero) {
			i -= tail;
		} else {
			i += align - tail;
			if (i > n)
				i = n;
		}
	}
	*cnt = i;
	return !zero;
}

/*
 * One write request: a leading zero run is returned as zeros; a leading
 * data run is grown over following zero runs shorter than min.
 */
static bool data_or_zeros(const uint8_t *buf, uint32_t n, uint64_t s,
			  uint32_t min, uint32_t align, uint32_t *cnt)
{
	uint32_t used, checked, c;

	if (min > n)
		min = n;
	if (!same_run(buf, n, s, align, &c)) {
		*cnt = c;
		return false;
	}
	used = checked = c;
	while (checked < n) {
		bool data = same_run(buf + (size_t)checked * SECTOR_SIZE,
				     n - checked, s + checked, align, &c);

		checked += c;
		if (data)
			used = checked;
		else if (c >= min)
			break;
	}
	*cnt = used;
	return true;
}

size_t sparse_scan(const uint8_t *buf, uint32_t nsect, uint64_t first_sector,
		   uint32_t min, uint32_t align, struct sparse_run *runs)
{
	size_t nruns = 0;
	uint32_t pos = 0;

	while (pos < nsect) {
		uint32_t cnt;
		bool data = data_or_zeros(buf + (size_t)pos * SECTOR_SIZE,
					  nsect - pos, first_sector + pos, min,
					  align, &cnt);

		if (nruns && runs[nruns - 1].data == data) {
			runs[nruns - 1].len += cnt;
		} else {
			runs[nruns].start = pos;
			runs[nruns].len = cnt;
			runs[nruns].data = data;
			nruns++;
		}
		pos += cnt;
	}
	return nruns;
}
