/*
 * test_opts.c: -o option lists: accumulation, last value wins, ",,"
 * escapes, bare keys, help, typed getters and their refusals.
 */
#include <errno.h>

#include "tests/unit/unit.h"
#include "util/opts.h"

void test_opts(void)
{
	struct optlist l = { 0 };
	struct qerr e = { 0 };
	uint64_t sz = 0;
	bool b = false;
	static const struct opt_desc desc[] = {
		{ .name = "compat", .type = OPT_STR },
		{ .name = "cluster_size", .type = OPT_SIZE },
		{ .name = "lazy_refcounts", .type = OPT_BOOL },
		{ .name = "backing_file", .type = OPT_STR },
		{ .name = NULL },
	};

	CHECK(optlist_parse(&l, "compat=1.1,cluster_size=4k", &e) == 0);
	CHECK(optlist_parse(&l, "compat=0.10,backing_file=a,,b.img", &e) == 0);
	CHECK_STR(optlist_get(&l, "compat"), "0.10");
	CHECK_STR(optlist_get(&l, "backing_file"), "a,b.img");
	CHECK(optlist_get_size(&l, "cluster_size", &sz, &e) == 0);
	CHECK_EQ_U64(sz, 4096);
	CHECK(optlist_check(&l, desc, &e) == 0);
	CHECK(!l.help);

	CHECK(optlist_parse(&l, "lazy_refcounts", &e) == 0);
	CHECK(optlist_get_bool(&l, "lazy_refcounts", &b, &e) == 0);
	CHECK(b);
	CHECK(optlist_parse(&l, "lazy_refcounts=maybe", &e) == 0);
	CHECK(optlist_get_bool(&l, "lazy_refcounts", &b, &e) == -EINVAL);
	CHECK_STR(e.msg, "Parameter 'lazy_refcounts' expects 'on' or 'off'");

	qerr_clear(&e);
	CHECK(optlist_parse(&l, "bogus=1", &e) == 0);
	CHECK(optlist_check(&l, desc, &e) == -EINVAL);
	CHECK_STR(e.msg, "Invalid parameter 'bogus'");
	optlist_del(&l, "bogus");
	CHECK(!optlist_has(&l, "bogus"));

	CHECK(optlist_parse(&l, "help", &e) == 0);
	CHECK(l.help);
	optlist_free(&l);

	CHECK(optlist_parse(&l, "?", &e) == 0);
	CHECK(l.help);
	optlist_free(&l);

	qerr_clear(&e);
	CHECK(optlist_parse(&l, "=x", &e) == -EINVAL);
	optlist_free(&l);
}
