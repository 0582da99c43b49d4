/*
 * tests/unit/test_imap.c - the IMAP command parser (atoms, quoted
 * strings, literals, nested lists, BODY[...] sections, limits), sequence
 * sets, the MIME side: headers, ENVELOPE, BODYSTRUCTURE, sections, and
 * the envelope cache.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap.h"
#include "mock_host.h"
#include "test.h"

static int
parse(const char *text, struct imap_cmd *cmd, const char **why)
{
	return imap_parse(text, strlen(text), cmd, why);
}

static void
test_parser(void)
{
	struct imap_cmd *c = calloc(1, sizeof(*c));
	const char *why = NULL;

	CHECK("simple command", parse("a1 LOGIN alice \"p w\"", c, &why) == 0 &&
	    strcmp(c->tag, "a1") == 0 && strcmp(c->name, "LOGIN") == 0 && c->nargs == 2 &&
	    strcmp(c->args[1].s, "p w") == 0);
	imap_cmd_free(c);
	CHECK("UID command name", parse("t uid fetch 1:* (FLAGS)", c, &why) == 0 &&
	    strcmp(c->name, "UID FETCH") == 0 && c->args[1].type == IMAP_LIST);
	imap_cmd_free(c);
	CHECK("literal", parse("t LOGIN {5}\r\nalice {2+}\r\npw", c, &why) == 0 &&
	    c->nargs == 2 && strcmp(c->args[0].s, "alice") == 0 && c->args[1].len == 2);
	imap_cmd_free(c);
	CHECK("literal may hold CRLF and quotes", parse("t APPEND INBOX {6}\r\na\r\n\"b\"", c, &why) == 0 &&
	    c->args[1].len == 6 && memcmp(c->args[1].s, "a\r\n\"b\"", 6) == 0);
	imap_cmd_free(c);
	CHECK("section atom keeps its brackets",
	    parse("t FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100> FLAGS)", c, &why) == 0 &&
	    c->args[1].nlist == 2 &&
	    strcmp(c->args[1].list[0].s, "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>") == 0);
	imap_cmd_free(c);
	CHECK("nested lists and NIL", parse("t X ((a b) NIL (c (d)))", c, &why) == 0 &&
	    c->args[0].nlist == 3 && c->args[0].list[1].type == IMAP_NIL &&
	    c->args[0].list[2].list[1].list[0].s[0] == 'd');
	imap_cmd_free(c);
	CHECK("escaped quote", parse("t X \"a\\\"b\"", c, &why) == 0 && strcmp(c->args[0].s, "a\"b") == 0);
	imap_cmd_free(c);
	static const char *const bad[] = { "", "notag", "t", "t X \"open", "t X (a", "t X a)",
	    "t X {5}\r\nab", "t X {x}\r\n", "t X \"a\\zb\"", "t X a]", "+ X", "t X a\"b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "refused: case %zu (%.20s)", i, bad[i]);
		for (char *p = name; *p; p++)
			if (*p == '\r' || *p == '\n')
				*p = ' ';
		CHECK(name, parse(bad[i], c, &why) < 0 && why != NULL);
		imap_cmd_free(c);
	}
	CHECK("an unclosed [ is an atom character (SELECT a[b is NO, not BAD)",
	    parse("t SELECT a[b", c, &why) == 0 && c->nargs == 1 &&
	    c->args[0].type == IMAP_ATOM && strcmp(c->args[0].s, "a[b") == 0);
	imap_cmd_free(c);
	CHECK("closed [...] still one atom with its spaces",
	    parse("t X BODY[HEADER.FIELDS (A B)] y", c, &why) == 0 && c->nargs == 2);
	imap_cmd_free(c);
	CHECK("NIL keeps its text for use as an astring",
	    parse("t LIST \"\" NIL", c, &why) == 0 && c->args[1].type == IMAP_NIL &&
	    strcmp(c->args[1].s, "NIL") == 0);
	imap_cmd_free(c);
	CHECK("a list argument has text \"\", never garbage (issue 15)",
	    parse("t STATUS INBOX ((MESSAGES) (x (y)))", c, &why) == 0 &&
	    c->args[1].list[0].type == IMAP_LIST && c->args[1].list[0].s &&
	    c->args[1].list[0].s[0] == '\0' && c->args[1].list[1].list[1].s &&
	    c->args[1].s[0] == '\0');
	imap_cmd_free(c);
	char deep[200] = "t X ";
	for (int i = 0; i < 20; i++) strcat(deep, "(");
	for (int i = 0; i < 20; i++) strcat(deep, ")");
	CHECK("deep nesting refused", parse(deep, c, &why) < 0 && strstr(why, "deep"));
	imap_cmd_free(c);
	char *many = malloc(8 * 2000 + 16);
	strcpy(many, "t X");
	for (int i = 0; i < 2000; i++) strcat(many, " a");
	CHECK("too many arguments refused", parse(many, c, &why) < 0);
	imap_cmd_free(c);
	free(many);
	free(c);
}

static void
test_tag_of(void)
{
	static const struct { const char *line, *tag; } cases[] = {
		{ "a1 NOOP", "a1" }, { "a1 LOGIN {5}", "a1" }, { "nospace", "*" },
		{ "", "*" }, { "+ X", "*" }, { "(a) X", "*" }, { "a\"b X", "*" },
	};
	char tag[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		imap_tag_of(cases[i].line, strlen(cases[i].line), tag, sizeof(tag));
		CHECK(cases[i].line, strcmp(tag, cases[i].tag) == 0);
	}
	char longtag[200];
	memset(longtag, 'x', sizeof(longtag) - 1);
	longtag[sizeof(longtag) - 1] = '\0';
	imap_tag_of(longtag, strlen(longtag), tag, sizeof(tag));
	CHECK("a tag too long for the buffer is not cut", strcmp(tag, "*") == 0);
}

static void
test_keywords_apply(void)
{
	static const struct {
		const char *have;
		enum mp_flags_how how;
		const char *change, *want;
	} cases[] = {
		{ "$a", MP_FLAGS_ADD, "$a $b", "$a $b" },
		{ "$a", MP_FLAGS_ADD, "$A", "$a" },
		{ "$a $b $c", MP_FLAGS_REMOVE, "$B", "$a $c" },
		{ "$a", MP_FLAGS_REPLACE, "$x $X $y", "$x $y" },
		{ "", MP_FLAGS_REMOVE, "$a", "" },
		{ NULL, MP_FLAGS_ADD, "NIL", "NIL" },
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		imap_keywords_apply(cases[i].have, cases[i].how, cases[i].change, out, sizeof(out));
		CHECK(cases[i].want, strcmp(out, cases[i].want) == 0);
	}
}

static void
test_literal_size(void)
{
	int plus;

	CHECK("{12}", imap_literal_size("a APPEND x {12}", 15, &plus) == 12 && !plus);
	CHECK("{3+}", imap_literal_size("a LOGIN {3+}", 12, &plus) == 3 && plus);
	CHECK("no literal", imap_literal_size("a NOOP", 6, &plus) == -1);
	CHECK("{} is no literal", imap_literal_size("a X {}", 6, &plus) == -1);
	CHECK("13 digits: a literal too big for any limit (issue 15 item 6)",
	    imap_literal_size("a X {0000000000005+}", 20, &plus) == LLONG_MAX && plus);
}

static void
test_seqset(void)
{
	struct imap_range r[8];
	size_t n;

	CHECK("1:3,5,7:*", imap_seqset("1:3,5,7:*", 10, r, 8, &n) == 0 && n == 3 &&
	    r[2].lo == 7 && r[2].hi == 10 && imap_in_set(r, n, 5) && !imap_in_set(r, n, 4));
	CHECK("reversed range normalised", imap_seqset("5:2", 10, r, 8, &n) == 0 && r[0].lo == 2 &&
	    r[0].hi == 5);
	CHECK("* alone", imap_seqset("*", 42, r, 8, &n) == 0 && r[0].lo == 42);
	static const char *const bad[] = { "", "0", "1:", ":2", "1,,2", "a", "1:2:3", "4294967296" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "seqset \"%s\" refused", bad[i]);
		CHECK(name, imap_seqset(bad[i], 10, r, 8, &n) < 0);
	}
	CHECK("too many ranges refused", imap_seqset("1,2,3,4,5,6,7,8,9", 10, r, 8, &n) < 0);
}

static const char msg[] =
    "From: \"Doe, Jane\" <jane@x.test>, bob@y.test\r\n"
    "Subject: hi\r\n folded\r\n"
    "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
    "--B\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n"
    "--B\r\nContent-Type: multipart/alternative; boundary=C\r\n\r\n"
    "--C\r\n\r\ninner\r\n--C--\r\n"
    "--B--\r\n";

static void
test_mime(void)
{
	char *out, *owned;
	size_t len, slen;
	const char *start;

	char *subj = imap_header(msg, sizeof(msg) - 1, "subject");
	CHECK_STR("header unfolded, case-insensitive", subj, "hi folded");
	free(subj);
	imap_envelope(msg, sizeof(msg) - 1, &out, &len);
	CHECK("envelope: quoted name with a comma, two senders",
	    strstr(out, "((\"Doe, Jane\" NIL \"jane\" \"x.test\")(NIL NIL \"bob\" \"y.test\"))") != NULL);
	free(out);
	imap_bodystructure(msg, sizeof(msg) - 1, 0, &out, &len);
	CHECK("bodystructure nests", strstr(out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1)") &&
	    strstr(out, "\"alternative\")") && strstr(out, "\"mixed\")"));
	free(out);
	CHECK("section 1", imap_section(msg, sizeof(msg) - 1, "1", &start, &slen, &owned) == 0 &&
	    slen == 12 && memcmp(start, "line1\r\nline2", 12) == 0);
	CHECK("section 2.1", imap_section(msg, sizeof(msg) - 1, "2.1", &start, &slen, &owned) == 0 &&
	    slen == 5 && memcmp(start, "inner", 5) == 0);
	CHECK("HEADER.FIELDS", imap_section(msg, sizeof(msg) - 1, "HEADER.FIELDS (SUBJECT)", &start,
	    &slen, &owned) == 0 && strcmp(owned, "Subject: hi\r\n folded\r\n\r\n") == 0);
	free(owned);
	CHECK("missing part refused", imap_section(msg, sizeof(msg) - 1, "7", &start, &slen, &owned) < 0);
}

/* ---- the search engine over a fake store and a capturing host ---- */

