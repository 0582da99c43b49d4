/*
 * core/smtp_client.h - the outbound SMTP client: one transaction for
 * several recipients of one message at one server address, with EHLO,
 * opportunistic STARTTLS, PIPELINING and DSN when offered, and a result
 * per recipient.
 */
#ifndef MERPATI_SMTP_CLIENT_H
#define MERPATI_SMTP_CLIENT_H

#include <sys/socket.h>
#include <merpati/module.h>

#include "queue.h"
#include "rcpt.h"

/*
 * Send message m to the server at addr (port already set) for the
 * recipients r (records of m). Returns MP_OK when the transaction ran
 * (each r[i] has its own rc and status), MP_TEMPFAIL when this server
 * could not be used (connect, greeting, EHLO, TLS or a 4xx to MAIL: try
 * the next one) and MP_PERMFAIL when the server refused the message for everyone (5xx to
 * MAIL or greeting); *st says why.
 */
int smtp_client_send(const struct sockaddr_storage *addr, const char *mx_name,
    const struct mp_qmsg *m, struct mp_rcpt **r, size_t n,
    struct mp_status *st);

/* Close the connection this thread kept for reuse (QUIT), if any. */
void smtp_client_release(void);
/* 1 when this thread keeps a connection open for the next message. */
int smtp_client_has_kept(void);

/* Parse "250-2.1.0 text": reply code, enhanced code, text. Pure; 0 ok,
 * -1 not a reply line; *more set for a continuation ("250-"). */
int smtp_client_parse_reply(const char *line, int *code, int *more,
    char *enhanced, size_t esize, const char **text);

#endif
