/*
 * qcow2_fuzz_tools.c: the one-shot modes of qcow2-fuzz, for tests of what
 * the engine reads, reports and refuses: cat (the guest view to a raw
 * file), map (block status printed as `qemu-img map --output=json` prints
 * one layer), and single write, zero and discard operations whose errors
 * go to stderr as "qcow2-fuzz: IMAGE: message".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/img.h"
#include "tests/engine/qcow2_fuzz.h"

static struct img *open_ro(const char *path)
{
	struct qerr e = { 0 };
	struct img *img;

	if (img_open(&img, path, NULL, 0, &e) < 0) {
		fprintf(stderr, "qcow2-fuzz: %s: %s\n", path, qerr_msg(&e));
		exit(1);
	}
	return img;
}

int cmd_cat(const char *image, const char *out)
{
	struct img *img = open_ro(image);
	FILE *f = fopen(out, "wb");
	uint8_t *buf = malloc(1 << 20);

	if (!f || !buf)
		die("cannot write %s", out);
	for (uint64_t off = 0; off < img->size; off += 1 << 20) {
		size_t n = img->size - off < (1 << 20) ? (size_t)(img->size - off) : 1 << 20;

		if (img_read(img, off, buf, n) < 0) {
			fprintf(stderr, "qcow2-fuzz: %s: %s\n", image,
				qerr_msg(&img->err));
			fclose(f);
			free(buf);
			img_close(img);
			return 1;
		}
		if (fwrite(buf, 1, n, f) != n)
			die("cannot write %s", out);
	}
	fclose(f);
	free(buf);
	img_close(img);
	return 0;
}

struct map_run {
	uint64_t start, len, offset;
	bool present, zero, data, has_off;
};

static void map_print(const struct map_run *r, bool *first)
{
	printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
	       ", \"depth\": 0, \"present\": %s, \"zero\": %s, \"data\": %s",
	       *first ? "[" : ",\n", r->start, r->len, r->present ? "true" : "false",
	       r->zero ? "true" : "false", r->data ? "true" : "false");
	if (r->has_off)
		printf(", \"offset\": %" PRIu64, r->offset);
	printf("}");
	*first = false;
}

/* One layer (no backing file): the JSON qemu-img map prints. */
int cmd_map(const char *image)
{
	struct img *img = open_ro(image);
	struct map_run cur = { 0 };
	bool first = true, have = false;

	for (uint64_t off = 0; off < img->size;) {
		struct img_bstatus st;
		struct map_run r;

		if (img_block_status(img, off, img->size - off, &st) < 0 || !st.len) {
			fprintf(stderr, "qcow2-fuzz: %s: %s\n", image,
				qerr_msg(&img->err));
			img_close(img);
			return 1;
		}
		r.start = off;
		r.len = st.len;
		r.present = st.flags & IMG_BS_ALLOCATED;
		r.zero = (st.flags & IMG_BS_ZERO) || !(st.flags & IMG_BS_ALLOCATED);
		r.data = st.flags & IMG_BS_DATA;
		r.has_off = st.flags & IMG_BS_OFFSET;
		r.offset = st.host_offset;
		if (have && cur.present == r.present && cur.zero == r.zero &&
		    cur.data == r.data && cur.has_off == r.has_off &&
		    (!r.has_off || cur.offset + cur.len == r.offset)) {
			cur.len += r.len;
		} else {
			if (have)
				map_print(&cur, &first);
			cur = r;
			have = true;
		}
		off += st.len;
	}
	if (have)
		map_print(&cur, &first);
	printf("]\n");
	img_close(img);
	return 0;
}

/* One operation, for tests of error paths and messages. */
int cmd_one(const char *mode, char **args, int nargs)
{
	struct qerr e = { 0 };
	struct img *img;
	uint64_t off, len;
	uint8_t *buf;
	int ret;

	if (nargs < 3)
		die("usage: qcow2-fuzz %s IMAGE OFF LEN [BYTE]", mode);
	off = strtoull(args[1], NULL, 0);
	len = strtoull(args[2], NULL, 0);
	if (img_open(&img, args[0], NULL, IMG_RDWR, &e) < 0) {
		fprintf(stderr, "qcow2-fuzz: %s: %s\n", args[0], qerr_msg(&e));
		return 1;
	}
	buf = malloc(len ? len : 1);
	memset(buf, nargs > 3 ? (int)strtol(args[3], NULL, 0) : 0, len);
	if (strcmp(mode, "write") == 0)
		ret = img_write(img, off, buf, len);
	else if (strcmp(mode, "compress") == 0)
		ret = img_write_compressed(img, off, buf, len);
	else if (strcmp(mode, "zero") == 0)
		ret = img_write_zeroes(img, off, len, 0);
	else
		ret = img_discard(img, off, len);
	if (ret < 0)
		fprintf(stderr, "qcow2-fuzz: %s: %s\n", args[0], qerr_msg(&img->err));
	free(buf);
	img_close(img);
	return ret < 0;
}

