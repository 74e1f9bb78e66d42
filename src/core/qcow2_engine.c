/*
 * qcow2_engine.c: the engine's lifecycle: creation on first I/O (geometry,
 * active L1 table, refcount table, caches), the header fields the engine
 * rewrites in place, the checks before the first write, flush and close.
 *
 * Spec: qcow2.txt header fields 24..103 and the incompatible/autoclear
 * feature rules.  Header fields are rewritten in place (a few bytes at
 * their documented offsets, then a sync), so unknown header bytes and
 * extensions are never touched; qcow2_state.meta is kept in step.
 *
 * Invariants: no write happens before qcow2_prepare_write() succeeded: the
 * image is not corrupt, an encrypted one has its keys (or is being
 * checked: metadata only), unknown autoclear bits are
 * cleared, a dirty image has had its refcounts rebuilt, and with lazy
 * refcounts the dirty bit is on the file.  Close clears the dirty bit we
 * set only after everything else has been written and synced, and only
 * when no write failed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_engine.h"

/* Table memory per cache; the slot count is clamped below. */
#define L2_CACHE_BYTES (4U << 20)
#define RB_CACHE_BYTES (1U << 20)

static size_t cache_slots(uint64_t budget, uint64_t cluster_size, size_t max)
{
	uint64_t n = budget / cluster_size;

	return n < 8 ? 8 : n > max ? max : (size_t)n;
}

static int engine_geometry(struct qcow2_engine *eng)
{
	const struct qcow2_header *h = &eng->s->meta.h;

	eng->cluster_bits = h->cluster_bits;
	eng->cluster_size = 1ULL << h->cluster_bits;
	eng->extl2 = h->version >= 3 &&
		     (h->incompatible_features & QCOW2_INCOMPAT_EXTL2);
	eng->l2_entry_bytes = eng->extl2 ? 16 : 8;
	eng->l2_bits = h->cluster_bits - (eng->extl2 ? 4 : 3);
	eng->sc_bits = eng->extl2 ? h->cluster_bits - 5 : h->cluster_bits;
	eng->csize_shift = 70 - h->cluster_bits;
	eng->csize_mask = (1ULL << (h->cluster_bits - 8)) - 1;
	eng->coffset_mask = (1ULL << eng->csize_shift) - 1;
	eng->refcount_order = h->version >= 3 ? h->refcount_order : 4;
	if (eng->refcount_order > 6)
		return qerr_set(eng->err, -EIO, "refcount_order %u is invalid",
				eng->refcount_order);
	eng->refcount_max = eng->refcount_order == 6
				    ? UINT64_MAX
				    : (1ULL << (1U << eng->refcount_order)) - 1;
	eng->rb_bits = h->cluster_bits + 3 - eng->refcount_order;
	return 0;
}

static int engine_load_l1(struct qcow2_engine *eng)
{
	const struct qcow2_header *h = &eng->s->meta.h;
	uint64_t span = 1ULL << (eng->cluster_bits + eng->l2_bits);
	uint64_t need = (eng->img->size + span - 1) / span;
	uint64_t bytes = (uint64_t)h->l1_size * 8;
	uint8_t *raw;
	int ret;

	if (bytes > QCOW2_MAX_L1_BYTES)
		return qerr_set(eng->err, -EIO, "L1 table of %u entries is "
				"too large", h->l1_size);
	if (h->l1_size < need)
		return qerr_set(eng->err, -EIO, "L1 table of %u entries is too "
				"small for the virtual size", h->l1_size);
	if (h->l1_size && (h->l1_table_offset & (eng->cluster_size - 1)))
		return qerr_set(eng->err, -EIO, "L1 table offset 0x%llx is not "
				"cluster aligned",
				(unsigned long long)h->l1_table_offset);
	eng->l1_size = h->l1_size;
	eng->l1_offset = h->l1_table_offset;
	eng->l1 = calloc(h->l1_size ? h->l1_size : 1, 8);
	if (!eng->l1)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	if (bytes == 0)
		return 0;
	raw = (uint8_t *)eng->l1;
	ret = qfile_pread(eng->file, raw, bytes, h->l1_table_offset, eng->err);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < h->l1_size; i++)
		eng->l1[i] = be64_get(raw + (uint64_t)i * 8);
	return 0;
}

static void engine_free(struct qcow2_engine *eng)
{
	if (!eng)
		return;
	qcow2_cache_free(eng->l2_cache);
	qcow2_cache_free(eng->rb_cache);
	free(eng->l1);
	free(eng->reftable);
	free(eng->cow_buf);
	free(eng->cbuf);
	free(eng->zbuf);
	free(eng->crypt_buf);
	free(eng);
}

