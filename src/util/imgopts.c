/*
 * imgopts.c: parsing qemu-img's --image-opts text (see imgopts.h).  The
 * option-list syntax is util/opts.c's; this file only gives the keys
 * their --image-opts meaning and qemu-img's error messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/imgopts.h"

/* Move the last value of key out of l (removing every entry for it). */
static int take(struct optlist *l, const char *key, char **out,
		struct qerr *e)
{
	const char *v = optlist_get(l, key);

	if (!v)
		return 0;
	free(*out);
	*out = strdup(v);
	optlist_del(l, key);
	return *out ? 0 : qerr_set(e, -ENOMEM, "out of memory");
}

/* A first item without '=' names the "file" child, as in qemu. */
static const char *implied_file(const char *text, size_t *len)
{
	size_t n = strcspn(text, ",=");

	if (text[n] == '=' || n == 0)
		return NULL;
	*len = n;
	return text;
}

/* backing.(backing.)*encrypt.{key-secret,format} into o->backing[]. */
static int take_backing_keys(struct image_opts *o, struct qerr *e)
{
	char key[sizeof("backing.") * IMAGE_OPTS_MAX_BACKING + 32];
	int ret = 0;

	for (int d = 0; ret == 0 && d < IMAGE_OPTS_MAX_BACKING; d++) {
		size_t n = 0;

		for (int i = 0; i <= d; i++)
			n += (size_t)snprintf(key + n, sizeof(key) - n,
					      "backing.");
		snprintf(key + n, sizeof(key) - n, "encrypt.key-secret");
		ret = take(&o->rest, key, &o->backing[d].key_secret, e);
		snprintf(key + n, sizeof(key) - n, "encrypt.format");
		if (ret == 0)
			ret = take(&o->rest, key, &o->backing[d].encrypt_format,
				   e);
	}
	return ret;
}

int image_opts_parse(const char *text, struct image_opts *o, struct qerr *e)
{
	const char *name;
	char *file = NULL, *file_driver = NULL;
	size_t n;
	int ret;

	memset(o, 0, sizeof(*o));
	name = implied_file(text, &n);
	if (name)
		return qerr_set(e, -ENOENT, "Cannot find device='%.*s' nor "
				"node-name='%.*s'", (int)n, name, (int)n, name);
	ret = optlist_parse(&o->rest, text, e);
	if (ret == 0)
		ret = take(&o->rest, "driver", &o->driver, e);
	if (ret == 0)
		ret = take(&o->rest, "file.filename", &o->filename, e);
	if (ret == 0)
		ret = take(&o->rest, "file.driver", &file_driver, e);
	if (ret == 0)
		ret = take(&o->rest, "file", &file, e);
	if (ret == 0)
		ret = take(&o->rest, "encrypt.key-secret", &o->key_secret, e);
	if (ret == 0)
		ret = take(&o->rest, "encrypt.format", &o->encrypt_format, e);
	if (ret == 0)
		ret = take_backing_keys(o, e);
	if (ret < 0)
		goto out;
	if (file)
		ret = qerr_set(e, -ENOENT, "Cannot find device='%s' nor "
			       "node-name='%s'", file, file);
	else if (!o->driver && !o->filename)
		ret = qerr_set(e, -EINVAL, "Must specify either driver or file");
	else if (o->driver && strcmp(o->driver, "qcow2") != 0 &&
		 strcmp(o->driver, "raw") != 0)
		ret = qerr_set(e, -EINVAL, "Unknown driver '%s'", o->driver);
	else if (file_driver && strcmp(file_driver, "file") != 0)
		ret = qerr_set(e, -EINVAL, "Unknown driver '%s'", file_driver);
	else if (!o->filename)
		ret = qerr_set(e, -EINVAL,
			       "A block device must be specified for \"file\"");
out:
	free(file);
	free(file_driver);
	return ret;
}

int image_opts_check(const struct image_opts *o, const char *fmt,
		     struct qerr *e)
{
	const char *enc = o->key_secret ? "encrypt.key-secret"
			  : o->encrypt_format ? "encrypt.format" : NULL;

	if (enc && strcmp(fmt, "qcow2") != 0)
		return qerr_set(e, -EINVAL, "Block format '%s' does not support "
				"the option '%s'", fmt, enc);
	for (size_t i = 0; i < o->rest.n; i++) {
		const char *k = o->rest.v[i].key;

		if (strncmp(k, "encrypt.", 8) == 0 && strcmp(fmt, "qcow2") == 0)
			return qerr_set(e, -EINVAL,
					"Parameter '%s' is unexpected", k + 8);
		if (strncmp(k, "file.", 5) == 0)
			return qerr_set(e, -EINVAL, "Block protocol 'file' "
					"doesn't support the option '%s'", k + 5);
		return qerr_set(e, -EINVAL, "Block format '%s' does not support "
				"the option '%s'", fmt, k);
	}
	return 0;
}

struct img_open_opts *image_opts_open_opts(
	const struct image_opts *o,
	struct img_open_opts chain[IMAGE_OPTS_MAX_BACKING + 1])
{
	memset(chain, 0, sizeof(*chain) * (IMAGE_OPTS_MAX_BACKING + 1));
	chain[0].key_secret = o->key_secret;
	chain[0].encrypt_format = o->encrypt_format;
	for (int d = 0; d < IMAGE_OPTS_MAX_BACKING; d++) {
		chain[d + 1].key_secret = o->backing[d].key_secret;
		chain[d + 1].encrypt_format = o->backing[d].encrypt_format;
		chain[d].backing = &chain[d + 1];
	}
	return &chain[0];
}

void image_opts_free(struct image_opts *o)
{
	free(o->driver);
	free(o->filename);
	free(o->key_secret);
	free(o->encrypt_format);
	for (int d = 0; d < IMAGE_OPTS_MAX_BACKING; d++) {
		free(o->backing[d].key_secret);
		free(o->backing[d].encrypt_format);
	}
	optlist_free(&o->rest);
	memset(o, 0, sizeof(*o));
}
