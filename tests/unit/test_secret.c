/*
 * test_secret.c: --object secret parsing and loading with qemu-img 7.2's
 * messages (observed), qemu's (glib's) base64 quirks, UTF-8 rules for
 * passphrases, keyid/iv decryption, the encrypt.* creation options and
 * the --image-opts parser.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/secret.h"
#include "tests/unit/unit.h"
#include "util/imgopts.h"

/* Add spec; expect ret and, for errors, message msg. */
static void check_add(const char *spec, int ret, const char *msg)
{
	struct qerr e = { 0 };
	int r = secret_object_add(spec, &e);

	CHECK_EQ_U64((unsigned long long)(long long)r,
		     (unsigned long long)(long long)ret);
	if (msg)
		CHECK_STR(e.msg, msg);
}

static void check_value(const char *id, const char *want, size_t wlen)
{
	const uint8_t *d = NULL;
	size_t len = 0;

	CHECK(secret_lookup(id, &d, &len, NULL) == 0);
	CHECK_EQ_U64(len, wlen);
	CHECK(d && memcmp(d, want, wlen) == 0);
}

static void check_b64(const char *in, const char *out, size_t outlen)
{
	uint8_t buf[64];
	size_t n = 99;

	CHECK(secret_base64_decode(in, strlen(in), buf, &n, NULL) == 0);
	CHECK_EQ_U64(n, outlen);
	CHECK(memcmp(buf, out, outlen) == 0);
}

static void test_base64(void)
{
	struct qerr e = { 0 };
	uint8_t buf[16];
	size_t n;

	check_b64("YWJjMTIz", "abc123", 6);
	check_b64("YWJj\nMTIz\n", "abc123", 6);
	check_b64("YWJjMTI=", "abc12", 5);
	check_b64("YWJjMQ==", "abc1", 4);
	/* glib drops a trailing partial group and extra padding. */
	check_b64("YWJ", "", 0);
	check_b64("YWJj=", "abc", 3);
	check_b64("YWJj====", "abc\0", 4);
	CHECK(secret_base64_decode("YW Jj", 5, buf, &n, &e) == -EINVAL);
	CHECK_STR(e.msg, "Base64 data contains invalid characters");
	qerr_clear(&e);
	CHECK(secret_base64_decode("YWJj\r\n", 6, buf, &n, &e) == -EINVAL);
	qerr_clear(&e);
	CHECK(secret_base64_decode("YWJj\0", 5, buf, &n, &e) == -EINVAL);
	CHECK_STR(e.msg, "Base64 data contains embedded NUL characters");
}

static void test_utf8(void)
{
	CHECK(secret_utf8_valid((const uint8_t *)"abc", 3));
	CHECK(secret_utf8_valid((const uint8_t *)"\xc3\xa9t\xc3\xa9", 5));
	CHECK(secret_utf8_valid((const uint8_t *)"\xf0\x9f\x94\x91", 4));
	CHECK(!secret_utf8_valid((const uint8_t *)"a\0b", 3));
	CHECK(!secret_utf8_valid((const uint8_t *)"\xff\xfe", 2));
	CHECK(!secret_utf8_valid((const uint8_t *)"\xc0\xaf", 2));
	CHECK(!secret_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));
	CHECK(!secret_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));
	CHECK(!secret_utf8_valid((const uint8_t *)"\xc3", 1));
}

