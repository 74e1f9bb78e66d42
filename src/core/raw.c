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

const struct img_driver raw_driver = {
	.name = "raw",
	.probe = raw_probe,
	.create_opts = raw_create_opts,
	.create = raw_create,
	.open = raw_open,
	.read = raw_read,
	.write = raw_write,
};
