/*
 * core/destination.h - per-destination control of outbound delivery:
 * connections at once per destination (a recipient domain, or the relay
 * host a route names) and per MX host, a message rate per destination,
 * and a dead destination: after outbound.destination_dead_after failed
 * connections in a row, every message for it is deferred without a
 * connection until outbound.destination_backoff has passed.
 *
 * A delivery thread holds one destination slot (and one host slot)
 * while it delivers and while smtp_client keeps its connection open for
 * the next message, so a kept connection counts against the limit.
 */
#ifndef MERPATI_DESTINATION_H
#define MERPATI_DESTINATION_H

#include <merpati/module.h>

/* Before delivering one message's recipients to dest: MP_OK with a
 * slot held, or MP_TEMPFAIL with st saying why not now (backed off,
 * every slot busy for too long, the rate would wait too long). */
int mp_dest_begin(const char *dest, struct mp_status *st);

/* Before connecting to MX host (when host_concurrency is set): MP_OK
 * or MP_TEMPFAIL with st. */
int mp_dest_host_begin(const char *host, struct mp_status *st);

/* After the attempt: st is its last status; connect_failed when no
 * server of dest could be reached (the count towards dead). Slots are
 * released unless a connection is kept. */
void mp_dest_end(const char *dest, int connect_failed, int answered,
    const struct mp_status *st);

/* The thread has nothing to deliver: its kept connection is closed and
 * its slots given back. */
void mp_dest_idle(void);

/* A queue flush (`merpati queue flush`, `sendmail -q`): every
 * destination backed off as dead may be tried again at once, as
 * Postfix's flush forgets its dead destinations; slots and rates stay. */
void mp_dest_forget_dead(void);

/* For tests: forget every destination. */
void mp_dest_reset(void);

#endif
