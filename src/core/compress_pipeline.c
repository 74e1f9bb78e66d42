/*
 * compress_pipeline.c: what convert needs around compressed qcow2
 * clusters (see compress_pipeline.h): per-thread codecs, the in-order
 * compressed writer, and the per-thread compressed reader.
 *
 * Codecs: zlib streams use qemu's parameters (raw deflate, 4 KiB window,
 * default level) so a zlib-only build writes what qemu-img writes;
 * libdeflate (when present) uses level 6 with its own 32 KiB window, which
 * qemu inflates too (it inflates a whole cluster in one call).  zstd uses
 * qemu's default level with a context reused across clusters.
 *
 * Writer: the engine offers qcow2_write_compressed(), which compresses
 * inside, one cluster per call, so it cannot take clusters compressed by
 * several threads.  The writer here places, counts and maps already
 * compressed clusters with the engine's exported allocation, refcount and
 * L2 functions, one batch (one convert job) per pwrite.  Qcow2 spec,
 * "Compressed Clusters Descriptor": every host cluster a compressed
 * cluster touches holds one reference for it.
 *
 * Reader: runs of compressed clusters are read with one pread and inflated
 * in the calling thread (libdeflate when present, about twice zlib's
 * speed), through the thread's own image handle; everything else goes to
 * img_read().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "config.h"
#if HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif
#if HAVE_ZSTD
#include <zstd.h>
#endif

#include "core/compress_pipeline.h"
#include "core/qcow2.h"
#include "core/qcow2_engine.h"

#define ZLIB_WINDOW_BITS -12	/* raw deflate, qemu's 4 KiB window */
#define DEFLATE_LEVEL 6
#define ZSTD_LEVEL 3		/* ZSTD_CLEVEL_DEFAULT, what qemu uses */

struct ccodec {
	int type;
	size_t cluster_size;
	uint8_t *pad;		/* zero-padded copy of a short cluster */
#if HAVE_LIBDEFLATE
	struct libdeflate_compressor *ld;
#else
	z_stream zs;
	bool zs_ready;
#endif
#if HAVE_ZSTD
	ZSTD_CCtx *zc;
#endif
};

