/*
 * tests/unit/test_route_regex.c - route_regex's pure parts: $n expansion
 * of a rewrite target (what is and is not an address) and the match
 * limits every rule runs under, so a pathological rule cannot burn a
 * core on a client's recipient.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "modules/route_regex/route_expand.h"
#include "test.h"

/* Match subject against pattern under the module's limits; expand tmpl.
 * The expansion, or "(refused)" / "(no match)". */
static const char *
rewrite(const char *pattern, const char *tmpl, const char *subject)
{
	static char out[ROUTE_ADDR_MAX + 1];
	pcre2_match_context *ctx = route_match_context();
	PCRE2_SIZE offset;
	int code, rc;
	pcre2_code *re = route_compile(pattern, &code, &offset);
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);

	rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, ctx);
	if (rc <= 0)
		snprintf(out, sizeof(out), "(no match)");
	else if (route_expand(tmpl, subject, pcre2_get_ovector_pointer(md),
	    pcre2_get_ovector_count(md), out) < 0)
		snprintf(out, sizeof(out), "(refused)");
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	pcre2_match_context_free(ctx);
	return out;
}

static void
test_expand(void)
{
	char long_local[400];

	CHECK_STR("plus addressing", rewrite("^(.+)\\+[^@]*@(.*)$", "$1@$2",
	    "alice+tag@example.test"), "alice@example.test");
	CHECK_STR("$0 is the whole match", rewrite("^.*$", "x.$0", "a@b"), "x.a@b");
	CHECK_STR("a group beyond the pattern's expands to nothing",
	    rewrite("^(.*)@(.*)$", "$1$9@$2", "a@b"), "a@b");
	CHECK_STR("a lone $ is kept", rewrite("^(.*)@(.*)$", "$1$@$2", "a@b"), "a$@b");
	CHECK_STR("two @ refused", rewrite("^(.*)$", "$1@x", "a@b"), "(refused)");
	CHECK_STR("empty local part refused", rewrite("^(.*)@(.*)$", "@$2", "a@b"), "(refused)");
	CHECK_STR("empty domain refused", rewrite("^(.*)@(.*)$", "$1@", "a@b"), "(refused)");
	CHECK_STR("space refused", rewrite("^(.*)@(.*)$", "$1 x@$2", "a@b"), "(refused)");
	memset(long_local, 'a', 300);
	strcpy(long_local + 300, "@example.test");
	CHECK_STR("over 320 octets refused", rewrite("^(.*)@(.*)$", "$1$1@$2",
	    long_local), "(refused)");
	CHECK_STR("exactly at the bound kept", strlen(rewrite("^(.*)@(.*)$", "$1@$2",
	    long_local)) == 313 ? "kept" : "lost", "kept");
}

static void
test_limits(void)
{
	char subject[64];
	struct timespec t0, t1;
	pcre2_match_context *ctx = route_match_context();
	PCRE2_SIZE offset;
	int code;
	pcre2_code *re = route_compile("^(a|aa)+$", &code, &offset);
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);

	memset(subject, 'a', 60);
	strcpy(subject + 60, "b");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, ctx);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK("exponential backtracking stops at the match limit",
	    rc == PCRE2_ERROR_MATCHLIMIT);
	CHECK("and within a second", secs < 1.0);
	pcre2_match_data_free(md);
	pcre2_code_free(re);

	/* Each nested group iteration is a frame: over the depth limit. */
	char deep[ROUTE_DEPTH_LIMIT * 2 + 2];
	memset(deep, 'a', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	re = route_compile("^(?:(a)(?1)?)*b", &code, &offset);
	md = pcre2_match_data_create_from_pattern(re, NULL);
	rc = pcre2_match(re, (PCRE2_SPTR)deep, strlen(deep), 0, 0, md, ctx);
	CHECK("deep recursion stops at the depth limit", rc == PCRE2_ERROR_DEPTHLIMIT);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	pcre2_match_context_free(ctx);
}

int
main(void)
{
	test_expand();
	test_limits();
	TEST_EXIT();
}
