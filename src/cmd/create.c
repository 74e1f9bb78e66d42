/* create.c: placeholder */
#include "cmd/cmd.h"
int cmd_create(int argc, char **argv) { return 1; }
