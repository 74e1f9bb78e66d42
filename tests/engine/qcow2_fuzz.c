/*
 * qcow2_fuzz.c: seeded, reproducible differential tester of the qcow2
 * engine.  Random writes, zero writes, discards, compressed writes, reads
 * and flushes at offsets and lengths that straddle cluster and subcluster
 * boundaries go to a qcow2 image through the core API and to a raw model
 * held in memory; every read is compared with the model.  After each
 * batch the image is closed and judged by qemu: `qemu-img check` must
 * report no errors and no leaks, `qemu-img compare` must find the image
 * equal to the model.  Between batches qemu-io may write the same image
 * and qemu-img may take internal snapshots, whose content is checked at
 * the end.
 *
 *   qcow2-fuzz run    [options] IMAGE
 *   qcow2-fuzz crash  [options] IMAGE LOG   (dies from the fault hook)
 *   qcow2-fuzz verify [options] IMAGE LOG   (after crash)
 *   qcow2-fuzz mem    [options] IMAGE       (memory bound on a huge image)
 *   qcow2-fuzz cat    IMAGE OUT             (guest view to a raw file)
 *   qcow2-fuzz map    IMAGE                 (block status as qemu-img map
 *                                            --output=json prints it)
 *   qcow2-fuzz write  IMAGE OFF LEN BYTE    (one write; errors on stderr)
 *   qcow2-fuzz zero|discard IMAGE OFF LEN   (one zero write / discard)
 *   qcow2-fuzz compress IMAGE OFF LEN BYTE  (one compressed write)
 *
 * Options: --seed N, --ops N, --batch N, --max-len N, --base RAW (the
 * backing chain's content, raw), --init RAW (the image's content at the
 * start, when not the backing chain's), --qemu-io, --snapshots, --compressed,
 * --rss-limit MiB, --secret PASS (the image is encrypted with this
 * passphrase: LUKS or legacy AES; qemu gets it too).  The same seed gives the same operations, so a failure
 * reproduces exactly; crash and verify regenerate the same sequence.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/img.h"
#include "core/qcow2_engine.h"
#include "core/secret.h"
#include "tests/engine/qcow2_fuzz.h"

enum op_kind { OP_WRITE, OP_READ, OP_ZERO, OP_ZERO_UNMAP, OP_DISCARD,
	       OP_COMPRESSED, OP_FLUSH };

struct op {
	enum op_kind kind;
	uint64_t off, len;
};

struct cfg {
	uint64_t seed, ops, batch, max_len;
	const char *base, *init, *image, *log;
	bool qemu_io, snapshots, compressed;
	uint64_t rss_limit_mib;
	const char *secret;	/* passphrase of an encrypted image, or NULL */
	/* From the image header. */
	uint64_t size, cs, sc;
	unsigned version;
	bool data_file;
	bool data_file_raw;	/* discard leaves the raw data file alone */
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "qcow2-fuzz: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* An offset near a cluster or subcluster boundary, or anywhere. */
static uint64_t pick_off(const struct cfg *c)
{
	uint64_t unit = rnd_below(3) == 0 ? c->sc : c->cs;
	uint64_t anchor = rnd_below(c->size / unit + 1) * unit;
	int64_t delta;

	switch (rnd_below(4)) {
	case 0:
		delta = 0;
		break;
	case 1:
		delta = -(int64_t)rnd_below(1024) * 512 % (int64_t)unit;
		break;
	case 2:
		delta = (int64_t)rnd_below(unit);
		break;
	default:
		delta = (int64_t)rnd_below(1024) - 512;
		break;
	}
	if (delta < 0 && (uint64_t)-delta > anchor)
		delta = 0;
	anchor += (uint64_t)delta;
	return anchor >= c->size ? c->size - 1 - rnd_below(c->cs) % c->size : anchor;
}

