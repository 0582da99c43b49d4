/*
 * tests/unit/test_smtp_data.c - the DATA state machine: dot-unstuffing
 * (RFC 5321 4.5.2), the end marker, bare CR/LF (SMTP smuggling), long
 * lines, and input split at every possible byte boundary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"
#include "test.h"

struct result {
	char out[4096];
	size_t outlen, consumed;
	int done, bare, long_line;
};

/* Feed in chunks of step bytes (0: all at once). */
static void
run(const char *in, size_t step, struct result *r)
{
	struct smtp_data d;
	size_t len = strlen(in), pos = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d);
	while (pos < len && !r->done) {
		size_t n = step && step < len - pos ? step : len - pos, outlen;
		char out[2 * 4096 + 4];
		size_t used = smtp_data_feed(&d, in + pos, n, out, &outlen,
		    &r->done);
		memcpy(r->out + r->outlen, out, outlen);
		r->outlen += outlen;
		pos += used;
	}
	r->out[r->outlen] = '\0';
	r->consumed = pos;
	r->bare = d.bare_eol;
	r->long_line = d.long_line;
}

static void
test_table(void)
{
	static const struct { const char *name, *in, *out; int done, bare;
	    size_t rest; } cases[] = {
		{ "simple", "a\r\nb\r\n.\r\n", "a\r\nb\r\n", 1, 0, 0 },
		{ "empty message", ".\r\n", "", 1, 0, 0 },
		{ "unstuff ..", "..x\r\n.\r\n", ".x\r\n", 1, 0, 0 },
		{ "unstuff lone ..", "..\r\n.\r\n", ".\r\n", 1, 0, 0 },
		{ "dot mid-line kept", "a.b\r\n.\r\n", "a.b\r\n", 1, 0, 0 },
		{ "pipelined rest not consumed", "x\r\n.\r\nQUIT\r\n", "x\r\n", 1, 0, 6 },
		{ "no end yet", "x\r\n", "x\r\n", 0, 0, 0 },
		{ "bare LF flagged", "a\nb\r\n.\r\n", "a\r\nb\r\n", 1, 1, 0 },
		{ "bare CR flagged", "a\rb\r\n.\r\n", "a\r\nb\r\n", 1, 1, 0 },
		{ "LF.LF never ends", "a\n.\nb\r\n.\r\n", NULL, 1, 1, 0 },
		{ "CRLF.LF never ends", "a\r\n.\nb\r\n.\r\n", NULL, 1, 1, 0 },
		{ "LF.CRLF never ends", "a\n.\r\nb\r\n.\r\n", NULL, 1, 1, 0 },
		{ "CR.CR never ends", "a\r.\rb\r\n.\r\n", NULL, 1, 1, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t step = 0; step <= 3; step++) {
			struct result r;
			char name[160];
			run(cases[i].in, step, &r);
			snprintf(name, sizeof(name), "%s (step %zu): done", cases[i].name, step);
			CHECK(name, r.done == cases[i].done);
			snprintf(name, sizeof(name), "%s (step %zu): bare", cases[i].name, step);
			CHECK(name, r.bare == cases[i].bare);
			if (cases[i].out) {
				snprintf(name, sizeof(name), "%s (step %zu): output", cases[i].name, step);
				CHECK_STR(name, r.out, cases[i].out);
			}
			snprintf(name, sizeof(name), "%s (step %zu): unconsumed", cases[i].name, step);
			CHECK(name, strlen(cases[i].in) - r.consumed == cases[i].rest);
		}
	}
}

static void
test_smuggled_end_is_content(void)
{
	struct result r;

	run("a\n.\nMAIL FROM:<x@y>\r\n.\r\n", 0, &r);
	CHECK("smuggled MAIL stays inside the message",
	    r.done && strstr(r.out, "MAIL FROM:<x@y>") != NULL);
}

static void
test_long_line(void)
{
	char *in = malloc(1200);
	struct result *r = malloc(sizeof(*r));

	memset(in, 'x', 999);
	strcpy(in + 999, "\r\n.\r\n");
	run(in, 0, r);
	CHECK("999-octet line is flagged long", r->long_line);
	memset(in, 'x', 998);
	strcpy(in + 998, "\r\n.\r\n");
	run(in, 0, r);
	CHECK("998-octet line is fine", !r->long_line && r->done);
	free(in);
	free(r);
}

static void
test_size(void)
{
	struct smtp_data d;
	char out[64];
	size_t outlen;
	int done;

	smtp_data_init(&d);
	smtp_data_feed(&d, "ab\r\n..c\r\n.\r\n", 12, out, &outlen, &done);
	CHECK("size counts unstuffed octets", d.size == 8 && outlen == 8);
}

int
main(void)
{
	test_table();
	test_smuggled_end_is_content();
	test_long_line();
	test_size();
	TEST_EXIT();
}
