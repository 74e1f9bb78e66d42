/*
 * err.c: filling struct qerr.  See err.h for the contract: first error
 * wins, messages are lower-case and name no top-level file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

void qerr_clear(struct qerr *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

static void qerr_vset(struct qerr *e, int code, const char *fmt, va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int qerr_set(struct qerr *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e || e->code != 0)
		return code;
	va_start(ap, fmt);
	qerr_vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

int qerr_reset(struct qerr *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	va_start(ap, fmt);
	qerr_vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

const char *qerr_msg(const struct qerr *e)
{
	if (e->msg[0])
		return e->msg;
	return e->code ? strerror(-e->code) : "unknown error";
}
