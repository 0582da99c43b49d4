/*
 * tests/unit/test_spf.c - the SPF engine (modules/spf): record parser,
 * macro expansion with RFC 7208 7.4's examples, the processing limits
 * and evaluation on a fake zone (tests/tools/spf_zone.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "tests/tools/spf_zone.h"

static void
test_parser(void)
{
	static const struct { const char *rec; int ok; } cases[] = {
		{ "v=spf1", 1 }, { "v=spf1 -all", 1 }, { "V=SPF1 +ALL", 1 },
		{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all", 1 },
		{ "v=spf1 a mx ptr a:x.example/24//64 mx//0 a/0", 1 },
		{ "v=spf1 include:_spf.example.com exists:%{i}.x.example ?all", 1 },
		{ "v=spf1 redirect=%{d}.example exp=e.%{d2}", 1 },
		{ "v=spf1 unknown-mod=anything%%here", 1 },
		{ "v=spf1   -all   ", 1 },
		{ "v=spf1 ip4:192.0.2.0/33", 0 }, { "v=spf1 ip4:192.0.2.0/024", 0 },
		{ "v=spf1 ip4:1.2.3", 0 }, { "v=spf1 ip6:2001:db8::/129", 0 },
		{ "v=spf1 a//", 0 }, { "v=spf1 a:", 0 }, { "v=spf1 include", 0 },
		{ "v=spf1 all:x.example", 0 }, { "v=spf1 foo", 0 },
		{ "v=spf1 -redirect=x.example", 0 },
		{ "v=spf1 redirect=a.example redirect=b.example", 0 },
		{ "v=spf1 exp=a.example exp=b.example", 0 },
		{ "v=spf1 exists:%{x}.example", 0 }, { "v=spf1 exists:%{c}.example", 0 },
		{ "v=spf1 exists:%{d0}.example", 0 }, { "v=spf1 exists:a%b.example", 0 },
		{ "v=spf1 a:example.123", 0 }, { "v=spf1 a:nodot", 0 },
		{ "v=spf1 mod=%{", 0 }, { "v=spf10", 0 }, { "spf1 -all", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spf_record *rec = NULL;
		const char *err = NULL;
		char name[160];
		int r = spf_record_parse(cases[i].rec, &rec, &err);
		snprintf(name, sizeof(name), "spf parse \"%s\" %s", cases[i].rec,
		    cases[i].ok ? "accepted" : "refused");
		CHECK(name, (r == 0) == cases[i].ok);
		spf_record_free(rec);
	}

	struct spf_record *rec;
	const char *err;
	CHECK("spf parse terms", spf_record_parse("v=spf1 -a:x.example/24//64 ~ip6:2001:db8::/48 "
	    "redirect=r.example", &rec, &err) == 0);
	CHECK("spf parse a qualifier and cidrs", rec->count == 2 && rec->terms[0].qualifier == '-' &&
	    rec->terms[0].mech == SPF_MECH_A && rec->terms[0].cidr4 == 24 &&
	    rec->terms[0].cidr6 == 64 && strcmp(rec->terms[0].domain_spec, "x.example") == 0);
	CHECK("spf parse ip6 network", rec->terms[1].qualifier == '~' &&
	    rec->terms[1].cidr6 == 48 && rec->terms[1].net[0] == 0x20 && rec->terms[1].net[1] == 0x01);
	CHECK_STR("spf parse redirect", rec->redirect, "r.example");
	spf_record_free(rec);
}

static struct spf_macro_env
rfc_env(const char *ip)
{
	struct spf_macro_env env = {
		.sender = "strong-bad@email.example.com", .local = "strong-bad",
		.sender_domain = "email.example.com", .domain = "email.example.com",
		.helo = "mx.example.org", .receiver = "rx.example.net", .now = 1234,
	};
	spf_ip_parse(ip, &env.ip);
	return env;
}

static void
check_macro(const char *ip, const char *in, bool explain, const char *want)
{
	struct spf_macro_env env = rfc_env(ip);
	char out[1024], name[160];
	const char *err = "";

	snprintf(name, sizeof(name), "spf macro %s (%s)", in, ip);
	if (spf_macro_expand(in, strlen(in), &env, explain, !explain, out, sizeof(out), &err) < 0)
		snprintf(out, sizeof(out), "error: %s", err);
	CHECK_STR(name, out, want);
}

static void
test_macros(void)
{
	/* RFC 7208 7.4 */
	static const struct { const char *in, *want; } rfc[] = {
		{ "%{s}", "strong-bad@email.example.com" }, { "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" }, { "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" }, { "%{d2}", "example.com" },
		{ "%{d1}", "com" }, { "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" }, { "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" }, { "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" }, { "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
	};
	for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++)
		check_macro("192.0.2.3", rfc[i].in, false, rfc[i].want);
	check_macro("2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}",
	    false, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
	/* URL escaping, %% %_ %-, explanation-only letters */
	check_macro("192.0.2.3", "%{S}", true, "strong-bad%40email.example.com");
	check_macro("192.0.2.3", "a%%b%_c%-d", true, "a%b c%20d");
	check_macro("2001:db8::cb01", "%{c} %{r} %{t}", true, "2001:db8::cb01 rx.example.net 1234");
	check_macro("192.0.2.3", "%{c}", false, "error: bad macro");
	check_macro("192.0.2.3", "%{d0}", false, "error: bad macro");
	check_macro("192.0.2.3", "%{d", false, "error: bad macro");
	check_macro("192.0.2.3", "%x", false, "error: bad macro");
	check_macro("192.0.2.3", "a b", false, "error: bad character in macro-string");
	check_macro("192.0.2.3", "%{p}", false, "unknown");
	check_macro("192.0.2.3", "%{d99}", false, "email.example.com");
	check_macro("192.0.2.3", "%{s=.-+,/_}", false, "strong.bad@email.example.com");

	/* 7.3: over 253 octets, labels go from the left */
	char spec[400] = "";
	for (int i = 0; i < 30; i++)
		strcat(spec, "%{d2}.");
	strcat(spec, "end.test");
	struct spf_macro_env env = rfc_env("192.0.2.3");
	char out[1024];
	const char *err;
	CHECK("spf macro long expansion", spf_macro_expand(spec, strlen(spec), &env, false,
	    true, out, sizeof(out), &err) == 0);
	CHECK("spf macro trimmed to 253", strlen(out) <= 253 && out[0] != '.' &&
	    strcmp(out + strlen(out) - 8, "end.test") == 0 && strlen(out) > 240);
	CHECK("spf macro overflow refused", spf_macro_expand(spec, strlen(spec), &env, false,
	    true, out, 64, &err) < 0);
	/* a single label over 253 octets has nothing to drop (found by fuzz_spf_macro) */
	char label[300];
	memset(label, 'I', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	CHECK("spf macro one label over 253 refused", spf_macro_expand(label, strlen(label),
	    &env, false, true, out, sizeof(out), &err) < 0 && strstr(err, "253") != NULL);
}

struct run {
	enum spf_result result;
	struct spf_outcome out;
	unsigned queries;
};

static struct run
run_zone(const char *zone_text, const char *ip, const char *sender, const char *helo)
{
	struct zone z;
	struct run r;
	struct spf_request req = { .sender = sender, .helo = helo, .receiver = "rx.test", .now = 1 };

	zone_load(&z, zone_text);
	spf_ip_parse(ip, &req.ip);
	struct spf_dns dns = zone_dns(&z);
	r.result = spf_check_mailfrom(&dns, &req, &r.out);
	r.queries = z.queries;
	zone_free(&z);
	return r;
}

static void
expect(const char *name, const char *zone, const char *ip, const char *sender,
    enum spf_result want)
{
	struct run r = run_zone(zone, ip, sender, "helo.test");

	CHECK_STR(name, spf_result_name(r.result), spf_result_name(want));
}

static void
test_eval(void)
{
	const char *s = "u@ex.test";
	expect("spf eval ip4 pass", "ex.test TXT v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.9", s, SPF_RESULT_PASS);
	expect("spf eval mapped ipv6 is ipv4", "ex.test TXT v=spf1 ip4:192.0.2.9 -all",
	    "::ffff:192.0.2.9", s, SPF_RESULT_PASS);
	expect("spf eval fail", "ex.test TXT v=spf1 ip4:192.0.2.0/24 -all", "192.0.3.9", s, SPF_RESULT_FAIL);
	expect("spf eval none", "ex.test A 192.0.2.1", "192.0.2.1", s, SPF_RESULT_NONE);
	expect("spf eval single label is none", "test TXT v=spf1 +all", "192.0.2.1", "u@test", SPF_RESULT_NONE);
	expect("spf eval tempfail", "ex.test TXT TEMPFAIL", "192.0.2.1", s, SPF_RESULT_TEMPERROR);
	expect("spf eval two records", "ex.test TXT v=spf1 -all\nex.test TXT v=spf1 +all",
	    "192.0.2.1", s, SPF_RESULT_PERMERROR);
	expect("spf eval mx over 10 names", "ex.test TXT v=spf1 mx -all\n"
	    "ex.test MX 1 a.test\nex.test MX 1 b.test\nex.test MX 1 c.test\nex.test MX 1 d.test\n"
	    "ex.test MX 1 e.test\nex.test MX 1 f.test\nex.test MX 1 g.test\nex.test MX 1 h.test\n"
	    "ex.test MX 1 i.test\nex.test MX 1 j.test\nex.test MX 1 k.test", "192.0.2.1", s, SPF_RESULT_PERMERROR);
	/* MX hosts without AAAA are no void lookups (per term, 4.6.4) */
	expect("spf eval mx hosts lacking AAAA", "ex.test TXT v=spf1 mx ~all\n"
	    "ex.test MX 1 a.test\nex.test MX 1 b.test\nex.test MX 1 c.test\n"
	    "a.test A 192.0.2.1\nb.test A 192.0.2.2\nc.test A 192.0.2.3", "2001:db8::1", s, SPF_RESULT_SOFTFAIL);
	expect("spf eval ptr dns error is no match", "ex.test TXT v=spf1 ptr ~all\n"
	    "1.2.0.192.in-addr.arpa PTR TEMPFAIL", "192.0.2.1", s, SPF_RESULT_SOFTFAIL);
	expect("spf eval null sender uses helo", "helo.test TXT v=spf1 +all", "192.0.2.1", "", SPF_RESULT_PASS);

	/* 10 DNS terms are fine, the 11th is a permerror, and no query is made for it */
	char zone[4096] = "ex.test TXT v=spf1";
	for (int i = 0; i < 11; i++)
		snprintf(zone + strlen(zone), sizeof(zone) - strlen(zone), " a:h%d.test", i);
	strcat(zone, " +all\n");
	for (int i = 0; i < 11; i++)
		snprintf(zone + strlen(zone), sizeof(zone) - strlen(zone), "h%d.test A 198.51.100.%d\n", i, i);
	struct run r = run_zone(zone, "192.0.2.1", s, "h.test");
	CHECK_STR("spf eval 11 lookups", spf_result_name(r.result), "permerror");
	CHECK("spf eval lookups counted", r.out.lookups == 11 && r.queries == 11);
	CHECK("spf eval limit problem", strstr(r.out.problem, "10 DNS") != NULL);

	r = run_zone("ex.test TXT v=spf1 a:n1.test a:n2.test a:n3.test +all", "192.0.2.1", s, "h.test");
	CHECK_STR("spf eval void limit", spf_result_name(r.result), "permerror");
	CHECK("spf eval void count", r.out.void_lookups == 3);
	r = run_zone("ex.test TXT v=spf1 a:n1.test a:n2.test +all", "192.0.2.1", s, "h.test");
	CHECK_STR("spf eval two voids pass", spf_result_name(r.result), "pass");

	r = run_zone("ex.test TXT v=spf1 a:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.test +all",
	    "192.0.2.1", s, "h.test");
	CHECK("spf eval long label asks nothing", r.result == SPF_RESULT_PASS && r.queries == 1);

	/* an include loop ends at the lookup limit, bounded */
	r = run_zone("ex.test TXT v=spf1 include:ex.test -all", "192.0.2.1", s, "h.test");
	CHECK_STR("spf eval self include", spf_result_name(r.result), "permerror");
	CHECK("spf eval self include bounded", r.queries <= 12);

	/* %{p}: one PTR query and its address checks, however often it is used */
	r = run_zone("ex.test TXT v=spf1 exists:%{p}.a.test exists:%{p}.b.test exists:%{p}.c.test ~all\n"
	    "1.2.0.192.in-addr.arpa PTR other.test\n1.2.0.192.in-addr.arpa PTR mx.ex.test\n"
	    "1.2.0.192.in-addr.arpa PTR fake.ex.test\n"
	    "other.test A 192.0.2.1\nmx.ex.test A 192.0.2.1\nfake.ex.test A 192.0.2.99\n"
	    "mx.ex.test.c.test A 127.0.0.2", "192.0.2.1", s, "h.test");
	CHECK_STR("spf eval p macro prefers the domain's name", spf_result_name(r.result), "pass");
	CHECK("spf eval p macro looked up once", r.queries == 1 + 4 + 3);

	r = run_zone("ex.test TXT v=spf1 -all exp=why.ex.test\nwhy.ex.test TXT %{i} not for %{d} (%{h})",
	    "192.0.2.1", s, "h.test");
	CHECK_STR("spf eval explanation", r.out.explanation, "192.0.2.1 not for ex.test (h.test)");
	r = run_zone("ex.test TXT v=spf1 -all exp=why.ex.test\nwhy.ex.test TXT %{x}", "192.0.2.1", s, "h.test");
	CHECK("spf eval bad explanation keeps fail", r.result == SPF_RESULT_FAIL && r.out.explanation[0] == '\0');
	r = run_zone("ex.test TXT v=spf1 include:i.test -all exp=why.ex.test\ni.test TXT v=spf1 ip4:192.0.2.1 -all",
	    "192.0.2.1", s, "h.test");
	CHECK("spf eval pass has no explanation", r.result == SPF_RESULT_PASS && r.out.explanation[0] == '\0');
}

int
main(void)
{
	test_parser();
	test_macros();
	test_eval();
	TEST_EXIT();
}
