/*
 * core/sendmail_submit.h - one local submission (sendmail, sendmail -bs,
 * or a file the daemon picked up from the maildrop) and the two ways it
 * travels: written straight into the queue (root, or the daemon), or
 * encoded for merpati-postdrop into a drop file that the daemon reads
 * back (any other user). The drop file format and its reader are pure
 * functions, fuzzed by tests/fuzz/fuzz_sendmail_drop.c.
 *
 * A drop file, as the daemon finds it:
 *   U <uid>\n                 written by merpati-postdrop: getuid()
 *   MERPATI-DROP 1\n          the rest comes from the user's sendmail
 *   S <sender>\n              "S \n" is the null sender <>
 *   F <full name>\n           optional
 *   T <FULL|HDRS>\n  V <envid>\n       optional (DSN RET, ENVID)
 *   R <recipient>\n           one or more, each optionally followed by
 *   N <notify>\n              its DSN NOTIFY
 *   \n
 *   the message, CRLF line ends
 */
#ifndef MERPATI_SENDMAIL_SUBMIT_H
#define MERPATI_SENDMAIL_SUBMIT_H

#include <stddef.h>
#include <sys/types.h>

#include "queue.h"
#include "util.h"

struct sm_submission {
	const char *sender;	/* "" for <> */
	const char *fullname;	/* for an added From:, or NULL */
	char **rcpts;
	char **notify;		/* per recipient, or NULL */
	size_t nrcpt;
	const char *ret, *envid;	/* NULL when absent */
	long uid;		/* who submitted, as the kernel says */
};

/* The domain that completes an address without one (root ->
 * root@origin): the first of `domains`, else server.hostname. */
const char *sendmail_origin(void);

/* A copy of addr, "@origin" appended when it has no '@'. */
char *sendmail_qualify(const char *addr);

/*
 * Queue the CRLF message [msg, msg+len) as s says, behind a Received
 * field naming the user by uid (and login when known), with From, Date
 * and Message-ID added when the message has none. 0 with the id in
 * id_r, or -1 with errno set.
 */
int sendmail_queue(const struct sm_submission *s, const char *msg, size_t len,
    char id_r[MP_QID_SIZE]);

/* The same message written but not committed (for the filters of the
 * maildrop pickup): the writer, or NULL with errno set. */
struct mp_qwriter *sendmail_write(const struct sm_submission *s,
    const char *msg, size_t len, char id_r[MP_QID_SIZE]);

/* Append the drop stream (everything after the U line) for s and the
 * message to out. */
void sendmail_drop_encode(const struct sm_submission *s, const char *msg,
    size_t len, struct mp_buf *out);

/* A decoded drop file: s and msg point into the text it was read from,
 * which decoding changed (field ends became NULs). */
struct sm_drop {
	struct sm_submission s;
	const char *msg;
	size_t len;
};

/*
 * Read a whole drop file [text, text+size) (text[size] must be
 * writable and NUL): at most max_rcpts recipients, fields without
 * control characters, a message whose every LF follows a CR. 0 (free
 * d->s.rcpts and d->s.notify with sendmail_drop_free), or -1 with the
 * reason in err.
 */
int sendmail_drop_decode(char *text, size_t size, size_t max_rcpts,
    struct sm_drop *d, char *err, size_t errsize);
void sendmail_drop_free(struct sm_drop *d);

#endif
