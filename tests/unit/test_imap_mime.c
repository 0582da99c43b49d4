/*
 * tests/unit/test_imap_mime.c - the MIME tree, BODY[section] and
 * BODYSTRUCTURE (modules/imap/imap_mime.c, imap_bodystructure.c): RFC
 * 3501 6.4.5's own example message section by section, nested
 * message/rfc822, digest defaults, dispositions and languages, section
 * syntax, the leaf walk, and hostile nesting that must stay bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "../../modules/imap/imap_mime.h"

/* The structure of RFC 3501 6.4.5's example. */
static const char rfc3501[] =
    "From: a@x.test\r\n"
    "Subject: example\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: MULTIPART/MIXED; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: TEXT/PLAIN; charset=utf-8\r\n"
    "\r\n"
    "part one\r\n"
    "--outer\r\n"
    "Content-Type: APPLICATION/OCTET-STREAM\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "AAEC\r\n"
    "--outer\r\n"
    "Content-Type: MESSAGE/RFC822\r\n"
    "\r\n"
    "From: three@x.test\r\n"
    "Subject: three\r\n"
    "Content-Type: MULTIPART/MIXED; boundary=three\r\n"
    "\r\n"
    "--three\r\n"
    "\r\n"
    "three one\r\n"
    "--three\r\n"
    "Content-Type: APPLICATION/OCTET-STREAM\r\n"
    "\r\n"
    "three two\r\n"
    "--three--\r\n"
    "--outer\r\n"
    "Content-Type: MULTIPART/MIXED; boundary=four\r\n"
    "\r\n"
    "--four\r\n"
    "Content-Type: IMAGE/GIF\r\n"
    "\r\n"
    "GIF89a\r\n"
    "--four\r\n"
    "Content-Type: MESSAGE/RFC822\r\n"
    "\r\n"
    "From: inner@x.test\r\n"
    "Subject: four two\r\n"
    "Content-Type: MULTIPART/MIXED; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: TEXT/PLAIN\r\n"
    "\r\n"
    "4.2.1 text\r\n"
    "--inner\r\n"
    "Content-Type: MULTIPART/ALTERNATIVE; boundary=alt\r\n"
    "\r\n"
    "--alt\r\n"
    "Content-Type: TEXT/PLAIN\r\n"
    "\r\n"
    "4.2.2.1 plain\r\n"
    "--alt\r\n"
    "Content-Type: TEXT/RICHTEXT\r\n"
    "\r\n"
    "4.2.2.2 rich\r\n"
    "--alt--\r\n"
    "--inner--\r\n"
    "--four--\r\n"
    "--outer--\r\n"
    "epilogue\r\n";

static const struct {
	const char *section, *want;	/* want NULL: no such part */
} rfc3501_sections[] = {
	{ "HEADER", "From: a@x.test\r\nSubject: example\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: MULTIPART/MIXED; boundary=\"outer\"\r\n\r\n" },
	{ "1", "part one" },
	{ "1.MIME", "Content-Type: TEXT/PLAIN; charset=utf-8\r\n\r\n" },
	{ "2", "AAEC" },
	{ "3", "From: three@x.test\r\nSubject: three\r\nContent-Type: MULTIPART/MIXED; "
	    "boundary=three\r\n\r\n--three\r\n\r\nthree one\r\n--three\r\nContent-Type: "
	    "APPLICATION/OCTET-STREAM\r\n\r\nthree two\r\n--three--" },
	{ "3.MIME", "Content-Type: MESSAGE/RFC822\r\n\r\n" },
	{ "3.HEADER", "From: three@x.test\r\nSubject: three\r\nContent-Type: MULTIPART/MIXED; "
	    "boundary=three\r\n\r\n" },
	{ "3.TEXT", "--three\r\n\r\nthree one\r\n--three\r\nContent-Type: "
	    "APPLICATION/OCTET-STREAM\r\n\r\nthree two\r\n--three--" },
	{ "3.1", "three one" },
	{ "3.2", "three two" },
	{ "3.2.MIME", "Content-Type: APPLICATION/OCTET-STREAM\r\n\r\n" },
	{ "4.1", "GIF89a" },
	{ "4.1.MIME", "Content-Type: IMAGE/GIF\r\n\r\n" },
	{ "4.2.HEADER", "From: inner@x.test\r\nSubject: four two\r\n"
	    "Content-Type: MULTIPART/MIXED; boundary=inner\r\n\r\n" },
	{ "4.2.HEADER.FIELDS.NOT (Content-Type)",
	    "From: inner@x.test\r\nSubject: four two\r\n\r\n" },
	{ "4.2.header.fields (\"SUBJECT\" x-none)", "Subject: four two\r\n\r\n" },
	{ "4.2.1", "4.2.1 text" },
	{ "4.2.2.1", "4.2.2.1 plain" },
	{ "4.2.2.2", "4.2.2.2 rich" },
	{ "4.2.2.2.MIME", "Content-Type: TEXT/RICHTEXT\r\n\r\n" },
	{ "4.2.2", "--alt\r\nContent-Type: TEXT/PLAIN\r\n\r\n4.2.2.1 plain\r\n--alt\r\n"
	    "Content-Type: TEXT/RICHTEXT\r\n\r\n4.2.2.2 rich\r\n--alt--" },
	{ "HEADER.FIELDS (Subject from)", "From: a@x.test\r\nSubject: example\r\n\r\n" },
	{ "5", NULL },
	{ "1.1", NULL },
	{ "3.3", NULL },
	{ "4.3", NULL },
	{ "4.2.2.3", NULL },
	{ "4.1.1", NULL },
};

