/*
 * tests/unit/test_dmarc.c - the DMARC engine (modules/dmarc): record
 * parser, organisational domains from a small Public Suffix List (and
 * Debian's real one when installed), alignment, policy discovery and the
 * disposition with pct driven by a scripted random source.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "test.h"
#include "modules/dmarc/dmarc.h"

static const char *psl_text =
	"// comment line\n"
	"com\nuk\nco.uk\ntest\n"
	"// wildcard and exception, as the real list has for .ck\n"
	"*.ck\n!www.ck\n"
	"*.kawasaki.jp\n!city.kawasaki.jp\n"
	"blogspot.com   trailing words are ignored\n";

static void
test_record(void)
{
	struct dmarc_record r;
	const char *err;

	CHECK("dmarc parse full", dmarc_record_parse("v=DMARC1; p=reject; sp=quarantine; pct=30; "
	    "adkim=s; aspf=r; rua=mailto:agg@example.test; ruf=mailto:f@example.test; fo=1; ri=3600",
	    &r, &err) == 0);
	CHECK("dmarc parse values", r.p == DMARC_POLICY_REJECT && r.sp == DMARC_POLICY_QUARANTINE &&
	    r.pct == 30 && r.adkim_strict && !r.aspf_strict && r.ri == 3600);
	CHECK_STR("dmarc parse rua kept", r.rua, "mailto:agg@example.test");
	CHECK_STR("dmarc parse ruf kept", r.ruf, "mailto:f@example.test");
	dmarc_record_clear(&r);

	CHECK("dmarc parse minimal", dmarc_record_parse("v=DMARC1;p=quarantine", &r, &err) == 0 &&
	    r.p == DMARC_POLICY_QUARANTINE && r.sp == DMARC_POLICY_QUARANTINE && r.pct == 100 &&
	    !r.adkim_strict && !r.aspf_strict && r.rua == NULL);
	dmarc_record_clear(&r);
	CHECK("dmarc parse spaces and case", dmarc_record_parse(" v = DMARC1 ;\tP = Reject ; ", &r, &err) == 0 &&
	    r.p == DMARC_POLICY_REJECT);
	dmarc_record_clear(&r);
	CHECK("dmarc parse bad pct defaults", dmarc_record_parse("v=DMARC1; p=none; pct=101; adkim=x", &r, &err) == 0 &&
	    r.pct == 100 && !r.adkim_strict);
	dmarc_record_clear(&r);
	CHECK("dmarc parse no p but rua is none", dmarc_record_parse("v=DMARC1; rua=mailto:a@b.test", &r, &err) == 0 &&
	    r.p == DMARC_POLICY_NONE && !r.p_valid);
	dmarc_record_clear(&r);
	CHECK("dmarc parse no p refused", dmarc_record_parse("v=DMARC1; pct=50", &r, &err) < 0);
	CHECK("dmarc parse bad p refused", dmarc_record_parse("v=DMARC1; p=bounce", &r, &err) < 0);
	CHECK("dmarc parse v not first", dmarc_record_parse("p=reject; v=DMARC1", &r, &err) < 0);
	CHECK("dmarc parse v case-sensitive value", dmarc_record_parse("v=dmarc1; p=reject", &r, &err) < 0);
	CHECK("dmarc parse DMARC10", dmarc_record_parse("v=DMARC10; p=reject", &r, &err) < 0);
}

static void
check_org(const struct dmarc_psl *psl, const char *domain, const char *want)
{
	char out[256], name[160];

	snprintf(name, sizeof(name), "dmarc org domain of %s", domain);
	if (dmarc_org_domain(psl, domain, out, sizeof(out)) < 0)
		strcpy(out, "(error)");
	CHECK_STR(name, out, want);
}

static void
test_psl(void)
{
	struct dmarc_psl *psl;
	const char *err;

	CHECK("dmarc psl load", dmarc_psl_load_text(psl_text, &psl, &err) == 0);
	check_org(psl, "mail.example.com", "example.com");
	check_org(psl, "Example.COM.", "example.com");
	check_org(psl, "a.b.c.example.co.uk", "example.co.uk");
	check_org(psl, "example.co.uk", "example.co.uk");
	check_org(psl, "co.uk", "co.uk");
	check_org(psl, "x.y.blogspot.com", "y.blogspot.com");
	check_org(psl, "a.b.foo.ck", "b.foo.ck");
	check_org(psl, "www.ck", "www.ck");
	check_org(psl, "a.www.ck", "www.ck");
	check_org(psl, "x.city.kawasaki.jp", "city.kawasaki.jp");
	check_org(psl, "x.y.other.kawasaki.jp", "y.other.kawasaki.jp");
	check_org(psl, "host.unlisted", "host.unlisted");	/* the "*" rule */
	check_org(psl, "", "(error)");

	CHECK("dmarc relaxed aligned", dmarc_aligned(psl, "mail.example.co.uk", "news.example.co.uk", false));
	CHECK("dmarc strict not aligned", !dmarc_aligned(psl, "mail.example.co.uk", "example.co.uk", true));
	CHECK("dmarc strict aligned", dmarc_aligned(psl, "Example.co.uk", "example.co.uk.", true));
	CHECK("dmarc relaxed other org", !dmarc_aligned(psl, "a.example.co.uk", "a.other.co.uk", false));
	CHECK("dmarc relaxed suffix siblings", !dmarc_aligned(psl, "one.co.uk", "two.co.uk", false));
	dmarc_psl_free(psl);

	const char *path = "/usr/share/publicsuffix/public_suffix_list.dat";
	if (dmarc_psl_load_file(path, &psl, &err) < 0) {
		printf("# skip - %s not installed (Debian package publicsuffix)\n", path);
		return;
	}
	check_org(psl, "mail.example.co.uk", "example.co.uk");
	check_org(psl, "a.b.example.com.au", "example.com.au");
	check_org(psl, "www.ck", "www.ck");
	check_org(psl, "x.yz.github.io", "yz.github.io");
	dmarc_psl_free(psl);
}

