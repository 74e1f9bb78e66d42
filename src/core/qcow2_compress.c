/*
 * qcow2_compress.c: compressed clusters: the codecs and the descriptor.
 *
 * Spec: qcow2.txt "Compressed Clusters Descriptor" and compression_type.
 * zlib clusters are raw deflate streams (no zlib header); like qemu we
 * compress with windowBits -12 and memLevel 9, and inflate with a 32 KiB
 * window, which also accepts streams made with smaller windows.  zstd
 * clusters are single zstd frames; decompression streams, because the
 * bytes after the frame belong to the next compressed cluster.
 *
 * The descriptor, with x = 62 - (cluster_bits - 8): bits 0..x-1 hold the
 * host byte offset, bits x..61 the number of 512-byte sectors the data
 * spans beyond the one holding the offset.  Decompression must produce a
 * whole cluster: anything else is a bad stream (-EIO), never a crash.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "config.h"
#if HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#include "core/qcow2_engine.h"

static long zlib_compress(const uint8_t *src, size_t len, uint8_t *dst,
			  size_t cap)
{
	z_stream strm;
	long out;
	int ret;

	if (len > UINT_MAX || cap > UINT_MAX)
		return -EINVAL;
	memset(&strm, 0, sizeof(strm));
	if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	strm.next_in = (Bytef *)src;
	strm.avail_in = (uInt)len;
	strm.next_out = dst;
	strm.avail_out = (uInt)cap;
	ret = deflate(&strm, Z_FINISH);
	out = (long)(cap - strm.avail_out);
	deflateEnd(&strm);
	return ret == Z_STREAM_END ? out : -ENOSPC;
}

static int zlib_decompress(const uint8_t *src, size_t slen, uint8_t *dst,
			   size_t dlen)
{
	z_stream strm;
	int ret;

	if (slen > UINT_MAX || dlen > UINT_MAX)
		return -EIO;
	memset(&strm, 0, sizeof(strm));
	if (inflateInit2(&strm, -15) != Z_OK)
		return -ENOMEM;
	strm.next_in = (Bytef *)src;
	strm.avail_in = (uInt)slen;
	strm.next_out = dst;
	strm.avail_out = (uInt)dlen;
	ret = inflate(&strm, Z_FINISH);
	inflateEnd(&strm);
	/* Trailing input is the next cluster's; a full output is success. */
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && strm.avail_out == 0)
		return 0;
	return -EIO;
}

#if HAVE_ZSTD
static long zstd_compress(const uint8_t *src, size_t len, uint8_t *dst,
			  size_t cap)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t n;

	if (!cctx)
		return -ENOMEM;
	n = ZSTD_compress2(cctx, dst, cap, src, len);
	ZSTD_freeCCtx(cctx);
	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall
			       ? -ENOSPC : -EIO;
	return (long)n;
}

static int zstd_decompress(const uint8_t *src, size_t slen, uint8_t *dst,
			   size_t dlen)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	ZSTD_inBuffer in = { src, slen, 0 };
	ZSTD_outBuffer out = { dst, dlen, 0 };
	int ret = -EIO;

	if (!dctx)
		return -ENOMEM;
	while (out.pos < out.size) {
		size_t r = ZSTD_decompressStream(dctx, &out, &in);

		if (ZSTD_isError(r))
			break;
		if (out.pos == out.size) {
			ret = 0;
			break;
		}
		/* Frame over, or input used up, before a whole cluster. */
		if (r == 0 || in.pos == in.size)
			break;
	}
	ZSTD_freeDCtx(dctx);
	return ret;
}
#endif

long qcow2_compress(int type, const uint8_t *src, size_t len, uint8_t *dst,
		    size_t cap)
{
	if (type == QCOW2_COMPRESSION_ZLIB)
		return zlib_compress(src, len, dst, cap);
#if HAVE_ZSTD
	if (type == QCOW2_COMPRESSION_ZSTD)
		return zstd_compress(src, len, dst, cap);
#endif
	return -ENOTSUP;
}

int qcow2_decompress(int type, const uint8_t *src, size_t slen, uint8_t *dst,
		     size_t dlen)
{
	if (type == QCOW2_COMPRESSION_ZLIB)
		return zlib_decompress(src, slen, dst, dlen);
#if HAVE_ZSTD
	if (type == QCOW2_COMPRESSION_ZSTD)
		return zstd_decompress(src, slen, dst, dlen);
#endif
	return -ENOTSUP;
}

uint64_t qcow2_cdesc_encode(unsigned cluster_bits, uint64_t off, uint64_t len)
{
	unsigned x = 70 - cluster_bits;
	uint64_t extra = ((off + len - 1) >> 9) - (off >> 9);

	return off | (extra << x);
}

void qcow2_cdesc_decode(unsigned cluster_bits, uint64_t l2e, uint64_t *off,
			uint64_t *len)
{
	unsigned x = 70 - cluster_bits;
	uint64_t sectors = ((l2e >> x) & ((1ULL << (cluster_bits - 8)) - 1)) + 1;

	*off = l2e & ((1ULL << x) - 1);
	*len = sectors * 512 - (*off & 511);
}
