/*
 * raw.c: the raw format driver.  The guest view is the file itself; the
 * virtual size is the file length rounded up to 512 (qemu-img's rule), and
 * the bytes past the end of the file in that last sector read as zeros.
 * Creation options: size and preallocation (off, falloc, full); the new
 * file's length is the size rounded up to 512, as qemu-img makes it.
 */
#include <errno.h>
#include <string.h>

#include "core/img.h"

static const struct opt_desc raw_create_opts[] = {
	{ "size", OPT_SIZE, "Virtual disk size", NULL },
	{ "preallocation", OPT_STR,
	  "Preallocation mode (allowed values: off, falloc, full)", NULL },
	{ NULL, OPT_STR, NULL, NULL },
};

static int raw_probe(const uint8_t *buf, size_t len)
{
	return 1;	/* anything is a raw image, as a last resort */
}

/* Largest raw image we create: the ext4 file size limit qemu runs into. */
#define RAW_MAX_SIZE (16ULL << 40)

static int raw_create(const char *filename, struct optlist *opts,
		      struct qerr *e)
{
	const char *prealloc = optlist_get(opts, "preallocation");
	struct qfile *f;
	uint64_t size = 0, len;
	int ret;

	ret = optlist_get_size(opts, "size", &size, e);
	if (ret < 0)
		return ret;
	if (prealloc && strcmp(prealloc, "off") != 0 &&
	    strcmp(prealloc, "falloc") != 0 && strcmp(prealloc, "full") != 0)
		return qerr_set(e, -EINVAL,
				"Parameter 'preallocation' does not accept "
				"value '%s'",
				prealloc);
	len = (size + 511) & ~511ULL;
	if (len >= RAW_MAX_SIZE)
		return qerr_set(e, -EFBIG,
				"The image size is too large for file format "
				"'raw'");
	ret = qfile_open(&f, filename, QFILE_CREATE, e);
	if (ret < 0)
		return ret;
	ret = qfile_truncate(f, len, e);
	if (ret == 0 && prealloc && strcmp(prealloc, "falloc") == 0)
		ret = qfile_fallocate(f, 0, len, e);
	else if (ret == 0 && prealloc && strcmp(prealloc, "full") == 0)
		ret = qfile_write_zeros(f, 0, len, e);
	if (ret == 0)
		ret = qfile_flush(f, e);
	qfile_close(f);
	return ret;
}

static int raw_open(struct img *img, unsigned flags)
{
	uint64_t len;
	int ret = qfile_size(img->file, &len, &img->err);

	if (ret < 0)
		return ret;
	img->size = (len + 511) & ~511ULL;
	return 0;
}

static int raw_read(struct img *img, uint64_t off, void *buf, size_t len)
{
	return qfile_pread_zero(img->file, buf, len, off, &img->err);
}

static int raw_write(struct img *img, uint64_t off, const void *buf,
		     size_t len)
{
	return qfile_pwrite(img->file, buf, len, off, &img->err);
}

static int raw_flush(struct img *img)
{
	return qfile_flush(img->file, &img->err);
}

/*
 * Zeroing as qemu's file layer does it: with may-unmap, punch a hole (the
 * file keeps its length, and the tail past it reads as zeros anyway);
 * otherwise, or where holes are not supported, ZERO_RANGE, which grows a
 * shorter file to off+len just as writing zeros would; and writing real
 * zeros where the file system offers neither.
 */
static int raw_write_zeroes(struct img *img, uint64_t off, uint64_t len,
			    unsigned flags)
{
	int ret = -ENOTSUP;

	if (flags & IMG_ZERO_MAY_UNMAP)
		ret = qfile_punch_hole(img->file, off, len, &img->err);
	if (ret == -ENOTSUP)
		ret = qfile_zero_range(img->file, off, len, &img->err);
	if (ret == -ENOTSUP)
		ret = qfile_write_zeros(img->file, off, len, &img->err);
	return ret;
}

/* Discard is advisory: where holes cannot be punched, nothing happens. */
static int raw_discard(struct img *img, uint64_t off, uint64_t len)
{
	int ret = qfile_punch_hole(img->file, off, len, &img->err);

	return ret == -ENOTSUP ? 0 : ret;
}

/*
 * Every byte of a raw image is decided by this layer (allocated); runs the
 * file system holds as holes read as zeros, the rest as data, the guest
 * offset being the host offset.  The zero tail between the end of a file
 * whose length is not a multiple of 512 and the virtual size is a hole.
 */
static int raw_block_status(struct img *img, uint64_t off, uint64_t len,
			    struct img_bstatus *st)
{
	uint64_t run, flen;
	bool data;
	int ret = qfile_data_run(img->file, off, &data, &run, &img->err);

	if (ret == 0)
		ret = qfile_size(img->file, &flen, &img->err);
	if (ret < 0)
		return ret;
	/* A hole reaching the end of the file goes on to the virtual size. */
	if (!data && off + run >= flen)
		run = img->size - off;
	st->len = run < len ? run : len;
	st->flags = IMG_BS_ALLOCATED | IMG_BS_OFFSET |
		    (data ? IMG_BS_DATA : IMG_BS_ZERO);
	st->host_offset = off;
	st->host_file = img->filename;
	return 0;
}

/* The file takes the exact new length; the guest sees it rounded to 512. */
static int raw_truncate(struct img *img, uint64_t size)
{
	int ret;

	if (size >= RAW_MAX_SIZE)
		return qerr_set(&img->err, -EFBIG,
				"The image size is too large for file format "
				"'raw'");
	ret = qfile_truncate(img->file, size, &img->err);
	if (ret == 0)
		img->size = (size + 511) & ~511ULL;
	return ret;
}

const struct img_driver raw_driver = {
	.name = "raw",
	.probe = raw_probe,
	.create_opts = raw_create_opts,
	.create = raw_create,
	.open = raw_open,
	.read = raw_read,
	.write = raw_write,
	.flush = raw_flush,
	.write_zeroes = raw_write_zeroes,
	.discard = raw_discard,
	.block_status = raw_block_status,
	.truncate = raw_truncate,
};