static uint64_t pick_len(const struct cfg *c, uint64_t off)
{
	uint64_t len;

	switch (rnd_below(4)) {
	case 0:
		len = 1 + rnd_below(4096);
		break;
	case 1:
		len = 1 + rnd_below(c->cs);
		break;
	case 2:
		len = c->cs * (1 + rnd_below(3));
		break;
	default:
		len = 1 + rnd_below(c->max_len);
		break;
	}
	if (len > c->max_len)
		len = c->max_len;
	if (len > c->size - off)
		len = c->size - off;
	return len;
}

static struct op gen_op(const struct cfg *c)
{
	struct op o = { 0 };
	uint64_t r = rnd_below(100);

	if (r < 45)
		o.kind = OP_WRITE;
	else if (r < 65)
		o.kind = OP_READ;
	else if (r < 73)
		o.kind = OP_ZERO;
	else if (r < 80)
		o.kind = OP_ZERO_UNMAP;
	else if (r < 90)
		o.kind = OP_DISCARD;
	else if (r < 95)
		o.kind = c->compressed ? OP_COMPRESSED : OP_WRITE;
	else
		o.kind = OP_FLUSH;
	o.off = pick_off(c);
	o.len = pick_len(c, o.off);
	if (o.kind == OP_COMPRESSED) {
		o.off = rnd_below(c->size / c->cs) * c->cs;
		o.len = c->cs;
	}
	return o;
}

/* The bytes op number i writes: distinct per op, sometimes compressible. */
static void op_data(uint64_t i, uint8_t *buf, uint64_t len, bool compressible)
{
	uint64_t save = rng_state;

	rng_state = i * 0x51ed270b3a1fULL + 17;
	for (uint64_t k = 0; k < len; k += 8) {
		uint64_t v = compressible ? (i << 16 | (k / 512)) * 0x0101010101ULL
					  : rnd();

		memcpy(buf + k, &v, len - k < 8 ? len - k : 8);
	}
	rng_state = save;
}

struct model {
	uint8_t *mem;
	uint8_t *base;		/* backing content, or NULL for zeros */
};

/* Discard: whole clusters only; v3 reads zeros, v2 the backing file. */
static void model_discard(const struct cfg *c, struct model *m, uint64_t off,
			  uint64_t len)
{
	uint64_t a = (off + c->cs - 1) / c->cs * c->cs, end = off + len;
	uint64_t b = end == c->size ? end : end / c->cs * c->cs;

	if (b <= a || c->data_file_raw)
		return;
	if (c->version < 3 && m->base)
		memcpy(m->mem + a, m->base + a, b - a);
	else
		memset(m->mem + a, 0, b - a);
}

static void model_apply(const struct cfg *c, struct model *m, uint64_t i,
			const struct op *o)
{
	switch (o->kind) {
	case OP_WRITE:
	case OP_COMPRESSED:
		op_data(i, m->mem + o->off, o->len, o->kind == OP_COMPRESSED && i % 3);
		break;
	case OP_ZERO:
	case OP_ZERO_UNMAP:
		memset(m->mem + o->off, 0, o->len);
		break;
	case OP_DISCARD:
		model_discard(c, m, o->off, o->len);
		break;
	default:
		break;
	}
}

static void model_free(struct model *m)
{
	free(m->mem);
	free(m->base);
}

static int run_cmd(const char *cmd, bool quiet)
{
	int st = system(cmd);

	if (st == -1 || !WIFEXITED(st))
		die("cannot run: %s", cmd);
	if (!quiet && WEXITSTATUS(st))
		fprintf(stderr, "qcow2-fuzz: exit %d: %s\n", WEXITSTATUS(st), cmd);
	return WEXITSTATUS(st);
}

#define FUZZ_KEY_ID "fuzzkey"

static struct img *open_rw(const struct cfg *c)
{
	struct img_open_opts oo = { .key_secret = c->secret ? FUZZ_KEY_ID
							    : NULL };
	struct qerr e = { 0 };
	struct img *img;

