/*
 * qcow2_io.c: the qcow2 driver's data entry points: read, write, write
 * zeros, discard, block status, flush, grow, and compressed writes.
 *
 * Spec: qcow2.txt "Cluster mapping", "Standard Cluster Descriptor" (the
 * v3 zero flag), "Extended L2 Entries" (zero subclusters), "Compressed
 * Clusters Descriptor".  Requests arrive range-checked by img.c; they are
 * split at L2 table boundaries.
 *
 * Zero writes: whole clusters (whole subclusters with extended L2) become
 * zero entries in v3, keeping a cluster that is ours unless unmapping is
 * allowed; in v2 they are unmapped when nothing shows through from a
 * backing file, else real zeros are written.  The parts that are not
 * whole units are written as zeros.  Discard works on whole clusters only
 * (the rest is ignored, as qemu does): v3 clusters then read as zeros, v2
 * ones from the backing file.  References are always dropped after the
 * entries that held them changed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_engine.h"

static int engine_for_write(struct img *img, struct qcow2_engine **eng)
{
	int ret = qcow2_engine_get(img, eng);

	return ret ? ret : qcow2_prepare_write(*eng);
}

/* Bytes from off to the end of the L2 table that maps it. */
static uint64_t to_table_end(const struct qcow2_engine *eng, uint64_t off)
{
	uint64_t span = 1ULL << (eng->cluster_bits + eng->l2_bits);

	return span - (off & (span - 1));
}

int qcow2_read(struct img *img, uint64_t off, void *buf, size_t len)
{
	struct qcow2_engine *eng;
	uint8_t *p = buf;
	int ret = qcow2_engine_get(img, &eng);

	/* Refused whole, not only where data is stored: no silent zeros. */
	if (ret == 0 && eng->s->meta.h.crypt_method != QCOW2_CRYPT_NONE &&
	    !eng->crypto)
		return qcow2_no_key(eng);
	while (ret == 0 && len > 0) {
		struct qcow2_extent ext;
		size_t n;

		ret = qcow2_map_extent(eng, off, len, &ext);
		if (ret < 0)
			break;
		n = (size_t)ext.len;
		switch (ext.type) {
		case QC_UNALLOC:
		case QC_UNALLOC_HOST:
			ret = qcow2_backing_read(eng, off, p, n);
			break;
		case QC_ZERO:
		case QC_ZERO_ALLOC:
			memset(p, 0, n);
			break;
		case QC_NORMAL:
			ret = qcow2_data_pread(eng, ext.host_off, off, p, n);
			break;
		case QC_COMPRESSED:
			ret = qcow2_read_in_cluster(eng, off, ext.l2e, 0, p, n);
			break;
		}
		off += n;
		p += n;
		len -= n;
	}
	return ret;
}

int qcow2_write(struct img *img, uint64_t off, const void *buf, size_t len)
{
	struct qcow2_engine *eng;
	const uint8_t *p = buf;
	int ret = engine_for_write(img, &eng);

	/* Encrypted data is stored in whole sectors. */
	if (ret == 0 && eng->crypto && ((off | len) % 512))
		return qcow2_write_sectors_rmw(img, off, buf, len);
	while (ret == 0 && len > 0) {
		uint64_t n = to_table_end(eng, off);

		if (n > len)
			n = len;
		ret = qcow2_write_l2_range(eng, off, p, n);
		off += n;
		p += n;
		len -= n;
	}
	return ret;
}

/* Write literal zeros over [off, off+len). */
static int write_zero_bytes(struct img *img, uint64_t off, uint64_t len)
{
	enum { CHUNK = 1 << 20 };
	uint8_t *zeros;
	int ret = 0;

	if (len == 0)
		return 0;
	zeros = calloc(1, len < CHUNK ? len : CHUNK);
	if (!zeros)
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	while (len > 0 && ret == 0) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;

		ret = qcow2_write(img, off, zeros, n);
		off += n;
		len -= n;
	}
	free(zeros);
	return ret;
}

/* Can the backing chain show through at [off, off+len)? */
static bool shows_through(struct qcow2_engine *eng, uint64_t off)
{
	return eng->img->backing && off < eng->img->backing->size;
}

enum zmode {
	ZM_ZERO,	/* read as zeros, keep our own clusters */
	ZM_ZERO_UNMAP,	/* read as zeros, free clusters */
	ZM_DISCARD,	/* drop: v3 reads zeros, v2 the backing chain */
};

/*
 * New entry for guest cluster g whose units `mask` (all of them when the
 * whole cluster) become zero or discarded; *drop when the old references
 * go.
 */