static void
test_rfc3501_example(void)
{
	struct imap_mime *t = imap_mime_parse(rfc3501, sizeof(rfc3501) - 1);

	for (size_t i = 0; i < sizeof(rfc3501_sections) / sizeof(rfc3501_sections[0]); i++) {
		struct imap_section sec;
		const char *start;
		size_t len;
		char *owned, name[96], *got = NULL;
		snprintf(name, sizeof(name), "RFC 3501 6.4.5 example: BODY[%s]",
		    rfc3501_sections[i].section);
		if (imap_section_parse(rfc3501_sections[i].section, &sec) == 0 &&
		    imap_mime_section(rfc3501, sizeof(rfc3501) - 1, t, &sec, &start, &len, &owned))
			got = strndup(start, len);
		else
			owned = NULL;
		if (rfc3501_sections[i].want)
			CHECK_STR(name, got, rfc3501_sections[i].want);
		else
			CHECK(name, got == NULL);
		free(got);
		free(owned);
	}
	const char *text;
	size_t len;
	char *owned;
	CHECK("TEXT of the message: preamble through epilogue",
	    imap_section(rfc3501, sizeof(rfc3501) - 1, "TEXT", &text, &len, &owned) == 0 &&
	    strncmp(text, "preamble\r\n", 10) == 0 && len >= 10 &&
	    strcmp(text + len - 10, "epilogue\r\n") == 0);
	imap_mime_free(t);
}

/* A message/rfc822 part, dispositions, languages, location and MD5. */
static const char nested[] =
    "From: a@x.test\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n"
    "Content-Language: fr\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain\r\n"
    "Content-ID: <id1@x>\r\n"
    "Content-Description: the text\r\n"
    "Content-Location: http://x.test/a\r\n"
    "\r\n"
    "hello\r\n"
    "world\r\n"
    "--b\r\n"
    "Content-Type: message/rfc822; name=fwd\r\n"
    "Content-Disposition: inline\r\n"
    "\r\n"
    "From: B <b@y.test>\r\n"
    "Subject: inner\r\n"
    "\r\n"
    "inner body\r\n"
    "--b\r\n"
    "Content-Type: application/pdf; name=\"a b.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment;\r\n filename=\"a b.pdf\"; size=4\r\n"
    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
    "Content-Language: en, de (comment)\r\n"
    "\r\n"
    "AAAA\r\n"
    "--b--\r\n";

#define INNER_ENV "(NIL \"inner\" ((\"B\" NIL \"b\" \"y.test\")) ((\"B\" NIL \"b\" \"y.test\")) " \
	"((\"B\" NIL \"b\" \"y.test\")) NIL NIL NIL NIL NIL)"

