/*
 * secret.h: qemu's "secret" objects, the one way passphrases reach qimg:
 *
 *   --object secret,id=ID,data=STRING[,format=raw|base64]
 *   --object secret,id=ID,file=PATH[,format=raw|base64]
 *   ... [,keyid=ID2,iv=BASE64]   (data AES-256-CBC encrypted with secret
 *                                  ID2, a 32-byte key; PKCS#7 padding)
 *
 * The commands hand each --object argument to secret_object_add(); the
 * core later looks secrets up by id (encrypt.key-secret=ID).  The store is
 * process-wide, filled while parsing the command line (single-threaded),
 * read-only afterwards, and wiped by secret_store_clear() (also at exit).
 * Secret bytes live in secmem pages and never appear in messages.
 */
#ifndef QIMG_CORE_SECRET_H
#define QIMG_CORE_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Results of secret_object_add() other than 0 and errors. */
enum secret_help {
	SECRET_HELP_TYPES = 1,	/* "--object help": list the object types */
	SECRET_HELP_SECRET = 2,	/* "--object secret,help": its properties */
};

/*
 * Parse one --object argument (qemu's keyval syntax: "TYPE,key=value,...",
 * ",," for a literal comma, the last value of a key wins) and add the
 * secret it defines.  Returns 0, a SECRET_HELP_* value (print
 * secret_object_help() on stdout and exit 0), or a negative errno with
 * qemu-img's message in e ("Parameter 'id' is missing", "Either 'file' or
 * 'data' must be provided", "Base64 data contains invalid characters",
 * "attempt to add duplicate property 'ID' to object (type 'container')",
 * ...); the CLI prints "qimg: MESSAGE" and exits 1.
 */
int secret_object_add(const char *spec, struct qerr *e);

/* The text to print for a SECRET_HELP_* result (ends with a newline). */
const char *secret_object_help(enum secret_help what);

/* Add a secret directly (copied into secmem); for programs and tests. */
int secret_add(const char *id, const uint8_t *data, size_t len,
	       struct qerr *e);

/*
 * The bytes of secret id, borrowed until secret_store_clear().
 * Unknown id: -ENOENT "No secret with id 'ID'".
 */
int secret_lookup(const char *id, const uint8_t **data, size_t *len,
		  struct qerr *e);

/*
 * Like secret_lookup(), for passphrases: the data must be valid UTF-8
 * without NUL bytes, else -EINVAL "Data from secret ID is not valid UTF-8"
 * (qemu's rule, so a passphrase means the same bytes to both tools).
 */
int secret_lookup_utf8(const char *id, const uint8_t **data, size_t *len,
		       struct qerr *e);

/* Wipe and forget every secret. */
void secret_store_clear(void);

/*
 * Decode base64 as qemu does: the input may contain only A-Z a-z 0-9 + /
 * = and newlines ("Base64 data contains invalid characters"), no NUL
 * ("Base64 data contains embedded NUL characters"); newlines are skipped;
 * each group of four characters gives three bytes, one less for each '='
 * among its last two, and a trailing partial group is dropped (glib's
 * decoder, which qemu uses).  out must have room for inlen bytes.
 */
int secret_base64_decode(const char *in, size_t inlen, uint8_t *out,
			 size_t *outlen, struct qerr *e);

/* Strict UTF-8 (no overlongs, surrogates, or NUL; at most U+10FFFF). */
bool secret_utf8_valid(const uint8_t *p, size_t len);

#endif
