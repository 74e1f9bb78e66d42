/*
 * test_json.c: the JSON writer's layout (qemu-img's pretty form), string
 * escaping, invalid UTF-8 replacement, and kv trees.
 */
#include <stdlib.h>

#include "tests/unit/unit.h"
#include "util/json.h"

static char *render(void (*fn)(struct json *), bool compact)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;

	json_init(&j, f, compact);
	fn(&j);
	fclose(f);
	return buf;
}

static void doc_nested(struct json *j)
{
	json_obj_begin(j, NULL);
	json_int(j, "virtual-size", 1073741824);
	json_str(j, "filename", "a\"b\\c\n\x01");
	json_arr_begin(j, "flags");
	json_arr_end(j);
	json_obj_begin(j, "data");
	json_bool(j, "corrupt", false);
	json_obj_end(j);
	json_obj_end(j);
	json_finish(j);
}

static void doc_utf8(struct json *j)
{
	json_str(j, NULL, "ok \xc3\xa9 bad \xff \xc0\x80 end");
}

static void doc_kv(struct json *j)
{
	struct kv *root = kv_new_obj(), *arr;

	kv_add_str(root, "compat", "1.1");
	arr = kv_add_arr(root, "slots");
	kv_add_bool(kv_add_obj(arr, NULL), "active", true);
	kv_add_int(root, "refcount-bits", 16);
	CHECK(kv_ok(root));
	json_kv(j, NULL, root);
	kv_free(root);
}

void test_json(void)
{
	char *s = render(doc_nested, false);
	CHECK_STR(s, "{\n"
		     "    \"virtual-size\": 1073741824,\n"
		     "    \"filename\": \"a\\\"b\\\\c\\n\\u0001\",\n"
		     "    \"flags\": [\n"
		     "    ],\n"
		     "    \"data\": {\n"
		     "        \"corrupt\": false\n"
		     "    }\n"
		     "}\n");
	free(s);

	s = render(doc_nested, true);
	CHECK_STR(s, "{\"virtual-size\": 1073741824, \"filename\": "
		     "\"a\\\"b\\\\c\\n\\u0001\", \"flags\": [], \"data\": "
		     "{\"corrupt\": false}}\n");
	free(s);

	s = render(doc_utf8, false);
	CHECK_STR(s, "\"ok \xc3\xa9 bad \\ufffd \\ufffd\\ufffd end\"");
	free(s);

	s = render(doc_kv, true);
	CHECK_STR(s, "{\"compat\": \"1.1\", \"slots\": [{\"active\": true}], "
		     "\"refcount-bits\": 16}");
	free(s);
}
