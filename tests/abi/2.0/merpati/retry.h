/*
 * merpati/retry.h - the retry kind: when to try a deferred message
 * again, when to warn its sender, when to give up. Pure policy: it
 * reads the message's history and decides; the state lives in the queue.
 */
#ifndef MERPATI_RETRY_H
#define MERPATI_RETRY_H

#include <merpati/module.h>

struct mp_retry_info {
	uint32_t struct_size;
	time_t arrival;
	time_t last_attempt;
	unsigned attempts;
	int warned;		/* a delay warning was already sent */
	const struct mp_status *last_status;
};

struct mp_retry_decision {
	uint32_t struct_size;
	time_t next_attempt;
	int send_warning;	/* send the delay DSN now */
	int give_up;		/* bounce now */
};

/*
 * The retry policy (DESIGN.md "Retry defaults"), shared by the retry
 * module and the core's fallback when none is loaded, so both decide
 * alike. Given the message's history at time now and the three
 * durations in seconds:
 *  - give up (bounce) once give_up_after has passed since arrival,
 *    exactly at that second, not at the next attempt after it;
 *  - warn the sender once (never when already warned, never together
 *    with the bounce) when warn_after has passed;
 *  - otherwise try again after interval, but never later than the
 *    give-up time, so the last attempt falls on it and the message is
 *    returned on time; at least one second from now.
 * Inline so a module uses it without linking the core.
 */
static inline void
mp_retry_policy(const struct mp_retry_info *info, time_t now,
    long long interval, long long warn_after, long long give_up_after,
    struct mp_retry_decision *d)
{
	time_t elapsed = now - info->arrival;
	time_t deadline = info->arrival + (time_t)give_up_after;

	d->give_up = elapsed >= give_up_after;
	d->send_warning = !info->warned && !d->give_up && elapsed >= warn_after;
	d->next_attempt = now + (time_t)interval;
	if (d->next_attempt > deadline)
		d->next_attempt = deadline;
	if (d->next_attempt <= now)
		d->next_attempt = now + 1;
}

struct mp_retry_ops {
	uint32_t struct_size;
	int (*schedule)(void *ctx, const struct mp_retry_info *info,
	    struct mp_retry_decision *d_r);
};

#endif
