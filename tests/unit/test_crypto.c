/*
 * test_crypto.c: known-answer tests of the encryption primitives against
 * published vectors (IEEE 1619 XTS-AES, NIST SP 800-38A CBC-AES128, RFC
 * 6070 PBKDF2-HMAC-SHA1, RFC 7914 and the common PBKDF2-HMAC-SHA256
 * vectors), fixed vectors computed with an independent implementation
 * (Python's hashlib and cryptography) for the AF merge, ESSIV and CTR, and
 * round trips of every cipher suite qemu offers for LUKS.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/crypto_int.h"
#include "tests/unit/unit.h"

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = 0;

	for (; s[0] && s[1]; s += 2) {
		unsigned v;

		sscanf(s, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static bool equals_hex(const uint8_t *p, const char *hex)
{
	uint8_t want[1024];
	size_t n = unhex(hex, want);

	return memcmp(p, want, n) == 0;
}

static struct crypto_ctx *open_ctx(enum crypto_cipher c, enum crypto_mode m,
				   enum crypto_ivgen g, enum crypto_hash h,
				   const char *keyhex)
{
	uint8_t key[64];
	size_t n = unhex(keyhex, key);
	struct crypto_ctx *ctx = NULL;
	struct qerr e = { 0 };

	if (crypto_open_raw(c, m, g, h, key, n, &ctx, &e) < 0)
		fprintf(stderr, "open_ctx: %s\n", qerr_msg(&e));
	return ctx;
}

static void counting(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)i;
}

/* IEEE 1619-2007 vectors 4 (AES-128, unit 0) and 10 (AES-256, unit 0xff). */
static const char xts4_ct[] =
	"27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c"
	"c78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412"
	"328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce"
	"93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad0265"
	"5ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8"
	"a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434"
	"1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c"
	"5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e"
	"94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc"
	"1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3"
	"e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344"
	"b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd"
	"74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752"
	"afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203e"
	"bb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d"
	"eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568";
static const char xts10_ct[] =
	"1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
	"5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
	"5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
	"c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
	"2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
	"b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
	"93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
	"583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
	"84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
	"505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
	"9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
	"a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
	"6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
	"645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
	"1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
	"773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";

static void check_sector(struct crypto_ctx *ctx, uint64_t sector,
			 const uint8_t *pt, const char *cthex)
{
	uint8_t buf[512];

	CHECK(ctx != NULL);
	if (!ctx)
		return;
	memcpy(buf, pt, sizeof(buf));
	CHECK(crypto_encrypt_sectors(ctx, sector, buf, sizeof(buf), NULL) == 0);
	CHECK(equals_hex(buf, cthex));
	CHECK(crypto_decrypt_sectors(ctx, sector, buf, sizeof(buf), NULL) == 0);
	CHECK(memcmp(buf, pt, sizeof(buf)) == 0);
	crypto_free(ctx);
}

/* Vectors 1 and 2 are 32-byte data units: through the internal API. */
static void check_short_xts(const char *keyhex, uint64_t unit, uint8_t fill,
			    const char *cthex)
{
	struct crypto_suite s;
	struct crypto_keyed k;
	struct crypto_hd hd;
	uint8_t key[32], buf[32];

	memset(buf, fill, sizeof(buf));
	unhex(keyhex, key);
	CHECK(crypto_suite_make(&s, CRYPTO_CIPHER_AES_128, CRYPTO_MODE_XTS,
				CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
				NULL) == 0);
	CHECK(crypto_keyed_init(&k, &s, key, sizeof(key), NULL) == 0);
	CHECK(crypto_hd_open(&k, &hd, NULL) == 0);
	CHECK(crypto_hd_crypt(&k, &hd, unit, buf, sizeof(buf), true, NULL) ==
	      0);
	CHECK(equals_hex(buf, cthex));
	crypto_hd_close(&hd);
}

static void test_xts(void)
{
	uint8_t pt[512];

	check_short_xts("0000000000000000000000000000000000000000000000000000"
			"000000000000", 0, 0,
			"917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2"
			"652fbf922e");
	check_short_xts("1111111111111111111111111111111122222222222222222222"
			"222222222222", 0x3333333333ULL, 0x44,
			"c454185e6a16936e39334038acef838bfb186fff7480adc4289382"
			"ecd6d394f0");
	counting(pt, sizeof(pt));
	check_sector(open_ctx(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_XTS,
			      CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
			      "2718281828459045235360287471352631415926535897"
			      "932384626433832795"),
		     0, pt, xts4_ct);
	check_sector(open_ctx(CRYPTO_CIPHER_AES_256, CRYPTO_MODE_XTS,
			      CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
			      "2718281828459045235360287471352662497757247093"
			      "6999595749669676273141592653589793238462643383"
			      "279502884197169399375105820974944592"),
		     0xff, pt, xts10_ct);
}

