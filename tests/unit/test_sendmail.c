/*
 * tests/unit/test_sendmail.c - `merpati sendmail`'s header work
 * (core/sendmail_headers.c): -t recipients from To/Cc/Bcc, folded
 * fields, RFC 5322 address lists (display names, quotes, comments,
 * groups, routes), Resent- fields first, Bcc removal, and the inputs
 * that used to go wrong: a message opening with a blank line
 * (has_header looped forever, found by fuzz_sendmail_headers) and a NUL
 * byte hiding a later Bcc field. Then the drop file reader
 * (core/sendmail_drop.c) on good and hostile files.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sendmail_headers.h"
#include "sendmail_submit.h"
#include "test.h"

static struct mp_buf
message(const char *text, size_t len)
{
	struct mp_buf t = { 0 };

	mp_buf_put(&t, text, len);
	return t;
}

static void
free_rcpts(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
test_recipients(void)
{
	const char *text = "From: a@example.test\r\nTo: Bob <bob@x.test>, carol@x.test\r\n"
	    "cc: dave@y.test,\r\n\terin@y.test\r\nBcc: <frank@z.test>\r\nSubject: hi\r\n"
	    "\r\nTo: body@not.test\r\n";
	struct mp_buf t = message(text, strlen(text));
	char **v = NULL;
	size_t n = 0;

	sendmail_recipients_from_headers(&t, &v, &n, 100);
	CHECK("five recipients from To, Cc (folded) and Bcc, none twice", n == 5);
	CHECK_STR("To in angle brackets", n > 0 ? v[0] : NULL, "bob@x.test");
	CHECK_STR("bare To address", n > 1 ? v[1] : NULL, "carol@x.test");
	CHECK_STR("Cc in any case", n > 2 ? v[2] : NULL, "dave@y.test");
	CHECK_STR("a folded Cc line is part of the field", n > 3 ? v[3] : NULL, "erin@y.test");
	CHECK_STR("Bcc", n > 4 ? v[4] : NULL, "frank@z.test");
	free_rcpts(v, n);
	free(t.p);
}

static void
test_remove_bcc(void)
{
	const char *text = "To: bob@x.test\r\nBcc: secret@x.test,\r\n more@x.test\r\n"
	    "Subject: hi\r\n\r\nBcc: stays in the body\r\n";
	struct mp_buf t = message(text, strlen(text));

	sendmail_remove_bcc(&t);
	CHECK_STR("Bcc and its folded line removed, the body untouched", t.p,
	    "To: bob@x.test\r\nSubject: hi\r\n\r\nBcc: stays in the body\r\n");
	CHECK("length follows", t.len == strlen(t.p));
	free(t.p);

	/* A NUL in an earlier field must not hide the Bcc after it. */
	static const char nul[] = "To: bob@x.test\r\nX-A: a\0b\r\nBcc: secret@x.test\r\n\r\nbody\r\n";
	t = message(nul, sizeof(nul) - 1);
	sendmail_remove_bcc(&t);
	CHECK("Bcc after a NUL byte removed", !memmem(t.p, t.len, "secret", 6) &&
	    t.len == sizeof(nul) - 1 - strlen("Bcc: secret@x.test\r\n"));
	CHECK("and has_header no longer sees one", !sendmail_has_header(&t, "Bcc"));
	free(t.p);
}

static void
test_header_end(void)
{
	const char *text = "\r\nFrom: in the body\r\n";
	struct mp_buf t = message(text, strlen(text));
	struct mp_buf empty = { 0 };

	alarm(5);	/* this used to loop forever */
	CHECK("a blank first line: no header section, no From", !sendmail_has_header(&t, "From"));
	alarm(0);
	CHECK("the header section of a blank-first message is empty",
	    sendmail_header_end(&t) == t.p);
	sendmail_remove_bcc(&t);
	CHECK("nothing removed from its body", t.len == strlen(text));
	free(t.p);
	CHECK("an empty message has no field", !sendmail_has_header(&empty, "Date"));

	text = "Subject: x\r\nDate: now\r\n";
	t = message(text, strlen(text));
	CHECK("no blank line: the whole text is headers", sendmail_has_header(&t, "date") &&
	    sendmail_header_end(&t) == t.p + t.len);
	CHECK("a prefix of a field name is not the field", !sendmail_has_header(&t, "Dat"));
	free(t.p);
}

