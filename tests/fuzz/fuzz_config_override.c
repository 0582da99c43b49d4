/*
 * tests/fuzz/fuzz_config_override.c - libFuzzer target: `-o path=value`
 * overrides applied to a small config; they must either apply or fail
 * with a message, never crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	config_t lc;
	char *expr = malloc(size + 1), err[256];

	memcpy(expr, data, size);
	expr[size] = '\0';
	config_init(&lc);
	config_read_string(&lc, "server = { hostname = \"h\"; }; listen = { smtp = { port = 1; }; };");
	err[0] = '\0';
	if (mp_cfg_override(&lc, expr, err, sizeof(err)) < 0 && err[0] == '\0')
		abort();	/* every refusal says why */
	config_destroy(&lc);
	free(expr);
	return 0;
}
