/*
 * tests/modules/hooktest2.c - hooktest.c under a second name, so a test
 * can load two filters and check they run in config order.
 */
#define HOOKTEST_NAME "hooktest2"
#include "hooktest.c"
