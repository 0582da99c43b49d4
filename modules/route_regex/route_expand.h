/*
 * modules/route_regex/route_expand.h - private to route_regex: the pure
 * parts of a rule (compiling a pattern, the bounded match context and
 * the $0..$9 expansion of a `to` template), apart from the config code
 * so tests/fuzz/fuzz_route_regex.c links them alone.
 */
#ifndef ROUTE_EXPAND_H
#define ROUTE_EXPAND_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stdint.h>

#define ROUTE_ADDR_MAX 320

/* Bounds on one match (a recipient is client input): total backtracking
 * steps, nesting depth, and the heap PCRE2 may take for its frames. */
#define ROUTE_MATCH_LIMIT 100000
#define ROUTE_DEPTH_LIMIT 10000
#define ROUTE_HEAP_LIMIT_KIB 4096

/* A rule's pattern, compiled as every rule is (UTF, caseless); NULL with
 * *code_r / *offset_r set as pcre2_compile() sets them. */
pcre2_code *route_compile(const char *pattern, int *code_r, PCRE2_SIZE *offset_r);

/* A match context carrying the limits above; NULL when out of memory. */
pcre2_match_context *route_match_context(void);

/*
 * Expand $0..$9 in tmpl from a match of subject (ovector ov with pairs
 * pairs; an unset group or one beyond pairs expands to nothing) into out.
 * The result must be one address: a non-empty local part, one '@', a
 * non-empty domain, no control characters or spaces, at most
 * ROUTE_ADDR_MAX octets. Its length, or -1 when it is no such address.
 */
int route_expand(const char *tmpl, const char *subject, const PCRE2_SIZE *ov,
    uint32_t pairs, char out[ROUTE_ADDR_MAX + 1]);

#endif
