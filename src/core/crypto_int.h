/*
 * crypto_int.h: what the crypto files share and nobody else needs: the
 * cipher table, a "keyed suite" (one cipher, mode and IV generator with
 * one key, as LUKS uses both for the payload and for each key slot's
 * material), libgcrypt handles for it, and the context layout.
 *
 * Invariant: a struct crypto_keyed has passed crypto_keyed_init(), so its
 * key length, IV length and ESSIV cipher are consistent and supported by
 * libgcrypt.  Structures holding keys live in secmem pages.
 */
#ifndef QIMG_CORE_CRYPTO_INT_H
#define QIMG_CORE_CRYPTO_INT_H

#include <gcrypt.h>
#include <pthread.h>

#include "core/crypto.h"

#define CRYPTO_MAX_KEY 64	/* aes-256/serpent-256/twofish-256 in XTS */
#define CRYPTO_MAX_BLOCK 16
#define CRYPTO_MAX_DIGEST 64

struct crypto_cipher_info {
	const char *name;	/* qemu's: "aes-256" */
	const char *luks_name;	/* LUKS header cipher_name, NULL: not in LUKS */
	const char *family;	/* "AES", for "No AES cipher with key size ..." */
	unsigned key_len;	/* bytes, one key (XTS takes two) */
	unsigned block_len;
	int gcry_algo;		/* 0: libgcrypt does not have it */
};

const struct crypto_cipher_info *crypto_cipher_info(enum crypto_cipher c);

/* A cipher, mode and IV generator: what a LUKS cipher spec names. */
struct crypto_suite {
	enum crypto_cipher cipher;
	enum crypto_mode mode;
	enum crypto_ivgen ivgen;
	enum crypto_cipher ivgen_cipher;	/* essiv: keyed by hash(key) */
	enum crypto_hash ivgen_hash;		/* essiv only */
};

/*
 * Fill s from its parts, choosing the ESSIV cipher as qemu (and dm-crypt)
 * do: the same family with the hash's digest length as its key length.
 * Fails with qemu's messages when libgcrypt or LUKS cannot do it.
 */
int crypto_suite_make(struct crypto_suite *s, enum crypto_cipher cipher,
		      enum crypto_mode mode, enum crypto_ivgen ivgen,
		      enum crypto_hash ivgen_hash, struct qerr *e);

/*
 * The ESSIV cipher for cipher c and IV hash h (same family, key length =
 * digest length), or qemu's "Cipher X not supported with essiv" / "No AES
 * cipher with key size N available".  Names only: libgcrypt not asked.
 */
int crypto_essiv_cipher(enum crypto_cipher c, enum crypto_hash h,
			enum crypto_cipher *out, struct qerr *e);

/* Key length of the suite's cipher in its mode (XTS: two keys). */
size_t crypto_suite_key_len(const struct crypto_suite *s);

struct crypto_keyed {
	struct crypto_suite s;
	size_t key_len;
	size_t iv_len;		/* 0 for ECB */
	size_t essiv_key_len;
	uint8_t key[CRYPTO_MAX_KEY];
	uint8_t essiv_key[CRYPTO_MAX_DIGEST];
};

/* Key a suite (key_len must be crypto_suite_key_len(s)). */
int crypto_keyed_init(struct crypto_keyed *k, const struct crypto_suite *s,
		      const uint8_t *key, size_t key_len, struct qerr *e);

/* libgcrypt handles for one thread's use of a keyed suite. */
struct crypto_hd {
	gcry_cipher_hd_t c;
	gcry_cipher_hd_t essiv;	/* ECB, NULL unless essiv */
	struct crypto_hd *next;	/* in the context's pool */
};

int crypto_hd_open(const struct crypto_keyed *k, struct crypto_hd *h,
		   struct qerr *e);
void crypto_hd_close(struct crypto_hd *h);

/*
 * Encrypt (enc) or decrypt len bytes in place, 512-byte units numbered
 * from sector; a shorter last unit is allowed (LUKS key material of a
 * 24-byte key), len must be a multiple of the cipher block.
 */
int crypto_hd_crypt(const struct crypto_keyed *k, struct crypto_hd *h,
		    uint64_t sector, uint8_t *buf, size_t len, bool enc,
		    struct qerr *e);

struct crypto_ctx {
	enum crypto_format format;
	struct crypto_keyed k;
	pthread_mutex_t lock;	/* guards pool and refs */
	struct crypto_hd *pool;	/* idle handles */
	unsigned refs;		/* crypto_ref() + 1; freed at 0 */
};

/* A context (in secmem) keyed with k's suite and key. */
int crypto_ctx_new(enum crypto_format format, const struct crypto_suite *s,
		   const uint8_t *key, size_t key_len,
		   struct crypto_ctx **out, struct qerr *e);

/* Encrypt (enc) or decrypt whole sectors in this thread. */
int crypto_ctx_crypt(struct crypto_ctx *ctx, uint64_t sector, void *buf,
		     size_t len, bool enc, struct qerr *e);
/* The same, large buffers cut into slices for every core (crypto_par.c). */
int crypto_par_crypt(struct crypto_ctx *ctx, uint64_t sector, void *buf,
		     size_t len, bool enc, struct qerr *e);

/* libgcrypt initialisation, once per process; 0 or -EIO. */
int crypto_init(struct qerr *e);

/* Fill buf from libgcrypt's random pool (key: the strongest level). */
void crypto_random(void *buf, size_t len, bool key);

/* The libgcrypt algorithm of a hash. */
int crypto_hash_gcry(enum crypto_hash h);

#endif
