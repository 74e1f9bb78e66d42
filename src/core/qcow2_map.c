/*
 * qcow2_map.c: guest-to-host mapping (L1 -> L2 -> host) and the read side
 * of the data path.
 *
 * Spec: qcow2.txt "Cluster mapping", "Standard Cluster Descriptor",
 * "Compressed Clusters Descriptor", "Extended L2 Entries".  An L1 entry
 * names an L2 table (bits 9..55, COPIED at 63); an L2 entry is a standard
 * descriptor (host offset, bit 0 "reads as zero" in v3) or a compressed
 * one (bit 62); with extended L2 each entry has a second word with one
 * allocation bit and one zero bit per subcluster.
 *
 * Every entry is validated before use: reserved bits clear, offsets
 * aligned and inside the file, compressed ranges inside the file,
 * subcluster bits consistent.  A bad entry is -EIO naming the entry (and
 * marks a writable image corrupt).  Unallocated data reads from the
 * backing chain, zeros past its end or without one; zero clusters and
 * zero subclusters never touch the backing chain.
 */
#include <errno.h>
#include <string.h>

#include "core/qcow2_engine.h"

void qcow2_l2_set(const struct qcow2_engine *eng, uint64_t *t, uint64_t i,
		  uint64_t l2e, uint64_t bitmap)
{
	uint8_t *p = (uint8_t *)&t[i * (eng->l2_entry_bytes / 8)];

	be64_put(p, l2e);
	if (eng->extl2)
		be64_put(p + 8, bitmap);
}

int qcow2_l1_entry(struct qcow2_engine *eng, uint64_t idx, uint64_t *l2_off)
{
	uint64_t e, off;

	*l2_off = 0;
	if (idx >= eng->l1_size)
		return 0;
	e = eng->l1[idx];
	off = e & QCOW2_L1E_OFFSET_MASK;
	if (e & QCOW2_L1E_RESERVED)
		return qcow2_corrupt(eng, "L1 entry %llu (0x%llx) has reserved "
				     "bits set", (unsigned long long)idx,
				     (unsigned long long)e);
	if (off & (eng->cluster_size - 1))
		return qcow2_corrupt(eng, "L2 table offset 0x%llx in L1 entry "
				     "%llu is not cluster aligned",
				     (unsigned long long)off,
				     (unsigned long long)idx);
	if (off && off >= eng->phys_size)
		return qcow2_corrupt(eng, "L2 table offset 0x%llx in L1 entry "
				     "%llu is past the end of the file",
				     (unsigned long long)off,
				     (unsigned long long)idx);
	if (off == 0 && e)
		return qcow2_corrupt(eng, "L1 entry %llu (0x%llx) has no "
				     "offset", (unsigned long long)idx,
				     (unsigned long long)e);
	*l2_off = off;
	return 0;
}

static int check_compressed(struct qcow2_engine *eng, uint64_t guest_off,
			    uint64_t l2e, uint64_t bitmap)
{
	uint64_t off, len;

	if (l2e & QCOW2_OFLAG_COPIED)
		return qcow2_corrupt(eng, "compressed L2 entry 0x%llx for guest "
				     "offset 0x%llx has the COPIED flag",
				     (unsigned long long)l2e,
				     (unsigned long long)guest_off);
	if (eng->has_data_file)
		return qcow2_corrupt(eng, "compressed L2 entry for guest offset "
				     "0x%llx in an image with an external "
				     "data file",
				     (unsigned long long)guest_off);
	if (bitmap)
		return qcow2_corrupt(eng, "compressed L2 entry for guest offset "
				     "0x%llx has a subcluster bitmap",
				     (unsigned long long)guest_off);
	qcow2_cdesc_decode(eng->cluster_bits, l2e, &off, &len);
	if (off >= QCOW2_MAX_HOST_OFFSET || off == 0 ||
	    off + len - 512 >= eng->phys_size)
		return qcow2_corrupt(eng, "compressed L2 entry 0x%llx for guest "
				     "offset 0x%llx points past the end of "
				     "the file", (unsigned long long)l2e,
				     (unsigned long long)guest_off);
	return 0;
}

