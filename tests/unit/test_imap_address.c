/*
 * tests/unit/test_imap_address.c - the RFC 5322 address parser
 * (modules/imap/imap_address.c) and the ENVELOPE built on it: a table of
 * header values and what the parser must report for each, then hostile
 * input that must cost bounded time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../modules/imap/imap.h"

struct render {
	char out[4096];
	size_t len;
};

/* Each address as [name|route|mailbox|host] ("-" for none), a group as
 * "G:name" and its end as ";". */
static void
collect(void *arg, const struct imap_addr *a)
{
	struct render *r = arg;
	size_t left = sizeof(r->out) - r->len;
	int n;

	if (a->kind == IMAP_ADDR_GROUP)
		n = snprintf(r->out + r->len, left, "G:%s ", a->name);
	else if (a->kind == IMAP_ADDR_GROUP_END)
		n = snprintf(r->out + r->len, left, "; ");
	else
		n = snprintf(r->out + r->len, left, "[%s|%s|%s|%s] ", a->name ? a->name : "-",
		    a->route ? a->route : "-", a->mailbox ? a->mailbox : "-",
		    a->host ? a->host : "-");
	if (n > 0 && (size_t)n < left)
		r->len += (size_t)n;
}

static const char *
parse(const char *value, size_t *count)
{
	static struct render r;

	memset(&r, 0, sizeof(r));
	*count = imap_addresses(value, strlen(value), collect, &r);
	if (r.len)
		r.out[--r.len] = '\0';	/* the last space */
	return r.out;
}

