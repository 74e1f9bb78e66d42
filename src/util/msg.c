/*
 * msg.c: stderr messages in qimg's single shape (see msg.h).  stdout is
 * flushed first so that interleaved output keeps its order on a terminal
 * and in a captured log.
 */
#include <stdarg.h>
#include <stdio.h>

#include "util/msg.h"

static void vmsg(const char *file, const char *kind, const char *fmt,
		 va_list ap)
{
	fflush(stdout);
	fputs("qimg: ", stderr);
	if (kind)
		fprintf(stderr, "%s: ", kind);
	if (file)
		fprintf(stderr, "%s: ", file);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void msg_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, NULL, fmt, ap);
	va_end(ap);
}

void msg_file_error(const char *file, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(file, NULL, fmt, ap);
	va_end(ap);
}

void msg_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, "warning", fmt, ap);
	va_end(ap);
}

int msg_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, NULL, fmt, ap);
	va_end(ap);
	fputs("Try 'qimg --help' for more information\n", stderr);
	return 1;
}
