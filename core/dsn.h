/*
 * core/dsn.h - delivery status notifications (RFC 3464): the bounce
 * sent to the sender when recipients fail for good, from the null sender
 * so it is never bounced again.
 */
#ifndef MERPATI_DSN_H
#define MERPATI_DSN_H

#include <merpati/module.h>
#include "queue.h"
#include "rcpt.h"

enum dsn_kind { DSN_FAILED, DSN_DELAYED };

/*
 * Queue a DSN about m to its sender: a bounce (failed) about the records
 * of r whose rc is MP_PERMFAIL, or a delay warning (delayed) about those
 * whose rc is MP_TEMPFAIL. Recipients whose NOTIFY excludes this kind
 * are left out; nothing is sent for the null sender or when no
 * recipient is left. 0 (sent or nothing to send) or -1.
 */
int mp_dsn_send(const struct mp_qmsg *m, const struct mp_rcpt *r, size_t n,
    enum dsn_kind kind);

/* Whether recipient r's NOTIFY asks for a DSN of this kind. */
int mp_dsn_wanted(const struct mp_rcpt *r, enum dsn_kind kind);

/* Build the DSN text about all n records of r into *out (malloc'ed,
 * CRLF), whatever their rc; for mp_dsn_send and unit tests. */
size_t mp_dsn_format(const struct mp_qmsg *m, const struct mp_rcpt *r,
    size_t n, enum dsn_kind kind, char **out);

#endif
