/*
 * tests/unit/test_util.c - base64 (SASL), CIDR matching (relay_networks)
 * and SMTP client reply parsing.
 */
#include <stdio.h>
#include <string.h>

#include "settings.h"
#include "smtp_client.h"
#include "test.h"
#include "util.h"

static void
test_base64(void)
{
	static const struct { const char *plain; size_t len; const char *b64; } cases[] = {
		{ "", 0, "" }, { "f", 1, "Zg==" }, { "fo", 2, "Zm8=" },
		{ "foo", 3, "Zm9v" }, { "foobar", 6, "Zm9vYmFy" },
		{ "\0alice@example.test\0pw", 22, "AGFsaWNlQGV4YW1wbGUudGVzdABwdw==" },
	};
	static const char *const bad[] = { "Zg=", "Z===", "Zm9v!", "=Zm9", "Zg==Zg==" };
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[96];
		int n = mp_base64_decode(cases[i].b64, out, sizeof(out));
		snprintf(name, sizeof(name), "base64 decode \"%s\"", cases[i].b64);
		CHECK(name, n == (int)cases[i].len && memcmp(out, cases[i].plain,
		    cases[i].len) == 0);
		mp_base64_encode(cases[i].plain, cases[i].len, out, sizeof(out));
		snprintf(name, sizeof(name), "base64 encode to \"%s\"", cases[i].b64);
		CHECK_STR(name, out, cases[i].b64);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "base64 refuses \"%s\"", bad[i]);
		CHECK(name, mp_base64_decode(bad[i], out, sizeof(out)) < 0);
	}
	CHECK("base64 refuses output that does not fit",
	    mp_base64_decode("Zm9vYmFy", out, 6) < 0);
}

static void
test_cidr(void)
{
	static const struct { const char *net, *addr; int match; } cases[] = {
		{ "127.0.0.0/8", "127.0.0.1", 1 }, { "127.0.0.0/8", "127.255.1.2", 1 },
		{ "127.0.0.0/8", "128.0.0.1", 0 }, { "192.0.2.1", "192.0.2.1", 1 },
		{ "192.0.2.1", "192.0.2.2", 0 }, { "10.1.0.0/15", "10.0.255.255", 1 },
		{ "10.1.0.0/15", "10.2.0.0", 0 }, { "0.0.0.0/0", "203.0.113.9", 1 },
		{ "::1", "::1", 1 }, { "2001:db8::/32", "2001:db8:1::5", 1 },
		{ "2001:db8::/32", "2001:db9::1", 0 }, { "127.0.0.0/8", "::1", 0 },
	};
	static const char *const bad[] = { "", "300.0.0.1", "10.0.0.0/33", "10.0.0.0/",
	    "10.0.0.0/x", "example.test", "::1/129" };
	struct mp_cidr c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[96];
		snprintf(name, sizeof(name), "%s %s %s", cases[i].addr,
		    cases[i].match ? "in" : "not in", cases[i].net);
		CHECK(name, mp_cidr_parse(cases[i].net, &c) == 0 &&
		    mp_cidr_match(&c, cases[i].addr) == cases[i].match);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "CIDR \"%s\" refused", bad[i]);
		CHECK(name, mp_cidr_parse(bad[i], &c) < 0);
	}
}

static void
test_replies(void)
{
	static const struct { const char *line; int ok, code, more; const char *enh, *text; } cases[] = {
		{ "250 2.1.0 Sender ok", 1, 250, 0, "2.1.0", "Sender ok" },
		{ "250-PIPELINING", 1, 250, 1, "", "PIPELINING" },
		{ "550 5.1.1 <a@b>: no such user", 1, 550, 0, "5.1.1", "<a@b>: no such user" },
		{ "451 Try later", 1, 451, 0, "", "Try later" },
		{ "220", 1, 220, 0, "", "" },
		{ "354 End data with <CR><LF>.<CR><LF>", 1, 354, 0, "", "End data with <CR><LF>.<CR><LF>" },
		{ "250 4.1.0 mismatched class", 1, 250, 0, "", "4.1.0 mismatched class" },
		{ "25 short", 0, 0, 0, "", "" },
		{ "abc def", 0, 0, 0, "", "" },
		{ "2500 x", 0, 0, 0, "", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int code = 0, more = 0;
		char enh[16], name[128];
		const char *text = NULL;
		int rc = smtp_client_parse_reply(cases[i].line, &code, &more, enh,
		    sizeof(enh), &text);
		snprintf(name, sizeof(name), "reply \"%s\"", cases[i].line);
		if (!cases[i].ok) {
			CHECK(name, rc < 0);
			continue;
		}
		CHECK(name, rc == 0 && code == cases[i].code && more == cases[i].more);
		CHECK_STR(name, enh, cases[i].enh);
		CHECK_STR(name, text, cases[i].text);
	}
}

int
main(void)
{
	test_base64();
	test_cidr();
	test_replies();
	TEST_EXIT();
}
