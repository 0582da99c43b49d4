/*
 * tests/unit/test_imap_search.c - the SEARCH engine (modules/imap/
 * imap_search.c) over a fake folder held in memory: one table of
 * commands and the untagged SEARCH or tagged reply each must give.
 * Covers decoded bodies and headers, every header occurrence, address
 * comments, NIL, CHARSET, flags, sets, and the nesting cap of issue 15.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap.h"
#include "mock_host.h"
#include "test.h"

static const char *const messages[] = {
	/* 1: base64 body */
	"Subject: one\r\nFrom: Ann <ann@x.test>\r\nContent-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\ndGhlIHdvcmQgaXMgcGVsaWNhbg==\r\n",
	/* 2: quoted-printable, iso-8859-1, encoded subject */
	"Subject: =?iso-8859-1?Q?Gr=FC=DFe?= =?utf-8?B?YXVz?=\r\n"
	"From: <bob (the builder)@ (home) x.test>\r\n"
	"Content-Type: text/plain; charset=\"iso-8859-1\"\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve flam=\r\ningo\r\n",
	/* 3: two X-Extra, plain text */
	"Subject: three\r\nX-Extra: first\r\nX-Extra: second\r\n  folded\r\n\r\nplain body =?utf-8?q?x?=\r\n",
	/* 4: multipart with a koi8-r part and a binary part */
	"Subject: four\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	"--b\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n"
	"--b\r\nContent-Type: application/octet-stream\r\n\r\nhiddenword\r\n--b--\r\n",
};

#define N (sizeof(messages) / sizeof(messages[0]))

struct cursor {
	const char *p;
	size_t left;
};

static ssize_t
cursor_read(struct mp_reader *r, void *buf, size_t len)
{
	struct cursor *c = r->priv;
	size_t n = len < c->left ? len : c->left;

	memcpy(buf, c->p, n);
	c->p += n;
	c->left -= n;
	return (ssize_t)n;
}

static int
fake_open(struct mp_folder *f, uint32_t uid, enum mp_msg_part part, struct mp_reader *r,
    const char **error_r)
{
	struct cursor *c = malloc(sizeof(*c));
	const char *m = messages[uid - 1], *end = strstr(m, "\r\n\r\n");

	c->p = m;
	c->left = part == MP_PART_HEADER ? (size_t)(end + 4 - m) : strlen(m);
	r->read = cursor_read;
	r->size = (off_t)c->left;
	r->priv = c;
	return MP_OK;
}

static void
fake_close(struct mp_reader *r)
{
	free(r->priv);
}

static char out[4096];

static int
capture(struct mp_conn *c, const char *fmt, ...)
{
	va_list ap;
	size_t used = strlen(out);

	va_start(ap, fmt);
	vsnprintf(out + used, sizeof(out) - used, fmt, ap);
	va_end(ap);
	return 0;
}

static const char *
run(struct imap *s, const char *line)
{
	struct imap_cmd *cmd = calloc(1, sizeof(*cmd));
	const char *why;

	out[0] = '\0';
	if (imap_parse(line, strlen(line), cmd, &why) < 0)
		snprintf(out, sizeof(out), "parse: %s", why);
	else
		imap_search(s, cmd, strncmp(cmd->name, "UID", 3) == 0);
	imap_cmd_free(cmd);
	free(cmd);
	return out;
}

