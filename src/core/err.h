/*
 * err.h: the error record the core library fills instead of printing.
 *
 * Every core function that can fail returns 0 or a negative errno and, when
 * it fails, leaves a human-readable reason in a struct qerr (libarchive's
 * archive_set_error() pattern).  The message starts lower-case, has no
 * trailing full stop and does not name the top-level file: the CLI prints
 * it as "qimg: FILE: message".  The first error set wins, so a low-level
 * reason ("L1 table offset 0x1234 is not cluster aligned") is not replaced by
 * a vaguer one from a caller.
 */
#ifndef QIMG_CORE_ERR_H
#define QIMG_CORE_ERR_H

#include <stddef.h>

#define QERR_MSG_MAX 512

struct qerr {
	int code;		/* negative errno of the first error, 0 if none */
	char msg[QERR_MSG_MAX];
};

/* Clear an error record. */
void qerr_clear(struct qerr *e);

/*
 * Record an error unless one is already recorded; returns code (a negative
 * errno) so callers can write "return qerr_set(e, -EINVAL, ...)".
 * e may be NULL.
 */
int qerr_set(struct qerr *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like qerr_set() but replaces any earlier message. */
int qerr_reset(struct qerr *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The message, or strerror(-code) when none was set. Never NULL. */
const char *qerr_msg(const struct qerr *e);

#endif
