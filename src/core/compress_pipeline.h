/*
 * compress_pipeline.h: what convert needs to write compressed qcow2
 * clusters from many threads: a pure per-thread codec that compresses one
 * cluster into a buffer, and an in-order writer that stores an already
 * compressed cluster at a guest offset.
 *
 * The codec (ccodec_*) is thread-safe as long as each thread owns its own
 * struct ccodec; it keeps no global state, so the bytes it produces depend
 * only on the input, the type and the cluster size: output is identical
 * whatever the number of threads.
 *
 * Formats (qcow2 spec, "Compressed Clusters Descriptor"): zlib clusters are
 * raw deflate streams (no zlib header or checksum) that inflate to exactly
 * one cluster; zstd clusters are one zstd frame.  When configure found
 * libdeflate, deflate streams come from it (faster, a 32 KiB window;
 * qemu-img 7.2 inflates a whole cluster in one call, which accepts such
 * streams: the tests prove it with qemu-img); zlib otherwise.
 */
#ifndef QIMG_CORE_COMPRESS_PIPELINE_H
#define QIMG_CORE_COMPRESS_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/img.h"

struct ccodec;

/*
 * A codec for type (QCOW2_COMPRESSION_ZLIB or _ZSTD) compressing clusters
 * of cluster_size bytes.  Free with ccodec_free().
 */
int ccodec_new(struct ccodec **out, int type, size_t cluster_size,
	       struct qerr *e);
void ccodec_free(struct ccodec *c);

/*
 * Compress len bytes (len <= cluster_size; a short last cluster is padded
 * with zeros to a whole cluster first) into out, which has room for cap
 * bytes.  Returns the compressed length, or 0 when the result would not be
 * shorter than cap: the caller then stores the cluster uncompressed.
 */
size_t ccodec_compress(struct ccodec *c, const void *in, size_t len,
		       void *out, size_t cap);

/*
 * Can img store compressed clusters?  When not, *why says why (qemu-img's
 * "Compression not supported for this file format" for raw).
 */
bool cwrite_supported(struct img *img, const char **why);

/*
 * The in-order writer of compressed clusters for one image.  Clusters put
 * one after the other are packed into the file and written with one
 * pwrite per batch (cwriter_flush(), or a full batch); a cluster is mapped
 * (its L2 entry set) only once its bytes are on the file.  Errors are left
 * in img->err.
 */
struct cwriter;

/* A writer for img, which must be cwrite_supported(). */
int cwriter_open(struct cwriter **out, struct img *img);
/* The compression type and cluster size the image wants. */
int cwriter_type(const struct cwriter *w);
uint64_t cwriter_cluster(const struct cwriter *w);
/*
 * Store guest cluster off (cluster-aligned, not yet allocated: -EIO
 * otherwise, as qemu) as the compressed bytes buf[0..len) from
 * ccodec_compress() with the image's type.  Clusters must come in
 * increasing guest order, from one thread.
 */
int cwriter_put(struct cwriter *w, uint64_t off, const void *buf, size_t len);
/* Write and map everything put so far. */
int cwriter_flush(struct cwriter *w);
/* Free w (without flushing: call cwriter_flush first to keep the data). */
void cwriter_close(struct cwriter *w);

/*
 * Parallel reads of compressed images: each worker thread owns a
 * decoder and reads through its own image handle with cread(), which
 * reads runs of compressed qcow2 clusters with one pread and inflates
 * them itself (libdeflate when present); anything else is img_read().
 */
struct cdecoder;

int cdecoder_new(struct cdecoder **out, struct qerr *e);
void cdecoder_free(struct cdecoder *d);
/* img_read() of [off, off+len), faster on compressed clusters; d may be
 * NULL (plain img_read). */
int cread(struct cdecoder *d, struct img *img, uint64_t off, void *buf,
	  uint64_t len);

#endif
