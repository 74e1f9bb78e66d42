/*
 * luks_header.c: describe the LUKS1 header of a LUKS-encrypted qcow2 image
 * for info, without any secret.
 *
 * Spec: cryptsetup's LUKS1 on-disk format.  The 592-byte phdr: magic
 * "LUKS\xba\xbe", u16 version (1), cipher name[32], cipher mode[32] (e.g.
 * "xts-plain64", "cbc-essiv:sha256"), hash spec[32], u32 payload offset
 * (sectors), u32 key bytes, master key digest[20], digest salt[32], u32
 * digest iterations, uuid[40], then 8 key slots of 48 bytes (u32 active
 * 0x00AC71F3 / inactive 0x0000DEAD, u32 iterations, salt[32], u32 key
 * material offset (sectors), u32 stripes).  All integers big-endian.
 * In qcow2 the header sits at the encryption extension's offset and every
 * offset in it is relative to that.
 *
 * The checks are the ones qemu 7.2 makes before it will describe a header
 * (so qimg refuses what qemu refuses): NUL-terminated strings, known
 * cipher, mode, IV generator and hashes, a non-zero digest iteration count,
 * 4000 stripes per slot, slots inside the header area, clear of the payload
 * and of each other.  Names are shown as qemu's QAPI enums name them
 * ("aes-256" for AES with a 64-byte XTS key).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/qcow2.h"

#define LUKS_PHDR_LEN 592
#define LUKS_VERSION 1
#define LUKS_STR_LEN 32
#define LUKS_UUID_LEN 40
#define LUKS_SLOTS 8
#define LUKS_SLOT_LEN 48
#define LUKS_SLOTS_AT 208
#define LUKS_SLOT_ACTIVE 0x00AC71F3U
#define LUKS_SLOT_INACTIVE 0x0000DEADU
#define LUKS_STRIPES 4000
#define LUKS_SECTOR 512
/* Key material starts after the first 4 KiB, in 8-sector units. */
#define LUKS_HEADER_SECTORS 8

static const uint8_t luks_magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

typedef unsigned long long ull;

struct luks_slot {
	uint32_t active, iterations, key_offset, stripes;
};

struct luks_hdr {
	char cipher_name[LUKS_STR_LEN];
	char cipher_mode[LUKS_STR_LEN];
	char hash_spec[LUKS_STR_LEN];
	uint32_t payload_offset;
	uint32_t key_bytes;
	uint32_t mk_iterations;
	char uuid[LUKS_UUID_LEN + 1];
	struct luks_slot slot[LUKS_SLOTS];
};

/* What the header's strings decode to, as qemu names them. */
struct luks_desc {
	char cipher_alg[16];
	char mode[8];
	char ivgen[8];
	const char *ivgen_hash;	/* essiv only */
	const char *hash;
};

struct cipher_family {
	const char *name;
	unsigned key_sizes[3];	/* bytes, 0-terminated */
};

static const struct cipher_family families[] = {
	{ "aes", { 16, 24, 32 } },
	{ "cast5", { 16, 0, 0 } },
	{ "serpent", { 16, 24, 32 } },
	{ "twofish", { 16, 24, 32 } },
};

static const struct {
	const char *name;
	unsigned digest;
} hashes[] = {
	{ "md5", 16 },	  { "sha1", 20 },   { "sha224", 28 },
	{ "sha256", 32 }, { "sha384", 48 }, { "sha512", 64 },
	{ "ripemd160", 20 },
};

static int hash_lookup(const char *name, unsigned *digest)
{
	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		if (strcmp(hashes[i].name, name) == 0) {
			if (digest)
				*digest = hashes[i].digest;
			return (int)i;
		}
	}
	return -1;
}

static bool family_has_key(const struct cipher_family *f, unsigned bytes)
{
	for (int i = 0; i < 3 && f->key_sizes[i]; i++)
		if (f->key_sizes[i] == bytes)
			return true;
	return false;
}

static const struct cipher_family *family_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (strcmp(families[i].name, name) == 0)
			return &families[i];
	return NULL;
}

static void decode_header(const uint8_t *p, struct luks_hdr *h)
{
	memcpy(h->cipher_name, p + 8, LUKS_STR_LEN);
	memcpy(h->cipher_mode, p + 40, LUKS_STR_LEN);
	memcpy(h->hash_spec, p + 72, LUKS_STR_LEN);
	h->payload_offset = be32_get(p + 104);
	h->key_bytes = be32_get(p + 108);
	h->mk_iterations = be32_get(p + 164);
	memcpy(h->uuid, p + 168, LUKS_UUID_LEN);
	h->uuid[LUKS_UUID_LEN] = '\0';
	for (int i = 0; i < LUKS_SLOTS; i++) {
		const uint8_t *s = p + LUKS_SLOTS_AT + i * LUKS_SLOT_LEN;

		h->slot[i].active = be32_get(s);
		h->slot[i].iterations = be32_get(s + 4);
		h->slot[i].key_offset = be32_get(s + 40);
		h->slot[i].stripes = be32_get(s + 44);
	}
}

