/*
 * opts.c: qemu-style option lists (see opts.h).  The list keeps every
 * key=value in order; lookups scan from the end so the last value wins.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/opts.h"
#include "util/size.h"

int optlist_set(struct optlist *l, const char *key, const char *val)
{
	struct opt *v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n].key = strdup(key);
	v[l->n].val = strdup(val);
	v[l->n].used = false;
	if (!v[l->n].key || !v[l->n].val) {
		free(v[l->n].key);
		free(v[l->n].val);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

/* Copy one ",,"-escaped token from *pp up to an unescaped stop char. */
static char *take_token(const char **pp, const char *stops)
{
	const char *p = *pp;
	char *out = malloc(strlen(p) + 1), *o = out;

	if (!out)
		return NULL;
	while (*p) {
		if (*p == ',' && p[1] == ',') {
			*o++ = ',';
			p += 2;
			continue;
		}
		if (strchr(stops, *p))
			break;
		*o++ = *p++;
	}
	*o = '\0';
	*pp = p;
	return out;
}

int optlist_parse(struct optlist *l, const char *text, struct qerr *e)
{
	const char *p = text;
	int ret = 0;

	while (*p && ret == 0) {
		char *key = take_token(&p, "=,"), *val = NULL;

		if (!key)
			return qerr_set(e, -ENOMEM, "out of memory");
		if (*p == '=') {
			p++;
			val = take_token(&p, ",");
			if (!val) {
				free(key);
				return qerr_set(e, -ENOMEM, "out of memory");
			}
		}
		if (*p == ',')
			p++;
		if (!val && (strcmp(key, "help") == 0 || strcmp(key, "?") == 0))
			l->help = true;
		else if (key[0] == '\0')
			ret = qerr_set(e, -EINVAL, "invalid option list '%s'",
				       text);
		else if (optlist_set(l, key, val ? val : "on") < 0)
			ret = qerr_set(e, -ENOMEM, "out of memory");
		free(key);
		free(val);
	}
	return ret;
}

const char *optlist_get(struct optlist *l, const char *key)
{
	const char *val = NULL;

	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].key, key) == 0) {
			l->v[i].used = true;
			val = l->v[i].val;
		}
	}
	return val;
}

bool optlist_has(const struct optlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return true;
	return false;
}

void optlist_del(struct optlist *l, const char *key)
{
	size_t j = 0;

	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].key, key) == 0) {
			free(l->v[i].key);
			free(l->v[i].val);
		} else {
			l->v[j++] = l->v[i];
		}
	}
	l->n = j;
}

void optlist_free(struct optlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].val);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->help = false;
}

int optlist_check(const struct optlist *l, const struct opt_desc *desc,
		  struct qerr *e)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct opt_desc *d = desc;

		while (d->name && strcmp(d->name, l->v[i].key) != 0)
			d++;
		if (!d->name)
			return qerr_set(e, -EINVAL, "Invalid parameter '%s'",
					l->v[i].key);
	}
	return 0;
}

int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true", "y", NULL };
	static const char *const no[] = { "off", "no", "false", "n", NULL };

	for (int i = 0; yes[i]; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int optlist_get_bool(struct optlist *l, const char *key, bool *out,
		     struct qerr *e)
{
	const char *s = optlist_get(l, key);

	if (s && parse_bool(s, out) < 0)
		return qerr_set(e, -EINVAL,
				"Parameter '%s' expects 'on' or 'off'", key);
	return 0;
}

int optlist_get_size(struct optlist *l, const char *key, uint64_t *out,
		     struct qerr *e)
{
	const char *s = optlist_get(l, key);

	if (s && size_parse(s, out, NULL) < 0)
		return qerr_set(e, -EINVAL,
				"Parameter '%s' expects a non-negative number "
				"below 2^63 with an optional suffix k, M, G, "
				"T, P or E",
				key);
	return 0;
}

int optlist_get_num(struct optlist *l, const char *key, uint64_t *out,
		    struct qerr *e)
{
	const char *s = optlist_get(l, key);
	char *end;

	if (!s)
		return 0;
	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return qerr_set(e, -EINVAL,
				"Parameter '%s' expects a number", key);
	return 0;
}