static void
test_bodystructure(void)
{
	char *out;
	size_t len;

	imap_bodystructure(nested, sizeof(nested) - 1, 1, &out, &len);
	CHECK_STR("BODYSTRUCTURE: message/rfc822 with envelope, body, lines; extension data", out,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") \"<id1@x>\" \"the text\" \"7bit\" 12 1"
	    " NIL NIL NIL \"http://x.test/a\")"
	    "(\"message\" \"rfc822\" (\"name\" \"fwd\") NIL NIL \"7bit\" 48 " INNER_ENV
	    " (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)"
	    " 3 NIL (\"inline\" NIL) NIL NIL)"
	    "(\"application\" \"pdf\" (\"name\" \"a b.pdf\") NIL NIL \"base64\" 4"
	    " \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename\" \"a b.pdf\" \"size\" \"4\"))"
	    " (\"en\" \"de\") NIL)"
	    " \"mixed\" (\"boundary\" \"b\") NIL (\"fr\") NIL)");
	free(out);
	imap_bodystructure(nested, sizeof(nested) - 1, 0, &out, &len);
	CHECK_STR("BODY: no extension data, at any depth", out,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") \"<id1@x>\" \"the text\" \"7bit\" 12 1)"
	    "(\"message\" \"rfc822\" (\"name\" \"fwd\") NIL NIL \"7bit\" 48 " INNER_ENV
	    " (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0) 3)"
	    "(\"application\" \"pdf\" (\"name\" \"a b.pdf\") NIL NIL \"base64\" 4) \"mixed\")");
	free(out);
	CHECK("length returned", len > 0);

	static const char folded[] = "Content-Type: multipart/mixed; boundary=\"foo\r\n bar\"\r\n\r\n"
	    "--foo bar\r\nContent-Type: text/x-myown; charset=us-ascii\r\n\r\nhello\r\n\r\n--foo bar--\r\n";
	imap_bodystructure(folded, sizeof(folded) - 1, 0, &out, &len);
	CHECK_STR("a folded boundary parameter is unfolded", out,
	    "((\"text\" \"x-myown\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1) \"mixed\")");
	free(out);

	static const char plain[] = "Subject: x\r\n\r\nbody\r\n";
	imap_bodystructure(plain, sizeof(plain) - 1, 1, &out, &len);
	CHECK_STR("no Content-Type: text/plain; charset=us-ascii", out,
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)");
	free(out);

	static const char broken[] = "Content-Type: multipart/mixed\r\n\r\nno boundary\r\n";
	imap_bodystructure(broken, sizeof(broken) - 1, 0, &out, &len);
	CHECK_STR("a multipart without boundary still has one body", out,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")");
	free(out);
}

static const char digest[] =
    "Content-Type: multipart/digest; boundary=d\r\n"
    "\r\n"
    "--d\r\n"
    "\r\n"
    "From: m1@x.test\r\n"
    "Subject: m1\r\n"
    "\r\n"
    "m1 body\r\n"
    "--d \r\n"	/* transport padding after the boundary */
    "Content-Type: text/plain\r\n"
    "\r\n"
    "not a message\r\n"
    "--d--\r\n";

static void
test_digest(void)
{
	char *out, *owned;
	size_t len;
	const char *s;

	imap_bodystructure(digest, sizeof(digest) - 1, 0, &out, &len);
	CHECK_STR("digest parts default to message/rfc822 (RFC 2046 5.1.5)", out,
	    "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 39 (NIL \"m1\" ((NIL NIL \"m1\" \"x.test\"))"
	    " ((NIL NIL \"m1\" \"x.test\")) ((NIL NIL \"m1\" \"x.test\")) NIL NIL NIL NIL NIL)"
	    " (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0) 3)"
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 0) \"digest\")");
	free(out);
	CHECK("digest: 1.TEXT is the enclosed body",
	    imap_section(digest, sizeof(digest) - 1, "1.TEXT", &s, &len, &owned) == 0 &&
	    len == 7 && memcmp(s, "m1 body", 7) == 0);
	CHECK("digest: 1.MIME is the empty part header",
	    imap_section(digest, sizeof(digest) - 1, "1.MIME", &s, &len, &owned) == 0 &&
	    len == 2 && memcmp(s, "\r\n", 2) == 0);
	CHECK("digest: 1.1 is the enclosed message's body",
	    imap_section(digest, sizeof(digest) - 1, "1.1", &s, &len, &owned) == 0 &&
	    len == 7 && memcmp(s, "m1 body", 7) == 0);
	CHECK("digest: an explicit type is kept",
	    imap_section(digest, sizeof(digest) - 1, "2", &s, &len, &owned) == 0 &&
	    len == 13 && memcmp(s, "not a message", 13) == 0);
}

