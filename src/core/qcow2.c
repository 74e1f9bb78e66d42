/* qcow2.c: placeholder driver until the qcow2 reader lands. */
#include <errno.h>
#include "core/qcow2.h"

static int qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && be32_get(buf) == QCOW2_MAGIC ? 100 : 0;
}

static int qcow2_open(struct img *img, unsigned flags)
{
	return qerr_set(&img->err, -ENOTSUP, "qcow2 not implemented yet");
}

const struct img_driver qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.create_opts = qcow2_create_opts,
	.create = qcow2_create,
	.open = qcow2_open,
};