static void test_objects(void)
{
	char path[] = "/tmp/qimg-test-secret.XXXXXX";
	char spec[128];
	int fd = mkstemp(path);
	const uint8_t *d;
	size_t len;
	struct qerr e = { 0 };

	secret_store_clear();
	check_add("secret,id=s,data=abc123", 0, NULL);
	check_value("s", "abc123", 6);
	check_add("secret,id=s,data=x", -EEXIST, "attempt to add duplicate "
		  "property 's' to object (type 'container')");
	check_add("secret,id=b,data=YWJj,format=base64", 0, NULL);
	check_value("b", "abc", 3);
	check_add("secret,id=c,data=a,,b,,,format=raw", 0, NULL);
	check_value("c", "a,b,", 4);
	check_add("qom-type=secret,id=d,data=1,data=2", 0, NULL);
	check_value("d", "2", 1);
	check_add("help", SECRET_HELP_TYPES, NULL);
	check_add("secret,id=x,help", SECRET_HELP_SECRET, NULL);
	CHECK(strncmp(secret_object_help(SECRET_HELP_SECRET),
		      "secret options:\n  data=<string>\n", 32) == 0);
	check_add("id=s2,data=a", -EINVAL, "Parameter 'qom-type' is missing");
	check_add("foo,id=s2", -EINVAL,
		  "Parameter 'qom-type' does not accept value 'foo'");
	check_add("throttle-group,id=s2", -ENOTSUP,
		  "object type 'throttle-group' is not supported");
	check_add("secret,data=a", -EINVAL, "Parameter 'id' is missing");
	check_add("secret,id=1s,data=a", -EINVAL,
		  "Parameter 'id' expects an identifier\nIdentifiers consist "
		  "of letters, digits, '-', '.', '_', starting with a letter.");
	check_add("secret,id=s2", -EINVAL,
		  "Either 'file' or 'data' must be provided");
	check_add("secret,id=s2,data=a,file=b", -EINVAL,
		  "'file' and 'data' are mutually exclusive");
	check_add("secret,id=s2,data=a,format=hex", -EINVAL,
		  "Parameter 'format' does not accept value 'hex'");
	check_add("secret,id=s2,data=a,bogus=1", -EINVAL,
		  "Parameter 'bogus' is unexpected");
	check_add("secret,id=s2,data.x=a", -EINVAL,
		  "Parameters 'data.*' are unexpected");
	check_add("secret,id=s2,data", -EINVAL,
		  "Expected '=' after parameter 'data'");
	check_add("secret,id=s2,data=@@,format=base64", -EINVAL,
		  "Base64 data contains invalid characters");
	check_add("secret,id=s2,file=/nonexistent/x", -ENOENT,
		  "Unable to read /nonexistent/x: Failed to open file "
		  "\u201c/nonexistent/x\u201d: No such file or directory");
	check_add("secret,id=s2,file=/", -EISDIR,
		  "Unable to read /: Error reading file \u201c/\u201d: Is a "
		  "directory");
	/* A file is taken as it is, trailing newline included. */
	CHECK(fd >= 0 && write(fd, "pass\n", 5) == 5);
	close(fd);
	snprintf(spec, sizeof(spec), "secret,id=f,file=%s", path);
	check_add(spec, 0, NULL);
	check_value("f", "pass\n", 5);
	unlink(path);
	/* Passphrases are UTF-8 without NUL, as qemu requires. */
	check_add("secret,id=z,data=AGE=,format=base64", 0, NULL);
	CHECK(secret_lookup_utf8("z", &d, &len, &e) == -EINVAL);
	CHECK_STR(e.msg, "Data from secret z is not valid UTF-8");
	qerr_clear(&e);
	CHECK(secret_lookup_utf8("nope", &d, &len, &e) == -ENOENT);
	CHECK_STR(e.msg, "No secret with id 'nope'");
}

/*
 * keyid/iv: "abc" under the 32-byte key 00..1f, IV 00..0f, PKCS#7 padded
 * (made with: openssl enc -aes-256-cbc -K 0001..1f -iv 0001..0f).
 */
