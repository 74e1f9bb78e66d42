/*
 * img.c: the generic image handle: driver table, probing, opening,
 * backing-chain following and the guest-view read/write entry points.
 *
 * Invariants: an open img always has drv and file set; img->backing is
 * either NULL or an image opened read-only whose own chain is bounded by
 * IMG_MAX_CHAIN and free of loops (checked by device and inode, so "a",
 * "./a" and a symlink to a are one image).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/img.h"

static const struct img_driver *const drivers[] = {
	&qcow2_driver,
	&raw_driver,
	NULL,
};

const struct img_driver *const *img_drivers(void)
{
	return drivers;
}

const struct img_driver *img_driver_find(const char *name)
{
	for (int i = 0; drivers[i]; i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

int img_probe(struct qfile *f, const struct img_driver **drv, struct qerr *e)
{
	uint8_t buf[512];
	uint64_t size;
	size_t len;
	int best = -1, ret;

	/* Drivers see how much of the file there is: a file too short for a
	 * header is not that format (qemu probes it as raw). */
	ret = qfile_size(f, &size, e);
	if (ret < 0)
		return ret;
	len = size < sizeof(buf) ? (size_t)size : sizeof(buf);
	ret = qfile_pread_zero(f, buf, sizeof(buf), 0, e);
	if (ret < 0)
		return ret;
	for (int i = 0; drivers[i]; i++) {
		int score = drivers[i]->probe ? drivers[i]->probe(buf, len) : 0;
		if (score > best) {
			best = score;
			*drv = drivers[i];
		}
	}
	return 0;
}

char *img_backing_path(const char *parent, const char *backing)
{
	const char *slash = strrchr(parent, '/');
	size_t dlen;
	char *out;

	/*
	 * As qemu does: absolute names and "protocol:" names stay as they
	 * are; others are appended to the parent's name up to its last '/'.
	 */
	if (backing[0] == '/' || backing[strcspn(backing, ":/")] == ':' ||
	    !slash)
		return strdup(backing);
	dlen = (size_t)(slash - parent) + 1;
	out = malloc(dlen + strlen(backing) + 1);
	if (out) {
		memcpy(out, parent, dlen);
		strcpy(out + dlen, backing);
	}
	return out;
}

static int open_backing_with(struct img *img,
			     const struct img_open_opts *o);

static int img_open_depth(struct img **out, const char *filename,
			  const char *fmt, unsigned flags, int depth,
			  const struct img_open_opts *o, struct qerr *e)
{
	static const struct img_open_opts none;
	struct img *img;
	unsigned fflags = (flags & IMG_RDWR) ? QFILE_RDWR : 0;
	int ret;

	*out = NULL;
	img = calloc(1, sizeof(*img));
	if (!img || !(img->filename = strdup(filename))) {
		free(img);
		return qerr_set(e, -ENOMEM, "out of memory");
	}
	img->flags = flags;
	img->chain_depth = depth;

	ret = qfile_open(&img->file, filename, fflags, e);
	if (ret < 0)
		goto fail;
	if (fmt) {
		img->drv = img_driver_find(fmt);
		if (!img->drv) {
			ret = qerr_set(e, -EINVAL, "Unknown file format '%s'", fmt);
			goto fail;
		}
	} else {
		ret = img_probe(img->file, &img->drv, e);
		if (ret < 0)
			goto fail;
	}
	img->open_opts = o ? o : &none;
	ret = img->drv->open(img, flags);
	if (ret < 0) {
		qerr_set(e, ret, "%s", qerr_msg(&img->err));
		goto fail;
	}
	if (!(flags & IMG_NO_BACKING)) {
		ret = open_backing_with(img, img->open_opts);
		if (ret < 0) {
			qerr_set(e, ret, "%s", qerr_msg(&img->err));
			goto fail;
		}
	}
	img->open_opts = NULL;
	*out = img;
	return 0;
fail:
	img_close(img);
	return ret;
}

