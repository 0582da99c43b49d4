/*
 * core/dsn.h - delivery status notifications (RFC 3464): the bounce
 * sent to the sender when recipients fail for good, from the null sender
 * so it is never bounced again.
 */
#ifndef MERPATI_DSN_H
#define MERPATI_DSN_H

#include <merpati/module.h>
#include "queue.h"

struct dsn_rcpt {
	const char *address;
	struct mp_status status;
};

/* Queue a failure DSN about m for the given recipients. 0 or -1. */
int mp_dsn_bounce(const struct mp_qmsg *m, const struct dsn_rcpt *r,
    size_t n);

#endif
