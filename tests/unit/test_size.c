/*
 * test_size.c: size parsing and printing against values observed from
 * qemu-img 7.2 (QEMU-IMG-REFERENCE.md section 0.3).
 */
#include <errno.h>

#include "tests/unit/unit.h"
#include "util/size.h"

static unsigned long long parse(const char *s, int *ret)
{
	uint64_t v = 0;
	*ret = size_parse(s, &v, NULL);
	return v;
}

void test_size(void)
{
	static const struct {
		const char *in;
		int ret;
		unsigned long long out;
	} cases[] = {
		{ "1024", 0, 1024 },
		{ "1k", 0, 1024 },
		{ "1K", 0, 1024 },
		{ "1m", 0, 1048576 },
		{ "1G", 0, 1073741824 },
		{ "1T", 0, 1099511627776ULL },
		{ "1P", 0, 1125899906842624ULL },
		{ "1E", 0, 1152921504606846976ULL },
		{ "10b", 0, 10 },
		{ "512B", 0, 512 },
		{ "1.5G", 0, 1610612736 },
		{ "1.5k", 0, 1536 },
		{ "0.5M", 0, 524288 },
		{ "1.1k", 0, 1126 },
		{ "0.3k", 0, 307 },
		{ "12.", 0, 12 },
		{ " 12", 0, 12 },
		{ "+5", 0, 5 },
		{ "0x100000", 0, 1048576 },
		{ "0x10k", 0, 16384 },
		{ "0", 0, 0 },
		{ "9223372036854775807", 0, 9223372036854775807ULL },
		{ "1KB", -EINVAL, 0 },
		{ "1KiB", -EINVAL, 0 },
		{ "1Z", -EINVAL, 0 },
		{ "1.5", -EINVAL, 0 },
		{ "1.5b", -EINVAL, 0 },
		{ "1e3", -EINVAL, 0 },
		{ ".5k", -EINVAL, 0 },
		{ "0x1.8k", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "k", -EINVAL, 0 },
		{ "8E", -ERANGE, 0 },
		{ "9223372036854775808", -ERANGE, 0 },
		{ "100000000000000000000", -ERANGE, 0 },
		{ "16384P", -ERANGE, 0 },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret;
		unsigned long long v = parse(cases[i].in, &ret);
		if (ret != cases[i].ret)
			fprintf(stderr, "size_parse(\"%s\") returned %d\n",
				cases[i].in, ret);
		CHECK(ret == cases[i].ret);
		if (cases[i].ret == 0)
			CHECK_EQ_U64(v, cases[i].out);
	}

	size_human(buf, sizeof(buf), 1073741824);
	CHECK_STR(buf, "1 GiB");
	size_human(buf, sizeof(buf), 200704);
	CHECK_STR(buf, "196 KiB");
	size_human(buf, sizeof(buf), 1048576000);
	CHECK_STR(buf, "0.977 GiB");
	size_human(buf, sizeof(buf), 123457024);
	CHECK_STR(buf, "118 MiB");
	size_human(buf, sizeof(buf), 1536);
	CHECK_STR(buf, "1.5 KiB");
	size_human(buf, sizeof(buf), 2297856);
	CHECK_STR(buf, "2.19 MiB");
	size_human(buf, sizeof(buf), 0);
	CHECK_STR(buf, "0 B");
	size_human(buf, sizeof(buf), 999);
	CHECK_STR(buf, "999 B");
	size_human(buf, sizeof(buf), 1023);
	CHECK_STR(buf, "0.999 KiB");
}