/* Sectors a slot's key material spans: rounded up to whole 4 KiB. */
static uint64_t slot_sectors(const struct luks_hdr *h, uint32_t stripes)
{
	uint64_t bytes = (uint64_t)h->key_bytes * stripes;
	uint64_t sectors = (bytes + LUKS_SECTOR - 1) / LUKS_SECTOR;

	return (sectors + LUKS_HEADER_SECTORS - 1) / LUKS_HEADER_SECTORS *
	       LUKS_HEADER_SECTORS;
}

static int check_slots(const struct luks_hdr *h, struct qerr *e)
{
	for (int i = 0; i < LUKS_SLOTS; i++) {
		const struct luks_slot *s = &h->slot[i];
		uint64_t end = s->key_offset + slot_sectors(h, s->stripes);

		if (s->stripes != LUKS_STRIPES)
			return qerr_set(e, -EINVAL,
					"LUKS key slot %d: invalid stripes %u "
					"(must be %d)",
					i, s->stripes, LUKS_STRIPES);
		if (s->active != LUKS_SLOT_ACTIVE &&
		    s->active != LUKS_SLOT_INACTIVE)
			return qerr_set(e, -EINVAL,
					"LUKS key slot %d: invalid state %#x",
					i, s->active);
		if (s->active == LUKS_SLOT_ACTIVE && s->iterations == 0)
			return qerr_set(e, -EINVAL,
					"LUKS key slot %d: invalid iterations "
					"0", i);
		if (s->key_offset < LUKS_HEADER_SECTORS)
			return qerr_set(e, -EINVAL,
					"LUKS key slot %d: key material offset "
					"%u overlaps the LUKS header",
					i, s->key_offset);
		if (end > h->payload_offset)
			return qerr_set(e, -EINVAL,
					"LUKS key slot %d: key material overlaps "
					"the payload at sector %u",
					i, h->payload_offset);
		for (int j = i + 1; j < LUKS_SLOTS; j++) {
			const struct luks_slot *t = &h->slot[j];
			uint64_t tend = t->key_offset +
					slot_sectors(h, t->stripes);

			if (end > t->key_offset && tend > s->key_offset)
				return qerr_set(e, -EINVAL,
						"LUKS key slots %d and %d "
						"overlap", i, j);
		}
	}
	return 0;
}

static int check_header(const uint8_t *p, const struct luks_hdr *h,
			struct qerr *e)
{
	uint16_t version = be16_get(p + 6);

	if (memcmp(p, luks_magic, sizeof(luks_magic)) != 0)
		return qerr_set(e, -EINVAL,
				"the encryption header is not in LUKS format");
	if (version != LUKS_VERSION)
		return qerr_set(e, -ENOTSUP, "unsupported LUKS version %u",
				version);
	if (!memchr(h->cipher_name, '\0', LUKS_STR_LEN) ||
	    !memchr(h->cipher_mode, '\0', LUKS_STR_LEN) ||
	    !memchr(h->hash_spec, '\0', LUKS_STR_LEN))
		return qerr_set(e, -EINVAL,
				"a LUKS header string (cipher name, cipher "
				"mode or hash spec) is not NUL-terminated");
	if (h->payload_offset < LUKS_HEADER_SECTORS)
		return qerr_set(e, -EINVAL,
				"invalid LUKS payload offset %u sectors "
				"(overlaps the header)", h->payload_offset);
	if (h->mk_iterations == 0)
		return qerr_set(e, -EINVAL,
				"invalid LUKS master key iterations 0");
	return check_slots(h, e);
}

/* "xts-plain64" or "cbc-essiv:sha256": mode, IV generator, IV hash. */
static int decode_mode(const struct luks_hdr *h, struct luks_desc *d,
		       const char **ivhash, struct qerr *e)
{
	static const char *const modes[] = { "ecb", "cbc", "xts", "ctr" };
	static const char *const ivgens[] = { "plain", "plain64", "essiv" };
	const char *dash = strchr(h->cipher_mode, '-'), *colon;
	size_t mlen, ilen;
	bool ok = false;

	if (!dash)
		return qerr_set(e, -EINVAL, "invalid LUKS cipher mode '%s'",
				h->cipher_mode);
	mlen = (size_t)(dash - h->cipher_mode);
	colon = strchr(dash + 1, ':');
	ilen = colon ? (size_t)(colon - dash - 1) : strlen(dash + 1);
	*ivhash = colon ? colon + 1 : NULL;
	for (size_t i = 0; i < 4 && !ok; i++)
		ok = mlen == strlen(modes[i]) &&
		     memcmp(h->cipher_mode, modes[i], mlen) == 0;
	if (!ok)
		return qerr_set(e, -ENOTSUP,
				"unsupported LUKS cipher mode '%.*s'",
				(int)mlen, h->cipher_mode);
	memcpy(d->mode, h->cipher_mode, mlen);
	d->mode[mlen] = '\0';
	ok = false;
	for (size_t i = 0; i < 3 && !ok; i++)
		ok = ilen == strlen(ivgens[i]) &&
		     memcmp(dash + 1, ivgens[i], ilen) == 0;
	if (!ok)
		return qerr_set(e, -ENOTSUP,
				"unsupported LUKS IV generator '%.*s'",
				(int)ilen, dash + 1);
	memcpy(d->ivgen, dash + 1, ilen);
	d->ivgen[ilen] = '\0';
	return 0;
}

