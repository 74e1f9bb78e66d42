/*
 * qcow2_fuzz.h: what the two files of the qcow2-fuzz test driver share.
 */
#ifndef QIMG_TESTS_QCOW2_FUZZ_H
#define QIMG_TESTS_QCOW2_FUZZ_H

/* Print "qcow2-fuzz: message" and exit 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

int cmd_cat(const char *image, const char *out);
int cmd_map(const char *image);
int cmd_one(const char *mode, char **args, int nargs);

#endif
