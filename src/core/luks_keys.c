/*
 * luks_keys.c: unlocking and creating LUKS1 volumes inside qcow2 images
 * (crypto_open_luks and crypto_create_luks, contracts in crypto.h).
 *
 * A key slot stores the master key AF-split into `stripes` blocks and
 * encrypted, sector by sector from sector 0, with the volume's own cipher
 * suite keyed by PBKDF2(passphrase, slot salt, slot iterations).  The
 * master key is right when PBKDF2(master key, digest salt, digest
 * iterations) gives the header's 20-byte digest.
 *
 * Creation follows what qemu-img 7.2 writes (QEMU-IMG-REFERENCE.md 6.2 and
 * 7): key material areas from sector 8, each key_bytes x 4000 rounded up
 * to 4 KiB, the payload offset after the eighth area, slot 0 active and
 * the others inactive with zero salts, the names as qemu spells them
 * ("xts-plain64", "cbc-essiv:sha256", and an IV hash whenever one was
 * given), a random version-4 UUID.
 *
 * Invariant: every buffer that holds a key, a passphrase-derived key or
 * decrypted key material is secmem and is wiped on every path out.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto_int.h"
#include "core/luks.h"
#include "core/secmem.h"

/*
 * The volume this process created last, still unlocked: convert creates
 * its LUKS target and then opens it with the same secret, and a second
 * PBKDF2 would cost the whole iter-time (2 s by default) again.  Reused
 * only when the header bytes (random salts, digest and UUID included) and
 * the passphrase both match; the passphrase copy lives in secmem.
 */
static struct {
	pthread_mutex_t lock;
	uint8_t hdr[LUKS_PHDR_LEN];
	uint8_t *pass;
	size_t passlen;
	struct crypto_ctx *ctx;
} made = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void made_clear(void)
{
	crypto_free(made.ctx);
	if (made.pass)
		secmem_free(made.pass, made.passlen);
	made.ctx = NULL;
	made.pass = NULL;
	made.passlen = 0;
}

static void made_put(const uint8_t *hdr, const uint8_t *pass, size_t passlen,
		     struct crypto_ctx *ctx)
{
	pthread_mutex_lock(&made.lock);
	made_clear();
	made.pass = secmem_alloc(passlen);
	if (made.pass) {
		memcpy(made.hdr, hdr, LUKS_PHDR_LEN);
		memcpy(made.pass, pass, passlen);
		made.passlen = passlen;
		made.ctx = crypto_ref(ctx);
	}
	pthread_mutex_unlock(&made.lock);
}

/* Compare without a data-dependent early exit (a passphrase is inside). */
static bool same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

static struct crypto_ctx *made_get(const uint8_t *hdr, const uint8_t *pass,
				   size_t passlen)
{
	struct crypto_ctx *ctx = NULL;

	pthread_mutex_lock(&made.lock);
	if (made.ctx && made.passlen == passlen &&
	    same_bytes(made.hdr, hdr, LUKS_PHDR_LEN) &&
	    same_bytes(made.pass, pass, passlen))
		ctx = crypto_ref(made.ctx);
	pthread_mutex_unlock(&made.lock);
	return ctx;
}

void crypto_forget_created(void)
{
	pthread_mutex_lock(&made.lock);
	made_clear();
	pthread_mutex_unlock(&made.lock);
}

/* Secret scratch space for one slot operation. */
struct slot_work {
	struct crypto_keyed k;			/* keyed with the slot key */
	uint8_t slot_key[CRYPTO_MAX_KEY];
	uint8_t digest[LUKS_DIGEST_LEN];
	size_t len;
	uint8_t split[];			/* the key material, len bytes */
};

static struct slot_work *slot_work_new(size_t len, struct qerr *e)
{
	struct slot_work *w = secmem_alloc(sizeof(*w) + len);

	if (!w)
		qerr_set(e, -ENOMEM, "out of memory");
	else
		w->len = len;
	return w;
}

static void slot_work_free(struct slot_work *w)
{
	if (w)
		secmem_free(w, sizeof(*w) + w->len);
}

