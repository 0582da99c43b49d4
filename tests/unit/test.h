/*
 * tests/unit/test.h - the smallest test harness that can fail.
 *
 * Each test binary prints one TAP-style line per check, "ok - name" or
 * "not ok - name: why", and exits 1 if any check failed. tests/run counts
 * the lines across all binaries and end-to-end suites.
 */
#ifndef MERPATI_TEST_H
#define MERPATI_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures;

#define CHECK(name, cond) do { \
	if (cond) printf("ok - %s\n", (name)); \
	else { printf("not ok - %s: %s (%s:%d)\n", (name), #cond, \
	    __FILE__, __LINE__); test_failures++; } \
	fflush(stdout); \
} while (0)

#define CHECK_STR(name, got, want) do { \
	const char *g_ = (got), *w_ = (want); \
	if (g_ && w_ && strcmp(g_, w_) == 0) printf("ok - %s\n", (name)); \
	else { printf("not ok - %s: got \"%s\", want \"%s\" (%s:%d)\n", \
	    (name), g_ ? g_ : "(null)", w_ ? w_ : "(null)", __FILE__, \
	    __LINE__); test_failures++; } \
	fflush(stdout); \
} while (0)

#define TEST_EXIT() return test_failures ? 1 : 0

#endif
