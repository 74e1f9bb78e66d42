/*
 * resize.c: img_resize() (see resize.h) and the raw format's resize.
 *
 * A raw image is its file: the new length is exactly the size asked for
 * (qemu's file driver keeps odd byte counts; the guest then sees the
 * length rounded up to 512).  Growing preallocates the new area as asked;
 * shrinking truncates.  qcow2 images are handed to qcow2_resize().
 */
#include <errno.h>
#include <string.h>

#include "core/resize.h"

static int raw_resize(struct img *img, uint64_t size, enum img_prealloc mode)
{
	uint64_t cur;
	int ret;

	if (mode == IMG_PREALLOC_METADATA)
		return qerr_set(&img->err, -ENOTSUP,
				"Unsupported preallocation mode: metadata");
	ret = qfile_size(img->file, &cur, &img->err);
	if (ret == 0 && size > cur)
		ret = raw_grow_file(img->file, &cur, size, mode, &img->err);
	else if (ret == 0)
		ret = qfile_truncate(img->file, size, &img->err);
	if (ret < 0)
		return qerr_reset(&img->err, ret, "Could not resize file: %s",
				  strerror(-ret));
	img->size = (size + 511) & ~511ULL;
	return 0;
}

/* qemu's block layer refuses lengths past 2^63 - 2^30 for every format. */
#define MAX_LENGTH ((1ULL << 63) - (1ULL << 30))

int img_resize(struct img *img, uint64_t size, enum img_prealloc mode)
{
	if (!(img->flags & IMG_RDWR))
		return qerr_set(&img->err, -EROFS, "image is not writable");
	if (size > MAX_LENGTH)
		return qerr_set(&img->err, -EFBIG,
				"offset(%llu) exceeds maximum(%llu)",
				(unsigned long long)size, MAX_LENGTH);
	if (img->drv == &qcow2_driver)
		return qcow2_resize(img, size, mode);
	if (img->drv == &raw_driver)
		return raw_resize(img, size, mode);
	return qerr_set(&img->err, -ENOTSUP,
			"format '%s' does not support resizing",
			img->drv->name);
}