static int engine_init(struct qcow2_engine *eng)
{
	const struct qcow2_header *h = &eng->s->meta.h;
	uint64_t cs;
	int ret = engine_geometry(eng);

	if (ret < 0)
		return ret;
	cs = eng->cluster_size;
	if (h->version >= 3 && (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)) {
		if (!eng->s->data_file)
			return qerr_set(eng->err, -EIO,
					"the external data file is not open");
		eng->has_data_file = true;
		eng->data = eng->s->data_file;
		eng->data_file_raw = (h->autoclear_features &
				      QCOW2_AUTOCLEAR_DATA_FILE_RAW) != 0;
		ret = qfile_size(eng->data, &eng->data_phys_size, eng->err);
		if (ret < 0)
			return ret;
	} else {
		eng->data = eng->file;
	}
	ret = qfile_size(eng->file, &eng->phys_size, eng->err);
	if (ret < 0)
		return ret;
	eng->alloc_end = (eng->phys_size + cs - 1) & ~(cs - 1);
	eng->l2_cache = qcow2_cache_new(eng, cache_slots(L2_CACHE_BYTES, cs, 512),
					"L2 table");
	eng->rb_cache = qcow2_cache_new(eng, cache_slots(RB_CACHE_BYTES, cs, 128),
					"refcount block");
	eng->cow_buf = malloc(cs);
	eng->cbuf = malloc(cs);
	eng->zbuf = malloc(2 * cs);
	if (!eng->l2_cache || !eng->rb_cache || !eng->cow_buf || !eng->cbuf ||
	    !eng->zbuf)
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	/* The refcount table is loaded when first needed: reads never do. */
	return engine_load_l1(eng);
}

int qcow2_engine_get(struct img *img, struct qcow2_engine **out)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_engine *eng;
	int ret;

	if (s->engine) {
		*out = s->engine;
		return 0;
	}
	eng = calloc(1, sizeof(*eng));
	if (!eng)
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	eng->img = img;
	eng->s = s;
	eng->file = img->file;
	eng->err = &img->err;
	eng->writable = (img->flags & IMG_RDWR) != 0;
	eng->crypto = s->crypto;
	ret = engine_init(eng);
	if (ret < 0) {
		engine_free(eng);
		return ret;
	}
	s->engine = eng;
	*out = eng;
	return 0;
}

int qcow2_pwrite(struct qcow2_engine *eng, struct qfile *f, const void *buf,
		 size_t len, uint64_t off)
{
	int ret = qfile_pwrite(f, buf, len, off, eng->err);

	if (ret < 0) {
		eng->failed = true;
		return ret;
	}
	if (f == eng->file && off + len > eng->phys_size)
		eng->s->file_size = eng->phys_size = off + len;
	if (f != eng->file && off + len > eng->data_phys_size)
		eng->data_phys_size = off + len;
	return 0;
}

int qcow2_extend(struct qcow2_engine *eng, uint64_t size)
{
	int ret;

	if (size <= eng->phys_size)
		return 0;
	ret = qfile_truncate(eng->file, size, eng->err);
	if (ret < 0) {
		eng->failed = true;
		return ret;
	}
	eng->s->file_size = eng->phys_size = size;
	return 0;
}

int qcow2_sync(struct qcow2_engine *eng)
{
	int ret = qfile_flush(eng->file, eng->err);

	if (ret == 0 && eng->data != eng->file)
		ret = qfile_flush(eng->data, eng->err);
	if (ret < 0)
		eng->failed = true;
	return ret;
}

/* Rewrite len bytes of the header at off, then sync. */
static int header_write(struct qcow2_engine *eng, const uint8_t *buf,
			size_t len, uint64_t off)
{
	int ret = qcow2_pwrite(eng, eng->file, buf, len, off);

	return ret ? ret : qcow2_sync(eng);
}

int qcow2_header_set_incompat(struct qcow2_engine *eng, uint64_t bits)
{
	uint8_t be[8];
	int ret;

	if (eng->s->meta.h.version < 3)
		return qerr_set(eng->err, -ENOTSUP,
				"version 2 images have no feature bits");
	be64_put(be, bits);
	ret = header_write(eng, be, 8, 72);
	if (ret == 0)
		eng->s->meta.h.incompatible_features = bits;
	return ret;
}

int qcow2_header_set_autoclear(struct qcow2_engine *eng, uint64_t bits)
{
	uint8_t be[8];
	int ret;

	if (eng->s->meta.h.version < 3)
		return 0;
	be64_put(be, bits);
	ret = header_write(eng, be, 8, 88);
	if (ret == 0)
		eng->s->meta.h.autoclear_features = bits;
	return ret;
}

int qcow2_header_set_reftable(struct qcow2_engine *eng, uint64_t off,
			      uint32_t clusters)
{
	uint8_t buf[12];
	int ret;

	be64_put(buf, off);
	be32_put(buf + 8, clusters);
	ret = header_write(eng, buf, sizeof(buf), 48);
	if (ret == 0) {
		eng->s->meta.h.refcount_table_offset = off;
		eng->s->meta.h.refcount_table_clusters = clusters;
	}
	return ret;
}

