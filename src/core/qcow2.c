/*
 * qcow2.c: the qcow2 format driver: probe, open, close and info.
 *
 * Spec: QEMU docs/interop/qcow2.txt.  Opening reads cluster 0 only (the
 * header, its extensions and the backing file name, validated by
 * qcow2_header.c) and never loads the L1, L2 or refcount tables, so it is
 * O(header) on any image.  The guest read/write engine hangs its own state
 * on qcow2_state.engine; this file only describes the image.
 *
 * Invariants: after a successful open, img->priv is a struct qcow2_state
 * whose meta passed qcow2_meta_parse(); img->size is the header's size
 * rounded down to 512 bytes (qemu counts whole sectors); the external data
 * file is open unless IMG_NO_IO was asked for (qemu-img info does not open
 * it either, so a missing data file does not stop info); an encrypted
 * image has its unlocked keys in st->crypto unless it was opened for
 * metadata only (IMG_NO_IO, or IMG_CHECK without a key).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/qcow2.h"
#include "core/qcow2_engine.h"
#include "core/qcow2_snapshot.h"

/* qemu only takes a file for qcow2 when a whole v3 header fits in it. */
#define QCOW2_PROBE_MIN_LEN 112

static int qcow2_probe(const uint8_t *buf, size_t len)
{
	if (len < QCOW2_PROBE_MIN_LEN || be32_get(buf) != QCOW2_MAGIC ||
	    be32_get(buf + 4) < 2)
		return 0;
	return 100;
}

static int dup_name(const char *s, char **out, struct qerr *e)
{
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : qerr_set(e, -ENOMEM, "out of memory");
}

/*
 * Unlock an encrypted image for guest I/O (see img_open_opts).  Not for
 * info (IMG_NO_IO: metadata only) nor for check without a key: the
 * metadata is never encrypted, so check and repair need none (qemu-img
 * asks for one anyway).  A handle opened without keys refuses guest data
 * I/O in qcow2_data_pread/pwrite.
 */
static int open_crypto(struct img *img, struct qcow2_state *st,
		       unsigned flags)
{
	const struct img_open_opts *o = img->open_opts;
	const struct qcow2_meta *m = &st->meta;
	const struct qcow2_state *other;
	int ret;

	if (m->h.crypt_method == QCOW2_CRYPT_NONE) {
		if (o->encrypt_format)
			return qerr_set(&img->err, -EINVAL, "No encryption in "
					"image header, but options specified "
					"format '%s'", o->encrypt_format);
		return 0;
	}
	if (flags & IMG_NO_IO)
		return 0;
	if (o->keys_from && o->keys_from->drv == &qcow2_driver &&
	    (other = o->keys_from->priv) && other->crypto) {
		st->crypto = crypto_ref(other->crypto);
		return 0;
	}
	if ((flags & IMG_CHECK) && !o->key_secret)
		return 0;
	ret = crypto_open_image(img->file, m->h.crypt_method,
				m->has_crypto_ext, m->crypto_offset,
				m->crypto_length, o->key_secret,
				o->encrypt_format, &st->crypto, &img->err);
	if (ret < 0 && !o->key_secret) {
		/* As deep as --image-opts takes backing.* (util/imgopts.h). */
		enum { HINT_DEPTH = 8 };
		char why[QERR_MSG_MAX], prefix[sizeof("backing.") * HINT_DEPTH];

		/* A backing file's key is backing.[backing.]encrypt... */
		prefix[0] = '\0';
		for (int d = 0; d < img->chain_depth && d < HINT_DEPTH; d++)
			strcat(prefix, "backing.");
		snprintf(why, sizeof(why), "%s", qerr_msg(&img->err));
		qerr_reset(&img->err, ret, "%s (give the passphrase with "
			   "--object secret,id=ID,data=... --image-opts "
			   "driver=qcow2,file.filename=%s,%sencrypt.key-secret=ID)",
			   why, img->chain_depth ? "TOP" : "FILE", prefix);
	}
	return ret;
}

static int qcow2_open(struct img *img, unsigned flags)
{
	struct qcow2_state *st = calloc(1, sizeof(*st));
	const struct qcow2_header *h;
	int ret;

	if (!st)
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	img->priv = st;
	ret = qfile_size(img->file, &st->file_size, &img->err);
	if (ret < 0)
		return ret;
	ret = (flags & IMG_CHECK)
		      ? qcow2_meta_read_check(img->file, &st->meta, &img->err)
		      : qcow2_meta_read(img->file, &st->meta, &img->err);
	if (ret < 0)
		return ret;
	h = &st->meta.h;
	st->cluster_size = qcow2_cluster_size(h);
	img->size = h->size & ~511ULL;
	ret = dup_name(st->meta.backing_file, &img->backing_name, &img->err);
	/* A backing format without a backing file means nothing (qemu). */
	if (ret == 0 && st->meta.backing_file)
		ret = dup_name(st->meta.backing_fmt, &img->backing_fmt,
			       &img->err);
	if (ret < 0)
		return ret;

	/*
	 * qemu 7.2 opens the data file by the name as stored, relative to
	 * the current directory (not the image's), and only when guest I/O
	 * is possible.
	 */
	if ((h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) &&
	    !(flags & IMG_NO_IO))
		ret = qfile_open(&st->data_file, st->meta.data_file,
				 (flags & IMG_RDWR) ? QFILE_RDWR : 0,
				 &img->err);
	return ret < 0 ? ret : open_crypto(img, st, flags);
}