/* One -t run over text; the recipients joined by spaces. */
static void
extract(const char *text, size_t max, char *out, size_t size)
{
	struct mp_buf t = message(text, strlen(text));
	char **v = NULL;
	size_t n = 0, len = 0;

	sendmail_recipients_from_headers(&t, &v, &n, max);
	out[0] = '\0';
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? " " : "", v[i]);
	free_rcpts(v, n);
	free(t.p);
}

static void
test_address_lists(void)
{
	static const struct {
		const char *name, *text, *want;
	} cases[] = {
		{ "a quoted display name with a comma and an @ is not an address",
		  "To: \"Smith, John (j@fake.test)\" <john@x.test>, Ann <ann@x.test>\r\n\r\n",
		  "john@x.test ann@x.test" },
		{ "comments, nested, are skipped",
		  "To: bob@x.test (Bob (the (builder)), not@this.test)\r\n\r\n", "bob@x.test" },
		{ "a group's name is dropped, its members kept",
		  "To: friends: a@x.test, b@x.test;, c@x.test\r\n\r\n", "a@x.test b@x.test c@x.test" },
		{ "an empty group yields nothing", "To: undisclosed-recipients:;\r\n\r\n", "" },
		{ "a source route is dropped", "To: <@relay.test,@r2.test:d@x.test>\r\n\r\n",
		  "d@x.test" },
		{ "several To lines and folds, tab and space",
		  "To: a@x.test,\r\n b@x.test\r\nTo:\r\n\tc@x.test\r\nSubject: s\r\n\r\n",
		  "a@x.test b@x.test c@x.test" },
		{ "a bare local part is kept for the caller to qualify", "To: root\r\n\r\n", "root" },
		{ "the same address twice, any case, once", "To: a@x.test\r\nCc: A@X.test\r\n\r\n",
		  "a@x.test" },
		{ "Resent- fields win over To/Cc/Bcc",
		  "To: old@x.test\r\nResent-To: new@x.test\r\nResent-Bcc: hid@x.test\r\n\r\n",
		  "new@x.test hid@x.test" },
		{ "a display name alone is no address", "To: John Smith <>\r\n\r\n", "" },
		{ "control characters are refused", "To: a\x01@x.test, ok@x.test\r\n\r\n",
		  "ok@x.test" },
		{ "a field whose name only starts like To is ignored",
		  "Top: t@x.test\r\nTo : s@x.test\r\n\r\n", "" },
	};
	char got[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		extract(cases[i].text, 100, got, sizeof(got));
		CHECK_STR(cases[i].name, got, cases[i].want);
	}
	extract("To: a@x.test, b@x.test, c@x.test, d@x.test\r\n\r\n", 2, got, sizeof(got));
	CHECK_STR("no more than max recipients", got, "a@x.test b@x.test");

	const char *text = "Resent-Bcc: r@x.test\r\nBcc: b@x.test\r\nTo: t@x.test\r\n\r\nbody\r\n";
	struct mp_buf t = message(text, strlen(text));
	sendmail_remove_bcc(&t);
	CHECK_STR("Bcc and Resent-Bcc removed", t.p, "To: t@x.test\r\n\r\nbody\r\n");
	free(t.p);
}

/* Decode a copy of text; 0 or -1, the reason in why. */
static int
decode(const char *text, size_t max, struct sm_drop *d, char **copy, char *why,
    size_t size)
{
	size_t len = strlen(text);

	*copy = malloc(len + 1);
	memcpy(*copy, text, len + 1);
	return sendmail_drop_decode(*copy, len, max, d, why, size);
}

