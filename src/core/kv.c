/*
 * kv.c: the ordered value tree of kv.h.  Nodes are owned by their parent;
 * kv_free() on the root releases everything.
 */
#include <stdlib.h>
#include <string.h>

#include "core/kv.h"

static struct kv *kv_new(enum kv_type type)
{
	struct kv *n = calloc(1, sizeof(*n));

	if (n) {
		n->type = type;
		n->root = n;
	}
	return n;
}

struct kv *kv_new_obj(void)
{
	return kv_new(KV_OBJ);
}

struct kv *kv_new_arr(void)
{
	return kv_new(KV_ARR);
}

static struct kv *kv_add(struct kv *parent, const char *key,
			 enum kv_type type)
{
	struct kv *n;

	if (!parent)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n || (key && !(n->key = strdup(key)))) {
		free(n);
		parent->root->failed = true;
		return NULL;
	}
	n->type = type;
	n->root = parent->root;
	if (parent->last)
		parent->last->next = n;
	else
		parent->child = n;
	parent->last = n;
	return n;
}

struct kv *kv_add_str(struct kv *parent, const char *key, const char *s)
{
	struct kv *n = kv_add(parent, key, KV_STR);

	if (n && !(n->v.s = strdup(s ? s : ""))) {
		n->root->failed = true;
		return NULL;
	}
	return n;
}

struct kv *kv_add_int(struct kv *parent, const char *key, int64_t i)
{
	struct kv *n = kv_add(parent, key, KV_INT);

	if (n)
		n->v.i = i;
	return n;
}

struct kv *kv_add_bool(struct kv *parent, const char *key, bool b)
{
	struct kv *n = kv_add(parent, key, KV_BOOL);

	if (n)
		n->v.b = b;
	return n;
}

struct kv *kv_add_obj(struct kv *parent, const char *key)
{
	return kv_add(parent, key, KV_OBJ);
}

struct kv *kv_add_arr(struct kv *parent, const char *key)
{
	return kv_add(parent, key, KV_ARR);
}

const struct kv *kv_get(const struct kv *obj, const char *key)
{
	const struct kv *c;

	for (c = obj ? obj->child : NULL; c; c = c->next)
		if (c->key && strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

bool kv_ok(const struct kv *root)
{
	return root && !root->failed;
}

void kv_free(struct kv *n)
{
	while (n) {
		struct kv *next = n->next;
		kv_free(n->child);
		free(n->key);
		if (n->type == KV_STR)
			free(n->v.s);
		free(n);
		n = next;
	}
}
