/* qcow2_create.c: placeholder until qcow2 creation lands. */
#include <errno.h>
#include "core/qcow2.h"

const struct opt_desc qcow2_create_opts[] = {
	{ NULL, OPT_STR, NULL, NULL },
};

int qcow2_create(const char *filename, struct optlist *opts, struct qerr *e)
{
	return qerr_set(e, -ENOTSUP, "qcow2 creation not implemented yet");
}
