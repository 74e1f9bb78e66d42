/*
 * json.h: a streaming JSON writer.
 *
 * Pretty mode reproduces qemu-img's layout (4-space indent, "key": value,
 * empty containers as "[" newline indent "]"), so our output reads like
 * qemu-img's; compact mode writes one line (for --progress=json).  Strings
 * are escaped and invalid UTF-8 is replaced by U+FFFD, so hostile names
 * from an image always yield valid JSON.
 */
#ifndef QIMG_UTIL_JSON_H
#define QIMG_UTIL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/kv.h"

#define JSON_MAX_DEPTH 32

struct json {
	FILE *f;
	bool compact;
	int depth;
	bool has_items[JSON_MAX_DEPTH];
};

void json_init(struct json *j, FILE *f, bool compact);
/* key is NULL for array elements and the top-level value. */
void json_obj_begin(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *s);
void json_int(struct json *j, const char *key, int64_t v);
void json_uint(struct json *j, const char *key, uint64_t v);
void json_bool(struct json *j, const char *key, bool v);
void json_double(struct json *j, const char *key, double v);
/* Write a kv tree as a JSON value under key. */
void json_kv(struct json *j, const char *key, const struct kv *node);
/* Finish the document with a newline. */
void json_finish(struct json *j);

/* Write s as a quoted, escaped JSON string. */
void json_write_string(FILE *f, const char *s);

#endif
