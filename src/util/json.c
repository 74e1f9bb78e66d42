/*
 * json.c: the streaming JSON writer of json.h.  The writer tracks, per
 * nesting level, whether a value was already written, to place commas and
 * newlines the way qemu-img's pretty printer does.
 */
#include <inttypes.h>
#include <string.h>

#include "util/json.h"

void json_init(struct json *j, FILE *f, bool compact)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->compact = compact;
}

static void indent(struct json *j)
{
	if (j->compact)
		return;
	fputc('\n', j->f);
	for (int i = 0; i < j->depth; i++)
		fputs("    ", j->f);
}

/* Separator, indentation and key before a value. */
static void prefix(struct json *j, const char *key)
{
	if (j->depth > 0) {
		if (j->has_items[j->depth])
			fputc(',', j->f);
		if (j->compact && j->has_items[j->depth])
			fputc(' ', j->f);
		j->has_items[j->depth] = true;
		indent(j);
	}
	if (key) {
		json_write_string(j->f, key);
		fputs(": ", j->f);
	}
}

static void open_container(struct json *j, const char *key, char c)
{
	prefix(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->has_items[j->depth] = false;
}

static void close_container(struct json *j, char c)
{
	if (j->depth > 0)
		j->depth--;
	indent(j);
	fputc(c, j->f);
}

void json_obj_begin(struct json *j, const char *key)
{
	open_container(j, key, '{');
}

void json_obj_end(struct json *j)
{
	close_container(j, '}');
}

void json_arr_begin(struct json *j, const char *key)
{
	open_container(j, key, '[');
}

void json_arr_end(struct json *j)
{
	close_container(j, ']');
}

void json_str(struct json *j, const char *key, const char *s)
{
	prefix(j, key);
	json_write_string(j->f, s);
}

void json_int(struct json *j, const char *key, int64_t v)
{
	prefix(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void json_uint(struct json *j, const char *key, uint64_t v)
{
	prefix(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	prefix(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_double(struct json *j, const char *key, double v)
{
	prefix(j, key);
	fprintf(j->f, "%.3f", v);
}

void json_kv(struct json *j, const char *key, const struct kv *n)
{
	const struct kv *c;

	switch (n->type) {
	case KV_STR:
		json_str(j, key, n->v.s);
		break;
	case KV_INT:
		json_int(j, key, n->v.i);
		break;
	case KV_BOOL:
		json_bool(j, key, n->v.b);
		break;
	case KV_OBJ:
	case KV_ARR:
		open_container(j, key, n->type == KV_OBJ ? '{' : '[');
		for (c = n->child; c; c = c->next)
			json_kv(j, n->type == KV_OBJ ? c->key : NULL, c);
		close_container(j, n->type == KV_OBJ ? '}' : ']');
		break;
	}
}

void json_finish(struct json *j)
{
	fputc('\n', j->f);
}

/* Length of the valid UTF-8 sequence at s, or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void json_write_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		size_t n;

		switch (*s) {
		case '"': fputs("\\\"", f); s++; continue;
		case '\\': fputs("\\\\", f); s++; continue;
		case '\n': fputs("\\n", f); s++; continue;
		case '\r': fputs("\\r", f); s++; continue;
		case '\t': fputs("\\t", f); s++; continue;
		case '\b': fputs("\\b", f); s++; continue;
		case '\f': fputs("\\f", f); s++; continue;
		}
		if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s);
			s++;
			continue;
		}
		n = utf8_len(s);
		if (n == 0) {
			fputs("\\ufffd", f);
			s++;
			continue;
		}
		fwrite(s, 1, n, f);
		s += n;
	}
	fputc('"', f);
}