	if (img_open_with(&img, c->image, "qcow2", IMG_RDWR, &oo, &e) < 0)
		die("open %s: %s", c->image, qerr_msg(&e));
	return img;
}

static void fail_op(struct img *img, uint64_t i, const struct op *o, int ret)
{
	die("op %" PRIu64 " (kind %d, off %" PRIu64 ", len %" PRIu64 "): %s (%d)",
	    i, o->kind, o->off, o->len, qerr_msg(&img->err), ret);
}

/* Run op i on the image; reads are compared with the model. */
static int do_op(const struct cfg *c, struct img *img, struct model *m,
		 uint64_t i, const struct op *o, uint8_t *buf)
{
	static const char *const names[] = { "write", "read", "zero",
		"zero-unmap", "discard", "compressed", "flush" };
	int ret = 0;

	if (getenv("QFUZZ_TRACE"))
		fprintf(stderr, "%" PRIu64 ": %s %" PRIu64 " +%" PRIu64
			" [0x%" PRIx64 "..0x%" PRIx64 ")\n", i, names[o->kind],
			o->off, o->len, o->off, o->off + o->len);

	switch (o->kind) {
	case OP_WRITE:
		op_data(i, buf, o->len, false);
		ret = img_write(img, o->off, buf, o->len);
		break;
	case OP_COMPRESSED:
		ret = img_discard(img, o->off, o->len);
		op_data(i, buf, o->len, i % 3);
		if (ret == 0)
			ret = img_write_compressed(img, o->off, buf, o->len);
		break;
	case OP_READ:
		ret = img_read(img, o->off, buf, o->len);
		if (ret == 0 && memcmp(buf, m->mem + o->off, o->len) != 0) {
			uint64_t k = 0;

			while (buf[k] == m->mem[o->off + k])
				k++;
			die("op %" PRIu64 ": read at %" PRIu64 " differs from the "
			    "model at %" PRIu64 " (0x%02x, expected 0x%02x)", i,
			    o->off, o->off + k, buf[k], m->mem[o->off + k]);
		}
		break;
	case OP_ZERO:
		ret = img_write_zeroes(img, o->off, o->len, 0);
		break;
	case OP_ZERO_UNMAP:
		ret = img_write_zeroes(img, o->off, o->len, IMG_ZERO_MAY_UNMAP);
		break;
	case OP_DISCARD:
		ret = img_discard(img, o->off, o->len);
		break;
	case OP_FLUSH:
		ret = img_flush(img);
		break;
	}
	(void)c;
	return ret;
}

static void write_file(const char *path, const uint8_t *p, uint64_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0)
		die("cannot write %s", path);
}

static void read_header(struct cfg *c)
{
	uint8_t h[112] = { 0 };
	FILE *f = fopen(c->image, "rb");

	if (!f || fread(h, 1, sizeof(h), f) < 72)
		die("cannot read %s", c->image);
	fclose(f);
	c->version = be32_get(h + 4);
	c->cs = 1ULL << be32_get(h + 20);
	c->size = be64_get(h + 24);
	c->sc = c->cs;
	if (c->version >= 3 && (be64_get(h + 72) & QCOW2_INCOMPAT_EXTL2))
		c->sc = c->cs / 32;
	c->data_file = c->version >= 3 && (be64_get(h + 72) & QCOW2_INCOMPAT_DATA_FILE);
	if (c->data_file)
		c->compressed = false;
	c->data_file_raw = c->data_file &&
			   (be64_get(h + 88) & QCOW2_AUTOCLEAR_DATA_FILE_RAW);
	if (!c->max_len)
		c->max_len = 3 * c->cs > (256 << 10) ? 3 * c->cs : 256 << 10;
}

