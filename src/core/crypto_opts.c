/*
 * crypto_opts.c: the glue between qemu-img's option syntax and the crypto
 * core: the encrypt.* creation options (-o) and the opening of an
 * encrypted qcow2 image from its header and image options (contracts in
 * crypto.h).
 *
 * The rules are qemu-img 7.2's, as observed: "encryption" is a deprecated
 * alias of encrypt.format whose value "on" means aes and "off" means "not
 * given" (any other boolean spelling is passed on as a format name and
 * refused); LUKS-only options on an aes image are unexpected; every
 * encrypt.* option needs encrypt.format; the key secret is required once a
 * format is chosen.
 */
#include <errno.h>
#include <string.h>

#include "core/crypto.h"
#include "core/qcow2.h"
#include "core/secret.h"

#define ITER_TIME_DEFAULT_MS 2000

void crypto_luks_params_default(struct crypto_luks_params *p)
{
	p->cipher = CRYPTO_CIPHER_AES_256;
	p->mode = CRYPTO_MODE_XTS;
	p->ivgen = CRYPTO_IVGEN_PLAIN64;
	p->has_ivgen_hash = false;
	p->ivgen_hash = CRYPTO_HASH_SHA256;
	p->hash = CRYPTO_HASH_SHA256;
	p->iter_time_ms = ITER_TIME_DEFAULT_MS;
}

/* The LUKS-only options, in the order qemu-img's help lists them. */
static const char *const luks_keys[] = {
	"encrypt.cipher-alg",	  "encrypt.cipher-mode", "encrypt.hash-alg",
	"encrypt.iter-time",	  "encrypt.ivgen-alg",
	"encrypt.ivgen-hash-alg",
};
#define N_LUKS_KEYS (sizeof(luks_keys) / sizeof(luks_keys[0]))

static int get_format(struct optlist *opts, enum crypto_format *fmt,
		      struct qerr *e)
{
	const char *alias = NULL, *f;
	bool on;
	int ret;

	if (optlist_has(opts, "encryption")) {
		ret = optlist_get_bool(opts, "encryption", &on, e);
		if (ret < 0)
			return ret;
		alias = optlist_get(opts, "encryption");
		if (strcmp(alias, "off") == 0)
			alias = NULL;
	}
	if (alias && optlist_has(opts, "encrypt.format"))
		return qerr_set(e, -EINVAL, "'encrypt.format' and its alias "
				"'encryption' can't be used at the same time");
	f = alias ? (strcmp(alias, "on") == 0 ? "aes" : alias)
		  : optlist_get(opts, "encrypt.format");
	if (!f)
		*fmt = CRYPTO_FORMAT_NONE;
	else if (strcmp(f, "aes") == 0)
		*fmt = CRYPTO_FORMAT_AES;
	else if (strcmp(f, "luks") == 0)
		*fmt = CRYPTO_FORMAT_LUKS;
	else
		return qerr_set(e, -EINVAL, "Parameter 'format' does not "
				"accept value '%s'", f);
	return 0;
}

/* encrypt.NAME=value through lookup, or "does not accept value". */
static int get_enum(struct optlist *opts, const char *key,
		    int (*lookup)(const char *), int *out, struct qerr *e)
{
	const char *v = optlist_get(opts, key);
	int r;

	if (!v)
		return 0;
	r = lookup(v);
	if (r < 0)
		return qerr_set(e, -EINVAL, "Parameter '%s' does not accept "
				"value '%s'", key + strlen("encrypt."), v);
	*out = r;
	return 1;
}

static int get_luks(struct optlist *opts, struct crypto_luks_params *p,
		    struct qerr *e)
{
	int c = (int)p->cipher, m = (int)p->mode, g = (int)p->ivgen;
	int ih = (int)p->ivgen_hash, h = (int)p->hash, ret;

