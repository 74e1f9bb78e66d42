/*
 * qcow2_cache.c: bounded write-back caches of cluster-sized metadata
 * tables (L2 tables, refcount blocks).
 *
 * Not part of the on-disk format: this is how the engine keeps metadata
 * writes few and ordered.  A cache holds at most `count` tables, so memory
 * is bounded by count * cluster_size whatever the image size.  Tables are
 * pinned between get and put; eviction picks the least recently used
 * unpinned table and writes it back first when dirty.
 *
 * Ordering: a cache may depend on another cache (it must not write any
 * table before the other one has been written and synced: the L2 cache on
 * the refcount cache after allocations, the refcount cache on the L2 cache
 * after frees) and on a sync of the files (copy-on-write data before the
 * L2 entry).  Setting a dependency first flushes whatever would close a
 * cycle, so dependencies never loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/qcow2_engine.h"

struct cache_slot {
	uint64_t off;		/* host offset of the table, 0 when empty */
	uint8_t *data;		/* cluster_size bytes, allocated on first use */
	uint64_t lru;
	int pin;
	bool dirty;
};

struct qcow2_cache {
	struct qcow2_engine *eng;
	const char *what;
	size_t count;
	struct cache_slot *slots;
	struct qcow2_cache *depends_on;
	bool depends_on_flush;
	uint64_t clock;
};

struct qcow2_cache *qcow2_cache_new(struct qcow2_engine *eng, size_t count,
				    const char *what)
{
	struct qcow2_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->slots = calloc(count, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return NULL;
	}
	c->eng = eng;
	c->count = count;
	c->what = what;
	return c;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->count; i++)
		free(c->slots[i].data);
	free(c->slots);
	free(c);
}

size_t qcow2_cache_bytes(const struct qcow2_cache *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->count; i++)
		if (c->slots[i].data)
			n += c->eng->cluster_size;
	return n;
}

bool qcow2_cache_has_dirty(const struct qcow2_cache *c)
{
	for (size_t i = 0; i < c->count; i++)
		if (c->slots[i].dirty)
			return true;
	return false;
}

int qcow2_cache_flush_deps(struct qcow2_cache *c)
{
	int ret = 0;

	if (c->depends_on) {
		struct qcow2_cache *dep = c->depends_on;

		ret = qcow2_cache_flush(dep);
		if (ret < 0)
			return ret;
		c->depends_on = NULL;
	}
	if (c->depends_on_flush) {
		ret = qcow2_sync(c->eng);
		if (ret < 0)
			return ret;
		c->depends_on_flush = false;
	}
	return 0;
}

static int slot_write(struct qcow2_cache *c, struct cache_slot *s)
{
	int ret = qcow2_cache_flush_deps(c);

	if (ret == 0)
		ret = qcow2_pwrite(c->eng, c->eng->file, s->data,
				   c->eng->cluster_size, s->off);
	if (ret == 0)
		s->dirty = false;
	return ret;
}

static struct cache_slot *slot_by_data(struct qcow2_cache *c, const void *p)
{
	for (size_t i = 0; i < c->count; i++)
		if (c->slots[i].data == p && c->slots[i].off)
			return &c->slots[i];
	return NULL;
}

/* A slot for off: the cached one, or a free or evicted one (loaded=0). */
static int slot_for(struct qcow2_cache *c, uint64_t off,
		    struct cache_slot **out, bool *hit)
{
	struct cache_slot *victim = NULL;
	int ret;

	for (size_t i = 0; i < c->count; i++) {
		struct cache_slot *s = &c->slots[i];

		if (s->off == off) {
			*out = s;
			*hit = true;
			return 0;
		}
		if (s->pin)
			continue;
		if (!victim || (victim->off && (!s->off || s->lru < victim->lru)))
			victim = s;
	}
	if (!victim)
		return qerr_set(c->eng->err, -ENOMEM,
				"%s cache is full of pinned tables", c->what);
	if (victim->dirty) {
		ret = slot_write(c, victim);
		if (ret < 0)
			return ret;
	}
	if (!victim->data) {
		victim->data = malloc(c->eng->cluster_size);
		if (!victim->data)
			return qerr_set(c->eng->err, -ENOMEM, "out of memory");
	}
	victim->off = 0;
	*out = victim;
	*hit = false;
	return 0;
}

