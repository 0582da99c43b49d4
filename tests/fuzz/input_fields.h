/*
 * tests/fuzz/input_fields.h - what several fuzz targets need: splitting
 * the input into fields.
 */
#ifndef MERPATI_FUZZ_INPUT_FIELDS_H
#define MERPATI_FUZZ_INPUT_FIELDS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The input up to the next delim byte (or its end), copied as a string;
 * *p moves past the delimiter. "" once the input is used up. */
static inline char *
fuzz_take(const uint8_t **p, const uint8_t *end, int delim)
{
	const uint8_t *d = memchr(*p, delim, (size_t)(end - *p));
	size_t len = d ? (size_t)(d - *p) : (size_t)(end - *p);
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	memcpy(s, *p, len);
	s[len] = '\0';
	*p = d ? d + 1 : end;
	return s;
}

#endif
