/*
 * crypto_cipher.c: the sector cipher under both qcow2 encryption formats:
 * algorithm names and tables, libgcrypt set-up, IV generators, per-sector
 * encryption, contexts with their pool of cipher handles, and legacy AES.
 *
 * Each 512-byte sector is its own chain: the IV generator turns the
 * sector number into an IV (plain: 32-bit little-endian; plain64: 64-bit
 * little-endian; essiv: plain64 encrypted in ECB under hash(key)), zero-
 * padded to the cipher's IV length, and the cipher runs over the sector
 * with it (XTS: the tweak; CTR: the initial counter block; ECB: none).
 *
 * Invariants: libgcrypt is initialised (crypto_init) before any handle is
 * opened; a libgcrypt handle is used by one thread at a time (the pool
 * hands each call its own); keys are only in secmem pages and libgcrypt's
 * own contexts, which libgcrypt wipes when they are closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto_int.h"
#include "core/secmem.h"

static const struct crypto_cipher_info ciphers[CRYPTO_CIPHER_COUNT] = {
	[CRYPTO_CIPHER_AES_128] = { "aes-128", "aes", "AES", 16, 16,
				    GCRY_CIPHER_AES128 },
	[CRYPTO_CIPHER_AES_192] = { "aes-192", "aes", "AES", 24, 16,
				    GCRY_CIPHER_AES192 },
	[CRYPTO_CIPHER_AES_256] = { "aes-256", "aes", "AES", 32, 16,
				    GCRY_CIPHER_AES256 },
	[CRYPTO_CIPHER_DES] = { "des", NULL, NULL, 8, 8, 0 },
	[CRYPTO_CIPHER_3DES] = { "3des", NULL, NULL, 24, 8, 0 },
	[CRYPTO_CIPHER_CAST5_128] = { "cast5-128", "cast5", NULL, 16, 8,
				      GCRY_CIPHER_CAST5 },
	[CRYPTO_CIPHER_SERPENT_128] = { "serpent-128", "serpent", "Serpent",
					16, 16, GCRY_CIPHER_SERPENT128 },
	[CRYPTO_CIPHER_SERPENT_192] = { "serpent-192", "serpent", "Serpent",
					24, 16, GCRY_CIPHER_SERPENT192 },
	[CRYPTO_CIPHER_SERPENT_256] = { "serpent-256", "serpent", "Serpent",
					32, 16, GCRY_CIPHER_SERPENT256 },
	[CRYPTO_CIPHER_TWOFISH_128] = { "twofish-128", "twofish", "Twofish",
					16, 16, GCRY_CIPHER_TWOFISH128 },
	[CRYPTO_CIPHER_TWOFISH_192] = { "twofish-192", "twofish", "Twofish",
					24, 16, 0 },
	[CRYPTO_CIPHER_TWOFISH_256] = { "twofish-256", "twofish", "Twofish",
					32, 16, GCRY_CIPHER_TWOFISH },
};

static const char *const mode_names[CRYPTO_MODE_COUNT] = {
	"ecb", "cbc", "xts", "ctr",
};
static const int gcry_modes[CRYPTO_MODE_COUNT] = {
	GCRY_CIPHER_MODE_ECB, GCRY_CIPHER_MODE_CBC, GCRY_CIPHER_MODE_XTS,
	GCRY_CIPHER_MODE_CTR,
};
static const char *const ivgen_names[CRYPTO_IVGEN_COUNT] = {
	"plain", "plain64", "essiv",
};
static const struct {
	const char *name;
	int algo;
	size_t len;
} hashes[CRYPTO_HASH_COUNT] = {
	{ "md5", GCRY_MD_MD5, 16 },	    { "sha1", GCRY_MD_SHA1, 20 },
	{ "sha224", GCRY_MD_SHA224, 28 },   { "sha256", GCRY_MD_SHA256, 32 },
	{ "sha384", GCRY_MD_SHA384, 48 },   { "sha512", GCRY_MD_SHA512, 64 },
	{ "ripemd160", GCRY_MD_RMD160, 20 },
};

const struct crypto_cipher_info *crypto_cipher_info(enum crypto_cipher c)
{
	return &ciphers[c];
}

const char *crypto_cipher_name(enum crypto_cipher c)
{
	return ciphers[c].name;
}

const char *crypto_mode_name(enum crypto_mode m)
{
	return mode_names[m];
}

const char *crypto_ivgen_name(enum crypto_ivgen g)
{
	return ivgen_names[g];
}

const char *crypto_hash_name(enum crypto_hash h)
{
	return hashes[h].name;
}

int crypto_hash_gcry(enum crypto_hash h)
{
	return hashes[h].algo;
}

size_t crypto_hash_len(enum crypto_hash h)
{
	return hashes[h].len;
}

int crypto_cipher_lookup(const char *name)
{
	for (int i = 0; i < CRYPTO_CIPHER_COUNT; i++)
		if (strcmp(ciphers[i].name, name) == 0)
			return i;
	return -1;
}

static int lookup(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

int crypto_mode_lookup(const char *name)
{
	return lookup(mode_names, CRYPTO_MODE_COUNT, name);
}

int crypto_ivgen_lookup(const char *name)
{
	return lookup(ivgen_names, CRYPTO_IVGEN_COUNT, name);
}

int crypto_hash_lookup(const char *name)
{
	for (int i = 0; i < CRYPTO_HASH_COUNT; i++)
		if (strcmp(hashes[i].name, name) == 0)
			return i;
	return -1;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool init_ok;

static void init_gcrypt(void)
{
	if (!gcry_check_version(GCRYPT_VERSION))
		return;
	/*
	 * No libgcrypt secure-memory pool: it would print warnings when it
	 * cannot lock pages.  Our keys live in secmem pages instead, and
	 * libgcrypt wipes its own contexts when they are closed.
	 */
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	init_ok = true;
}

