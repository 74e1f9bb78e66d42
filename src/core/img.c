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
#include <libgen.h>
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
	int best = -1, ret;

	ret = qfile_pread_zero(f, buf, sizeof(buf), 0, e);
	if (ret < 0)
		return ret;
	for (int i = 0; drivers[i]; i++) {
		int score = drivers[i]->probe ? drivers[i]->probe(buf, sizeof(buf)) : 0;
		if (score > best) {
			best = score;
			*drv = drivers[i];
		}
	}
	return 0;
}

char *img_backing_path(const char *parent, const char *backing)
{
	char *copy, *dir, *out;
	size_t len;

	if (backing[0] == '/' || !strchr(parent, '/'))
		return strdup(backing);
	copy = strdup(parent);
	if (!copy)
		return NULL;
	dir = dirname(copy);
	len = strlen(dir) + 1 + strlen(backing) + 1;
	out = malloc(len);
	if (out)
		snprintf(out, len, "%s/%s", dir, backing);
	free(copy);
	return out;
}

static int img_open_depth(struct img **out, const char *filename,
			  const char *fmt, unsigned flags, int depth,
			  struct qerr *e)
{
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
	ret = img->drv->open(img, flags);
	if (ret < 0) {
		qerr_set(e, ret, "%s", qerr_msg(&img->err));
		goto fail;
	}
	if (!(flags & IMG_NO_BACKING)) {
		ret = img_open_backing(img);
		if (ret < 0) {
			qerr_set(e, ret, "%s", qerr_msg(&img->err));
			goto fail;
		}
	}
	*out = img;
	return 0;
fail:
	img_close(img);
	return ret;
}

int img_open(struct img **out, const char *filename, const char *fmt,
	     unsigned flags, struct qerr *e)
{
	return img_open_depth(out, filename, fmt, flags, 0, e);
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

int img_open_backing(struct img *img)
{
	struct qerr be = { 0 };
	struct stat st;
	char *path;
	int ret;

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
			     IMG_NO_BACKING, img->chain_depth + 1, &be);
	if (ret < 0) {
		qerr_set(&img->err, ret, "could not open backing file: %s",
			 qerr_msg(&be));
		free(path);
		return ret;
	}
	free(path);
	img->backing->parent = img;
	ret = img_open_backing(img->backing);
	if (ret < 0)
		qerr_set(&img->err, ret, "%s", qerr_msg(&img->backing->err));
	return ret;
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

int img_read(struct img *img, uint64_t off, void *buf, size_t len)
{
	if (!img->drv->read)
		return qerr_set(&img->err, -ENOTSUP,
				"format '%s' cannot be read", img->drv->name);
	if (off > img->size || len > img->size - off)
		return qerr_set(&img->err, -EINVAL,
				"read of %zu bytes at offset %llu is past the "
				"end of the image",
				len, (unsigned long long)off);
	return img->drv->read(img, off, buf, len);
}

int img_write(struct img *img, uint64_t off, const void *buf, size_t len)
{
	if (!img->drv->write || !(img->flags & IMG_RDWR))
		return qerr_set(&img->err, -EROFS, "image is not writable");
	if (off > img->size || len > img->size - off)
		return qerr_set(&img->err, -EINVAL,
				"write of %zu bytes at offset %llu is past the "
				"end of the image",
				len, (unsigned long long)off);
	return img->drv->write(img, off, buf, len);
}

int img_flush(struct img *img)
{
	if (img->drv->flush)
		return img->drv->flush(img);
	return qfile_flush(img->file, &img->err);
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
