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
	char id[MP_QID_SIZE], why[128];
	struct mp_qwriter *w;

	env.sender = (char *)"s@example.test";
	env.rcpts = rcpts;
	env.orcpt = orcpt;
	env.nrcpt = 2;
	env.ret = (char *)ret;
	env.envid = (char *)"ENV+2D1";
	w = mp_queue_begin(mp_core.queue_dir, &env, id);
	mp_queue_write(w, body, strlen(body));
	mp_queue_commit(w);
	mp_queue_load(mp_core.queue_dir, id, m, why, sizeof(why));
}

static void
test_failed(void)
{
	struct mp_qmsg m;
	struct dsn_rcpt r[] = {
		{ "a@remote.test", { 550, "5.1.1", "remote.test said: 550 no such user" } },
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
	struct dsn_rcpt r[] = {
		{ "b@remote.test", { 451, "4.4.1", "connect to mx.remote.test: Connection refused" } },
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

int
main(void)
{
	char cmd[256];

	if (mkdtemp(state) == NULL)
		return 1;
	mp_core.server.hostname = "mail.example.test";
	mp_core.server.state_dir = state;
	snprintf(mp_core.queue_dir, sizeof(mp_core.queue_dir), "%s/queue", state);
	mp_queue_setup(state);
	test_failed();
	test_delayed();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
	if (system(cmd) != 0)
		return 1;
	TEST_EXIT();
}
