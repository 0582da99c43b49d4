/*
 * tests/fuzz/fuzz_pop3_parse.c - libFuzzer target: POP3 command split
 * and message-number arguments on arbitrary lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/pop3/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), verb[16];
	const char *arg, *rest;
	size_t n;

	memcpy(line, data, size);
	line[size] = '\0';
	if (pop3_split(line, verb, sizeof(verb), &arg) == 0) {
		if (strlen(verb) >= sizeof(verb) || (arg[0] && (arg < line || arg > line + size)))
			abort();
		if (pop3_number(arg, 100, &n, &rest) == 0 && (n == 0 || n > 100))
			abort();
		if (pop3_number(arg, 100, &n, NULL) == 0 && (n == 0 || n > 100))
			abort();
	}
	free(line);
	return 0;
}
