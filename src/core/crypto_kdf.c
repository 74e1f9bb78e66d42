/*
 * crypto_kdf.c: key derivation for LUKS1: PBKDF2 (RFC 8018) over
 * libgcrypt, the calibration of its iteration count against CPU time, and
 * the LUKS1 anti-forensic splitter (AF split and merge with the diffuse
 * function of the LUKS1 on-disk format specification, section 2.4).
 *
 * AF: a key of n bytes becomes `stripes` blocks of n bytes.  Blocks
 * 0..stripes-2 are random; d starts as zeros and, for each of them,
 * d = diffuse(d XOR block); the last block is d XOR key.  diffuse(d)
 * replaces each digest-sized piece j of d (the last one may be shorter)
 * with the first bytes of hash(be32(j) || piece).  Merging redoes the
 * chain over the stored blocks and XORs the last one back out.
 *
 * Intermediate values that could rebuild a key (the diffusion state) are
 * kept in secmem and wiped.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/crypto_int.h"
#include "core/secmem.h"

int crypto_pbkdf2(enum crypto_hash hash, const uint8_t *pass, size_t passlen,
		  const uint8_t *salt, size_t saltlen, uint64_t iterations,
		  uint8_t *out, size_t outlen, struct qerr *e)
{
	gcry_error_t err;
	int ret = crypto_init(e);

	if (ret < 0)
		return ret;
	if (iterations == 0 || iterations > (unsigned long)-1)
		return qerr_set(e, -EINVAL, "invalid PBKDF2 iteration count "
				"%llu", (unsigned long long)iterations);
	/* libgcrypt refuses a NULL passphrase even when it is empty. */
	err = gcry_kdf_derive(pass ? (const void *)pass : "", passlen,
			      GCRY_KDF_PBKDF2, crypto_hash_gcry(hash), salt,
			      saltlen, (unsigned long)iterations, outlen, out);
	if (err)
		return qerr_set(e, -EIO, "libgcrypt: PBKDF2: %s",
				gcry_strerror(err));
	return 0;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000U + (uint64_t)ts.tv_nsec;
}

/* Measure for at least this much CPU time (qemu: 0.5 s, in ms steps). */
#define RATE_MIN_NS 100000000U

int crypto_pbkdf2_rate(enum crypto_hash hash, size_t outlen, uint64_t *rate,
		       struct qerr *e)
{
	static const uint8_t pass[] = "qimg pbkdf2 calibration";
	uint8_t salt[32] = { 0 }, out[CRYPTO_MAX_KEY];
	uint64_t iters = 1000, dt = 0;
	int ret;

	if (outlen > sizeof(out))
		return qerr_set(e, -EINVAL, "PBKDF2 output of %zu bytes is too "
				"long to calibrate", outlen);
	/* Thread CPU time, as qemu: other processes do not skew it. */
	for (;;) {
		uint64_t t0 = thread_cpu_ns();

		ret = crypto_pbkdf2(hash, pass, sizeof(pass) - 1, salt,
				    sizeof(salt), iters, out, outlen, e);
		if (ret < 0)
			return ret;
		dt = thread_cpu_ns() - t0;
		if (dt >= RATE_MIN_NS)
			break;
		if (iters > (1ULL << 40))
			return qerr_set(e, -EIO,
					"Unable to get accurate CPU usage");
		if (dt < RATE_MIN_NS / 10)
			iters *= 10;
		else
			iters = iters * (RATE_MIN_NS + RATE_MIN_NS / 5) / dt;
	}
	secmem_wipe(out, sizeof(out));
	*rate = iters * 1000000000U / dt;
	return 0;
}

static void xor_into(uint8_t *d, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] ^= s[i];
}

static int diffuse(enum crypto_hash hash, uint8_t *d, size_t len,
		   struct qerr *e)
{
	int algo = crypto_hash_gcry(hash);
	size_t dlen = crypto_hash_len(hash);
	gcry_md_hd_t md;
	gcry_error_t err = gcry_md_open(&md, algo, 0);
	uint32_t j = 0;

	if (err)
		return qerr_set(e, -EIO, "libgcrypt: cannot open %s: %s",
				crypto_hash_name(hash), gcry_strerror(err));
	for (size_t off = 0; off < len; off += dlen, j++) {
		size_t n = len - off < dlen ? len - off : dlen;
		uint8_t be[4] = { (uint8_t)(j >> 24), (uint8_t)(j >> 16),
				  (uint8_t)(j >> 8), (uint8_t)j };

		gcry_md_reset(md);
		gcry_md_write(md, be, sizeof(be));
		gcry_md_write(md, d + off, n);
		memcpy(d + off, gcry_md_read(md, algo), n);
	}
	gcry_md_close(md);
	return 0;
}

/* d = the diffusion chain over the first stripes-1 blocks of split. */
static int af_chain(enum crypto_hash hash, const uint8_t *split, size_t keylen,
		    uint32_t stripes, uint8_t *d, struct qerr *e)
{
	int ret = crypto_init(e);

	if (ret < 0)
		return ret;
	if (stripes == 0 || keylen == 0 || keylen > CRYPTO_MAX_KEY)
		return qerr_set(e, -EINVAL, "invalid AF split of a %zu-byte "
				"key into %u stripes", keylen, stripes);
	memset(d, 0, keylen);
	for (uint32_t i = 0; i + 1 < stripes && ret == 0; i++) {
		xor_into(d, split + (size_t)i * keylen, keylen);
		ret = diffuse(hash, d, keylen, e);
	}
	return ret;
}

int crypto_af_split(enum crypto_hash hash, const uint8_t *key, size_t keylen,
		    uint32_t stripes, uint8_t *out, struct qerr *e)
{
	uint8_t *d = secmem_alloc(CRYPTO_MAX_KEY), *last;
	int ret;

	if (!d)
		return qerr_set(e, -ENOMEM, "out of memory");
	if (stripes > 1 && keylen <= CRYPTO_MAX_KEY)
		crypto_random(out, keylen * (stripes - 1), false);
	ret = af_chain(hash, out, keylen, stripes, d, e);
	if (ret == 0) {
		last = out + (size_t)(stripes - 1) * keylen;
		memcpy(last, d, keylen);
		xor_into(last, key, keylen);
	}
	secmem_free(d, CRYPTO_MAX_KEY);
	return ret;
}

int crypto_af_merge(enum crypto_hash hash, const uint8_t *split, size_t keylen,
		    uint32_t stripes, uint8_t *key, struct qerr *e)
{
	uint8_t *d = secmem_alloc(CRYPTO_MAX_KEY);
	int ret;

	if (!d)
		return qerr_set(e, -ENOMEM, "out of memory");
	ret = af_chain(hash, split, keylen, stripes, d, e);
	if (ret == 0) {
		memcpy(key, split + (size_t)(stripes - 1) * keylen, keylen);
		xor_into(key, d, keylen);
	}
	secmem_free(d, CRYPTO_MAX_KEY);
	return ret;
}