int img_open(struct img **out, const char *filename, const char *fmt,
	     unsigned flags, struct qerr *e)
{
	return img_open_depth(out, filename, fmt, flags, 0, NULL, e);
}

int img_open_with(struct img **out, const char *filename, const char *fmt,
		  unsigned flags, const struct img_open_opts *o,
		  struct qerr *e)
{
	return img_open_depth(out, filename, fmt, flags, 0, o, e);
}

/* Is st's file already img or one of the images above it? */
static bool chain_has_file(const struct img *img, const struct stat *st)
{
	for (; img; img = img->parent) {
		struct stat cur;

		if (fstat(img->file->fd, &cur) == 0 &&
		    cur.st_dev == st->st_dev && cur.st_ino == st->st_ino)
			return true;
	}
	return false;
}

/*
 * Open img's backing chain; o: the options img was opened with (NULL:
 * none), whose .backing are the backing image's, and whose keys_from
 * lends its own backing image's keys to ours.
 */
static int open_backing_with(struct img *img, const struct img_open_opts *o)
{
	struct img_open_opts bo = { 0 };
	struct qerr be = { 0 };
	struct stat st;
	char *path;
	int ret;

	if (o && o->backing)
		bo = *o->backing;
	if (o && o->keys_from)
		bo.keys_from = o->keys_from->backing;

	if (!img->backing_name || img->backing)
		return 0;
	if (img->chain_depth + 1 >= IMG_MAX_CHAIN)
		return qerr_set(&img->err, -ELOOP,
				"backing chain is deeper than %d images",
				IMG_MAX_CHAIN);
	path = img_backing_path(img->filename, img->backing_name);
	if (!path)
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	if (stat(path, &st) == 0 && chain_has_file(img, &st)) {
		ret = qerr_set(&img->err, -ELOOP,
			       "Backing file '%s' creates an infinite loop",
			       path);
		free(path);
		return ret;
	}
	ret = img_open_depth(&img->backing, path, img->backing_fmt,
			     IMG_NO_BACKING | (img->flags & IMG_NO_IO),
			     img->chain_depth + 1, &bo, &be);
	if (ret < 0) {
		qerr_set(&img->err, ret, "could not open backing file: %s",
			 qerr_msg(&be));
		free(path);
		return ret;
	}
	free(path);
	img->backing->parent = img;
	ret = open_backing_with(img->backing, &bo);
	if (ret < 0)
		qerr_set(&img->err, ret, "%s", qerr_msg(&img->backing->err));
	return ret;
}

int img_open_backing(struct img *img)
{
	return open_backing_with(img, NULL);
}

void img_close(struct img *img)
{
	if (!img)
		return;
	if (img->backing)
		img_close(img->backing);
	if (img->drv && img->drv->close && img->file)
		img->drv->close(img);
	qfile_close(img->file);
	free(img->backing_name);
	free(img->backing_fmt);
	free(img->filename);
	free(img);
}

static int img_check_range(struct img *img, const char *op, uint64_t off,
			   uint64_t len);
static int img_check_writable(struct img *img);
static int img_unsupported(struct img *img, const char *op);

int img_read(struct img *img, uint64_t off, void *buf, size_t len)
{
	if (!img->drv->read)
		return qerr_set(&img->err, -ENOTSUP,
				"format '%s' cannot be read", img->drv->name);
	int ret = img_check_range(img, "read", off, len);

	return ret ? ret : img->drv->read(img, off, buf, len);
}

int img_write(struct img *img, uint64_t off, const void *buf, size_t len)
{
	int ret = img_check_writable(img);

	if (ret == 0)
		ret = img_check_range(img, "write", off, len);
	if (ret == 0 && !img->drv->write)
		ret = img_unsupported(img, "writing");
	return ret ? ret : img->drv->write(img, off, buf, len);
}

int img_flush(struct img *img)
{
	if (img->drv->flush)
		return img->drv->flush(img);
	return qfile_flush(img->file, &img->err);
}

