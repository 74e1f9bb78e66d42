/*
 * raw.c: the raw format driver.  The guest view is the file itself; the
 * virtual size is the file length rounded up to 512 (qemu-img's rule), and
 * the bytes past the end of the file in that last sector read as zeros.
 * Creation options: size, and the file-level options qemu's file driver
 * adds (nocow, preallocation off/falloc/full, extent_size_hint); the new
 * file's length is the size rounded up to 512, as qemu-img makes it.
 */
#include <errno.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/img.h"
#include "core/raw.h"

/*
 * Formatting order: the format's size, then the file-level options in the
 * order qemu's file driver declares them.
 */
static const struct opt_desc raw_create_opts[] = {
	{ "size", OPT_SIZE, "Virtual disk size", NULL },
	{ "nocow", OPT_BOOL, "Turn off copy-on-write (valid only on btrfs)",
	  NULL },
	{ "preallocation", OPT_STR,
	  "Preallocation mode (allowed values: off, falloc, full)", NULL },
	{ "extent_size_hint", OPT_SIZE,
	  "Extent size hint for the image file, 0 to disable", NULL },
	{ NULL, OPT_STR, NULL, NULL },
};

static int raw_probe(const uint8_t *buf, size_t len)
{
	return 1;	/* anything is a raw image, as a last resort */
}

/* qemu's file driver allocates this much of a new file's start. */
#define FIRST_BLOCK 4096

int raw_grow_file(struct qfile *f, uint64_t *cur, uint64_t len,
		  enum img_prealloc mode, struct qerr *e)
{
	int ret = 0;

	if (len <= *cur)
		return 0;
	if (mode == IMG_PREALLOC_FALLOC)
		ret = qfile_fallocate(f, *cur, len - *cur, e);
	else if (mode == IMG_PREALLOC_FULL)
		ret = qfile_write_zeros(f, *cur, len - *cur, e);
	if (ret == 0)
		ret = qfile_truncate(f, len, e);
	/*
	 * Like qemu, make the first block of a new file real (qemu does it
	 * to speed up its alignment probing); failures do not matter.
	 */
	if (ret == 0 && *cur == 0 && mode != IMG_PREALLOC_FULL) {
		struct qerr ignored = { 0 };

		qfile_write_zeros(f, 0, len < FIRST_BLOCK ? 512 : FIRST_BLOCK,
				  &ignored);
	}
	if (ret == 0)
		*cur = len;
	return ret;
}

/* Parse a preallocation mode name; -EINVAL for unknown names. */
static int raw_prealloc_parse(const char *s, enum img_prealloc *mode,
			      struct qerr *e)
{
	if (!s || strcmp(s, "off") == 0)
		*mode = IMG_PREALLOC_OFF;
	else if (strcmp(s, "falloc") == 0)
		*mode = IMG_PREALLOC_FALLOC;
	else if (strcmp(s, "full") == 0)
		*mode = IMG_PREALLOC_FULL;
	else if (strcmp(s, "metadata") == 0)
		return qerr_set(e, -ENOTSUP,
				"Unsupported preallocation mode: %s", s);
	else
		return qerr_set(e, -EINVAL, "invalid parameter value: %s", s);
	return 0;
}

void raw_set_nocow(struct qfile *f)
{
	int attr = 0;

	if (ioctl(f->fd, FS_IOC_GETFLAGS, &attr) == 0) {
		attr |= FS_NOCOW_FL;
		(void)ioctl(f->fd, FS_IOC_SETFLAGS, &attr);
	}
}

/*
 * Create a raw image: size rounded up to 512 like qemu's file driver,
 * preallocation off/falloc/full, the first block allocated as qemu does.
 * extent_size_hint is validated but not applied: it only matters on XFS.
 * A file that cannot be sized (-EFBIG: the file system's limit) is
 * removed again (qemu leaves an empty file behind).
 */
static int raw_create_parse(struct optlist *opts, uint64_t *size,
			    bool *nocow, enum img_prealloc *mode,
			    struct qerr *e)
{
	uint64_t hint = 0;
	int ret;

	ret = optlist_get_size(opts, "size", size, e);
	if (ret == 0)
		ret = optlist_get_bool(opts, "nocow", nocow, e);
	if (ret == 0)
		ret = optlist_get_size(opts, "extent_size_hint", &hint, e);
	if (ret == 0)
		ret = raw_prealloc_parse(optlist_get(opts, "preallocation"),
					 mode, e);
	if (ret == 0 && hint > UINT32_MAX)
		ret = qerr_set(e, -EINVAL, "Extent size hint is too large");
	return ret;
}

static int raw_create(const char *filename, struct optlist *opts,
		      struct qerr *e)
{
	enum img_prealloc mode = IMG_PREALLOC_OFF;
	uint64_t size = 0, len, cur = 0;
	bool nocow = false;
	struct qfile *f;
	int ret;

	ret = raw_create_parse(opts, &size, &nocow, &mode, e);
	if (ret < 0 || !filename)
		return ret;
	len = (size + 511) & ~511ULL;
	ret = qfile_open(&f, filename, QFILE_CREATE, e);
	if (ret < 0)
		return ret;
	if (nocow)
		raw_set_nocow(f);
	ret = raw_grow_file(f, &cur, len, mode, e);
	if (ret == 0)
		ret = qfile_flush(f, e);
	qfile_close(f);
	if (ret < 0)
		unlink(filename);
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

/*
 * The file takes the exact new length; the guest sees it rounded to 512.
 * A failure is worded as qemu's file driver words it.
 */
static int raw_truncate(struct img *img, uint64_t size)
{
	int ret = qfile_truncate(img->file, size, &img->err);

	if (ret < 0)
		return qerr_reset(&img->err, ret, "Could not resize file: %s",
				  strerror(-ret));
	img->size = (size + 511) & ~511ULL;
	return 0;
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