/*
 * NIST SP 800-38A F.2.1 CBC-AES128: IV 000102..0f.  Our IV comes from the
 * sector number, so the first plaintext block is pre-XORed with the
 * difference between NIST's IV and ours; the chain is then NIST's.
 */
static void check_cbc(struct crypto_ctx *ctx, uint64_t sector,
		      const uint8_t our_iv[16])
{
	static const char pt_hex[] =
		"6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af"
		"8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417b"
		"e66c3710";
	static const char ct_hex[] =
		"7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a9176"
		"78b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca30"
		"7586e1a7";
	uint8_t buf[512] = { 0 }, pt[512] = { 0 };

	CHECK(ctx != NULL);
	if (!ctx)
		return;
	unhex(pt_hex, pt);
	for (int i = 0; i < 16; i++)
		pt[i] ^= (uint8_t)(i ^ our_iv[i]);
	memcpy(buf, pt, sizeof(buf));
	CHECK(crypto_encrypt_sectors(ctx, sector, buf, sizeof(buf), NULL) == 0);
	CHECK(equals_hex(buf, ct_hex));
	CHECK(crypto_decrypt_sectors(ctx, sector, buf, sizeof(buf), NULL) == 0);
	CHECK(memcmp(buf, pt, sizeof(buf)) == 0);
	crypto_free(ctx);
}

static const char nist_key[] = "2b7e151628aed2a6abf7158809cf4f3c";

static void test_cbc(void)
{
	static const uint8_t zero[16] = { 0 };
	static const uint8_t le8[16] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	static const uint8_t le4[16] = { 0, 1, 2, 3 };
	uint8_t key[16];
	struct crypto_ctx *ctx = NULL;

	check_cbc(open_ctx(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC,
			   CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256, nist_key),
		  0, zero);
	/* plain64 is little-endian over 8 bytes... */
	check_cbc(open_ctx(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC,
			   CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256, nist_key),
		  0x0706050403020100ULL, le8);
	/* ...and plain keeps only the low 32 bits. */
	check_cbc(open_ctx(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC,
			   CRYPTO_IVGEN_PLAIN, CRYPTO_HASH_SHA256, nist_key),
		  0xdeadbeef03020100ULL, le4);
	/* Legacy qcow2 AES is AES-128-CBC-plain64 keyed by the passphrase. */
	unhex(nist_key, key);
	CHECK(crypto_open_aes(key, sizeof(key), &ctx, NULL) == 0);
	CHECK(crypto_ctx_format(ctx) == CRYPTO_FORMAT_AES);
	check_cbc(ctx, 0x0706050403020100ULL, le8);
}

/* The legacy AES key: passphrase truncated or zero-padded to 16 bytes. */
static void test_aes_key(void)
{
	static const uint8_t longpass[] = "0123456789abcdefIGNORED";
	struct crypto_ctx *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	uint8_t x[512], y[512], z[512], w[512];

	counting(x, sizeof(x));
	memcpy(y, x, sizeof(x));
	memcpy(z, x, sizeof(x));
	memcpy(w, x, sizeof(x));
	CHECK(crypto_open_aes((const uint8_t *)"abc", 3, &a, NULL) == 0);
	c = open_ctx(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC,
		     CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
		     "61626300000000000000000000000000");
	CHECK(crypto_open_aes(longpass, sizeof(longpass) - 1, &b, NULL) == 0);
	d = open_ctx(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC,
		     CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
		     "30313233343536373839616263646566");
	CHECK(a && b && c && d);
	if (!(a && b && c && d))
		return;
	crypto_encrypt_sectors(a, 7, x, sizeof(x), NULL);
	crypto_encrypt_sectors(c, 7, y, sizeof(y), NULL);
	crypto_encrypt_sectors(b, 7, z, sizeof(z), NULL);
	crypto_encrypt_sectors(d, 7, w, sizeof(w), NULL);
	CHECK(memcmp(x, y, sizeof(x)) == 0);
	CHECK(memcmp(z, w, sizeof(z)) == 0);
	crypto_free(a);
	crypto_free(b);
	crypto_free(c);
	crypto_free(d);
}