static const struct {
	const char *name, *value, *want;
} cases[] = {
	{ "bare addr-spec", "user@domain", "[-|-|user|domain]" },
	{ "name-addr", "Real Name <user@domain>", "[Real Name|-|user|domain]" },
	{ "quoted name with a comma, then a bare one",
	    "\"Doe, Jane\" <jane@x.test>, bob@y.test", "[Doe, Jane|-|jane|x.test] [-|-|bob|y.test]" },
	{ "comment after a bare address is its name", "user@domain (Real Name)",
	    "[Real Name|-|user|domain]" },
	{ "comment never part of the host", "user@domain.org(Real)",
	    "[Real|-|user|domain.org]" },
	{ "comments inside the address dropped", "<user-from (comment)@ (comment) domain.org>",
	    "[-|-|user-from|domain.org]" },
	{ "comment after a name-addr with a name is not the name",
	    "John <jdoe@one.test> (my dear friend)", "[John|-|jdoe|one.test]" },
	{ "comment after <addr> without a name is its name", "<a@b> (Ann)", "[Ann|-|a|b]" },
	{ "RFC 5322 A.5 comments everywhere",
	    "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	    "[Pete|-|pete|silly.test]" },
	{ "groups", "group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;",
	    "G:group [-|-|g1|d1.org] [-|-|g2|d2.org] ; G:group2 [-|-|g3|d3.org] ;" },
	{ "empty groups", "group:;, group2: (foo) ;", "G:group ; G:group2 ;" },
	{ "RFC 5322 A.1.3 group with comments",
	    "A Group(Some people):Chris Jones <c@(Chris's host.)public.example>, "
	    "joe@example.org, John <jdoe@one.test> (my dear friend); (the end of the group)",
	    "G:A Group [Chris Jones|-|c|public.example] [-|-|joe|example.org] "
	    "[John|-|jdoe|one.test] ;" },
	{ "group without its ';'", "undisclosed-recipients:", "G:undisclosed-recipients ;" },
	{ "source route", "<@route:user@domain>", "[-|@route|user|domain]" },
	{ "source route of two", "Joe <@r1.test, @r2.test:u@d>", "[Joe|@r1.test,@r2.test|u|d]" },
	{ "missing domain", "user", "[-|-|user|-]" },
	{ "missing domain after @", "user@", "[-|-|user|-]" },
	{ "null address", "<>", "[-|-|-|-]" },
	{ "encoded words left as they are", "=?utf-8?q?J=C3=B6rg?= <j@x.test>",
	    "[=?utf-8?q?J=C3=B6rg?=|-|j|x.test]" },
	{ "obs-phrase with a dot", "John Q. Public <jqp@x.test>", "[John Q. Public|-|jqp|x.test]" },
	{ "quoted local part", "\"quoted local\"@x.test", "[-|-|quoted local|x.test]" },
	{ "quoted-pair in a name", "\"a \\\"b\\\" c\" <a@b>", "[a \"b\" c|-|a|b]" },
	{ "domain literal", "a@[192.0.2.1]", "[-|-|a|[192.0.2.1]]" },
	{ "folded value", "Folded\r\n Name <a@b>,\r\n c@d", "[Folded Name|-|a|b] [-|-|c|d]" },
	{ "garbage skipped to the next comma", "garbage <<< , ok@x.test", "[-|-|ok|x.test]" },
	{ "empty elements", " , ,a@b,, ", "[-|-|a|b]" },
	{ "empty value", "", "" },
	{ "8-bit name (RFC 6532)", "J\xc3\xb6rg <j@x>", "[J\xc3\xb6rg|-|j|x]" },
};

static void
test_table(void)
{
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_STR(cases[i].name, parse(cases[i].value, &n), cases[i].want);
}

/* Input a client or sender controls must cost linear time and stop. */
static void
test_hostile(void)
{
	size_t big = 1 << 20, n;
	char *s = malloc(big + 1);

	memset(s, '(', big);
	s[big] = '\0';
	parse(s, &n);
	CHECK("a megabyte of open comments: nothing", n == 0);
	memset(s, '"', big);
	parse(s, &n);
	CHECK("a megabyte of quotes: at most one", n <= 1);
	for (size_t i = 0; i + 4 <= big; i += 4)
		memcpy(s + i, "a@b,", 4);
	parse(s, &n);
	CHECK("addresses capped at IMAP_ADDR_MAX", n == IMAP_ADDR_MAX);
	for (size_t i = 0; i + 2 <= big; i += 2)
		memcpy(s + i, "g:", 2);
	parse(s, &n);
	CHECK("nested group starts: one group, one member", n == 3);
	memset(s, '<', big);
	parse(s, &n);
	CHECK("a megabyte of '<': nothing", n == 0);
	free(s);
	const char bad[] = { 'a', '@', 'b', '\0', 'c', '@', 'd' };
	CHECK("a NUL octet is skipped like garbage",
	    imap_addresses(bad, sizeof(bad), collect, &(struct render){ 0 }) >= 1);
}

static char *
envelope(const char *hdr)
{
	char *out;
	size_t len;

	imap_envelope(hdr, strlen(hdr), &out, &len);
	return out;
}

static void
test_envelope(void)
{
	char *e = envelope("Date: Thu, 15 Feb 2007 01:02:03 +0200\r\nFrom: user@domain (Real Name)\r\n"
	    "Sender: \r\nReply-To:\r\nTo: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n"
	    "Cc: group:;, group2: (foo) ;\r\n\r\nbody\r\n");
	CHECK_STR("envelope: empty Sender and Reply-To take the From; groups", e,
	    "(\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL ((\"Real Name\" NIL \"user\" \"domain\")) "
	    "((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) "
	    "((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")"
	    "(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)) "
	    "((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) "
	    "NIL NIL NIL)");
	free(e);
	e = envelope("From: <@route:user@domain>\r\nSubject: \"quoted\" \\ back\r\n"
	    "Message-ID: <m@id>\r\nIn-Reply-To: <r@id>\r\n\r\n");
	CHECK_STR("envelope: route, escaped subject, ids", e,
	    "(NIL \"\\\"quoted\\\" \\\\ back\" ((NIL \"@route\" \"user\" \"domain\")) "
	    "((NIL \"@route\" \"user\" \"domain\")) ((NIL \"@route\" \"user\" \"domain\")) "
	    "NIL NIL NIL \"<r@id>\" \"<m@id>\")");
	free(e);
	e = envelope("From: user\r\nTo: <>\r\nSubject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\n");
	CHECK_STR("envelope: missing parts are placeholders, never NIL; 8-bit as a literal", e,
	    "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e ((NIL NIL \"user\" \"MISSING_DOMAIN\")) "
	    "((NIL NIL \"user\" \"MISSING_DOMAIN\")) ((NIL NIL \"user\" \"MISSING_DOMAIN\")) "
	    "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) NIL NIL NIL NIL)");
	free(e);
	e = envelope("Subject: x\r\n\r\n");
	CHECK_STR("envelope: no From at all", e, "(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	free(e);
}

int
main(void)
{
	test_table();
	test_hostile();
	test_envelope();
	TEST_EXIT();
}
