/*
 * compress_pipeline.c: per-thread cluster codecs and the adaptor to the
 * qcow2 engine's compressed-cluster writer (see compress_pipeline.h).
 *
 * zlib streams use qemu's parameters (raw deflate, 4 KiB window, default
 * level) so a zlib-only build writes what qemu-img writes; libdeflate (when
 * present) uses level 6 with its own 32 KiB window.  zstd uses qemu's
 * default level with a context reused across clusters (qemu allocates one
 * per cluster, which costs more than compressing small clusters).
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
	*why = "qcow2 compressed writes are not supported yet";
	return false;
}

int cwriter_open(struct cwriter **out, struct img *img)
{
	*out = NULL;
	return qerr_set(&img->err, -ENOTSUP,
			"qcow2 compressed writes are not supported yet");
}

int cwriter_type(const struct cwriter *w)
{
	return 0;
}

uint64_t cwriter_cluster(const struct cwriter *w)
{
	return 0;
}

int cwriter_put(struct cwriter *w, uint64_t off, const void *buf, size_t len)
{
	return -ENOTSUP;
}

int cwriter_flush(struct cwriter *w)
{
	return 0;
}

void cwriter_close(struct cwriter *w)
{
}

int cdecoder_new(struct cdecoder **out, struct qerr *e)
{
	*out = NULL;	/* nothing to decode until the engine lands */
	return 0;
}

void cdecoder_free(struct cdecoder *d)
{
}

int cread(struct cdecoder *d, struct img *img, uint64_t off, void *buf,
	  uint64_t len)
{
	return img_read(img, off, buf, len);
}
