/*
 * unit_main.c: runs every unit-test suite and prints the plain closing
 * line "N passed, N failed"; exits 1 if anything failed.
 */
#include "tests/unit/unit.h"

int unit_passed, unit_failed;

static const struct {
	const char *name;
	void (*fn)(void);
} suites[] = {
	{ "size", test_size },
	{ "opts", test_opts },
	{ "json", test_json },
	{ "qcow2_header", test_qcow2_header },
	{ "sparse", test_sparse },
	{ "qcow2_header_write", test_qcow2_header_write },
	{ "raw", test_raw },
	{ "crypto", test_crypto },
	{ "luks", test_luks },
	{ "secret", test_secret },
	{ "refcount", test_refcount },
	{ "compress", test_compress },
	{ "check", test_check },
	{ "snapshot", test_snapshot },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		int before = unit_failed;
		suites[i].fn();
		printf("unit %-14s %s\n", suites[i].name,
		       unit_failed == before ? "ok" : "FAILED");
	}
	printf("unit: %d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
