/*
 * crypto-tool.c: a test driver that puts the crypto core against images
 * made by qemu-img and qemu-io (tests/cli/60-crypto.bats), before the
 * qcow2 driver calls the core itself.
 *
 *   crypto-tool map IMG GUEST_OFF
 *       print the host offset of the guest byte (L1/L2 walk)
 *   crypto-tool decrypt IMG OBJECT KEYID GUEST_OFF LEN
 *       unlock with secret KEYID (defined by the --object text OBJECT),
 *       read LEN bytes of allocated guest data, write them decrypted to
 *       stdout
 *   crypto-tool encrypt IMG OBJECT KEYID GUEST_OFF LEN BYTE
 *       overwrite allocated guest data with LEN bytes of BYTE, encrypted
 *   crypto-tool luks-replace IMG OBJECT KEYID [OPTIONS]
 *       make a new LUKS header and slot 0 with the core (OPTIONS: the
 *       encrypt.* -o options without encrypt.format) and write it over
 *       the LUKS area of IMG; the old master key is gone
 *   crypto-tool speed MIB CHUNK_KIB [THREADS]
 *       encrypt MIB MiB in calls of CHUNK_KIB KiB with aes-256-xts-plain64
 *       on THREADS threads (default: every core) and print MiB/s
 *
 * The sector number for the IV is the core's contract: the host sector
 * for LUKS, the guest sector for legacy AES.  Only plain L2 entries are
 * handled (no compression, no extended L2): enough for these images.
 * Errors: "crypto-tool: IMG: message", exit 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/qcow2.h"
#include "core/secret.h"
#include "util/size.h"

struct image {
	struct qfile *f;
	uint32_t cluster_bits, crypt_method, l1_size;
	uint64_t l1_offset;
	bool has_ext;
	uint64_t ext_offset, ext_length;
};

static int load_header(struct image *im, struct qerr *e)
{
	uint8_t h[4096];
	uint32_t hlen;
	int ret = qfile_pread_zero(im->f, h, sizeof(h), 0, e);

	if (ret < 0)
		return ret;
	if (be32_get(h) != QCOW2_MAGIC)
		return qerr_set(e, -EINVAL, "not a qcow2 image");
	im->cluster_bits = be32_get(h + 20);
	im->crypt_method = be32_get(h + 32);
	im->l1_size = be32_get(h + 36);
	im->l1_offset = be64_get(h + 40);
	hlen = be32_get(h + 4) >= 3 ? be32_get(h + 100) : 72;
	/* Header extensions: type, length, data padded to 8. */
	for (uint32_t p = hlen; p + 8 <= sizeof(h);) {
		uint32_t type = be32_get(h + p), len = be32_get(h + p + 4);

		if (type == QCOW2_EXT_END || p + 8 + len > sizeof(h))
			break;
		if (type == QCOW2_EXT_CRYPTO && len >= 16) {
			im->has_ext = true;
			im->ext_offset = be64_get(h + p + 8);
			im->ext_length = be64_get(h + p + 16);
		}
		p += 8 + ((len + 7) & ~7U);
	}
	return 0;
}

static int map(struct image *im, uint64_t guest, uint64_t *host,
	       struct qerr *e)
{
	uint64_t cs = 1ULL << im->cluster_bits, l2_entries = cs / 8;
	uint64_t l1i = guest / cs / l2_entries, l2i = guest / cs % l2_entries;
	uint8_t b[8];
	int ret;

	if (l1i >= im->l1_size)
		return qerr_set(e, -EINVAL, "offset beyond the L1 table");
	ret = qfile_pread(im->f, b, 8, im->l1_offset + l1i * 8, e);
	if (ret < 0)
		return ret;
	if (!(be64_get(b) & QCOW2_L1E_OFFSET_MASK))
		return qerr_set(e, -ENOENT, "guest offset %" PRIu64
				" is not allocated", guest);
	ret = qfile_pread(im->f, b, 8,
			  (be64_get(b) & QCOW2_L1E_OFFSET_MASK) + l2i * 8, e);
	if (ret < 0)
		return ret;
	if (be64_get(b) & QCOW2_OFLAG_COMPRESSED ||
	    !(be64_get(b) & QCOW2_L2E_OFFSET_MASK))
		return qerr_set(e, -ENOENT, "guest offset %" PRIu64
				" has no plain data cluster", guest);
	*host = (be64_get(b) & QCOW2_L2E_OFFSET_MASK) + guest % cs;
	return 0;
}

static int unlock(struct image *im, const char *object, const char *keyid,
		  struct crypto_ctx **ctx, struct qerr *e)
{
	int ret = secret_object_add(object, e);

	if (ret == 0)
		ret = crypto_open_image(im->f, im->crypt_method, im->has_ext,
					im->ext_offset, im->ext_length, keyid,
					NULL, ctx, e);
	return ret;
}

/* The sector the IV is made from, per the core's contract. */
static uint64_t iv_sector(const struct image *im, uint64_t guest,
			  uint64_t host)
{
	return (im->crypt_method == QCOW2_CRYPT_LUKS ? host : guest) /
	       CRYPTO_SECTOR_SIZE;
}

/* A size argument: 512, 64k, 0x10000. */
static uint64_t arg_size(const char *s)
{
	uint64_t v = 0;

	if (size_parse(s, &v, NULL) < 0) {
		fprintf(stderr, "crypto-tool: invalid size '%s'\n", s);
		exit(1);
	}
	return v;
}

