/*
 * raw.h: what qcow2 creation shares with the raw driver: growing a plain
 * file the way qemu's file driver does, with a preallocation mode.
 */
#ifndef QIMG_CORE_RAW_H
#define QIMG_CORE_RAW_H

#include <stdint.h>

#include "core/err.h"
#include "core/file.h"

enum img_prealloc {
	IMG_PREALLOC_OFF,
	IMG_PREALLOC_METADATA,	/* qcow2 only */
	IMG_PREALLOC_FALLOC,
	IMG_PREALLOC_FULL,
};

/*
 * Grow f from *cur to len bytes (nothing when len <= *cur) like qemu's
 * file driver: off truncates sparsely, falloc uses posix_fallocate, full
 * writes zeros.  When the file was empty, off and falloc also write zeros
 * over its first block (4 KiB, or 512 bytes for files under 4 KiB), so a
 * new image shows qemu's "disk size" and may grow to 512 bytes.  *cur is
 * the new length on success.
 */
int raw_grow_file(struct qfile *f, uint64_t *cur, uint64_t len,
		  enum img_prealloc mode, struct qerr *e);

/* nocow=on: best effort, as in qemu (only btrfs knows the flag). */
void raw_set_nocow(struct qfile *f);

#endif
