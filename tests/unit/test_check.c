/*
 * test_check.c: the check's in-memory references (4-bit counters with a
 * side map, overlap detection without pairwise comparison, overflow at
 * the refcount width), its problem wording, and the refcount rebuild on a
 * hand-made image: a 64 MiB v3 image with 64 KiB clusters laid out as
 *
 *   cluster 0 header, 1 refcount table, 2 refcount block, 3 L1 table,
 *   4 L2 table, 5 and 6 data of guest clusters 0 and 1.
 *
 * Each scenario damages a copy at a documented offset, checks it, repairs
 * it, and checks that the second run is clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/check.h"
#include "core/img.h"
#include "core/qcow2_check.h"
#include "tests/unit/unit.h"

#define CS 65536ULL

struct lines {
	char text[64][160];
	int n;
};

static void collect(void *opaque, const struct check_problem *p)
{
	struct lines *l = opaque;

	if (l->n < 64)
		snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", p->text);
}

static bool has_line(const struct lines *l, const char *s)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->text[i], s) == 0)
			return true;
	return false;
}

static void test_counters(void)
{
	struct qchk_refs r;

	CHECK(qchk_refs_init(&r, 10, UINT64_MAX) == 0);
	for (uint64_t i = 0; i < 10; i++)
		CHECK(qchk_refs_set(&r, i, i * 3) == 0);
	for (uint64_t i = 0; i < 10; i++)
		CHECK_EQ_U64(qchk_refs_get(&r, i), i * 3);
	/* Neighbours in one byte stay apart; large counts go to the map. */
	CHECK(qchk_refs_set(&r, 4, 1ULL << 40) == 0);
	CHECK_EQ_U64(qchk_refs_get(&r, 4), 1ULL << 40);
	CHECK_EQ_U64(qchk_refs_get(&r, 5), 15);
	CHECK(qchk_refs_set(&r, 4, 2) == 0);
	CHECK_EQ_U64(qchk_refs_get(&r, 4), 2);
	/* Setting past the end grows, zero-filled. */
	CHECK(qchk_refs_set(&r, 100000, 7) == 0);
	CHECK_EQ_U64(r.n, 100001);
	CHECK_EQ_U64(qchk_refs_get(&r, 99999), 0);
	CHECK_EQ_U64(qchk_refs_get(&r, 100000), 7);
	CHECK_EQ_U64(qchk_refs_get(&r, 100001), 0);
	qchk_refs_clear(&r);
	CHECK_EQ_U64(qchk_refs_get(&r, 100000), 0);
	CHECK_EQ_U64(r.n, 100001);
	qchk_refs_free(&r);
}

/* A qchk with just what qchk_ref needs. */
static void fake(struct qchk *q, struct check_ctx *c, struct check_opts *o,
		 struct check_result *res, struct lines *l, uint64_t max)
{
	memset(q, 0, sizeof(*q));
	memset(res, 0, sizeof(*res));
	memset(l, 0, sizeof(*l));
	*o = (struct check_opts){ .report = collect, .opaque = l };
	*c = (struct check_ctx){ .o = o, .r = res };
	q->c = c;
	q->cluster_bits = 16;
	q->cs = CS;
	q->file_size = 16 * CS;
	qchk_refs_init(&q->refs, 16, max);
}

