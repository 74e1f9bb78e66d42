/*
 * test_snapshot.c: the snapshot table codec and qemu's rules around it:
 * a table written and read back keeps every field (unknown extra bytes
 * included), entries are 8-byte aligned but the last one is not padded,
 * short extra data reads the way qemu completes it (no icount: -1; no
 * disk size: the image's), IDs are the largest numeric ID plus one with
 * strtoul's wrapping, and lookups by id, name or both find the first match.
 * Then the operations end to end through the core API, without qemu:
 * create, apply and delete keep each state's content, and a snapshot
 * loaded into an image opened read-only (what convert -l uses) reads as
 * the state it saved, with its own virtual size.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/qcow2_snapshot.h"
#include "util/opts.h"
#include "tests/unit/unit.h"

#define TAB_OFF 4096

static struct qcow2_snap entry(const char *id, const char *name)
{
	struct qcow2_snap sn = { 0 };

	sn.id = strdup(id);
	sn.name = strdup(name);
	sn.icount = UINT64_MAX;
	return sn;
}

static void test_new_id(void)
{
	struct qcow2_snap t[4] = { entry("1", "a"), entry("5", "b"),
				   entry("abc", "c"), entry("3", "d") };
	char id[32];

	qcow2_snap_new_id(t, 0, id, sizeof(id));
	CHECK_STR(id, "1");
	qcow2_snap_new_id(t, 4, id, sizeof(id));
	CHECK_STR(id, "6");
	free(t[1].id);
	t[1].id = strdup("-1");	/* strtoul wraps it to ULONG_MAX */
	qcow2_snap_new_id(t, 4, id, sizeof(id));
	CHECK_STR(id, "0");
	for (int i = 0; i < 4; i++) {
		free(t[i].id);
		free(t[i].name);
	}
}

static void test_find(void)
{
	struct qcow2_snap t[3] = { entry("1", "x"), entry("2", "1"),
				   entry("3", "x") };

	CHECK(qcow2_snap_find(t, 3, "1", NULL) == 0);
	CHECK(qcow2_snap_find(t, 3, NULL, "1") == 1);
	CHECK(qcow2_snap_find(t, 3, NULL, "x") == 0);
	CHECK(qcow2_snap_find(t, 3, "3", "x") == 2);
	CHECK(qcow2_snap_find(t, 3, "2", "x") == -1);
	CHECK(qcow2_snap_find(t, 3, "9", NULL) == -1);
	for (int i = 0; i < 3; i++) {
		free(t[i].id);
		free(t[i].name);
	}
}

/* A file holding buf at TAB_OFF, and a v3 header naming n entries there. */
static struct qfile *table_file(const char *path, const uint8_t *buf,
				size_t len, uint32_t n, struct qcow2_meta *m)
{
	struct qfile *f = NULL;
	struct qerr e = { 0 };

	memset(m, 0, sizeof(*m));
	m->h.version = 3;
	m->h.nb_snapshots = n;
	m->h.snapshots_offset = TAB_OFF;
	if (qfile_open(&f, path, QFILE_RDWR | QFILE_CREATE, &e) < 0 ||
	    qfile_pwrite(f, buf, len, TAB_OFF, &e) < 0)
		CHECK(!"cannot write the table file");
	return f;
}

