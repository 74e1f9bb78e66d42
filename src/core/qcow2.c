/*
 * qcow2.c: TEMPORARY stand-in for the reader's driver (branch `reader`),
 * so the engine can be tested before it lands: a minimal header parse, no
 * validation beyond what the engine needs.  Replaced at merge time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2.h"
#include "core/qcow2_engine.h"

static int qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && be32_get(buf) == QCOW2_MAGIC ? 100 : 0;
}

static int parse(struct img *img, struct qcow2_state *s, const uint8_t *b,
		 size_t len)
{
	struct qcow2_header *h = &s->meta.h;
	uint64_t pos;

	h->magic = be32_get(b);
	h->version = be32_get(b + 4);
	h->backing_file_offset = be64_get(b + 8);
	h->backing_file_size = be32_get(b + 16);
	h->cluster_bits = be32_get(b + 20);
	h->size = be64_get(b + 24);
	h->crypt_method = be32_get(b + 32);
	h->l1_size = be32_get(b + 36);
	h->l1_table_offset = be64_get(b + 40);
	h->refcount_table_offset = be64_get(b + 48);
	h->refcount_table_clusters = be32_get(b + 56);
	h->nb_snapshots = be32_get(b + 60);
	h->snapshots_offset = be64_get(b + 64);
	h->refcount_order = 4;
	h->header_length = 72;
	if (h->magic != QCOW2_MAGIC || h->cluster_bits < 9 || h->cluster_bits > 21)
		return qerr_set(&img->err, -EINVAL, "Image is not in qcow2 format");
	if (h->version >= 3) {
		h->incompatible_features = be64_get(b + 72);
		h->compatible_features = be64_get(b + 80);
		h->autoclear_features = be64_get(b + 88);
		h->refcount_order = be32_get(b + 96);
		h->header_length = be32_get(b + 100);
		if (h->header_length > 104)
			h->compression_type = b[104];
	}
	for (pos = h->header_length; pos + 8 <= len;) {
		uint32_t type = be32_get(b + pos), l = be32_get(b + pos + 4);
		char *str;

		if (type == 0 || pos + 8 + l > len)
			break;
		if (type == QCOW2_EXT_BACKING_FORMAT || type == QCOW2_EXT_DATA_FILE) {
			str = strndup((const char *)b + pos + 8, l);
			if (type == QCOW2_EXT_BACKING_FORMAT)
				img->backing_fmt = str;
			else
				s->meta.data_file = str;
		}
		if (type == QCOW2_EXT_CRYPTO && l >= 16) {
			s->meta.has_crypto_ext = true;
			s->meta.crypto_offset = be64_get(b + pos + 8);
			s->meta.crypto_length = be64_get(b + pos + 16);
		}
		pos += 8 + ((l + 7) & ~7U);
	}
	if (h->backing_file_offset && h->backing_file_offset + h->backing_file_size <= len)
		img->backing_name = strndup((const char *)b + h->backing_file_offset,
					    h->backing_file_size);
	return 0;
}

static int qcow2_open(struct img *img, unsigned flags)
{
	struct qcow2_state *s = calloc(1, sizeof(*s));
	uint8_t *buf = calloc(1, 65536);
	int ret;

	if (!s || !buf) {
		free(s);
		free(buf);
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	}
	img->priv = s;
	ret = qfile_pread_zero(img->file, buf, 65536, 0, &img->err);
	if (ret == 0)
		ret = parse(img, s, buf, 65536);
	free(buf);
	if (ret < 0)
		return ret;
	s->cluster_size = 1ULL << s->meta.h.cluster_bits;
	img->size = s->meta.h.size;
	qfile_size(img->file, &s->file_size, &img->err);
	if (s->meta.data_file) {
		char *path = img_backing_path(img->filename, s->meta.data_file);

		ret = qfile_open(&s->data_file, path,
				 (flags & IMG_RDWR) ? QFILE_RDWR : 0, &img->err);
		free(path);
	}
	return ret;
}

static void qcow2_close(struct img *img)
{
	struct qcow2_state *s = img->priv;

	if (!s)
		return;
	qcow2_engine_close(img);
	qfile_close(s->data_file);
	free(s->meta.data_file);
	free(s);
	img->priv = NULL;
}

const struct img_driver qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.create_opts = qcow2_create_opts,
	.create = qcow2_create,
	.open = qcow2_open,
	.close = qcow2_close,
	.read = qcow2_read,
	.write = qcow2_write,
	.write_zeroes = qcow2_write_zeroes,
	.discard = qcow2_discard,
	.block_status = qcow2_block_status,
	.flush = qcow2_flush,
	.truncate = qcow2_truncate,
};
