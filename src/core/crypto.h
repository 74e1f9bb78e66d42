/*
 * crypto.h: encryption of qcow2 guest data, with libgcrypt doing the
 * cryptography: legacy qcow2 AES (crypt_method 1) and LUKS1 inside qcow2
 * (crypt_method 2).  Facts: shared/docs/QCOW2-NOTES.md "Encryption facts"
 * and QEMU-IMG-REFERENCE.md sections 5.8, 6.2 and 7.
 *
 * An open encrypted image holds one struct crypto_ctx, made by
 * crypto_open_luks() or crypto_open_aes() (or crypto_open_image(), which
 * picks one from the qcow2 header and the encrypt.* options).  The context
 * encrypts and decrypts whole 512-byte sectors in place; each sector is its
 * own cipher chain whose IV comes from a sector number:
 *
 *   LUKS (crypt_method 2): the HOST sector, i.e. the byte offset of the
 *     data in the qcow2 file divided by 512.  Data moved to another host
 *     cluster (copy-on-write, compaction) must be decrypted with the old
 *     offset and encrypted again with the new one.
 *   legacy AES (crypt_method 1): the GUEST sector, i.e. the virtual-disk
 *     offset divided by 512.
 *
 * Metadata (header, L1/L2, refcounts, snapshots, the LUKS header area) is
 * never encrypted; zero clusters and unallocated ranges are not decrypted.
 *
 * Thread safety: crypto_encrypt_sectors()/crypto_decrypt_sectors() may be
 * called on one context from any number of threads at once (each call
 * borrows a cipher handle from a small pool in the context).  Opening,
 * creating and freeing are not concurrent with anything on that context.
 *
 * Secrets: keys and passphrases are kept in secmem pages (locked, not in
 * core dumps) and wiped when freed; no function here puts a secret into an
 * error message.  The core never prints.
 */
#ifndef QIMG_CORE_CRYPTO_H
#define QIMG_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/file.h"
#include "util/opts.h"

#define CRYPTO_SECTOR_SIZE 512

/* Values of the qcow2 crypt_method field. */
enum crypto_format {
	CRYPTO_FORMAT_NONE = 0,
	CRYPTO_FORMAT_AES = 1,
	CRYPTO_FORMAT_LUKS = 2,
};

/* qemu's QCryptoCipherAlgorithm values (names as qemu spells them). */
enum crypto_cipher {
	CRYPTO_CIPHER_AES_128,
	CRYPTO_CIPHER_AES_192,
	CRYPTO_CIPHER_AES_256,
	CRYPTO_CIPHER_DES,	/* accepted by qemu's parser, never usable */
	CRYPTO_CIPHER_3DES,	/* likewise */
	CRYPTO_CIPHER_CAST5_128,
	CRYPTO_CIPHER_SERPENT_128,
	CRYPTO_CIPHER_SERPENT_192,
	CRYPTO_CIPHER_SERPENT_256,
	CRYPTO_CIPHER_TWOFISH_128,
	CRYPTO_CIPHER_TWOFISH_192,	/* libgcrypt has no 192-bit Twofish */
	CRYPTO_CIPHER_TWOFISH_256,
	CRYPTO_CIPHER_COUNT
};

enum crypto_mode {
	CRYPTO_MODE_ECB,
	CRYPTO_MODE_CBC,
	CRYPTO_MODE_XTS,
	CRYPTO_MODE_CTR,
	CRYPTO_MODE_COUNT
};

enum crypto_ivgen {
	CRYPTO_IVGEN_PLAIN,	/* low 32 bits of the sector, little-endian */
	CRYPTO_IVGEN_PLAIN64,	/* the sector as 64-bit little-endian */
	CRYPTO_IVGEN_ESSIV,	/* plain64 encrypted with hash(key) (ECB) */
	CRYPTO_IVGEN_COUNT
};

enum crypto_hash {
	CRYPTO_HASH_MD5,
	CRYPTO_HASH_SHA1,
	CRYPTO_HASH_SHA224,
	CRYPTO_HASH_SHA256,
	CRYPTO_HASH_SHA384,
	CRYPTO_HASH_SHA512,
	CRYPTO_HASH_RIPEMD160,
	CRYPTO_HASH_COUNT
};

/* qemu's names ("aes-256", "xts", "plain64", "sha256"); never NULL. */
const char *crypto_cipher_name(enum crypto_cipher c);
const char *crypto_mode_name(enum crypto_mode m);
const char *crypto_ivgen_name(enum crypto_ivgen g);
const char *crypto_hash_name(enum crypto_hash h);
/* The value named name (qemu's spelling), or -1 when there is none. */
int crypto_cipher_lookup(const char *name);
int crypto_mode_lookup(const char *name);
int crypto_ivgen_lookup(const char *name);
int crypto_hash_lookup(const char *name);