static void model_init(const struct cfg *c, struct model *m)
{
	m->mem = calloc(1, c->size);
	m->base = NULL;
	if (!m->mem)
		die("out of memory");
	if (c->base) {
		FILE *f = fopen(c->base, "rb");

		m->base = calloc(1, c->size);
		if (!f || !m->base)
			die("cannot read %s", c->base);
		if (fread(m->base, 1, c->size, f) == 0 && ferror(f))
			die("cannot read %s", c->base);
		fclose(f);
		memcpy(m->mem, m->base, c->size);
	}
	if (c->init) {
		FILE *f = fopen(c->init, "rb");

		if (!f || (fread(m->mem, 1, c->size, f) == 0 && ferror(f)))
			die("cannot read %s", c->init);
		fclose(f);
	}
}

/*
 * How qemu names the image (file name quoted for sh): with --secret, the
 * secret object and an option string, else -f qcow2 FILE.  A raw file
 * next to it (compare) then needs an option string too.
 */
static const char *qemu_img(const struct cfg *c, const char *file)
{
	static char spec[2][2048];
	static int k;
	char *p = spec[k++ & 1];

	if (c->secret)
		snprintf(p, sizeof(spec[0]), "--object secret,id=%s,data=%s "
			 "--image-opts 'driver=qcow2,file.filename=%s,"
			 "encrypt.key-secret=%s'", FUZZ_KEY_ID, c->secret,
			 file, FUZZ_KEY_ID);
	else
		snprintf(p, sizeof(spec[0]), "-f qcow2 '%s'", file);
	return p;
}

/*
 * qemu-img check's exit status on the closed image; its report is shown
 * when the status is not one of the accepted ones (0, and 3 if leaks_ok).
 */
static int qemu_check(const struct cfg *c, bool leaks_ok)
{
	char cmd[4096];
	int st;

	snprintf(cmd, sizeof(cmd), "qemu-img check %s >'%s.check' 2>&1",
		 qemu_img(c, c->image), c->image);
	st = run_cmd(cmd, true);
	if (st != 0 && !(leaks_ok && st == 3)) {
		snprintf(cmd, sizeof(cmd), "cat '%s.check' >&2", c->image);
		run_cmd(cmd, true);
	}
	return st;
}

/* qemu's verdict on the closed image; model written next to it. */
static void judge(const struct cfg *c, struct model *m, uint64_t batch)
{
	char cmd[4096], model[1024];

	snprintf(model, sizeof(model), "%s.model", c->image);
	write_file(model, m->mem, c->size);
	if (qemu_check(c, false) != 0)
		die("batch %" PRIu64 ": qemu-img check is not clean", batch);
	if (c->secret)
		snprintf(cmd, sizeof(cmd), "qemu-img compare -q %s "
			 "'driver=raw,file.filename=%s'", qemu_img(c, c->image),
			 model);
	else
		snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f qcow2 "
			 "-F raw '%s' '%s'", c->image, model);
	if (run_cmd(cmd, false) != 0)
		die("batch %" PRIu64 ": qemu-img compare finds the image differs "
		    "from the model", batch);
}

/* qemu-io writes the image between two of our batches. */
static void qemu_io_turn(const struct cfg *c, struct model *m, uint64_t batch)
{
	char cmd[4096];
	size_t n = 0;

	n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "qemu-io");
	for (int k = 0; k < 4; k++) {
		uint64_t off = pick_off(c) & ~511ULL, len = pick_len(c, off);
		unsigned pat = (unsigned)((batch * 4 + (uint64_t)k) % 250) + 1;

		len = (len + 511) & ~511ULL;
		if (off + len > c->size)
			len = c->size - off;
		if (len == 0)
			continue;
		if (k == 3) {
			n += (size_t)snprintf(cmd + n, sizeof(cmd) - n,
					      " -c 'write -z %" PRIu64 " %" PRIu64 "'",
					      off, len);
			memset(m->mem + off, 0, len);
		} else {
			n += (size_t)snprintf(cmd + n, sizeof(cmd) - n,
					      " -c 'write -P %u %" PRIu64 " %" PRIu64 "'",
					      pat, off, len);
			memset(m->mem + off, (int)pat, len);
		}
	}
	snprintf(cmd + n, sizeof(cmd) - n, " %s >/dev/null",
		 qemu_img(c, c->image));
	if (run_cmd(cmd, false) != 0)
		die("qemu-io failed");
}

