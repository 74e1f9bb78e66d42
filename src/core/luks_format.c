/*
 * luks_format.c: decoding, validating and encoding the LUKS1 header (see
 * luks.h for the layout).
 *
 * The checks are qemu 7.2's (crypto/block-luks.c check_header and
 * parse_header), in its order and with its messages as qemu-img 7.2 prints
 * them for hostile headers (magic, version, NUL-terminated names, payload
 * clear of the header, non-zero iteration counts, 4000 stripes, slot
 * states and overlaps; then the names, the IV hash first), plus what a
 * hostile file needs on top: key material that stays inside the header
 * area the caller can read, and a bound on its size, so that nothing
 * decoded here can make a caller allocate or read without limit.  This is
 * the one LUKS parser: unlock (luks_keys.c) and info (luks_header.c) both
 * decode with it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/crypto_int.h"
#include "core/luks.h"
#include "core/qcow2.h"

static const uint8_t luks_magic[LUKS_MAGIC_LEN] = { 'L', 'U', 'K', 'S', 0xba,
						    0xbe };

#define SLOTS_AT 208
#define SLOT_LEN 48

uint64_t luks_slot_sectors(uint32_t key_bytes, uint32_t stripes)
{
	uint64_t bytes = (uint64_t)key_bytes * stripes;
	uint64_t sectors = (bytes + LUKS_SECTOR - 1) / LUKS_SECTOR;

	return (sectors + LUKS_HEADER_SECTORS - 1) / LUKS_HEADER_SECTORS *
	       LUKS_HEADER_SECTORS;
}

static int copy_name(char *dst, const uint8_t *src, size_t len,
		     const char *what, struct qerr *e)
{
	if (!memchr(src, '\0', len))
		return qerr_set(e, -EINVAL,
				"LUKS header %s is not NUL terminated", what);
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int decode_fields(const uint8_t *p, struct luks_header *h,
			 struct qerr *e)
{
	int ret;

	memset(h, 0, sizeof(*h));
	if (memcmp(p, luks_magic, LUKS_MAGIC_LEN) != 0)
		return qerr_set(e, -EINVAL, "Volume is not in LUKS format");
	h->version = be16_get(p + 6);
	if (h->version != LUKS_VERSION)
		return qerr_set(e, -ENOTSUP, "LUKS version %u is not supported",
				h->version);
	ret = copy_name(h->cipher_name, p + 8, LUKS_NAME_LEN, "cipher name", e);
	if (ret == 0)
		ret = copy_name(h->cipher_mode, p + 40, LUKS_NAME_LEN,
				"cipher mode", e);
	if (ret == 0)
		ret = copy_name(h->hash_spec, p + 72, LUKS_NAME_LEN,
				"hash spec", e);
	if (ret < 0)
		return ret;
	h->payload_offset = be32_get(p + 104);
	h->key_bytes = be32_get(p + 108);
	memcpy(h->mk_digest, p + 112, LUKS_DIGEST_LEN);
	memcpy(h->mk_salt, p + 132, LUKS_SALT_LEN);
	h->mk_iterations = be32_get(p + 164);
	/* The UUID is shown, never parsed: cut it at the field's end. */
	memcpy(h->uuid, p + 168, LUKS_UUID_LEN);
	h->uuid[LUKS_UUID_LEN] = '\0';
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		const uint8_t *s = p + SLOTS_AT + i * SLOT_LEN;

		h->slot[i].active = be32_get(s);
		h->slot[i].iterations = be32_get(s + 4);
		memcpy(h->slot[i].salt, s + 8, LUKS_SALT_LEN);
		h->slot[i].key_offset = be32_get(s + 40);
		h->slot[i].stripes = be32_get(s + 44);
	}
	return 0;
}

/* A name field: the string, NUL-padded (at most 31 characters kept). */
static void put_name(uint8_t *dst, const char *name)
{
	memcpy(dst, name, strnlen(name, LUKS_NAME_LEN - 1));
}

void luks_header_encode(const struct luks_header *h, uint8_t *p)
{
	memset(p, 0, LUKS_PHDR_LEN);
	memcpy(p, luks_magic, LUKS_MAGIC_LEN);
	be16_put(p + 6, h->version);
	put_name(p + 8, h->cipher_name);
	put_name(p + 40, h->cipher_mode);
	put_name(p + 72, h->hash_spec);
	be32_put(p + 104, h->payload_offset);
	be32_put(p + 108, h->key_bytes);
	memcpy(p + 112, h->mk_digest, LUKS_DIGEST_LEN);
	memcpy(p + 132, h->mk_salt, LUKS_SALT_LEN);
	be32_put(p + 164, h->mk_iterations);
	memcpy(p + 168, h->uuid, strnlen(h->uuid, LUKS_UUID_LEN));
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		uint8_t *s = p + SLOTS_AT + i * SLOT_LEN;

		be32_put(s, h->slot[i].active);
		be32_put(s + 4, h->slot[i].iterations);
		memcpy(s + 8, h->slot[i].salt, LUKS_SALT_LEN);
		be32_put(s + 40, h->slot[i].key_offset);
		be32_put(s + 44, h->slot[i].stripes);
	}
}

/* Largest key material we read for one slot (qemu's is 250 KiB). */
#define LUKS_MAX_MATERIAL (16U << 20)

static int check_slot(const struct luks_header *h, int i, uint64_t area_len,
		      struct qerr *e)
{
	const struct luks_slot *s = &h->slot[i];
	uint64_t start = s->key_offset;
	uint64_t len = luks_slot_sectors(h->key_bytes, s->stripes);

