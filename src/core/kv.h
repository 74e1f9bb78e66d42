/*
 * kv.h: a small ordered tree of named values.
 *
 * Format drivers describe their format-specific facts (qemu-img's "Format
 * specific information") as a kv tree; the CLI renders the same tree as
 * qemu-img's indented human text or as JSON, so both outputs always agree.
 * Children keep insertion order, which is the order qemu-img prints.
 *
 * Allocation failure is sticky rather than checked at every call: a failed
 * add marks the root (kv_ok() turns false) and later adds to a NULL parent
 * are no-ops, so building code stays linear and the caller checks once.
 */
#ifndef QIMG_CORE_KV_H
#define QIMG_CORE_KV_H

#include <stdbool.h>
#include <stdint.h>

enum kv_type { KV_STR, KV_INT, KV_BOOL, KV_OBJ, KV_ARR };

struct kv {
	enum kv_type type;
	char *key;		/* NULL for array elements and the root */
	union {
		char *s;
		int64_t i;
		bool b;
	} v;
	struct kv *child;	/* first child (KV_OBJ, KV_ARR) */
	struct kv *last;	/* last child, for O(1) append */
	struct kv *next;	/* next sibling */
	struct kv *root;	/* the root, which carries the sticky failure */
	bool failed;		/* root only: an allocation failed */
};

/* A new empty object or array root; NULL on allocation failure. */
struct kv *kv_new_obj(void);
struct kv *kv_new_arr(void);
/* Add a child to an object (key required) or array (key NULL). */
struct kv *kv_add_str(struct kv *parent, const char *key, const char *s);
struct kv *kv_add_int(struct kv *parent, const char *key, int64_t i);
struct kv *kv_add_bool(struct kv *parent, const char *key, bool b);
struct kv *kv_add_obj(struct kv *parent, const char *key);
struct kv *kv_add_arr(struct kv *parent, const char *key);
/* The child with this key, or NULL. */
const struct kv *kv_get(const struct kv *obj, const char *key);
/* False if any allocation in the tree failed. */
bool kv_ok(const struct kv *root);
void kv_free(struct kv *root);

#endif
