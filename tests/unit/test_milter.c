/*
 * tests/unit/test_milter.c - the milter module's protocol codec
 * (modules/milter/milter_proto.c) and its reply reading over a real
 * socket pair (milter_link.c, milter_io.c): packet framing, every reply
 * kind with its malformed variants, option negotiation, SMTP reply
 * texts, socket specs, the body cut and header splitting a milter sees,
 * and the bounds (packet size, timeouts, unnegotiated changes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "modules/milter/milter.h"
#include "modules/milter/milter_io.h"

/* A reply packet (no length prefix) from a code and raw data. */
static size_t
pkt(unsigned char *out, char code, const char *data, size_t len)
{
	out[0] = (unsigned char)code;
	memcpy(out + 1, data, len);
	return len + 1;
}

static void
test_build(void)
{
	unsigned char buf[64];
	struct milter_pkt p;
	static const unsigned char optneg[] = {
		0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 0x01, 0xff, 0, 0x0f, 0xf7, 0xff
	};

	milter_pkt_begin(&p, buf, sizeof(buf), SMFIC_OPTNEG);
	milter_pkt_u32(&p, MILTER_VERSION);
	milter_pkt_u32(&p, MILTER_ACTIONS);
	milter_pkt_u32(&p, MILTER_PROTOCOL);
	CHECK("milter build optneg length", milter_pkt_end(&p) == sizeof(optneg));
	CHECK("milter build optneg bytes", memcmp(buf, optneg, sizeof(optneg)) == 0);

	milter_pkt_begin(&p, buf, sizeof(buf), SMFIC_HEADER);
	milter_pkt_str(&p, "Subject");
	milter_pkt_str(&p, "hi");
	CHECK("milter build header", milter_pkt_end(&p) == 4 + 1 + 8 + 3 &&
	    buf[3] == 12 && memcmp(buf + 5, "Subject\0hi\0", 11) == 0);

	milter_pkt_begin(&p, buf, sizeof(buf), SMFIC_EOH);
	milter_pkt_bytes(&p, NULL, 0);
	CHECK("milter build command without data", milter_pkt_end(&p) == 5 && buf[3] == 1 &&
	    buf[4] == 'N');

	milter_pkt_begin(&p, buf, 10, SMFIC_HELO);
	milter_pkt_str(&p, "a-name-too-long");
	CHECK("milter build overflow refused", milter_pkt_end(&p) == 0);
	milter_pkt_begin(&p, buf, 4, SMFIC_HELO);
	CHECK("milter build no room for the command", milter_pkt_end(&p) == 0);
}

