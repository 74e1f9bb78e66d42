/* qcow2_header_write.c: placeholder until header serialisation lands. */
#include <errno.h>
#include "core/qcow2.h"

int qcow2_meta_serialize(struct qcow2_meta *m, uint8_t *buf, size_t cap,
			 struct qerr *e)
{
	return qerr_set(e, -ENOTSUP, "not implemented yet");
}

int qcow2_meta_set_default_features(struct qcow2_meta *m)
{
	return -ENOTSUP;
}