static int decode_algs(const struct luks_hdr *h, struct luks_desc *d,
		       struct qerr *e)
{
	const struct cipher_family *fam;
	const char *ivhash = NULL;
	unsigned key, digest = 0;
	int ret, i = -1;

	ret = decode_mode(h, d, &ivhash, e);
	if (ret < 0)
		return ret;
	/* An IV hash is parsed even where the IV generator ignores it. */
	if (ivhash && (i = hash_lookup(ivhash, &digest)) < 0)
		return qerr_set(e, -ENOTSUP, "unsupported LUKS IV hash '%s'",
				ivhash);
	d->ivgen_hash = ivhash ? hashes[i].name : NULL;
	key = strcmp(d->mode, "xts") == 0 ? h->key_bytes / 2 : h->key_bytes;
	fam = family_lookup(h->cipher_name);
	if (!fam || !family_has_key(fam, key))
		return qerr_set(e, -ENOTSUP,
				"unsupported LUKS cipher '%s' with %u-byte "
				"keys", h->cipher_name, key);
	snprintf(d->cipher_alg, sizeof(d->cipher_alg), "%s-%u", fam->name,
		 key * 8);
	if ((i = hash_lookup(h->hash_spec, NULL)) < 0)
		return qerr_set(e, -ENOTSUP, "unsupported LUKS hash '%s'",
				h->hash_spec);
	d->hash = hashes[i].name;
	if (strcmp(d->ivgen, "essiv") != 0) {
		d->ivgen_hash = NULL;
		return 0;
	}
	if (!ivhash)
		return qerr_set(e, -EINVAL,
				"LUKS IV generator essiv has no hash");
	/* ESSIV keys the same cipher family with the hash's digest. */
	if (!family_has_key(fam, digest))
		return qerr_set(e, -ENOTSUP,
				"unsupported LUKS IV generator essiv:%s with "
				"cipher %s", d->ivgen_hash, d->cipher_alg);
	return 0;
}

/* qemu's "encrypt" object, keys in the order qemu-img prints them. */
static void add_encrypt(struct kv *data, const struct luks_hdr *h,
			const struct luks_desc *d)
{
	struct kv *enc = kv_add_obj(data, "encrypt"), *slots;

	kv_add_str(enc, "ivgen-alg", d->ivgen);
	kv_add_str(enc, "hash-alg", d->hash);
	kv_add_str(enc, "cipher-alg", d->cipher_alg);
	kv_add_str(enc, "uuid", h->uuid);
	if (d->ivgen_hash)
		kv_add_str(enc, "ivgen-hash-alg", d->ivgen_hash);
	kv_add_str(enc, "format", "luks");
	kv_add_str(enc, "cipher-mode", d->mode);
	slots = kv_add_arr(enc, "slots");
	for (int i = 0; i < LUKS_SLOTS; i++) {
		const struct luks_slot *s = &h->slot[i];
		struct kv *o = kv_add_obj(slots, NULL);
		bool active = s->active == LUKS_SLOT_ACTIVE;

		kv_add_bool(o, "active", active);
		if (active)
			kv_add_int(o, "iters", s->iterations);
		kv_add_int(o, "key-offset", (int64_t)s->key_offset * LUKS_SECTOR);
		if (active)
			kv_add_int(o, "stripes", s->stripes);
	}
	kv_add_int(enc, "payload-offset",
		   (int64_t)h->payload_offset * LUKS_SECTOR);
	kv_add_int(enc, "master-key-iters", h->mk_iterations);
}

int luks_info(struct qfile *f, uint64_t offset, uint64_t length,
	      uint64_t file_size, struct kv *data, struct qerr *e)
{
	uint8_t p[LUKS_PHDR_LEN];
	struct luks_hdr h;
	struct luks_desc d = { 0 };
	int ret;

	if (length < LUKS_PHDR_LEN)
		return qerr_set(e, -EINVAL,
				"invalid encryption header length %llu (a LUKS "
				"header needs %d bytes)",
				(ull)length, LUKS_PHDR_LEN);
	if (offset > file_size || file_size - offset < LUKS_PHDR_LEN)
		return qerr_set(e, -EINVAL,
				"the LUKS header (offset %#llx) lies past the "
				"end of the file (%llu bytes)",
				(ull)offset, (ull)file_size);
	ret = qfile_pread(f, p, sizeof(p), offset, e);
	if (ret < 0)
		return ret;
	decode_header(p, &h);
	ret = check_header(p, &h, e);
	if (ret == 0)
		ret = decode_algs(&h, &d, e);
	if (ret == 0)
		add_encrypt(data, &h, &d);
	return ret;
}