	if (s->stripes != LUKS_STRIPES)
		return qerr_set(e, -EINVAL,
				"Keyslot %d is corrupted (stripes %u != %d)", i,
				s->stripes, LUKS_STRIPES);
	if (s->active != LUKS_SLOT_INACTIVE && s->active != LUKS_SLOT_ACTIVE)
		return qerr_set(e, -EINVAL,
				"Keyslot %d state (active/disable) is corrupted",
				i);
	if (s->active == LUKS_SLOT_ACTIVE && s->iterations == 0)
		return qerr_set(e, -EINVAL,
				"Keyslot %d iteration count is zero", i);
	if (start < LUKS_HEADER_SECTORS)
		return qerr_set(e, -EINVAL,
				"Keyslot %d is overlapping with the LUKS header",
				i);
	if (start + len > h->payload_offset)
		return qerr_set(e, -EINVAL,
				"Keyslot %d is overlapping with the encrypted "
				"payload", i);
	if (len * LUKS_SECTOR > LUKS_MAX_MATERIAL)
		return qerr_set(e, -EINVAL,
				"Keyslot %d key material of %llu sectors is too "
				"large", i, (unsigned long long)len);
	if (area_len && (start + len) * LUKS_SECTOR > area_len)
		return qerr_set(e, -EINVAL,
				"Keyslot %d lies outside the LUKS header area "
				"(%llu bytes)", i,
				(unsigned long long)area_len);
	for (int j = i + 1; j < LUKS_NUM_SLOTS; j++) {
		const struct luks_slot *t = &h->slot[j];
		uint64_t tlen = luks_slot_sectors(h->key_bytes, t->stripes);

		if (start + len > t->key_offset && t->key_offset + tlen > start)
			return qerr_set(e, -EINVAL,
					"Keyslots %d and %d are overlapping in "
					"the header", i, j);
	}
	return 0;
}

static int name_lookup(int v, const char *type, const char *name,
		       struct qerr *e)
{
	if (v < 0)
		return qerr_set(e, -ENOTSUP, "%s '%s' not supported", type,
				name);
	return v;
}

/* "aes" with key_bytes (halved for XTS) to qemu's cipher value. */
static int cipher_lookup(const struct luks_header *h, enum crypto_mode mode,
			 struct qerr *e)
{
	uint32_t key = h->key_bytes;

	if (mode == CRYPTO_MODE_XTS) {
		if (key % 2)
			key = 0;
		key /= 2;
	}
	for (int i = 0; i < CRYPTO_CIPHER_COUNT; i++) {
		const struct crypto_cipher_info *ci = crypto_cipher_info(i);

		if (ci->luks_name && strcmp(ci->luks_name, h->cipher_name) == 0 &&
		    ci->key_len == key)
			return i;
	}
	return qerr_set(e, -ENOTSUP,
			"Algorithm '%s' with key size %u bytes not supported",
			h->cipher_name, key);
}

int luks_header_algs(const struct luks_header *h, struct luks_algs *a,
		     struct qerr *e)
{
	char mode[LUKS_NAME_LEN + 1];
	char *ivgen, *ivhash;
	enum crypto_cipher ivc;
	int v;

	memcpy(mode, h->cipher_mode, sizeof(mode));
	ivgen = strchr(mode, '-');
	if (!ivgen)
		return qerr_set(e, -EINVAL,
				"Unexpected cipher mode string format '%s'",
				h->cipher_mode);
	*ivgen++ = '\0';
	ivhash = strchr(ivgen, ':');
	a->has_ivgen_hash = ivhash != NULL;
	a->ivgen_hash = CRYPTO_HASH_SHA256;
	if (ivhash) {
		*ivhash++ = '\0';
		v = name_lookup(crypto_hash_lookup(ivhash), "Hash algorithm",
				ivhash, e);
		if (v < 0)
			return v;
		a->ivgen_hash = v;
	}
	v = name_lookup(crypto_mode_lookup(mode), "Cipher mode", mode, e);
	if (v < 0)
		return v;
	a->mode = v;
	v = cipher_lookup(h, a->mode, e);
	if (v < 0)
		return v;
	a->cipher = v;
	v = name_lookup(crypto_hash_lookup(h->hash_spec), "Hash algorithm",
			h->hash_spec, e);
	if (v < 0)
		return v;
	a->hash = v;
	v = name_lookup(crypto_ivgen_lookup(ivgen), "IV generator", ivgen, e);
	if (v < 0)
		return v;
	a->ivgen = v;
	if (a->ivgen != CRYPTO_IVGEN_ESSIV)
		return 0;
	if (!ivhash)
		return qerr_set(e, -EINVAL,
				"Missing IV generator hash specification");
	/* qemu refuses an ESSIV it could not key when it parses. */
	return crypto_essiv_cipher(a->cipher, a->ivgen_hash, &ivc, e);
}

int luks_header_decode(const uint8_t *buf, uint64_t area_len,
		       struct luks_header *h, struct luks_algs *a,
		       struct qerr *e)
{
	int ret = decode_fields(buf, h, e);

	if (ret == 0 && h->payload_offset < LUKS_HEADER_SECTORS)
		ret = qerr_set(e, -EINVAL,
			       "LUKS payload is overlapping with the header");
	if (ret == 0 && h->mk_iterations == 0)
		ret = qerr_set(e, -EINVAL, "LUKS key iteration count is zero");
	for (int i = 0; i < LUKS_NUM_SLOTS && ret == 0; i++)
		ret = check_slot(h, i, area_len, e);
	if (ret == 0)
		ret = luks_header_algs(h, a, e);
	return ret;
}