static void snapshot_take(const struct cfg *c, struct model *m, unsigned k)
{
	char cmd[4096], path[1024];

	snprintf(cmd, sizeof(cmd), "qemu-img snapshot -c s%u %s", k,
		 qemu_img(c, c->image));
	if (run_cmd(cmd, false) != 0)
		die("qemu-img snapshot failed");
	snprintf(path, sizeof(path), "%s.s%u.raw", c->image, k);
	write_file(path, m->mem, c->size);
}

static void snapshot_check(const struct cfg *c, unsigned k)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "qemu-img convert -l snapshot.name=s%u -O raw %s '%s.out' && "
		 "cmp -s '%s.out' '%s.s%u.raw'",
		 k, qemu_img(c, c->image), c->image, c->image, c->image, k);
	if (run_cmd(cmd, false) != 0)
		die("snapshot s%u no longer has its content", k);
}

/* The whole guest view through our engine equals the model. */
static void full_read_check(const struct cfg *c, struct img *img,
			    struct model *m, uint8_t *buf)
{
	for (uint64_t off = 0; off < c->size; off += c->max_len) {
		uint64_t n = c->size - off < c->max_len ? c->size - off : c->max_len;

		if (img_read(img, off, buf, n) < 0)
			die("read at %" PRIu64 ": %s", off, qerr_msg(&img->err));
		if (memcmp(buf, m->mem + off, n) != 0) {
			uint64_t k = 0;

			while (buf[k] == m->mem[off + k])
				k++;
			die("full read: differs from the model at %" PRIu64
			    " (0x%02x, expected 0x%02x)", off + k, buf[k],
			    m->mem[off + k]);
		}
	}
}

static int cmd_run(struct cfg *c)
{
	struct model m;
	uint8_t *buf;
	struct img *img;
	unsigned snaps = 0;

	read_header(c);
	model_init(c, &m);
	buf = malloc(c->max_len > c->cs ? c->max_len : c->cs);
	img = open_rw(c);
	rng_state = c->seed;
	for (uint64_t i = 0; i < c->ops; i++) {
		struct op o = gen_op(c);
		int ret = do_op(c, img, &m, i, &o, buf);

		if (ret < 0)
			fail_op(img, i, &o, ret);
		model_apply(c, &m, i, &o);
		if ((i + 1) % c->batch && i + 1 != c->ops)
			continue;
		full_read_check(c, img, &m, buf);
		img_close(img);
		judge(c, &m, i / c->batch);
		if (c->qemu_io)
			qemu_io_turn(c, &m, i / c->batch);
		if (c->snapshots && (i / c->batch) % 2 == 0)
			snapshot_take(c, &m, snaps++);
		img = open_rw(c);
		full_read_check(c, img, &m, buf);
	}
	img_close(img);
	judge(c, &m, c->ops / c->batch);
	for (unsigned k = 0; k < snaps; k++)
		snapshot_check(c, k);
	printf("qcow2-fuzz: %" PRIu64 " ops, %u snapshots: ok\n", c->ops, snaps);
	free(buf);
	model_free(&m);
	return 0;
}

static void log_line(int fd, char tag, uint64_t i)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%c %" PRIu64 "\n", tag, i);

	if (write(fd, line, (size_t)n) != n)
		die("cannot write the log");
}