static int cache_get(struct qcow2_cache *c, uint64_t off, void **table,
		     bool read)
{
	struct cache_slot *s = NULL;
	bool hit = false;
	int ret = slot_for(c, off, &s, &hit);

	if (ret < 0)
		return ret;
	if (!hit) {
		if (read)
			ret = qfile_pread_zero(c->eng->file, s->data,
					       c->eng->cluster_size, off,
					       c->eng->err);
		else
			memset(s->data, 0, c->eng->cluster_size);
		if (ret < 0)
			return ret;
		s->off = off;
		s->dirty = false;
	}
	s->pin++;
	s->lru = ++c->clock;
	*table = s->data;
	return 0;
}

int qcow2_cache_get(struct qcow2_cache *c, uint64_t off, void **table)
{
	return cache_get(c, off, table, true);
}

int qcow2_cache_get_empty(struct qcow2_cache *c, uint64_t off, void **table)
{
	int ret = cache_get(c, off, table, false);

	if (ret == 0)
		memset(*table, 0, c->eng->cluster_size);
	return ret;
}

void qcow2_cache_put(struct qcow2_cache *c, void **table)
{
	struct cache_slot *s = slot_by_data(c, *table);

	if (s && s->pin > 0)
		s->pin--;
	*table = NULL;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table)
{
	struct cache_slot *s = slot_by_data(c, table);

	if (s)
		s->dirty = true;
}

int qcow2_cache_write_table(struct qcow2_cache *c, void *table)
{
	struct cache_slot *s = slot_by_data(c, table);

	if (!s)
		return qerr_set(c->eng->err, -EINVAL, "%s is not cached",
				c->what);
	return slot_write(c, s);
}

static int cmp_slot_off(const void *a, const void *b)
{
	const struct cache_slot *x = *(struct cache_slot *const *)a;
	const struct cache_slot *y = *(struct cache_slot *const *)b;

	return x->off < y->off ? -1 : x->off > y->off;
}

int qcow2_cache_write(struct qcow2_cache *c)
{
	struct cache_slot **dirty;
	size_t n = 0;
	int ret = 0;

	if (!qcow2_cache_has_dirty(c))
		return 0;
	dirty = malloc(c->count * sizeof(*dirty));
	if (!dirty)
		return qerr_set(c->eng->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < c->count; i++)
		if (c->slots[i].dirty)
			dirty[n++] = &c->slots[i];
	/* In file order: fewer seeks, and a reproducible write sequence. */
	qsort(dirty, n, sizeof(*dirty), cmp_slot_off);
	ret = qcow2_cache_flush_deps(c);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = slot_write(c, dirty[i]);
	free(dirty);
	return ret;
}

int qcow2_cache_flush(struct qcow2_cache *c)
{
	int ret = qcow2_cache_write(c);

	return ret ? ret : qcow2_sync(c->eng);
}

int qcow2_cache_set_dependency(struct qcow2_cache *c, struct qcow2_cache *dep)
{
	int ret;

	if (c->depends_on == dep)
		return 0;
	if (dep->depends_on) {
		ret = qcow2_cache_flush_deps(dep);
		if (ret < 0)
			return ret;
	}
	if (c->depends_on) {
		ret = qcow2_cache_flush_deps(c);
		if (ret < 0)
			return ret;
	}
	c->depends_on = dep;
	return 0;
}

void qcow2_cache_depends_on_flush(struct qcow2_cache *c)
{
	c->depends_on_flush = true;
}

void qcow2_cache_discard(struct qcow2_cache *c, uint64_t off)
{
	for (size_t i = 0; i < c->count; i++) {
		struct cache_slot *s = &c->slots[i];

		if (s->off == off && s->pin == 0) {
			s->off = 0;
			s->dirty = false;
		}
	}
}

void qcow2_cache_reset(struct qcow2_cache *c)
{
	for (size_t i = 0; i < c->count; i++) {
		if (c->slots[i].pin == 0) {
			c->slots[i].off = 0;
			c->slots[i].dirty = false;
		}
	}
	c->depends_on = NULL;
}

bool qcow2_cache_contains(const struct qcow2_cache *c, uint64_t off,
			  uint64_t len)
{
	for (size_t i = 0; i < c->count; i++) {
		uint64_t t = c->slots[i].off;

		if (t && t < off + len && off < t + c->eng->cluster_size)
			return true;
	}
	return false;
}
