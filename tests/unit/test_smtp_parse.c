/*
 * tests/unit/test_smtp_parse.c - the SMTP command parser, table-driven.
 */
#include <stdio.h>
#include <string.h>

#include "smtp_parse.h"
#include "test.h"

static void
test_verbs(void)
{
	static const struct { const char *line; enum smtp_verb verb;
	    const char *arg; } cases[] = {
		{ "EHLO client.example", SMTP_EHLO, "client.example" },
		{ "ehlo x", SMTP_EHLO, "x" },
		{ "HELO   spaced", SMTP_HELO, "spaced" },
		{ "MAIL FROM:<a@b.c>", SMTP_MAIL, "FROM:<a@b.c>" },
		{ "rcpt to:<a@b.c>", SMTP_RCPT, "to:<a@b.c>" },
		{ "DATA", SMTP_DATA, "" },
		{ "QUIT", SMTP_QUIT, "" },
		{ "NOOP", SMTP_NOOP, "" },
		{ "RSET", SMTP_RSET, "" },
		{ "STARTTLS", SMTP_STARTTLS, "" },
		{ "AUTH PLAIN", SMTP_AUTH, "PLAIN" },
		{ "DATAX", SMTP_UNKNOWN, "" },
		{ "MAILFROM:<a@b>", SMTP_UNKNOWN, "" },
		{ "", SMTP_UNKNOWN, "" },
		{ "GET / HTTP/1.0", SMTP_UNKNOWN, "/ HTTP/1.0" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_cmd cmd;
		char name[128];
		smtp_parse_command(cases[i].line, &cmd);
		snprintf(name, sizeof(name), "verb of \"%s\"", cases[i].line);
		CHECK(name, cmd.verb == cases[i].verb);
		snprintf(name, sizeof(name), "arg of \"%s\"", cases[i].line);
		CHECK_STR(name, cmd.arg, cases[i].arg);
	}
}

static void
test_paths(void)
{
	static const struct { const char *arg, *kw; int empty;
	    enum smtp_path_result r; const char *addr, *params; } cases[] = {
		{ "FROM:<alice@example.test>", "FROM", 1, SMTP_PATH_OK, "alice@example.test", "" },
		{ "from:<alice@example.test> SIZE=100", "FROM", 1, SMTP_PATH_OK, "alice@example.test", "SIZE=100" },
		{ "FROM: <a@b.c>", "FROM", 1, SMTP_PATH_OK, "a@b.c", "" },
		{ "FROM:<>", "FROM", 1, SMTP_PATH_OK, "", "" },
		{ "TO:<>", "TO", 0, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "TO:<@relay.example:bob@b.c>", "TO", 0, SMTP_PATH_OK, "bob@b.c", "" },
		{ "TO:<\"odd name\"@b.c>", "TO", 0, SMTP_PATH_OK, "\"odd name\"@b.c", "" },
		{ "TO:<a@[192.0.2.1]>", "TO", 0, SMTP_PATH_OK, "a@[192.0.2.1]", "" },
		{ "FROM:bogus", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<bogus>", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<a@b", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<a b@c.d>", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<a..b@c.d>", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<a@-c.d>", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<a@c.d>x", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "TO:<a@b.c>", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<\"unterminated@b.c>", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<a\x01@b.c>", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
		{ "FROM:<../../etc@b.c>", "FROM", 1, SMTP_PATH_SYNTAX, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char addr[320], name[160];
		const char *params = NULL;
		enum smtp_path_result r = smtp_parse_path(cases[i].arg,
		    cases[i].kw, cases[i].empty, addr, sizeof(addr), &params);
		snprintf(name, sizeof(name), "path result of \"%s\"", cases[i].arg);
		CHECK(name, r == cases[i].r);
		if (cases[i].r != SMTP_PATH_OK || r != SMTP_PATH_OK)
			continue;
		snprintf(name, sizeof(name), "address of \"%s\"", cases[i].arg);
		CHECK_STR(name, addr, cases[i].addr);
		snprintf(name, sizeof(name), "params of \"%s\"", cases[i].arg);
		CHECK_STR(name, params, cases[i].params);
	}
}

static void
test_limits(void)
{
	char arg[600], addr[320];
	const char *params;

	/* RFC 5321 4.5.3.1.1: local part at most 64 octets. */
	memset(arg, 0, sizeof(arg));
	strcpy(arg, "FROM:<");
	memset(arg + 6, 'a', 65);
	strcat(arg, "@b.c>");
	CHECK("local part of 65 octets is too long",
	    smtp_parse_path(arg, "FROM", 1, addr, sizeof(addr), &params) ==
	    SMTP_PATH_TOO_LONG);
	arg[6 + 64] = '@';
	arg[6 + 65] = '\0';
	strcat(arg, "b.c>");
	CHECK("local part of 64 octets is fine",
	    smtp_parse_path(arg, "FROM", 1, addr, sizeof(addr), &params) ==
	    SMTP_PATH_OK);
	strcpy(arg, "FROM:<a@");
	memset(arg + 8, 'b', 300);
	strcpy(arg + 308, ".c>");
	CHECK("path over 256 octets is too long",
	    smtp_parse_path(arg, "FROM", 1, addr, sizeof(addr), &params) ==
	    SMTP_PATH_TOO_LONG);
}

static void
test_params(void)
{
	struct smtp_mail_params p;
	char bad[64];

	CHECK("no params", smtp_parse_mail_params("", &p, bad, sizeof(bad)) == 0 &&
	    p.size == -1);
	CHECK("SIZE=12345", smtp_parse_mail_params("SIZE=12345", &p, bad,
	    sizeof(bad)) == 0 && p.size == 12345);
	CHECK("BODY=8BITMIME SMTPUTF8", smtp_parse_mail_params(
	    "BODY=8BITMIME SMTPUTF8", &p, bad, sizeof(bad)) == 0 &&
	    p.body_8bit && p.smtputf8);
	CHECK("BODY=7BIT", smtp_parse_mail_params("body=7bit", &p, bad,
	    sizeof(bad)) == 0 && !p.body_8bit);
	CHECK("huge SIZE saturates", smtp_parse_mail_params(
	    "SIZE=99999999999999999999", &p, bad, sizeof(bad)) == 0 &&
	    p.size > 1000000000000LL);
	CHECK("SIZE=abc refused", smtp_parse_mail_params("SIZE=abc", &p, bad,
	    sizeof(bad)) < 0);
	CHECK("unknown param refused and named", smtp_parse_mail_params(
	    "FOO=1", &p, bad, sizeof(bad)) < 0 && strcmp(bad, "FOO") == 0);
	CHECK("BODY=BINARYMIME refused", smtp_parse_mail_params(
	    "BODY=BINARYMIME", &p, bad, sizeof(bad)) < 0);
}

static void
test_split(void)
{
	char l[64], d[64];

	CHECK("split a@b.c", smtp_split_address("a@b.c", l, sizeof(l), d,
	    sizeof(d)) == 0 && strcmp(l, "a") == 0 && strcmp(d, "b.c") == 0);
	CHECK("split quoted \"x@y\"@b.c at last @", smtp_split_address(
	    "\"x@y\"@b.c", l, sizeof(l), d, sizeof(d)) == 0 &&
	    strcmp(d, "b.c") == 0);
	CHECK("no @ refused", smtp_split_address("ab", l, sizeof(l), d,
	    sizeof(d)) < 0);
	CHECK("empty domain refused", smtp_split_address("a@", l, sizeof(l),
	    d, sizeof(d)) < 0);
}

int
main(void)
{
	test_verbs();
	test_paths();
	test_limits();
	test_params();
	test_split();
	TEST_EXIT();
}