/* Encrypt or decrypt key material with the slot key, sectors from 0. */
static int material_crypt(struct slot_work *w, const struct crypto_suite *s,
			  size_t keylen, uint8_t *buf, size_t len, bool enc,
			  struct qerr *e)
{
	struct crypto_hd hd;
	int ret = crypto_keyed_init(&w->k, s, w->slot_key, keylen, e);

	if (ret == 0)
		ret = crypto_hd_open(&w->k, &hd, e);
	if (ret < 0)
		return ret;
	ret = crypto_hd_crypt(&w->k, &hd, 0, buf, len, enc, e);
	crypto_hd_close(&hd);
	return ret;
}

/* 1 when slot i opens with pass (master key in mk), 0 when not. */
static int slot_unlock(struct qfile *f, uint64_t hdr_offset,
		       const struct luks_header *h, const struct luks_algs *a,
		       const struct crypto_suite *s, int i,
		       const uint8_t *pass, size_t passlen, uint8_t *mk,
		       struct qerr *e)
{
	const struct luks_slot *slot = &h->slot[i];
	size_t keylen = h->key_bytes;
	/* Whole sectors (cryptsetup pads the last one); checked in bounds. */
	size_t len = ((size_t)keylen * slot->stripes + LUKS_SECTOR - 1) /
		     LUKS_SECTOR * LUKS_SECTOR;
	struct slot_work *w = slot_work_new(len, e);
	uint8_t *split = w ? w->split : NULL;
	int ret;

	if (!w)
		return -ENOMEM;
	ret = qfile_pread(f, split, len,
			  hdr_offset + (uint64_t)slot->key_offset * LUKS_SECTOR,
			  e);
	if (ret == 0)
		ret = crypto_pbkdf2(a->hash, pass, passlen, slot->salt,
				    LUKS_SALT_LEN, slot->iterations,
				    w->slot_key, keylen, e);
	if (ret == 0)
		ret = material_crypt(w, s, keylen, split, len, false, e);
	if (ret == 0)
		ret = crypto_af_merge(a->hash, split, keylen, slot->stripes, mk,
				      e);
	if (ret == 0)
		ret = crypto_pbkdf2(a->hash, mk, keylen, h->mk_salt,
				    LUKS_SALT_LEN, h->mk_iterations, w->digest,
				    LUKS_DIGEST_LEN, e);
	if (ret == 0) {
		uint8_t diff = 0;

		for (int j = 0; j < LUKS_DIGEST_LEN; j++)
			diff |= w->digest[j] ^ h->mk_digest[j];
		ret = diff == 0;
	}
	slot_work_free(w);
	return ret;
}

int crypto_open_luks(struct qfile *f, uint64_t hdr_offset, uint64_t hdr_length,
		     const uint8_t *pass, size_t passlen,
		     struct crypto_ctx **out, struct qerr *e)
{
	uint8_t buf[LUKS_PHDR_LEN];
	struct luks_header h;
	struct luks_algs a;
	struct crypto_suite s;
	uint8_t *mk = NULL;
	int ret, found = 0;

	*out = NULL;
	if (hdr_length < LUKS_PHDR_LEN)
		return qerr_set(e, -EINVAL,
				"LUKS header area of %llu bytes is too small",
				(unsigned long long)hdr_length);
	ret = qfile_pread(f, buf, sizeof(buf), hdr_offset, e);
	if (ret == 0)
		ret = luks_header_decode(buf, hdr_length, &h, &a, e);
	if (ret == 0 && (*out = made_get(buf, pass, passlen)))
		return 0;
	if (ret == 0)
		ret = crypto_suite_make(&s, a.cipher, a.mode, a.ivgen,
					a.ivgen_hash, e);
	if (ret < 0)
		return ret;
	mk = secmem_alloc(CRYPTO_MAX_KEY);
	if (!mk)
		return qerr_set(e, -ENOMEM, "out of memory");
	for (int i = 0; i < LUKS_NUM_SLOTS && found == 0; i++) {
		if (h.slot[i].active != LUKS_SLOT_ACTIVE)
			continue;
		found = slot_unlock(f, hdr_offset, &h, &a, &s, i, pass,
				    passlen, mk, e);
	}
	if (found == 1)
		ret = crypto_ctx_new(CRYPTO_FORMAT_LUKS, &s, mk, h.key_bytes,
				     out, e);
	else if (found == 0)
		ret = qerr_set(e, -EACCES,
			       "Invalid password, cannot unlock any keyslot");
	else
		ret = found;
	secmem_free(mk, CRYPTO_MAX_KEY);
	return ret;
}