/* How a LUKS volume is (to be) encrypted, with qemu's defaults. */
struct crypto_luks_params {
	enum crypto_cipher cipher;	/* aes-256 */
	enum crypto_mode mode;		/* xts */
	enum crypto_ivgen ivgen;	/* plain64 */
	bool has_ivgen_hash;		/* essiv gets sha256 when not given */
	enum crypto_hash ivgen_hash;
	enum crypto_hash hash;		/* sha256: PBKDF2 and AF diffusion */
	uint64_t iter_time_ms;		/* 2000 */
};

void crypto_luks_params_default(struct crypto_luks_params *p);

/*
 * The encrypt.* creation options (-o) of qemu-img 7.2's qcow2 driver:
 * encrypt.format=aes|luks, the deprecated alias encryption=on (aes),
 * encrypt.key-secret and, for luks, encrypt.cipher-alg, cipher-mode,
 * ivgen-alg, ivgen-hash-alg, hash-alg and iter-time.
 */
struct crypto_create_opts {
	enum crypto_format format;	/* NONE when no encryption asked */
	const char *key_secret;		/* points into the optlist, or NULL */
	struct crypto_luks_params luks;
};

/*
 * Read and validate the encrypt.* options from opts, marking each used,
 * with qemu-img's messages ("Parameter 'cipher-alg' does not accept value
 * 'foo'", "Parameter 'encrypt.format' is missing", "Parameter
 * 'encrypt.cipher-alg' is unexpected" for LUKS options on aes, "'encrypt.
 * format' and its alias 'encryption' can't be used at the same time",
 * "Parameter 'encrypt.key-secret' is required for cipher").  Checks only
 * the options; crypto_create_luks() checks that the combination works.
 */
int crypto_create_opts_get(struct optlist *opts, struct crypto_create_opts *o,
			   struct qerr *e);

struct crypto_ctx;

/*
 * Unlock the LUKS1 volume whose header area is [hdr_offset, hdr_offset +
 * hdr_length) of f (the qcow2 crypto header extension's offset and
 * length).  Validates the header as qemu 7.2 does (magic, version, known
 * cipher/mode/IV generator/hashes, key slots inside the area, clear of the
 * header, the payload offset and each other), then tries each active key
 * slot in order: PBKDF2 of the passphrase with the slot's salt, hash and
 * iterations, decryption of the slot's key material (which stays inside
 * the area), AF merge, and comparison of PBKDF2(master key) with the
 * header's 20-byte digest.  None matching: -EACCES, "Invalid password,
 * cannot unlock any keyslot".  On success *out is the caller's, freed with
 * crypto_free().  pass need not be NUL-terminated (qemu's secrets never
 * contain NUL: use secret_lookup_utf8()).
 */
int crypto_open_luks(struct qfile *f, uint64_t hdr_offset, uint64_t hdr_length,
		     const uint8_t *pass, size_t passlen,
		     struct crypto_ctx **out, struct qerr *e);

/*
 * Legacy qcow2 AES: AES-128-CBC, IV plain64(guest sector), key = the
 * passphrase truncated or zero-padded to 16 bytes, no key derivation.
 * Any passphrase "works": a wrong one is only seen as garbage data.
 */
int crypto_open_aes(const uint8_t *pass, size_t passlen,
		    struct crypto_ctx **out, struct qerr *e);

/*
 * Open the encryption of a qcow2 image as qemu-img does for a read or
 * write open: crypt_method from the header (1 or 2), the crypto header
 * extension (LUKS only), and the image options encrypt.key-secret (key_
 * secret, NULL when not given) and encrypt.format (opt_format, NULL when
 * not given).  Messages as qemu-img's: "Parameter 'encrypt.key-secret' is
 * required for cipher", "No secret with id 'ID'", "Header reported 'luks'
 * encryption format but options specify 'aes'", then those of
 * crypto_open_luks().  Info-only opens need no context and no secret.
 */
int crypto_open_image(struct qfile *f, uint32_t crypt_method, bool has_ext,
		      uint64_t ext_offset, uint64_t ext_length,
		      const char *key_secret, const char *opt_format,
		      struct crypto_ctx **out, struct qerr *e);

/*
 * Share ctx (several handles on one image, as convert's workers open):
 * returns ctx with one more reference.  crypto_free() drops one; the last
 * frees the context, wiping its keys; ctx may be NULL.  Both may run in
 * different threads at once.
 */
struct crypto_ctx *crypto_ref(struct crypto_ctx *ctx);
void crypto_free(struct crypto_ctx *ctx);

/* CRYPTO_FORMAT_AES or CRYPTO_FORMAT_LUKS. */
enum crypto_format crypto_ctx_format(const struct crypto_ctx *ctx);

