/*
 * qcow2_create.c: "create" for qcow2: the creation options qemu-img 7.2
 * accepts, their validation with qemu's messages, and the image written
 * byte for byte as qemu-img writes it.
 *
 * Spec: docs/interop/qcow2.txt (header, feature bits, extensions).  The
 * layout itself (where the refcount structures, L1, L2 and preallocated
 * data go) is qcow2_layout.c's job; this file decides the header.
 *
 * Encryption (encrypt.* options, crypto.h): as in qemu, it is set up once
 * the image has its size, so its complaints come only on the real create
 * (after the CLI's "Formatting" line, where qemu prints them), and its
 * LUKS area lands after the L1 table and any preallocation.  The secret is
 * looked up first, then the LUKS volume is made (key slot 0 from the
 * passphrase), all before the file is opened.
 *
 * Differences from qemu-img, on purpose:
 *  - every option is validated before any file is touched, so a refused
 *    create leaves an existing file alone (qemu truncates it first, then
 *    deletes it when validation fails).
 * Invariant: a file this function created is removed again if creation
 * fails, and its header (cluster 0) is written last.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/qcow2.h"
#include "core/qcow2_layout.h"
#include "core/raw.h"
#include "core/secret.h"
#include "util/opts.h"

/* In the order qemu-img's "Formatting ..." line prints them. */
const struct opt_desc qcow2_create_opts[] = {
	{ "encryption", OPT_BOOL,
	  "Encrypt the image with format 'aes'. (Deprecated in favor of "
	  "encrypt.format=aes)", NULL },
	{ "encrypt.format", OPT_STR,
	  "Encrypt the image, format choices: 'aes', 'luks'", NULL },
	{ "encrypt.key-secret", OPT_STR,
	  "ID of secret providing qcow AES key or LUKS passphrase", NULL },
	{ "encrypt.cipher-alg", OPT_STR,
	  "Name of encryption cipher algorithm", NULL },
	{ "encrypt.cipher-mode", OPT_STR,
	  "Name of encryption cipher mode", NULL },
	{ "encrypt.ivgen-alg", OPT_STR, "Name of IV generator algorithm",
	  NULL },
	{ "encrypt.ivgen-hash-alg", OPT_STR,
	  "Name of IV generator hash algorithm", NULL },
	{ "encrypt.hash-alg", OPT_STR, "Name of encryption hash algorithm",
	  NULL },
	{ "encrypt.iter-time", OPT_NUM,
	  "Time to spend in PBKDF in milliseconds", NULL },
	{ "cluster_size", OPT_SIZE, "qcow2 cluster size", "65536" },
	{ "extended_l2", OPT_BOOL, "Extended L2 tables", "off" },
	{ "preallocation", OPT_STR,
	  "Preallocation mode (allowed values: off, metadata, falloc, full)",
	  NULL },
	{ "compression_type", OPT_STR,
	  "Compression method used for image cluster compression", "zlib" },
	{ "size", OPT_SIZE, "Virtual disk size", NULL },
	{ "compat", OPT_STR, "Compatibility level (v2 [0.10] or v3 [1.1])",
	  NULL },
	{ "backing_file", OPT_STR, "File name of a base image", NULL },
	{ "backing_fmt", OPT_STR, "Image format of the base image", NULL },
	{ "data_file", OPT_STR, "File name of an external data file", NULL },
	{ "data_file_raw", OPT_BOOL,
	  "The external data file must stay valid as a raw image", NULL },
	{ "lazy_refcounts", OPT_BOOL, "Postpone refcount updates", "off" },
	{ "refcount_bits", OPT_NUM, "Width of a reference count entry in bits",
	  "16" },
	{ "nocow", OPT_BOOL, "Turn off copy-on-write (valid only on btrfs)",
	  NULL },
	{ "extent_size_hint", OPT_SIZE,
	  "Extent size hint for the image file, 0 to disable", NULL },
	{ NULL, OPT_STR, NULL, NULL },
};

struct create_cfg {
	unsigned version;
	uint64_t cluster_size;
	unsigned cluster_bits;
	bool extended_l2;
	enum img_prealloc prealloc;
	bool zstd;
	uint64_t size;
	const char *backing_file;
	const char *backing_fmt;
	const char *data_file;
	bool data_file_raw;
	bool lazy_refcounts;
	uint64_t refcount_bits;
	bool nocow;
	uint64_t extent_size_hint;
};