static void test_keyid(void)
{
	static const uint8_t key[32] = { 0,  1,  2,  3,  4,  5,  6,  7,
					 8,  9,  10, 11, 12, 13, 14, 15,
					 16, 17, 18, 19, 20, 21, 22, 23,
					 24, 25, 26, 27, 28, 29, 30, 31 };

	secret_store_clear();
	CHECK(secret_add("k", key, sizeof(key), NULL) == 0);
	check_add("secret,id=s,keyid=k,format=base64,iv=AAECAwQFBgcICQoLDA0ODw"
		  "==,data=6YtQ2v/uDI5Se7p4Weg3Ew==", 0, NULL);
	check_value("s", "abc", 3);
	check_add("secret,id=t,keyid=k,format=base64,data=6YtQ2v/uDI5Se7p4Weg3"
		  "Ew==", -EINVAL, "IV is required to decrypt secret");
	check_add("secret,id=t,keyid=k,iv=YWJj,data=x", -EINVAL,
		  "IV should be 16 bytes in length not 3");
	check_add("secret,id=t,keyid=nokey,iv=YWJj,data=x", -ENOENT,
		  "No secret with id 'nokey'");
	check_add("secret,id=t,keyid=t,data=x", -EINVAL,
		  "Secret with id 't' has no data");
	check_add("secret,id=t,keyid=s,data=x", -EINVAL,
		  "Key should be 32 bytes in length");
	check_add("secret,id=t,keyid=k,iv=AAECAwQFBgcICQoLDA0ODw==,format="
		  "base64,data=YWJj", -EINVAL,
		  "Length 3 must be a multiple of block size 16");
	secret_store_clear();
	CHECK(secret_lookup("k", &(const uint8_t *){ NULL }, &(size_t){ 0 },
			    NULL) == -ENOENT);
}

static void check_opts(const char *text, int ret, const char *msg,
		       enum crypto_format fmt)
{
	struct optlist l = { 0 };
	struct crypto_create_opts o;
	struct qerr e = { 0 };

	CHECK(optlist_parse(&l, text, NULL) == 0);
	CHECK_EQ_U64((unsigned long long)(long long)crypto_create_opts_get(
			     &l, &o, &e),
		     (unsigned long long)(long long)ret);
	if (msg)
		CHECK_STR(e.msg, msg);
	if (ret == 0)
		CHECK(o.format == fmt);
	optlist_free(&l);
}

static void test_create_opts(void)
{
	struct optlist l = { 0 };
	struct crypto_create_opts o;

	check_opts("size=1M", 0, NULL, CRYPTO_FORMAT_NONE);
	check_opts("encrypt.format=aes,encrypt.key-secret=s", 0, NULL,
		   CRYPTO_FORMAT_AES);
	check_opts("encryption=on,encrypt.key-secret=s", 0, NULL,
		   CRYPTO_FORMAT_AES);
	check_opts("encryption=off", 0, NULL, CRYPTO_FORMAT_NONE);
	check_opts("encryption=off,encrypt.format=luks,encrypt.key-secret=s", 0,
		   NULL, CRYPTO_FORMAT_LUKS);
	check_opts("encryption=on,encrypt.format=luks", -EINVAL,
		   "'encrypt.format' and its alias 'encryption' can't be used "
		   "at the same time", 0);
	check_opts("encryption=yes", -EINVAL,
		   "Parameter 'format' does not accept value 'yes'", 0);
	check_opts("encryption=foo", -EINVAL,
		   "Parameter 'encryption' expects 'on' or 'off'", 0);
	check_opts("encrypt.format=LUKS", -EINVAL,
		   "Parameter 'format' does not accept value 'LUKS'", 0);
	check_opts("encrypt.key-secret=s", -EINVAL,
		   "Parameter 'encrypt.format' is missing", 0);
	check_opts("encrypt.cipher-alg=aes-128", -EINVAL,
		   "Parameter 'encrypt.format' is missing", 0);
	check_opts("encrypt.format=aes,encrypt.iter-time=10", -EINVAL,
		   "Parameter 'encrypt.iter-time' is unexpected", 0);
	check_opts("encrypt.format=luks", -EINVAL,
		   "Parameter 'encrypt.key-secret' is required for cipher", 0);
	check_opts("encrypt.format=luks,encrypt.hash-alg=foo,"
		   "encrypt.cipher-alg=bar", -EINVAL,
		   "Parameter 'cipher-alg' does not accept value 'bar'", 0);
	check_opts("encrypt.format=luks,encrypt.iter-time=abc", -EINVAL,
		   "Parameter 'encrypt.iter-time' expects a number", 0);
	optlist_parse(&l, "encrypt.format=luks,encrypt.key-secret=sec0,"
		      "encrypt.cipher-alg=twofish-128,encrypt.cipher-mode=cbc,"
		      "encrypt.ivgen-alg=essiv,encrypt.hash-alg=sha512,"
		      "encrypt.iter-time=10", NULL);
	CHECK(crypto_create_opts_get(&l, &o, NULL) == 0);
	CHECK_STR(o.key_secret, "sec0");
	CHECK(o.luks.cipher == CRYPTO_CIPHER_TWOFISH_128 &&
	      o.luks.mode == CRYPTO_MODE_CBC &&
	      o.luks.ivgen == CRYPTO_IVGEN_ESSIV && !o.luks.has_ivgen_hash &&
	      o.luks.hash == CRYPTO_HASH_SHA512 && o.luks.iter_time_ms == 10);
	for (size_t i = 0; i < l.n; i++)
		CHECK(l.v[i].used);
	optlist_free(&l);
}

