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

/* The delivery log line of a recipient delivered before the 250
 * (delivery_log.h); via is the deliver module. */
void mp_runner_log_result(const char *rcpt, int rc, const struct mp_status *st,
    const char *via);

/*
 * One delivery attempt of a queued message, in steps a unit test can
 * call one by one (run_message does classify, attempt, decide, persist):
 */
struct mp_qmsg;
struct mp_rcpt;

/* What the next step does besides the records' own rc and done. */
struct mp_runner_plan {
	int warn;		/* send the sender the delay warning now */
	time_t next_attempt;	/* for the pending ones; 0: the policy's default */
};

/* One record per recipient of m into r (m->nrcpt slots): its queue data,
 * local or remote, done as the status file says. Returns how many are
 * still pending. */
size_t mp_runner_classify(const struct mp_qmsg *m, struct mp_rcpt *r);

/* After the attempt (each pending record has rc and status): count the
 * attempt in m, mark delivered and failed records done, and ask the
 * retry policy about the deferred ones at now; past the give-up time
 * they become failures ("delivery time expired"). No I/O. */
void mp_runner_decide(struct mp_qmsg *m, struct mp_rcpt *r, size_t n,
    time_t now, struct mp_runner_plan *p);

/* Carry the decision out: queue the bounce for failed records (they stay
 * pending when it cannot be queued) and the delay warning, write done
 * flags to the status file, or remove the message when nothing is
 * pending. Returns the next due time, 0 when the message is finished. */
time_t mp_runner_persist(struct mp_qmsg *m, struct mp_rcpt *r, size_t n,
    const struct mp_runner_plan *p, time_t now);

#endif