static void test_round_trip(void)
{
	static const uint8_t unknown[5] = { 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
	char path[] = "/tmp/qimg-unit-snap-XXXXXX";
	struct qcow2_snap t[2] = { entry("1", "first"), entry("12", "") };
	struct qcow2_snap *r = NULL;
	struct qcow2_meta m;
	struct qerr e = { 0 };
	struct qfile *f;
	uint64_t len;
	uint8_t *buf;
	size_t n = 0;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	t[0].l1_offset = 0x30000;
	t[0].l1_size = 7;
	t[0].date_sec = 1795630554;
	t[0].date_nsec = 662452000;
	t[0].vm_clock_nsec = 3723004000000ULL;
	t[0].vm_state_size = 0x123456789ULL;
	t[0].disk_size = 1ULL << 30;
	t[0].icount = 42;
	t[0].extra_unknown = malloc(sizeof(unknown));
	memcpy(t[0].extra_unknown, unknown, sizeof(unknown));
	t[0].extra_unknown_len = sizeof(unknown);
	t[1].disk_size = 512;
	/* 40 + 24 + 5 + 1 + 5 = 75, padded to 80; then 40 + 24 + 2 + 0 */
	len = qcow2_snap_table_size(t, 2);
	CHECK_EQ_U64(len, 80 + 66);
	buf = calloc(1, len);
	qcow2_snap_table_write(t, 2, buf);
	CHECK_EQ_U64(be32_get(buf + 32), 0x23456789);	/* truncated 32-bit */
	CHECK_EQ_U64(be32_get(buf + 36), 29);
	f = table_file(path, buf, len, 2, &m);
	CHECK(qcow2_snap_table_read(f, &m, TAB_OFF + len, 999, &r, &n,
				    &e) == 0);
	CHECK_EQ_U64(n, 2);
	if (n == 2) {
		CHECK_EQ_U64(r[0].l1_offset, 0x30000);
		CHECK_EQ_U64(r[0].l1_size, 7);
		CHECK_EQ_U64(r[0].date_sec, 1795630554);
		CHECK_EQ_U64(r[0].date_nsec, 662452000);
		CHECK_EQ_U64(r[0].vm_clock_nsec, 3723004000000ULL);
		CHECK_EQ_U64(r[0].vm_state_size, 0x123456789ULL);
		CHECK_EQ_U64(r[0].disk_size, 1ULL << 30);
		CHECK_EQ_U64(r[0].icount, 42);
		CHECK_EQ_U64(r[0].extra_unknown_len, 5);
		CHECK(r[0].extra_unknown &&
		      memcmp(r[0].extra_unknown, unknown, 5) == 0);
		CHECK_STR(r[0].id, "1");
		CHECK_STR(r[0].name, "first");
		CHECK_STR(r[1].id, "12");
		CHECK_STR(r[1].name, "");
		CHECK_EQ_U64(r[1].disk_size, 512);
		CHECK_EQ_U64(r[1].icount, UINT64_MAX);
	}
	qcow2_snap_free(r, n);
	qfile_close(f);
	free(buf);
	free(t[0].id);
	free(t[0].name);
	free(t[0].extra_unknown);
	free(t[1].id);
	free(t[1].name);
	unlink(path);
}

/* Entries qemu wrote with less extra data read as qemu completes them. */
static void test_short_extra(void)
{
	char path[] = "/tmp/qimg-unit-snap-XXXXXX";
	uint8_t buf[128] = { 0 };
	struct qcow2_snap *r = NULL;
	struct qcow2_meta m;
	struct qerr e = { 0 };
	struct qfile *f;
	size_t n = 0;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	/* v3 minimum: 16 bytes (VM state size, disk size), id "7" */
	be16_put(buf + 12, 1);
	be32_put(buf + 32, 9);
	be32_put(buf + 36, 16);
	be64_put(buf + 40, 0x1000);
	be64_put(buf + 48, 4096);
	buf[56] = '7';
	f = table_file(path, buf, sizeof(buf), 1, &m);
	CHECK(qcow2_snap_table_read(f, &m, TAB_OFF + 57, 999, &r, &n, &e) == 0);
	CHECK(n == 1 && r[0].vm_state_size == 0x1000 &&
	      r[0].disk_size == 4096 && r[0].icount == UINT64_MAX &&
	      r[0].extra_len == 16 && r[0].extra_unknown_len == 0);
	qcow2_snap_free(r, n);
	/* v2 without extra data: the 32-bit VM state size, the image's size */
	m.h.version = 2;
	be32_put(buf + 36, 0);
	buf[40] = '7';
	qfile_pwrite(f, buf, sizeof(buf), TAB_OFF, &e);
	CHECK(qcow2_snap_table_read(f, &m, TAB_OFF + 41, 999, &r, &n, &e) == 0);
	CHECK(n == 1 && r[0].vm_state_size == 9 && r[0].disk_size == 999 &&
	      r[0].icount == UINT64_MAX);
	CHECK(n == 1 && qcow2_snap_table_size(r, 1) == 40 + 24 + 1);
	qcow2_snap_free(r, n);
	qfile_close(f);
	unlink(path);
}

/* Fill buf with byte v and write it at off of img. */
static int put(struct img *img, uint64_t off, int v, uint8_t *buf, size_t len)
{
	memset(buf, v, len);
	return img_write(img, off, buf, len);
}

/* Does img hold byte v over [off, off+len)? */
static int holds(struct img *img, uint64_t off, int v, size_t len)
{
	uint8_t *buf = malloc(len);
	int ok = buf && img_read(img, off, buf, len) == 0;

	for (size_t i = 0; ok && i < len; i++)
		ok = buf[i] == v;
	free(buf);
	return ok;
}

static struct img *open_rw(const char *path, unsigned flags)
{
	struct img *img = NULL;
	struct qerr e = { 0 };

	if (img_open(&img, path, "qcow2", flags, &e) < 0)
		fprintf(stderr, "open %s: %s\n", path, qerr_msg(&e));
	return img;
}

static void test_operations(void)
{
	char path[] = "/tmp/qimg-unit-snap-XXXXXX";
	struct optlist o = { 0 };
	struct qerr e = { 0 };
	static uint8_t buf[65536];
	struct img *img;
	int fd = mkstemp(path);

	close(fd);
	optlist_set(&o, "size", "4M");
	CHECK(qcow2_create(path, &o, &e) == 0);
	optlist_free(&o);
	img = open_rw(path, IMG_RDWR);
	CHECK(img != NULL);
	if (!img)
		return;
	CHECK(put(img, 0, 0x11, buf, sizeof(buf)) == 0);
	CHECK(img_snapshot_create(img, "one") == 0);
	CHECK(put(img, 0, 0x22, buf, sizeof(buf)) == 0);
	CHECK(img_truncate(img, 8 << 20) == 0);
	CHECK(put(img, 6 << 20, 0x33, buf, sizeof(buf)) == 0);
	CHECK(img_snapshot_create(img, "two") == 0);
	CHECK(img_snapshot_create(img, "one") == -EEXIST);
	CHECK(img_snapshot_apply(img, "1") == 0);
	CHECK_EQ_U64(img->size, 4 << 20);
	CHECK(holds(img, 0, 0x11, sizeof(buf)));
	CHECK(put(img, 0, 0x44, buf, sizeof(buf)) == 0);
	CHECK(img_snapshot_delete(img, "one") == 0);
	CHECK(img_snapshot_delete(img, "one") == -ENOENT);
	CHECK(holds(img, 0, 0x44, sizeof(buf)));
	img_close(img);

	/* The read-only view of "two": its content and its size. */
	img = open_rw(path, 0);
	CHECK(img && img_snapshot_load_any(img, "nosuch") == -ENOENT);
	img_close(img);
	img = open_rw(path, 0);
	CHECK(img && img_snapshot_load(img, NULL, "two") == 0);
	CHECK(img && img->size == 8 << 20);
	CHECK(img && holds(img, 0, 0x22, sizeof(buf)));
	CHECK(img && holds(img, 6 << 20, 0x33, sizeof(buf)));
	img_close(img);
	img = open_rw(path, IMG_RDWR);
	CHECK(img && img_snapshot_load_any(img, "2") == -EINVAL);
	img_close(img);
	unlink(path);
}

void test_snapshot(void)
{
	test_new_id();
	test_find();
	test_round_trip();
	test_short_extra();
	test_operations();
}
