/* info.c: placeholder */
#include "cmd/cmd.h"
int cmd_info(int argc, char **argv) { return 1; }
