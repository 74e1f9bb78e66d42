/*
 * test_luks.c: the LUKS1 header codec, its validation messages (qemu
 * 7.2's), and creation then unlocking through a real file: layout values
 * as qemu-img writes them (QEMU-IMG-REFERENCE.md section 7), the right
 * passphrase opens, a wrong one gets qemu's message, any active slot
 * works, and the iteration scaling refuses what qemu refuses.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/crypto_int.h"
#include "core/luks.h"
#include "tests/unit/unit.h"

#define HDR_AT 0x40000

static const uint8_t pass[] = "abc123";

static uint8_t *create(const struct crypto_luks_params *p, size_t *len,
		       struct crypto_ctx **ctx)
{
	uint8_t *hdr = NULL;
	struct qerr e = { 0 };

	if (crypto_create_luks(p, pass, 6, &hdr, len, ctx, &e) < 0)
		fprintf(stderr, "create: %s\n", qerr_msg(&e));
	return hdr;
}

static void test_layout(void)
{
	struct crypto_luks_params p;
	struct luks_header h;
	struct luks_algs a;
	size_t len = 0;
	uint8_t *hdr;

	crypto_luks_params_default(&p);
	p.iter_time_ms = 0;
	hdr = create(&p, &len, NULL);
	CHECK(hdr != NULL);
	if (!hdr)
		return;
	CHECK_EQ_U64(len, 2068480);
	CHECK(luks_header_decode(hdr, len, &h, &a, NULL) == 0);
	CHECK_STR(h.cipher_name, "aes");
	CHECK_STR(h.cipher_mode, "xts-plain64");
	CHECK_STR(h.hash_spec, "sha256");
	CHECK_EQ_U64(h.payload_offset, 4040);
	CHECK_EQ_U64(h.key_bytes, 64);
	CHECK_EQ_U64(h.mk_iterations, 1000);
	CHECK_EQ_U64(strlen(h.uuid), 36);
	CHECK(h.uuid[14] == '4' && h.uuid[8] == '-');
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		CHECK_EQ_U64(h.slot[i].key_offset, 8 + 504 * (unsigned)i);
		CHECK_EQ_U64(h.slot[i].stripes, 4000);
		CHECK_EQ_U64(h.slot[i].active,
			     i ? LUKS_SLOT_INACTIVE : LUKS_SLOT_ACTIVE);
		CHECK_EQ_U64(h.slot[i].iterations, i ? 0 : 1000);
	}
	CHECK(a.cipher == CRYPTO_CIPHER_AES_256 && a.mode == CRYPTO_MODE_XTS &&
	      a.ivgen == CRYPTO_IVGEN_PLAIN64 && !a.has_ivgen_hash);
	/* Bytes after the header and slot 0's material stay zero. */
	CHECK(hdr[LUKS_PHDR_LEN] == 0 && hdr[4095] == 0);
	CHECK(hdr[512 * 512] == 0 && hdr[len - 1] == 0);
	free(hdr);
}

static void check_names(enum crypto_cipher c, enum crypto_mode m,
			enum crypto_ivgen g, int ivhash, const char *mode,
			uint32_t payload)
{
	struct crypto_luks_params p;
	struct luks_header h;
	struct luks_algs a;
	size_t len = 0;
	uint8_t *hdr;

	crypto_luks_params_default(&p);
	p.iter_time_ms = 0;
	p.cipher = c;
	p.mode = m;
	p.ivgen = g;
	p.has_ivgen_hash = ivhash >= 0;
	p.ivgen_hash = ivhash >= 0 ? (enum crypto_hash)ivhash : p.ivgen_hash;
	hdr = create(&p, &len, NULL);
	CHECK(hdr != NULL);
	if (!hdr)
		return;
	CHECK(luks_header_decode(hdr, len, &h, &a, NULL) == 0);
	CHECK_STR(h.cipher_mode, mode);
	CHECK_EQ_U64(h.payload_offset, payload);
	CHECK_EQ_U64(len, (uint64_t)payload * 512);
	free(hdr);
}

static void test_names(void)
{
	check_names(CRYPTO_CIPHER_AES_256, CRYPTO_MODE_CBC, CRYPTO_IVGEN_ESSIV,
		    -1, "cbc-essiv:sha256", 2056);
	check_names(CRYPTO_CIPHER_AES_256, CRYPTO_MODE_CBC, CRYPTO_IVGEN_PLAIN,
		    CRYPTO_HASH_SHA1, "cbc-plain:sha1", 2056);
	check_names(CRYPTO_CIPHER_CAST5_128, CRYPTO_MODE_ECB,
		    CRYPTO_IVGEN_PLAIN64, -1, "ecb-plain64", 1032);
	check_names(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC, CRYPTO_IVGEN_ESSIV,
		    CRYPTO_HASH_MD5, "cbc-essiv:md5", 1032);
	check_names(CRYPTO_CIPHER_SERPENT_192, CRYPTO_MODE_XTS,
		    CRYPTO_IVGEN_PLAIN64, -1, "xts-plain64", 3016);
}