int crypto_init(struct qerr *e)
{
	pthread_once(&init_once, init_gcrypt);
	if (!init_ok)
		return qerr_set(e, -EIO, "libgcrypt %s or newer is required "
				"(found %s)", GCRYPT_VERSION,
				gcry_check_version(NULL));
	return 0;
}

void crypto_random(void *buf, size_t len, bool key)
{
	gcry_randomize(buf, len, key ? GCRY_VERY_STRONG_RANDOM
				     : GCRY_STRONG_RANDOM);
}

/* The ESSIV cipher: same family, key length = digest length (qemu). */
int crypto_essiv_cipher(enum crypto_cipher c, enum crypto_hash h,
			enum crypto_cipher *out, struct qerr *e)
{
	const struct crypto_cipher_info *ci = &ciphers[c];
	size_t dlen = crypto_hash_len(h);

	if (dlen == ci->key_len) {
		*out = c;
		return 0;
	}
	if (!ci->family)
		return qerr_set(e, -ENOTSUP,
				"Cipher %s not supported with essiv", ci->name);
	for (int i = 0; i < CRYPTO_CIPHER_COUNT; i++) {
		if (ciphers[i].family &&
		    strcmp(ciphers[i].family, ci->family) == 0 &&
		    ciphers[i].key_len == dlen) {
			*out = (enum crypto_cipher)i;
			return 0;
		}
	}
	return qerr_set(e, -ENOTSUP, "No %s cipher with key size %zu available",
			ci->family, dlen);
}

static int cipher_usable(enum crypto_cipher c, struct qerr *e)
{
	if (!ciphers[c].gcry_algo)
		return qerr_set(e, -ENOTSUP, "Algorithm '%s' not supported",
				ciphers[c].name);
	return 0;
}

int crypto_suite_make(struct crypto_suite *s, enum crypto_cipher cipher,
		      enum crypto_mode mode, enum crypto_ivgen ivgen,
		      enum crypto_hash ivgen_hash, struct qerr *e)
{
	int ret = crypto_init(e);

	if (ret < 0)
		return ret;
	s->cipher = cipher;
	s->mode = mode;
	s->ivgen = ivgen;
	s->ivgen_hash = ivgen_hash;
	s->ivgen_cipher = cipher;
	ret = cipher_usable(cipher, e);
	if (ret < 0)
		return ret;
	if (mode == CRYPTO_MODE_XTS && ciphers[cipher].block_len != 16)
		return qerr_set(e, -ENOTSUP, "Unsupported cipher mode %s",
				mode_names[mode]);
	if (ivgen != CRYPTO_IVGEN_ESSIV)
		return 0;
	ret = crypto_essiv_cipher(cipher, ivgen_hash, &s->ivgen_cipher, e);
	if (ret == 0)
		ret = cipher_usable(s->ivgen_cipher, e);
	return ret;
}

size_t crypto_suite_key_len(const struct crypto_suite *s)
{
	size_t len = ciphers[s->cipher].key_len;

	return s->mode == CRYPTO_MODE_XTS ? 2 * len : len;
}

int crypto_keyed_init(struct crypto_keyed *k, const struct crypto_suite *s,
		      const uint8_t *key, size_t key_len, struct qerr *e)
{
	int ret = crypto_init(e);

	if (ret < 0)
		return ret;
	if (key_len != crypto_suite_key_len(s) || key_len > CRYPTO_MAX_KEY)
		return qerr_set(e, -EINVAL,
				"invalid key length %zu for cipher %s-%s",
				key_len, ciphers[s->cipher].name,
				mode_names[s->mode]);
	memset(k, 0, sizeof(*k));
	k->s = *s;
	k->key_len = key_len;
	memcpy(k->key, key, key_len);
	k->iv_len = s->mode == CRYPTO_MODE_ECB ? 0
						: ciphers[s->cipher].block_len;
	if (s->ivgen == CRYPTO_IVGEN_ESSIV) {
		/* The salt is hash(whole key), cut to the ESSIV key. */
		int algo = hashes[s->ivgen_hash].algo;

		gcry_md_hash_buffer(algo, k->essiv_key, key, key_len);
		k->essiv_key_len = ciphers[s->ivgen_cipher].key_len;
	}
	return 0;
}