/* A message/rfc822 at the top, twice (imaptest's -x2 case). */
static void
test_message_in_message(void)
{
	static const char m[] = "Content-Type: message/rfc822\r\n\r\n"
	    "From: u2@x.test\r\nContent-Type: message/rfc822\r\n\r\n"
	    "Subject: submsg\r\n\r\nHello world\r\n";
	static const struct {
		const char *section, *want;
	} cases[] = {
		{ "1", "From: u2@x.test\r\nContent-Type: message/rfc822\r\n\r\n"
		    "Subject: submsg\r\n\r\nHello world\r\n" },
		{ "1.1", "Subject: submsg\r\n\r\nHello world\r\n" },
		{ "1.HEADER", "From: u2@x.test\r\nContent-Type: message/rfc822\r\n\r\n" },
		{ "1.1.1", "Hello world\r\n" },
		{ "1.1.HEADER", "Subject: submsg\r\n\r\n" },
		{ "1.1.TEXT", "Hello world\r\n" },
		{ "TEXT", "From: u2@x.test\r\nContent-Type: message/rfc822\r\n\r\n"
		    "Subject: submsg\r\n\r\nHello world\r\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *s;
		size_t len;
		char *owned, name[64], *got = NULL;
		snprintf(name, sizeof(name), "message in message: BODY[%s]", cases[i].section);
		if (imap_section(m, sizeof(m) - 1, cases[i].section, &s, &len, &owned) == 0)
			got = strndup(s, len);
		CHECK_STR(name, got, cases[i].want);
		free(got);
		free(owned);
	}
}

static void
test_boundaries(void)
{
	/* the inner multipart is never closed: the outer delimiter ends it */
	static const char m[] = "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	    "--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
	    "--i\r\n\r\ninner\r\n"
	    "--o\r\n\r\nsecond\r\n--o--\r\n";
	const char *s;
	size_t len;
	char *owned, *out;

	CHECK("unclosed inner multipart ends at the outer delimiter",
	    imap_section(m, sizeof(m) - 1, "1.1", &s, &len, &owned) == 0 && len == 5 &&
	    memcmp(s, "inner", 5) == 0);
	CHECK("and the next outer part is found",
	    imap_section(m, sizeof(m) - 1, "2", &s, &len, &owned) == 0 && len == 6 &&
	    memcmp(s, "second", 6) == 0);
	static const char lf[] = "Content-Type: multipart/mixed; boundary=x\n\n--x\n\nlf only\n--x--\n";
	CHECK("LF-only line ends",
	    imap_section(lf, sizeof(lf) - 1, "1", &s, &len, &owned) == 0 && len == 7 &&
	    memcmp(s, "lf only", 7) == 0);
	imap_bodystructure(lf, sizeof(lf) - 1, 0, &out, &len);
	CHECK_STR("LF-only BODY", out,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0) \"mixed\")");
	free(out);
}

