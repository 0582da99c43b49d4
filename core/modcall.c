/*
 * core/modcall.c - the core's calls into modules (see modcall.h). Each
 * wrapper is: pick the module, set the log context, call, settle the
 * result. Settling is shared: a result the kind does not define becomes
 * MP_TEMPFAIL, and a status that is empty or of the wrong class is
 * replaced by the kind's default for that result.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "modcall.h"
#include "settings.h"
#include "util.h"

/* The replies a kind uses when its module gave none that fits. */
struct defaults {
	int ok_reply, temp_reply, perm_reply;
	const char *ok_enh, *temp_enh, *perm_enh;
	const char *ok_text, *temp_text, *perm_text;
};

static const struct defaults deliver_defaults = {
	250, 451, 550, "2.0.0", "4.3.0", "5.3.0",
	"delivered", "local delivery failed", "local delivery refused",
};
static const struct defaults resolve_defaults = {
	250, 451, 550, "2.0.0", "4.4.3", "5.1.2",
	"resolved", "name lookup failed", "no such domain",
};
static const struct defaults filter_defaults = {
	250, 451, 550, "2.0.0", "4.7.1", "5.7.1",
	"accepted", "try again later", "message refused",
};

/* An out-parameter status before a call: empty, sized by us (the
 * caller sizes what it hands a module: module.h rule 1). */
static void
empty_status(struct mp_status *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = sizeof(*st);
}

static void
set_status(struct mp_status *st, int reply, const char *enhanced,
    const char *text)
{
	st->reply = reply;
	snprintf(st->enhanced, sizeof(st->enhanced), "%s", enhanced);
	snprintf(st->text, sizeof(st->text), "%s", text);
}

/* MP_OK, MP_TEMPFAIL or MP_PERMFAIL, with *st of the matching class. */
static int
settle(int rc, struct mp_status *st, const struct defaults *d)
{
	mp_metric_module_rc(rc);
	if (rc != MP_OK && rc != MP_PERMFAIL)
		rc = MP_TEMPFAIL;	/* MP_ERROR, MP_DECLINED, anything unknown */
	int want = rc == MP_OK ? 2 : rc == MP_TEMPFAIL ? 4 : 5;
	if (st->reply / 100 == want)
		return rc;
	if (rc == MP_OK)
		set_status(st, d->ok_reply, d->ok_enh, d->ok_text);
	else if (rc == MP_TEMPFAIL)
		set_status(st, d->temp_reply, d->temp_enh, d->temp_text);
	else
		set_status(st, d->perm_reply, d->perm_enh, d->perm_text);
	return rc;
}

/*
 * The log context nests: a module may call the host (dns_lookup, say)
 * and the host calls another module through these wrappers, so leave()
 * puts back the context that was current at the matching enter()
 * rather than clearing it; otherwise the outer module's later log lines
 * would lose its name. The depth is set by the code's call structure
 * (module -> host -> module), never by input; past the bound, contexts
 * are still counted so enter/leave stay paired, and leave() falls back
 * to no context.
 */
#define MAX_CALL_DEPTH 8

static _Thread_local const char *outer_module[MAX_CALL_DEPTH];
static _Thread_local int call_depth;

static void
enter(const char *name)
{
	if (call_depth < MAX_CALL_DEPTH)
		outer_module[call_depth] = mp_log_module();
	call_depth++;
	mp_log_set_module(name);
}

static void
leave(void)
{
	if (call_depth > 0)
		call_depth--;
	mp_log_set_module(call_depth < MAX_CALL_DEPTH ?
	    outer_module[call_depth] : NULL);
}

int
mp_call_route(const char *sender, const char *rcpt,
    struct mp_route_decision *d, const char **error_r)
{
	const struct mp_loaded *m = mp_core.route;
	int rc;

	d->struct_size = sizeof(*d);	/* an out-parameter: we size it */
	d->status.struct_size = sizeof(d->status);
	enter(m->name);
	rc = m->mod->route->route(m->ctx, sender, rcpt, d, error_r);
	leave();
	mp_metric_module_rc(rc);
	if (rc != MP_OK && *error_r == NULL)
		*error_r = "the route module failed";
	return rc == MP_OK ? MP_OK : MP_TEMPFAIL;
}