static void test_overlaps(void)
{
	struct qchk q;
	struct check_ctx c;
	struct check_opts o;
	struct check_result r;
	struct lines l;

	fake(&q, &c, &o, &r, &l, 0xffff);
	CHECK(qchk_ref(&q, 0, CS, ROLE_HEADER, 0) == 0);
	CHECK(qchk_ref(&q, 3 * CS, 8, ROLE_L1, 0) == 0);
	/* An L2 table on the header. */
	CHECK(qchk_ref(&q, 0, CS, ROLE_L2, 0) == 0);
	CHECK_EQ_U64(l.n, 1);
	CHECK_STR(l.text[0], "Overlap: cluster 0 is used by the image header "
			     "and by an L2 table");
	/* One L2 table named by two L1 tables is fine (snapshots). */
	CHECK(qchk_ref(&q, 4 * CS, CS, ROLE_L2, 0) == 0);
	CHECK(qchk_ref(&q, 4 * CS, CS, ROLE_L2, 0) == 0);
	CHECK_EQ_U64(l.n, 1);
	/* Shared data is fine; data on metadata is not, either way round. */
	CHECK(qchk_ref(&q, 5 * CS, CS, ROLE_DATA, 0) == 0);
	CHECK(qchk_ref(&q, 5 * CS, CS, ROLE_DATA, 0) == 0);
	CHECK(qchk_ref(&q, 3 * CS, CS, ROLE_DATA, 0) == 0);
	CHECK(qchk_ref(&q, 5 * CS, CS, ROLE_REFBLOCK, 0) == 0);
	CHECK_EQ_U64(l.n, 3);
	CHECK_STR(l.text[1], "Overlap: cluster 3 is used by the active L1 "
			     "table and by guest data");
	CHECK_STR(l.text[2], "Overlap: cluster 5 is used by guest data and "
			     "by a refcount block");
	CHECK(qchk_refs_role(&q.refs, 5) & QCHK_SHARED);
	CHECK(!(qchk_refs_role(&q.refs, 4) & QCHK_SHARED));
	CHECK_EQ_U64(qchk_refs_get(&q.refs, 5), 3);
	/* Notes are not counted: qemu counts the refcount mismatch. */
	CHECK_EQ_U64(r.corruptions, 0);
	/* A range several clusters long counts each of them. */
	CHECK(qchk_ref(&q, 7 * CS + 100, 2 * CS, ROLE_DATA, 0) == 0);
	CHECK_EQ_U64(qchk_refs_get(&q.refs, 7), 1);
	CHECK_EQ_U64(qchk_refs_get(&q.refs, 9), 1);
	/* A cluster or more past the end: reported, not counted. */
	CHECK(qchk_ref(&q, 17 * CS, CS, ROLE_DATA, CHECK_NOFIX) == 1);
	CHECK_EQ_U64(r.corruptions, 1);
	CHECK_STR(l.text[3], "ERROR: counting reference for region exceeding "
			     "the end of the file by one cluster or more: "
			     "offset 0x110000 size 0x10000");
	/* Less than a cluster past the end is the last cluster's tail. */
	CHECK(qchk_ref(&q, 16 * CS, 512, ROLE_DATA, 0) == 0);
	CHECK_EQ_U64(q.refs.n, 17);
	qchk_refs_free(&q.refs);
	free(q.overlaps);

	/* 1-bit refcounts: a second reference overflows. */
	fake(&q, &c, &o, &r, &l, 1);
	CHECK(qchk_ref(&q, 5 * CS, CS, ROLE_DATA, 0) == 0);
	CHECK(qchk_ref(&q, 5 * CS, CS, ROLE_DATA, 0) == 0);
	CHECK_EQ_U64(qchk_refs_get(&q.refs, 5), 1);
	CHECK_EQ_U64(r.corruptions, 1);
	CHECK(strncmp(l.text[0], "ERROR: overflow cluster offset=0x50000\n",
		      39) == 0);
	qchk_refs_free(&q.refs);
	free(q.overlaps);
}

