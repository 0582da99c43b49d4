/*
 * core/delivery_log.h - the lines an admin greps for: one per delivery
 * attempt of each recipient, Postfix-style
 *
 *   QID: delivered to=<a@b>, orig_to=<...>, relay=mx.b[192.0.2.1]:25,
 *   delay=1.2, delays=0.01/0/0.5/0.7, dsn=2.0.0, status=sent (250 2.0.0 Ok)
 *
 * (the first word, the event, is delivered, deferred or bounced, as
 * status= is sent, deferred or bounced;
 * relay= the module's name for local mail, "none" when no server was
 * reached; delays= in queue before this attempt / in this attempt
 * before connecting (routing, resolving, other recipients) / connection
 * setup (connect, greeting, EHLO, TLS) / transmission), and one per
 * accepted message with its client and Message-ID. Each also counts in
 * the metrics (metrics.h). With `log.format = "json"` the same fields
 * come as one JSON object (log.h).
 */
#ifndef MERPATI_DELIVERY_LOG_H
#define MERPATI_DELIVERY_LOG_H

#include <stddef.h>
#include <sys/socket.h>
#include <merpati/module.h>

struct mp_qmsg;
struct mp_rcpt;
struct mp_reader;

/* A queue run starts one attempt of a message (for delays= a). */
void mp_delivery_attempt_begin(void);

/* One recipient's result after an attempt: relay is NULL for remote
 * mail (the server the record names, or "none"), the module's name for
 * local mail, "expired" when the give-up time bounced it. */
void mp_delivery_log(const struct mp_qmsg *m, const struct mp_rcpt *r,
    const char *relay);

/* A recipient delivered before the 250 (direct delivery): rc and st as
 * mp_call_deliver returned them; relay is the deliver module. */
void mp_delivery_log_direct(const char *rcpt, int rc, const struct mp_status *st,
    const char *relay);

/* Outbound, around one try at one server address: begin before the
 * connection (or its reuse), connected once the session is ready for
 * MAIL, end after: each record of r gets the server as
 * "name[ip]:port" and the setup and transmission times. */
void mp_delivery_try_begin(void);
void mp_delivery_connected(void);
void mp_delivery_try_end(struct mp_rcpt **r, size_t n, const char *server,
    const struct sockaddr_storage *addr);

/* The Message-ID of the message msg reads (its header section only,
 * bounded), or "" in out. */
void mp_delivery_message_id(struct mp_reader *msg, char *out, size_t size);

/* The same from the queue file being written. */
struct mp_qwriter;
void mp_delivery_writer_message_id(struct mp_qwriter *w, char *out, size_t size);

/* The accepted-message line: queue id, from, size, recipients, client,
 * authenticated user ("" none), TLS version (NULL none) and Message-ID;
 * counts it. */
void mp_delivery_log_accepted(const char *id, const char *sender, size_t nrcpt,
    unsigned long long size, const char *client, const char *user,
    const char *tls, const char *message_id);

#endif
