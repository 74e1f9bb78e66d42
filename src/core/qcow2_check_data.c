/*
 * qcow2_check_data.c: `check --data`: read back every allocated cluster,
 * which qemu-img's check never does (it looks at metadata only).
 *
 * Spec: qcow2.txt "Cluster mapping" and "Compressed Clusters Descriptor".
 * For the active layer and every snapshot (each L2 table once, however
 * many L1 tables share it): standard clusters are read from the image (or
 * its data file) in runs of adjacent clusters, skipping what the file
 * system reports as holes (a hole reads as zeros and cannot fail); a run
 * that fails is read again cluster by cluster to name the bad ones.
 * Compressed clusters are read and decompressed with the engine's codec,
 * and must yield exactly one cluster: a stream that ends early, is
 * corrupt, or goes on past the cluster is reported.  Encrypted clusters
 * are only read (they cannot be decrypted without a key).
 *
 * Entries the metadata pass already reported (unaligned, past the end of
 * the file) are skipped.  Each bad cluster counts as a corruption and is
 * listed, by guest and host offset, in the result.  Memory: one bit per
 * cluster of the file (clusters and L2 tables already read) and one read
 * buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_check.h"
#include "core/qcow2_engine.h"

#define RUN_MAX_BYTES (4U << 20)

struct dpass {
	struct qchk *q;
	struct qfile *data;	/* where standard clusters live */
	uint64_t data_size;
	uint64_t *seen;		/* clusters (and L2 tables) done */
	uint64_t seen_n;
	uint8_t *buf;		/* a run of clusters */
	uint64_t run_max;	/* clusters per run */
	uint8_t *cbuf;		/* compressed bytes */
	uint8_t *out;		/* one cluster and a byte */
	const char *snap;	/* snapshot id, NULL for the active layer */
	char suffix[96];
	/* the pending run */
	uint64_t run_host, run_guest, run_n;
};

static bool seen_test_set(struct dpass *d, uint64_t k)
{
	bool was;

	if (k >= d->seen_n)
		return false;
	was = (d->seen[k >> 6] >> (k & 63)) & 1;
	d->seen[k >> 6] |= 1ULL << (k & 63);
	return was;
}

static void bad(struct dpass *d, enum check_code code, uint64_t guest,
		uint64_t host, int err)
{
	struct check_args a = { .n = { guest, host, (uint64_t)err },
				.s = { d->suffix } };
	struct check_bad_data b = { guest, host, d->snap, code };

	check_problem(d->q->c, code, &a, 0);
	check_bad_data(d->q->c, &b);
}

/* Read [host, host+len) unless the file system says it is a hole. */
static int read_some(struct dpass *d, uint64_t host, uint64_t len)
{
	struct qerr e = { 0 };
	bool data;
	uint64_t pnum;

	if (host >= d->data_size)
		return 0;
	if (len > d->data_size - host)
		len = d->data_size - host;
	while (len) {
		if (qfile_data_run(d->data, host, &data, &pnum, &e) < 0)
			data = true, pnum = len;
		if (pnum > len || pnum == 0)
			pnum = len;
		if (data && qfile_pread(d->data, d->buf, pnum, host, &e) < 0)
			return e.code ? e.code : -EIO;
		host += pnum;
		len -= pnum;
	}
	return 0;
}

static void run_flush(struct dpass *d)
{
	uint64_t cs = d->q->cs;
	int ret;

	if (!d->run_n)
		return;
	ret = read_some(d, d->run_host, d->run_n * cs);
	for (uint64_t i = 0; ret < 0 && i < d->run_n; i++) {
		int r = read_some(d, d->run_host + i * cs, cs);

		if (r < 0)
			bad(d, CHK_DATA_READ, d->run_guest + i * cs,
			    d->run_host + i * cs, -r);
	}
	d->run_n = 0;
}

static void standard(struct dpass *d, uint64_t guest, uint64_t host)
{
	struct qchk *q = d->q;

	if ((host & (q->cs - 1)) || (!q->data_file && host >= q->file_size))
		return;
	if (!q->data_file && seen_test_set(d, host >> q->cluster_bits))
		return;
	if (d->run_n && (host != d->run_host + d->run_n * q->cs ||
			 guest != d->run_guest + d->run_n * q->cs ||
			 d->run_n == d->run_max))
		run_flush(d);
	if (!d->run_n) {
		d->run_host = host;
		d->run_guest = guest;
	}
	d->run_n++;
}