/* The encryption of the new image, decided before the file is opened. */
struct create_crypto {
	uint32_t method;	/* QCOW2_CRYPT_* */
	uint8_t *hdr;		/* LUKS area (malloc'd), NULL for none/AES */
	size_t hdr_len;
};

/* The v3 message suffix qemu appends to every "needs compat 1.1" error. */
#define NEEDS_V3 "(use version=v3 or greater)"

/* Enumerated values (qemu's QAPI enums), in qemu's visiting order. */
static int parse_enums(struct optlist *opts, struct create_cfg *c,
		       struct qerr *e)
{
	const char *v = optlist_get(opts, "compat");

	if (!v || strcmp(v, "1.1") == 0 || strcmp(v, "v3") == 0)
		c->version = 3;
	else if (strcmp(v, "0.10") == 0 || strcmp(v, "v2") == 0)
		c->version = 2;
	else
		return qerr_set(e, -EINVAL,
				"Parameter 'version' does not accept value "
				"'%s'", v);
	v = optlist_get(opts, "preallocation");
	if (!v || strcmp(v, "off") == 0)
		c->prealloc = IMG_PREALLOC_OFF;
	else if (strcmp(v, "metadata") == 0)
		c->prealloc = IMG_PREALLOC_METADATA;
	else if (strcmp(v, "falloc") == 0)
		c->prealloc = IMG_PREALLOC_FALLOC;
	else if (strcmp(v, "full") == 0)
		c->prealloc = IMG_PREALLOC_FULL;
	else
		return qerr_set(e, -EINVAL,
				"Parameter 'preallocation' does not accept "
				"value '%s'", v);
	v = optlist_get(opts, "compression_type");
	if (v && strcmp(v, "zstd") == 0)
		c->zstd = true;
	else if (v && strcmp(v, "zlib") != 0)
		return qerr_set(e, -EINVAL,
				"Parameter 'compression-type' does not accept "
				"value '%s'", v);
	return 0;
}

/* Read every option into c; type errors first, as qemu parses them. */
static int parse_opts(struct optlist *opts, struct create_cfg *c,
		      struct qerr *e)
{
	int ret;

	c->cluster_size = 65536;
	c->refcount_bits = 16;
	ret = optlist_get_size(opts, "size", &c->size, e);
	if (ret == 0)
		ret = optlist_get_size(opts, "cluster_size", &c->cluster_size, e);
	if (ret == 0)
		ret = optlist_get_size(opts, "extent_size_hint",
				       &c->extent_size_hint, e);
	if (ret == 0)
		ret = optlist_get_num(opts, "refcount_bits", &c->refcount_bits, e);
	if (ret == 0)
		ret = optlist_get_bool(opts, "extended_l2", &c->extended_l2, e);
	if (ret == 0)
		ret = optlist_get_bool(opts, "lazy_refcounts",
				       &c->lazy_refcounts, e);
	if (ret == 0)
		ret = optlist_get_bool(opts, "data_file_raw", &c->data_file_raw,
				       e);
	if (ret == 0)
		ret = optlist_get_bool(opts, "nocow", &c->nocow, e);
	if (ret < 0)
		return ret;
	c->backing_file = optlist_get(opts, "backing_file");
	c->backing_fmt = optlist_get(opts, "backing_fmt");
	c->data_file = optlist_get(opts, "data_file");
	/* qemu silently rounds the virtual size up to a sector. */
	c->size = (c->size + 511) & ~511ULL;
	return parse_enums(opts, c, e);
}

static int einval(struct qerr *e, const char *msg)
{
	return qerr_set(e, -EINVAL, "%s", msg);
}