static void check_pbkdf2(enum crypto_hash h, const char *pass, size_t plen,
			 const char *salt, size_t slen, uint64_t iters,
			 const char *want)
{
	uint8_t out[64];
	size_t n = strlen(want) / 2;

	CHECK(crypto_pbkdf2(h, (const uint8_t *)pass, plen,
			    (const uint8_t *)salt, slen, iters, out, n,
			    NULL) == 0);
	CHECK(equals_hex(out, want));
}

static void test_pbkdf2(void)
{
	enum crypto_hash s1 = CRYPTO_HASH_SHA1, s256 = CRYPTO_HASH_SHA256;
	uint64_t rate = 0;
	struct qerr e = { 0 };

	/* RFC 6070 */
	check_pbkdf2(s1, "password", 8, "salt", 4, 1,
		     "0c60c80f961f0e71f3a9b524af6012062fe037a6");
	check_pbkdf2(s1, "password", 8, "salt", 4, 2,
		     "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
	check_pbkdf2(s1, "password", 8, "salt", 4, 4096,
		     "4b007901b765489abead49d926f721d065a429c1");
	check_pbkdf2(s1, "passwordPASSWORDpassword", 24,
		     "saltSALTsaltSALTsaltSALTsaltSALTsalt", 36, 4096,
		     "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038");
	check_pbkdf2(s1, "pass\0word", 9, "sa\0lt", 5, 4096,
		     "56fa6aa75548099dcc37d7f03425e0c3");
	/* PBKDF2-HMAC-SHA256: the common vectors and RFC 7914 section 11 */
	check_pbkdf2(s256, "password", 8, "salt", 4, 1,
		     "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987c"
		     "b70be17b");
	check_pbkdf2(s256, "password", 8, "salt", 4, 4096,
		     "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873"
		     "aa98134a");
	check_pbkdf2(s256, "passwd", 6, "salt", 4, 1,
		     "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57"
		     "c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd5"
		     "09112041d3a19783");
	CHECK(crypto_pbkdf2(s256, NULL, 0, (const uint8_t *)"salt", 4, 0,
			    (uint8_t[4]){ 0 }, 4, &e) == -EINVAL);
	CHECK(crypto_pbkdf2_rate(s256, 32, &rate, NULL) == 0);
	CHECK(rate > 1000);
}

static void test_af(void)
{
	uint8_t split[64 * 5], key[64], back[64], *big;
	struct qerr e = { 0 };

	for (size_t i = 0; i < sizeof(split); i++)
		split[i] = (uint8_t)(i % 251);
	CHECK(crypto_af_merge(CRYPTO_HASH_SHA256, split, 32, 4, key, NULL) ==
	      0);
	CHECK(equals_hex(key, "fa156d31ac2b310122443cefe5dc68f026b8f5f109faff8a"
			      "1ea3a83178bf7919"));
	/* A 64-byte key with a 20-byte hash: the last piece is partial. */
	CHECK(crypto_af_merge(CRYPTO_HASH_SHA1, split, 64, 5, key, NULL) == 0);
	CHECK(equals_hex(key, "bfe6b3ff1caa453a6557c47fcd6d6da24d927c3eb39c5566"
			      "badcd6e4f575e9761aa441f69ed56c50622e6cd8a9e782de"
			      "b17a6bc855b41a9cc5509c90c6027e7c"));
	/* Round trip at LUKS size. */
	big = malloc(64 * 4000);
	CHECK(big != NULL);
	if (!big)
		return;
	counting(key, sizeof(key));
	CHECK(crypto_af_split(CRYPTO_HASH_SHA256, key, 64, 4000, big, NULL) ==
	      0);
	CHECK(crypto_af_merge(CRYPTO_HASH_SHA256, big, 64, 4000, back, NULL) ==
	      0);
	CHECK(memcmp(key, back, sizeof(key)) == 0);
	big[17] ^= 1;
	CHECK(crypto_af_merge(CRYPTO_HASH_SHA256, big, 64, 4000, back, NULL) ==
	      0);
	CHECK(memcmp(key, back, sizeof(key)) != 0);
	free(big);
	CHECK(crypto_af_merge(CRYPTO_HASH_SHA256, split, 32, 0, key, &e) ==
	      -EINVAL);
}

/* ESSIV and CTR against Python's cryptography (independent code). */
static void test_essiv_ctr(void)
{
	static const uint8_t zero[512];

	check_sector(open_ctx(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC,
			      CRYPTO_IVGEN_ESSIV, CRYPTO_HASH_SHA256,
			      "000102030405060708090a0b0c0d0e0f"),
		     5, zero,
		     "cf353a91aa5f5ddd71a62976229fedd6784b8f1cd9611af0b7aa604a"
		     "eb52e003");
	check_sector(open_ctx(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CTR,
			      CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
			      "000102030405060708090a0b0c0d0e0f"),
		     0x0102, zero,
		     "4bde7162430f6ec901a82652f54bb623aed72c8875e5a64e42a19435"
		     "0ad7b913");
}

static void check_refused(enum crypto_cipher c, enum crypto_mode m,
			  enum crypto_ivgen g, enum crypto_hash h,
			  const char *msg)
{
	struct crypto_ctx *ctx = NULL;
	struct qerr e = { 0 };
	uint8_t key[64] = { 0 };

	CHECK(crypto_open_raw(c, m, g, h, key, 64, &ctx, &e) < 0);
	CHECK(ctx == NULL);
	CHECK_STR(e.msg, msg);
}

static void test_refused(void)
{
	check_refused(CRYPTO_CIPHER_CAST5_128, CRYPTO_MODE_CBC,
		      CRYPTO_IVGEN_ESSIV, CRYPTO_HASH_SHA256,
		      "Cipher cast5-128 not supported with essiv");
	check_refused(CRYPTO_CIPHER_AES_256, CRYPTO_MODE_CBC,
		      CRYPTO_IVGEN_ESSIV, CRYPTO_HASH_SHA1,
		      "No AES cipher with key size 20 available");
	check_refused(CRYPTO_CIPHER_SERPENT_192, CRYPTO_MODE_CBC,
		      CRYPTO_IVGEN_ESSIV, CRYPTO_HASH_SHA224,
		      "No Serpent cipher with key size 28 available");
	check_refused(CRYPTO_CIPHER_CAST5_128, CRYPTO_MODE_XTS,
		      CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
		      "Unsupported cipher mode xts");
	check_refused(CRYPTO_CIPHER_TWOFISH_192, CRYPTO_MODE_XTS,
		      CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
		      "Algorithm 'twofish-192' not supported");
	check_refused(CRYPTO_CIPHER_DES, CRYPTO_MODE_CBC, CRYPTO_IVGEN_PLAIN64,
		      CRYPTO_HASH_SHA256, "Algorithm 'des' not supported");
	/* A key of the wrong length for the suite. */
	check_refused(CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC,
		      CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256,
		      "invalid key length 64 for cipher aes-128-cbc");
}

/* Every usable suite: round trip, and the sector number matters. */
static void test_round_trips(void)
{
	static const enum crypto_hash ivh[] = { CRYPTO_HASH_MD5,
						CRYPTO_HASH_SHA256 };
	uint8_t key[64], pt[1024], buf[1024];
	int usable = 0;

	counting(key, sizeof(key));
	counting(pt, sizeof(pt));
	for (int c = 0; c < CRYPTO_CIPHER_COUNT; c++)
	for (int m = 0; m < CRYPTO_MODE_COUNT; m++)
	for (int g = 0; g < CRYPTO_IVGEN_COUNT; g++)
	for (int h = 0; h < 2; h++) {
		struct crypto_suite s;
		struct crypto_ctx *ctx = NULL;

		if (crypto_suite_make(&s, c, m, g, ivh[h], NULL) < 0)
			continue;
		CHECK(crypto_open_raw(c, m, g, ivh[h], key,
				      crypto_suite_key_len(&s), &ctx,
				      NULL) == 0);
		if (!ctx)
			continue;
		usable++;
		memcpy(buf, pt, sizeof(buf));
		CHECK(crypto_encrypt_sectors(ctx, 99, buf, sizeof(buf),
					     NULL) == 0);
		CHECK(memcmp(buf, pt, sizeof(buf)) != 0);
		CHECK(crypto_decrypt_sectors(ctx, 99, buf, sizeof(buf),
					     NULL) == 0);
		CHECK(memcmp(buf, pt, sizeof(buf)) == 0);
		crypto_encrypt_sectors(ctx, 99, buf, sizeof(buf), NULL);
		crypto_decrypt_sectors(ctx, 98, buf, sizeof(buf), NULL);
		CHECK((memcmp(buf, pt, sizeof(buf)) == 0) ==
		      (m == CRYPTO_MODE_ECB));
		crypto_free(ctx);
	}
	/* 9 usable ciphers x ... : just make sure the loop did run. */
	CHECK(usable > 100);
}

struct thread_arg {
	struct crypto_ctx *ctx;
	uint8_t *buf;
	uint64_t sector;
};

static void *encrypt_thread(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < 50; i++) {
		crypto_encrypt_sectors(a->ctx, a->sector, a->buf, 4096, NULL);
		crypto_decrypt_sectors(a->ctx, a->sector, a->buf, 4096, NULL);
	}
	crypto_encrypt_sectors(a->ctx, a->sector, a->buf, 4096, NULL);
	return NULL;
}

