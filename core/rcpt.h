/*
 * core/rcpt.h - one recipient of one queued message, as the core
 * handles it during a delivery attempt: what the queue file says about
 * it (address, ORCPT, NOTIFY, routing's relay host, done), where it goes
 * (a local mailbox or remote SMTP), and this attempt's outcome. The
 * runner builds one record per recipient (mp_runner_classify); outbound,
 * the SMTP client and the DSN writer all read and fill the same record.
 * The strings point into the struct mp_qmsg it was made from.
 */
#ifndef MERPATI_RCPT_H
#define MERPATI_RCPT_H

#include <stddef.h>
#include <merpati/module.h>

enum mp_rcpt_path {
	MP_RCPT_LOCAL,		/* a local domain without relay: the deliver module */
	MP_RCPT_REMOTE,		/* the SMTP client, to the relay host or the MX */
	MP_RCPT_UNKNOWN		/* the directory failed: deferred, not tried */
};

struct mp_rcpt {
	size_t index;		/* position in the queue file's recipient list */
	const char *address;
	const char *orcpt;	/* RFC 3461 ORCPT; NULL when absent */
	const char *notify;	/* RFC 3461 NOTIFY; NULL when absent (FAILURE,DELAY) */
	const char *relay;	/* routing's "host[:port]"; NULL when none */
	enum mp_rcpt_path path;
	int attempted;		/* tried in this run (the rest were done before) */
	int rc;			/* this attempt: MP_OK, MP_TEMPFAIL or MP_PERMFAIL */
	struct mp_status status;
	int done;		/* finished for good: delivered or bounced */
	/* For the delivery log line (delivery_log.h): the last server tried
	 * this attempt, "name[ip]:port" ("" none reached), and that try's
	 * connection setup and transmission times in seconds. */
	char relay_used[320];
	double setup_s, xmit_s;
};

#endif
