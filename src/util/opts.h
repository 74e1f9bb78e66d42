/*
 * opts.h: qemu-style "-o key=value,key=value" option lists.
 *
 * Several -o arguments accumulate into one list; a later value for the same
 * key wins, as in qemu-img.  ",," inside a value stands for a literal comma.
 * A bare "key" means key=on.  "help" or "?" anywhere asks for the option
 * help.  Typed getters validate a value and set qemu-like messages.
 */
#ifndef QIMG_UTIL_OPTS_H
#define QIMG_UTIL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct opt {
	char *key;
	char *val;
	bool used;		/* a driver looked at it (for "Invalid parameter") */
};

struct optlist {
	struct opt *v;
	size_t n;
	bool help;		/* "help" or "?" was given */
};

enum opt_type { OPT_STR, OPT_SIZE, OPT_BOOL, OPT_NUM };

/* What a driver accepts, for -o help and for refusing unknown keys. */
struct opt_desc {
	const char *name;
	enum opt_type type;
	const char *help;
	const char *def;	/* default shown in "Formatting ...", or NULL */
};

/* Parse text and append its options to l.  -EINVAL on malformed text. */
int optlist_parse(struct optlist *l, const char *text, struct qerr *e);
/* Append or override one option. */
int optlist_set(struct optlist *l, const char *key, const char *val);
/* The last value given for key (marking it used), or NULL. */
const char *optlist_get(struct optlist *l, const char *key);
/* Was the key given at all? (does not mark it used) */
bool optlist_has(const struct optlist *l, const char *key);
/* Remove every entry for key. */
void optlist_del(struct optlist *l, const char *key);
void optlist_free(struct optlist *l);

/*
 * Check every key against desc (NULL-name terminated): the first key not
 * listed gives -EINVAL "Invalid parameter 'KEY'".
 */
int optlist_check(const struct optlist *l, const struct opt_desc *desc,
		  struct qerr *e);

/* Typed getters: leave *out untouched when the key is absent. */
int optlist_get_bool(struct optlist *l, const char *key, bool *out,
		     struct qerr *e);
int optlist_get_size(struct optlist *l, const char *key, uint64_t *out,
		     struct qerr *e);
int optlist_get_num(struct optlist *l, const char *key, uint64_t *out,
		    struct qerr *e);

/* Parse on/off/true/false/yes/no; -EINVAL otherwise. */
int parse_bool(const char *s, bool *out);

#endif