/* The workload a crash interrupts: ops logged as started and flushed. */
static int cmd_crash(struct cfg *c)
{
	struct model m;
	uint8_t *buf;
	struct img *img;
	int fd;

	read_header(c);
	model_init(c, &m);
	buf = malloc(c->max_len > c->cs ? c->max_len : c->cs);
	fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("cannot open %s", c->log);
	img = open_rw(c);
	rng_state = c->seed;
	for (uint64_t i = 0; i < c->ops; i++) {
		struct op o = gen_op(c);
		int ret;

		log_line(fd, 'S', i);
		ret = do_op(c, img, &m, i, &o, buf);
		if (ret < 0) {
			fprintf(stderr, "qcow2-fuzz: op %" PRIu64 " failed: %s\n",
				i, qerr_msg(&img->err));
			img_close(img);
			close(fd);
			free(buf);
			model_free(&m);
			exit(87);
		}
		model_apply(c, &m, i, &o);
		if (o.kind == OP_FLUSH)
			log_line(fd, 'F', i);
	}
	img_close(img);
	log_line(fd, 'E', c->ops);
	close(fd);
	free(buf);
	model_free(&m);
	return 0;
}

/* After a crash: no corruption, and everything flushed is still there. */
static int cmd_verify(struct cfg *c)
{
	struct model m;
	uint8_t *buf, *mask;
	struct img *img;
	struct qcow2_engine *eng;
	uint64_t flushed = 0, started = 0, end_seen = 0, v;
	char tag;
	FILE *f;
	bool any_flush = false;

	read_header(c);
	model_init(c, &m);
	f = fopen(c->log, "r");
	if (!f)
		die("cannot read %s", c->log);
	while (fscanf(f, " %c %" SCNu64, &tag, &v) == 2) {
		if (tag == 'S')
			started = v;
		else if (tag == 'F')
			flushed = v, any_flush = true;
		else if (tag == 'E')
			end_seen = 1;
	}
	fclose(f);
	mask = calloc(1, c->size);
	buf = malloc(c->max_len > c->cs ? c->max_len : c->cs);
	rng_state = c->seed;
	for (uint64_t i = 0; i <= started && i < c->ops; i++) {
		struct op o = gen_op(c);

		if (end_seen || (any_flush && i <= flushed))
			model_apply(c, &m, i, &o);
		else if (o.kind != OP_READ && o.kind != OP_FLUSH)
			memset(mask + o.off, 1, o.len);	/* may or may not be there */
	}
	/* Open for writing: a dirty (lazy refcounts) image is rebuilt here. */
	img = open_rw(c);
	if (qcow2_engine_get(img, &eng) < 0 || qcow2_prepare_write(eng) < 0)
		die("cannot prepare %s for writing: %s", c->image, qerr_msg(&img->err));
	for (uint64_t off = 0; off < c->size; off += c->cs) {
		uint64_t n = c->size - off < c->cs ? c->size - off : c->cs;

		if (img_read(img, off, buf, n) < 0)
			die("read at %" PRIu64 ": %s", off, qerr_msg(&img->err));
		for (uint64_t k = 0; k < n; k++)
			if (!mask[off + k] && buf[k] != m.mem[off + k])
				die("flushed data lost at %" PRIu64 " (0x%02x, "
				    "expected 0x%02x; flushed op %" PRIu64
				    ", started %" PRIu64 ")", off + k, buf[k],
				    m.mem[off + k], flushed, started);
	}
	img_close(img);
	v = (uint64_t)qemu_check(c, true);
	if (v != 0 && v != 3)
		die("qemu-img check finds corruption after the crash");
	printf("qcow2-fuzz: verified (flushed op %" PRIu64 ", started %" PRIu64
	       "%s)\n", flushed, started, v == 3 ? ", leaks" : "");
	free(mask);
	free(buf);
	model_free(&m);
	return 0;
}

