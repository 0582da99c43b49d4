/*
 * modules/route_regex/route_expand.c - the pure parts of a route_regex
 * rule: compile a pattern, bound a match, expand a `to` template from
 * the capture groups. No config and no host calls, so the fuzzer
 * (tests/fuzz/fuzz_route_regex.c) runs exactly what the module runs.
 */
#include <ctype.h>
#include <string.h>

#include "route_expand.h"

pcre2_code *
route_compile(const char *pattern, int *code_r, PCRE2_SIZE *offset_r)
{
	return pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	    PCRE2_UTF | PCRE2_CASELESS, code_r, offset_r, NULL);
}

pcre2_match_context *
route_match_context(void)
{
	pcre2_match_context *ctx = pcre2_match_context_create(NULL);

	if (ctx == NULL)
		return NULL;
	/* No catastrophic backtracking, however a rule is written. */
	pcre2_set_match_limit(ctx, ROUTE_MATCH_LIMIT);
	pcre2_set_depth_limit(ctx, ROUTE_DEPTH_LIMIT);
	pcre2_set_heap_limit(ctx, ROUTE_HEAP_LIMIT_KIB);
	return ctx;
}

/* One address: local@domain, no space or control character. */
static int
is_address(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);

	if (at == NULL || at == s || (size_t)(at - s) + 1 == len ||
	    memchr(at + 1, '@', len - (size_t)(at - s) - 1))
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

int
route_expand(const char *tmpl, const char *subject, const PCRE2_SIZE *ov,
    uint32_t pairs, char out[ROUTE_ADDR_MAX + 1])
{
	size_t o = 0;

	for (const char *p = tmpl; *p; p++) {
		if (*p == '$' && isdigit((unsigned char)p[1])) {
			uint32_t g = (uint32_t)(p[1] - '0');
			p++;
			if (g >= pairs || ov[2 * g] == PCRE2_UNSET)
				continue;
			/* \K in a lookaround can end a match before it starts. */
			if (ov[2 * g + 1] < ov[2 * g])
				return -1;
			size_t len = ov[2 * g + 1] - ov[2 * g];
			if (len > ROUTE_ADDR_MAX - o)
				return -1;
			memcpy(out + o, subject + ov[2 * g], len);
			o += len;
		} else if (o < ROUTE_ADDR_MAX)
			out[o++] = *p;
		else
			return -1;
	}
	out[o] = '\0';
	return is_address(out, o) ? (int)o : -1;
}
