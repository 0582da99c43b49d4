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

enum dsn_kind { DSN_FAILED, DSN_DELAYED };

/*
 * Queue a DSN about m to its sender for the recipients r: a bounce
 * (failed) or a delay warning (delayed). Recipients whose NOTIFY
 * excludes this kind are left out; nothing is sent for the null sender
 * or when no recipient is left. 0 (sent or nothing to send) or -1.
 */
int mp_dsn_send(const struct mp_qmsg *m, const struct dsn_rcpt *r, size_t n,
    enum dsn_kind kind);

/* Build the DSN text into *out (malloc'ed, CRLF); for unit tests. */
size_t mp_dsn_format(const struct mp_qmsg *m, const struct dsn_rcpt *r,
    size_t n, enum dsn_kind kind, char **out);

#endif
