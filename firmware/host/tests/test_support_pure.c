/* test_support_pure.c - the failure counter of test_support_pure.h, for test
 * programs linked without test_support.c (the rv32 build: no sockets). */
#include "test_support_pure.h"

int test_failures;
