/*
 * imgopts.c: parsing qemu-img's --image-opts text (see imgopts.h).  The
 * option-list syntax is util/opts.c's; this file only gives the keys
 * their --image-opts meaning and qemu-img's error messages.
 */
#include <errno.h>
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

int image_opts_key_depth(const char *key, bool *is_format)
{
	int d = 0;

	while (strncmp(key, "backing.", 8) == 0) {
		key += 8;
		if (++d > IMAGE_OPTS_MAX_BACKING)
			return -1;
	}
	*is_format = strcmp(key, "encrypt.format") == 0;
	return *is_format || strcmp(key, "encrypt.key-secret") == 0 ? d : -1;
}

/* Every (backing.)*encrypt.* option out of o->rest into o->keys[]. */
static int take_keys(struct image_opts *o, struct qerr *e)
{
	size_t i = 0;

	while (i < o->rest.n) {
		char *key = o->rest.v[i].key;
		bool fmt;
		int d = image_opts_key_depth(key, &fmt), ret;

		if (d < 0) {
			i++;
			continue;
		}
		/* take() removes every entry of the key, this one too. */
		key = strdup(key);
		ret = key ? take(&o->rest, key,
				 fmt ? &o->keys[d].encrypt_format
				     : &o->keys[d].key_secret, e)
			  : qerr_set(e, -ENOMEM, "out of memory");
		free(key);
		if (ret < 0)
			return ret;
	}
	return 0;
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
		ret = take_keys(o, e);
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
	const char *enc = o->keys[0].key_secret ? "encrypt.key-secret"
			  : o->keys[0].encrypt_format ? "encrypt.format" : NULL;

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

void image_opts_link(struct img_open_opts chain[IMAGE_OPTS_MAX_BACKING + 1])
{
	for (int d = 0; d < IMAGE_OPTS_MAX_BACKING; d++)
		chain[d].backing = &chain[d + 1];
	chain[IMAGE_OPTS_MAX_BACKING].backing = NULL;
}

struct img_open_opts *image_opts_open_opts(
	const struct image_opts *o,
	struct img_open_opts chain[IMAGE_OPTS_MAX_BACKING + 1])
{
	memset(chain, 0, sizeof(*chain) * (IMAGE_OPTS_MAX_BACKING + 1));
	for (int d = 0; d <= IMAGE_OPTS_MAX_BACKING; d++) {
		chain[d].key_secret = o->keys[d].key_secret;
		chain[d].encrypt_format = o->keys[d].encrypt_format;
	}
	image_opts_link(chain);
	return &chain[0];
}

void image_opts_free(struct image_opts *o)
{
	free(o->driver);
	free(o->filename);
	for (int d = 0; d <= IMAGE_OPTS_MAX_BACKING; d++) {
		free(o->keys[d].key_secret);
		free(o->keys[d].encrypt_format);
	}
	optlist_free(&o->rest);
	memset(o, 0, sizeof(*o));
}