static void zero_entry(struct qcow2_engine *eng, enum zmode mode, uint64_t g,
		       uint64_t e, uint64_t bm, uint64_t mask, uint64_t *ne,
		       uint64_t *nbm, bool *drop)
{
	bool whole = !eng->extl2 || mask == 0xffffffffULL;
	bool ours = !(e & QCOW2_OFLAG_COMPRESSED) &&
		    ((e & QCOW2_L2E_OFFSET_MASK) || eng->has_data_file) &&
		    ((e & QCOW2_OFLAG_COPIED) || eng->has_data_file);
	bool keep = eng->has_data_file || (mode == ZM_ZERO && ours);

	*drop = false;
	*nbm = bm;
	if (eng->extl2 && !whole) {
		/* The entry keeps its cluster; only the bitmap changes. */
		*ne = e;
		*nbm = (bm & ~mask) | (bm & QCOW2_BITMAP_ZERO_MASK) | (mask << 32);
		return;
	}
	if (keep) {
		*ne = e & (QCOW2_L2E_OFFSET_MASK | QCOW2_OFLAG_COPIED);
		if (eng->extl2)
			*nbm = QCOW2_BITMAP_ZERO_MASK;
		else
			*ne |= QCOW2_OFLAG_ZERO;
		return;
	}
	*drop = true;
	if (mode == ZM_DISCARD && eng->s->meta.h.version < 3) {
		*ne = 0;
	} else if (eng->extl2) {
		*ne = 0;
		*nbm = QCOW2_BITMAP_ZERO_MASK;
	} else {
		*ne = QCOW2_OFLAG_ZERO;
	}
	(void)g;
}

/*
 * Subclusters [a, b) of a cluster (byte offsets, subcluster aligned) as a
 * bitmap; all of them without extended L2.
 */
static uint64_t units_between(const struct qcow2_engine *eng, uint64_t a,
			      uint64_t b)
{
	unsigned first, last;

	if (!eng->extl2)
		return 0xffffffffULL;
	first = (unsigned)(a >> eng->sc_bits);
	last = (unsigned)((b + (1ULL << eng->sc_bits) - 1) >> eng->sc_bits);
	return (last >= 32 ? 0xffffffffULL : (1ULL << last) - 1) &
	       ~((1ULL << first) - 1);
}

/* Whole units [off, end) inside one L2 table become zero / discarded. */
static int zero_in_table(struct qcow2_engine *eng, enum zmode mode,
			 uint64_t off, uint64_t end)
{
	uint64_t cs = eng->cluster_size, *t, l2_off;
	uint64_t old[64], nold = 0;
	int ret = qcow2_l1_entry(eng, qcow2_l1_index(eng, off), &l2_off);

	if (ret < 0)
		return ret;
	/* Nothing to do where nothing is mapped and nothing shows through. */
	if (!l2_off && !shows_through(eng, off) &&
	    (mode == ZM_DISCARD || mode == ZM_ZERO_UNMAP || eng->s->meta.h.version < 3))
		return 0;
	ret = qcow2_l2_for_write(eng, off, &t);
	if (ret < 0)
		return ret;
	for (uint64_t g = off; g < end && ret == 0;) {
		uint64_t gc = g & ~(cs - 1), i = qcow2_l2_index(eng, g);
		uint64_t ce = end - gc < cs ? end : gc + cs;
		uint64_t e = qcow2_l2_get(eng, t, i), bm = qcow2_l2_bitmap(eng, t, i);
		/* The image end closes its last (sub)cluster. */
		uint64_t ue = ce == eng->img->size ? gc + cs : ce;
		uint64_t mask = units_between(eng, g - gc, ue - gc), ne, nbm;
		bool drop;

		ret = qcow2_l2_check(eng, gc, e, bm);
		if (ret < 0)
			break;
		zero_entry(eng, mode, gc, e, bm, mask, &ne, &nbm, &drop);
		if (ne != e || nbm != bm) {
			qcow2_l2_set(eng, t, i, ne, nbm);
			qcow2_cache_mark_dirty(eng->l2_cache, t);
			if (drop && (e & ~QCOW2_OFLAG_ZERO)) {
				if (nold == sizeof(old) / sizeof(old[0])) {
					for (uint64_t j = 0; j < nold && ret == 0; j++)
						ret = qcow2_free_l2e(eng, old[j]);
					nold = 0;
				}
				old[nold++] = e;
			}
		}
		g = ce;
	}
	for (uint64_t j = 0; j < nold && ret == 0; j++)
		ret = qcow2_free_l2e(eng, old[j]);
	qcow2_cache_put(eng->l2_cache, (void **)&t);
	return ret;
}

