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

const struct img_driver raw_driver = {
	.name = "raw",
	.probe = raw_probe,
	.create_opts = raw_create_opts,
	.create = raw_create,
	.open = raw_open,
	.read = raw_read,
	.write = raw_write,
};