static int gcry_fail(struct qerr *e, const char *what, gcry_error_t err)
{
	return qerr_set(e, -EIO, "libgcrypt: %s: %s", what, gcry_strerror(err));
}

static int open_keyed(gcry_cipher_hd_t *h, enum crypto_cipher c, int mode,
		      const uint8_t *key, size_t len, struct qerr *e)
{
	gcry_error_t err = gcry_cipher_open(h, ciphers[c].gcry_algo, mode, 0);

	if (err) {
		*h = NULL;
		return gcry_fail(e, "cannot open the cipher", err);
	}
	err = gcry_cipher_setkey(*h, key, len);
	if (err) {
		gcry_cipher_close(*h);
		*h = NULL;
		return gcry_fail(e, "cannot set the key", err);
	}
	return 0;
}

int crypto_hd_open(const struct crypto_keyed *k, struct crypto_hd *h,
		   struct qerr *e)
{
	int ret;

	h->essiv = NULL;
	h->next = NULL;
	ret = open_keyed(&h->c, k->s.cipher, gcry_modes[k->s.mode], k->key,
			 k->key_len, e);
	if (ret < 0 || k->s.ivgen != CRYPTO_IVGEN_ESSIV)
		return ret;
	ret = open_keyed(&h->essiv, k->s.ivgen_cipher, GCRY_CIPHER_MODE_ECB,
			 k->essiv_key, k->essiv_key_len, e);
	if (ret < 0)
		gcry_cipher_close(h->c);
	return ret;
}

void crypto_hd_close(struct crypto_hd *h)
{
	gcry_cipher_close(h->c);
	if (h->essiv)
		gcry_cipher_close(h->essiv);
}

