/*
 * qimg.c: main().  Global options (--help, --version), the command table,
 * and dispatch to src/cmd/<name>.c.  A command's return value is the exit
 * status.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "cmd/cmd.h"
#include "core/secret.h"
#include "util/msg.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{ "create", cmd_create, "create a new disk image" },
	{ "info", cmd_info, "show information about a disk image" },
	{ "convert", cmd_convert, "copy images into a new image of any format" },
	{ "io", cmd_io, "run qemu-io commands on a disk image" },
	{ "check", cmd_check, "check a disk image for consistency" },
	{ "snapshot", cmd_snapshot, "list, create, apply or delete internal snapshots" },
	{ "resize", cmd_resize, "change the virtual size of a disk image" },
	{ "rebase", cmd_rebase, "change the backing file of a disk image" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "qimg version " QIMG_VERSION
		   ": a qemu-img compatible disk image utility\n"
		   "usage: qimg [-h | -V] COMMAND [command options]\n\n"
		   "Commands:\n");
	for (int i = 0; commands[i].name; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'qimg COMMAND --help' for a command's options.\n"
		   "Supported formats: qcow2 raw\n");
}

int main(int argc, char **argv)
{
	const char *name;

	if (argc < 2)
		return msg_usage_error("Not enough arguments");
	name = argv[1];
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
		printf("qimg version " QIMG_VERSION "\n");
		return 0;
	}
	if (name[0] == '-')
		return msg_usage_error("unrecognized option '%s'", name);
	for (int i = 0; commands[i].name; i++) {
		if (strcmp(commands[i].name, name) == 0) {
			int status;

			optind = 0;	/* reinitialise getopt for the command */
			status = commands[i].fn(argc - 1, argv + 1);
			/* Wipe passphrases and keys before exit. */
			secret_store_clear();
			return status;
		}
	}
	return msg_usage_error("Command not found: %s", name);
}