static void compressed(struct dpass *d, uint64_t guest, uint64_t e)
{
	struct qchk *q = d->q;
	int type = q->st->meta.h.compression_type;
	uint64_t off, len;
	struct qerr err = { 0 };

	qcow2_cdesc_decode(q->cluster_bits, e & ~(QCOW2_OFLAG_COPIED |
						  QCOW2_OFLAG_COMPRESSED),
			   &off, &len);
	if (off + len > q->file_size && off + len - q->file_size >= q->cs)
		return;		/* reported by the metadata pass */
	if (qfile_pread_zero(q->file, d->cbuf, len, off, &err) < 0) {
		bad(d, CHK_DATA_READ, guest, off, -err.code);
		return;
	}
	if (q->st->meta.h.crypt_method != QCOW2_CRYPT_NONE)
		return;
	/* Exactly one cluster: one more byte must not be available. */
	if (qcow2_decompress(type, d->cbuf, len, d->out, q->cs + 1) == 0)
		bad(d, CHK_DATA_SIZE, guest, off, 0);
	else if (qcow2_decompress(type, d->cbuf, len, d->out, q->cs) < 0)
		bad(d, CHK_DATA_DECOMPRESS, guest, off, 0);
}

static int l2_table(struct dpass *d, uint64_t l2_off, uint64_t guest0)
{
	struct qchk *q = d->q;
	uint64_t n = 1ULL << q->l2_bits;
	int ret;

	if ((l2_off & (q->cs - 1)) || l2_off >= q->file_size ||
	    seen_test_set(d, (l2_off >> q->cluster_bits) + d->seen_n / 2))
		return 0;
	ret = qfile_pread_zero(q->file, q->l2buf, q->cs, l2_off,
			       &q->c->r->err);
	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint64_t e = be64_get(q->l2buf + i * q->l2e_bytes);
		uint64_t guest = guest0 + (i << q->cluster_bits);
		enum qchk_ctype t = qchk_ctype(q, e);

		if (t == T_COMPRESSED) {
			run_flush(d);
			compressed(d, guest, e);
		} else if (t == T_NORMAL) {
			uint64_t bm = q->extl2 ? be64_get(q->l2buf + i * 16 + 8)
					       : QCHK_BITMAP_ALLOC;

			if (bm & QCHK_BITMAP_ALLOC)
				standard(d, guest, e & QCOW2_L2E_OFFSET_MASK);
		}
	}
	run_flush(d);
	return ret;
}

static int layer(struct dpass *d, uint64_t l1_off, uint32_t l1_size)
{
	struct qchk *q = d->q;
	uint64_t span = 1ULL << (q->l2_bits + q->cluster_bits), chunk = 4096;
	uint8_t *be = malloc(chunk * 8);
	int ret = 0;

	if (!be)
		return -ENOMEM;
	if ((l1_off & (q->cs - 1)) || l1_size > QCHK_MAX_L1_ENTRIES)
		l1_size = 0;
	for (uint64_t base = 0; base < l1_size && ret == 0; base += chunk) {
		uint64_t n = l1_size - base < chunk ? l1_size - base : chunk;

		ret = qfile_pread_zero(q->file, be, n * 8, l1_off + base * 8,
				       &q->c->r->err);
		for (uint64_t i = 0; i < n && ret == 0; i++)
			ret = l2_table(d, be64_get(be + i * 8) &
						  QCOW2_L1E_OFFSET_MASK,
				       (base + i) * span);
	}
	free(be);
	return ret;
}

static int setup(struct dpass *d, struct qchk *q)
{
	uint64_t cs = q->cs;
	struct qerr e = { 0 };

	d->q = q;
	d->data = q->data_file && q->st->data_file ? q->st->data_file : q->file;
	if (qfile_size(d->data, &d->data_size, &e) < 0)
		return e.code;
	/* Two bitmaps in one: clusters read, then L2 tables read. */
	d->seen_n = ((q->file_size + cs - 1) >> q->cluster_bits) * 2;
	d->seen = calloc(d->seen_n / 64 + 1, 8);
	d->run_max = RUN_MAX_BYTES / cs ? RUN_MAX_BYTES / cs : 1;
	d->buf = malloc(d->run_max * cs);
	d->cbuf = malloc(2 * cs + 1024);
	d->out = malloc(cs + 1);
	if (!d->seen || !d->buf || !d->cbuf || !d->out)
		return -ENOMEM;
	return 0;
}

int qchk_data(struct qchk *q)
{
	const struct qcow2_header *h = &q->st->meta.h;
	struct dpass d = { 0 };
	int ret;

	q->c->r->data_checked = true;
	if (q->data_file && !q->st->data_file)
		return 0;
	ret = setup(&d, q);
	if (ret == 0)
		ret = layer(&d, h->l1_table_offset, h->l1_size);
	for (uint32_t i = 0; i < q->nb_snaps && ret == 0; i++) {
		d.snap = q->snaps[i].id;
		snprintf(d.suffix, sizeof(d.suffix), " in snapshot %s",
			 q->snaps[i].id);
		ret = layer(&d, q->snaps[i].l1_offset, q->snaps[i].l1_size);
	}
	free(d.seen);
	free(d.buf);
	free(d.cbuf);
	free(d.out);
	if (ret < 0)
		qerr_set(&q->c->r->err, ret, "%s", strerror(-ret));
	return ret;
}