static void le_put(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static int make_iv(const struct crypto_keyed *k, struct crypto_hd *h,
		   uint64_t sector, uint8_t *iv, struct qerr *e)
{
	uint8_t data[CRYPTO_MAX_BLOCK] = { 0 };
	size_t n;
	gcry_error_t err;

	memset(iv, 0, k->iv_len);
	switch (k->s.ivgen) {
	case CRYPTO_IVGEN_PLAIN:
		le_put(iv, sector & 0xffffffffU, k->iv_len < 4 ? k->iv_len : 4);
		return 0;
	case CRYPTO_IVGEN_PLAIN64:
		le_put(iv, sector, k->iv_len < 8 ? k->iv_len : 8);
		return 0;
	default:
		break;
	}
	n = ciphers[k->s.ivgen_cipher].block_len;
	le_put(data, sector, n < 8 ? n : 8);
	err = gcry_cipher_encrypt(h->essiv, data, n, NULL, 0);
	if (err)
		return gcry_fail(e, "essiv", err);
	memcpy(iv, data, n < k->iv_len ? n : k->iv_len);
	return 0;
}

int crypto_hd_crypt(const struct crypto_keyed *k, struct crypto_hd *h,
		    uint64_t sector, uint8_t *buf, size_t len, bool enc,
		    struct qerr *e)
{
	uint8_t iv[CRYPTO_MAX_BLOCK];
	gcry_error_t err = 0;
	int ret;

	for (size_t off = 0; off < len; off += CRYPTO_SECTOR_SIZE, sector++) {
		size_t n = len - off < CRYPTO_SECTOR_SIZE ? len - off
							  : CRYPTO_SECTOR_SIZE;

		if (k->iv_len) {
			ret = make_iv(k, h, sector, iv, e);
			if (ret < 0)
				return ret;
			if (k->s.mode == CRYPTO_MODE_CTR)
				err = gcry_cipher_setctr(h->c, iv, k->iv_len);
			else
				err = gcry_cipher_setiv(h->c, iv, k->iv_len);
		}
		if (!err)
			err = enc ? gcry_cipher_encrypt(h->c, buf + off, n,
							NULL, 0)
				  : gcry_cipher_decrypt(h->c, buf + off, n,
							NULL, 0);
		if (err)
			return gcry_fail(e, enc ? "encryption" : "decryption",
					 err);
	}
	return 0;
}

int crypto_ctx_new(enum crypto_format format, const struct crypto_suite *s,
		   const uint8_t *key, size_t key_len,
		   struct crypto_ctx **out, struct qerr *e)
{
	struct crypto_ctx *ctx = secmem_alloc(sizeof(*ctx));
	int ret;

	*out = NULL;
	if (!ctx)
		return qerr_set(e, -ENOMEM, "out of memory");
	ret = crypto_keyed_init(&ctx->k, s, key, key_len, e);
	if (ret < 0) {
		secmem_free(ctx, sizeof(*ctx));
		return ret;
	}
	ctx->format = format;
	ctx->pool = NULL;
	ctx->refs = 0;
	pthread_mutex_init(&ctx->lock, NULL);
	*out = ctx;
	return 0;
}

struct crypto_ctx *crypto_ref(struct crypto_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->refs++;
	pthread_mutex_unlock(&ctx->lock);
	return ctx;
}

void crypto_free(struct crypto_ctx *ctx)
{
	bool last;

	if (!ctx)
		return;
	pthread_mutex_lock(&ctx->lock);
	last = ctx->refs-- == 0;
	pthread_mutex_unlock(&ctx->lock);
	if (!last)
		return;
	while (ctx->pool) {
		struct crypto_hd *h = ctx->pool;

		ctx->pool = h->next;
		crypto_hd_close(h);
		free(h);
	}
	pthread_mutex_destroy(&ctx->lock);
	secmem_free(ctx, sizeof(*ctx));
}

enum crypto_format crypto_ctx_format(const struct crypto_ctx *ctx)
{
	return ctx->format;
}

/* Borrow an idle handle, or open one when all are in use. */
static struct crypto_hd *hd_get(struct crypto_ctx *ctx, struct qerr *e)
{
	struct crypto_hd *h;

	pthread_mutex_lock(&ctx->lock);
	h = ctx->pool;
	if (h)
		ctx->pool = h->next;
	pthread_mutex_unlock(&ctx->lock);
	if (h)
		return h;
	h = malloc(sizeof(*h));
	if (!h) {
		qerr_set(e, -ENOMEM, "out of memory");
		return NULL;
	}
	if (crypto_hd_open(&ctx->k, h, e) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

static void hd_put(struct crypto_ctx *ctx, struct crypto_hd *h)
{
	pthread_mutex_lock(&ctx->lock);
	h->next = ctx->pool;
	ctx->pool = h;
	pthread_mutex_unlock(&ctx->lock);
}

int crypto_ctx_crypt(struct crypto_ctx *ctx, uint64_t sector, void *buf,
		     size_t len, bool enc, struct qerr *e)
{
	struct crypto_hd *h;
	int ret;

	if (len % CRYPTO_SECTOR_SIZE)
		return qerr_set(e, -EINVAL,
				"encrypted I/O of %zu bytes is not a whole "
				"number of 512-byte sectors", len);
	h = hd_get(ctx, e);
	if (!h)
		return -ENOMEM;
	ret = crypto_hd_crypt(&ctx->k, h, sector, buf, len, enc, e);
	hd_put(ctx, h);
	return ret;
}

int crypto_encrypt_sectors(struct crypto_ctx *ctx, uint64_t sector, void *buf,
			   size_t len, struct qerr *e)
{
	return crypto_par_crypt(ctx, sector, buf, len, true, e);
}

int crypto_decrypt_sectors(struct crypto_ctx *ctx, uint64_t sector, void *buf,
			   size_t len, struct qerr *e)
{
	return crypto_par_crypt(ctx, sector, buf, len, false, e);
}

int crypto_open_raw(enum crypto_cipher cipher, enum crypto_mode mode,
		    enum crypto_ivgen ivgen, enum crypto_hash ivgen_hash,
		    const uint8_t *key, size_t key_len,
		    struct crypto_ctx **out, struct qerr *e)
{
	struct crypto_suite s;
	int ret;

	*out = NULL;
	ret = crypto_suite_make(&s, cipher, mode, ivgen, ivgen_hash, e);
	if (ret == 0)
		ret = crypto_ctx_new(CRYPTO_FORMAT_LUKS, &s, key, key_len, out,
				     e);
	return ret;
}

int crypto_open_aes(const uint8_t *pass, size_t passlen,
		    struct crypto_ctx **out, struct qerr *e)
{
	uint8_t key[16] = { 0 };
	struct crypto_suite s;
	int ret;

	*out = NULL;
	memcpy(key, pass, passlen < sizeof(key) ? passlen : sizeof(key));
	ret = crypto_suite_make(&s, CRYPTO_CIPHER_AES_128, CRYPTO_MODE_CBC,
				CRYPTO_IVGEN_PLAIN64, CRYPTO_HASH_SHA256, e);
	if (ret == 0)
		ret = crypto_ctx_new(CRYPTO_FORMAT_AES, &s, key, sizeof(key),
				     out, e);
	secmem_wipe(key, sizeof(key));
	return ret;
}
