/*
 * tests/unit/test_filter_headers.c - the header section as filters edit
 * it (core/filter_headers.c): parsing with folds and without a body,
 * name and value checks (':' or white space in a name, bare CR or LF in
 * a value), insert/change/delete by position and name, the limits, and
 * that untouched fields come back byte for byte.
 */
#include <stdlib.h>
#include <string.h>

#include "filter_headers.h"
#include "test.h"

static char *
formatted(const struct mp_hdrs *h)
{
	size_t len;

	return mp_hdrs_format(h, &len);
}

static void
test_parse(void)
{
	const char *msg = "Received: from a\r\n\tby b\r\nSubject: hi\r\n"
	    "X-Y: 1\r\n\r\nbody\r\nSubject: not a header\r\n";
	struct mp_hdrs h;
	size_t used;
	int blank;
	char *out;

	CHECK("parse: ok", mp_hdrs_parse(&h, msg, strlen(msg), &used, &blank) == 0);
	CHECK("parse: three fields", h.n == 3);
	CHECK_STR("parse: fold kept in its field", h.v[0], "Received: from a\r\n\tby b\r\n");
	CHECK("parse: section length includes the empty line",
	    used == strlen(msg) - strlen("body\r\nSubject: not a header\r\n"));
	CHECK("parse: ends with an empty line", blank == 1);
	out = formatted(&h);
	CHECK("parse: format gives the fields back unchanged",
	    strncmp(out, msg, strlen(out)) == 0 && strlen(out) == used - 2);
	free(out);
	mp_hdrs_free(&h);

	msg = "A: 1\r\nB: 2\r\n";
	CHECK("parse: headers only", mp_hdrs_parse(&h, msg, strlen(msg), &used,
	    &blank) == 0 && h.n == 2 && blank == 0 && used == strlen(msg));
	mp_hdrs_free(&h);
}

static void
test_limits(void)
{
	size_t n = MP_HDRS_MAX_BYTES + 100, used;
	char *big = malloc(n + 1);
	struct mp_hdrs h;
	int blank;

	for (size_t i = 0; i < n; i += 10)
		memcpy(big + i, "X: 123456\n", 10 < n - i ? 10 : n - i);
	big[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (big[i] == '\n')
			big[i - 1] = '\r';
	CHECK("limits: a section past MP_HDRS_MAX_BYTES (or fields) is refused",
	    mp_hdrs_parse(&h, big, n, &used, &blank) == -1 && h.n == 0);
	free(big);
	CHECK("limits: a NUL in the section is refused",
	    mp_hdrs_parse(&h, "A: 1\r\nB: x\0y\r\n\r\n", 16, &used, &blank) == -1);
	CHECK("limits: a NUL in the body is not the section's",
	    mp_hdrs_parse(&h, "A: 1\r\n\r\nx\0y", 11, &used, &blank) == 0 && h.n == 1);
	mp_hdrs_free(&h);
}

static void
test_validation(void)
{
	CHECK("name: plain", mp_hdr_name_valid("X-Spam-Status"));
	CHECK("name: colon refused", !mp_hdr_name_valid("X:Y"));
	CHECK("name: space refused", !mp_hdr_name_valid("X Y"));
	CHECK("name: tab refused", !mp_hdr_name_valid("X\tY"));
	CHECK("name: empty refused", !mp_hdr_name_valid(""));
	CHECK("name: 8-bit refused", !mp_hdr_name_valid("X-\xc3\xa9"));
	CHECK("value: plain", mp_hdr_value_valid("pass (sender ok)"));
	CHECK("value: a fold is fine", mp_hdr_value_valid("a;\r\n\tb=c"));
	CHECK("value: bare LF refused", !mp_hdr_value_valid("a\nb"));
	CHECK("value: bare CR refused", !mp_hdr_value_valid("a\rb"));
	CHECK("value: CRLF without white space refused", !mp_hdr_value_valid("a\r\nb"));
	CHECK("value: CRLF at the end refused", !mp_hdr_value_valid("a\r\n"));
}

static void
test_edits(void)
{
	const char *msg = "Received: x\r\nSubject: one\r\nsubject: two\r\nTo: t\r\n\r\n";
	struct mp_hdrs h;
	size_t used;
	int blank;
	char *out;

	mp_hdrs_parse(&h, msg, strlen(msg), &used, &blank);
	CHECK("insert: at the top", mp_hdrs_insert(&h, 0, "A", "1") == 0);
	CHECK("insert: before the third", mp_hdrs_insert(&h, 2, "B", "2") == 0);
	CHECK("insert: past the end is last", mp_hdrs_insert(&h, (size_t)-1, "Z", "9") == 0);
	CHECK("change: the 2nd Subject, any case (its own spelling kept)",
	    mp_hdrs_change(&h, "SUBJECT", 2, "second") == 1);
	CHECK("change: delete the 1st Subject", mp_hdrs_change(&h, "Subject", 1, NULL) == 1);
	CHECK("change: a missing one is 0", mp_hdrs_change(&h, "Subject", 2, "x") == 0);
	CHECK("change: a longer name is another field",
	    mp_hdrs_change(&h, "Subjec", 1, "x") == 0);
	out = formatted(&h);
	CHECK_STR("edits: the result", out,
	    "A: 1\r\nReceived: x\r\nB: 2\r\nsubject: second\r\nTo: t\r\nZ: 9\r\n");
	CHECK("edits: bytes kept in step", h.bytes == strlen(out));
	free(out);
	mp_hdrs_free(&h);
}

int
main(void)
{
	test_parse();
	test_limits();
	test_validation();
	test_edits();
	TEST_EXIT();
}
