/*
 * merpati/filter.h - the filter kind: sees each SMTP session at its hook
 * points (connect, HELO/EHLO, MAIL FROM, each RCPT TO, end of headers,
 * end of DATA, and once more before queueing) and may accept, reject
 * (5xx), defer (4xx), change headers, envelope or body, hold or discard
 * the message. Filters run in the order of the `modules` group of the
 * config; every hook of every filter may run concurrently for different
 * sessions.
 *
 * Every hook returns MP_OK to go on, MP_PERMFAIL to reject or
 * MP_TEMPFAIL to defer with status_r as the reply (the host supplies a
 * generic one when the filter leaves it empty). What a refusal refuses:
 *   connect         the session: the greeting becomes the reply (554 or
 *                   421) and the connection is closed after QUIT or at once
 *   helo            that HELO/EHLO
 *   mail_from       that MAIL FROM (the transaction does not start)
 *   rcpt_to         that recipient only
 *   end_of_headers  the message (the reply is sent at end of DATA/BDAT)
 *   end_of_data     the message
 *   before_queue    the message
 * Changes go through the host's txn_* calls (module.h, since 2.1) and are
 * allowed where each call says. Mail submitted locally (sendmail) runs
 * end_of_headers, end_of_data and before_queue only, with no connection.
 */
#ifndef MERPATI_FILTER_H
#define MERPATI_FILTER_H

#include <merpati/module.h>
#include <merpati/protocol.h>

/*
 * What a hook may know of its session; the host's txn_info(txn) returns
 * it, borrowed for the hook call. Since 2.1.
 */
struct mp_txn_info {
	uint32_t struct_size;
	const struct mp_conn_info *conn; /* NULL for local submission */
	const char *helo;		/* NULL before HELO/EHLO */
	const char *auth_user;		/* NULL unless authenticated */
	const char *sender;		/* NULL before MAIL FROM; "" for <> */
	const char *const *rcpts;	/* recipients accepted so far */
	size_t nrcpt;
	const char *queue_id;		/* NULL until the message has one */
	int submission;			/* authenticated, or local submission */
};

struct mp_filter_ops {
	uint32_t struct_size;
	/*
	 * End of DATA (or of the last BDAT chunk): msg is the message as
	 * earlier filters left it. add_header adds a header at the top,
	 * as txn_header_insert(txn, 0, ...) does. ABI 2.0; required.
	 */
	int (*end_of_data)(void *ctx, struct mp_txn *txn,
	    const struct mp_envelope *env, struct mp_reader *msg,
	    int (*add_header)(struct mp_txn *txn, const char *name,
	        const char *value),
	    struct mp_status *status_r);

	/* ---- since 2.1; each may be NULL --------------------------------- */

	/* A client connected (txn_info(txn)->conn says who). */
	int (*connect)(void *ctx, struct mp_txn *txn,
	    struct mp_status *status_r);
	/* HELO or EHLO name as the client gave it. */
	int (*helo)(void *ctx, struct mp_txn *txn, const char *name,
	    struct mp_status *status_r);
	/* MAIL FROM address ("" for <>), after the core's own checks. */
	int (*mail_from)(void *ctx, struct mp_txn *txn, const char *sender,
	    struct mp_status *status_r);
	/* One RCPT TO address, after the core accepted it (known user,
	 * relay allowed); refusing drops only this recipient. */
	int (*rcpt_to)(void *ctx, struct mp_txn *txn, const char *rcpt,
	    struct mp_status *status_r);
	/* The header section, as received, up to and including the empty
	 * line. */
	int (*end_of_headers)(void *ctx, struct mp_txn *txn,
	    struct mp_reader *headers, struct mp_status *status_r);
	/* After every filter's end_of_data and its changes: msg is the
	 * message exactly as it will be queued (for signers such as DKIM). */
	int (*before_queue)(void *ctx, struct mp_txn *txn,
	    const struct mp_envelope *env, struct mp_reader *msg,
	    struct mp_status *status_r);
	/* The transaction ended without a message (RSET, a new MAIL,
	 * a refusal) or after it was queued; per-message state goes. */
	void (*txn_end)(void *ctx, struct mp_txn *txn);
	/* The session ended; per-session state (txn_slot) goes. */
	void (*session_end)(void *ctx, struct mp_txn *txn);
};

#endif