/*
 * Encrypt or decrypt len bytes of buf in place: len is a multiple of 512
 * and buf holds consecutive sectors starting at sector number `sector`
 * (host sector for LUKS, guest sector for AES: see the top of this file).
 * Returns 0, or a negative errno (-ENOMEM, -EIO from libgcrypt) with e set
 * (e may be NULL).  Safe to call from several threads at once.
 */
int crypto_encrypt_sectors(struct crypto_ctx *ctx, uint64_t sector, void *buf,
			   size_t len, struct qerr *e);
int crypto_decrypt_sectors(struct crypto_ctx *ctx, uint64_t sector, void *buf,
			   size_t len, struct qerr *e);

/*
 * How many threads (the caller's included) one large encrypt or decrypt
 * call may use; 0, the default, means one per online CPU, 1 keeps every
 * call in its caller's thread.  Takes effect only before the first such
 * call of the process (convert sets it from -j).
 */
void crypto_set_threads(unsigned n);

/*
 * Create a LUKS1 volume for a new qcow2 image: a random master key and
 * salts (libgcrypt's random pool), PBKDF2 iteration counts calibrated to
 * p->iter_time_ms on this CPU as qemu does (slot iterations = rate x
 * iter-time, at least 1000; master key digest iterations = that / 8 for a
 * 20-byte output, at least 1000), the master key AF-split into 4000 stripes
 * (hash p->hash) and encrypted into key slot 0 with the passphrase's key;
 * slots 1-7 inactive.  Layout as qemu's: the 592-byte header at 0, key
 * material areas from 4096 bytes on, each rounded up to 4096 bytes, and
 * the payload offset just after the eighth area.
 *
 * *hdr (malloc'd, caller frees) receives *hdr_len bytes = the payload
 * offset in bytes (2068480 for aes-256-xts): the whole area the qcow2 code
 * allocates (rounded up to clusters), writes at the crypto header
 * extension's offset, and records as the extension's length.  Bytes not
 * used by the header or slot 0 are zero.  When out is not NULL, *out is a
 * ready context for the new volume (saves a second, slow unlock).
 * Combinations qemu-img cannot create are refused with its messages ("No
 * AES cipher with key size 20 available", "Unsupported cipher mode xts",
 * "Algorithm 'des' not supported", "PBKDF iterations N larger than
 * 4294967295: Numerical result out of range").
 */
int crypto_create_luks(const struct crypto_luks_params *p, const uint8_t *pass,
		       size_t passlen, uint8_t **hdr, size_t *hdr_len,
		       struct crypto_ctx **out, struct qerr *e);
/*
 * The last volume crypto_create_luks() made stays unlocked for this
 * process: crypto_open_luks() of the same header bytes with the same
 * passphrase takes its key without the PBKDF2 (a create-then-open, as
 * convert does, costs one iter-time, not two).  Forget it (wiping the
 * keys and the passphrase copy): done by secret_store_clear() too.
 */
void crypto_forget_created(void);

/*
 * Primitives, exported for the known-answer tests and for other users.
 * All return 0 or a negative errno with e set.
 */

/* PBKDF2-HMAC-hash(pass, salt, iterations) -> out[outlen]. */
int crypto_pbkdf2(enum crypto_hash hash, const uint8_t *pass, size_t passlen,
		  const uint8_t *salt, size_t saltlen, uint64_t iterations,
		  uint8_t *out, size_t outlen, struct qerr *e);

/*
 * How many PBKDF2 iterations with this hash and an outlen-byte output this
 * thread computes per second of its CPU time (measured, ~0.1 s).
 */
int crypto_pbkdf2_rate(enum crypto_hash hash, size_t outlen, uint64_t *rate,
		       struct qerr *e);

/*
 * LUKS1 anti-forensic split: out (keylen * stripes bytes) = stripes-1
 * random blocks and a last block that, merged, gives key.  Merge is the
 * inverse.  The diffusion uses hash as in the LUKS1 specification.
 */
int crypto_af_split(enum crypto_hash hash, const uint8_t *key, size_t keylen,
		    uint32_t stripes, uint8_t *out, struct qerr *e);
int crypto_af_merge(enum crypto_hash hash, const uint8_t *split, size_t keylen,
		    uint32_t stripes, uint8_t *key, struct qerr *e);

/* Digest length of hash in bytes. */
size_t crypto_hash_len(enum crypto_hash hash);

/*
 * A context over an explicit cipher suite and key (key_len: the cipher's
 * key length, doubled for XTS), as LUKS uses for slots and payload.
 * For tests of the modes and IV generators; fails with qemu's messages
 * when the suite is not usable.  ivgen_hash is used by essiv only.
 */
int crypto_open_raw(enum crypto_cipher cipher, enum crypto_mode mode,
		    enum crypto_ivgen ivgen, enum crypto_hash ivgen_hash,
		    const uint8_t *key, size_t key_len,
		    struct crypto_ctx **out, struct qerr *e);

#endif