static int zero_units(struct qcow2_engine *eng, enum zmode mode, uint64_t off,
		      uint64_t len)
{
	int ret = 0;

	while (len > 0 && ret == 0) {
		uint64_t n = to_table_end(eng, off);

		if (n > len)
			n = len;
		ret = zero_in_table(eng, mode, off, off + n);
		off += n;
		len -= n;
	}
	return ret;
}

/* Round [off, off+len) in to whole units; the image end counts as one. */
static void whole_units(const struct img *img, uint64_t unit, uint64_t off,
			uint64_t len, uint64_t *a, uint64_t *b)
{
	uint64_t end = off + len;

	*a = (off + unit - 1) & ~(unit - 1);
	*b = end == img->size ? end : end & ~(unit - 1);
	if (*b < *a)
		*b = *a;
}

/* A compressed cluster cannot lose part of its data: rewrite it. */
static int zero_partial_compressed(struct img *img, struct qcow2_engine *eng,
				   uint64_t *a, uint64_t *b)
{
	uint64_t cs = eng->cluster_size;
	uint64_t ends[2] = { *a & ~(cs - 1), (*b - 1) & ~(cs - 1) };

	for (int k = 0; k < 2 && *a < *b; k++) {
		uint64_t gc = ends[k], ca = gc > *a ? gc : *a;
		uint64_t cb = gc + cs < *b ? gc + cs : *b;
		struct qcow2_extent ext;
		int ret;

		if (ca == gc && (cb == gc + cs || cb == img->size))
			continue;
		ret = qcow2_map_extent(eng, gc, 1, &ext);
		if (ret < 0)
			return ret;
		if (ext.type != QC_COMPRESSED)
			continue;
		ret = write_zero_bytes(img, ca, cb - ca);
		if (ret < 0)
			return ret;
		if (k == 0)
			*a = cb;
		else
			*b = ca;
	}
	return 0;
}

int qcow2_write_zeroes(struct img *img, uint64_t off, uint64_t len,
		       unsigned flags)
{
	struct qcow2_engine *eng;
	uint64_t a, b;
	int ret = engine_for_write(img, &eng);

	if (ret < 0 || len == 0)
		return ret;
	whole_units(img, 1ULL << eng->sc_bits, off, len, &a, &b);
	if (b <= a)
		return write_zero_bytes(img, off, len);
	ret = write_zero_bytes(img, off, a - off);
	if (ret == 0)
		ret = write_zero_bytes(img, b, off + len - b);
	if (ret < 0)
		return ret;
	if (eng->s->meta.h.version < 3) {
		/* No zero flag: unmap where nothing shows through. */
		if ((flags & IMG_ZERO_MAY_UNMAP) && !shows_through(eng, a))
			return zero_units(eng, ZM_DISCARD, a, b - a);
		return write_zero_bytes(img, a, b - a);
	}
	if (eng->extl2) {
		ret = zero_partial_compressed(img, eng, &a, &b);
		if (ret < 0 || b <= a)
			return ret;
	}
	if (eng->data_file_raw) {
		/* The raw data file must read as the guest does. */
		ret = write_zero_bytes(img, a, b - a);
		if (ret < 0)
			return ret;
	}
	return zero_units(eng, (flags & IMG_ZERO_MAY_UNMAP) ? ZM_ZERO_UNMAP : ZM_ZERO,
			  a, b - a);
}

int qcow2_discard(struct img *img, uint64_t off, uint64_t len)
{
	struct qcow2_engine *eng;
	uint64_t a, b;
	int ret = engine_for_write(img, &eng);

	if (ret < 0)
		return ret;
	whole_units(img, eng->cluster_size, off, len, &a, &b);
	if (b <= a || eng->data_file_raw)
		return 0;
	return zero_units(eng, ZM_DISCARD, a, b - a);
}

int qcow2_block_status(struct img *img, uint64_t off, uint64_t len,
		       struct img_bstatus *st)
{
	struct qcow2_engine *eng;
	struct qcow2_extent ext;
	bool offset_ok;
	int ret = qcow2_engine_get(img, &eng);