	ret = get_enum(opts, "encrypt.cipher-alg", crypto_cipher_lookup, &c, e);
	if (ret >= 0)
		ret = get_enum(opts, "encrypt.cipher-mode", crypto_mode_lookup,
			       &m, e);
	if (ret >= 0)
		ret = get_enum(opts, "encrypt.ivgen-alg", crypto_ivgen_lookup,
			       &g, e);
	if (ret >= 0) {
		ret = get_enum(opts, "encrypt.ivgen-hash-alg",
			       crypto_hash_lookup, &ih, e);
		p->has_ivgen_hash = ret > 0;
	}
	if (ret >= 0)
		ret = get_enum(opts, "encrypt.hash-alg", crypto_hash_lookup,
			       &h, e);
	if (ret >= 0)
		ret = optlist_get_num(opts, "encrypt.iter-time",
				      &p->iter_time_ms, e);
	p->cipher = (enum crypto_cipher)c;
	p->mode = (enum crypto_mode)m;
	p->ivgen = (enum crypto_ivgen)g;
	p->ivgen_hash = (enum crypto_hash)ih;
	p->hash = (enum crypto_hash)h;
	return ret < 0 ? ret : 0;
}

int crypto_create_opts_get(struct optlist *opts, struct crypto_create_opts *o,
			   struct qerr *e)
{
	int ret;

	memset(o, 0, sizeof(*o));
	crypto_luks_params_default(&o->luks);
	ret = get_format(opts, &o->format, e);
	if (ret < 0)
		return ret;
	if (o->format == CRYPTO_FORMAT_NONE) {
		if (optlist_has(opts, "encrypt.key-secret"))
			return qerr_set(e, -EINVAL,
					"Parameter 'encrypt.format' is missing");
		for (size_t i = 0; i < N_LUKS_KEYS; i++)
			if (optlist_has(opts, luks_keys[i]))
				return qerr_set(e, -EINVAL, "Parameter "
						"'encrypt.format' is missing");
		return 0;
	}
	o->key_secret = optlist_get(opts, "encrypt.key-secret");
	if (o->format == CRYPTO_FORMAT_AES) {
		for (size_t i = 0; i < N_LUKS_KEYS; i++)
			if (optlist_has(opts, luks_keys[i]))
				return qerr_set(e, -EINVAL, "Parameter '%s' is "
						"unexpected", luks_keys[i]);
	} else {
		ret = get_luks(opts, &o->luks, e);
		if (ret < 0)
			return ret;
	}
	if (!o->key_secret)
		return qerr_set(e, -EINVAL, "Parameter 'encrypt.key-secret' is "
				"required for cipher");
	return 0;
}

int crypto_open_image(struct qfile *f, uint32_t crypt_method, bool has_ext,
		      uint64_t ext_offset, uint64_t ext_length,
		      const char *key_secret, const char *opt_format,
		      struct crypto_ctx **out, struct qerr *e)
{
	static const char *const names[] = { "none", "aes", "luks" };
	const uint8_t *pass;
	size_t passlen;
	int ret;

	*out = NULL;
	if (crypt_method != QCOW2_CRYPT_AES && crypt_method != QCOW2_CRYPT_LUKS)
		return qerr_set(e, -ENOTSUP, "Unsupported encryption method %u",
				crypt_method);
	if (opt_format && strcmp(opt_format, names[crypt_method]) != 0)
		return qerr_set(e, -EINVAL, "Header reported '%s' encryption "
				"format but options specify '%s'",
				names[crypt_method], opt_format);
	if (!key_secret)
		return qerr_set(e, -EINVAL, "Parameter 'encrypt.key-secret' is "
				"required for cipher");
	ret = secret_lookup_utf8(key_secret, &pass, &passlen, e);
	if (ret < 0)
		return ret;
	if (crypt_method == QCOW2_CRYPT_AES)
		return crypto_open_aes(pass, passlen, out, e);
	if (!has_ext)
		return qerr_set(e, -EINVAL, "LUKS encryption without a crypto "
				"header extension");
	return crypto_open_luks(f, ext_offset, ext_length, pass, passlen, out,
				e);
}
