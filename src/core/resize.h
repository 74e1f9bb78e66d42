/*
 * resize.h: changing an image's virtual size (qemu-img resize, and the
 * qcow2 driver's truncate).
 *
 * img_resize() is the one entry point: raw images change their file's
 * length (ftruncate, posix_fallocate or written zeros for the new area),
 * qcow2 images go through qcow2_resize().  Callers check qemu-img's policy
 * first (positive sizes, --shrink, preallocation only when growing); the
 * core enforces what the format requires and keeps the image consistent
 * at every step: a crash in the middle leaves the old or the new size and
 * at worst leaked clusters.
 */
#ifndef QIMG_CORE_RESIZE_H
#define QIMG_CORE_RESIZE_H

#include <stdint.h>

#include "core/img.h"
#include "core/raw.h"

/*
 * Resize img (opened read-write) to size bytes.  Growing makes the new
 * area read as zeros, whatever a longer backing file holds there, and
 * preallocates it as mode asks (raw: off, falloc, full; qcow2: also
 * metadata).  Shrinking drops everything past the new end.  Returns 0 or
 * a negative errno with the reason in img->err.
 */
int img_resize(struct img *img, uint64_t size, enum img_prealloc mode);

/*
 * The qcow2 part (qcow2_resize.c): size must be a multiple of 512; v2
 * images with internal snapshots are refused; growing enlarges the L1
 * table (a new table written in full and synced before the header points
 * at it, the old one freed after); shrinking frees the clusters past the
 * new end and truncates the file past the last cluster in use.  Every
 * other header field and extension is left as it is.
 */
int qcow2_resize(struct img *img, uint64_t size, enum img_prealloc mode);

#endif