/* qemu's checks, in qemu's order, so the first complaint is the same. */
static int validate(struct create_cfg *c, struct qerr *e)
{
	uint64_t cs = c->cluster_size, l2_span, l1_size;

	if (c->extended_l2 && c->version < 3)
		return einval(e, "Extended L2 entries are only supported with "
			      "compatibility level 1.1 and above " NEEDS_V3);
	if (cs < 512 || cs > (2U << 20) || (cs & (cs - 1)))
		return einval(e, "Cluster size must be a power of two between "
			      "512 and 2048k");
	if (c->extended_l2 && cs < 16384)
		return einval(e, "Extended L2 entries are only supported with "
			      "cluster sizes of at least 16384 bytes");
	c->cluster_bits = (unsigned)__builtin_ctzll(cs);
	if (c->backing_file && c->prealloc != IMG_PREALLOC_OFF &&
	    !c->extended_l2)
		return einval(e, "Backing file and preallocation can only be "
			      "used at the same time if extended_l2 is on");
	if (c->backing_fmt && !c->backing_file)
		return einval(e, "Backing format cannot be used without backing "
			      "file");
	if (c->version < 3 && c->lazy_refcounts)
		return einval(e, "Lazy refcounts only supported with "
			      "compatibility level 1.1 and above " NEEDS_V3);
	if (c->refcount_bits > 64 || c->refcount_bits == 0 ||
	    (c->refcount_bits & (c->refcount_bits - 1)))
		return einval(e, "Refcount width must be a power of two and may "
			      "not exceed 64 bits");
	if (c->version < 3 && c->refcount_bits != 16)
		return einval(e, "Different refcount widths than 16 bits require "
			      "compatibility level 1.1 or above " NEEDS_V3);
	if (c->data_file_raw && !c->data_file)
		return einval(e, "data-file-raw requires data-file");
	if (c->data_file_raw && c->backing_file)
		return einval(e, "Backing file and data-file-raw cannot be used "
			      "at the same time");
	/* The data file must read as the disk, so map it 1:1 up front. */
	if (c->data_file_raw && c->prealloc == IMG_PREALLOC_OFF)
		c->prealloc = IMG_PREALLOC_METADATA;
	if (c->data_file && c->version < 3)
		return einval(e, "External data files are only supported with "
			      "compatibility level 1.1 and above " NEEDS_V3);
	if (c->zstd && c->version < 3)
		return einval(e, "Non-zlib compression type is only supported "
			      "with compatibility level 1.1 and above " NEEDS_V3);
	if (c->extent_size_hint > UINT32_MAX)
		return einval(e, "Extent size hint is too large");
	if (c->backing_file && strlen(c->backing_file) > QCOW2_MAX_BACKING_NAME)
		return qerr_set(e, -EINVAL, "Backing file name too long");
	/* qemu's L1 table cap decides the largest image. */
	l2_span = cs * (cs / (c->extended_l2 ? 16 : 8));
	l1_size = c->size / l2_span + (c->size % l2_span != 0);
	if (l1_size > QCOW2_MAX_L1_BYTES / 8)
		return qerr_set(e, -EFBIG, "The image size is too large for "
				"file format 'qcow2' (try using a larger "
				"cluster size)");
	return 0;
}

/* The header qemu writes for cfg c over layout r. */
static int build_meta(const struct create_cfg *c,
		      const struct create_crypto *cc,
		      const struct qcow2_layout_result *r,
		      struct qcow2_meta *m)
{
	struct qcow2_header *h = &m->h;

	memset(m, 0, sizeof(*m));
	h->magic = QCOW2_MAGIC;
	h->version = c->version;
	h->cluster_bits = c->cluster_bits;
	h->size = c->size;
	h->l1_size = r->l1_size;
	h->l1_table_offset = r->l1_table_offset;
	h->refcount_table_offset = r->refcount_table_offset;
	h->refcount_table_clusters = r->refcount_table_clusters;
	h->refcount_order = (uint32_t)__builtin_ctzll(c->refcount_bits);
	h->crypt_method = cc->method;
	/* The extension names the LUKS area; v2 images carry it too. */
	if (cc->hdr) {
		m->has_crypto_ext = true;
		m->crypto_offset = r->crypto_offset;
		m->crypto_length = cc->hdr_len;
	}
	if (c->version >= 3) {
		h->header_length = 112;
		if (c->data_file)
			h->incompatible_features |= QCOW2_INCOMPAT_DATA_FILE;
		if (c->zstd) {
			h->incompatible_features |= QCOW2_INCOMPAT_COMPRESSION;
			h->compression_type = QCOW2_COMPRESSION_ZSTD;
		}
		if (c->extended_l2)
			h->incompatible_features |= QCOW2_INCOMPAT_EXTL2;
		if (c->lazy_refcounts)
			h->compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
		if (c->data_file_raw)
			h->autoclear_features |= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
	}
	/* The casts drop const: serialisation only reads the strings. */
	m->backing_file = (char *)c->backing_file;
	m->backing_fmt = c->backing_file ? (char *)c->backing_fmt : NULL;
	m->data_file = (char *)c->data_file;
	/* qemu leaves the feature table out of small-cluster images. */
	if (c->version >= 3 && c->cluster_size > 4096)
		return qcow2_meta_set_default_features(m);
	return 0;
}

