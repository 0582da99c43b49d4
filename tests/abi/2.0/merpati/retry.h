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

struct mp_retry_ops {
	uint32_t struct_size;
	int (*schedule)(void *ctx, const struct mp_retry_info *info,
	    struct mp_retry_decision *d_r);
};

#endif