int
mp_call_deliver(const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *msg, struct mp_status *st)
{
	const struct mp_loaded *m = mp_core.deliver;
	int rc;

	empty_status(st);
	if (m == NULL) {
		set_status(st, 451, "4.3.5", "no deliver module loaded");
		return MP_TEMPFAIL;
	}
	enter(m->name);
	double t0 = mp_metric_clock();
	rc = m->mod->deliver->deliver(m->ctx, env, rcpt, msg, st);
	mp_metric_store(MP_STORE_DELIVER, mp_metric_clock() - t0);
	leave();
	return settle(rc, st, &deliver_defaults);
}

/* The loaded module whose auth ops are in use (for the log context). */
static const char *
auth_name(void)
{
	for (size_t i = 0; i < mp_core.modules.n; i++) {
		const struct mp_loaded *m = &mp_core.modules.v[i];
		if ((m->mod->kinds & MP_KIND_AUTH) && m->mod->auth == mp_core.auth.ops)
			return m->name;
	}
	return "auth";
}

/* 1, 0 or -1: what the auth kind defines; anything else is an error. */
static int
settle_yes_no(int rc, const char **error_r, const char *what)
{
	if (rc == 1 || rc == 0)
		return rc;
	if (*error_r == NULL)
		*error_r = what;
	return -1;
}

int
mp_call_auth_verify(const char *user, const char *password,
    const char **error_r)
{
	int rc;

	enter(auth_name());
	rc = mp_core.auth.ops->verify(mp_core.auth.ctx, user, password, error_r);
	leave();
	mp_metric_auth("smtp", rc);
	return settle_yes_no(rc, error_r, "password check failed");
}

int
mp_call_auth_user_exists(const char *address, const char **error_r)
{
	int rc;

	enter(auth_name());
	rc = mp_core.auth.ops->user_exists(mp_core.auth.ctx, address, error_r);
	leave();
	return settle_yes_no(rc, error_r, "user lookup failed");
}

/* The directory ops (auth.h, since 2.1) when the provider has them:
 * a 2.0 module's table ends before them. */
#define AUTH_HAS(op) (mp_core.auth.ops && \
	mp_core.auth.ops->struct_size >= offsetof(struct mp_auth_ops, op) + \
	sizeof(mp_core.auth.ops->op) && mp_core.auth.ops->op)

int
mp_call_auth_domain_exists(const char *domain, const char **error_r)
{
	char lower[256];
	int rc;

	if (!AUTH_HAS(domain_exists) || strlen(domain) >= sizeof(lower))
		return 0;
	snprintf(lower, sizeof(lower), "%s", domain);
	mp_lowercase(lower);
	enter(auth_name());
	rc = mp_core.auth.ops->domain_exists(mp_core.auth.ctx, lower, error_r);
	leave();
	return settle_yes_no(rc, error_r, "domain lookup failed");
}

/* Frees what alias_expand returned (the module allocated it with the
 * host's allocator). */
void
mp_call_auth_alias_free(char **targets, size_t n)
{
	for (size_t i = 0; targets && i < n; i++)
		mp_host_table.free(targets[i]);
	mp_host_table.free(targets);
}

int
mp_call_auth_alias_expand(const char *address, char ***targets_r,
    size_t *n_r, const char **error_r)
{
	int rc;

	*targets_r = NULL;
	*n_r = 0;
	if (!AUTH_HAS(alias_expand))
		return 0;
	enter(auth_name());
	rc = mp_core.auth.ops->alias_expand(mp_core.auth.ctx, address, targets_r,
	    n_r, error_r);
	leave();
	rc = settle_yes_no(rc, error_r, "alias lookup failed");
	if (rc == 1 && (*n_r == 0 || *targets_r == NULL)) {
		*error_r = "alias lookup returned no targets";
		rc = -1;
	}
	if (rc != 1) {
		mp_call_auth_alias_free(*targets_r, *n_r);
		*targets_r = NULL;
		*n_r = 0;
	}
	return rc;
}