/* One context, several threads: the same bytes as one thread makes. */
static void test_threads(void)
{
	enum { N = 4 };
	struct crypto_ctx *ctx = open_ctx(CRYPTO_CIPHER_AES_128,
					  CRYPTO_MODE_CBC, CRYPTO_IVGEN_ESSIV,
					  CRYPTO_HASH_SHA256,
					  "000102030405060708090a0b0c0d0e0f");
	static uint8_t bufs[N][4096], want[N][4096];
	pthread_t t[N];
	struct thread_arg a[N];

	CHECK(ctx != NULL);
	if (!ctx)
		return;
	for (int i = 0; i < N; i++) {
		counting(bufs[i], 4096);
		memcpy(want[i], bufs[i], 4096);
		crypto_encrypt_sectors(ctx, (uint64_t)i * 8, want[i], 4096,
				       NULL);
		a[i] = (struct thread_arg){ ctx, bufs[i], (uint64_t)i * 8 };
		pthread_create(&t[i], NULL, encrypt_thread, &a[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		CHECK(memcmp(bufs[i], want[i], 4096) == 0);
	}
	CHECK(crypto_encrypt_sectors(ctx, 0, bufs[0], 100, NULL) == -EINVAL);
	crypto_free(ctx);
}

struct big_arg {
	struct crypto_ctx *ctx;
	uint8_t *buf;
	size_t len;
	uint64_t sector;
	int ret;
};

static void *big_thread(void *p)
{
	struct big_arg *a = p;

	a->ret = crypto_encrypt_sectors(a->ctx, a->sector, a->buf, a->len,
					NULL);
	return NULL;
}

/*
 * Large calls are cut into slices for the pool (crypto_par.c): the bytes
 * must be those of one sector at a time, also when several threads make
 * large calls at once, and decryption must invert it.  Sizes around the
 * slice limits, with sector counts that do not divide evenly.
 */
static void test_parallel(void)
{
	enum { N = 3, MAX = (1 << 20) + 512 * 7 };
	static const size_t sizes[] = { 64 * 1024, 128 * 1024,
					128 * 1024 + 512, 1 << 20, MAX };
	struct crypto_ctx *ctx = open_ctx(CRYPTO_CIPHER_AES_128,
					  CRYPTO_MODE_CBC, CRYPTO_IVGEN_ESSIV,
					  CRYPTO_HASH_SHA256,
					  "000102030405060708090a0b0c0d0e0f");
	uint8_t *want = malloc(MAX), *bufs[N];
	struct big_arg a[N];
	pthread_t t[N];

	CHECK(ctx != NULL && want != NULL);
	if (!ctx || !want)
		return;
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		size_t len = sizes[z];

		counting(want, len);
		for (size_t off = 0; off < len; off += 512)
			crypto_encrypt_sectors(ctx, 1000 + off / 512,
					       want + off, 512, NULL);
		for (int i = 0; i < N; i++) {
			bufs[i] = malloc(len);
			counting(bufs[i], len);
			a[i] = (struct big_arg){ ctx, bufs[i], len, 1000, -1 };
			pthread_create(&t[i], NULL, big_thread, &a[i]);
		}
		for (int i = 0; i < N; i++) {
			pthread_join(t[i], NULL);
			CHECK(a[i].ret == 0);
			CHECK(memcmp(bufs[i], want, len) == 0);
			CHECK(crypto_decrypt_sectors(ctx, 1000, bufs[i], len,
						     NULL) == 0);
			counting(want, len);
			CHECK(memcmp(bufs[i], want, len) == 0);
			/* want back to ciphertext for the next thread */
			for (size_t off = 0; off < len; off += 512)
				crypto_encrypt_sectors(ctx, 1000 + off / 512,
						       want + off, 512, NULL);
			free(bufs[i]);
		}
	}
	free(want);
	crypto_free(ctx);
}

void test_crypto(void)
{
	test_xts();
	test_cbc();
	test_aes_key();
	test_pbkdf2();
	test_af();
	test_essiv_ctr();
	test_refused();
	test_round_trips();
	test_threads();
	test_parallel();
}