static void
test_drop_files(void)
{
	struct sm_submission s = { .sender = "me@x.test", .fullname = "Me",
		.rcpts = (char *[]){ "a@x.test", "b@x.test" },
		.notify = (char *[]){ NULL, "SUCCESS,FAILURE" }, .nrcpt = 2,
		.ret = "HDRS", .envid = "e1" };
	struct mp_buf out = { 0 };
	struct sm_drop d;
	char why[160], *copy;

	mp_buf_put(&out, "U 1000\n", 7);
	sendmail_drop_encode(&s, "Subject: x\r\n\r\nhi\r\n", 18, &out);
	CHECK("an encoded file decodes", decode(out.p, 10, &d, &copy, why, sizeof(why)) == 0);
	CHECK("uid from the U line", d.s.uid == 1000);
	CHECK_STR("sender", d.s.sender, "me@x.test");
	CHECK_STR("full name", d.s.fullname, "Me");
	CHECK("two recipients, NOTIFY on the second only", d.s.nrcpt == 2 &&
	    strcmp(d.s.rcpts[1], "b@x.test") == 0 && d.s.notify[0] == NULL &&
	    strcmp(d.s.notify[1], "SUCCESS,FAILURE") == 0);
	CHECK("RET and ENVID", strcmp(d.s.ret, "HDRS") == 0 && strcmp(d.s.envid, "e1") == 0);
	CHECK("the message, byte for byte", d.len == 18 &&
	    memcmp(d.msg, "Subject: x\r\n\r\nhi\r\n", 18) == 0);
	sendmail_drop_free(&d);
	free(copy);
	CHECK("more recipients than allowed: refused",
	    decode(out.p, 1, &d, &copy, why, sizeof(why)) < 0 && strstr(why, "too many"));
	free(copy);
	free(out.p);

	static const struct {
		const char *name, *text, *why;
	} bad[] = {
		{ "no U line", "MERPATI-DROP 1\nS a@x\nR b@x\n\nx\r\n", "no U line" },
		{ "a second U line (a forged uid after the real one)",
		  "U 65534\nU 0\nMERPATI-DROP 1\nS a@x\nR b@x\n\nx\r\n", "not a merpati drop file" },
		{ "a negative uid", "U -1\nMERPATI-DROP 1\nS a@x\nR b@x\n\n", "no U line" },
		{ "no recipient", "U 1\nMERPATI-DROP 1\nS a@x\n\nx\r\n", "no sender or no recipient" },
		{ "no blank line", "U 1\nMERPATI-DROP 1\nS a@x\nR b@x\n", "envelope not ended" },
		{ "a bare LF in the message", "U 1\nMERPATI-DROP 1\nS a@x\nR b@x\n\nx\ny\r\n",
		  "bare LF" },
		{ "a CR inside a field", "U 1\nMERPATI-DROP 1\nS a@x\rR c@x\nR b@x\n\n",
		  "envelope not ended" },
		{ "N before any R", "U 1\nMERPATI-DROP 1\nS a@x\nN NEVER\nR b@x\n\n", "N without" },
		{ "a bad RET", "U 1\nMERPATI-DROP 1\nS a@x\nT ALL\nR b@x\n\n", "bad RET" },
		{ "an unknown line", "U 1\nMERPATI-DROP 1\nS a@x\nX y\nR b@x\n\n", "unknown" },
		{ "a recipient with a space", "U 1\nMERPATI-DROP 1\nS a@x\nR b @x\n\n", "bad envelope" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		int rc = decode(bad[i].text, 10, &d, &copy, why, sizeof(why));
		CHECK(bad[i].name, rc < 0 && strstr(why, bad[i].why) != NULL);
		free(copy);
	}
}

int
main(void)
{
	test_recipients();
	test_remove_bcc();
	test_header_end();
	test_address_lists();
	test_drop_files();
	TEST_EXIT();
}
