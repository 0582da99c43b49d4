/*
 * tests/fuzz/fuzz_route_regex.c - libFuzzer target: a route_regex rule
 * as the module runs it. The input is pattern NUL template NUL subject;
 * the pattern is compiled as rules are (route_compile), matched against
 * the lower-cased subject (at most an address long, as route() cuts it)
 * under the module's match limits, and the template expanded from the
 * groups. An expansion is either refused or one address: a local part,
 * one '@', a domain, no space or control character, within the bound.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/route_regex/route_expand.h"
#include "tests/fuzz/input_fields.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rule patterns come from the config: keep compile time small. */
#define PATTERN_MAX 256

static void
check_address(const char *out, int len)
{
	const char *at = strchr(out, '@');

	if (len > ROUTE_ADDR_MAX || strlen(out) != (size_t)len || at == NULL ||
	    at == out || at[1] == '\0' || strchr(at + 1, '@'))
		abort();
	for (int i = 0; i < len; i++)
		if ((unsigned char)out[i] <= 0x20 || out[i] == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pcre2_match_context *mctx;
	const uint8_t *p = data, *end = data + size;
	char *pattern = fuzz_take(&p, end, 0), *tmpl = fuzz_take(&p, end, 0), *subject = fuzz_take(&p, end, 0);
	char out[ROUTE_ADDR_MAX + 1];
	PCRE2_SIZE offset;
	pcre2_code *re = NULL;
	int code;

	if (mctx == NULL && (mctx = route_match_context()) == NULL)
		abort();
	subject[strnlen(subject, ROUTE_ADDR_MAX)] = '\0';
	for (char *c = subject; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strlen(pattern) <= PATTERN_MAX &&
	    (re = route_compile(pattern, &code, &offset)) != NULL) {
		pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
		if (md == NULL)
			abort();
		if (pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, mctx) > 0) {
			int len = route_expand(tmpl, subject, pcre2_get_ovector_pointer(md),
			    pcre2_get_ovector_count(md), out);
			if (len >= 0)
				check_address(out, len);
		}
		pcre2_match_data_free(md);
		pcre2_code_free(re);
	}
	free(pattern);
	free(tmpl);
	free(subject);
	return 0;
}
