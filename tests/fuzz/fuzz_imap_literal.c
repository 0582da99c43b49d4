/*
 * tests/fuzz/fuzz_imap_literal.c - libFuzzer target: IMAP command
 * framing (imap_session.c's reader): lines at and over the line limit,
 * synchronising {n} and non-synchronising {n+} literals (RFC 3501
 * 4.3, RFC 7888) below, at and over the limits (8 KiB before login,
 * imap.max_literal after), chained in one command, refused.
 *
 * The input drives a client, not raw bytes: each step writes a command
 * the client knows the framing of, and the client is interactive (it
 * is asked for more only when the session has read everything), so it
 * sends a synchronising literal's bytes only after the server's "+",
 * as RFC 3501 7.5 says, or, when the input asks for a hostile client,
 * sends them anyway. What must hold, checked on the session's replies:
 *  - bytes the client sent as a literal's content never run as a
 *    command: every literal line is "J<n> NOOP", and a reply tagged
 *    J<n> aborts (issue 15 item 6: a refused {n+} literal's bytes ran
 *    as commands). (Content sent after a refusal of {n} is the hostile
 *    client's choice to send commands; it is tagged X<n>, unchecked.)
 *  - commands are answered in order, each at most once (tags C<n>).
 * The first octet chooses the limits (max_literal 1024 or 20000) and
 * whether the session starts logged in.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_fuzz_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEEP (1u << 20)		/* output looked at */
#define CONTENT_MAX 24000	/* literal octets sent at most; beyond, the
				 * input ends mid-literal */

enum client_state {
	BETWEEN,		/* at the start of a command */
	IN_COMMAND,		/* after a literal, the command goes on */
	AWAITING_PLUS,		/* sent "{n}", waiting for "+" or a refusal */
	ENDED			/* nothing more to send */
};

struct client {
	const uint8_t *data;
	size_t size, pos;
	enum client_state state;
	unsigned n;		/* the current command's number */
	size_t out_mark;	/* output length when "{n}" was sent */
	long long pending;	/* the awaited literal's size */
	unsigned chain;		/* literals in this command so far */
	int hostile;		/* sends {n} bytes without a "+" */
};

static unsigned
next(struct client *cl)
{
	return cl->pos < cl->size ? cl->data[cl->pos++] : 0;
}

static int
more(const struct client *cl)
{
	return cl->pos < cl->size;
}

/* Fuzz octets as argument text: no CR, LF or braces, so that all
 * framing is the client's own. */
static void
send_text(struct client *cl, struct mp_conn *c, size_t max)
{
	size_t n = next(cl) % (max + 1);
	char buf[256];

	for (size_t i = 0; i < n && i < sizeof(buf); i++) {
		unsigned char ch = (unsigned char)next(cl);
		buf[i] = ch == '\r' || ch == '\n' || ch == '{' || ch == '}' ? 'x' : (char)ch;
	}
	mock_conn_feed(c, buf, n < sizeof(buf) ? n : sizeof(buf));
}

