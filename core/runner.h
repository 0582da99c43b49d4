/*
 * core/runner.h - the queue runner: keeps the schedule of every queued
 * message in memory, and a pool of worker threads hands due messages to
 * the deliver module. New mail is delivered at once (notify), not at the
 * next scan; a restarted daemon rebuilds the schedule from disk.
 */
#ifndef MERPATI_RUNNER_H
#define MERPATI_RUNNER_H

#include <time.h>
#include <merpati/merpati.h>

/* Scan the queue and start the workers. 0 or -1. */
int mp_runner_start(void);
/* A message was committed; deliver it now. Safe to call when stopped. */
void mp_runner_notify(const char *id);
/* Make every queued message due now (SIGUSR1, `merpati queue flush`). */
void mp_runner_flush(void);
/* Pick up messages queued by another process (SIGUSR2, sendmail). */
void mp_runner_rescan(void);
/* Let in-flight deliveries finish (bounded wait), then return. */
void mp_runner_stop(void);

/* Hand one local recipient to the deliver module. MP_OK, MP_TEMPFAIL
 * or MP_PERMFAIL with *st filled. */
int mp_runner_deliver(const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *r, struct mp_status *st);

/* The "delivered / deferred / bounced to=<...>" log line. */
void mp_runner_log_result(const char *rcpt, int rc, const struct mp_status *st,
    const char *via);


#endif