/* Is [off, off+len) inside the image?  Sets an error naming op if not. */
static int img_check_range(struct img *img, const char *op, uint64_t off,
			   uint64_t len)
{
	if (off > img->size || len > img->size - off)
		return qerr_set(&img->err, -EINVAL,
				"%s of %llu bytes at offset %llu is past the "
				"end of the image",
				op, (unsigned long long)len,
				(unsigned long long)off);
	return 0;
}

static int img_check_writable(struct img *img)
{
	if (!(img->flags & IMG_RDWR))
		return qerr_set(&img->err, -EROFS, "image is not writable");
	return 0;
}

static int img_unsupported(struct img *img, const char *op)
{
	return qerr_set(&img->err, -ENOTSUP, "format '%s' does not support %s",
			img->drv->name, op);
}

int img_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		     unsigned flags)
{
	int ret = img_check_writable(img);

	if (ret == 0)
		ret = img_check_range(img, "write", off, len);
	if (ret == 0 && !img->drv->write_zeroes)
		ret = img_unsupported(img, "writing zeros");
	return ret ? ret : img->drv->write_zeroes(img, off, len, flags);
}

int img_discard(struct img *img, uint64_t off, uint64_t len)
{
	int ret = img_check_writable(img);

	if (ret == 0)
		ret = img_check_range(img, "discard", off, len);
	if (ret == 0 && !img->drv->discard)
		ret = img_unsupported(img, "discard");
	return ret ? ret : img->drv->discard(img, off, len);
}

int img_block_status(struct img *img, uint64_t off, uint64_t len,
		     struct img_bstatus *st)
{
	int ret = img_check_range(img, "block status", off, len);

	memset(st, 0, sizeof(*st));
	if (ret == 0 && !img->drv->block_status)
		ret = img_unsupported(img, "block status");
	return ret ? ret : img->drv->block_status(img, off, len, st);
}

int img_truncate(struct img *img, uint64_t size)
{
	int ret = img_check_writable(img);

	if (ret == 0 && !img->drv->truncate)
		ret = img_unsupported(img, "resizing");
	return ret ? ret : img->drv->truncate(img, size);
}

int img_write_compressed(struct img *img, uint64_t off, const void *buf,
			 size_t len)
{
	int ret = img_check_writable(img);

	if (ret == 0)
		ret = img_check_range(img, "write", off, len);
	if (ret == 0 && !img->drv->write_compressed)
		ret = img_unsupported(img, "compression");
	return ret ? ret : img->drv->write_compressed(img, off, buf, len);
}

int img_info_get(struct img *img, struct img_info *info)
{
	memset(info, 0, sizeof(*info));
	info->format = img->drv->name;
	info->filename = strdup(img->filename);
	info->virtual_size = img->size;
	if (!info->filename)
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	if (qfile_allocated(img->file, &info->actual_size, &img->err) == 0)
		info->has_actual_size = true;
	qerr_clear(&img->err);
	if (img->backing_name) {
		info->backing_file = strdup(img->backing_name);
		info->full_backing_file =
			img_backing_path(img->filename, img->backing_name);
		if (!info->backing_file || !info->full_backing_file)
			return qerr_set(&img->err, -ENOMEM, "out of memory");
	}
	if (img->backing_fmt && !(info->backing_fmt = strdup(img->backing_fmt)))
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	if (img->drv->info)
		return img->drv->info(img, info);
	return 0;
}

void img_info_free(struct img_info *info)
{
	for (size_t i = 0; i < info->nb_snapshots; i++) {
		free(info->snapshots[i].id);
		free(info->snapshots[i].name);
	}
	free(info->snapshots);
	free(info->filename);
	free(info->backing_file);
	free(info->full_backing_file);
	free(info->backing_fmt);
	kv_free(info->format_specific);
	memset(info, 0, sizeof(*info));
}
