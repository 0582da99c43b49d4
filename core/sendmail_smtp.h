/*
 * core/sendmail_smtp.h - `sendmail -bs`: an SMTP dialogue (RFC 5321)
 * on a pair of streams, for programs that would rather speak SMTP to a
 * local sendmail than compose its command line. No network, no TLS, no
 * AUTH: the user is the one the kernel says ran the program, exactly as
 * for a plain sendmail; each accepted message goes to the caller's
 * submit function (the queue, or merpati-postdrop).
 */
#ifndef MERPATI_SENDMAIL_SMTP_H
#define MERPATI_SENDMAIL_SMTP_H

#include <stdio.h>

#include "sendmail_submit.h"

/* Queue one message; 0, or -1 (the client gets a 451). */
typedef int (*sm_submit_fn)(void *arg, const struct sm_submission *s,
    const char *msg, size_t len);

struct sm_smtp {
	FILE *in, *out;
	const char *hostname;
	long long max_size;	/* limits.message_size */
	size_t max_rcpts;	/* limits.recipients */
	long uid;		/* copied into each submission */
	sm_submit_fn submit;
	void *arg;
};

/* Serve until QUIT or end of input; returns 0 (EX_OK). */
int sendmail_smtp(const struct sm_smtp *c);

#endif