int qcow2_l2_check(struct qcow2_engine *eng, uint64_t guest_off,
		   uint64_t l2e, uint64_t bitmap)
{
	uint64_t reserved = QCOW2_L2E_STD_RESERVED, off;

	if (l2e & QCOW2_OFLAG_COMPRESSED)
		return check_compressed(eng, guest_off, l2e, bitmap);
	if (eng->extl2 || eng->s->meta.h.version < 3)
		reserved |= QCOW2_OFLAG_ZERO;
	if (l2e & reserved)
		return qcow2_corrupt(eng, "L2 entry 0x%llx for guest offset "
				     "0x%llx has reserved bits set",
				     (unsigned long long)l2e,
				     (unsigned long long)guest_off);
	off = l2e & QCOW2_L2E_OFFSET_MASK;
	if (off & (eng->cluster_size - 1))
		return qcow2_corrupt(eng, "cluster offset 0x%llx for guest "
				     "offset 0x%llx is not cluster aligned",
				     (unsigned long long)off,
				     (unsigned long long)guest_off);
	if (eng->has_data_file) {
		if ((off || (l2e & QCOW2_OFLAG_COPIED)) &&
		    off != (guest_off & ~(eng->cluster_size - 1)))
			return qcow2_corrupt(eng, "cluster offset 0x%llx for "
					     "guest offset 0x%llx does not "
					     "match it in an external data "
					     "file", (unsigned long long)off,
					     (unsigned long long)guest_off);
	} else if (off >= eng->phys_size) {
		return qcow2_corrupt(eng, "cluster offset 0x%llx for guest "
				     "offset 0x%llx is past the end of the "
				     "file", (unsigned long long)off,
				     (unsigned long long)guest_off);
	}
	if (eng->extl2) {
		uint64_t alloc = bitmap & QCOW2_BITMAP_ALLOC_MASK;
		bool host = off || (eng->has_data_file &&
				    (l2e & QCOW2_OFLAG_COPIED));

		if (alloc & (bitmap >> 32))
			return qcow2_corrupt(eng, "subcluster bitmap 0x%llx for "
					     "guest offset 0x%llx marks "
					     "subclusters both allocated and "
					     "zero", (unsigned long long)bitmap,
					     (unsigned long long)guest_off);
		if (alloc && !host)
			return qcow2_corrupt(eng, "subcluster bitmap 0x%llx for "
					     "guest offset 0x%llx has allocated "
					     "subclusters but no host cluster",
					     (unsigned long long)bitmap,
					     (unsigned long long)guest_off);
	}
	return 0;
}

/* Has the standard entry a host cluster (offset 0 counts in a data file)? */
static bool l2e_has_host(const struct qcow2_engine *eng, uint64_t l2e)
{
	return (l2e & QCOW2_L2E_OFFSET_MASK) ||
	       (eng->has_data_file && (l2e & QCOW2_OFLAG_COPIED));
}

enum qcow2_ctype qcow2_ctype_of(const struct qcow2_engine *eng,
				uint64_t guest_off, uint64_t l2e,
				uint64_t bitmap)
{
	bool host;

	if (l2e & QCOW2_OFLAG_COMPRESSED)
		return QC_COMPRESSED;
	host = l2e_has_host(eng, l2e);
	if (eng->extl2) {
		unsigned sc = (unsigned)(guest_off >> eng->sc_bits) &
			      (QCOW2_SUBCLUSTERS - 1);

		if (bitmap & (1ULL << sc))
			return QC_NORMAL;
		if (bitmap & (1ULL << (sc + 32)))
			return host ? QC_ZERO_ALLOC : QC_ZERO;
		return host ? QC_UNALLOC_HOST : QC_UNALLOC;
	}
	if (l2e & QCOW2_OFLAG_ZERO)
		return host ? QC_ZERO_ALLOC : QC_ZERO;
	return host ? QC_NORMAL : QC_UNALLOC;
}

static bool ctype_has_host(enum qcow2_ctype t)
{
	return t == QC_NORMAL || t == QC_ZERO_ALLOC || t == QC_UNALLOC_HOST;
}

/* End of the (sub)cluster that holds guest_off. */
static uint64_t unit_end(const struct qcow2_engine *eng, uint64_t guest_off)
{
	return (guest_off | ((1ULL << eng->sc_bits) - 1)) + 1;
}