static void
test_section_syntax(void)
{
	static const char *const good[] = { "", "1", "1.2.3", "HEADER", "text", "1.MIME",
		"HEADER.FIELDS (A B)", "header.fields.not (\"A\" b)", "4.2.HEADER.FIELDS (X)",
		"4294967295" };
	static const char *const bad[] = { "MIME", "0", "1.", "1..2", "01", "HEADER.FIELDS",
		"HEADER.FIELDS ()", "HEADER.FIELDS (A", "HEADER.FIELDS (A) x", "TEXTX", "1.2.",
		"4294967296", "HEADER.FIELDS  (A)", "HEADER.FIELDS (\"A)", "1.MIME.TEXT" };
	struct imap_section sec;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(good[i], imap_section_parse(good[i], &sec) == 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(bad[i], imap_section_parse(bad[i], &sec) < 0);
	char many[4096] = "HEADER.FIELDS (";
	for (int i = 0; i <= IMAP_SECTION_MAX_FIELDS; i++)
		strcat(many, i ? " a" : "a");
	strcat(many, ")");
	CHECK("too many header names refused", imap_section_parse(many, &sec) < 0);
}

struct leaves {
	char seen[512];
};

static void
each_leaf(void *arg, const char *hdr, size_t hlen, const char *body, size_t blen)
{
	struct leaves *l = arg;
	size_t n = strlen(l->seen);

	(void)hdr;
	snprintf(l->seen + n, sizeof(l->seen) - n, "[%zu:%.*s]", hlen, (int)blen, body);
}

static void
test_leaves(void)
{
	struct leaves l = { "" };

	imap_mime_leaves(rfc3501, sizeof(rfc3501) - 1, each_leaf, &l);
	CHECK_STR("leaves depth first, into message/rfc822", l.seen,
	    "[43:part one][77:AAEC][2:three one][42:three two][27:GIF89a][28:4.2.1 text]"
	    "[28:4.2.2.1 plain][31:4.2.2.2 rich]");
}

static void
test_headers(void)
{
	static const char m[] = "Subject : first\r\n\tfolded \r\nSubject: second\r\nX-Empty:\r\n\r\n"
	    "Subject: not a header\r\n";
	char *v = imap_header(m, sizeof(m) - 1, "subject");

	CHECK_STR("first occurrence, unfolded, obsolete space before the colon", v,
	    "first\tfolded");
	free(v);
	v = imap_header(m, sizeof(m) - 1, "X-Empty");
	CHECK_STR("empty field", v, "");
	free(v);
	CHECK("the body is not the header", imap_header(m, sizeof(m) - 1, "Date") == NULL);
}

/* Nesting a sender controls must cost bounded time and memory. */
static char *
repeat(const char *unit, size_t times, const char *tail, size_t *len_r)
{
	size_t ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(ul * times + tl + 1);

	for (size_t i = 0; i < times; i++)
		memcpy(s + i * ul, unit, ul);
	memcpy(s + ul * times, tail, tl + 1);
	*len_r = ul * times + tl;
	return s;
}

static int
balanced(const char *s)
{
	long depth = 0;
	int quoted = 0;

	for (; *s; s++) {
		if (quoted && *s == '\\' && s[1])
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (!quoted && (depth += (*s == '(') - (*s == ')')) < 0)
			return 0;
	}
	return depth == 0 && !quoted;
}

static void
test_hostile(void)
{
	size_t len, olen;
	char *out;
	clock_t t0 = clock();
	char *m = repeat("Content-Type: message/rfc822\r\n\r\n", 100000, "x\r\n", &len);
	struct imap_mime *t = imap_mime_parse(m, len);

	CHECK("100,000 nested message/rfc822: depth capped", t && t->n == MIME_MAX_DEPTH + 1);
	imap_mime_bodystructure(t, 1, &out, &olen);
	CHECK("and its BODYSTRUCTURE is well-formed", out && balanced(out) &&
	    strstr(out, "\"application\" \"octet-stream\""));
	free(out);
	imap_mime_free(t);
	free(m);

	char unit[64];
	m = malloc(100000 * 64);
	len = 0;
	for (int i = 0; i < 100000; i++) {
		int n = snprintf(unit, sizeof(unit), "Content-Type: multipart/mixed; boundary=b%dz\r\n\r\n"
		    "--b%dz\r\n", i, i);	/* "z": no boundary a prefix of another */
		memcpy(m + len, unit, (size_t)n);
		len += (size_t)n;
	}
	t = imap_mime_parse(m, len);
	CHECK("100,000 nested multiparts: depth capped", t && t->n == MIME_MAX_DEPTH + 1);
	imap_mime_bodystructure(t, 0, &out, &olen);
	CHECK("and its BODY is well-formed", out && balanced(out));
	free(out);
	imap_mime_free(t);
	free(m);

	m = repeat("--b\r\n\r\nx\r\n", 50000, "--b--\r\n", &len);
	char *full = malloc(len + 64);
	int hl = snprintf(full, 64, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	memcpy(full + hl, m, len + 1);
	t = imap_mime_parse(full, len + (size_t)hl);
	CHECK("50,000 parts: part count capped", t && t->n == MIME_MAX_PARTS);
	struct imap_section sec;
	const char *s;
	char *owned;
	imap_section_parse("9999", &sec);
	CHECK("a part within the cap is found",
	    imap_mime_section(full, len + (size_t)hl, t, &sec, &s, &olen, &owned) && olen == 1);
	imap_section_parse("10000", &sec);
	CHECK("a part past the cap is not",
	    !imap_mime_section(full, len + (size_t)hl, t, &sec, &s, &olen, &owned));
	imap_mime_free(t);
	free(full);
	free(m);
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	printf("# hostile inputs took %.2f s\n", secs);
	CHECK("hostile inputs take well under a few seconds", secs < 5);
}

int
main(void)
{
	test_rfc3501_example();
	test_bodystructure();
	test_digest();
	test_message_in_message();
	test_boundaries();
	test_section_syntax();
	test_leaves();
	test_headers();
	test_hostile();
	TEST_EXIT();
}
