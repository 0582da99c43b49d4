/*
 * tests/unit/test_sendmail.c - `merpati sendmail`'s header work
 * (core/sendmail_headers.c): -t recipients from To/Cc/Bcc, folded
 * fields, Bcc removal, and the inputs that used to go wrong: a message
 * opening with a blank line (has_header looped forever, found by
 * fuzz_sendmail_headers) and a NUL byte hiding a later Bcc field.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sendmail_headers.h"
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

	sendmail_recipients_from_headers(&t, &v, &n);
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

int
main(void)
{
	test_recipients();
	test_remove_bcc();
	test_header_end();
	TEST_EXIT();
}