static const char *const mails[] = {
	"From: Alice <alice@x.test>\r\nTo: bob@y.test\r\nSubject: Lunch today\r\n"
	    "Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nSee you at noon.\r\n",
	"From: carol@z.test\r\nSubject: Report\r\nX-Priority: 1\r\n"
	    "Date: Tue, 10 Nov 2026 10:00:00 +0000\r\n\r\nThe quarterly NUMBERS are in.\r\n",
	"From: Alice <alice@x.test>\r\nSubject: re: report\r\n"
	    "Date: Fri, 20 Nov 2026 10:00:00 +0000\r\n\r\nthanks\r\n",
};
static char captured[4096];


static int
fake_open(struct mp_folder *f, uint32_t uid, enum mp_msg_part part, struct mp_reader *r,
    const char **error_r)
{
	static struct mock_text t;

	(void)f; (void)part; (void)error_r;
	t.text = mails[(uid - 1) / 4];	/* UIDs 1, 5, 9 */
	t.pos = 0;
	r->read = mock_text_read;
	r->priv = &t;
	return MP_OK;
}

static void fake_close(struct mp_reader *r) { (void)r; }

static int
capture_printf(struct mp_conn *c, const char *fmt, ...)
{
	va_list ap;
	size_t used = strlen(captured);

	(void)c;
	va_start(ap, fmt);
	vsnprintf(captured + used, sizeof(captured) - used, fmt, ap);
	va_end(ap);
	return 0;
}

