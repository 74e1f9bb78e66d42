/*
 * luks_header.c: describe the LUKS1 header of a LUKS-encrypted qcow2 image
 * for info, without any secret.
 *
 * The decoding and every check are luks_format.c's (luks.h), the parser
 * the unlock path uses too, so info refuses exactly what qemu 7.2 refuses
 * when it opens an image without a secret, with qemu's messages.  This
 * file only bounds the read (the header must lie inside the crypto header
 * extension's area and the file) and turns the decoded header into
 * qemu-img's "encrypt" object.  Key material is never read here, so the
 * area length is not imposed on the key slots: qemu's info does not either.
 */
#include <errno.h>
#include <string.h>

#include "core/luks.h"
#include "core/qcow2.h"

typedef unsigned long long ull;

/* qemu's "encrypt" object, keys in the order qemu-img prints them. */
static void add_encrypt(struct kv *data, const struct luks_header *h,
			const struct luks_algs *a)
{
	struct kv *enc = kv_add_obj(data, "encrypt"), *slots;

	kv_add_str(enc, "ivgen-alg", crypto_ivgen_name(a->ivgen));
	kv_add_str(enc, "hash-alg", crypto_hash_name(a->hash));
	kv_add_str(enc, "cipher-alg", crypto_cipher_name(a->cipher));
	kv_add_str(enc, "uuid", h->uuid);
	/* qemu shows the IV hash only where the IV generator uses one. */
	if (a->ivgen == CRYPTO_IVGEN_ESSIV)
		kv_add_str(enc, "ivgen-hash-alg",
			   crypto_hash_name(a->ivgen_hash));
	kv_add_str(enc, "format", "luks");
	kv_add_str(enc, "cipher-mode", crypto_mode_name(a->mode));
	slots = kv_add_arr(enc, "slots");
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
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
	struct luks_header h;
	struct luks_algs a;
	int ret;

	/* qemu reads the header through the extension's bounds. */
	if (length < LUKS_PHDR_LEN)
		return qerr_set(e, -EINVAL,
				"Request for data outside of extension header");
	if (offset > file_size || file_size - offset < LUKS_PHDR_LEN)
		return qerr_set(e, -EINVAL,
				"the LUKS header (offset %#llx) lies past the "
				"end of the file (%llu bytes)",
				(ull)offset, (ull)file_size);
	ret = qfile_pread(f, p, sizeof(p), offset, e);
	if (ret == 0)
		ret = luks_header_decode(p, 0, &h, &a, e);
	if (ret == 0)
		add_encrypt(data, &h, &a);
	return ret;
}
