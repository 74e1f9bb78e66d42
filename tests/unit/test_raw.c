/*
 * test_raw.c: the raw driver's zeroing, discard, block status, truncate
 * and flush entries through the generic API.  qemu-io's map calls every
 * raw byte allocated, so the data/zero split of block status (what
 * "qemu-img map" shows) and the file lengths are pinned here.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/img.h"
#include "tests/unit/unit.h"

static struct img *open_raw(const char *path)
{
	struct qerr e = { 0 };
	struct img *img = NULL;

	if (img_open(&img, path, "raw", IMG_RDWR, &e) < 0)
		fprintf(stderr, "open %s: %s\n", path, qerr_msg(&e));
	return img;
}

static unsigned status_at(struct img *img, uint64_t off, uint64_t *len)
{
	struct img_bstatus st;

	*len = 0;
	if (img_block_status(img, off, img->size - off, &st) < 0)
		return 0;
	*len = st.len;
	return st.flags;
}

static uint64_t file_len(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

void test_raw(void)
{
	char path[] = "/tmp/qimg-test-raw-XXXXXX";
	uint8_t buf[4096];
	struct img *img;
	uint64_t len;
	unsigned f;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(ftruncate(fd, 1 << 20) == 0);
	close(fd);
	img = open_raw(path);
	CHECK(img != NULL);
	if (!img)
		goto out;

	/* 64 KiB of data, then a hole to the end. */
	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; i < 16; i++)
		CHECK(img_write(img, (uint64_t)i * 4096, buf, 4096) == 0);
	f = status_at(img, 0, &len);
	CHECK(f & IMG_BS_ALLOCATED);
	CHECK(f & IMG_BS_DATA);
	CHECK_EQ_U64(len, 65536);
	f = status_at(img, 65536, &len);
	CHECK((f & (IMG_BS_ALLOCATED | IMG_BS_ZERO)) ==
	      (IMG_BS_ALLOCATED | IMG_BS_ZERO));
	CHECK(!(f & IMG_BS_DATA));
	CHECK_EQ_U64(len, (1 << 20) - 65536);

	/* Zeroing with may-unmap and discard both leave holes reading 0. */
	CHECK(img_write_zeroes(img, 0, 32768, IMG_ZERO_MAY_UNMAP) == 0);
	CHECK(img_discard(img, 32768, 16384) == 0);
	f = status_at(img, 0, &len);
	CHECK(f & IMG_BS_ZERO);
	CHECK_EQ_U64(len, 49152);
	CHECK(img_read(img, 40960, buf, 4096) == 0);
	CHECK(buf[0] == 0 && buf[4095] == 0);
	CHECK(img_read(img, 49152, buf, 4096) == 0);
	CHECK(buf[0] == 0x5a);

	/* An odd length: the guest sees it rounded to 512, zeros past EOF. */
	CHECK(img_truncate(img, 1000) == 0);
	CHECK_EQ_U64(img->size, 1024);
	CHECK_EQ_U64(file_len(path), 1000);
	f = status_at(img, 0, &len);
	CHECK(f & IMG_BS_ZERO);
	CHECK_EQ_U64(len, 1024);
	/* Zeroing without unmap grows the file like a write would. */
	CHECK(img_write_zeroes(img, 1008, 8, 0) == 0);
	CHECK_EQ_U64(file_len(path), 1016);
	CHECK(img_write_zeroes(img, 1016, 8, IMG_ZERO_MAY_UNMAP) == 0);
	CHECK_EQ_U64(file_len(path), 1016);
	CHECK(img_flush(img) == 0);
	CHECK(img_block_status(img, 1024, 0, &(struct img_bstatus){ 0 }) == 0);
	img_close(img);
out:
	unlink(path);
}
