/*
 * core/smtp_session.h - one SMTP server session's state, shared by the
 * session engine (smtp_session.c) and its AUTH part (smtp_auth.c).
 * Private to the core.
 */
#ifndef MERPATI_SMTP_SESSION_H
#define MERPATI_SMTP_SESSION_H

#include "conn.h"
#include "queue.h"
#include "settings.h"
#include "smtp_bdat_scan.h"
#include "smtp_parse.h"

#define ADDR_MAX 320

struct session {
	struct conn c;
	const struct mp_listen *l;
	char client[64];	/* the peer's IP address */
	int loopback;
	char helo[256];
	int greeted, esmtp, quit;
	int errors, auth_failures;
	char tls_info[160];	/* "" until TLS is up */
	char auth_user[ADDR_MAX];	/* "" until AUTH succeeded */
	/* the transaction */
	int in_mail;
	char sender[ADDR_MAX];
	struct smtp_mail_params params;
	char **rcpts, **notify, **orcpt, **relay;
	size_t nrcpt;
	/* BDAT in progress */
	struct mp_qwriter *bdat;
	char bdat_id[MP_QID_SIZE];
	unsigned long long bdat_size;
	int bdat_io_error, bdat_disk_errno;
	struct bdat_scan bdat_scan;	/* line state across chunks */
	struct mp_txn *txn;	/* what filter hooks see (filter_hooks.c) */
	/* the message being received: CLOCK_MONOTONIC ms it must end by */
	long long data_deadline;
	int read_timeout_ms;	/* the socket's current receive timeout */
};

/* Send one reply line; 5xx (but 552) counts as a protocol error. */
void smtp_reply(struct session *s, int code, const char *enh,
    const char *fmt, ...) MP_PRINTF(4, 5);

/* Start the clock of limits.data_deadline for the message now coming. */
void smtp_data_start_clock(struct session *s);

/*
 * conn_read_some inside DATA or BDAT, each read bounded by
 * limits.data_timeout and by what is left of limits.data_deadline. Bytes
 * read, 0 at EOF, -1 on error (errno ETIMEDOUT when time ran out).
 */
ssize_t smtp_data_read(struct session *s, char *buf, size_t max);

/* The connection was lost or timed out inside DATA/BDAT: a 421 when it
 * timed out (RFC 5321 4.5.3.2), a log line, and the session ends. */
void smtp_data_lost(struct session *s, const char *what);

/* Back to limits.command_timeout after a DATA or a BDAT chunk (a BDAT
 * message keeps its deadline until its last chunk). */
void smtp_data_stop_clock(struct session *s);

/* The transaction's envelope as the queue writes it (borrowed). */
void smtp_fill_qmsg(struct session *s, struct mp_qmsg *env);

/* Add a recipient with its DSN parameters and relay ("" when none), or
 * drop the i-th one (filters' envelope changes). */
void smtp_add_rcpt(struct session *s, const char *addr, const char *notify,
    const char *orcpt, const char *relay);
void smtp_delete_rcpt(struct session *s, size_t i);

/* Open the queue file for the current transaction. NULL: reply sent. */
struct mp_qwriter *smtp_open_message(struct session *s, char id[MP_QID_SIZE]);

/*
 * The end of a message (DATA or BDAT LAST): refuse it, or commit it and
 * reply 250 only once it is on disk. Takes ownership of w; ends the
 * transaction.
 */
void smtp_finish_message(struct session *s, struct mp_qwriter *w,
    const char *id, unsigned long long size, int bare, int long_line,
    int disk_errno);

/* BDAT (RFC 3030 CHUNKING), and dropping a half-received BDAT message. */
void smtp_do_bdat(struct session *s, const char *arg);
void smtp_bdat_abort(struct session *s);

/* AUTH PLAIN / LOGIN (RFC 4954). */
void smtp_do_auth(struct session *s, const char *arg);

/* 1 if AUTH may be offered on this session now. */
int smtp_auth_offered(const struct session *s);

/* Serve one accepted SMTP connection in the calling thread (the
 * listener's thread, listener.c). */
void smtp_session_run(int fd, const struct mp_listen *l);

#endif