	memset(st, 0, sizeof(*st));
	if (ret < 0 || len == 0)
		return ret;
	ret = qcow2_map_extent(eng, off, len, &ext);
	if (ret < 0)
		return ret;
	st->len = ext.len;
	offset_ok = eng->s->meta.h.crypt_method == QCOW2_CRYPT_NONE;
	switch (ext.type) {
	case QC_UNALLOC:
		break;
	case QC_UNALLOC_HOST:
		st->flags = offset_ok ? IMG_BS_OFFSET : 0;
		break;
	case QC_ZERO:
		st->flags = IMG_BS_ZERO | IMG_BS_ALLOCATED;
		break;
	case QC_ZERO_ALLOC:
		st->flags = IMG_BS_ZERO | IMG_BS_ALLOCATED |
			    (offset_ok ? IMG_BS_OFFSET : 0);
		break;
	case QC_NORMAL:
		st->flags = IMG_BS_DATA | IMG_BS_ALLOCATED |
			    (offset_ok ? IMG_BS_OFFSET : 0);
		break;
	case QC_COMPRESSED:
		st->flags = IMG_BS_DATA | IMG_BS_ALLOCATED | IMG_BS_COMPRESSED;
		break;
	}
	if (st->flags & IMG_BS_OFFSET) {
		st->host_offset = ext.host_off;
		st->host_file = eng->data->path;
	}
	return 0;
}

int qcow2_flush(struct img *img)
{
	struct qcow2_state *s = img->priv;

	if (s && s->engine)
		return qcow2_engine_flush(s->engine);
	return qfile_flush(img->file, &img->err);
}

/* Replace the L1 table by one of l1_size entries (growing only). */
static int l1_grow(struct qcow2_engine *eng, uint64_t size, uint32_t l1_size)
{
	uint64_t cs = eng->cluster_size, bytes = (uint64_t)l1_size * 8, off;
	uint64_t clusters = (bytes + cs - 1) / cs;
	uint64_t old_off = eng->l1_offset, old_bytes = (uint64_t)eng->l1_size * 8;
	uint64_t *l1 = calloc(l1_size, 8);
	uint8_t *raw = calloc(clusters, cs);
	int ret;

	if (!l1 || !raw) {
		free(l1);
		free(raw);
		return qerr_set(eng->err, -ENOMEM, "out of memory");
	}
	memcpy(l1, eng->l1, old_bytes);
	for (uint32_t i = 0; i < l1_size; i++)
		be64_put(raw + (uint64_t)i * 8, l1[i]);
	ret = qcow2_alloc_clusters(eng, clusters, &off);
	if (ret == 0)
		ret = qcow2_pwrite(eng, eng->file, raw, clusters * cs, off);
	if (ret == 0)
		ret = qcow2_cache_flush(eng->rb_cache);	/* and sync */
	if (ret == 0)
		ret = qcow2_header_set_l1(eng, size, off, l1_size);
	free(raw);
	if (ret < 0) {
		free(l1);
		return ret;
	}
	free(eng->l1);
	eng->l1 = l1;
	eng->l1_offset = off;
	eng->l1_size = l1_size;
	if (old_bytes)
		ret = qcow2_refcount_update(eng, old_off, old_bytes, -1);
	return ret;
}

int qcow2_truncate(struct img *img, uint64_t size)
{
	struct qcow2_engine *eng;
	uint64_t span, need, old = img->size;
	int ret = engine_for_write(img, &eng);

	if (ret < 0)
		return ret;
	if (size < img->size)
		return qerr_set(&img->err, -ENOTSUP,
				"shrinking qcow2 images is not supported yet");
	if (size % 512)
		return qerr_set(&img->err, -EINVAL,
				"The new size must be a multiple of 512");
	span = 1ULL << (eng->cluster_bits + eng->l2_bits);
	need = size / span + (size % span != 0);
	if (need * 8 > QCOW2_MAX_L1_BYTES)
		return qerr_set(&img->err, -EFBIG,
				"The image size is too large for file format "
				"'qcow2' (try using a larger cluster size)");
	if (need > eng->l1_size)
		ret = l1_grow(eng, size, (uint32_t)need);
	else
		ret = qcow2_header_set_l1(eng, size, eng->l1_offset,
					  eng->l1_size);
	if (ret < 0)
		return ret;
	img->size = size;
	/* Backing data past the old end must not become visible. */
	if (shows_through(eng, old))
		ret = qcow2_write_zeroes(img, old, size - old, 0);
	return ret;
}

/*
 * Bytes for a compressed cluster: in the tail of the open compressed
 * cluster when they fit (one more reference to it), spilling into the
 * clusters right after it when those are free, else in new clusters.
 */
