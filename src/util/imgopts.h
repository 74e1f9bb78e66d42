/*
 * imgopts.h: qemu-img's --image-opts argument, as far as qimg uses it:
 *
 *   driver=qcow2,file.filename=PATH,encrypt.key-secret=ID
 *   [,file.driver=file][,encrypt.format=aes|luks]
 *   [,backing.encrypt.key-secret=ID][,backing.backing.encrypt...][,OTHER=...]
 *
 * The text is an option list (util/opts.h: ",," for a literal comma, the
 * last value of a key wins).  Known keys are taken out; the rest stay in
 * order for the command to use or refuse (image_opts_check).  Messages are
 * qemu-img 7.2's; the CLI prints them as "qimg: Could not open 'TEXT':
 * MESSAGE" like qemu-img.
 */
#ifndef QIMG_UTIL_IMGOPTS_H
#define QIMG_UTIL_IMGOPTS_H

#include "core/err.h"
#include "core/img.h"
#include "util/opts.h"

/* How deep backing.(backing.)*encrypt.* options may reach. */
#define IMAGE_OPTS_MAX_BACKING 8

/* The encryption options of one image of the chain. */
struct image_opts_keys {
	char *key_secret;	/* encrypt.key-secret, or NULL */
	char *encrypt_format;	/* encrypt.format, or NULL */
};

struct image_opts {
	char *driver;		/* "qcow2", "raw", or NULL: probe the file */
	char *filename;		/* file.filename, never NULL after parsing */
	/* keys[d]: "backing." d times, then encrypt.*; [0] the image's */
	struct image_opts_keys keys[IMAGE_OPTS_MAX_BACKING + 1];
	struct optlist rest;	/* every other option, in the given order */
};

/*
 * Is key one of the encryption options, (backing.)*encrypt.key-secret or
 * (backing.)*encrypt.format?  Returns its depth (how many "backing."), or
 * -1 when it is not (or is deeper than IMAGE_OPTS_MAX_BACKING); *is_format
 * tells which of the two it is.
 */
int image_opts_key_depth(const char *key, bool *is_format);

/*
 * Link chain[d].backing = &chain[d + 1] for every depth, so that chain[0]
 * describes an image and its whole backing chain (img_open_with).
 */
void image_opts_link(struct img_open_opts chain[IMAGE_OPTS_MAX_BACKING + 1]);

/*
 * Parse text into o (zeroed first; free with image_opts_free even on
 * failure).  Errors: "Must specify either driver or file", "A block
 * device must be specified for \"file\"", "Unknown driver 'X'",
 * "Cannot find device='X' nor node-name='X'" (a bare name or file=X).
 */
int image_opts_parse(const char *text, struct image_opts *o, struct qerr *e);

/*
 * Refuse what the image's actual format (fmt, after probing) does not
 * take: encrypt.* options on a non-qcow2 image ("Block format 'raw' does
 * not support the option 'encrypt.key-secret'"), unknown encrypt.* keys
 * ("Parameter 'X' is unexpected"), unknown file.* keys ("Block protocol
 * 'file' doesn't support the option 'X'") and anything left in o->rest
 * ("Block format 'qcow2' does not support the option 'X'").  Commands
 * remove the keys they handle from o->rest before calling this.
 */
int image_opts_check(const struct image_opts *o, const char *fmt,
		     struct qerr *e);

/*
 * The open options for the image o names and its backing chain, in
 * chain[] (linked through .backing; valid while o is): returns &chain[0].
 */
struct img_open_opts *image_opts_open_opts(
	const struct image_opts *o,
	struct img_open_opts chain[IMAGE_OPTS_MAX_BACKING + 1]);

void image_opts_free(struct image_opts *o);

#endif
