/*
 * imgopen.c: how check, snapshot, resize and rebase name and open their
 * image: "-f FMT FILE" or "--image-opts driver=FMT,file.filename=FILE
 * [,encrypt.key-secret=ID]", with qemu-img 7.2's refusals, and its
 * warning when a writable image's format was probed and guessed raw.
 *
 * --image-opts is parsed and checked by util/imgopts.c: anything the
 * format does not take is refused as qemu refuses it, not ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/img.h"
#include "core/secret.h"
#include "util/msg.h"
#include "util/imgopts.h"

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

int cmd_open_image(const char *name, const char *fmt, bool image_opts,
		   unsigned flags, struct img **out)
{
	struct image_opts io = { 0 };
	struct img_open_opts chain[IMAGE_OPTS_MAX_BACKING + 1];
	struct img_open_opts *oo = NULL;
	const char *path = name;
	struct qerr e = { 0 };
	int ret = -1;

	*out = NULL;
	if (image_opts) {
		if (fmt) {
			msg_error("--image-opts and --format are mutually "
				  "exclusive");
			return -1;
		}
		if (image_opts_parse(name, &io, &e) < 0) {
			msg_error("Could not open '%s': %s", name, qerr_msg(&e));
			goto out;
		}
		path = io.filename;
		fmt = io.driver;
		oo = image_opts_open_opts(&io, chain);
	}
	if ((flags & IMG_FORCE_SHARE) && (flags & IMG_RDWR)) {
		msg_error("Could not open '%s': force-share=on can only be used "
			  "with read-only images", name);
		goto out;
	}
	if (img_open_with(out, path, fmt, flags, oo, &e) < 0) {
		cmd_report(path, &e);
		goto out;
	}
	if (image_opts && image_opts_check(&io, (*out)->drv->name, &e) < 0) {
		msg_error("Could not open '%s': %s", name, qerr_msg(&e));
		img_close(*out);
		*out = NULL;
		goto out;
	}
	if (!fmt && (flags & IMG_RDWR) && (*out)->drv == &raw_driver)
		cmd_probe_warning(path);
	ret = 0;
out:
	image_opts_free(&io);
	return ret;
}

int cmd_add_object(const char *spec)
{
	struct qerr e = { 0 };
	int ret = secret_object_add(spec, &e);

	if (ret < 0) {
		msg_error("%s", qerr_msg(&e));
		return -1;
	}
	if (ret > 0) {
		fputs(secret_object_help(ret), stdout);
		return 1;
	}
	return 0;
}
