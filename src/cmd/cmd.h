/*
 * cmd.h: the subcommands and the helpers they share.
 *
 * Adding a command (git's builtin.h recipe):
 *   1. write src/cmd/NAME.c with "int cmd_NAME(int argc, char **argv)";
 *      argv[0] is the command name, the return value is the exit status;
 *   2. declare it below and add a row to the commands[] table in qimg.c;
 *   3. add src/cmd/NAME.o to CMD_OBJS in the Makefile;
 *   4. tests in tests/cli/NN-NAME.bats, a section in man/qimg.1, an example
 *      in README.md; keep "qimg NAME --help" and the man SYNOPSIS the same.
 *
 * Commands parse options with getopt_long (cmd_getopt below), call the core,
 * and render results.  Only this layer prints.
 */
#ifndef QIMG_CMD_CMD_H
#define QIMG_CMD_CMD_H

#include <getopt.h>
#include <stdbool.h>

#include "core/err.h"

int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_io(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_rebase(int argc, char **argv);

enum output_format { OUTPUT_HUMAN, OUTPUT_JSON };

/* Long options every command shares. */
#define CMD_OPT_HELP 0x1000
#define CMD_OPT_OUTPUT 0x1001
#define CMD_OPT_OBJECT 0x1002
#define CMD_OPT_IMAGE_OPTS 0x1003
#define CMD_OPT_BACKING_CHAIN 0x1004

/*
 * getopt_long wrapper with qimg's error messages: unknown options and
 * missing arguments print "qimg: ..." plus the --help hint and return '?'.
 */
int cmd_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* Parse --output's argument; prints qemu-img's message and returns -1. */
int cmd_parse_output(const char *arg, enum output_format *out);

/* Print "qimg: FILE: message" for a core error. */
void cmd_report(const char *file, const struct qerr *e);

/* Print usage (the synopsis lines) on stdout; returns 0 for --help. */
int cmd_help(const char *usage);

/* Print "qimg: message" and the --help hint; returns 1 (exit status). */
int cmd_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Open the image a writing command works on (imgopen.c): name is a file
 * name, or with image_opts a "driver=FMT,file.filename=PATH" string (then
 * fmt must be NULL).  Errors are printed; returns 0 or -1.  When the
 * format was probed as raw on a writable open, prints qemu's warning.
 */
struct img;
struct img_driver;
struct optlist;
int cmd_open_image(const char *name, const char *fmt, bool image_opts,
		   unsigned flags, struct img **out);
/*
 * --object: add the secret it defines (core/secret.h).  Returns 0, 1 when
 * it asked for help (printed: exit 0), or -1 after printing the error.
 */
int cmd_add_object(const char *spec);
/* qemu's three-line warning for a raw format guessed by probing. */
void cmd_probe_warning(const char *path);

/*
 * The options that name and open an image the same way in check, info,
 * snapshot, resize and rebase: -f FMT, --image-opts, -U (--force-share;
 * only where the command's short options list it) and --object.
 */
struct cmd_image_args {
	const char *fmt;
	bool image_opts;
	bool force_share;
};

/*
 * cmd_getopt() that stores those options in *ia itself and returns the
 * others.  Two more results: CMD_OPT_DONE when --object printed its help
 * (the command exits 0), CMD_OPT_FAILED when --object was refused (the
 * message is printed; the command exits 1, as for any option error).
 */
#define CMD_OPT_DONE 0x10fe
#define CMD_OPT_FAILED 0x10ff
int cmd_getopt_image(int argc, char **argv, const char *shortopts,
		     const struct option *longopts, struct cmd_image_args *ia);

/*
 * After the options of a command that takes one image and --output: the
 * one file name left (else qemu's "Expecting one image file name"), the
 * --output value (output NULL: keep *out), and -f with --image-opts
 * refused.  Returns the file name, or NULL after printing the error.
 */
const char *cmd_image_operand(int argc, char **argv, const char *output,
			      enum output_format *out,
			      const struct cmd_image_args *ia);

/*
 * After creating file with opts: warn (one line, not an error) when they
 * asked for qcow2's legacy AES encryption, which qemu-img 7.2 creates
 * silently although it is insecure.
 */
void cmd_warn_legacy_aes(const struct img_driver *drv, struct optlist *opts,
			 const char *file);

#endif