/* Before a resolve call: the module, in the log context, with an empty
 * status; NULL (and a 451) when none is loaded. */
static const struct mp_loaded *
resolver(size_t *n_r, struct mp_status *st)
{
	const struct mp_loaded *m = mp_core.resolve;

	*n_r = 0;
	empty_status(st);
	if (m == NULL) {
		set_status(st, 451, "4.4.0",
		    "remote delivery needs a resolve module (dns_mx)");
		return NULL;
	}
	enter(m->name);
	return m;
}

/* After it: no results unless MP_OK (and never more than max). */
static int
resolved(int rc, size_t max, size_t *n_r, struct mp_status *st)
{
	leave();
	if (rc != MP_OK || *n_r > max)
		*n_r = 0;
	return settle(rc, st, &resolve_defaults);
}

int
mp_call_resolve_mx(const char *domain, struct mp_mx *out, size_t max,
    size_t *n_r, struct mp_status *st)
{
	const struct mp_loaded *m = resolver(n_r, st);

	if (m == NULL)
		return MP_TEMPFAIL;
	/* the module steps through out by the size we give (module.h rule 2) */
	for (size_t i = 0; i < max; i++)
		out[i].struct_size = sizeof(out[i]);
	return resolved(m->mod->resolve->mx(m->ctx, domain, out, max, n_r, st),
	    max, n_r, st);
}

int
mp_call_resolve_addresses(const char *host, struct sockaddr_storage *out,
    size_t max, size_t *n_r, struct mp_status *st)
{
	const struct mp_loaded *m = resolver(n_r, st);

	if (m == NULL)
		return MP_TEMPFAIL;
	return resolved(m->mod->resolve->addresses(m->ctx, host, out, max, n_r, st),
	    max, n_r, st);
}

int
mp_call_resolve_lookup(const char *name, int type, unsigned char *buf,
    size_t size, struct mp_dns_answer *answer_r)
{
	const struct mp_loaded *m = mp_core.resolve;
	struct mp_dns_answer a;

	memset(&a, 0, sizeof(a));
	a.struct_size = sizeof(a);
	if (m == NULL || m->mod->resolve->lookup == NULL) {
		a.status = MP_DNS_TEMPFAIL;
		MP_SIZED_WRITE(answer_r, &a);
		return MP_TEMPFAIL;
	}
	enter(m->name);
	/* the status decides the result: the two cannot disagree */
	(void)m->mod->resolve->lookup(m->ctx, name, type, buf, size, &a);
	leave();
	/* the module's word on sizes is checked, not trusted */
	if (a.used > size || a.status > MP_DNS_PERMFAIL) {
		memset(&a, 0, sizeof(a));
		a.struct_size = sizeof(a);
		a.status = MP_DNS_TEMPFAIL;
	}
	MP_SIZED_WRITE(answer_r, &a);
	return a.status == MP_DNS_FOUND ? MP_OK :
	    a.status == MP_DNS_TEMPFAIL ? MP_TEMPFAIL : MP_PERMFAIL;
}

int
mp_call_filter(const struct mp_loaded *f, struct mp_txn *txn,
    const struct mp_envelope *env, struct mp_reader *msg,
    int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *st)
{
	int rc;

	empty_status(st);
	enter(f->name);
	rc = f->mod->filter->end_of_data(f->ctx, txn, env, msg, add_header, st);
	leave();
	return settle(rc, st, &filter_defaults);
}

/* The loader's copy of a filter's table has this host's size with the
 * members an older module lacks NULL; MP_HAS also guards a table that
 * came from elsewhere (a test's). */
#define FILTER_HOOK(f, m) \
	(MP_HAS((f)->mod->filter, (f)->mod->filter->struct_size, m) && \
	    (f)->mod->filter->m != NULL)