static void qcow2_close(struct img *img)
{
	struct qcow2_state *st = img->priv;

	if (!st)
		return;
	qcow2_engine_close(img);
	crypto_free(st->crypto);
	qfile_close(st->data_file);
	qcow2_meta_free(&st->meta);
	free(st);
	img->priv = NULL;
}

/*
 * The "data" object of qemu-img's format-specific information.  qemu
 * prints its dictionaries in hash order, not field order: the keys are
 * added here in the order qemu 7.2 shows them.
 */
static int qcow2_format_info(struct img *img, struct qcow2_state *st,
			     struct kv *data)
{
	const struct qcow2_meta *m = &st->meta;
	const struct qcow2_header *h = &m->h;
	bool v3 = h->version >= 3;
	int ret = 0;

	kv_add_str(data, "compat", v3 ? "1.1" : "0.10");
	kv_add_str(data, "compression-type",
		   h->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd"
								  : "zlib");
	if (v3)
		kv_add_bool(data, "lazy-refcounts",
			    h->compatible_features &
				    QCOW2_COMPAT_LAZY_REFCOUNTS);
	if (v3 && m->has_bitmaps_ext)
		ret = qcow2_bitmaps_info(img->file, m, st->file_size, data,
					 &img->err);
	if (ret < 0)
		return ret;
	kv_add_int(data, "refcount-bits", 1LL << h->refcount_order);
	if (v3 && m->data_file)
		kv_add_str(data, "data-file", m->data_file);
	if (h->crypt_method == QCOW2_CRYPT_AES) {
		kv_add_str(kv_add_obj(data, "encrypt"), "format", "aes");
	} else if (h->crypt_method == QCOW2_CRYPT_LUKS) {
		ret = luks_info(img->file, m->crypto_offset, m->crypto_length,
				st->file_size, data, &img->err);
		if (ret < 0)
			return ret;
	}
	if (v3 && (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
		kv_add_bool(data, "data-file-raw",
			    h->autoclear_features &
				    QCOW2_AUTOCLEAR_DATA_FILE_RAW);
	if (v3) {
		kv_add_bool(data, "corrupt",
			    h->incompatible_features & QCOW2_INCOMPAT_CORRUPT);
		kv_add_bool(data, "extended-l2",
			    h->incompatible_features & QCOW2_INCOMPAT_EXTL2);
	}
	return 0;
}

static int qcow2_info(struct img *img, struct img_info *info)
{
	struct qcow2_state *st = img->priv;
	const struct qcow2_header *h = &st->meta.h;
	struct kv *data;
	int ret;

	info->cluster_size = (uint32_t)st->cluster_size;
	info->encrypted = h->crypt_method != QCOW2_CRYPT_NONE;
	info->dirty = h->incompatible_features & QCOW2_INCOMPAT_DIRTY;
	ret = qcow2_snapshots_read(img->file, &st->meta, st->file_size,
				   &info->snapshots, &info->nb_snapshots,
				   &img->err);
	if (ret < 0)
		return ret;
	data = kv_new_obj();
	if (!data)
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	info->format_specific = data;
	ret = qcow2_format_info(img, st, data);
	if (ret == 0 && !kv_ok(data))
		ret = qerr_set(&img->err, -ENOMEM, "out of memory");
	return ret;
}

const struct img_driver qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.create_opts = qcow2_create_opts,
	.create = qcow2_create,
	.open = qcow2_open,
	.close = qcow2_close,
	.info = qcow2_info,
	.read = qcow2_read,
	.write = qcow2_write,
	.write_zeroes = qcow2_write_zeroes,
	.discard = qcow2_discard,
	.block_status = qcow2_block_status,
	.flush = qcow2_flush,
	.truncate = qcow2_truncate,
	.write_compressed = qcow2_write_compressed_range,
	.check = qcow2_check,
	.snapshot_list = qcow2_snapshot_list,
	.snapshot_create = qcow2_snapshot_create,
	.snapshot_apply = qcow2_snapshot_apply,
	.snapshot_delete = qcow2_snapshot_delete,
	.snapshot_load = qcow2_snapshot_load,
};
