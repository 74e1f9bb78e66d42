/*
 * secret.c: the store of qemu-style secret objects (see secret.h): parsing
 * the --object text, loading data or a file, base64 and AES-256-CBC
 * (keyid/iv) decoding, UTF-8 checks for passphrases.
 *
 * The order of checks, and their words, follow qemu-img 7.2 as observed:
 * the object's properties (type, id, unexpected keys, format), then the
 * id's uniqueness, then loading (data/file), decryption or decoding.
 *
 * Invariant: every byte of secret data, decoded or not, is only ever in
 * secmem pages, which are wiped when released.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto_int.h"
#include "core/secmem.h"
#include "core/crypto.h"
#include "core/secret.h"

struct secret {
	char *id;
	uint8_t *data;		/* secmem, cap bytes */
	size_t len, cap;
};

static struct secret *store;
static size_t store_len;

/* A buffer of secret bytes. */
struct sbuf {
	uint8_t *p;
	size_t len, cap;
};

static int sbuf_alloc(struct sbuf *b, size_t cap, struct qerr *e)
{
	b->cap = cap ? cap : 1;
	b->len = 0;
	b->p = secmem_alloc(b->cap);
	return b->p ? 0 : qerr_set(e, -ENOMEM, "out of memory");
}

static void sbuf_free(struct sbuf *b)
{
	secmem_free(b->p, b->cap);
	b->p = NULL;
	b->len = b->cap = 0;
}

static struct secret *find(const char *id)
{
	for (size_t i = 0; i < store_len; i++)
		if (strcmp(store[i].id, id) == 0)
			return &store[i];
	return NULL;
}

/* Take ownership of b under id. */
static int store_add(const char *id, struct sbuf *b, struct qerr *e)
{
	struct secret *n = realloc(store, (store_len + 1) * sizeof(*n));
	char *idc = strdup(id);

	if (n)
		store = n;
	if (!n || !idc) {
		free(idc);
		sbuf_free(b);
		return qerr_set(e, -ENOMEM, "out of memory");
	}
	store[store_len++] = (struct secret){ idc, b->p, b->len, b->cap };
	b->p = NULL;
	return 0;
}

int secret_add(const char *id, const uint8_t *data, size_t len,
	       struct qerr *e)
{
	struct sbuf b;
	int ret;

	if (find(id))
		return qerr_set(e, -EEXIST, "attempt to add duplicate property "
				"'%s' to object (type 'container')", id);
	ret = sbuf_alloc(&b, len, e);
	if (ret < 0)
		return ret;
	memcpy(b.p, data, len);
	b.len = len;
	return store_add(id, &b, e);
}

int secret_lookup(const char *id, const uint8_t **data, size_t *len,
		  struct qerr *e)
{
	const struct secret *s = find(id);

	if (!s)
		return qerr_set(e, -ENOENT, "No secret with id '%s'", id);
	*data = s->data;
	*len = s->len;
	return 0;
}

