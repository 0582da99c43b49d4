/*
 * core/listener.h - the listeners of every protocol (SMTP and each
 * protocol module's), kept across reloads, their connection limits,
 * and one thread per session (small stacks, so thousands of idle
 * sessions cost little memory). The sessions themselves are
 * smtp_session.c's and the protocol modules'.
 *
 * A listener is known by its address and port. At start,
 * mp_listener_bind then mp_listener_start; on a reload,
 * mp_listener_prepare before the new snapshot is published, then
 * mp_listener_commit after it, or mp_listener_abort when the reload is
 * refused. All of these run on the main thread, one at a time.
 */
#ifndef MERPATI_LISTENER_H
#define MERPATI_LISTENER_H

#include "config.h"
#include "settings.h"

/* Bind every configured listener (at start, as root); 0, or -1 with
 * the problem in err. */
int mp_listener_bind(char *err, size_t errsize);

/*
 * Make RLIMIT_NOFILE fit the connection limits of every pool (SMTP and
 * each protocol module): FDS_PER_CONNECTION per allowed connection plus
 * FDS_RESERVED, raising the soft limit (and, as root, the hard one).
 * 0, or -1 with a clear reason in err: the daemon must not find out
 * under load, as "Too many open files" on every accept().
 */
int mp_listener_fit_fd_limit(char *err, size_t errsize);

/* Start the accept threads of what mp_listener_bind bound; 0, or -1
 * when a listener got no thread. */
int mp_listener_start(void);

/*
 * For a reload, before snapshot c is published: bind c's listeners
 * whose address and port no running listener has, give the others
 * (changed or not) the running socket in c->listen[i].fd, and fit
 * RLIMIT_NOFILE to c's limits. 0, or -1 with every problem (a port
 * that cannot be bound, say) added: the reload must then be refused
 * and mp_listener_abort called.
 */
int mp_listener_prepare(struct mp_core_config *c, struct mp_problems *problems);

/* After the prepared snapshot is published: start accepting on the new
 * listeners, stop accepting on those it no longer has (their sessions
 * in flight finish), one log line per listener added, removed or
 * changed. */
void mp_listener_commit(void);

/* The reload was refused: close what mp_listener_prepare bound. */
void mp_listener_abort(void);

/* The protocol a listener speaks: "smtp", or its module's ("imap"). */
struct mp_listen;
const char *mp_listen_protocol(const struct mp_listen *l);

/* Stop accepting on every listener (SIGTERM). */
void mp_listener_stop(void);

#endif