static void
sendf(struct mp_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
sendf(struct mp_conn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	mock_conn_feed(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Literal sizes around every limit, and spellings of them. */
static const char *const sizes[] = {
	"0", "1", "5", "18", "1023", "1024", "1025", "8191", "8192", "8193", "20000",
	"20001", "70000", "52428801", "4294967296", "999999999999", "000000000005",
	"0000000000005", "99999999999999999999", "-1", "",
};

/* size lines of "<tag><n> NOOP\r\n", cut at size octets (capped). */
static void
send_content(struct client *cl, struct mp_conn *c, char tag, long long size)
{
	char line[32];
	int len = snprintf(line, sizeof(line), "%c%u NOOP\r\n", tag, cl->n);
	long long sent = 0;

	while (sent < size && sent < CONTENT_MAX) {
		long long k = size - sent < len ? size - sent : len;
		mock_conn_feed(c, line, (size_t)k);
		sent += k;
	}
	if (sent < size)	/* the rest never comes */
		cl->state = ENDED;
}

/* " {n}" or " {n+}" ending the line, then for {n+} its content. */
static void
send_literal(struct client *cl, struct mp_conn *c)
{
	const char *size = sizes[next(cl) % (sizeof(sizes) / sizeof(sizes[0]))];
	int plus = next(cl) & 1;
	long long n = strtoll(size, NULL, 10);

	cl->chain++;
	sendf(c, " {%s%s}\r\n", size, plus ? "+" : "");
	if (plus) {
		send_content(cl, c, 'J', n);
		if (cl->state != ENDED)
			cl->state = IN_COMMAND;
		return;
	}
	cl->pending = n;
	cl->out_mark = (size_t)-1;	/* set by the caller, who sees the output */
	cl->state = AWAITING_PLUS;
}

static const char *const verbs[] = {
	"NOOP", "CAPABILITY", "LOGIN " FUZZ_USER " " FUZZ_PASS, "LOGIN", "APPEND INBOX",
	"APPEND INBOX (\\Seen)", "X-UNKNOWN", "SELECT INBOX", "LOGOUT", "ID", "LIST \"\"",
};

static void
start_command(struct client *cl, struct mp_conn *c)
{
	unsigned op = next(cl) % 6;

	cl->n++;
	cl->chain = 0;
	cl->hostile = 0;
	switch (op) {
	case 0: case 1:		/* a command with or without literals */
		sendf(c, "C%u %s", cl->n, verbs[next(cl) % (sizeof(verbs) / sizeof(verbs[0]))]);
		send_text(cl, c, 40);
		cl->hostile = next(cl) & 1;
		if (op == 1)
			send_literal(cl, c);
		else
			sendf(c, "\r\n");
		return;
	case 2: {		/* a line near the line limit, maybe a literal after */
		static const size_t lens[] = { 1000, 1012, 1013, 1014, 1015, 1024, 2048, 70000 };
		size_t len = lens[next(cl) % 8];
		char *pad = malloc(len);
		memset(pad, 'a', len);
		sendf(c, "C%u NOOP ", cl->n);
		mock_conn_feed(c, pad, len);
		free(pad);
		if (next(cl) & 1)
			send_literal(cl, c);
		else
			sendf(c, "\r\n");
		return;
	}
	case 3:
		sendf(c, "C%u IDLE\r\nDONE\r\n", cl->n);
		return;
	case 4:
		sendf(c, "C%u AUTHENTICATE PLAIN\r\nAGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n", cl->n);
		return;
	default:		/* a line of anything, untagged for the checks */
		sendf(c, "R");
		send_text(cl, c, 200);
		sendf(c, "\r\n");
		return;
	}
}

/* The server answered the awaited {n}: with "+" (send it) or a
 * refusal (a compliant client drops the command). */
static void
answer_literal(struct client *cl, struct mp_conn *c)
{
	size_t kept;
	const char *out = mock_conn_output(c, &kept);
	const char *since = out + cl->out_mark;
	int go_ahead = strncmp(since, "+ ", 2) == 0 || strstr(since, "\n+ ") != NULL;

	if (go_ahead)
		send_content(cl, c, 'J', cl->pending);
	else if (cl->hostile)
		send_content(cl, c, 'X', cl->pending);
	else {
		cl->state = BETWEEN;
		return;
	}
	if (cl->state != ENDED)
		cl->state = IN_COMMAND;
}

static void
refill(void *arg, struct mp_conn *c)
{
	struct client *cl = arg;

	if (cl->state == AWAITING_PLUS) {
		answer_literal(cl, c);
		if (cl->state != BETWEEN)
			return;
	}
	if (cl->state == ENDED || !more(cl)) {
		cl->state = ENDED;
		return;
	}
	if (cl->state == IN_COMMAND) {
		if (cl->chain < 4 && (next(cl) & 1))
			send_literal(cl, c);
		else {	/* a space first: never a tag if the server saw no literal */
			sendf(c, " ");
			send_text(cl, c, 10);
			sendf(c, "\r\n");
			cl->state = BETWEEN;
		}
	} else
		start_command(cl, c);
	if (cl->state == AWAITING_PLUS) {
		size_t kept;
		mock_conn_output(c, &kept);
		cl->out_mark = kept;
	}
}

/* The checks above, on every reply line. */
static void
check_replies(const char *out)
{
	long last = -1;

	for (const char *p = out; *p;) {
		const char *eol = strstr(p, "\r\n");
		if (eol == NULL)
			break;
		if (p[0] == 'J' && p[1] >= '0' && p[1] <= '9') {
			fprintf(stderr, "literal content ran as a command: %.*s\n", (int)(eol - p), p);
			abort();
		}
		if (p[0] == 'C' && p[1] >= '0' && p[1] <= '9') {
			long n = strtol(p + 1, NULL, 10);
			if (n <= last) {
				fprintf(stderr, "C%ld answered after C%ld\n", n, last);
				abort();
			}
			last = n;
		}
		p = eol + 2;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const small[] = { "plaintext_auth", "true", "max_line", "1024",
	    "max_literal", "1024", "errors", "1000", NULL };
	static const char *const big[] = { "plaintext_auth", "true", "max_line", "1024",
	    "max_literal", "20000", NULL };
	static const char login[] = "C0 LOGIN " FUZZ_USER " " FUZZ_PASS "\r\n";
	struct client cl = { data, size, 1, BETWEEN, 0, 0, 0, 0, 0 };
	size_t kept, written;

	if (size == 0)
		return 0;
	struct mp_conn *c = imap_fuzz_session(data[0] & 1 ? big : small, login,
	    data[0] & 2 ? sizeof(login) - 1 : 0, KEEP, refill, &cl);
	const char *out = mock_conn_output(c, &kept);
	written = mock_conn_written(c);
	if (getenv("FUZZ_IMAP_SHOW")) {	/* to read a reproducer's session */
		size_t in_len;
		const char *in = mock_conn_input(c, &in_len);
		fprintf(stderr, "---- client\n%.*s\n---- server\n%s\n", (int)in_len, in, out);
	}
	if (kept == written)
		check_replies(out);
	mock_conn_free(c);
	return 0;
}