static int alloc_compressed(struct qcow2_engine *eng, uint64_t size,
			    uint64_t *off)
{
	uint64_t cs = eng->cluster_size, start, rc;
	int ret;

	if (eng->comp_next) {
		uint64_t c = eng->comp_next >> eng->cluster_bits;
		uint64_t rem = cs - (eng->comp_next & (cs - 1));

		ret = qcow2_refcount_get(eng, c, &rc);
		if (ret < 0)
			return ret;
		if (rc > 0 && rc < eng->refcount_max) {
			if (size > rem)
				ret = qcow2_alloc_clusters_at(
					eng, (c + 1) << eng->cluster_bits,
					(size - rem + cs - 1) / cs);
			if (ret == 0)
				ret = qcow2_refcount_update(eng, c << eng->cluster_bits,
							    1, 1);
			if (ret == 0) {
				*off = eng->comp_next;
				goto done;
			}
			if (ret != -EEXIST)
				return ret;
		}
	}
	ret = qcow2_alloc_clusters(eng, (size + cs - 1) / cs, &start);
	if (ret < 0)
		return ret;
	*off = start;
done:
	eng->comp_next = (*off + size) & (cs - 1) ? *off + size : 0;
	return 0;
}

int qcow2_write_compressed(struct img *img, uint64_t guest_off,
			   const void *buf)
{
	struct qcow2_engine *eng;
	uint64_t cs, n, *t, i, e, off;
	long clen;
	int ret = engine_for_write(img, &eng);

	if (ret < 0)
		return ret;
	/* qemu would store them unencrypted: refuse, as qemu-img convert. */
	if (eng->s->meta.h.crypt_method != QCOW2_CRYPT_NONE)
		return qerr_set(&img->err, -ENOTSUP, "Compression and "
				"encryption not supported at the same time");
	cs = eng->cluster_size;
	if ((guest_off & (cs - 1)) || guest_off >= img->size)
		return qerr_set(&img->err, -EINVAL, "compressed write at guest "
				"offset 0x%llx is not at a cluster start",
				(unsigned long long)guest_off);
	if (eng->has_data_file)
		return qerr_set(&img->err, -ENOTSUP, "compression is not "
				"supported with an external data file");
	n = img->size - guest_off < cs ? img->size - guest_off : cs;
	memcpy(eng->cow_buf, buf, n);
	memset(eng->cow_buf + n, 0, cs - n);
	clen = qcow2_compress(eng->s->meta.h.compression_type, eng->cow_buf, cs,
			      eng->zbuf, cs - 1);
	if (clen == -ENOSPC)
		return qcow2_write(img, guest_off, buf, n);
	if (clen < 0)
		return qerr_set(&img->err, (int)clen, "cannot compress the "
				"cluster at guest offset 0x%llx",
				(unsigned long long)guest_off);
	ret = qcow2_l2_for_write(eng, guest_off, &t);
	if (ret < 0)
		return ret;
	i = qcow2_l2_index(eng, guest_off);
	e = qcow2_l2_get(eng, t, i);
	ret = qcow2_l2_check(eng, guest_off, e, qcow2_l2_bitmap(eng, t, i));
	if (ret == 0 && (e & (QCOW2_L2E_OFFSET_MASK | QCOW2_OFLAG_COMPRESSED)))
		ret = qerr_set(&img->err, -EIO, "cannot write compressed data "
			       "to the allocated cluster at guest offset 0x%llx",
			       (unsigned long long)guest_off);
	if (ret == 0)
		ret = alloc_compressed(eng, (uint64_t)clen, &off);
	if (ret == 0)
		ret = qcow2_pwrite(eng, eng->file, eng->zbuf, (size_t)clen, off);
	if (ret == 0) {
		qcow2_l2_set(eng, t, i, QCOW2_OFLAG_COMPRESSED |
				 qcow2_cdesc_encode(eng->cluster_bits, off,
						    (uint64_t)clen), 0);
		qcow2_cache_mark_dirty(eng->l2_cache, t);
	}
	qcow2_cache_put(eng->l2_cache, (void **)&t);
	return ret;
}

int qcow2_write_compressed_range(struct img *img, uint64_t off, const void *buf,
				 size_t len)
{
	struct qcow2_engine *eng;
	const uint8_t *p = buf;
	uint64_t cs;
	int ret = qcow2_engine_get(img, &eng);

	if (ret < 0)
		return ret;
	cs = eng->cluster_size;
	if ((off & (cs - 1)) || ((len & (cs - 1)) && off + len != img->size))
		return qerr_set(&img->err, -EINVAL, "compressed writes must "
				"cover whole clusters");
	for (uint64_t done = 0; done < len && ret == 0; done += cs)
		ret = qcow2_write_compressed(img, off + done, p + done);
	return ret;
}

int qcow2_l1_grow(struct qcow2_engine *eng, uint64_t size, uint32_t l1_size)
{
	return l1_grow(eng, size, l1_size);
}
