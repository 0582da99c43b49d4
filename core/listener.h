/*
 * core/listener.h - the listeners of every protocol (SMTP and each
 * protocol module's), their connection limits, and one thread per
 * session (small stacks, so thousands of idle sessions cost little
 * memory). The sessions themselves are smtp_session.c's and the
 * protocol modules'.
 */
#ifndef MERPATI_LISTENER_H
#define MERPATI_LISTENER_H

#include "settings.h"

/* Bind every configured listener; 0, or -1 with the problem in err. */
int mp_listener_bind(char *err, size_t errsize);

/*
 * Make RLIMIT_NOFILE fit the connection limits of every pool (SMTP and
 * each protocol module): FDS_PER_CONNECTION per allowed connection plus
 * FDS_RESERVED, raising the soft limit (and, as root, the hard one).
 * 0, or -1 with a clear reason in err: the daemon must not find out
 * under load, as "Too many open files" on every accept().
 */
int mp_listener_fit_fd_limit(char *err, size_t errsize);

/* Start the accept threads. */
int mp_listener_start(void);

/* The protocol a listener speaks: "smtp", or its module's ("imap"). */
struct mp_listen;
const char *mp_listen_protocol(const struct mp_listen *l);

/* Stop accepting (SIGTERM). */
void mp_listener_stop(void);

#endif
