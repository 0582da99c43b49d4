/*
 * core/smtp_server.h - the SMTP server: listeners, connection limits,
 * and one thread per session (small stacks, so thousands of idle
 * sessions cost little memory).
 */
#ifndef MERPATI_SMTP_SERVER_H
#define MERPATI_SMTP_SERVER_H

#include "settings.h"

/* Bind every configured listener; 0, or -1 with the problem in err. */
int smtp_server_bind(char *err, size_t errsize);

/*
 * Make RLIMIT_NOFILE fit the connection limits of every pool (SMTP and
 * each protocol module): FDS_PER_CONNECTION per allowed connection plus
 * FDS_RESERVED, raising the soft limit (and, as root, the hard one).
 * 0, or -1 with a clear reason in err: the daemon must not find out
 * under load, as "Too many open files" on every accept().
 */
int smtp_server_fit_fd_limit(char *err, size_t errsize);

/* Start the accept threads. */
int smtp_server_start(void);

/* Stop accepting (SIGTERM). */
void smtp_server_stop(void);

/* Serve one accepted connection in the calling thread. */
void smtp_session_run(int fd, const struct mp_listen *l);

#endif
