/*
 * tests/unit/test_dsn.c - the text of bounces and delay warnings (RFC
 * 3464 / RFC 6522): required fields, NOTIFY and RET honoured, original
 * headers quoted without the body unless RET=FULL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "queue.h"
#include "queue_fixture.h"
#include "settings.h"
#include "test.h"

static char state[] = "/tmp/merpati-test-dsn-XXXXXX";

static void
queue_message(struct mp_qmsg *m, const char *ret)
{
	static char *rcpts[] = { (char *)"a@remote.test", (char *)"b@remote.test" };
	static char *orcpt[] = { (char *)"rfc822;A@remote.test", NULL };
	const char *body = "Subject: original\r\nFrom: <s@example.test>\r\n\r\nSECRET BODY\r\n";
	struct mp_qmsg env = { 0 };

	env.sender = (char *)"s@example.test";
	env.rcpts = rcpts;
	env.orcpt = orcpt;
	env.nrcpt = 2;
	env.ret = (char *)ret;
	env.envid = (char *)"ENV+2D1";
	fixture_queue(&env, body, m);
}

static void
test_failed(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[] = {
		{ .address = "a@remote.test", .orcpt = "rfc822;A@remote.test",
		    .rc = MP_PERMFAIL, .done = 1,
		    .status = { .struct_size = sizeof(struct mp_status), .reply = 550, .enhanced = "5.1.1",
		    .text = "remote.test said: 550 no such user" } },
	};
	char *text = NULL;

	queue_message(&m, "");
	mp_dsn_format(&m, r, 1, DSN_FAILED, &text);
	CHECK("bounce is a multipart/report", strstr(text,
	    "Content-Type: multipart/report; report-type=delivery-status") != NULL);
	CHECK("bounce goes to the sender", strstr(text, "To: <s@example.test>\r\n") != NULL);
	CHECK("bounce subject", strstr(text, "Subject: Undelivered Mail Returned to Sender") != NULL);
	CHECK("Reporting-MTA", strstr(text, "Reporting-MTA: dns; mail.example.test\r\n") != NULL);
	CHECK("Original-Envelope-Id", strstr(text, "Original-Envelope-Id: ENV+2D1\r\n") != NULL);
	CHECK("Final-Recipient", strstr(text, "Final-Recipient: rfc822; a@remote.test\r\n") != NULL);
	CHECK("Original-Recipient from ORCPT", strstr(text, "Original-Recipient: rfc822;A@remote.test\r\n") != NULL);
	CHECK("Action failed", strstr(text, "Action: failed\r\n") != NULL);
	CHECK("Status from the remote", strstr(text, "Status: 5.1.1\r\n") != NULL);
	CHECK("remote text quoted", strstr(text, "Diagnostic-Code: smtp; 550 remote.test said: 550 no such user") != NULL);
	CHECK("original headers quoted", strstr(text, "text/rfc822-headers") &&
	    strstr(text, "Subject: original") != NULL);
	CHECK("original body not quoted by default", strstr(text, "SECRET BODY") == NULL);
	CHECK("only CRLF line ends", strstr(text, "\r\n") && !strstr(text, "\n\n"));
	free(text);
	mp_qmsg_free(&m);

	queue_message(&m, "FULL");
	mp_dsn_format(&m, r, 1, DSN_FAILED, &text);
	CHECK("RET=FULL quotes the whole message", strstr(text, "message/rfc822") &&
	    strstr(text, "SECRET BODY") != NULL);
	free(text);
	mp_qmsg_free(&m);
}

static void
test_delayed(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[] = {
		{ .address = "b@remote.test", .rc = MP_TEMPFAIL,
		    .status = { .struct_size = sizeof(struct mp_status), .reply = 451, .enhanced = "4.4.1",
		    .text = "connect to mx.remote.test: Connection refused" } },
	};
	char *text = NULL;

	queue_message(&m, "");
	mp_dsn_format(&m, r, 1, DSN_DELAYED, &text);
	CHECK("delay warning subject", strstr(text, "Subject: Delayed Mail") != NULL);
	CHECK("Action delayed", strstr(text, "Action: delayed\r\n") != NULL);
	CHECK("Status 4.4.1", strstr(text, "Status: 4.4.1\r\n") != NULL);
	CHECK("says it is still retried", strstr(text, "will be retried") != NULL);
	free(text);
	mp_qmsg_free(&m);
}

/* Occurrences of needle in hay. */
static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* The sender's own text cannot close the report early (its boundary
 * is "<queue id>/<host>" unless a part holds that), and a reply text
 * with CR LF cannot add a header line. Found by fuzz_dsn. */
static void
test_hostile_content(void)
{
	static char *rcpts[] = { (char *)"a@remote.test" };
	struct mp_qmsg env = { 0 }, m;
	struct mp_rcpt r[] = {
		{ .address = "a@remote.test", .rc = MP_PERMFAIL,
		    .status = { .struct_size = sizeof(struct mp_status), .reply = 550, .enhanced = "5.1.1",
		    .text = "no\r\nX-Injected: 1" } },
	};
	char id[MP_QID_SIZE], why[128], body[256], *text = NULL;
	struct mp_qwriter *w;

	env.sender = (char *)"s@example.test";
	env.rcpts = rcpts;
	env.nrcpt = 1;
	env.ret = (char *)"FULL";
	w = mp_queue_begin(mp_core.queue_dir, &env, id);
	snprintf(body, sizeof(body), "Subject: x\r\n\r\n--%s/mail.example.test\r\n"
	    "Content-Type: text/plain\r\n\r\nforged part\r\n", id);
	mp_queue_write(w, body, strlen(body));
	mp_queue_commit(w);
	mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why));
	mp_dsn_format(&m, r, 1, DSN_FAILED, &text);

	const char *param = strstr(text, "boundary=\"");
	char boundary[160] = "", delim[170];
	if (param)
		sscanf(param + 10, "%159[^\"]", boundary);
	snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	CHECK("a quoted boundary-like line does not become the boundary",
	    boundary[0] && strstr(body, boundary) == NULL);
	CHECK("the report has its three parts and its end, nothing more",
	    count(text, delim) == 4);
	CHECK("the forged line is quoted as text", strstr(text, "forged part") != NULL);
	CHECK("CR LF in a reply text adds no header line",
	    strstr(text, "\r\nX-Injected") == NULL && strstr(text, "no  X-Injected: 1") != NULL);
	free(text);
	mp_qmsg_free(&m);
}

int
main(void)
{
	if (fixture_start(state) < 0)
		return 1;
	test_failed();
	test_delayed();
	test_hostile_content();
	if (fixture_end(state) < 0)
		return 1;
	TEST_EXIT();
}
