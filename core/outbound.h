/*
 * core/outbound.h - remote delivery of one queued message: group the
 * pending remote recipients by next hop (routing's relay host, else the
 * recipient domain), find the hop's servers through the resolve module
 * (MX in preference order, addresses), and hand each group to the SMTP
 * client, moving on to the next server on connection failure or 4xx.
 * Per-destination limits and back-off: destination.h.
 */
#ifndef MERPATI_OUTBOUND_H
#define MERPATI_OUTBOUND_H

#include "queue.h"
#include "rcpt.h"

/* Deliver message m to the remote recipients r (records of m). Every
 * r[i] gets rc and status. */
void mp_outbound_deliver(const struct mp_qmsg *m, struct mp_rcpt **r,
    size_t n);

/* The calling thread has nothing to deliver for now: its kept
 * connection closes and its destination slots are given back. */
void mp_outbound_idle(void);

#endif