static void test_wording(void)
{
	struct check_args a = { .n = { 6, 2, 1 } };
	char buf[200];

	check_format(CHK_LEAK, false, &a, buf, sizeof(buf));
	CHECK_STR(buf, "Leaked cluster 6 refcount=2 reference=1");
	check_format(CHK_LEAK, true, &a, buf, sizeof(buf));
	CHECK_STR(buf, "Repairing cluster 6 refcount=2 reference=1");
	a.n[0] = 0x8000000000060000ULL;
	a.n[1] = 0;
	check_format(CHK_COPIED_L2, false, &a, buf, sizeof(buf));
	CHECK_STR(buf, "ERROR OFLAG_COPIED data cluster: "
		       "l2_entry=8000000000060000 refcount=0");
	a.n[0] = 0xa0200;
	a.s[0] = "1";
	a.s[1] = "s1";
	check_format(CHK_SNAP_L1_UNALIGNED, false, &a, buf, sizeof(buf));
	CHECK_STR(buf, "ERROR snapshot 1 (s1) l1_offset=0xa0200: L1 table is "
		       "not cluster aligned; snapshot table entry corrupted");
	a.n[0] = 0;
	a.n[1] = EIO;
	check_format(CHK_GET_REFCOUNT, false, &a, buf, sizeof(buf));
	CHECK_STR(buf, "Can't get refcount for cluster 0: Input/output error");
	/* Every code has a row with words. */
	for (int code = 0; code < CHK_NB_CODES; code++) {
		struct check_args z = { .n = { 0 } };

		check_format((enum check_code)code, false, &z, buf, sizeof(buf));
		CHECK(strlen(buf) > 5);
	}
	/* A short buffer truncates, always terminated. */
	check_format(CHK_GET_REFCOUNT, false, &a, buf, 8);
	CHECK_STR(buf, "Can't g");
}

/* ---- the hand-made image ---- */

static void put64(int fd, uint64_t off, uint64_t v)
{
	uint8_t b[8];

	be64_put(b, v);
	CHECK(pwrite(fd, b, 8, (off_t)off) == 8);
}

static void put16(int fd, uint64_t off, uint16_t v)
{
	uint8_t b[2];

	be16_put(b, v);
	CHECK(pwrite(fd, b, 2, (off_t)off) == 2);
}

static void make_image(const char *path)
{
	uint8_t h[112] = { 0 };
	uint8_t *data = malloc(CS);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0 && data);
	be32_put(h, QCOW2_MAGIC);
	be32_put(h + 4, 3);
	be32_put(h + 20, 16);			/* cluster_bits */
	be64_put(h + 24, 64ULL << 20);		/* size */
	be32_put(h + 36, 1);			/* l1_size */
	be64_put(h + 40, 3 * CS);		/* l1_table_offset */
	be64_put(h + 48, 1 * CS);		/* refcount_table_offset */
	be32_put(h + 56, 1);			/* refcount_table_clusters */
	be32_put(h + 96, 4);			/* refcount_order */
	be32_put(h + 100, 112);			/* header_length */
	CHECK(pwrite(fd, h, sizeof(h), 0) == sizeof(h));
	put64(fd, 1 * CS, 2 * CS);		/* reftable[0] */
	for (int i = 0; i < 7; i++)
		put16(fd, 2 * CS + 2 * i, 1);	/* refcounts of 0..6 */
	put64(fd, 3 * CS, QCOW2_OFLAG_COPIED | 4 * CS);
	put64(fd, 4 * CS, QCOW2_OFLAG_COPIED | 5 * CS);
	put64(fd, 4 * CS + 8, QCOW2_OFLAG_COPIED | 6 * CS);
	memset(data, 0x5a, CS);
	CHECK(pwrite(fd, data, CS, 5 * CS) == (ssize_t)CS);
	CHECK(pwrite(fd, data, CS, 6 * CS) == (ssize_t)CS);
	close(fd);
	free(data);
}

static int run(const char *path, unsigned fix, struct check_result *r,
	       struct lines *l)
{
	struct check_opts o = { .fix = fix, .report = collect, .opaque = l };
	struct img *img;
	struct qerr e = { 0 };
	int ret;

	memset(l, 0, sizeof(*l));
	ret = img_open(&img, path, "qcow2", fix ? IMG_RDWR : 0, &e);
	CHECK(ret == 0);
	if (ret < 0)
		return ret;
	ret = check_image(img, &o, r);
	img_close(img);
	return ret;
}

static uint64_t peek64(const char *path, uint64_t off)
{
	uint8_t b[8] = { 0 };
	int fd = open(path, O_RDONLY);

	CHECK(pread(fd, b, 8, (off_t)off) == 8);
	close(fd);
	return be64_get(b);
}