static void check_create_refused(enum crypto_cipher c, enum crypto_mode m,
				 enum crypto_ivgen g, uint64_t iter_time,
				 const char *prefix, const char *suffix)
{
	struct crypto_luks_params p;
	struct qerr e = { 0 };
	uint8_t *hdr = NULL;
	size_t len = 1, n;

	crypto_luks_params_default(&p);
	p.cipher = c;
	p.mode = m;
	p.ivgen = g;
	p.iter_time_ms = iter_time;
	CHECK(crypto_create_luks(&p, pass, 6, &hdr, &len, NULL, &e) < 0);
	CHECK(hdr == NULL && len == 0);
	n = strlen(e.msg);
	CHECK(strncmp(e.msg, prefix, strlen(prefix)) == 0);
	CHECK(n >= strlen(suffix) &&
	      strcmp(e.msg + n - strlen(suffix), suffix) == 0);
}

static void test_create_refused(void)
{
	check_create_refused(CRYPTO_CIPHER_AES_192, CRYPTO_MODE_CBC,
			     CRYPTO_IVGEN_PLAIN64, 0,
			     "Cipher aes-192 in mode cbc is not supported",
			     "not a whole number of sectors");
	check_create_refused(CRYPTO_CIPHER_DES, CRYPTO_MODE_CBC,
			     CRYPTO_IVGEN_PLAIN64, 0,
			     "Algorithm 'des' not supported", "");
	check_create_refused(CRYPTO_CIPHER_CAST5_128, CRYPTO_MODE_CBC,
			     CRYPTO_IVGEN_ESSIV, 0,
			     "Cipher cast5-128 not supported with essiv", "");
	check_create_refused(CRYPTO_CIPHER_AES_256, CRYPTO_MODE_XTS,
			     CRYPTO_IVGEN_PLAIN64, 1000000000,
			     "PBKDF iterations ",
			     " larger than 4294967295: Numerical result out of "
			     "range");
	check_create_refused(CRYPTO_CIPHER_AES_256, CRYPTO_MODE_XTS,
			     CRYPTO_IVGEN_PLAIN64, UINT64_MAX,
			     "PBKDF iterations ",
			     " too large to scale: Numerical result out of "
			     "range");
}

static struct qfile *temp_image(const uint8_t *hdr, size_t len)
{
	char path[] = "/tmp/qimg-test-luks.XXXXXX";
	int fd = mkstemp(path);
	struct qfile *f = NULL;

	if (fd < 0)
		return NULL;
	close(fd);
	if (qfile_open(&f, path, QFILE_RDWR, NULL) == 0)
		qfile_pwrite(f, hdr, len, HDR_AT, NULL);
	unlink(path);
	return f;
}

static void check_same_key(struct crypto_ctx *a, struct crypto_ctx *b)
{
	uint8_t x[1024], y[1024];

	memset(x, 0x5a, sizeof(x));
	memset(y, 0x5a, sizeof(y));
	crypto_encrypt_sectors(a, 0x1280, x, sizeof(x), NULL);
	crypto_encrypt_sectors(b, 0x1280, y, sizeof(y), NULL);
	CHECK(memcmp(x, y, sizeof(x)) == 0);
}

/* Move slot 0 to slot 3 (parameters and material); slot 0 inactive. */
static void move_slot(uint8_t *hdr)
{
	struct luks_header h;
	struct luks_algs a;
	struct luks_slot *s0, *s3;

	luks_header_decode(hdr, 0, &h, &a, NULL);
	s0 = &h.slot[0];
	s3 = &h.slot[3];
	memcpy(hdr + s3->key_offset * 512, hdr + s0->key_offset * 512,
	       64 * 4000);
	memset(hdr + s0->key_offset * 512, 0, 64 * 4000);
	s3->active = s0->active;
	s3->iterations = s0->iterations;
	memcpy(s3->salt, s0->salt, sizeof(s3->salt));
	s0->active = LUKS_SLOT_INACTIVE;
	s0->iterations = 0;
	luks_header_encode(&h, hdr);
}

