/*
 * core/filter_hooks.h - the host side of the filter hook points
 * (include/merpati/filter.h): one struct mp_txn per SMTP session (or
 * local submission) that every filter module's hooks are given in
 * config order, and the txn_* calls of struct mp_host (module.h,
 * since 2.1) that act on it. The session (smtp_session.c) calls the
 * mp_hooks_* functions at its steps; they run the hooks and apply
 * what the filters asked for to the session's envelope and message.
 */
#ifndef MERPATI_FILTER_HOOKS_H
#define MERPATI_FILTER_HOOKS_H

#include <merpati/merpati.h>

#include "queue.h"

struct session;

/* A session's txn (a session without a listener, s->l NULL, is a local
 * submission: mp_hooks_local). */
struct mp_txn *mp_txn_open(struct session *s);
/* session_end to every filter, then free it. NULL is fine. */
void mp_txn_close(struct mp_txn *t);

/* The session-level hooks: MP_OK, or the first refusal (MP_TEMPFAIL or
 * MP_PERMFAIL) with *st the reply; later filters are not asked. A
 * refusal at connect is forced to 554 / 421 (filter.h). */
int mp_hooks_connect(struct mp_txn *t, struct mp_status *st);
int mp_hooks_helo(struct mp_txn *t, const char *name, struct mp_status *st);
/* MAIL FROM, the session's sender already set: opens the transaction. */
int mp_hooks_mail_from(struct mp_txn *t, struct mp_status *st);
int mp_hooks_rcpt_to(struct mp_txn *t, const char *rcpt, struct mp_status *st);

/* txn_end to every filter when a transaction is open (any of them may
 * have seen it); transaction notes and the message's state go. */
void mp_hooks_txn_end(struct mp_txn *t);

/* What the filters decided for a complete message. */
enum mp_hooks_verdict {
	MP_HOOKS_QUEUE,		/* queue (*wp may be a new writer) */
	MP_HOOKS_HOLD,		/* queue on hold (mp_hooks_hold_reason) */
	MP_HOOKS_DISCARD,	/* reply 250, queue nothing */
	MP_HOOKS_REFUSE		/* reply *st; queue nothing */
};

/*
 * Run end_of_headers, end_of_data and before_queue for the message in
 * *wp (queue id id) and apply the filters' changes: a header section
 * edited other than at the top, a new envelope or body is written into
 * a new writer for the same id (*wp replaced; the old one is gone).
 * Headers only inserted at the top go into the writer's added headers.
 */
enum mp_hooks_verdict mp_hooks_message(struct mp_txn *t,
    struct mp_qwriter **wp, const char *id, struct mp_status *st);

/* A local submission (sendmail through the maildrop) to filter. */
struct mp_hooks_local {
	const char *user;		/* the submitting login: txn_info auth_user */
	const char *sender;
	char *const *rcpts;
	char *const *notify;		/* may be NULL */
	size_t nrcpt;
	const char *ret, *envid;	/* may be NULL */
};

/*
 * mp_hooks_message for a local submission written into *wp: only
 * end_of_headers, end_of_data and before_queue run, txn_info->conn is
 * NULL and submission 1; then txn_end and session_end. A hold's reason
 * is copied to hold_reason.
 */
enum mp_hooks_verdict mp_hooks_local(const struct mp_hooks_local *in,
    struct mp_qwriter **wp, const char *id, struct mp_status *st,
    char *hold_reason, size_t size);

/* The reason a filter gave txn_hold for the last message ("" if none). */
const char *mp_hooks_hold_reason(const struct mp_txn *t);

/* 1 when some loaded module is a filter (else the hooks cost nothing). */
int mp_hooks_any(void);

/* ---- the host table's txn_* members (host.c) --------------------------- */
const struct mp_txn_info *mp_txn_info_get(struct mp_txn *t);
void **mp_txn_slot(struct mp_txn *t);
int mp_txn_note_set(struct mp_txn *t, const char *name, const char *value);
const char *mp_txn_note(struct mp_txn *t, const char *name);
int mp_txn_header_insert(struct mp_txn *t, size_t index, const char *name,
    const char *value);
int mp_txn_header_change(struct mp_txn *t, const char *name, unsigned nth,
    const char *value);
int mp_txn_sender_set(struct mp_txn *t, const char *sender);
int mp_txn_rcpt_add(struct mp_txn *t, const char *rcpt);
int mp_txn_rcpt_delete(struct mp_txn *t, const char *rcpt);
int mp_txn_body_replace(struct mp_txn *t, struct mp_reader *body);
int mp_txn_hold(struct mp_txn *t, const char *reason);
int mp_txn_discard(struct mp_txn *t);

#endif