int qcow2_map_extent(struct qcow2_engine *eng, uint64_t guest_off,
		     uint64_t max_len, struct qcow2_extent *ext)
{
	uint64_t l1i = qcow2_l1_index(eng, guest_off), l2_off, limit, pos;
	uint64_t table_end = (l1i + 1) << (eng->cluster_bits + eng->l2_bits);
	uint64_t i = qcow2_l2_index(eng, guest_off), e, bm, host = 0;
	uint64_t *t;
	int ret = qcow2_l1_entry(eng, l1i, &l2_off);

	if (ret < 0)
		return ret;
	limit = max_len < table_end - guest_off ? guest_off + max_len : table_end;
	memset(ext, 0, sizeof(*ext));
	if (!l2_off) {
		ext->type = QC_UNALLOC;
		ext->len = limit - guest_off;
		return 0;
	}
	ret = qcow2_cache_get(eng->l2_cache, l2_off, (void **)&t);
	if (ret < 0)
		return ret;
	e = qcow2_l2_get(eng, t, i);
	bm = qcow2_l2_bitmap(eng, t, i);
	ret = qcow2_l2_check(eng, guest_off, e, bm);
	if (ret < 0)
		goto out;
	ext->l2e = e;
	ext->type = qcow2_ctype_of(eng, guest_off, e, bm);
	if (ext->type == QC_COMPRESSED) {
		pos = (guest_off | (eng->cluster_size - 1)) + 1;
		ext->len = (pos < limit ? pos : limit) - guest_off;
		goto out;
	}
	if (ctype_has_host(ext->type))
		host = (e & QCOW2_L2E_OFFSET_MASK) +
		       (guest_off & (eng->cluster_size - 1));
	ext->host_off = host;
	for (pos = unit_end(eng, guest_off); pos < limit;
	     pos = unit_end(eng, pos)) {
		enum qcow2_ctype t2;

		if ((pos & (eng->cluster_size - 1)) == 0) {
			i++;
			e = qcow2_l2_get(eng, t, i);
			bm = qcow2_l2_bitmap(eng, t, i);
			ret = qcow2_l2_check(eng, pos, e, bm);
			if (ret < 0)
				goto out;
		}
		t2 = qcow2_ctype_of(eng, pos, e, bm);
		if (t2 != ext->type)
			break;
		if (ctype_has_host(t2) &&
		    (e & QCOW2_L2E_OFFSET_MASK) + (pos & (eng->cluster_size - 1)) !=
			    host + (pos - guest_off))
			break;
	}
	ext->len = (pos < limit ? pos : limit) - guest_off;
out:
	qcow2_cache_put(eng->l2_cache, (void **)&t);
	return ret;
}

int qcow2_backing_read(struct qcow2_engine *eng, uint64_t off, uint8_t *buf,
		       size_t len)
{
	struct img *b = eng->img->backing;
	size_t n = 0;
	int ret;

	if (b && off < b->size) {
		n = b->size - off < len ? (size_t)(b->size - off) : len;
		ret = img_read(b, off, buf, n);
		if (ret < 0)
			return qerr_set(eng->err, ret, "%s: %s", b->filename,
					qerr_msg(&b->err));
	}
	memset(buf + n, 0, len - n);
	return 0;
}

/* Decompress the cluster of descriptor l2e into eng->cbuf. */
static int load_compressed(struct qcow2_engine *eng, uint64_t guest_off,
			   uint64_t l2e)
{
	uint64_t off, len;
	int ret;

	if (eng->cbuf_l2e == l2e)
		return 0;
	/* Compressed clusters are not encrypted, even in an encrypted
	 * image: qemu stores and reads them as they are. */
	qcow2_cdesc_decode(eng->cluster_bits, l2e, &off, &len);
	eng->cbuf_l2e = 0;
	ret = qfile_pread_zero(eng->file, eng->zbuf, len, off, eng->err);
	if (ret < 0)
		return ret;
	ret = qcow2_decompress(eng->s->meta.h.compression_type, eng->zbuf, len,
			       eng->cbuf, eng->cluster_size);
	if (ret == -ENOTSUP)
		return qerr_set(eng->err, ret, "zstd compressed clusters are "
				"not supported by this build");
	if (ret < 0)
		return qerr_set(eng->err, -EIO, "compressed cluster for guest "
				"offset 0x%llx (host offset 0x%llx) cannot be "
				"decompressed",
				(unsigned long long)(guest_off & ~(eng->cluster_size - 1)),
				(unsigned long long)off);
	eng->cbuf_l2e = l2e;
	return 0;
}

int qcow2_read_in_cluster(struct qcow2_engine *eng, uint64_t guest_off,
			  uint64_t l2e, uint64_t bitmap, uint8_t *buf,
			  size_t len)
{
	uint64_t in = guest_off & (eng->cluster_size - 1);
	int ret = 0;

	while (len > 0 && ret == 0) {
		enum qcow2_ctype t = qcow2_ctype_of(eng, guest_off, l2e, bitmap);
		size_t n = len;
		uint64_t end = unit_end(eng, guest_off);

		/* Merge the subclusters of the same kind. */
		if (t != QC_COMPRESSED) {
			while (end - guest_off < len &&
			       qcow2_ctype_of(eng, end, l2e, bitmap) == t)
				end = unit_end(eng, end);
			if (end - guest_off < len)
				n = (size_t)(end - guest_off);
		}
		switch (t) {
		case QC_UNALLOC:
		case QC_UNALLOC_HOST:
			ret = qcow2_backing_read(eng, guest_off, buf, n);
			break;
		case QC_ZERO:
		case QC_ZERO_ALLOC:
			memset(buf, 0, n);
			break;
		case QC_NORMAL:
			ret = qcow2_data_pread(eng,
					       (l2e & QCOW2_L2E_OFFSET_MASK) + in,
					       guest_off, buf, n);
			break;
		case QC_COMPRESSED:
			ret = load_compressed(eng, guest_off, l2e);
			if (ret == 0)
				memcpy(buf, eng->cbuf + in, n);
			break;
		}
		buf += n;
		guest_off += n;
		in += n;
		len -= n;
	}
	return ret;
}
