/*
 * imgopen.c: how resize and rebase name and open the image they change:
 * "-f FMT FILE" or "--image-opts driver=FMT,file.filename=FILE", with
 * qemu-img 7.2's refusals, and its warning when a writable image's format
 * was probed and guessed raw.
 *
 * --image-opts takes the keys qimg can honour: driver, file.filename and
 * file.driver=file.  Anything else is refused as qemu refuses an option
 * the format does not take, rather than silently ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/img.h"
#include "util/msg.h"
#include "util/opts.h"

void cmd_probe_warning(const char *path)
{
	fflush(stdout);
	fprintf(stderr,
		"WARNING: Image format was not specified for '%s' and probing "
		"guessed raw.\n"
		"         Automatically detecting the format is dangerous for "
		"raw images, write operations on block 0 will be restricted.\n"
		"         Specify the 'raw' format explicitly to remove the "
		"restrictions.\n",
		path);
}

/* Split "driver=FMT,file.filename=PATH[,file.driver=file]". */
static int parse_image_opts(const char *text, char **path, char **fmt)
{
	struct optlist l = { 0 };
	struct qerr e = { 0 };
	const char *file, *drv, *proto;
	int ret = -1;

	if (optlist_parse(&l, text, &e) < 0) {
		msg_error("%s", qerr_msg(&e));
		goto out;
	}
	file = optlist_get(&l, "file.filename");
	drv = optlist_get(&l, "driver");
	proto = optlist_get(&l, "file.driver");
	if (proto && strcmp(proto, "file") != 0) {
		msg_error("Could not open '%s': Unknown protocol '%s'", text,
			  proto);
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		if (!l.v[i].used) {
			msg_error("Could not open '%s': Invalid parameter '%s'",
				  text, l.v[i].key);
			goto out;
		}
	}
	if (!file) {
		msg_error("Could not open '%s': A block device must be "
			  "specified for \"file\"", text);
		goto out;
	}
	*path = strdup(file);
	*fmt = drv ? strdup(drv) : NULL;
	if (!*path || (drv && !*fmt)) {
		msg_error("out of memory");
		goto out;
	}
	ret = 0;
out:
	optlist_free(&l);
	return ret;
}

int cmd_open_image(const char *name, const char *fmt, bool image_opts,
		   unsigned flags, struct img **out)
{
	char *path = NULL, *ofmt = NULL;
	struct qerr e = { 0 };
	int ret = -1;

	*out = NULL;
	if (image_opts) {
		if (fmt) {
			msg_error("--image-opts and --format are mutually "
				  "exclusive");
			return -1;
		}
		if (parse_image_opts(name, &path, &ofmt) < 0)
			goto out;
		fmt = ofmt;
	} else if (!(path = strdup(name))) {
		msg_error("out of memory");
		return -1;
	}
	if (img_open(out, path, fmt, flags, &e) < 0) {
		cmd_report(name, &e);
		goto out;
	}
	if (!fmt && (flags & IMG_RDWR) && (*out)->drv == &raw_driver)
		cmd_probe_warning(path);
	ret = 0;
out:
	free(path);
	free(ofmt);
	return ret;
}