static void test_image(void)
{
	char path[] = "/tmp/qimg-unit-check.XXXXXX";
	struct check_result r;
	struct lines l;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	make_image(path);
	CHECK(run(path, 0, &r, &l) == 0);
	CHECK_EQ_U64(l.n, 0);
	CHECK_EQ_U64(r.allocated_clusters, 2);
	CHECK_EQ_U64(r.total_clusters, 1024);
	CHECK_EQ_U64(r.image_end_offset, 7 * CS);
	check_result_free(&r);

	/* Refcount 0 on data cluster 5: only a rebuild repairs it. */
	fd = open(path, O_RDWR);
	put16(fd, 2 * CS + 10, 0);
	close(fd);
	CHECK(run(path, 0, &r, &l) == 0);
	CHECK_EQ_U64(r.corruptions, 2);
	CHECK(has_line(&l, "ERROR cluster 5 refcount=0 reference=1"));
	check_result_free(&r);
	CHECK(run(path, CHECK_FIX_LEAKS, &r, &l) == -EIO);
	CHECK(has_line(&l, "ERROR need to rebuild refcount structures"));
	check_result_free(&r);
	CHECK(run(path, CHECK_FIX_LEAKS | CHECK_FIX_ERRORS, &r, &l) == 0);
	CHECK(has_line(&l, "Rebuilding refcount structure"));
	CHECK(has_line(&l, "Repairing cluster 1 refcount=1 reference=0"));
	CHECK(has_line(&l, "Repairing cluster 2 refcount=1 reference=0"));
	CHECK_EQ_U64(r.corruptions_fixed, 1);
	check_result_free(&r);
	/* qemu's placement: the block, then the table, after cluster 6. */
	CHECK_EQ_U64(peek64(path, 48), 8 * CS);
	CHECK_EQ_U64(peek64(path, 8 * CS), 7 * CS);
	CHECK(run(path, 0, &r, &l) == 0);
	CHECK_EQ_U64(l.n, 0);
	CHECK_EQ_U64(r.corruptions + r.leaks + r.check_errors, 0);
	CHECK_EQ_U64(r.image_end_offset, 9 * CS);
	check_result_free(&r);

	/*
	 * A leaked cluster in a hole is kept from the new structure: its
	 * data may be what a damaged entry lost.  Cluster 1 (the old table)
	 * is a hole now; give it refcount 1 again, and damage cluster 5.
	 */
	fd = open(path, O_RDWR);
	put16(fd, 7 * CS + 2, 1);
	put16(fd, 7 * CS + 10, 0);
	close(fd);
	CHECK(run(path, CHECK_FIX_LEAKS | CHECK_FIX_ERRORS, &r, &l) == 0);
	CHECK(has_line(&l, "Leaked cluster 1 refcount=1 reference=0"));
	CHECK(has_line(&l, "Rebuilding refcount structure"));
	check_result_free(&r);
	CHECK(peek64(path, 48) != 1 * CS);
	CHECK(peek64(path, peek64(path, 48)) != 1 * CS);
	CHECK(run(path, 0, &r, &l) == 0);
	CHECK_EQ_U64(r.corruptions + r.leaks + r.check_errors, 0);
	check_result_free(&r);

	/* Data on the refcount block: an overlap, and a rebuild. */
	make_image(path);
	fd = open(path, O_RDWR);
	put64(fd, 4 * CS + 8, QCOW2_OFLAG_COPIED | 2 * CS);
	close(fd);
	CHECK(run(path, 0, &r, &l) == 0);
	CHECK(has_line(&l, "Overlap: cluster 2 is used by guest data and by a "
			   "refcount block"));
	CHECK(has_line(&l, "ERROR refcount block 0 refcount=2"));
	CHECK(has_line(&l, "Leaked cluster 6 refcount=1 reference=0"));
	CHECK_EQ_U64(r.leaks, 1);
	check_result_free(&r);
	unlink(path);
}

void test_check(void)
{
	test_counters();
	test_overlaps();
	test_wording();
	test_image();
}