int qcow2_header_set_l1(struct qcow2_engine *eng, uint64_t size,
			uint64_t l1_off, uint32_t l1_size)
{
	struct qcow2_header *h = &eng->s->meta.h;
	uint8_t buf[24];
	int ret;

	be64_put(buf, size);
	be32_put(buf + 8, h->crypt_method);
	be32_put(buf + 12, l1_size);
	be64_put(buf + 16, l1_off);
	ret = header_write(eng, buf, sizeof(buf), 24);
	if (ret == 0) {
		h->size = size;
		h->l1_size = l1_size;
		h->l1_table_offset = l1_off;
	}
	return ret;
}

int qcow2_corrupt(struct qcow2_engine *eng, const char *fmt, ...)
{
	const struct qcow2_header *h = &eng->s->meta.h;
	char msg[QERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	qerr_set(eng->err, -EIO, "%s", msg);
	/* Stop further writes, as qemu does, so check -r can repair. */
	if (eng->writable && h->version >= 3 &&
	    !(h->incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
		struct qerr ignore = { 0 };
		struct qerr *saved = eng->err;

		eng->err = &ignore;
		qcow2_header_set_incompat(eng, h->incompatible_features |
						       QCOW2_INCOMPAT_CORRUPT);
		eng->err = saved;
	}
	eng->failed = true;
	return -EIO;
}

int qcow2_prepare_write(struct qcow2_engine *eng)
{
	const struct qcow2_header *h = &eng->s->meta.h;
	uint64_t keep = QCOW2_AUTOCLEAR_DATA_FILE_RAW;
	/* A rebuild does not count bitmaps: they cannot stay then. */
	bool keep_bm = eng->keep_bitmaps &&
		       !(h->version >= 3 &&
			 (h->incompatible_features & QCOW2_INCOMPAT_DIRTY));
	int ret;

	if (eng->write_ready)
		return 0;
	if (!eng->writable)
		return qerr_set(eng->err, -EROFS, "image is not writable");
	if (h->version >= 3 && (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT))
		return qerr_set(eng->err, -EACCES, "Image is corrupt; cannot "
				"be opened read/write");
	/*
	 * Check's repairs and snapshot operations touch metadata only,
	 * which is never encrypted: they need no key.
	 */
	if (h->crypt_method != QCOW2_CRYPT_NONE && !eng->crypto &&
	    !(eng->img->flags & (IMG_CHECK | IMG_NO_IO)))
		return qcow2_no_key(eng);
	/*
	 * Unknown autoclear bits must go before we write; so must the bitmaps
	 * bit, since we do not update bitmaps (qemu then treats them as
	 * inconsistent, which is what they become).
	 */
	if (keep_bm)
		keep |= QCOW2_AUTOCLEAR_BITMAPS;
	if (h->autoclear_features & ~keep) {
		ret = qcow2_header_set_autoclear(eng, h->autoclear_features &
							      keep);
		if (ret < 0)
			return ret;
	}
	if (keep_bm)
		return 0;	/* not dirty, nothing to rebuild or arm */
	if (h->version >= 3 && (h->incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
		/* The old refcount structure is not read: it may be stale. */
		ret = qcow2_rebuild_refcounts(eng);
		if (ret < 0)
			return ret;
		if (!(h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS)) {
			ret = qcow2_header_set_incompat(
				eng, h->incompatible_features & ~QCOW2_INCOMPAT_DIRTY);
			if (ret < 0)
				return ret;
		}
	}
	if (h->version >= 3 && (h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS)) {
		if (!(h->incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
			ret = qcow2_header_set_incompat(
				eng, h->incompatible_features | QCOW2_INCOMPAT_DIRTY);
			if (ret < 0)
				return ret;
		}
		eng->lazy = true;
	}
	eng->write_ready = true;
	return 0;
}

int qcow2_engine_flush(struct qcow2_engine *eng)
{
	int ret = qcow2_cache_write(eng->l2_cache);

	if (ret == 0)
		ret = qcow2_cache_write(eng->rb_cache);
	if (ret == 0)
		ret = qcow2_sync(eng);
	return ret;
}

int qcow2_engine_close(struct img *img)
{
	struct qcow2_state *s = img->priv;
	struct qcow2_engine *eng = s ? s->engine : NULL;
	int ret = 0;

	if (!eng)
		return 0;
	if (eng->write_ready) {
		ret = qcow2_engine_flush(eng);
		if (ret == 0 && eng->lazy && !eng->failed)
			ret = qcow2_header_set_incompat(
				eng, s->meta.h.incompatible_features &
					     ~QCOW2_INCOMPAT_DIRTY);
	}
	engine_free(eng);
	s->engine = NULL;
	return ret;
}