static void check_imgopts(const char *text, const char *msg)
{
	struct image_opts o;
	struct qerr e = { 0 };

	CHECK(image_opts_parse(text, &o, &e) < 0);
	CHECK_STR(e.msg, msg);
	image_opts_free(&o);
}

static void test_imgopts(void)
{
	struct image_opts o;
	struct qerr e = { 0 };

	CHECK(image_opts_parse("driver=qcow2,file.filename=a,,b.qcow2,"
			       "encrypt.key-secret=s,encrypt.key-secret=t,"
			       "file.driver=file,encrypt.format=luks,"
			       "l2-cache-size=1M", &o, NULL) == 0);
	CHECK_STR(o.driver, "qcow2");
	CHECK_STR(o.filename, "a,b.qcow2");
	CHECK_STR(o.keys[0].key_secret, "t");
	CHECK_STR(o.keys[0].encrypt_format, "luks");
	CHECK_EQ_U64(o.rest.n, 1);
	CHECK(image_opts_check(&o, "qcow2", &e) == -EINVAL);
	CHECK_STR(e.msg, "Block format 'qcow2' does not support the option "
			 "'l2-cache-size'");
	qerr_clear(&e);
	CHECK(image_opts_check(&o, "raw", &e) == -EINVAL);
	CHECK_STR(e.msg, "Block format 'raw' does not support the option "
			 "'encrypt.key-secret'");
	image_opts_free(&o);
	/* backing.* keys by depth, the last value of each winning */
	CHECK(image_opts_parse("file.filename=x,backing.backing.encrypt."
			       "key-secret=b,backing.encrypt.format=aes,"
			       "backing.backing.encrypt.key-secret=c", &o,
			       NULL) == 0);
	CHECK(o.keys[0].key_secret == NULL);
	CHECK_STR(o.keys[1].encrypt_format, "aes");
	CHECK_STR(o.keys[2].key_secret, "c");
	CHECK_EQ_U64(o.rest.n, 0);
	image_opts_free(&o);
	CHECK(image_opts_parse("file.filename=x,encrypt.foo=1", &o, NULL) == 0);
	CHECK(o.driver == NULL);
	qerr_clear(&e);
	CHECK(image_opts_check(&o, "qcow2", &e) == -EINVAL);
	CHECK_STR(e.msg, "Parameter 'foo' is unexpected");
	image_opts_free(&o);
	check_imgopts("filename=x", "Must specify either driver or file");
	check_imgopts("driver=qcow2,encrypt.key-secret=s",
		      "A block device must be specified for \"file\"");
	check_imgopts("driver=foo,file.filename=x", "Unknown driver 'foo'");
	check_imgopts("driver=qcow2,file.driver=nbd,file.filename=x",
		      "Unknown driver 'nbd'");
	check_imgopts("driver=qcow2,file=x",
		      "Cannot find device='x' nor node-name='x'");
	check_imgopts("x.qcow2", "Cannot find device='x.qcow2' nor "
				 "node-name='x.qcow2'");
}

void test_secret(void)
{
	test_base64();
	test_utf8();
	test_objects();
	test_keyid();
	test_create_opts();
	test_imgopts();
	secret_store_clear();
}