bool secret_utf8_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t c = p[i], min;
		size_t n;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			n = 1, min = 0x80, c &= 0x1f;
		else if ((c & 0xf0) == 0xe0)
			n = 2, min = 0x800, c &= 0x0f;
		else if ((c & 0xf8) == 0xf0)
			n = 3, min = 0x10000, c &= 0x07;
		else
			return false;
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (p[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

int secret_lookup_utf8(const char *id, const uint8_t **data, size_t *len,
		       struct qerr *e)
{
	int ret = secret_lookup(id, data, len, e);

	if (ret == 0 && !secret_utf8_valid(*data, *len))
		return qerr_set(e, -EINVAL,
				"Data from secret %s is not valid UTF-8", id);
	return ret;
}

void secret_store_clear(void)
{
	/* A key unlocked with one of these secrets goes with them. */
	crypto_forget_created();
	for (size_t i = 0; i < store_len; i++) {
		free(store[i].id);
		secmem_free(store[i].data, store[i].cap);
	}
	free(store);
	store = NULL;
	store_len = 0;
}

static int b64_rank(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	if (c == '=')
		return 0;
	return -1;
}

int secret_base64_decode(const char *in, size_t inlen, uint8_t *out,
			 size_t *outlen, struct qerr *e)
{
	uint32_t v = 0;
	size_t o = 0;
	int n = 0;
	char last[2] = { 0, 0 };

	if (memchr(in, '\0', inlen))
		return qerr_set(e, -EINVAL,
				"Base64 data contains embedded NUL characters");
	for (size_t i = 0; i < inlen; i++)
		if (in[i] != '\n' && b64_rank((unsigned char)in[i]) < 0)
			return qerr_set(e, -EINVAL, "Base64 data contains "
					"invalid characters");
	for (size_t i = 0; i < inlen; i++) {
		if (in[i] == '\n')
			continue;
		last[1] = last[0];
		last[0] = in[i];
		v = v << 6 | (uint32_t)b64_rank((unsigned char)in[i]);
		if (++n < 4)
			continue;
		out[o++] = (uint8_t)(v >> 16);
		if (last[1] != '=')
			out[o++] = (uint8_t)(v >> 8);
		if (last[0] != '=')
			out[o++] = (uint8_t)v;
		n = 0;
		v = 0;
	}
	*outlen = o;
	return 0;
}

/* Base64-decode b in place (decoding never grows the data). */
static int decode_in_place(struct sbuf *b, struct qerr *e)
{
	struct sbuf t;
	int ret = sbuf_alloc(&t, b->len, e);

	if (ret == 0)
		ret = secret_base64_decode((const char *)b->p, b->len, t.p,
					   &t.len, e);
	if (ret == 0) {
		memcpy(b->p, t.p, t.len);
		secmem_wipe(b->p + t.len, b->len - t.len);
		b->len = t.len;
	}
	sbuf_free(&t);
	return ret;
}

/* Secret files are small; this bounds what a wrong path can cost. */
#define SECRET_FILE_MAX (1U << 20)

static int load_file(const char *path, struct sbuf *b, struct qerr *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	ssize_t n;

	if (fd < 0)
		return qerr_set(e, -errno, "Unable to read %s: Failed to open "
				"file \u201c%s\u201d: %s", path, path,
				strerror(errno));
	ret = sbuf_alloc(b, SECRET_FILE_MAX + 1, e);
	while (ret == 0 && (n = read(fd, b->p + b->len, b->cap - b->len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = qerr_set(e, -errno, "Unable to read %s: Error "
				       "reading file \u201c%s\u201d: %s", path,
				       path, strerror(errno));
		else if ((b->len += (size_t)n) > SECRET_FILE_MAX)
			ret = qerr_set(e, -EFBIG, "Unable to read %s: larger "
				       "than %u bytes", path, SECRET_FILE_MAX);
	}
	close(fd);
	if (ret < 0)
		sbuf_free(b);
	return ret;
}

/* The properties of one secret object, as given. */
struct secret_props {
	const char *type, *id, *data, *file, *format, *keyid, *iv;
	bool base64;
};

/* keyid/iv: b is AES-256-CBC ciphertext (base64 when format=base64). */
static int decrypt(const struct secret_props *p, struct sbuf *b,
		   struct qerr *e)
{
	const uint8_t *key;
	uint8_t iv[64];
	size_t keylen, ivlen, len;
	gcry_cipher_hd_t h = NULL;
	gcry_error_t err;
	int ret;

	if (strcmp(p->keyid, p->id) == 0)
		return qerr_set(e, -EINVAL, "Secret with id '%s' has no data",
				p->id);
	ret = secret_lookup(p->keyid, &key, &keylen, e);
	if (ret < 0)
		return ret;
	if (keylen != 32)
		return qerr_set(e, -EINVAL, "Key should be 32 bytes in length");
	if (!p->iv)
		return qerr_set(e, -EINVAL, "IV is required to decrypt secret");
	if (strlen(p->iv) > sizeof(iv))
		return qerr_set(e, -EINVAL, "IV should be 16 bytes in length "
				"not %zu", strlen(p->iv) / 4 * 3);
	ret = secret_base64_decode(p->iv, strlen(p->iv), iv, &ivlen, e);
	if (ret == 0 && ivlen != 16)
		ret = qerr_set(e, -EINVAL, "IV should be 16 bytes in length "
			       "not %zu", ivlen);
	if (ret == 0 && p->base64)
		ret = decode_in_place(b, e);
	if (ret < 0)
		return ret;
	len = b->len;
	if (len % 16)
		return qerr_set(e, -EINVAL,
				"Length %zu must be a multiple of block size 16",
				len);
	ret = crypto_init(e);
	if (ret < 0)
		return ret;
	err = gcry_cipher_open(&h, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_CBC, 0);
	if (!err)
		err = gcry_cipher_setkey(h, key, keylen);
	if (!err)
		err = gcry_cipher_setiv(h, iv, ivlen);
	if (!err)
		err = gcry_cipher_decrypt(h, b->p, len, NULL, 0);
	gcry_cipher_close(h);
	if (err)
		return qerr_set(e, -EIO, "libgcrypt: secret decryption: %s",
				gcry_strerror(err));
	/* qemu checks only the count of padding bytes, not their values. */
	if (len == 0 || b->p[len - 1] > 16 || b->p[len - 1] > len)
		return qerr_set(e, -EINVAL, "Incorrect number of padding bytes "
				"(%d) found on decrypted data",
				len ? b->p[len - 1] : 0);
	b->len = len - b->p[len - 1];
	secmem_wipe(b->p + b->len, len - b->len);
	return 0;
}

/* Load, decrypt or decode the secret's bytes into b. */
static int load(const struct secret_props *p, struct sbuf *b,
		struct qerr *e)
{
	int ret;

	if (p->data && p->file)
		return qerr_set(e, -EINVAL,
				"'file' and 'data' are mutually exclusive");
	if (!p->data && !p->file)
		return qerr_set(e, -EINVAL,
				"Either 'file' or 'data' must be provided");
	if (p->file) {
		ret = load_file(p->file, b, e);
	} else {
		ret = sbuf_alloc(b, strlen(p->data), e);
		if (ret == 0) {
			b->len = strlen(p->data);
			memcpy(b->p, p->data, b->len);
		}
	}
	if (ret < 0)
		return ret;
	if (p->keyid)
		ret = decrypt(p, b, e);
	else if (p->base64)
		ret = decode_in_place(b, e);
	if (ret < 0)
		sbuf_free(b);
	return ret;
}

/* qemu's identifiers: a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
	static const char more[] = "-._";

	if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z')))
		return false;
	for (const char *p = id + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(more, *p)))
			return false;
	return true;
}

/*
 * Split spec in place into keyval items: ",," is a literal comma; the
 * first item may be a bare value (the type).  Each item is recorded into
 * p; help is reported through *help.
 */
static int parse_item(char *item, bool first, struct secret_props *p,
		      bool *help, struct qerr *e)
{
	static const char *const keys[] = { "qom-type", "id", "data", "file",
					     "format", "keyid", "iv" };
	const char **slots[] = { &p->type, &p->id, &p->data, &p->file,
				 &p->format, &p->keyid, &p->iv };
	char *eq = strchr(item, '='), *dot;

	if (!eq && (strcmp(item, "help") == 0 || strcmp(item, "?") == 0)) {
		*help = true;
		return 0;
	}
	if (!eq && first) {
		p->type = item;
		return 0;
	}
	if (!eq)
		return qerr_set(e, -EINVAL,
				"Expected '=' after parameter '%s'", item);
	*eq = '\0';
	if (item[0] == '\0')
		return qerr_set(e, -EINVAL, "Invalid parameter ''");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(item, keys[i]) == 0) {
			*slots[i] = eq + 1;
			return 0;
		}
	}
	dot = strchr(item, '.');
	if (dot) {
		*dot = '\0';
		return qerr_set(e, -EINVAL, "Parameters '%s.*' are unexpected",
				item);
	}
	return qerr_set(e, -EINVAL, "Parameter '%s' is unexpected", item);
}

static int parse_spec(char *s, struct secret_props *p, bool *help,
		      struct qerr *e)
{
	char *w = s, *item = s, end;
	bool first = true;
	int ret = 0;

	/* Unescape ",," while cutting items at single commas. */
	for (char *r = s;; r++) {
		if (*r == ',' && r[1] == ',') {
			*w++ = ',';
			r++;
			continue;
		}
		if (*r != ',' && *r != '\0') {
			*w++ = *r;
			continue;
		}
		end = *r;	/* w may be r: read before terminating */
		*w = '\0';
		if (*item || end == ',')
			ret = parse_item(item, first, p, help, e);
		if (ret < 0 || end == '\0')
			return ret;
		first = false;
		item = w = r + 1;
	}
}

/* Object types qemu-img 7.2 can create; only "secret" is ours. */
static bool qemu_object_type(const char *t)
{
	static const char *const types[] = {
		"authz-list", "authz-list-file", "authz-simple", "main-loop",
		"pr-manager-helper", "secret", "secret_keyring",
		"thread-context", "throttle-group", "tls-cipher-suites",
		"tls-creds-anon", "tls-creds-psk", "tls-creds-x509",
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(types[i], t) == 0)
			return true;
	return false;
}

static int check_props(struct secret_props *p, struct qerr *e)
{
	if (!p->type)
		return qerr_set(e, -EINVAL, "Parameter 'qom-type' is missing");
	if (!qemu_object_type(p->type))
		return qerr_set(e, -EINVAL, "Parameter 'qom-type' does not "
				"accept value '%s'", p->type);
	if (strcmp(p->type, "secret") != 0)
		return qerr_set(e, -ENOTSUP,
				"object type '%s' is not supported", p->type);
	if (!p->id)
		return qerr_set(e, -EINVAL, "Parameter 'id' is missing");
	if (!id_wellformed(p->id))
		return qerr_set(e, -EINVAL, "Parameter 'id' expects an "
				"identifier\nIdentifiers consist of letters, "
				"digits, '-', '.', '_', starting with a "
				"letter.");
	if (p->format && strcmp(p->format, "raw") != 0 &&
	    strcmp(p->format, "base64") != 0)
		return qerr_set(e, -EINVAL, "Parameter 'format' does not "
				"accept value '%s'", p->format);
	p->base64 = p->format && strcmp(p->format, "base64") == 0;
	if (find(p->id))
		return qerr_set(e, -EEXIST, "attempt to add duplicate property "
				"'%s' to object (type 'container')", p->id);
	return 0;
}

int secret_object_add(const char *spec, struct qerr *e)
{
	struct secret_props p = { 0 };
	struct sbuf b = { 0 };
	bool help = false;
	/* The copy holds data=... in clear: it is secmem too. */
	size_t cap = strlen(spec) + 1;
	char *s = secmem_alloc(cap);
	int ret;

	if (!s)
		return qerr_set(e, -ENOMEM, "out of memory");
	memcpy(s, spec, cap);
	ret = parse_spec(s, &p, &help, e);
	if (ret == 0 && help)
		ret = p.type && strcmp(p.type, "secret") == 0
			      ? SECRET_HELP_SECRET
			      : SECRET_HELP_TYPES;
	if (ret == 0)
		ret = check_props(&p, e);
	if (ret == 0)
		ret = load(&p, &b, e);
	if (ret == 0)
		ret = store_add(p.id, &b, e);
	secmem_free(s, cap);
	return ret;
}

const char *secret_object_help(enum secret_help what)
{
	if (what == SECRET_HELP_SECRET)
		return "secret options:\n"
		       "  data=<string>\n"
		       "  file=<string>\n"
		       "  format=<QCryptoSecretFormat>\n"
		       "  iv=<string>\n"
		       "  keyid=<string>\n";
	return "List of user creatable objects:\n"
	       "  secret\n";
}