/* A fake zone of TXT records: "name=text" strings; "name=TEMPFAIL". */
struct fake {
	const char *const *rr;
	unsigned queries;
};

static enum dmarc_dns_status
fake_txt(void *ctx, const char *name, struct dmarc_txt_answer *a)
{
	struct fake *f = ctx;
	size_t nlen = strlen(name);

	f->queries++;
	for (const char *const *p = f->rr; *p != NULL; p++) {
		if (strncasecmp(*p, name, nlen) != 0 || (*p)[nlen] != '=')
			continue;
		if (strcmp(*p + nlen + 1, "TEMPFAIL") == 0)
			return DMARC_DNS_TEMPFAIL;
		dmarc_answer_add(a, *p + nlen + 1, strlen(*p + nlen + 1));
	}
	return a->count ? DMARC_DNS_FOUND : DMARC_DNS_NXDOMAIN;
}

static unsigned scripted_random;

static unsigned
next_random(void *ctx)
{
	(void)ctx;
	return scripted_random;
}

struct verdict {
	enum dmarc_result result;
	enum dmarc_policy policy, disposition;
	char policy_domain[256];
	unsigned queries;
};

static struct verdict
check(const char *const *zone, const char *from, const char *spf_domain, bool spf_pass,
    const char *dkim_domain, bool dkim_pass)
{
	struct dmarc_psl *psl;
	const char *err;
	struct fake f = { zone, 0 };
	struct dmarc_dns dns = { &f, fake_txt };
	struct dmarc_auth dkim = { dkim_domain, dkim_pass };
	struct dmarc_input in = { .from_domain = from, .spf = { spf_domain, spf_pass },
	    .dkim = &dkim, .dkim_count = dkim_domain ? 1 : 0 };
	struct dmarc_outcome out;
	struct verdict v;

	dmarc_psl_load_text(psl_text, &psl, &err);
	v.result = dmarc_check(&dns, psl, &in, next_random, NULL, &out);
	v.policy = out.policy;
	v.disposition = out.disposition;
	snprintf(v.policy_domain, sizeof(v.policy_domain), "%s", out.policy_domain);
	v.queries = f.queries;
	dmarc_record_clear(&out.record);
	dmarc_psl_free(psl);
	return v;
}