static void
test_table(struct imap *s)
{
	static const struct { const char *cmd, *want; } cases[] = {
		{ "t SEARCH BODY pelican", "* SEARCH 1\r\n" },
		{ "t SEARCH TEXT PELICAN", "* SEARCH 1\r\n" },
		{ "t SEARCH BODY dGhlIHdvcmQ", "* SEARCH\r\n" },	/* raw base64 is not text */
		{ "t SEARCH BODY flamingo", "* SEARCH 2\r\n" },
		{ "t SEARCH CHARSET UTF-8 BODY {6}\r\nNA\xc3\x8fVE", "* SEARCH 2\r\n" },
		{ "t SEARCH CHARSET ISO-8859-1 SUBJECT {5}\r\ngr\xfc\xdf" "e", "* SEARCH 2\r\n" },
		{ "t SEARCH SUBJECT \"e aus\"", "* SEARCH\r\n" },	/* adjacent words joined */
		{ "t SEARCH CHARSET UTF-8 SUBJECT {10}\r\nGR\xc3\x9c\xc3\x9f" "EAUS", "* SEARCH 2\r\n" },
		{ "t SEARCH SUBJECT iso-8859", "* SEARCH\r\n" },	/* the encoding is not text */
		{ "t SEARCH TEXT utf-8", "* SEARCH 1 3\r\n" },	/* 2: only in encoded words */
		{ "t SEARCH CHARSET UTF-8 BODY {12}\r\n\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
		  "* SEARCH 4\r\n" },
		{ "t SEARCH BODY hiddenword", "* SEARCH\r\n" },	/* binary parts are not searched */
		{ "t SEARCH HEADER X-Extra second", "* SEARCH 3\r\n" },
		{ "t SEARCH HEADER X-Extra \"second folded\"", "* SEARCH\r\n" },
		{ "t SEARCH HEADER X-Extra \"second  folded\"", "* SEARCH 3\r\n" },
		{ "t SEARCH HEADER X-Extra \"\"", "* SEARCH 3\r\n" },
		{ "t SEARCH NOT HEADER X-Extra \"\"", "* SEARCH 1 2 4\r\n" },
		{ "t SEARCH FROM bob@x.test", "* SEARCH 2\r\n" },
		{ "t SEARCH FROM builder", "* SEARCH 2\r\n" },
		{ "t SEARCH FROM \"ann <ann@x.test>\"", "* SEARCH 1\r\n" },
		{ "t SEARCH SUBJECT NIL", "* SEARCH 1 2 3 4\r\n" },
		{ "t SEARCH OR SUBJECT one SUBJECT four", "* SEARCH 1 4\r\n" },
		{ "t SEARCH (SEEN NOT DELETED) 1:3", "* SEARCH 1\r\n" },
		{ "t SEARCH NEW", "* SEARCH 2\r\n" },
		{ "t SEARCH OLD", "* SEARCH 1 4\r\n" },
		{ "t SEARCH RECENT", "* SEARCH 2 3\r\n" },
		{ "t SEARCH UID 3:*", "* SEARCH 3 4\r\n" },
		{ "t SEARCH LARGER 146 SMALLER 212", "* SEARCH 4\r\n" },	/* sizes 146 212 87 185 */
		{ "t SEARCH CHARSET X-NONE BODY a", "t NO [BADCHARSET (UTF-8 US-ASCII)]" },
		{ "t SEARCH BODY", "t BAD" },
		{ "t SEARCH LARGER x", "t BAD" },
		{ "t SEARCH SINCE 31-Foo-2020", "t BAD" },
		{ "t SEARCH FOO bar", "t BAD" },
		{ "t SEARCH NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT"
		  " NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT ALL", "* SEARCH\r\n" },
		{ "t SEARCH NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT"
		  " NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT ALL", "t BAD search nesting too deep" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = run(s, cases[i].cmd);
		char name[160];
		snprintf(name, sizeof(name), "search: %.120s", cases[i].cmd);
		if (strncmp(cases[i].want, "t ", 2) == 0)	/* a tagged refusal: its start */
			CHECK_STR(name, strncmp(got, cases[i].want, strlen(cases[i].want)) == 0 ?
			    cases[i].want : got, cases[i].want);
		else {	/* the untagged result, then OK */
			char want[256];
			snprintf(want, sizeof(want), "%st OK SEARCH completed\r\n", cases[i].want);
			CHECK_STR(name, got, want);
		}
	}
}

/* 127 NOTs (issue 15) and a long OR chain: refused, not a stack overflow. */
static void
test_deep(struct imap *s)
{
	static const char *const ops[] = { "NOT ", "OR ALL " };
	char line[1024];

	for (size_t k = 0; k < 2; k++) {
		size_t len = (size_t)snprintf(line, sizeof(line), "t SEARCH");
		for (int i = 0; i < 60; i++)
			len += (size_t)snprintf(line + len, sizeof(line) - len, " %s", ops[k]);
		snprintf(line + len, sizeof(line) - len, "ALL");
		CHECK_STR("deep nesting refused", run(s, line),
		    "t BAD search nesting too deep\r\n");
	}
}

int
main(void)
{
	static const struct mp_store_ops ops = {
		.struct_size = sizeof(ops), .message_open = fake_open, .message_close = fake_close,
	};
	static const struct mp_store store = { sizeof(store), &ops, NULL };
	struct mp_host host = mock_host;
	struct imap_msg msgs[N];
	struct imap s = { 0 };

	host.conn_printf = capture;
	for (size_t i = 0; i < N; i++) {
		static const uint32_t flags[] = { MP_FLAG_SEEN, MP_FLAG_RECENT,
		    MP_FLAG_RECENT | MP_FLAG_SEEN | MP_FLAG_DELETED, 0 };
		msgs[i] = (struct imap_msg){ .uid = (uint32_t)i + 1, .flags = flags[i],
		    .size = strlen(messages[i]) };
	}
	s.h = &host;
	s.st = &store;
	s.msgs = msgs;
	s.n = N;
	test_table(&s);
	test_deep(&s);
	TEST_EXIT();
}
