#include "tests/unit/unit.h"
void test_qcow2_header(void) {}