static void
test_check(void)
{
	static const char *const zone[] = {
		"_dmarc.example.co.uk=v=DMARC1; p=reject; sp=quarantine",
		"_dmarc.example.co.uk=some other text",
		"_dmarc.strict.test=v=DMARC1; p=reject; adkim=s; aspf=s",
		"_dmarc.half.test=v=DMARC1; p=reject; pct=50",
		"_dmarc.two.test=v=DMARC1; p=reject",
		"_dmarc.two.test=v=DMARC1; p=none",
		"_dmarc.temp.test=TEMPFAIL",
		"_dmarc.own.example.co.uk=v=DMARC1; p=none",
		NULL,
	};
	struct verdict v;

	v = check(zone, "example.co.uk", "example.co.uk", true, NULL, false);
	CHECK("dmarc spf aligned pass", v.result == DMARC_RESULT_PASS && v.disposition == DMARC_POLICY_NONE);
	v = check(zone, "example.co.uk", "bounce.example.co.uk", true, NULL, false);
	CHECK("dmarc spf relaxed subdomain pass", v.result == DMARC_RESULT_PASS);
	v = check(zone, "example.co.uk", "evil.test", true, "evil.test", true);
	CHECK("dmarc unaligned fail reject", v.result == DMARC_RESULT_FAIL &&
	    v.disposition == DMARC_POLICY_REJECT && v.policy == DMARC_POLICY_REJECT);
	v = check(zone, "example.co.uk", "example.co.uk", false, "mail.example.co.uk", true);
	CHECK("dmarc dkim relaxed pass", v.result == DMARC_RESULT_PASS);
	v = check(zone, "example.co.uk", "example.co.uk", false, "example.co.uk", false);
	CHECK("dmarc dkim failing signature is no pass", v.result == DMARC_RESULT_FAIL);
	v = check(zone, "news.example.co.uk", "evil.test", true, NULL, false);
	CHECK("dmarc subdomain uses sp", v.result == DMARC_RESULT_FAIL &&
	    v.policy == DMARC_POLICY_QUARANTINE && strcmp(v.policy_domain, "example.co.uk") == 0);
	CHECK("dmarc subdomain asked twice", v.queries == 2);
	v = check(zone, "own.example.co.uk", "evil.test", true, NULL, false);
	CHECK("dmarc subdomain own record", v.policy == DMARC_POLICY_NONE &&
	    strcmp(v.policy_domain, "own.example.co.uk") == 0 && v.queries == 1);
	v = check(zone, "strict.test", "mail.strict.test", true, "mail.strict.test", true);
	CHECK("dmarc strict unaligned", v.result == DMARC_RESULT_FAIL);
	v = check(zone, "strict.test", "strict.test", true, NULL, false);
	CHECK("dmarc strict aligned", v.result == DMARC_RESULT_PASS);
	v = check(zone, "nothing.test", "nothing.test", false, NULL, false);
	CHECK("dmarc no record none", v.result == DMARC_RESULT_NONE && v.disposition == DMARC_POLICY_NONE);
	v = check(zone, "two.test", "x.test", false, NULL, false);
	CHECK("dmarc two records none", v.result == DMARC_RESULT_NONE);
	v = check(zone, "temp.test", "x.test", false, NULL, false);
	CHECK("dmarc temperror", v.result == DMARC_RESULT_TEMPERROR);

	scripted_random = 49;
	v = check(zone, "half.test", "x.test", false, NULL, false);
	CHECK("dmarc pct sampled in", v.disposition == DMARC_POLICY_REJECT);
	scripted_random = 50;
	v = check(zone, "half.test", "x.test", false, NULL, false);
	CHECK("dmarc pct sampled out is quarantine", v.result == DMARC_RESULT_FAIL &&
	    v.disposition == DMARC_POLICY_QUARANTINE);
	scripted_random = 0;
}

int
main(void)
{
	test_record();
	test_psl();
	test_check();
	TEST_EXIT();
}