static int crypt_data(struct image *im, char **argv, bool enc,
		      struct qerr *e)
{
	struct crypto_ctx *ctx = NULL;
	uint64_t guest = arg_size(argv[2]), host = 0;
	size_t len = arg_size(argv[3]);
	uint8_t *buf = malloc(len ? len : 1);
	int ret = buf ? unlock(im, argv[0], argv[1], &ctx, e) : -ENOMEM;

	if (ret == 0)
		ret = map(im, guest, &host, e);
	if (ret == 0 && enc) {
		memset(buf, (int)strtoul(argv[4], NULL, 0), len);
		ret = crypto_encrypt_sectors(ctx, iv_sector(im, guest, host),
					     buf, len, e);
		if (ret == 0)
			ret = qfile_pwrite(im->f, buf, len, host, e);
	} else if (ret == 0) {
		ret = qfile_pread(im->f, buf, len, host, e);
		if (ret == 0)
			ret = crypto_decrypt_sectors(ctx, iv_sector(im, guest,
								    host),
						     buf, len, e);
		if (ret == 0 && fwrite(buf, 1, len, stdout) != len)
			ret = qerr_set(e, -EIO, "write error");
	}
	crypto_free(ctx);
	free(buf);
	return ret;
}

static int luks_replace(struct image *im, char **argv, int argc,
			struct qerr *e)
{
	struct optlist opts = { 0 };
	struct crypto_create_opts o;
	const uint8_t *pass;
	uint8_t *hdr = NULL;
	size_t len = 0, passlen;
	int ret = secret_object_add(argv[0], e);

	if (ret == 0)
		ret = optlist_parse(&opts, "encrypt.format=luks", e);
	if (ret == 0)
		ret = optlist_set(&opts, "encrypt.key-secret", argv[1]);
	for (int i = 2; i < argc && ret == 0; i++)
		ret = optlist_parse(&opts, argv[i], e);
	if (ret == 0)
		ret = crypto_create_opts_get(&opts, &o, e);
	if (ret == 0)
		ret = secret_lookup_utf8(o.key_secret, &pass, &passlen, e);
	if (ret == 0)
		ret = crypto_create_luks(&o.luks, pass, passlen, &hdr, &len,
					 NULL, e);
	if (ret == 0 && (!im->has_ext || len > im->ext_length))
		ret = qerr_set(e, -ENOSPC, "the new LUKS area (%zu bytes) does "
			       "not fit the image's", len);
	if (ret == 0)
		ret = qfile_pwrite(im->f, hdr, len, im->ext_offset, e);
	free(hdr);
	optlist_free(&opts);
	return ret;
}

static int run(int argc, char **argv, struct qerr *e)
{
	struct image im = { 0 };
	const char *cmd = argv[1];
	uint64_t host = 0;
	int ret = qfile_open(&im.f, argv[2],
			     strcmp(cmd, "decrypt") && strcmp(cmd, "map")
				     ? QFILE_RDWR : 0, e);

	if (ret == 0)
		ret = load_header(&im, e);
	if (ret < 0)
		goto out;
	if (strcmp(cmd, "map") == 0 && argc == 4) {
		ret = map(&im, arg_size(argv[3]), &host, e);
		if (ret == 0)
			printf("%" PRIu64 "\n", host);
	} else if (strcmp(cmd, "decrypt") == 0 && argc == 7) {
		ret = crypt_data(&im, argv + 3, false, e);
	} else if (strcmp(cmd, "encrypt") == 0 && argc == 8) {
		ret = crypt_data(&im, argv + 3, true, e);
	} else if (strcmp(cmd, "luks-replace") == 0 && argc >= 5) {
		ret = luks_replace(&im, argv + 3, argc - 3, e);
	} else {
		ret = qerr_set(e, -EINVAL, "bad command or arguments");
	}
out:
	qfile_close(im.f);
	return ret;
}

/* Throughput of crypto_encrypt_sectors() in calls of the given size. */
static int speed(uint64_t mib, uint64_t chunk_kib, struct qerr *e)
{
	uint8_t key[64] = { 1, 2, 3 };
	size_t chunk = (size_t)chunk_kib << 10;
	struct crypto_ctx *ctx;
	struct timespec t0, t1;
	uint8_t *buf = calloc(1, chunk ? chunk : 1);
	int ret = buf && chunk ? 0 : qerr_set(e, -EINVAL, "bad chunk size");

	if (ret == 0)
		ret = crypto_open_raw(CRYPTO_CIPHER_AES_256, CRYPTO_MODE_XTS,
				      CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
				      key, sizeof(key), &ctx, e);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t done = 0; ret == 0 && done < (mib << 20); done += chunk)
		ret = crypto_encrypt_sectors(ctx, done / 512, buf, chunk, e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ret == 0)
		printf("%.0f MiB/s\n",
		       (double)mib / ((double)(t1.tv_sec - t0.tv_sec) +
				      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9));
	crypto_free(ctx);
	free(buf);
	return ret;
}

int main(int argc, char **argv)
{
	struct qerr e = { 0 };
	int ret;

	if ((argc == 4 || argc == 5) && strcmp(argv[1], "speed") == 0) {
		if (argc == 5)
			crypto_set_threads((unsigned)arg_size(argv[4]));
		ret = speed(arg_size(argv[2]), arg_size(argv[3]), &e);
		if (ret < 0)
			fprintf(stderr, "crypto-tool: %s\n", qerr_msg(&e));
		return ret < 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: crypto-tool map|decrypt|encrypt|"
				"luks-replace IMG ...\n");
		return 1;
	}
	ret = run(argc, argv, &e);
	secret_store_clear();
	if (ret < 0) {
		fprintf(stderr, "crypto-tool: %s: %s\n", argv[2], qerr_msg(&e));
		return 1;
	}
	return 0;
}