/* Before a hook call: an empty status, the module in the log context. */
static void
hook_enter(const struct mp_loaded *f, struct mp_status *st)
{
	empty_status(st);
	enter(f->name);
}

static int
hook_leave(int rc, struct mp_status *st)
{
	leave();
	return settle(rc, st, &filter_defaults);
}

int
mp_call_filter_connect(const struct mp_loaded *f, struct mp_txn *txn,
    struct mp_status *st)
{
	if (!FILTER_HOOK(f, connect))
		return MP_OK;
	hook_enter(f, st);
	return hook_leave(f->mod->filter->connect(f->ctx, txn, st), st);
}

int
mp_call_filter_helo(const struct mp_loaded *f, struct mp_txn *txn,
    const char *name, struct mp_status *st)
{
	if (!FILTER_HOOK(f, helo))
		return MP_OK;
	hook_enter(f, st);
	return hook_leave(f->mod->filter->helo(f->ctx, txn, name, st), st);
}

int
mp_call_filter_mail_from(const struct mp_loaded *f, struct mp_txn *txn,
    const char *sender, struct mp_status *st)
{
	if (!FILTER_HOOK(f, mail_from))
		return MP_OK;
	hook_enter(f, st);
	return hook_leave(f->mod->filter->mail_from(f->ctx, txn, sender, st), st);
}

int
mp_call_filter_rcpt_to(const struct mp_loaded *f, struct mp_txn *txn,
    const char *rcpt, struct mp_status *st)
{
	if (!FILTER_HOOK(f, rcpt_to))
		return MP_OK;
	hook_enter(f, st);
	return hook_leave(f->mod->filter->rcpt_to(f->ctx, txn, rcpt, st), st);
}

int
mp_call_filter_end_of_headers(const struct mp_loaded *f, struct mp_txn *txn,
    struct mp_reader *headers, struct mp_status *st)
{
	if (!FILTER_HOOK(f, end_of_headers))
		return MP_OK;
	hook_enter(f, st);
	return hook_leave(f->mod->filter->end_of_headers(f->ctx, txn, headers, st),
	    st);
}

int
mp_call_filter_before_queue(const struct mp_loaded *f, struct mp_txn *txn,
    const struct mp_envelope *env, struct mp_reader *msg, struct mp_status *st)
{
	if (!FILTER_HOOK(f, before_queue))
		return MP_OK;
	hook_enter(f, st);
	return hook_leave(f->mod->filter->before_queue(f->ctx, txn, env, msg, st),
	    st);
}

void
mp_call_filter_txn_end(const struct mp_loaded *f, struct mp_txn *txn)
{
	if (!FILTER_HOOK(f, txn_end))
		return;
	enter(f->name);
	f->mod->filter->txn_end(f->ctx, txn);
	leave();
}

void
mp_call_filter_session_end(const struct mp_loaded *f, struct mp_txn *txn)
{
	if (!FILTER_HOOK(f, session_end))
		return;
	enter(f->name);
	f->mod->filter->session_end(f->ctx, txn);
	leave();
}

int
mp_call_retry(const struct mp_retry_info *info, struct mp_retry_decision *d)
{
	const struct mp_loaded *m = mp_core.retry;
	int rc;

	if (m == NULL)
		return MP_TEMPFAIL;
	enter(m->name);
	rc = m->mod->retry->schedule(m->ctx, info, d);
	leave();
	return rc == MP_OK ? MP_OK : MP_TEMPFAIL;
}

int
mp_call_store_open(const struct mp_loaded *m, const char *user,
    struct mp_mailbox **mb_r, const char **error_r)
{
	int rc;

	enter(m->name);
	double t0 = mp_metric_clock();
	rc = m->mod->store->open(m->ctx, user, mb_r, error_r);
	mp_metric_store(MP_STORE_OPEN, mp_metric_clock() - t0);
	leave();
	if (rc != MP_OK && *error_r == NULL)
		*error_r = "cannot open the mailbox";
	return rc == MP_OK ? MP_OK : MP_TEMPFAIL;
}
