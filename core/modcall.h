/*
 * core/modcall.h - every call from the core into a module, one wrapper
 * per kind of call. Each wrapper
 *  - names the module in the thread's log context for the call, so its
 *    log lines say who wrote them;
 *  - maps MP_ERROR, MP_DECLINED where the kind has no "next provider",
 *    and any unknown return to a temporary failure;
 *  - fills a default status when the module left it empty (or gave one
 *    of the wrong class: a 5xx with MP_TEMPFAIL);
 *  - handles "no such module loaded" the one way the core wants;
 * and is the one place to add tracing or metrics later. The daemon never
 * calls m->mod-><kind>->op directly outside this file, except loader.c's
 * init/fini and protocol.c's session handover (they own the module's
 * lifetime and its connection, not a request). The `merpati` command's
 * administration (cli_user.c: user add/del/passwd/list; cli_mailbox.c:
 * the folder copy after mp_call_store_open) calls ops directly: one
 * thread, every error printed to the operator as it comes.
 */
#ifndef MERPATI_MODCALL_H
#define MERPATI_MODCALL_H

#include <sys/socket.h>
#include <merpati/merpati.h>

#include "loader.h"

/* Route one recipient (mp_core.route, which must be loaded). MP_OK with
 * *d filled, or MP_TEMPFAIL with *error_r saying why. */
int mp_call_route(const char *sender, const char *rcpt,
    struct mp_route_decision *d, const char **error_r);

/* Deliver one local recipient (mp_core.deliver). MP_OK, MP_TEMPFAIL or
 * MP_PERMFAIL with *st filled; no deliver module is a 451. */
int mp_call_deliver(const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *msg, struct mp_status *st);

/* The auth module (mp_core.auth, which must be set): 1 yes, 0 no,
 * -1 error (the caller tempfails); *error_r may say why. */
int mp_call_auth_verify(const char *user, const char *password,
    const char **error_r);
int mp_call_auth_user_exists(const char *address, const char **error_r);

/* mp_core.resolve: MX of a domain, addresses of a host. MP_OK,
 * MP_TEMPFAIL or MP_PERMFAIL with *st filled on failure; no resolve
 * module is a 451 (DESIGN.md: every name goes through it). */
int mp_call_resolve_mx(const char *domain, struct mp_mx *out, size_t max,
    size_t *n_r, struct mp_status *st);
int mp_call_resolve_addresses(const char *host, struct sockaddr_storage *out,
    size_t max, size_t *n_r, struct mp_status *st);

/* One filter module's end-of-data hook: MP_OK accepts, MP_TEMPFAIL or
 * MP_PERMFAIL with *st a reply of the matching class. */
int mp_call_filter(const struct mp_loaded *f, struct mp_txn *txn,
    const struct mp_envelope *env, struct mp_reader *msg,
    int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *st);

/*
 * One filter module's hook points since ABI 2.1 (filter.h). A hook the
 * module does not have (NULL in the loader's copy of its table) is
 * MP_OK. Each returns MP_OK, MP_TEMPFAIL or MP_PERMFAIL with *st a
 * reply of the matching class; txn_end and session_end return nothing.
 */
int mp_call_filter_connect(const struct mp_loaded *f, struct mp_txn *txn,
    struct mp_status *st);
int mp_call_filter_helo(const struct mp_loaded *f, struct mp_txn *txn,
    const char *name, struct mp_status *st);
int mp_call_filter_mail_from(const struct mp_loaded *f, struct mp_txn *txn,
    const char *sender, struct mp_status *st);
int mp_call_filter_rcpt_to(const struct mp_loaded *f, struct mp_txn *txn,
    const char *rcpt, struct mp_status *st);
int mp_call_filter_end_of_headers(const struct mp_loaded *f,
    struct mp_txn *txn, struct mp_reader *headers, struct mp_status *st);
int mp_call_filter_before_queue(const struct mp_loaded *f, struct mp_txn *txn,
    const struct mp_envelope *env, struct mp_reader *msg,
    struct mp_status *st);
void mp_call_filter_txn_end(const struct mp_loaded *f, struct mp_txn *txn);
void mp_call_filter_session_end(const struct mp_loaded *f, struct mp_txn *txn);

/* mp_core.retry's decision. MP_OK with *d filled, MP_TEMPFAIL when the
 * module is absent or failed (the caller uses its own policy). */
int mp_call_retry(const struct mp_retry_info *info,
    struct mp_retry_decision *d);

/* Open user's mailbox in store module m. MP_OK or MP_TEMPFAIL. */
int mp_call_store_open(const struct mp_loaded *m, const char *user,
    struct mp_mailbox **mb_r, const char **error_r);

#endif
