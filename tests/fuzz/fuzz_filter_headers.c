/*
 * tests/fuzz/fuzz_filter_headers.c - libFuzzer target: the header
 * section parser filters' edits work on (core/filter_headers.c), on
 * arbitrary messages. Checks that the fields written back are the input
 * byte for byte, that the byte count stays true through an insert, a
 * change and a delete, and runs the name and value checks on the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter_headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The name of field f (up to ':'), or NULL. */
static char *
name_of(const char *f)
{
	const char *colon = strchr(f, ':');
	char *name;

	if (colon == NULL || colon == f)
		return NULL;
	name = strndup(f, (size_t)(colon - f));
	if (!mp_hdr_name_valid(name)) {
		free(name);
		return NULL;
	}
	return name;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *out, *name;
	struct mp_hdrs h;
	size_t used, len;
	int blank;

	memcpy(text, data, size);
	text[size] = '\0';
	mp_hdr_name_valid(text);
	mp_hdr_value_valid(text);
	if (mp_hdrs_parse(&h, (const char *)data, size, &used, &blank) == 0) {
		out = mp_hdrs_format(&h, &len);
		if (used > size || len > used || memcmp(out, data, len) != 0 ||
		    len != h.bytes)
			abort();
		free(out);
		if (mp_hdrs_insert(&h, h.n / 2, "X-Fuzz", "a;\r\n\tb") == 0 &&
		    mp_hdrs_change(&h, "X-Fuzz", 1, "c") != 1)
			abort();
		if (h.n > 0 && (name = name_of(h.v[h.n - 1])) != NULL) {
			if (mp_hdrs_change(&h, name, 1, NULL) != 1)
				abort();
			free(name);
		}
		out = mp_hdrs_format(&h, &len);
		if (len != h.bytes)
			abort();
		free(out);
		mp_hdrs_free(&h);
	}
	free(text);
	return 0;
}
