/*
 * qcow2_backing.c: changing the backing file name and format recorded in
 * a qcow2 header (rebase).
 *
 * Spec: qcow2.txt header fields backing_file_offset/backing_file_size
 * (bytes 8..19), the backing file format extension (0xe2792aca), and the
 * rule that the header, its extensions and the backing file name all live
 * in cluster 0.
 *
 * The header is rebuilt from the parsed qcow2_meta the driver holds (the
 * engine keeps it in step with every field it rewrites in place), so every
 * other field, the header bytes past the known ones and every extension,
 * known or not, come out byte for byte as they were; only the backing
 * name and the backing format extension change, and unknown autoclear
 * bits are cleared as the spec asks of a writer.  Cluster 0 is written in
 * one piece and synced; callers flush any data the new backing relies on
 * before calling.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2.h"
#include "core/rebase.h"

/* Swap the backing strings of m with *name and *fmt. */
static void swap_backing(struct qcow2_meta *m, char **name, char **fmt)
{
	char *t = m->backing_file;

	m->backing_file = *name;
	*name = t;
	t = m->backing_fmt;
	m->backing_fmt = *fmt;
	*fmt = t;
}

/* Replace img's copies of the names (for later opens of the chain). */
static int set_img_names(struct img *img, const char *name, const char *fmt)
{
	char *n = name ? strdup(name) : NULL, *f = fmt ? strdup(fmt) : NULL;

	if ((name && !n) || (fmt && !f)) {
		free(n);
		free(f);
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	}
	free(img->backing_name);
	free(img->backing_fmt);
	img->backing_name = n;
	img->backing_fmt = f;
	return 0;
}

int qcow2_set_backing(struct img *img, const char *name, const char *fmt)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_meta *m = &s->meta;
	struct qcow2_header *h = &m->h;
	uint64_t old_off = h->backing_file_offset, old_autoclear;
	uint32_t old_len = h->backing_file_size;
	char *n = NULL, *f = NULL;
	uint8_t *buf;
	int ret;

	if (h->version >= 3 && (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT))
		return qerr_set(&img->err, -EACCES, "Image is corrupt; cannot "
				"be opened read/write");
	if (name && *name && !(n = strdup(name)))
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	if (n && fmt && !(f = strdup(fmt))) {
		free(n);
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	}
	buf = malloc(s->cluster_size);
	if (!buf) {
		free(n);
		free(f);
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	}
	old_autoclear = h->autoclear_features;
	if (h->version >= 3)
		h->autoclear_features &= QCOW2_AUTOCLEAR_KNOWN;
	swap_backing(m, &n, &f);
	ret = qcow2_meta_serialize(m, buf, s->cluster_size, &img->err);
	if (ret == -ENOSPC)
		qerr_reset(&img->err, ret, "No space left in the file header");
	if (ret == 0)
		ret = qfile_pwrite(img->file, buf, s->cluster_size, 0,
				   &img->err);
	if (ret == 0)
		ret = qfile_flush(img->file, &img->err);
	if (ret < 0) {
		/* What is on disk is unknown: keep describing the old one. */
		swap_backing(m, &n, &f);
		h->backing_file_offset = old_off;
		h->backing_file_size = old_len;
		h->autoclear_features = old_autoclear;
	} else {
		ret = set_img_names(img, m->backing_file, m->backing_fmt);
	}
	free(n);
	free(f);
	free(buf);
	return ret;
}
