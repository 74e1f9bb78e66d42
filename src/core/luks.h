/*
 * luks.h: the LUKS1 on-disk header (cryptsetup's "LUKS On-Disk Format
 * Specification" 1.2) as qemu stores it inside a qcow2 image, decoded,
 * validated and encoded.  One parser for everyone: crypto_open_luks()
 * unlocks with it and `info` can describe a header with it (no secret
 * needed for anything here).
 *
 * Layout (592 bytes, integers big-endian): magic "LUKS\xba\xbe", u16
 * version (1), cipher_name[32] ("aes"), cipher_mode[32] ("xts-plain64",
 * "cbc-essiv:sha256"), hash_spec[32] ("sha256"), u32 payload_offset
 * (sectors), u32 key_bytes, mk_digest[20], mk_digest_salt[32], u32
 * mk_digest_iterations, uuid[40], then 8 key slots of 48 bytes: u32 active
 * (0x00AC71F3) or inactive (0x0000DEAD), u32 iterations, salt[32], u32
 * key_material_offset (sectors), u32 stripes.  In qcow2 all offsets are
 * relative to the start of the crypto header extension's area.
 */
#ifndef QIMG_CORE_LUKS_H
#define QIMG_CORE_LUKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"
#include "core/err.h"

#define LUKS_PHDR_LEN 592
#define LUKS_MAGIC_LEN 6
#define LUKS_VERSION 1
#define LUKS_NAME_LEN 32
#define LUKS_DIGEST_LEN 20
#define LUKS_SALT_LEN 32
#define LUKS_UUID_LEN 40
#define LUKS_NUM_SLOTS 8
#define LUKS_SLOT_ACTIVE 0x00AC71F3U
#define LUKS_SLOT_INACTIVE 0x0000DEADU
#define LUKS_STRIPES 4000
#define LUKS_MIN_ITERS 1000
#define LUKS_SECTOR 512
/* Key material starts after the first 4 KiB and is aligned to 4 KiB. */
#define LUKS_HEADER_SECTORS 8

struct luks_slot {
	uint32_t active;
	uint32_t iterations;
	uint8_t salt[LUKS_SALT_LEN];
	uint32_t key_offset;	/* sectors from the start of the header */
	uint32_t stripes;
};

struct luks_header {
	uint16_t version;
	char cipher_name[LUKS_NAME_LEN + 1];	/* NUL-terminated copies */
	char cipher_mode[LUKS_NAME_LEN + 1];
	char hash_spec[LUKS_NAME_LEN + 1];
	uint32_t payload_offset;		/* sectors */
	uint32_t key_bytes;
	uint8_t mk_digest[LUKS_DIGEST_LEN];
	uint8_t mk_salt[LUKS_SALT_LEN];
	uint32_t mk_iterations;
	char uuid[LUKS_UUID_LEN + 1];
	struct luks_slot slot[LUKS_NUM_SLOTS];
};

/* What the header's names mean, in qemu's terms. */
struct luks_algs {
	enum crypto_cipher cipher;	/* "aes" + key_bytes (halved for xts) */
	enum crypto_mode mode;
	enum crypto_ivgen ivgen;
	bool has_ivgen_hash;		/* "...:hash" present (any ivgen) */
	enum crypto_hash ivgen_hash;
	enum crypto_hash hash;
};

/*
 * Decode the 592 bytes at buf and check them as qemu 7.2 does before it
 * trusts a header: magic ("Volume is not in LUKS format"), version ("LUKS
 * version N is not supported"), NUL-terminated names, key slots (state,
 * stripes, iterations, material clear of the first 4 KiB, of the payload
 * and of each other) and, when area_len is not 0, every slot's material
 * inside [0, area_len).  Then the names (luks_header_algs).  0 or -EINVAL
 * / -ENOTSUP with qemu's message.
 */
int luks_header_decode(const uint8_t *buf, uint64_t area_len,
		       struct luks_header *h, struct luks_algs *a,
		       struct qerr *e);

/*
 * Decode cipher_name, cipher_mode ("<mode>-<ivgen>[:<hash>]") and
 * hash_spec with qemu's messages ("Cipher mode foo not supported",
 * "Algorithm aes with key size 20 bytes not supported", "Missing IV
 * generator hash specification", ...).
 */
int luks_header_algs(const struct luks_header *h, struct luks_algs *a,
		     struct qerr *e);

/* Encode h into buf (LUKS_PHDR_LEN bytes). */
void luks_header_encode(const struct luks_header *h, uint8_t *buf);

/*
 * Sectors one slot's key material spans in qemu's (and cryptsetup's)
 * layout: key_bytes x stripes rounded up to sectors, then to 4 KiB.
 */
uint64_t luks_slot_sectors(uint32_t key_bytes, uint32_t stripes);

#endif
