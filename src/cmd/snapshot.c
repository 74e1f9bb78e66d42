/*
 * snapshot.c: "qimg snapshot": list, create, apply and delete the internal
 * snapshots of an image, as qemu-img 7.2's snapshot does.
 *
 *   qimg snapshot [-f fmt] [-q] [-U] [--output=human|json] [--image-opts]
 *                 [--object objectdef]
 *                 [-l | -a snapshot | -c snapshot | -d snapshot] filename
 *
 * Selection is qemu-img's (img_snapshot.c): -a takes an ID first, then a
 * name; -d takes names only.  Errors keep qemu's words: "Could not create
 * snapshot 'NAME': -95 (Operation not supported)" for plain errnos, the
 * core's reason otherwise.  Beyond qemu-img 7.2: -f (newer qemu has it),
 * --output=json for the list (the keys of info --output=json), listing
 * when no action is given (newer qemu does; 7.2 does nothing), and a
 * refused create for a name already taken or longer than 255 bytes (qemu
 * allows the first and silently truncates the second).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/img.h"
#include "util/json.h"
#include "util/msg.h"
#include "util/render.h"

static const char snapshot_usage[] =
	"usage: qimg snapshot [-f fmt] [-q] [-U] [--output=human|json] "
	"[--image-opts] [--object objectdef] [-l | -a snapshot | -c snapshot "
	"| -d snapshot] filename\n";

enum snap_action { ACT_NONE, ACT_LIST, ACT_APPLY, ACT_CREATE, ACT_DELETE };

struct snap_args {
	enum snap_action action;
	const char *snap;	/* the -a/-c/-d argument */
	struct cmd_image_args img;	/* -f, --image-opts, -U, --object */
	const char *filename;
	enum output_format output;
};

static int print_list(struct img *img, const struct snap_args *a)
{
	struct img_snapshot *sn;
	struct json j;
	size_t n;

	if (img_snapshot_list(img, &sn, &n) < 0) {
		cmd_report(a->filename, &img->err);
		return 1;
	}
	if (a->output == OUTPUT_JSON) {
		json_init(&j, stdout, false);
		render_snapshots_json(&j, NULL, sn, n);
		json_finish(&j);
	} else if (n) {
		/* qemu-img prints nothing at all for an image without any */
		render_snapshots(stdout, sn, n);
	}
	img_snapshot_list_free(sn, n);
	return 0;
}

/* "Could not VERB snapshot 'X': reason", as qemu-img words it. */
static int report(const struct snap_args *a, const char *verb,
		  const struct qerr *e)
{
	if (e->msg[0])
		msg_file_error(a->filename, "Could not %s snapshot '%s': %s",
			       verb, a->snap, e->msg);
	else
		msg_file_error(a->filename,
			       "Could not %s snapshot '%s': %d (%s)", verb,
			       a->snap, e->code, strerror(-e->code));
	return 1;
}

static int run_action(struct img *img, const struct snap_args *a)
{
	switch (a->action) {
	case ACT_CREATE:
		if (img_snapshot_create(img, a->snap) < 0)
			return report(a, "create", &img->err);
		break;
	case ACT_APPLY:
		if (img_snapshot_apply(img, a->snap) < 0)
			return report(a, "apply", &img->err);
		break;
	case ACT_DELETE:
		if (img_snapshot_delete(img, a->snap) < 0)
			return report(a, "delete", &img->err);
		break;
	default:
		return print_list(img, a);
	}
	/* Write back and sync now, so a failure is still reported. */
	if (img_flush(img) < 0) {
		cmd_report(a->filename, &img->err);
		return 1;
	}
	return 0;
}

static int snapshot_run(const struct snap_args *a)
{
	unsigned flags = IMG_NO_BACKING | IMG_NO_IO;
	struct img *img = NULL;
	int status;

	if (a->action == ACT_CREATE || a->action == ACT_APPLY ||
	    a->action == ACT_DELETE) {
		if (a->img.force_share) {
			msg_file_error(a->filename, "force-share=on can only "
				       "be used with read-only images");
			return 1;
		}
		flags |= IMG_RDWR;
	} else if (a->img.force_share) {
		flags |= IMG_FORCE_SHARE;
	}
	if (cmd_open_image(a->filename, a->img.fmt, a->img.image_opts, flags,
			   &img) < 0)
		return 1;
	status = run_action(img, a);
	img_close(img);
	return status;
}

static int set_action(struct snap_args *a, enum snap_action act,
		      const char *arg)
{
	if (a->action != ACT_NONE)
		return cmd_usage_error("Cannot mix '-l', '-a', '-c', '-d'");
	a->action = act;
	a->snap = arg;
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, CMD_OPT_OUTPUT },
		{ "object", required_argument, NULL, CMD_OPT_OBJECT },
		{ "image-opts", no_argument, NULL, CMD_OPT_IMAGE_OPTS },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	struct snap_args a = { .output = OUTPUT_HUMAN };
	const char *output = NULL;
	int c, ret = 0;

	while (ret == 0 && (c = cmd_getopt_image(argc, argv, ":hf:qUla:c:d:",
						 longopts, &a.img)) != -1) {
		switch (c) {
		case 'h':
			return cmd_help(snapshot_usage);
		case CMD_OPT_DONE:
			return 0;
		case 'q':	/* nothing is printed on success anyway */
			break;
		case 'l':
			ret = set_action(&a, ACT_LIST, NULL);
			break;
		case 'a':
			ret = set_action(&a, ACT_APPLY, optarg);
			break;
		case 'c':
			ret = set_action(&a, ACT_CREATE, optarg);
			break;
		case 'd':
			ret = set_action(&a, ACT_DELETE, optarg);
			break;
		case CMD_OPT_OUTPUT:
			output = optarg;
			break;
		default:
			return 1;
		}
	}
	if (ret)
		return ret;
	a.filename = cmd_image_operand(argc, argv, output, &a.output, &a.img);
	return a.filename ? snapshot_run(&a) : 1;
}