static void
test_frame(void)
{
	static const struct { unsigned char h[4]; int ok; size_t len; } cases[] = {
		{ { 0, 0, 0, 1 }, 1, 1 }, { { 0, 0, 0x10, 0 }, 1, 4096 },
		{ { 0, 0, 0, 0 }, 0, 0 }, { { 0xff, 0xff, 0xff, 0xff }, 0, 0 },
		{ { 0, 1, 0x0f, 0xff }, 1, MILTER_MAX_PACKET },
		{ { 0, 1, 0x10, 0 }, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 0;
		char name[64];
		int rc = milter_frame_len(cases[i].h, &len);
		snprintf(name, sizeof(name), "milter frame length case %zu", i);
		CHECK(name, (rc == 0) == cases[i].ok && (!cases[i].ok || len == cases[i].len));
	}
}

static void
test_replies(void)
{
	static const struct { char code; const char *data; size_t len; int ok; } cases[] = {
		{ 'a', "", 0, 1 }, { 'c', "", 0, 1 }, { 'd', "", 0, 1 }, { 'r', "", 0, 1 },
		{ 't', "", 0, 1 }, { 's', "", 0, 1 }, { 'p', "", 0, 1 }, { '4', "", 0, 1 },
		{ 'h', "X-A\0v\0", 6, 1 }, { 'h', "X-A\0v", 5, 0 }, { 'h', "X-A", 3, 0 },
		{ 'h', "\0v\0", 3, 0 }, { 'h', "X A\0v\0", 6, 0 }, { 'h', "X:A\0v\0", 6, 0 },
		{ 'i', "\0\0\0\2X\0v\0", 8, 1 }, { 'i', "\0\0\2X\0v\0", 7, 0 },
		{ 'm', "\0\0\0\1X\0\0", 7, 1 }, { 'm', "\0\0\0", 3, 0 },
		{ '+', "<a@b>\0", 6, 1 }, { '+', "<a@b>", 5, 0 }, { '-', "<a@b>\0", 6, 1 },
		{ 'e', "<a@b>\0", 6, 1 }, { 'e', "<a@b>\0SIZE=1\0", 13, 1 },
		{ 'e', "<a@b>\0SIZE=1", 12, 0 }, { '2', "<a@b>\0", 6, 1 },
		{ 'q', "why\0", 4, 1 }, { 'y', "550 5.7.1 no\0", 13, 1 }, { 'y', "550", 3, 0 },
		{ 'b', "body", 4, 1 }, { 'b', "", 0, 1 }, { 'Z', "", 0, 0 }, { 'O', "", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char buf[64];
		struct milter_reply r;
		const char *err = NULL;
		char name[96];
		size_t n = pkt(buf, cases[i].code, cases[i].data, cases[i].len);
		int rc = milter_reply_parse(buf, n, &r, &err);
		snprintf(name, sizeof(name), "milter reply '%c' case %zu %s", cases[i].code, i,
		    cases[i].ok ? "parsed" : "refused");
		CHECK(name, (rc == 0) == cases[i].ok && (rc == 0 || err != NULL));
	}

	unsigned char buf[64];
	struct milter_reply r;
	const char *err;
	size_t n = pkt(buf, 'i', "\0\0\0\3X-Ins\0a value\0", 18);
	CHECK("milter reply insheader fields", milter_reply_parse(buf, n, &r, &err) == 0 &&
	    r.index == 3 && strcmp(r.name, "X-Ins") == 0 && strcmp(r.value, "a value") == 0);
	n = pkt(buf, 'e', "<s@x>\0BODY=8BITMIME\0", 20);
	CHECK("milter reply chgfrom with args", milter_reply_parse(buf, n, &r, &err) == 0 &&
	    strcmp(r.value, "<s@x>") == 0 && strcmp(r.args, "BODY=8BITMIME") == 0);
	n = pkt(buf, 'b', "ab\0cd", 5);
	CHECK("milter reply body chunk keeps NULs", milter_reply_parse(buf, n, &r, &err) == 0 &&
	    r.data_len == 5 && memcmp(r.data, "ab\0cd", 5) == 0);
	CHECK("milter reply empty packet", milter_reply_parse(buf, 0, &r, &err) == -1);
}

static void
test_optneg(void)
{
	unsigned char buf[128];
	struct milter_optneg o;
	const char *err;
	size_t n;

	n = pkt(buf, 'O', "\0\0\0\6\0\0\0\x21\0\0\0\x10", 12);
	CHECK("milter optneg plain", milter_optneg_parse(buf, n, &o, &err) == 0 &&
	    o.version == 6 && o.actions == 0x21 && o.protocol == 0x10 && o.symlist[0] == NULL);
	n = pkt(buf, 'O', "\0\0\0\6\0\0\0\0\0\0\0\0" "\0\0\0\0j {client_addr}\0"
	    "\0\0\0\5{i}\0", 12 + 4 + 16 + 4 + 4);
	CHECK("milter optneg symlists", milter_optneg_parse(buf, n, &o, &err) == 0 &&
	    strcmp(o.symlist[MILTER_AT_CONNECT], "j {client_addr}") == 0 &&
	    strcmp(o.symlist[MILTER_AT_EOM], "{i}") == 0 && o.symlist[MILTER_AT_HELO] == NULL);
	n = pkt(buf, 'O', "\0\0\0\6\0\0\0\0\0\0\0", 11);
	CHECK("milter optneg short", milter_optneg_parse(buf, n, &o, &err) == -1);
	n = pkt(buf, 'O', "\0\0\0\1\0\0\0\0\0\0\0\0", 12);
	CHECK("milter optneg version 1 refused", milter_optneg_parse(buf, n, &o, &err) == -1);
	n = pkt(buf, 'O', "\0\0\0\6\0\0\0\0\0\0\0\0\0\0\0\7j\0", 18);
	CHECK("milter optneg stage out of range", milter_optneg_parse(buf, n, &o, &err) == -1);
	n = pkt(buf, 'O', "\0\0\0\6\0\0\0\0\0\0\0\0\0\0\0\1j", 17);
	CHECK("milter optneg list unterminated", milter_optneg_parse(buf, n, &o, &err) == -1);
	n = pkt(buf, 'O', "\0\0\0\6\0\0\0\0\0\0\0\0\0\0", 14);
	CHECK("milter optneg stage truncated", milter_optneg_parse(buf, n, &o, &err) == -1);
	n = pkt(buf, 'c', "", 0);
	CHECK("milter optneg wrong reply", milter_optneg_parse(buf, n, &o, &err) == -1);

	CHECK("milter macro wanted without list", milter_macro_wanted(NULL, "{i}"));
	CHECK("milter macro wanted braces", milter_macro_wanted("j {i} _", "{i}"));
	CHECK("milter macro wanted bare name", milter_macro_wanted("{j},i", "j") &&
	    milter_macro_wanted("{j},i", "{i}"));
	CHECK("milter macro not wanted", !milter_macro_wanted("{client_addr}", "{client}") &&
	    !milter_macro_wanted("", "j") && !milter_macro_wanted("{ij}", "{i}"));
}

static void
test_replycode(void)
{
	static const struct { const char *in; int ok, code; const char *enh, *text; } cases[] = {
		{ "550 5.7.1 go away", 1, 550, "5.7.1", "go away" },
		{ "451 4.7.1 later", 1, 451, "4.7.1", "later" },
		{ "550 no enhanced code", 1, 550, "", "no enhanced code" },
		{ "554", 1, 554, "", "" },
		{ "550-5.7.1 first\r\n550 5.7.1 second", 1, 550, "5.7.1", "first second" },
		{ "550-5.7.1 first\n550 5.7.1 second", 1, 550, "5.7.1", "first second" },
		{ "550-first\r\n", 0, 0, "", "" }, { "550-a\r\n551 b", 0, 0, "", "" },
		{ "250 2.0.0 ok", 0, 0, "", "" }, { "650 x", 0, 0, "", "" },
		{ "55 x", 0, 0, "", "" }, { "", 0, 0, "", "" }, { "abc", 0, 0, "", "" },
		{ "550x5.7.1", 0, 0, "", "" }, { "550 4.7.1 mixed", 0, 0, "", "" },
		{ "550 5.7 short code", 1, 550, "", "5.7 short code" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char enh[16], text[256], name[96];
		int code = 0;
		int rc = milter_replycode_parse(cases[i].in, &code, enh, sizeof(enh), text,
		    sizeof(text));
		snprintf(name, sizeof(name), "milter replycode case %zu", i);
		CHECK(name, (rc == 0) == cases[i].ok && (!cases[i].ok ||
		    (code == cases[i].code && strcmp(enh, cases[i].enh) == 0 &&
		    strcmp(text, cases[i].text) == 0)));
	}
	char enh[16], text[8];
	int code;
	CHECK("milter replycode text cut to fit", milter_replycode_parse("550 5.7.1 a long text",
	    &code, enh, sizeof(enh), text, sizeof(text)) == 0 && strcmp(text, "a long ") == 0);
}

static void
test_addresses(void)
{
	static const struct { const char *in; const char *out; } cases[] = {
		{ "<a@b.example>", "a@b.example" }, { "a@b.example", "a@b.example" },
		{ " <a@b> ", "a@b" }, { "<>", "" }, { "<a@b\r\n>", NULL }, { "<<a@b>>", NULL },
		{ "a<b", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64], name[64];
		int rc = milter_addr_unwrap(cases[i].in, out, sizeof(out));
		snprintf(name, sizeof(name), "milter address unwrap case %zu", i);
		CHECK(name, cases[i].out ? rc == 0 && strcmp(out, cases[i].out) == 0 : rc == -1);
	}
	char small[4];
	CHECK("milter address too long", milter_addr_unwrap("<a@bcd>", small, sizeof(small)) == -1);

	static const struct { const char *spec; int ok, unix_socket; const char *where; unsigned port; }
	    specs[] = {
		{ "inet:127.0.0.1:11332", 1, 0, "127.0.0.1", 11332 },
		{ "inet:8891@127.0.0.1", 1, 0, "127.0.0.1", 8891 },
		{ "inet:[::1]:8891", 1, 0, "::1", 8891 }, { "inet6:::1:25", 1, 0, "::1", 25 },
		{ "inet:localhost:1", 1, 0, "localhost", 1 },
		{ "unix:/run/m.sock", 1, 1, "/run/m.sock", 0 },
		{ "local:/run/m.sock", 1, 1, "/run/m.sock", 0 }, { "/run/m.sock", 1, 1, "/run/m.sock", 0 },
		{ "inet:127.0.0.1", 0, 0, "", 0 }, { "inet:127.0.0.1:0", 0, 0, "", 0 },
		{ "inet:127.0.0.1:65536", 0, 0, "", 0 }, { "inet::25", 0, 0, "", 0 },
		{ "inet:127.0.0.1:2x", 0, 0, "", 0 }, { "unix:relative", 0, 0, "", 0 },
		{ "tcp:1.2.3.4:5", 0, 0, "", 0 }, { "", 0, 0, "", 0 },
	};
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct milter_addr a;
		const char *err = NULL;
		char name[96];
		int rc = milter_addr_parse(specs[i].spec, &a, &err);
		snprintf(name, sizeof(name), "milter socket \"%s\" %s", specs[i].spec,
		    specs[i].ok ? "parsed" : "refused");
		CHECK(name, specs[i].ok ? rc == 0 && a.unix_socket == specs[i].unix_socket &&
		    strcmp(specs[i].unix_socket ? a.path : a.host, specs[i].where) == 0 &&
		    a.port == specs[i].port : rc == -1 && err != NULL);
	}
	struct milter_addr a;
	struct sockaddr_storage ss;
	socklen_t len;
	const char *err;
	milter_addr_parse("inet:mail.example:25", &a, &err);
	CHECK("milter socket host names refused (no resolver here)",
	    milter_io_sockaddr(&a, &ss, &len, &err) == -1);
	milter_addr_parse("inet:[::1]:25", &a, &err);
	CHECK("milter socket IPv6 address", milter_io_sockaddr(&a, &ss, &len, &err) == 0 &&
	    ss.ss_family == AF_INET6);
}

/* The body of msg as a milter gets it, fed step octets at a time. */
static char *
cut_body(const char *msg, size_t step)
{
	struct milter_body_cut c = { 0 };
	size_t len = strlen(msg), k = 0;
	char *out = malloc(2 * len + 1);

	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		k += milter_body_cut(&c, msg + i, n, out + k);
	}
	out[k] = '\0';
	return out;
}

static void
test_body_cut(void)
{
	static const struct { const char *msg, *body; } cases[] = {
		{ "A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\n", "line 1\r\nline 2\r\n" },
		{ "A: 1\nB: 2\n\nbare\nlf\n", "bare\r\nlf\r\n" },
		{ "A: 1\r\n folded\r\n\r\n\r\nblank first\r\n", "\r\nblank first\r\n" },
		{ "A: 1\r\n", "" }, { "\r\nno headers\r\n", "no headers\r\n" },
		{ "A: x\r\n\r\nmixed\nends\r\n", "mixed\r\nends\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t step = 1; step <= 7; step += 6) {
			char name[80];
			char *got = cut_body(cases[i].msg, step);
			snprintf(name, sizeof(name), "milter body cut case %zu, %zu octet(s) at a time",
			    i, step);
			CHECK_STR(name, got, cases[i].body);
			free(got);
		}
	}
}

static void
test_headers(void)
{
	const char *sec = "From: Joe <j@x>\r\nSubject : obsolete\r\n"
	    "To: a@x,\r\n\tb@x\r\nnot a field\r\nX-Empty:\r\n\r\nbody: not a header\r\n";
	const char *want[][2] = {
		{ "From", "Joe <j@x>" }, { "Subject", "obsolete" }, { "To", "a@x,\n\tb@x" },
		{ "X-Empty", "" },
	};
	char name[32], value[64];
	size_t pos = 0, i = 0;

	while (milter_header_next(sec, strlen(sec), &pos, name, sizeof(name), value,
	    sizeof(value))) {
		char label[64];
		snprintf(label, sizeof(label), "milter header %zu name", i);
		CHECK_STR(label, i < 4 ? name : "(extra)", i < 4 ? want[i][0] : "");
		snprintf(label, sizeof(label), "milter header %zu value", i);
		CHECK_STR(label, i < 4 ? value : "(extra)", i < 4 ? want[i][1] : "");
		i++;
	}
	CHECK("milter headers: four fields, stops at the empty line", i == 4);

	char small[6];
	pos = 0;
	CHECK("milter header value cut to fit", milter_header_next("A: 123456789\r\n", 14, &pos,
	    name, sizeof(name), small, sizeof(small)) == 1 && strcmp(small, "12345") == 0);

	char out[64];
	milter_header_value("a\nb", out);
	CHECK_STR("milter header value LF fold gains a tab", out, "a\r\n\tb");
	milter_header_value("a\r\n b\n", out);
	CHECK_STR("milter header value CRLF fold kept, last LF dropped", out, "a\r\n b");
}

/* ---- reading replies over a socket pair ----------------------------------- */

static struct milter_conf test_conf = { .name = "t", .command_ms = 200, .content_ms = 200 };
static unsigned char link_buf[MILTER_MAX_PACKET];

struct applied {
	int n;
	char last;
};

static int
count_mod(void *arg, const struct milter_reply *r, const char **error_r)
{
	struct applied *a = arg;

	(void)error_r;
	a->n++;
	a->last = r->code;
	return 0;
}

/* Put a framed reply on the milter side of the pair. */
static void
put(int fd, char code, const char *data, size_t len)
{
	unsigned char b[256];
	struct milter_pkt p;

	milter_pkt_begin(&p, b, sizeof(b), code);
	milter_pkt_bytes(&p, data, len);
	size_t n = milter_pkt_end(&p);
	if (write(fd, b, n) != (ssize_t)n)
		abort();
}

static void
test_link_answer(void)
{
	int sv[2];
	struct milter_link l = { .conf = &test_conf, .buf = link_buf,
	    .actions = SMFIF_ADDHDRS };
	struct applied ap = { 0 };
	struct milter_mods mods = { count_mod, &ap };
	struct milter_answer a;
	const char *err = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	l.fd = sv[0];
	put(sv[1], 'p', "", 0);
	put(sv[1], 'h', "X-A\0v\0", 6);
	put(sv[1], 'p', "", 0);
	put(sv[1], 'c', "", 0);
	CHECK("milter link progress, change, continue",
	    milter_link_answer(&l, 200, &mods, &a, &err) == 0 && a.verdict == MV_CONTINUE &&
	    ap.n == 1 && ap.last == 'h');

	put(sv[1], 'y', "421 4.3.2 shutting down\0", 24);
	CHECK("milter link custom reply", milter_link_answer(&l, 200, NULL, &a, &err) == 0 &&
	    a.verdict == MV_REPLY && a.code == 421 && strcmp(a.text, "shutting down") == 0);

	put(sv[1], 'h', "X-A\0v\0", 6);
	CHECK("milter link change outside end of message refused",
	    milter_link_answer(&l, 200, NULL, &a, &err) == -1);

	put(sv[1], 'e', "<x@y>\0", 6);
	CHECK("milter link unnegotiated change refused",
	    milter_link_answer(&l, 200, &mods, &a, &err) == -1 && ap.n == 1);

	/* in one write: a thousand small ones could fill the socket buffer */
	static unsigned char many[(MILTER_MAX_PROGRESS + 1) * 5];
	for (int i = 0; i <= MILTER_MAX_PROGRESS; i++)
		memcpy(many + 5 * i, "\0\0\0\1p", 5);
	if (write(sv[1], many, sizeof(many)) != (ssize_t)sizeof(many))
		abort();
	CHECK("milter link endless progress cut off",
	    milter_link_answer(&l, 200, NULL, &a, &err) == -1 && strstr(err, "progress") != NULL);

	put(sv[1], 'y', "250 ok\0", 7);
	CHECK("milter link 2xx reply refused", milter_link_answer(&l, 200, NULL, &a, &err) == -1);

	CHECK("milter link silence times out", milter_link_answer(&l, 100, NULL, &a, &err) == -1 &&
	    strstr(err, "timed out") != NULL);

	static const unsigned char huge[] = { 0, 2, 0, 0 };
	if (write(sv[1], huge, sizeof(huge)) != (ssize_t)sizeof(huge))
		abort();
	CHECK("milter link over-long packet refused",
	    milter_link_answer(&l, 100, &mods, &a, &err) == -1 && strstr(err, "too long") != NULL);

	put(sv[1], 'a', "", 0);
	close(sv[1]);
	CHECK("milter link accept before close", milter_link_answer(&l, 100, NULL, &a, &err) == 0 &&
	    a.verdict == MV_ACCEPT);
	CHECK("milter link closed peer", milter_link_answer(&l, 100, NULL, &a, &err) == -1 &&
	    strstr(err, "closed") != NULL);
	close(sv[0]);
}

int
main(void)
{
	test_build();
	test_frame();
	test_replies();
	test_optneg();
	test_replycode();
	test_addresses();
	test_body_cut();
	test_headers();
	test_link_answer();
	TEST_EXIT();
}