/* Scattered writes over a huge image: memory must stay bounded. */
static int cmd_mem(struct cfg *c)
{
	struct rusage ru;
	struct img *img;
	struct qcow2_engine *eng;
	uint8_t buf[4096], back[4096];
	size_t peak_cache = 0;

	read_header(c);
	img = open_rw(c);
	rng_state = c->seed;
	for (uint64_t i = 0; i < c->ops; i++) {
		uint64_t off = rnd_below(c->size / 4096) * 4096;

		op_data(i, buf, sizeof(buf), false);
		if (img_write(img, off, buf, sizeof(buf)) < 0 ||
		    img_read(img, off, back, sizeof(back)) < 0)
			die("op %" PRIu64 ": %s", i, qerr_msg(&img->err));
		if (memcmp(buf, back, sizeof(buf)) != 0)
			die("op %" PRIu64 ": read back differs", i);
		if (qcow2_engine_get(img, &eng) == 0) {
			size_t n = qcow2_cache_bytes(eng->l2_cache) +
				   qcow2_cache_bytes(eng->rb_cache);

			if (n > peak_cache)
				peak_cache = n;
		}
	}
	img_close(img);
	getrusage(RUSAGE_SELF, &ru);
	printf("qcow2-fuzz: %" PRIu64 " scattered writes, cache peak %zu KiB, "
	       "max RSS %ld KiB\n", c->ops, peak_cache >> 10, ru.ru_maxrss);
	if (c->rss_limit_mib && (uint64_t)ru.ru_maxrss > c->rss_limit_mib << 10)
		die("max RSS %ld KiB is over the %" PRIu64 " MiB limit",
		    ru.ru_maxrss, c->rss_limit_mib);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "max-len", required_argument, NULL, 'l' },
		{ "base", required_argument, NULL, 'B' },
		{ "init", required_argument, NULL, 'I' },
		{ "qemu-io", no_argument, NULL, 'q' },
		{ "snapshots", no_argument, NULL, 'S' },
		{ "compressed", no_argument, NULL, 'c' },
		{ "rss-limit", required_argument, NULL, 'r' },
		{ "secret", required_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	struct cfg c = { .seed = 1, .ops = 2000, .batch = 250 };
	const char *mode;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': c.seed = strtoull(optarg, NULL, 0); break;
		case 'n': c.ops = strtoull(optarg, NULL, 0); break;
		case 'b': c.batch = strtoull(optarg, NULL, 0); break;
		case 'l': c.max_len = strtoull(optarg, NULL, 0); break;
		case 'B': c.base = optarg; break;
		case 'I': c.init = optarg; break;
		case 'q': c.qemu_io = true; break;
		case 'S': c.snapshots = true; break;
		case 'c': c.compressed = true; break;
		case 'r': c.rss_limit_mib = strtoull(optarg, NULL, 0); break;
		case 'K': c.secret = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind < 2)
		die("usage: qcow2-fuzz run|crash|verify|mem [options] IMAGE [LOG]");
	mode = argv[optind];
	if (strcmp(mode, "cat") == 0 && argc - optind == 3)
		return cmd_cat(argv[optind + 1], argv[optind + 2]);
	if (strcmp(mode, "map") == 0)
		return cmd_map(argv[optind + 1]);
	if (strcmp(mode, "write") == 0 || strcmp(mode, "zero") == 0 ||
	    strcmp(mode, "discard") == 0 || strcmp(mode, "compress") == 0)
		return cmd_one(mode, argv + optind + 1, argc - optind - 1);
	c.image = argv[optind + 1];
	if (c.secret) {
		struct qerr e = { 0 };

		/* Compressed clusters are never encrypted: refused there. */
		c.compressed = false;
		if (secret_add(FUZZ_KEY_ID, (const uint8_t *)c.secret,
			       strlen(c.secret), &e) < 0)
			die("secret: %s", qerr_msg(&e));
	}
	c.log = argc - optind > 2 ? argv[optind + 2] : NULL;
	if (c.batch == 0)
		c.batch = 1;
	if (strcmp(mode, "run") == 0)
		return cmd_run(&c);
	if (strcmp(mode, "mem") == 0)
		return cmd_mem(&c);
	if (!c.log)
		die("%s needs a log file", mode);
	if (strcmp(mode, "crash") == 0)
		return cmd_crash(&c);
	if (strcmp(mode, "verify") == 0)
		return cmd_verify(&c);
	die("unknown mode %s", mode);
}
