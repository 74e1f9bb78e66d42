/*
 * rebase.h: changing the backing file of an image (qemu-img rebase).
 *
 * Safe mode (rebase_copy, then img_set_backing) keeps the guest-visible
 * content: wherever the image itself does not decide the content and the
 * old backing chain and the new backing file read differently, the old
 * content is copied into the image first; only then does the header name
 * the new backing file.  Unsafe mode (-u) is img_set_backing alone.
 */
#ifndef QIMG_CORE_REBASE_H
#define QIMG_CORE_REBASE_H

#include <stdint.h>

#include "core/img.h"

struct rebase_params {
	struct img *img;	/* opened read-write, with its old chain */
	/*
	 * The new backing image with its chain, or NULL for none (-b "").
	 * It may be a layer of img's old chain (rebasing onto a grandparent
	 * reuses it): then ranges no layer above it allocates are skipped.
	 */
	struct img *new_backing;
	/* Called with bytes done of total after each block (may be NULL). */
	void (*progress)(void *opaque, uint64_t done, uint64_t total);
	void *opaque;
};

/*
 * Copy into p->img every cluster whose content the switch from the old
 * chain to p->new_backing would change.  Only ranges the image does not
 * allocate and that some layer of either chain allocates are read (block
 * status first), in blocks of several MiB; differences are written as
 * whole clusters of the image's current guest content (zero clusters
 * where that content is zeros, in v3 images).  The guest view never
 * changes, so an interruption leaves at worst leaked clusters.  Returns 0
 * or a negative errno with the reason in p->img->err.
 */
int rebase_copy(const struct rebase_params *p);

/*
 * Record name (NULL or "": no backing file) and fmt (may be NULL only
 * without a name) as img's backing file, keeping every other header
 * field and extension.  -ENOTSUP for formats without backing files,
 * -ENOSPC ("No space left in the file header") when the name does not
 * fit beside the header.  The caller flushes copied data first.
 */
int img_set_backing(struct img *img, const char *name, const char *fmt);

/* The qcow2 part of img_set_backing (qcow2_backing.c). */
int qcow2_set_backing(struct img *img, const char *name, const char *fmt);

#endif
