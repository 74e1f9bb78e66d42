/*
 * msg.h: the one shape of every message qimg prints to stderr.
 *
 *   qimg: FILE: message      (msg_file_error)
 *   qimg: message            (msg_error)
 *   qimg: warning: message   (msg_warn)
 *
 * Only src/cmd and src/qimg.c call these; the core never prints.
 */
#ifndef QIMG_UTIL_MSG_H
#define QIMG_UTIL_MSG_H

void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_file_error(const char *file, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "qimg: message" then "Try 'qimg --help' ..." for usage mistakes; returns 1. */
int msg_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