static const char *
search(struct imap *s, const char *command)
{
	struct imap_cmd *cmd = calloc(1, sizeof(*cmd));
	const char *why;
	static char result[256];

	captured[0] = '\0';
	if (imap_parse(command, strlen(command), cmd, &why) == 0)
		imap_search(s, cmd, strncmp(cmd->name, "UID", 3) == 0);
	imap_cmd_free(cmd);
	free(cmd);
	char *line = strstr(captured, "* SEARCH");
	snprintf(result, sizeof(result), "%.*s", line ? (int)strcspn(line + 8, "\r") : 3,
	    line ? line + 8 : "BAD");
	if (strstr(captured, " BAD "))
		snprintf(result, sizeof(result), "BAD");
	return result;
}

static void
test_search(void)
{
	static struct mp_store_ops ops = { .message_open = fake_open, .message_close = fake_close };
	static struct mp_store store = { sizeof(store), &ops, NULL };
	static struct mp_host host;
	static struct imap_module mod;
	struct imap_msg msgs[3] = {
		{ 1, MP_FLAG_SEEN, 150, 1790000000, (char *)"" },
		{ 5, MP_FLAG_FLAGGED | MP_FLAG_RECENT, 3000, 1795000000, (char *)"$Work" },
		{ 9, MP_FLAG_DELETED | MP_FLAG_SEEN, 90, 1796000000, (char *)"" },
	};
	struct imap s = { .m = &mod, .h = &host, .st = &store, .msgs = msgs, .n = 3 };
	static const struct { const char *cmd, *want; } cases[] = {
		{ "t SEARCH ALL", " 1 2 3" },
		{ "t SEARCH SEEN", " 1 3" },
		{ "t SEARCH UNSEEN", " 2" },
		{ "t SEARCH NEW", " 2" },
		{ "t SEARCH DELETED", " 3" },
		{ "t SEARCH FLAGGED UNDELETED", " 2" },
		{ "t SEARCH KEYWORD $Work", " 2" },
		{ "t SEARCH FROM alice", " 1 3" },
		{ "t SEARCH SUBJECT report", " 2 3" },
		{ "t SEARCH SUBJECT \"lunch TODAY\"", " 1" },
		{ "t SEARCH HEADER X-Priority 1", " 2" },
		{ "t SEARCH BODY numbers", " 2" },
		{ "t SEARCH TEXT carol", " 2" },
		{ "t SEARCH NOT FROM alice", " 2" },
		{ "t SEARCH OR SEEN FLAGGED", " 1 2 3" },
		{ "t SEARCH (FROM alice SUBJECT re) 1:*", " 3" },
		{ "t SEARCH LARGER 100 SMALLER 1000", " 1" },
		{ "t SEARCH SENTBEFORE 10-Nov-2026", " 1" },
		{ "t SEARCH SENTON 10-Nov-2026", " 2" },
		{ "t SEARCH SENTSINCE 11-Nov-2026", " 3" },
		{ "t SEARCH 2:3", " 2 3" },
		{ "t UID SEARCH UID 5:9", " 5 9" },
		{ "t UID SEARCH SUBJECT report", " 5 9" },
		{ "t SEARCH CHARSET UTF-8 FROM carol", " 2" },
		{ "t SEARCH NOSUCHKEY", "BAD" },
		{ "t SEARCH FROM", "BAD" },
		{ "t SEARCH OR SEEN", "BAD" },
	};

	host = mock_host;
	host.conn_printf = capture_printf;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[96];
		snprintf(name, sizeof(name), "search: %s", cases[i].cmd + 9);
		CHECK_STR(name, search(&s, cases[i].cmd), cases[i].want);
	}
}

