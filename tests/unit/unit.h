/*
 * unit.h: a minimal C unit-test harness.  Each tests/unit/test_*.c file
 * defines one suite function listed in unit_main.c; CHECK records a
 * failure with file and line and carries on, so one run reports every
 * broken assertion.  The runner ends with "N passed, N failed".
 */
#ifndef QIMG_TESTS_UNIT_H
#define QIMG_TESTS_UNIT_H

#include <stdio.h>
#include <string.h>

extern int unit_passed, unit_failed;

#define CHECK(cond)                                                        \
	do {                                                               \
		if (cond) {                                                \
			unit_passed++;                                     \
		} else {                                                   \
			unit_failed++;                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n",       \
				__FILE__, __LINE__, #cond);                \
		}                                                          \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                 \
	do {                                                               \
		unsigned long long a_ = (a), b_ = (b);                     \
		if (a_ == b_) {                                            \
			unit_passed++;                                     \
		} else {                                                   \
			unit_failed++;                                     \
			fprintf(stderr, "%s:%d: %s == %llu, expected %llu\n", \
				__FILE__, __LINE__, #a, a_, b_);           \
		}                                                          \
	} while (0)

#define CHECK_STR(a, b)                                                    \
	do {                                                               \
		const char *a_ = (a), *b_ = (b);                           \
		if (a_ && b_ && strcmp(a_, b_) == 0) {                     \
			unit_passed++;                                     \
		} else {                                                   \
			unit_failed++;                                     \
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #a, a_ ? a_ : "(null)", \
				b_ ? b_ : "(null)");                       \
		}                                                          \
	} while (0)

void test_size(void);
void test_opts(void);
void test_json(void);
void test_qcow2_header(void);
void test_sparse(void);
void test_qcow2_header_write(void);
void test_raw(void);
void test_crypto(void);
void test_luks(void);
void test_secret(void);
void test_refcount(void);
void test_compress(void);
void test_check(void);
void test_snapshot(void);

#endif