static void test_unlock(void)
{
	struct crypto_luks_params p;
	struct crypto_ctx *made = NULL, *opened = NULL;
	struct qerr e = { 0 };
	struct qfile *f;
	size_t len = 0;
	uint8_t *hdr;

	crypto_luks_params_default(&p);
	p.iter_time_ms = 10;
	hdr = create(&p, &len, &made);
	CHECK(hdr && made);
	if (!hdr || !made)
		return;
	f = temp_image(hdr, len);
	CHECK(f != NULL);
	/* Just made: the key comes without a second key derivation. */
	CHECK(crypto_open_luks(f, HDR_AT, len, pass, 6, &opened, &e) == 0);
	if (opened)
		check_same_key(made, opened);
	crypto_free(opened);
	opened = NULL;
	/* ... but never for another passphrase, even a longer one. */
	CHECK(crypto_open_luks(f, HDR_AT, len, (const uint8_t *)"abc1234", 7,
			       &opened, &e) == -EACCES);
	CHECK(opened == NULL);
	qerr_clear(&e);
	/* Forgotten: the key slot itself opens. */
	crypto_forget_created();
	CHECK(crypto_open_luks(f, HDR_AT, len, pass, 6, &opened, &e) == 0);
	if (opened)
		check_same_key(made, opened);
	crypto_free(opened);
	opened = NULL;
	CHECK(crypto_open_luks(f, HDR_AT, len, (const uint8_t *)"abc124", 6,
			       &opened, &e) == -EACCES);
	CHECK(opened == NULL);
	CHECK_STR(e.msg, "Invalid password, cannot unlock any keyslot");
	qerr_clear(&e);
	/* The area must hold every slot's material. */
	CHECK(crypto_open_luks(f, HDR_AT, len - 4096, pass, 6, &opened, &e) ==
	      -EINVAL);
	CHECK_STR(e.msg, "Keyslot 7 lies outside the LUKS header area "
			 "(2064384 bytes)");
	qfile_close(f);
	/* Any active slot opens, not only slot 0. */
	move_slot(hdr);
	f = temp_image(hdr, len);
	CHECK(crypto_open_luks(f, HDR_AT, len, pass, 6, &opened, NULL) == 0);
	if (opened)
		check_same_key(made, opened);
	crypto_free(opened);
	qfile_close(f);
	crypto_free(made);
	free(hdr);
}

/* Patches of a valid header (bytes at off) and qemu's message for each. */
static const struct {
	size_t off;
	const char *bytes;
	size_t n;
	const char *msg;
} bad_headers[] = {
	{ 0, "LUKX", 4, "Volume is not in LUKS format" },
	{ 6, "\0\2", 2, "LUKS version 2 is not supported" },
	{ 8, "aesaesaesaesaesaesaesaesaesaesae", 32,
	  "LUKS header cipher name is not NUL terminated" },
	{ 40, "xts-plain64:sha256:sha256:sha256", 32,
	  "LUKS header cipher mode is not NUL terminated" },
	{ 104, "\0\0\0\7", 4, "LUKS payload is overlapping with the header" },
	{ 208 + 44, "\0\0\0\0", 4, "Keyslot 0 is corrupted (stripes 0 != 4000)" },
	{ 208 + 48 + 44, "\0\0\0\1", 4,
	  "Keyslot 1 is corrupted (stripes 1 != 4000)" },
	{ 208 + 48, "\0\0\0\1", 4,
	  "Keyslot 1 state (active/disable) is corrupted" },
	{ 208 + 4, "\0\0\0\0", 4, "Keyslot 0 iteration count is zero" },
	{ 208 + 40, "\0\0\0\4", 4,
	  "Keyslot 0 is overlapping with the LUKS header" },
	{ 208 + 48 + 40, "\0\0\0\x10", 4,
	  "Keyslots 0 and 1 are overlapping in the header" },
	{ 104, "\0\0\x0f\0", 4,
	  "Keyslot 7 is overlapping with the encrypted payload" },
	{ 164, "\0\0\0\0", 4, "LUKS key iteration count is zero" },
	{ 40, "xts\0", 4, "Unexpected cipher mode string format 'xts'" },
	{ 40, "foo-plain64\0", 12, "Cipher mode 'foo' not supported" },
	{ 40, "xts-plain65\0", 12, "IV generator 'plain65' not supported" },
	{ 40, "xts-essiv\0", 10, "Missing IV generator hash specification" },
	{ 40, "cbc-essiv:sha3\0", 15, "Hash algorithm 'sha3' not supported" },
	{ 72, "whirlpool\0", 10, "Hash algorithm 'whirlpool' not supported" },
	{ 8, "blowfish\0", 9,
	  "Algorithm 'blowfish' with key size 32 bytes not supported" },
	{ 108, "\0\0\0\x14", 4,
	  "Algorithm 'aes' with key size 10 bytes not supported" },
	/* aes-256 in XTS: sha256 keys ESSIV with aes-256, sha1 cannot. */
	{ 40, "xts-essiv:sha1\0", 15, "No AES cipher with key size 20 available" },
};

static void test_header_errors(void)
{
	struct crypto_luks_params p;
	struct luks_header h;
	struct luks_algs a;
	uint8_t buf[LUKS_PHDR_LEN];
	size_t len = 0;
	uint8_t *hdr;

	crypto_luks_params_default(&p);
	p.iter_time_ms = 0;
	hdr = create(&p, &len, NULL);
	if (!hdr)
		return;
	for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]);
	     i++) {
		struct qerr e = { 0 };

		memcpy(buf, hdr, sizeof(buf));
		memcpy(buf + bad_headers[i].off, bad_headers[i].bytes,
		       bad_headers[i].n);
		CHECK(luks_header_decode(buf, 0, &h, &a, &e) < 0);
		CHECK_STR(e.msg, bad_headers[i].msg);
	}
	free(hdr);
}

void test_luks(void)
{
	test_layout();
	test_names();
	test_create_refused();
	test_unlock();
	test_header_errors();
}
