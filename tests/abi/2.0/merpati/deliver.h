/*
 * merpati/deliver.h - the deliver kind: put one queued message into one
 * local recipient's mailbox, durably.
 *
 * deliver() is called by the queue runner's workers, concurrently for
 * different messages and recipients. It returns MP_OK only when the mail
 * is safely on disk (fsync()ed); then the queue forgets the recipient.
 * MP_TEMPFAIL keeps it queued for a retry, MP_PERMFAIL bounces it.
 * status_r always gets a reply code, an RFC 3463 code and a text.
 */
#ifndef MERPATI_DELIVER_H
#define MERPATI_DELIVER_H

#include <merpati/module.h>

struct mp_deliver_ops {
	uint32_t struct_size;
	int (*deliver)(void *ctx, const struct mp_envelope *env,
	    const char *rcpt, struct mp_reader *msg,
	    struct mp_status *status_r);
};

#endif