/* Lay the image out in the open files, then write cluster 0 last. */
static int write_image(const struct create_cfg *c,
		       const struct create_crypto *cc, struct qfile *f,
		       struct qfile *data, struct qerr *e)
{
	struct qcow2_layout_params p = {
		.cluster_bits = c->cluster_bits,
		.refcount_order = (unsigned)__builtin_ctzll(c->refcount_bits),
		.extended_l2 = c->extended_l2,
		.size = c->size,
		.prealloc = c->prealloc,
		.file = f,
		.data = data,
		.crypto_hdr = cc->hdr,
		.crypto_len = cc->hdr_len,
	};
	struct qcow2_layout_result r;
	struct qcow2_meta m;
	uint8_t *buf;
	int ret;

	ret = qcow2_layout_write(&p, &r, e);
	if (ret < 0)
		return ret;
	buf = malloc(c->cluster_size);
	if (!buf)
		return qerr_set(e, -ENOMEM, "out of memory");
	ret = build_meta(c, cc, &r, &m);
	if (ret < 0)
		ret = qerr_set(e, ret, "out of memory");
	if (ret == 0)
		ret = qcow2_meta_serialize(&m, buf, c->cluster_size, e);
	if (ret == 0 && data)
		ret = qfile_flush(data, e);
	/* Everything the header points at is on disk before the header. */
	if (ret == 0)
		ret = qfile_flush(f, e);
	if (ret == 0)
		ret = qfile_pwrite(f, buf, c->cluster_size, 0, e);
	if (ret == 0)
		ret = qfile_flush(f, e);
	free(m.features);
	free(buf);
	return ret;
}

/*
 * qemu's order: the options (crypto_create_opts_get), the secret, then the
 * volume.  The passphrase stays in the secret store (secmem); the LUKS
 * area holds only key material encrypted with it.
 */
static int setup_crypto(struct optlist *opts, struct create_crypto *cc,
			struct qerr *e)
{
	struct crypto_create_opts o;
	const uint8_t *pass;
	size_t passlen;
	int ret;

	ret = crypto_create_opts_get(opts, &o, e);
	if (ret < 0 || o.format == CRYPTO_FORMAT_NONE)
		return ret;
	ret = secret_lookup_utf8(o.key_secret, &pass, &passlen, e);
	if (ret < 0)
		return ret;
	if (o.format == CRYPTO_FORMAT_AES) {
		cc->method = QCOW2_CRYPT_AES;
		return 0;
	}
	ret = crypto_create_luks(&o.luks, pass, passlen, &cc->hdr,
				 &cc->hdr_len, NULL, e);
	if (ret == 0)
		cc->method = QCOW2_CRYPT_LUKS;
	return ret;
}

int qcow2_create(const char *filename, struct optlist *opts, struct qerr *e)
{
	struct create_cfg c = { 0 };
	struct create_crypto cc = { 0 };
	struct qfile *f = NULL, *data = NULL;
	int ret;

	ret = parse_opts(opts, &c, e);
	if (ret == 0)
		ret = validate(&c, e);
	if (ret < 0 || !filename)
		return ret;
	ret = setup_crypto(opts, &cc, e);
	if (ret == 0)
		ret = qfile_open(&f, filename, QFILE_CREATE, e);
	if (ret < 0) {
		free(cc.hdr);
		return ret;
	}
	if (c.nocow)
		raw_set_nocow(f);
	/* qemu opens the data file relative to the working directory too. */
	if (c.data_file)
		ret = qfile_open(&data, c.data_file, QFILE_CREATE, e);
	if (ret == 0)
		ret = write_image(&c, &cc, f, data, e);
	qfile_close(data);
	qfile_close(f);
	free(cc.hdr);
	if (ret < 0) {
		unlink(filename);
		if (data)
			unlink(c.data_file);
	}
	return ret;
}