static int
cached_is(struct imap_cache *c, const char *folder, uint32_t uv, uint32_t uid,
    const char *want)
{
	size_t len = 0;
	char *got = imap_cache_get(c, folder, uv, uid, &len);
	int ok = want ? got && len == strlen(want) && strcmp(got, want) == 0 : got == NULL;

	free(got);
	return ok;
}

static void
test_envelope_cache(void)
{
	struct imap_cache *c = imap_cache_new(4096);
	char big[1500];

	imap_cache_put(c, "alice\nINBOX", 7, 1, "(env one)", 9);
	imap_cache_put(c, "alice\nINBOX", 7, 2, "(env two)", 9);
	CHECK("cache: put then get", cached_is(c, "alice\nINBOX", 7, 1, "(env one)") &&
	    cached_is(c, "alice\nINBOX", 7, 2, "(env two)"));
	CHECK("cache: another UIDVALIDITY misses", cached_is(c, "alice\nINBOX", 8, 1, NULL));
	CHECK("cache: another folder or user misses", cached_is(c, "alice\nArchive", 7, 1, NULL) &&
	    cached_is(c, "bob\nINBOX", 7, 1, NULL));
	memset(big, 'e', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (uint32_t uid = 10; uid < 13; uid++)
		imap_cache_put(c, "alice\nINBOX", 7, uid, big, strlen(big));
	CHECK("cache: over budget it was emptied, the newest kept",
	    cached_is(c, "alice\nINBOX", 7, 1, NULL) && cached_is(c, "alice\nINBOX", 7, 12, big));
	char *huge = malloc(5000);
	memset(huge, 'h', 5000);
	imap_cache_put(c, "alice\nINBOX", 7, 21, huge, 5000);
	CHECK("cache: an entry over the whole budget is not kept",
	    cached_is(c, "alice\nINBOX", 7, 21, NULL));
	free(huge);
	imap_cache_free(c);
	CHECK("cache off (NULL): always a miss", cached_is(NULL, "alice\nINBOX", 7, 1, NULL));
	imap_cache_put(NULL, "alice\nINBOX", 7, 1, "x", 1);
}

int
main(void)
{
	test_search();
	test_parser();
	test_tag_of();
	test_keywords_apply();
	test_literal_size();
	test_seqset();
	test_mime();
	test_envelope_cache();
	TEST_EXIT();
}
