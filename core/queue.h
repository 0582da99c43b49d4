/*
 * core/queue.h - the durable mail queue on disk.
 *
 * One file per message in <state>/queue/<ID>: a text envelope, then the
 * message exactly as it will be delivered (CRLF line ends). A message is
 * written in queue/tmp/, fsync()ed, renamed into queue/ and the
 * directory fsync()ed before anyone is told it is queued. Delivery
 * progress lives beside it in <ID>.st, replaced atomically, so the
 * message file is never rewritten. A file that does not parse is moved
 * to <state>/corrupt/ and the rest of the queue goes on.
 *
 * Hold: a "hold <reason>" line in <ID>.st (a filter's txn_hold, or
 * `merpati queue hold`) keeps the runner from trying or expiring the
 * message until `merpati queue release` removes it. A message held by
 * a filter gets its .st before its name enters queue/, so the runner
 * never sees it unheld.
 */
#ifndef MERPATI_QUEUE_H
#define MERPATI_QUEUE_H

#include <sys/types.h>
#include <time.h>
#include <merpati/module.h>

#define MP_QID_SIZE 24

struct mp_qmsg {
	char id[MP_QID_SIZE];
	time_t arrival;
	char *sender;			/* "" for <> */
	char *helo, *client, *auth_user;	/* "" when unknown */
	char **rcpts;
	char **notify, **orcpt;		/* per recipient DSN (RFC 3461); may be NULL */
	char **relay;			/* per recipient "host[:port]" from routing; may be NULL */
	char *ret, *envid;		/* DSN RET and ENVID; NULL or "" when absent */
	unsigned char *done;		/* per recipient: finished (sent/bounced) */
	size_t nrcpt;
	off_t size;			/* message bytes */
	char *added;			/* headers filters added, CRLF, or NULL */
	size_t nadded;
	off_t data_offset;		/* where the message starts in the file */
	/* delivery status (the .st file) */
	unsigned attempts;
	time_t last_attempt, next_attempt;
	int warned;
	char last_error[320];
	int held;			/* on hold: never tried nor expired */
	char hold_reason[200];		/* no CR/LF */
};

struct mp_qwriter;

/* Create queue/, queue/tmp/ and corrupt/ under state_dir. */
int mp_queue_setup(const char *state_dir);

/*
 * Start a message; envelope fields are copied. *id_r gets the queue id.
 * NULL with errno set on failure.
 */
struct mp_qwriter *mp_queue_begin(const char *qdir, const struct mp_qmsg *env,
    char id_r[MP_QID_SIZE]);
int mp_queue_write(struct mp_qwriter *w, const void *buf, size_t len);
/* A header a filter adds; served before the message, above those added
 * before it. 0 or -1. */
int mp_queue_add_header(struct mp_qwriter *w, const char *name,
    const char *value);

/* The added headers as "Name: value\r\n" lines (top first), taken out
 * of w: the caller now serves them (malloc()ed, *len_r long). */
char *mp_queue_take_added(struct mp_qwriter *w, size_t *len_r);

/*
 * A new writer for w's message id, with envelope env and content msg
 * (read to its end); w is dropped once it succeeded. NULL (errno) and w
 * untouched on failure. For filters' edits of a message being received.
 */
struct mp_qwriter *mp_queue_rewrite(struct mp_qwriter *w,
    const struct mp_qmsg *env, struct mp_reader *msg);

/* 1 when filters added headers to the message being written. */
int mp_queue_has_added(const struct mp_qwriter *w);

/* A reader over what has been written so far (for filters). */
int mp_queue_writer_reader(struct mp_qwriter *w, struct mp_reader *r);
void mp_queue_writer_reader_close(struct mp_reader *r);

/* fsync, rename into place, fsync the directory. 0, or -1 (errno). */
int mp_queue_commit(struct mp_qwriter *w);

/* Commit on hold (reason in the status, which is written first). 0, or
 * -1 (errno) with w gone. */
int mp_queue_commit_held(struct mp_qwriter *w, size_t nrcpt, const char *reason);

/* On (the default): commit makes the file, then its name, durable with
 * group commits (sync.h); off: fsync() of the file and the directory. */
void mp_queue_set_group_commit(int on);
void mp_queue_abort(struct mp_qwriter *w);
off_t mp_queue_written(const struct mp_qwriter *w);

/* Read a message's envelope and status. 0, -1 (errno; ENOENT: gone),
 * or -2 when the file is corrupt (why in err). */
int mp_queue_load(const char *qdir, const char *id, struct mp_qmsg *m,
    char *err, size_t errsize);
void mp_qmsg_free(struct mp_qmsg *m);

/* Replace the status file atomically (write, fsync, rename). */
int mp_queue_save_status(const char *qdir, const struct mp_qmsg *m);

/* Remove a finished message and its status. */
int mp_queue_remove(const char *qdir, const char *id);

/* Move a broken message aside to <state>/corrupt/. */
int mp_queue_quarantine(const char *qdir, const char *id);

/* Call each(id) for every committed message; returns count or -1. */
int mp_queue_scan(const char *qdir, void (*each)(void *arg, const char *id),
    void *arg);

/* A reader over the message bytes of m; close with mp_queue_reader_close. */
int mp_queue_reader_open(const char *qdir, const struct mp_qmsg *m,
    struct mp_reader *r);
void mp_queue_reader_close(struct mp_reader *r);

/* A syntactically valid queue id (safe as a file name). */
int mp_queue_id_valid(const char *id);

#endif