/* qemu's scaling of a calibrated rate to iter-time, with its errors. */
static int scale_iters(uint64_t rate, uint64_t iter_time_ms, unsigned div,
		       uint32_t *out, struct qerr *e)
{
	uint64_t iters;

	if (iter_time_ms && rate > UINT64_MAX / iter_time_ms)
		return qerr_set(e, -ERANGE,
				"PBKDF iterations %llu too large to scale: %s",
				(unsigned long long)rate, strerror(ERANGE));
	iters = rate * iter_time_ms / 1000 / div;
	if (iters > UINT32_MAX)
		return qerr_set(e, -ERANGE,
				"PBKDF iterations %llu larger than %u: %s",
				(unsigned long long)iters, UINT32_MAX,
				strerror(ERANGE));
	*out = iters < LUKS_MIN_ITERS ? LUKS_MIN_ITERS : (uint32_t)iters;
	return 0;
}

/*
 * Iterations for the master key digest (20-byte output, / 8) and for a
 * slot (key_len-byte output): one calibration, scaled by the number of
 * hash blocks PBKDF2 computes for each output length.
 */
static int calibrate(struct luks_header *h, enum crypto_hash hash,
		     uint64_t iter_time_ms, uint32_t *slot_iters,
		     struct qerr *e)
{
	size_t dlen = crypto_hash_len(hash);
	uint64_t rate = 0, mk_blocks = (LUKS_DIGEST_LEN + dlen - 1) / dlen;
	uint64_t slot_blocks = (h->key_bytes + dlen - 1) / dlen;
	int ret = 0;

	/* iter-time 0 gives the minimum whatever the rate: skip timing. */
	if (iter_time_ms)
		ret = crypto_pbkdf2_rate(hash, dlen, &rate, e);
	if (ret == 0)
		ret = scale_iters(rate / mk_blocks, iter_time_ms, 8,
				  &h->mk_iterations, e);
	if (ret == 0)
		ret = scale_iters(rate / slot_blocks, iter_time_ms, 1,
				  slot_iters, e);
	return ret;
}

static void make_uuid(char *out)
{
	uint8_t u[16];

	crypto_random(u, sizeof(u), false);
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);	/* version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);	/* RFC 4122 variant */
	snprintf(out, LUKS_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* The header of a new volume, before keys: names, sizes and layout. */
static int header_init(struct luks_header *h, const struct crypto_luks_params *p,
		       struct crypto_suite *s, struct qerr *e)
{
	const struct crypto_cipher_info *ci = crypto_cipher_info(p->cipher);
	bool essiv = p->ivgen == CRYPTO_IVGEN_ESSIV;
	bool has_hash = p->has_ivgen_hash || essiv;
	enum crypto_hash ivhash = p->has_ivgen_hash ? p->ivgen_hash
						    : CRYPTO_HASH_SHA256;
	uint64_t area;
	int ret;

	if (!ci->luks_name)
		return qerr_set(e, -ENOTSUP, "Algorithm '%s' not supported",
				ci->name);
	ret = crypto_suite_make(s, p->cipher, p->mode, p->ivgen, ivhash, e);
	if (ret < 0)
		return ret;
	memset(h, 0, sizeof(*h));
	h->version = LUKS_VERSION;
	h->key_bytes = (uint32_t)crypto_suite_key_len(s);
	/* qemu-img 7.2 aborts on these (24-byte keys outside XTS). */
	if ((uint64_t)h->key_bytes * LUKS_STRIPES % LUKS_SECTOR)
		return qerr_set(e, -ENOTSUP,
				"Cipher %s in mode %s is not supported for LUKS: "
				"its key material is not a whole number of "
				"sectors", ci->name, crypto_mode_name(p->mode));
	snprintf(h->cipher_name, sizeof(h->cipher_name), "%s", ci->luks_name);
	snprintf(h->cipher_mode, sizeof(h->cipher_mode), "%s-%s%s%s",
		 crypto_mode_name(p->mode), crypto_ivgen_name(p->ivgen),
		 has_hash ? ":" : "", has_hash ? crypto_hash_name(ivhash) : "");
	snprintf(h->hash_spec, sizeof(h->hash_spec), "%s",
		 crypto_hash_name(p->hash));
	make_uuid(h->uuid);
	area = luks_slot_sectors(h->key_bytes, LUKS_STRIPES);
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		h->slot[i].active = LUKS_SLOT_INACTIVE;
		h->slot[i].key_offset = (uint32_t)(LUKS_HEADER_SECTORS + i * area);
		h->slot[i].stripes = LUKS_STRIPES;
	}
	h->payload_offset = (uint32_t)(LUKS_HEADER_SECTORS +
				       LUKS_NUM_SLOTS * area);
	return 0;
}

