/*
 * common.c: option parsing and error-reporting helpers shared by every
 * subcommand, so all of them word their errors and --help alike.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "core/img.h"
#include "util/msg.h"

int cmd_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (c == '?') {
		const char *arg = argv[optind - 1];
		if (optopt && strncmp(arg, "--", 2) != 0)
			msg_usage_error("invalid option -- '%c'", optopt);
		else
			msg_usage_error("unrecognized option '%s'", arg);
	} else if (c == ':') {
		msg_usage_error("option '%s' requires an argument",
				argv[optind - 1]);
		c = '?';
	}
	return c;
}

int cmd_parse_output(const char *arg, enum output_format *out)
{
	if (strcmp(arg, "human") == 0) {
		*out = OUTPUT_HUMAN;
		return 0;
	}
	if (strcmp(arg, "json") == 0) {
		*out = OUTPUT_JSON;
		return 0;
	}
	msg_error("--output must be used with human or json as argument");
	return -1;
}

void cmd_report(const char *file, const struct qerr *e)
{
	msg_file_error(file, "%s", qerr_msg(e));
}

int cmd_help(const char *usage)
{
	fputs(usage, stdout);
	return 0;
}

int cmd_usage_error(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return msg_usage_error("%s", buf);
}

void cmd_warn_legacy_aes(const struct img_driver *drv, struct optlist *opts,
			 const char *file)
{
	struct crypto_create_opts o;
	struct qerr e = { 0 };

	if (drv == &qcow2_driver && crypto_create_opts_get(opts, &o, &e) == 0 &&
	    o.format == CRYPTO_FORMAT_AES)
		msg_warn("%s: qcow2's legacy AES encryption is insecure; "
			 "use LUKS (encrypt.format=luks) instead", file);
}

int cmd_getopt_image(int argc, char **argv, const char *shortopts,
		     const struct option *longopts, struct cmd_image_args *ia)
{
	int c;

	while ((c = cmd_getopt(argc, argv, shortopts, longopts)) != -1) {
		switch (c) {
		case 'f':
			ia->fmt = optarg;
			break;
		case 'U':
			ia->force_share = true;
			break;
		case CMD_OPT_IMAGE_OPTS:
			ia->image_opts = true;
			break;
		case CMD_OPT_OBJECT:
			c = cmd_add_object(optarg);
			if (c != 0)
				return c > 0 ? CMD_OPT_DONE : CMD_OPT_FAILED;
			break;
		default:
			return c;
		}
	}
	return -1;
}

const char *cmd_image_operand(int argc, char **argv, const char *output,
			      enum output_format *out,
			      const struct cmd_image_args *ia)
{
	if (optind != argc - 1) {
		cmd_usage_error("Expecting one image file name");
		return NULL;
	}
	if (output && cmd_parse_output(output, out) < 0)
		return NULL;
	if (ia->image_opts && ia->fmt) {
		msg_error("--image-opts and --format are mutually exclusive");
		return NULL;
	}
	return argv[optind];
}