int ccodec_new(struct ccodec **out, int type, size_t cluster_size,
	       struct qerr *e)
{
	struct ccodec *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c || !(c->pad = malloc(cluster_size)))
		goto nomem;
	c->type = type;
	c->cluster_size = cluster_size;
	if (type == QCOW2_COMPRESSION_ZSTD) {
#if HAVE_ZSTD
		c->zc = ZSTD_createCCtx();
		if (!c->zc)
			goto nomem;
#else
		ccodec_free(c);
		return qerr_set(e, -ENOTSUP,
				"zstd compression is not supported by this "
				"build");
#endif
	} else {
#if HAVE_LIBDEFLATE
		c->ld = libdeflate_alloc_compressor(DEFLATE_LEVEL);
		if (!c->ld)
			goto nomem;
#else
		if (deflateInit2(&c->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
				 ZLIB_WINDOW_BITS, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			goto nomem;
		c->zs_ready = true;
#endif
	}
	*out = c;
	return 0;
nomem:
	ccodec_free(c);
	return qerr_set(e, -ENOMEM, "out of memory");
}

void ccodec_free(struct ccodec *c)
{
	if (!c)
		return;
#if HAVE_LIBDEFLATE
	if (c->ld)
		libdeflate_free_compressor(c->ld);
#else
	if (c->zs_ready)
		deflateEnd(&c->zs);
#endif
#if HAVE_ZSTD
	if (c->zc)
		ZSTD_freeCCtx(c->zc);
#endif
	free(c->pad);
	free(c);
}

static size_t deflate_cluster(struct ccodec *c, const void *in, void *out,
			      size_t cap)
{
#if HAVE_LIBDEFLATE
	return libdeflate_deflate_compress(c->ld, in, c->cluster_size, out,
					   cap);
#else
	size_t n;

	if (deflateReset(&c->zs) != Z_OK)
		return 0;
	c->zs.next_in = (Bytef *)in;
	c->zs.avail_in = (uInt)c->cluster_size;
	c->zs.next_out = out;
	c->zs.avail_out = (uInt)cap;
	if (deflate(&c->zs, Z_FINISH) != Z_STREAM_END)
		return 0;	/* did not fit */
	n = cap - c->zs.avail_out;
	return n;
#endif
}

size_t ccodec_compress(struct ccodec *c, const void *in, size_t len,
		       void *out, size_t cap)
{
	size_t n;

	if (len < c->cluster_size) {
		memcpy(c->pad, in, len);
		memset(c->pad + len, 0, c->cluster_size - len);
		in = c->pad;
	}
#if HAVE_ZSTD
	if (c->type == QCOW2_COMPRESSION_ZSTD) {
		n = ZSTD_compressCCtx(c->zc, out, cap, in, c->cluster_size,
				      ZSTD_LEVEL);
		return ZSTD_isError(n) || n >= cap ? 0 : n;
	}
#endif
	n = deflate_cluster(c, in, out, cap);
	return n < cap ? n : 0;
}

bool cwrite_supported(struct img *img, const char **why)
{
	if (img->drv != &qcow2_driver) {
		*why = "Compression not supported for this file format";
		return false;
	}
	return true;
}

#define CW_BATCH 512		/* clusters per pwrite at most */
#define CW_BYTES (4u << 20)	/* bytes per pwrite at most */

/*
 * Compressed clusters are packed back to back, continuing in the host
 * cluster the previous batch left partly used (qemu packs them the same
 * way); a batch is placed, counted, written and mapped at once.  A host
 * cluster holds one reference per compressed cluster touching it, so with
 * narrow refcounts (refcount_bits=1) a cluster that would overflow its
 * host cluster's count starts on the next one instead.
 */
struct cwriter {
	struct img *img;
	struct qcow2_engine *eng;
	uint8_t *buf;		/* the batch's compressed bytes, packed */
	size_t cap, used;
	uint8_t *gapped;	/* the batch laid out with gaps, when any */
	size_t gcap;
	size_t n;		/* clusters in the batch */
	uint64_t guest[CW_BATCH];
	uint32_t len[CW_BATCH];
	uint64_t pos[CW_BATCH];	/* host offset of each, once placed */
	uint64_t tail;		/* next free byte of a host cluster the last
				   batch left partly used, 0 when none */
};

int cwriter_open(struct cwriter **out, struct img *img)
{
	struct cwriter *w = calloc(1, sizeof(*w));
	int ret;

	*out = NULL;
	if (!w)
		return qerr_set(&img->err, -ENOMEM, "out of memory");
	w->img = img;
	ret = qcow2_engine_get(img, &w->eng);
	if (ret == 0)
		ret = qcow2_prepare_write(w->eng);
	if (ret == 0 && w->eng->has_data_file)
		ret = qerr_set(&img->err, -ENOTSUP, "compression is not "
			       "supported with an external data file");
	if (ret < 0) {
		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

int cwriter_type(const struct cwriter *w)
{
	return w->eng->s->meta.h.compression_type;
}

uint64_t cwriter_cluster(const struct cwriter *w)
{
	return w->eng->cluster_size;
}

/* Is guest cluster off free for compressed data? (qemu: -EIO if not) */
static int check_free(struct cwriter *w, uint64_t off)
{
	struct qcow2_extent ext;
	int ret = qcow2_map_extent(w->eng, off, w->eng->cluster_size, &ext);

	if (ret == 0 && ext.type != QC_UNALLOC && ext.type != QC_ZERO)
		ret = qerr_set(&w->img->err, -EIO, "cannot write compressed "
			       "data to the allocated cluster at guest offset "
			       "%llu", (unsigned long long)off);
	return ret;
}

int cwriter_put(struct cwriter *w, uint64_t off, const void *buf, size_t len)
{
	int ret = check_free(w, off);

	if (ret == 0 && (w->n == CW_BATCH || w->used + len > CW_BYTES))
		ret = cwriter_flush(w);
	if (ret < 0)
		return ret;
	if (w->used + len > w->cap) {
		size_t cap = w->used + len > CW_BYTES ? w->used + len : CW_BYTES;
		uint8_t *p = realloc(w->buf, cap);

		if (!p)
			return qerr_set(&w->img->err, -ENOMEM, "out of memory");
		w->buf = p;
		w->cap = cap;
	}
	memcpy(w->buf + w->used, buf, len);
	w->used += len;
	w->guest[w->n] = off;
	w->len[w->n++] = (uint32_t)len;
	return 0;
}

/*
 * Lay the batch out from base, whose host cluster already holds refs
 * references: fills w->pos and returns the end of the last cluster.
 */
static uint64_t lay_out(struct cwriter *w, uint64_t base, uint64_t refs)
{
	uint64_t cs = w->eng->cluster_size, pos = base, host = base / cs;

	for (size_t k = 0; k < w->n; k++) {
		if (refs >= w->eng->refcount_max) {	/* host cluster full */
			pos = (pos / cs + 1) * cs;
			host = pos / cs;
			refs = 0;
		}
		w->pos[k] = pos;
		pos += w->len[k];
		refs = (pos - 1) / cs == host ? refs + 1 : 1;
		host = (pos - 1) / cs;
	}
	return pos;
}

/*
 * Host space for the batch: after the tail the last batch left, when that
 * host cluster is still ours and the clusters after it are free; else
 * fresh clusters.  *fresh is the first newly allocated host cluster.
 */
static int place_batch(struct cwriter *w, uint64_t *base, uint64_t *fresh,
		       uint64_t *end)
{
	struct qcow2_engine *eng = w->eng;
	uint64_t cs = eng->cluster_size, rc = 0, next;
	int ret = -EEXIST;

	if (w->tail) {
		next = w->tail - (w->tail & (cs - 1)) + cs;
		ret = qcow2_refcount_get(eng, w->tail / cs, &rc);
		if (ret < 0)
			return ret;
		ret = -EEXIST;
		if (rc > 0) {
			*end = lay_out(w, w->tail, rc);
			ret = *end > next ? qcow2_alloc_clusters_at(
						    eng, next,
						    (*end - next + cs - 1) / cs)
					  : 0;
		}
		if (ret == 0) {
			*base = w->tail;
			*fresh = next;
			return 0;
		}
		if (ret != -EEXIST)
			return ret;
	}
	*end = lay_out(w, 0, 0);
	ret = qcow2_alloc_clusters(eng, (*end + cs - 1) / cs, base);
	for (size_t k = 0; ret == 0 && k < w->n; k++)
		w->pos[k] += *base;
	*end += *base;
	*fresh = *base;
	return ret;
}

/* Raise each host cluster to one reference per compressed cluster in it
 * (fresh ones came with one). */
static int count_refs(struct cwriter *w, uint64_t fresh)
{
	struct qcow2_engine *eng = w->eng;
	uint64_t cs = eng->cluster_size, h = UINT64_MAX;
	int delta = 0, ret = 0;

	for (size_t k = 0; k < w->n && ret == 0; k++) {
		uint64_t first = w->pos[k] / cs;
		uint64_t last = (w->pos[k] + w->len[k] - 1) / cs;

		for (uint64_t c = first; c <= last && ret == 0; c++) {
			if (c != h) {
				if (h != UINT64_MAX && delta)
					ret = qcow2_refcount_update(
						eng, h * cs, 1, delta);
				h = c;
				delta = c * cs >= fresh ? -1 : 0;
			}
			delta++;
		}
	}
	if (ret == 0 && h != UINT64_MAX && delta)
		ret = qcow2_refcount_update(eng, h * cs, 1, delta);
	return ret;
}

/* The bytes to write from base to end: the packed buffer, or a copy with
 * the gaps lay_out() left, zero-filled. */
static const uint8_t *batch_bytes(struct cwriter *w, uint64_t base,
				  uint64_t end)
{
	size_t span = (size_t)(end - base), from = 0;

	if (span == w->used)
		return w->buf;
	if (span > w->gcap) {
		uint8_t *p = realloc(w->gapped, span);

		if (!p)
			return NULL;
		w->gapped = p;
		w->gcap = span;
	}
	memset(w->gapped, 0, span);
	for (size_t k = 0; k < w->n; k++) {
		memcpy(w->gapped + (w->pos[k] - base), w->buf + from,
		       w->len[k]);
		from += w->len[k];
	}
	return w->gapped;
}

/* Point the batch's L2 entries at their data (which is on the file). */
static int map_batch(struct cwriter *w)
{
	struct qcow2_engine *eng = w->eng;
	int ret = 0;

	for (size_t k = 0; ret == 0 && k < w->n; k++) {
		uint64_t *t;

		ret = qcow2_l2_for_write(eng, w->guest[k], &t);
		if (ret < 0)
			break;
		qcow2_l2_set(eng, t, qcow2_l2_index(eng, w->guest[k]),
			     QCOW2_OFLAG_COMPRESSED |
				     qcow2_cdesc_encode(eng->cluster_bits,
							w->pos[k], w->len[k]),
			     0);
		qcow2_cache_mark_dirty(eng->l2_cache, t);
		qcow2_cache_put(eng->l2_cache, (void **)&t);
	}
	return ret;
}

int cwriter_flush(struct cwriter *w)
{
	uint64_t base = 0, fresh = 0, end = 0;
	const uint8_t *bytes = NULL;
	int ret;

	if (!w || !w->n)
		return 0;
	ret = place_batch(w, &base, &fresh, &end);
	if (ret == 0)
		ret = count_refs(w, fresh);
	if (ret == 0 && !(bytes = batch_bytes(w, base, end)))
		ret = qerr_set(&w->img->err, -ENOMEM, "out of memory");
	/* Data first, then the L2 entries that point at it. */
	if (ret == 0)
		ret = qcow2_pwrite(w->eng, w->eng->file, bytes,
				   (size_t)(end - base), base);
	if (ret == 0)
		ret = map_batch(w);
	w->tail = ret == 0 && (end & (w->eng->cluster_size - 1)) ? end : 0;
	w->n = 0;
	w->used = 0;
	return ret;
}

void cwriter_close(struct cwriter *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w->gapped);
	free(w);
}

/* ---- parallel reads of compressed clusters ---- */

struct cdecoder {
#if HAVE_LIBDEFLATE
	struct libdeflate_decompressor *ld;
#else
	z_stream zs;
	bool zs_ready;
#endif
#if HAVE_ZSTD
	ZSTD_DCtx *zd;
#endif
	uint8_t *zbuf;		/* compressed bytes of a run of clusters */
	size_t zcap;
};

int cdecoder_new(struct cdecoder **out, struct qerr *e)
{
	struct cdecoder *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (!d)
		return qerr_set(e, -ENOMEM, "out of memory");
#if HAVE_LIBDEFLATE
	d->ld = libdeflate_alloc_decompressor();
	if (!d->ld)
		goto nomem;
#else
	if (inflateInit2(&d->zs, -15) != Z_OK)
		goto nomem;
	d->zs_ready = true;
#endif
#if HAVE_ZSTD
	d->zd = ZSTD_createDCtx();
	if (!d->zd)
		goto nomem;
#endif
	*out = d;
	return 0;
nomem:
	cdecoder_free(d);
	return qerr_set(e, -ENOMEM, "out of memory");
}

void cdecoder_free(struct cdecoder *d)
{
	if (!d)
		return;
#if HAVE_LIBDEFLATE
	if (d->ld)
		libdeflate_free_decompressor(d->ld);
#else
	if (d->zs_ready)
		inflateEnd(&d->zs);
#endif
#if HAVE_ZSTD
	if (d->zd)
		ZSTD_freeDCtx(d->zd);
#endif
	free(d->zbuf);
	free(d);
}

/* One cluster: src may carry the next cluster's bytes after its stream. */
static int decode_cluster(struct cdecoder *d, int type, const uint8_t *src,
			  size_t slen, uint8_t *dst, size_t dlen)
{
#if HAVE_ZSTD
	if (type == QCOW2_COMPRESSION_ZSTD) {
		size_t fl = ZSTD_findFrameCompressedSize(src, slen), n;

		if (ZSTD_isError(fl))
			return -EIO;
		n = ZSTD_decompressDCtx(d->zd, dst, dlen, src, fl);
		return !ZSTD_isError(n) && n == dlen ? 0 : -EIO;
	}
#endif
	if (type != QCOW2_COMPRESSION_ZLIB)
		return -ENOTSUP;
#if HAVE_LIBDEFLATE
	size_t in_used, out_len;

	if (libdeflate_deflate_decompress_ex(d->ld, src, slen, dst, dlen,
					     &in_used, &out_len) !=
		    LIBDEFLATE_SUCCESS ||
	    out_len != dlen)
		return -EIO;
	return 0;
#else
	int ret;

	if (inflateReset(&d->zs) != Z_OK)
		return -EIO;
	d->zs.next_in = (Bytef *)src;
	d->zs.avail_in = (uInt)slen;
	d->zs.next_out = dst;
	d->zs.avail_out = (uInt)dlen;
	ret = inflate(&d->zs, Z_FINISH);
	return (ret == Z_STREAM_END || ret == Z_BUF_ERROR) &&
			       d->zs.avail_out == 0
		       ? 0
		       : -EIO;
#endif
}

#define CREAD_RUN 64		/* clusters read with one pread at most */
#define CREAD_BYTES (8u << 20)	/* bytes read with one pread at most */

/*
 * A run of whole compressed clusters at off (at most len bytes): their
 * descriptors, and the host byte range that holds them all, as long as
 * that range stays compact (no more than twice the bytes it holds: the
 * clusters were packed one after the other, as writers do).
 */
static int compressed_run(struct qcow2_engine *eng, uint64_t off,
			  uint64_t len, uint64_t *hoff, uint64_t *hlen,
			  uint64_t *desc, size_t *n)
{
	uint64_t cs = eng->cluster_size, lo = UINT64_MAX, hi = 0, sum = 0;
	struct qcow2_extent ext;

	*n = 0;
	while (*n < CREAD_RUN && len >= cs) {
		uint64_t o, l, nlo, nhi;
		int ret = qcow2_map_extent(eng, off, cs, &ext);

		if (ret < 0)
			return ret;
		if (ext.type != QC_COMPRESSED)
			break;
		qcow2_cdesc_decode(eng->cluster_bits, ext.l2e, &o, &l);
		nlo = o < lo ? o : lo;
		nhi = o + l > hi ? o + l : hi;
		if (*n && (nhi - nlo > 2 * (sum + l) || nhi - nlo > CREAD_BYTES))
			break;	/* scattered: the next run starts here */
		lo = nlo;
		hi = nhi;
		sum += l;
		desc[(*n)++] = ext.l2e;
		off += cs;
		len -= cs;
	}
	*hoff = lo;
	*hlen = hi - lo;
	return 0;
}

static int read_compressed(struct cdecoder *d, struct img *img,
			   struct qcow2_engine *eng, uint64_t off,
			   uint8_t *buf, uint64_t len, uint64_t *done)
{
	uint64_t desc[CREAD_RUN], hoff, hlen, cs = eng->cluster_size;
	int type = eng->s->meta.h.compression_type;
	size_t n;
	int ret = compressed_run(eng, off, len, &hoff, &hlen, desc, &n);

	*done = 0;
	if (ret < 0 || n == 0)
		return ret;
	if (hlen > d->zcap) {
		uint8_t *p = realloc(d->zbuf, hlen);

		if (!p)
			return qerr_set(&img->err, -ENOMEM, "out of memory");
		d->zbuf = p;
		d->zcap = hlen;
	}
	ret = qfile_pread_zero(eng->file, d->zbuf, hlen, hoff, &img->err);
	for (size_t k = 0; ret == 0 && k < n; k++) {
		uint64_t o, l;

		qcow2_cdesc_decode(eng->cluster_bits, desc[k], &o, &l);
		ret = decode_cluster(d, type, d->zbuf + (o - hoff), l,
				     buf + k * cs, cs);
		if (ret < 0)
			return qerr_set(&img->err, -EIO, "compressed cluster "
					"for guest offset %llu cannot be "
					"decompressed",
					(unsigned long long)(off + k * cs));
	}
	*done = n * cs;
	return ret;
}

int cread(struct cdecoder *d, struct img *img, uint64_t off, void *buf,
	  uint64_t len)
{
	struct qcow2_engine *eng;
	uint8_t *p = buf;
	int ret;

	if (img->drv != &qcow2_driver || !d)
		return img_read(img, off, buf, len);
	ret = qcow2_engine_get(img, &eng);
	if (ret < 0 || eng->s->meta.h.crypt_method != QCOW2_CRYPT_NONE)
		return img_read(img, off, buf, len);
	while (len > 0) {
		uint64_t done = 0;
		struct qcow2_extent ext;

		if (off % eng->cluster_size == 0) {
			ret = read_compressed(d, img, eng, off, p, len, &done);
			if (ret < 0)
				return ret;
		}
		if (!done) {
			ret = qcow2_map_extent(eng, off, len, &ext);
			if (ret == 0)
				ret = img_read(img, off, p, ext.len);
			if (ret < 0)
				return ret;
			done = ext.len;
		}
		off += done;
		p += done;
		len -= done;
	}
	return 0;
}