/* Slot 0: passphrase key, AF split of mk, encrypted into area. */
static int slot_store(struct luks_header *h, const struct crypto_suite *s,
		      enum crypto_hash hash, uint32_t iters,
		      const uint8_t *pass, size_t passlen, const uint8_t *mk,
		      uint8_t *area, struct qerr *e)
{
	struct luks_slot *slot = &h->slot[0];
	size_t keylen = h->key_bytes, len = keylen * LUKS_STRIPES;
	struct slot_work *w = slot_work_new(len, e);
	uint8_t *split = w ? w->split : NULL;
	int ret;

	if (!w)
		return -ENOMEM;
	crypto_random(slot->salt, LUKS_SALT_LEN, false);
	slot->iterations = iters;
	ret = crypto_pbkdf2(hash, pass, passlen, slot->salt, LUKS_SALT_LEN,
			    iters, w->slot_key, keylen, e);
	if (ret == 0)
		ret = crypto_af_split(hash, mk, keylen, LUKS_STRIPES, split, e);
	if (ret == 0)
		ret = material_crypt(w, s, keylen, split, len, true, e);
	if (ret == 0) {
		memcpy(area + (size_t)slot->key_offset * LUKS_SECTOR, split,
		       len);
		slot->active = LUKS_SLOT_ACTIVE;
	}
	slot_work_free(w);
	return ret;
}

int crypto_create_luks(const struct crypto_luks_params *p, const uint8_t *pass,
		       size_t passlen, uint8_t **hdr, size_t *hdr_len,
		       struct crypto_ctx **out, struct qerr *e)
{
	struct luks_header h;
	struct crypto_suite s;
	struct crypto_ctx *ctx = NULL;
	uint8_t *mk = NULL, *area = NULL;
	uint32_t slot_iters = 0;
	size_t len = 0;
	int ret;

	*hdr = NULL;
	*hdr_len = 0;
	if (out)
		*out = NULL;
	ret = header_init(&h, p, &s, e);
	if (ret < 0)
		return ret;
	len = (size_t)h.payload_offset * LUKS_SECTOR;
	mk = secmem_alloc(CRYPTO_MAX_KEY);
	area = calloc(1, len);
	if (!mk || !area) {
		ret = qerr_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	crypto_random(mk, h.key_bytes, true);
	crypto_random(h.mk_salt, LUKS_SALT_LEN, false);
	ret = calibrate(&h, p->hash, p->iter_time_ms, &slot_iters, e);
	if (ret == 0)
		ret = crypto_pbkdf2(p->hash, mk, h.key_bytes, h.mk_salt,
				    LUKS_SALT_LEN, h.mk_iterations, h.mk_digest,
				    LUKS_DIGEST_LEN, e);
	if (ret == 0)
		ret = slot_store(&h, &s, p->hash, slot_iters, pass, passlen, mk,
				 area, e);
	if (ret == 0)
		ret = crypto_ctx_new(CRYPTO_FORMAT_LUKS, &s, mk, h.key_bytes,
				     &ctx, e);
	if (ret < 0)
		goto fail;
	luks_header_encode(&h, area);
	made_put(area, pass, passlen, ctx);
	if (out)
		*out = ctx;
	else
		crypto_free(ctx);
	secmem_free(mk, CRYPTO_MAX_KEY);
	*hdr = area;
	*hdr_len = len;
	return 0;
fail:
	secmem_free(mk, CRYPTO_MAX_KEY);
	free(area);
	return ret;
}
