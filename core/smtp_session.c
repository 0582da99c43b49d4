/*
 * core/smtp_session.c - one SMTP server session: the RFC 5321 command
 * state machine with ESMTP extensions (PIPELINING, SIZE, 8BITMIME,
 * SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, DSN, STARTTLS, AUTH), relay
 * control, and message data streamed straight into the queue. Replies
 * carry RFC 3463 enhanced codes. Not here: sockets and per-client
 * limits (listener.c), parsing (smtp_parse.c, smtp_data.c), AUTH
 * (smtp_auth.c), the BDAT chunk reader (smtp_bdat.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "delivery_log.h"
#include "filter_hooks.h"
#include "log.h"
#include "metrics.h"
#include "modcall.h"
#include "protocol.h"
#include "runner.h"
#include "smtp_data.h"
#include "smtp_early.h"
#include "smtp_session.h"
#include "tls.h"
#include "util.h"

void
smtp_reply(struct session *s, int code, const char *enh, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conn_printf(&s->c, "%d %s%s%s\r\n", code, enh ? enh : "",
	    enh ? " " : "", text);
	mp_metric_smtp_reply(code);
	if (code >= 500 && code != 552)
		s->errors++;
}


static void
free_list(char ***v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
}

static void
reset_transaction(struct session *s)
{
	free_list(&s->rcpts, s->nrcpt);
	free_list(&s->notify, s->nrcpt);
	free_list(&s->orcpt, s->nrcpt);
	free_list(&s->relay, s->nrcpt);
	s->nrcpt = 0;
	s->in_mail = 0;
	s->sender[0] = '\0';
	smtp_bdat_abort(s);
	mp_hooks_txn_end(s->txn);
}

/* A filter's refusal as the reply. */
static void
reply_status(struct session *s, const struct mp_status *st)
{
	smtp_reply(s, st->reply, st->enhanced[0] ? st->enhanced : NULL, "%s",
	    st->text);
}

static int
starttls_offered(const struct session *s)
{
	return s->l->tls == LISTEN_TLS_STARTTLS && !s->tls_info[0] &&
	    mp_core.tls_ctx != NULL;
}

static void
ehlo_keywords(struct session *s)
{
	conn_printf(&s->c, "250-%s\r\n", mp_core.server.hostname);
	conn_printf(&s->c, "250-PIPELINING\r\n");
	conn_printf(&s->c, "250-SIZE %lld\r\n", mp_core.limits.message_size);
	if (mp_core.smtp.vrfy)
		conn_printf(&s->c, "250-VRFY\r\n");
	if (starttls_offered(s))
		conn_printf(&s->c, "250-STARTTLS\r\n");
	if (smtp_auth_offered(s) && !s->auth_user[0])
		conn_printf(&s->c, "250-AUTH PLAIN LOGIN\r\n");
	conn_printf(&s->c, "250-8BITMIME\r\n");
	conn_printf(&s->c, "250-SMTPUTF8\r\n");
	conn_printf(&s->c, "250-CHUNKING\r\n");
	conn_printf(&s->c, "250-DSN\r\n");
	conn_printf(&s->c, "250 ENHANCEDSTATUSCODES\r\n");
}

static void
do_helo(struct session *s, const char *arg, int esmtp)
{
	struct mp_status st;	/* the hooks fill it */

	if (arg[0] == '\0' || strlen(arg) >= sizeof(s->helo) ||
	    strpbrk(arg, " \t") != NULL) {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	reset_transaction(s);
	if (mp_hooks_helo(s->txn, arg, &st) != MP_OK) {
		reply_status(s, &st);
		return;
	}
	mp_strlcpy(s->helo, arg, sizeof(s->helo));
	s->greeted = 1;
	s->esmtp = esmtp;
	if (esmtp)
		ehlo_keywords(s);
	else
		smtp_reply(s, 250, NULL, "%s", mp_core.server.hostname);
}

static void
path_error(struct session *s, enum smtp_path_result r, int sender)
{
	if (r == SMTP_PATH_TOO_LONG)
		smtp_reply(s, 501, "5.1.3", "%s address too long",
		    sender ? "Sender" : "Recipient");
	else
		smtp_reply(s, 501, sender ? "5.1.7" : "5.1.3", "Syntax: %s",
		    sender ? "MAIL FROM:<address>" : "RCPT TO:<address>");
}

/* 1 when the sender passes the submission rules (reply sent if not). */
static int
sender_allowed(struct session *s)
{
	if (s->l->auth == LISTEN_AUTH_REQUIRED && !s->auth_user[0]) {
		smtp_reply(s, 530, "5.7.0", "Authentication required");
		return 0;
	}
	if (s->auth_user[0] && !s->l->any_sender &&
	    strcasecmp(s->sender, s->auth_user) != 0) {
		smtp_reply(s, 553, "5.7.1", "Sender address <%s> not owned by user %s",
		    s->sender, s->auth_user);
		return 0;
	}
	return 1;
}

static void
do_mail(struct session *s, const char *arg)
{
	const char *params;
	char bad[64];
	enum smtp_path_result r;
	struct mp_status st;	/* the hooks fill it */

	if (!s->greeted) {
		smtp_reply(s, 503, "5.5.1", "Send EHLO or HELO first");
		return;
	}
	if (s->in_mail) {
		smtp_reply(s, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	r = smtp_parse_path(arg, "FROM", 1, s->sender, sizeof(s->sender),
	    &params);
	if (r != SMTP_PATH_OK) {
		path_error(s, r, 1);
		return;
	}
	if (smtp_parse_mail_params(params, &s->params, bad, sizeof(bad)) < 0) {
		smtp_reply(s, 555, "5.5.4", "Unsupported or bad parameter %s", bad);
		return;
	}
	if (s->params.size > mp_core.limits.message_size) {
		smtp_reply(s, 552, "5.3.4", "Message too big: limit is %lld bytes",
		    mp_core.limits.message_size);
		return;
	}
	if (!sender_allowed(s))
		return;
	if (mp_hooks_mail_from(s->txn, &st) != MP_OK) {
		reply_status(s, &st);
		mp_hooks_txn_end(s->txn);	/* the transaction does not start */
		s->sender[0] = '\0';
		return;
	}
	s->in_mail = 1;
	smtp_reply(s, 250, "2.1.0", "Sender <%s> ok", s->sender);
}

/* Where one accepted recipient goes: its address and relay host. */
struct target {
	char addr[ADDR_MAX];
	char relay[300];
};

struct targets {
	struct target v[64];	/* an alias may expand to this many */
	size_t n;
};

static void
set_status(struct mp_status *st, int reply, const char *enh, const char *text,
    const char *addr)
{
	st->reply = reply;
	snprintf(st->enhanced, sizeof(st->enhanced), "%s", enh);
	snprintf(st->text, sizeof(st->text), "<%.200s>: %s", addr, text);
}

static int
add_target(struct targets *t, const char *addr, const char *relay,
    struct mp_status *st)
{
	if (t->n == sizeof(t->v) / sizeof(t->v[0])) {
		set_status(st, 452, "4.5.3", "alias expands to too many recipients", addr);
		return 0;
	}
	snprintf(t->v[t->n].addr, sizeof(t->v[0].addr), "%s", addr);
	snprintf(t->v[t->n].relay, sizeof(t->v[0].relay), "%s", relay ? relay : "");
	t->n++;
	return 1;
}

static int
check_local_user(const char *addr, struct mp_status *st)
{
	const char *err = NULL;
	int found;

	if (mp_core.auth.ops == NULL) {
		set_status(st, 451, "4.3.0", "no user database configured", addr);
		return 0;
	}
	found = mp_call_auth_user_exists(addr, &err);
	if (found < 0) {
		mp_log(MP_LOG_WARNING, "user lookup for <%s> failed: %s", addr,
		    err ? err : "unknown error");
		set_status(st, 451, "4.3.0", "temporary lookup failure", addr);
	} else if (found == 0)
		set_status(st, 550, "5.1.1", "Recipient address rejected: User unknown",
		    addr);
	return found == 1;
}

static int
client_may_relay(const struct session *s)
{
	return s->auth_user[0] || mp_core_relay_allowed(s->client);
}

/* 1 the recipient's domain is local, 0 not, -1 the directory failed
 * (then st says 451: the answer may be yes once it is back). */
static int
domain_is_local(const char *addr, struct mp_status *st)
{
	const char *at = strrchr(addr, '@');
	const char *err = NULL;
	int local = at ? mp_core_local_domain(at + 1, &err) : 0;

	if (local < 0) {
		mp_log(MP_LOG_WARNING, "domain lookup for <%s> failed: %s", addr,
		    err ? err : "unknown error");
		set_status(st, 451, "4.3.0", "temporary lookup failure", addr);
	}
	return local;
}

static int route_to(struct session *s, const char *addr, int depth,
    struct targets *t, struct mp_status *st);

/* Aliases expand this deep at most, so a loop in the directory costs a
 * bounded number of lookups (and targets, see struct targets). */
#define ALIAS_DEPTH 3

/* A local recipient: an alias in the auth provider's directory routes
 * each of its targets (a target naming the alias itself is its own
 * mailbox); else it must be a user. */
static int
local_recipient(struct session *s, const char *addr, int depth,
    struct targets *t, struct mp_status *st)
{
	char **targets = NULL;
	size_t n = 0;
	const char *err = NULL;
	int rc = depth < ALIAS_DEPTH ?
	    mp_call_auth_alias_expand(addr, &targets, &n, &err) : 0;
	int ok = 1;

	if (rc < 0) {
		mp_log(MP_LOG_WARNING, "alias lookup for <%s> failed: %s", addr,
		    err ? err : "unknown error");
		set_status(st, 451, "4.3.0", "temporary lookup failure", addr);
		return 0;
	}
	if (rc == 0)
		return check_local_user(addr, st) && add_target(t, addr, NULL, st);
	for (size_t i = 0; ok && i < n; i++) {
		char next[ADDR_MAX];
		snprintf(next, sizeof(next), "%s", targets[i]);
		mp_lowercase(next);
		ok = strcasecmp(next, addr) == 0 ?
		    check_local_user(addr, st) && add_target(t, addr, NULL, st) :
		    route_to(s, next, depth + 1, t, st);
	}
	mp_call_auth_alias_free(targets, n);
	return ok;
}

static int
default_route(struct session *s, const char *addr, int depth,
    struct targets *t, struct mp_status *st)
{
	int local = domain_is_local(addr, st);

	if (local < 0)
		return 0;
	if (local)
		return local_recipient(s, addr, depth, t, st);
	/* Reached through a rewrite only when the recipient the client gave
	 * passed relay_permitted(): where the admin's rule sends it is his. */
	if (depth > 0 || client_may_relay(s))
		return add_target(t, addr, NULL, st);
	set_status(st, 554, "5.7.1", "Relay access denied", addr);
	return 0;
}

/* Relay permission is decided on the recipient exactly as the client
 * gave it, never on what a rewrite made of it (Postfix's
 * reject_unauth_destination runs before virtual alias expansion): else
 * a plus-addressing or catch-all rule turns victim+x@remote into a
 * relayed victim@remote for anyone. */
static int
relay_permitted(struct session *s, const char *addr, struct mp_status *st)
{
	int local = domain_is_local(addr, st);

	if (local < 0)
		return 0;
	if (local || client_may_relay(s))
		return 1;
	set_status(st, 554, "5.7.1", "Relay access denied", addr);
	return 0;
}

static int
apply_decision(struct session *s, const char *addr, int depth,
    const struct mp_route_decision *d, struct targets *t, struct mp_status *st)
{
	switch (d->action) {
	case MP_ROUTE_REJECT:
		*st = d->status;
		if (st->reply < 400 || st->reply > 599)
			set_status(st, 550, "5.7.1", "rejected by routing rule", addr);
		return 0;
	case MP_ROUTE_LOCAL:
		return check_local_user(addr, st) && add_target(t, addr, NULL, st);
	case MP_ROUTE_RELAY:
		return add_target(t, addr, d->relay_host, st);
	case MP_ROUTE_REWRITE:
		if (depth == 0 && !relay_permitted(s, addr, st))
			return 0;
		for (size_t i = 0; i < d->naddresses; i++) {
			char next[ADDR_MAX];
			snprintf(next, sizeof(next), "%s", d->addresses[i]);
			mp_lowercase(next);
			if (!route_to(s, next, depth + 1, t, st))
				return 0;
		}
		return 1;
	default:
		return default_route(s, addr, depth, t, st);
	}
}

/* Route addr (rewrites are routed once more, no deeper). */
static int
route_to(struct session *s, const char *addr, int depth, struct targets *t,
    struct mp_status *st)
{
	struct mp_route_decision d = { 0 };	/* mp_call_route sizes it */
	const char *err = NULL;
	int rc, ok;

	if (mp_core.route == NULL || depth > 1)
		return default_route(s, addr, depth, t, st);
	rc = mp_call_route(s->sender, addr, &d, &err);
	if (rc != MP_OK) {
		mp_log(MP_LOG_WARNING, "routing <%s> failed: %s", addr, err);
		set_status(st, 451, "4.3.0", "temporary routing failure", addr);
		ok = 0;
	} else
		ok = apply_decision(s, addr, depth, &d, t, st);
	for (size_t i = 0; i < d.naddresses; i++)
		mp_host_table.free(d.addresses[i]);
	mp_host_table.free(d.addresses);
	return ok;
}

void
smtp_add_rcpt(struct session *s, const char *addr, const char *notify,
    const char *orcpt, const char *relay)
{
	size_t n = s->nrcpt + 1;

	s->rcpts = realloc(s->rcpts, n * sizeof(char *));
	s->notify = realloc(s->notify, n * sizeof(char *));
	s->orcpt = realloc(s->orcpt, n * sizeof(char *));
	s->relay = realloc(s->relay, n * sizeof(char *));
	if (!s->rcpts || !s->notify || !s->orcpt || !s->relay)
		abort();
	s->rcpts[s->nrcpt] = mp_xstrdup(addr);
	s->notify[s->nrcpt] = mp_xstrdup(notify);
	s->orcpt[s->nrcpt] = mp_xstrdup(orcpt);
	s->relay[s->nrcpt] = mp_xstrdup(relay);
	s->nrcpt = n;
}

void
smtp_delete_rcpt(struct session *s, size_t i)
{
	char **lists[] = { s->rcpts, s->notify, s->orcpt, s->relay };

	for (size_t k = 0; k < 4; k++) {
		free(lists[k][i]);
		memmove(lists[k] + i, lists[k] + i + 1,
		    (s->nrcpt - i - 1) * sizeof(char *));
	}
	s->nrcpt--;
}

static void
do_rcpt(struct session *s, const char *arg)
{
	char addr[ADDR_MAX], bad[64];
	struct smtp_rcpt_params p;
	struct mp_status st;
	struct targets *t;
	const char *params;
	enum smtp_path_result r;

	if (!s->in_mail) {
		smtp_reply(s, 503, "5.5.1", "Need MAIL before RCPT");
		return;
	}
	/* The envelope went into the queue file with the first chunk: a
	 * recipient added now would be answered 250 and never get it. */
	if (s->bdat) {
		smtp_reply(s, 503, "5.5.1", "RCPT not allowed after BDAT");
		return;
	}
	r = smtp_parse_path(arg, "TO", 0, addr, sizeof(addr), &params);
	if (r != SMTP_PATH_OK) {
		path_error(s, r, 0);
		return;
	}
	if (smtp_parse_rcpt_params(params, &p, bad, sizeof(bad)) < 0) {
		smtp_reply(s, 555, "5.5.4", "Unsupported or bad parameter %s", bad);
		return;
	}
	if ((long long)s->nrcpt >= mp_core.limits.recipients) {
		smtp_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	mp_lowercase(strrchr(addr, '@'));
	t = mp_xcalloc(1, sizeof(*t));
	if (!route_to(s, addr, 0, t, &st))
		smtp_reply(s, st.reply, st.enhanced, "%s", st.text);
	else if ((long long)(s->nrcpt + t->n) > mp_core.limits.recipients)
		smtp_reply(s, 452, "4.5.3", "Too many recipients");
	else if (mp_hooks_rcpt_to(s->txn, addr, &st) != MP_OK)
		reply_status(s, &st);	/* this recipient only */
	else {
		for (size_t i = 0; i < t->n; i++)
			smtp_add_rcpt(s, t->v[i].addr, p.notify, p.orcpt, t->v[i].relay);
		smtp_reply(s, 250, "2.1.5", "Recipient <%s> ok", addr);
	}
	free(t);
}

/* "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" (RFC 3848). */
static const char *
protocol_name(const struct session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->tls_info[0])
		return s->auth_user[0] ? "ESMTPSA" : "ESMTPS";
	return s->auth_user[0] ? "ESMTPA" : "ESMTP";
}

static int
write_received(struct session *s, struct mp_qwriter *w, const char *id)
{
	char buf[2048], date[64], tls[200] = "", auth[400] = "", rcpt[400] = "";
	int n;

	mp_rfc5322_date(date, sizeof(date));
	if (s->tls_info[0])
		snprintf(tls, sizeof(tls), "\r\n\t(using %s)", s->tls_info);
	if (s->auth_user[0])
		snprintf(auth, sizeof(auth), "\r\n\t(Authenticated sender: %s)",
		    s->auth_user);
	if (s->nrcpt == 1)
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", s->rcpts[0]);
	n = snprintf(buf, sizeof(buf),
	    "Received: from %s ([%s])%s%s\r\n\tby %s (merpati) with %s id %s%s;\r\n\t%s\r\n",
	    s->helo, s->client, tls, auth, mp_core.server.hostname,
	    protocol_name(s), id, rcpt, date);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return mp_queue_write(w, buf, (size_t)n);
}

void
smtp_fill_qmsg(struct session *s, struct mp_qmsg *env)
{
	memset(env, 0, sizeof(*env));
	env->sender = s->sender;
	env->rcpts = s->rcpts;
	env->notify = s->notify;
	env->orcpt = s->orcpt;
	env->relay = s->relay;
	env->nrcpt = s->nrcpt;
	env->ret = s->params.ret;
	env->envid = s->params.envid;
	env->helo = s->helo;
	env->client = s->client;
	env->auth_user = s->auth_user;
	env->arrival = time(NULL);
}

struct mp_qwriter *
smtp_open_message(struct session *s, char id[MP_QID_SIZE])
{
	struct mp_qmsg env;
	struct mp_qwriter *w;

	smtp_fill_qmsg(s, &env);
	w = mp_queue_begin(mp_core.queue_dir, &env, id);
	if (w == NULL || write_received(s, w, id) < 0) {
		mp_log_errno(MP_LOG_ERR, "cannot create queue file");
		mp_queue_abort(w);
		smtp_reply(s, 452, "4.3.1", "Insufficient system storage");
		return NULL;
	}
	return w;
}

/* The filters' verdict on a complete message: 1 to store it (*held: on
 * hold), 0 when it was answered (refused, discarded) and *w dropped. */
static int
filter_message(struct session *s, struct mp_qwriter **w, const char *id,
    int *held)
{
	struct mp_status st;	/* the hooks fill it */

	*held = 0;
	if (!mp_hooks_any())
		return 1;
	switch (mp_hooks_message(s->txn, w, id, &st)) {
	case MP_HOOKS_REFUSE:
		mp_queue_abort(*w);
		reply_status(s, &st);
		return 0;
	case MP_HOOKS_DISCARD:
		/* the client is told what it would be told of any mail */
		mp_queue_abort(*w);
		smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
		return 0;
	case MP_HOOKS_HOLD:
		*held = 1;
		return 1;
	default:
		return 1;
	}
}

/* Local mail can go straight into the mailboxes, before the reply: once
 * every recipient's delivery is fsync()ed the queue file is not needed
 * at all (the durability of "250" is then the mailbox's). */
static int
all_local(const struct session *s)
{
	for (size_t i = 0; i < s->nrcpt; i++) {
		const char *at = strrchr(s->rcpts[i], '@');
		if ((s->relay[i] && s->relay[i][0]) || at == NULL ||
		    !mp_core_is_local_domain(at + 1))
			return 0;
	}
	return s->nrcpt > 0;
}

/* Returns how many recipients were delivered; done[i] set for each. */
static size_t
direct_delivery(struct session *s, struct mp_qwriter *w, const char *id,
    unsigned char *done)
{
	struct mp_envelope env = {
		.struct_size = sizeof(env), .queue_id = id, .sender = s->sender,
		.rcpts = (const char *const *)s->rcpts, .nrcpt = s->nrcpt,
		.arrival = time(NULL), .helo = s->helo, .client_addr = s->client,
		.auth_user = s->auth_user[0] ? s->auth_user : NULL,
	};
	size_t n = 0;

	if (!mp_core.queue.direct_delivery || mp_core.deliver == NULL || !all_local(s) ||
	    mp_queue_has_added(w))
		return 0;
	mp_log_set_queue_id(id);
	for (size_t i = 0; i < s->nrcpt; i++) {
		struct mp_status st;	/* the mp_call_* wrapper sizes and fills it */
		struct mp_reader r;
		mp_queue_writer_reader(w, &r);
		int rc = mp_call_deliver(&env, s->rcpts[i], &r, &st);
		mp_queue_writer_reader_close(&r);
		if (rc != MP_OK)
			break;	/* the queue takes it from here, bounces included */
		mp_runner_log_result(s->rcpts[i], rc, &st, mp_core.deliver->name);
		done[i] = 1;
		n++;
	}
	mp_log_set_queue_id(NULL);
	return n;
}

/* Commit the queue file; recipients already delivered are marked done. */
static int
commit_rest(struct session *s, struct mp_qwriter *w, const char *id,
    unsigned char *done, size_t ndone)
{
	struct mp_qmsg m = { 0 };

	if (mp_queue_commit(w) < 0)
		return -1;
	if (ndone) {
		mp_strlcpy(m.id, id, sizeof(m.id));
		m.nrcpt = s->nrcpt;
		m.done = done;
		if (mp_queue_save_status(mp_core.queue_dir, &m) < 0)
			mp_log_errno(MP_LOG_ERR, "%s: cannot save queue status", id);
	}
	return 0;
}

/* Queue on hold (no direct delivery). 0, or -1 (errno). */
static int
store_held(struct session *s, struct mp_qwriter *w, const char *id)
{
	const char *why = mp_hooks_hold_reason(s->txn);

	if (mp_queue_commit_held(w, s->nrcpt, why) < 0)
		return -1;
	mp_log(MP_LOG_NOTICE, "%s: held: %s", id, why);
	return 0;
}

/* Deliver directly or queue; 0, or -1 (errno) when nothing is safe. */
static int
store_message(struct session *s, struct mp_qwriter *w, const char *id, int *queued)
{
	unsigned char *done = mp_xcalloc(s->nrcpt, 1);
	size_t n = direct_delivery(s, w, id, done);
	int rc = 0;

	*queued = n < s->nrcpt;
	if (*queued)
		rc = commit_rest(s, w, id, done, n);
	else
		mp_queue_abort(w);	/* every mailbox has it, fsync()ed */
	free(done);
	return rc;
}

void
smtp_finish_message(struct session *s, struct mp_qwriter *w, const char *id,
    unsigned long long size, int bare, int long_line, int disk_errno)
{
	int queued = 1, held = 0;
	char msgid[256];	/* read now: direct delivery may drop the file */

	mp_delivery_writer_message_id(w, msgid, sizeof(msgid));
	int normalize = strcmp(mp_core.smtp.bare_eol, "normalize") == 0;

	if (size > (unsigned long long)mp_core.limits.message_size) {
		mp_queue_abort(w);
		smtp_reply(s, 552, "5.3.4", "Message too big: limit is %lld bytes",
		    mp_core.limits.message_size);
	} else if (bare && !normalize) {
		mp_queue_abort(w);
		smtp_reply(s, 550, "5.6.0", "Message contains bare CR or LF "
		    "line endings; use CRLF");
	} else if (long_line && mp_core.smtp.reject_long_lines) {
		mp_queue_abort(w);
		smtp_reply(s, 552, "5.6.0", "Message has a line longer than 1000 "
		    "octets (RFC 5322 2.1.1)");
	} else if (!disk_errno && !filter_message(s, &w, id, &held)) {
		;	/* answered */
	} else if (disk_errno || (held ? store_held(s, w, id) :
	    store_message(s, w, id, &queued)) < 0) {
		int e = disk_errno ? disk_errno : errno;
		if (disk_errno)
			mp_queue_abort(w);
		mp_log(MP_LOG_ERR, "%s: cannot queue message: %s", id,
		    strerror(e));
		smtp_reply(s, 452, "4.3.1", "Insufficient system storage");
	} else {
		mp_delivery_log_accepted(id, s->sender, s->nrcpt, size, s->client,
		    s->auth_user, s->c.ssl ? SSL_get_version(s->c.ssl) : NULL, msgid);
		smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
		if (queued && !held)
			mp_runner_notify(id);
	}
	reset_transaction(s);
}

static long long
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The idle timeout alone lets a client sending one byte a second hold
 * a session (and a queue file) for ever: the deadline bounds the whole
 * message. */
void
smtp_data_start_clock(struct session *s)
{
	s->data_deadline = monotonic_ms() + mp_core.limits.data_deadline * 1000;
}

ssize_t
smtp_data_read(struct session *s, char *buf, size_t max)
{
	long long left = s->data_deadline - monotonic_ms();
	int ms = (int)mp_core.limits.data_timeout * 1000;

	if (left <= 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (left < ms)
		ms = (int)left;
	/* Only near the deadline does the timeout change from read to read. */
	if (ms != s->read_timeout_ms) {
		conn_set_timeout(&s->c, ms);
		s->read_timeout_ms = ms;
	}
	return conn_read_some(&s->c, buf, max);
}

void
smtp_data_stop_clock(struct session *s)
{
	s->read_timeout_ms = (int)mp_core.limits.command_timeout * 1000;
	conn_set_timeout(&s->c, s->read_timeout_ms);
}

void
smtp_data_lost(struct session *s, const char *what)
{
	if (errno == ETIMEDOUT) {
		smtp_reply(s, 421, "4.4.2", "%s Timeout during %s; closing connection",
		    mp_core.server.hostname, what);
		mp_log(MP_LOG_INFO, "timeout during %s from [%s]", what, s->client);
	} else
		mp_log(MP_LOG_INFO, "lost connection during %s from [%s]", what,
		    s->client);
	s->quit = 1;
}

/* Stream the data until the end marker; keep reading to the end even
 * after a limit is hit, so the client stays in sync. */
static void
receive_data(struct session *s, struct mp_qwriter *w, struct smtp_data *sm,
    int *io_error, int *disk_errno)
{
	char in[8192], out[2 * sizeof(in) + 4];
	int done = 0, normalize = strcmp(mp_core.smtp.bare_eol, "normalize") == 0;

	smtp_data_init(sm);
	smtp_data_start_clock(s);
	while (!done) {
		ssize_t n = smtp_data_read(s, in, sizeof(in));
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			*io_error = 1;
			return;
		}
		size_t outlen, used = smtp_data_feed(sm, in, (size_t)n,
		    out, &outlen, &done);
		/* Give back pipelined bytes after the end marker. */
		s->c.ipos -= (size_t)n - used;
		if (*disk_errno == 0 && (normalize || !sm->bare_eol) &&
		    sm->size <= (unsigned long long)mp_core.limits.message_size &&
		    mp_queue_write(w, out, outlen) < 0)
			*disk_errno = errno;
	}
	smtp_data_stop_clock(s);
}

static void
do_data(struct session *s, const char *arg)
{
	struct smtp_data sm;
	struct mp_qwriter *w;
	char id[MP_QID_SIZE];
	int io_error = 0, disk_errno = 0;

	if (arg[0] != '\0') {
		smtp_reply(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->bdat) {
		smtp_reply(s, 503, "5.5.1", "DATA not allowed after BDAT");
		return;
	}
	if (!s->in_mail || s->nrcpt == 0) {
		smtp_reply(s, 503, "5.5.1", s->in_mail ? "No valid recipients" :
		    "Need MAIL and RCPT before DATA");
		return;
	}
	if ((w = smtp_open_message(s, id)) == NULL)
		return;
	smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	receive_data(s, w, &sm, &io_error, &disk_errno);
	if (io_error) {
		int e = errno;
		mp_queue_abort(w);
		errno = e;
		smtp_data_lost(s, "DATA");
		return;
	}
	smtp_finish_message(s, w, id, sm.size, sm.bare_eol, sm.long_line,
	    disk_errno);
}

static int
start_tls(struct session *s)
{
	char desc[160];

	if (conn_start_tls(&s->c, mp_core.tls_ctx) < 0) {
		mp_log(MP_LOG_NOTICE, "TLS handshake failed with [%s]", s->client);
		return -1;
	}
	mp_tls_describe(s->c.ssl, desc, sizeof(desc));
	mp_strlcpy(s->tls_info, desc, sizeof(s->tls_info));
	mp_log(MP_LOG_INFO, "TLS established with [%s]: %s", s->client, desc);
	return 0;
}

static void
do_starttls(struct session *s, const char *arg)
{
	if (arg[0] != '\0') {
		smtp_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (s->tls_info[0]) {
		smtp_reply(s, 503, "5.5.1", "TLS already active");
		return;
	}
	if (!starttls_offered(s)) {
		smtp_reply(s, 454, "4.7.0", "TLS not available");
		return;
	}
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* conn_start_tls drops anything pipelined after STARTTLS. */
	if (start_tls(s) < 0) {
		s->quit = 1;
		return;
	}
	/* RFC 3207 4.2: forget everything learned before TLS. */
	reset_transaction(s);
	s->greeted = 0;
	s->esmtp = 0;
	s->helo[0] = '\0';
}

static void
do_vrfy(struct session *s, const char *arg)
{
	char addr[ADDR_MAX];
	const char *err = NULL;

	if (!mp_core.smtp.vrfy || mp_core.auth.ops == NULL) {
		smtp_reply(s, 252, "2.5.0", "Cannot VRFY user; send mail and see");
		return;
	}
	snprintf(addr, sizeof(addr), "%s", arg[0] == '<' ? arg + 1 : arg);
	addr[strcspn(addr, ">")] = '\0';
	if (mp_call_auth_user_exists(addr, &err) == 1)
		smtp_reply(s, 250, "2.1.5", "<%s>", addr);
	else
		smtp_reply(s, 550, "5.1.1", "User unknown");
}

static void
dispatch(struct session *s, const struct smtp_cmd *cmd)
{
	switch (cmd->verb) {
	case SMTP_EHLO: do_helo(s, cmd->arg, 1); break;
	case SMTP_HELO: do_helo(s, cmd->arg, 0); break;
	case SMTP_MAIL: do_mail(s, cmd->arg); break;
	case SMTP_RCPT: do_rcpt(s, cmd->arg); break;
	case SMTP_DATA: do_data(s, cmd->arg); break;
	case SMTP_BDAT: smtp_do_bdat(s, cmd->arg); break;
	case SMTP_STARTTLS: do_starttls(s, cmd->arg); break;
	case SMTP_AUTH: smtp_do_auth(s, cmd->arg); break;
	case SMTP_RSET:
		reset_transaction(s);
		smtp_reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_NOOP: smtp_reply(s, 250, "2.0.0", "Ok"); break;
	case SMTP_QUIT:
		smtp_reply(s, 221, "2.0.0", "%s closing connection",
		    mp_core.server.hostname);
		s->quit = 1;
		break;
	case SMTP_VRFY: do_vrfy(s, cmd->arg); break;
	case SMTP_EXPN: smtp_reply(s, 502, "5.5.1", "EXPN not available"); break;
	case SMTP_HELP:
		smtp_reply(s, 214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA BDAT "
		    "RSET NOOP QUIT HELP VRFY STARTTLS AUTH; see RFC 5321");
		break;
	default:
		smtp_reply(s, 500, "5.5.2", "Command not recognized");
		break;
	}
}

/* Read and act on one command; 0 to go on, -1 to end the session. */
static int
one_command(struct session *s)
{
	char line[65536 + 2];
	struct smtp_cmd cmd;
	size_t len;
	int r = conn_read_line(&s->c, line,
	    (size_t)mp_core.limits.line_length + 1, &len);

	if (r == CONN_TOO_LONG) {
		smtp_reply(s, 500, "5.5.2", "Line too long (limit %lld octets)",
		    mp_core.limits.line_length);
	} else if (r == CONN_EOF || r == CONN_ERROR) {
		if (r == CONN_ERROR && errno == ETIMEDOUT) {
			smtp_reply(s, 421, "4.4.2", "%s Timeout; closing connection",
			    mp_core.server.hostname);
			mp_log(MP_LOG_INFO, "timeout from [%s]", s->client);
		}
		return -1;
	} else if (memchr(line, '\0', len) != NULL) {
		smtp_reply(s, 500, "5.5.2", "NUL character in command");
	} else {
		smtp_parse_command(line, &cmd);
		mp_metric_smtp_command(line);
		dispatch(s, &cmd);
	}
	if (s->errors >= mp_core.limits.errors) {
		smtp_reply(s, 421, "4.7.0", "%s Too many errors; closing connection",
		    mp_core.server.hostname);
		mp_log(MP_LOG_NOTICE, "too many errors from [%s]", s->client);
		return -1;
	}
	return s->quit ? -1 : 0;
}

void
smtp_session_run(int fd, const struct mp_listen *l)
{
	struct session *s = mp_xcalloc(1, sizeof(*s));
	struct mp_status st;	/* the hooks fill it */

	conn_init(&s->c, fd, (int)mp_core.limits.command_timeout * 1000);
	s->read_timeout_ms = (int)mp_core.limits.command_timeout * 1000;
	s->l = l;
	mp_peer_address(fd, s->client, sizeof(s->client), &s->loopback);
	mp_log(MP_LOG_INFO, "connect from [%s] to %s", s->client, l->label);
	s->txn = mp_txn_open(s);
	if (l->tls == LISTEN_TLS_IMPLICIT &&
	    (mp_core.tls_ctx == NULL || start_tls(s) < 0))
		goto out;
	if (mp_hooks_connect(s->txn, &st) != MP_OK) {
		/* the greeting is the refusal, and the session ends */
		reply_status(s, &st);
		conn_flush(&s->c);
		goto out;
	}
	if (!smtp_greeting_wait(s))	/* talk during the hook still waits */
		goto out;
	smtp_reply(s, 220, NULL, "%s ESMTP merpati", mp_core.server.hostname);
	while (one_command(s) == 0)
		if (conn_pending(&s->c) == 0 && conn_flush(&s->c) < 0)
			break;
	conn_flush(&s->c);
out:
	reset_transaction(s);
	mp_txn_close(s->txn);
	conn_end(&s->c);
	mp_log(MP_LOG_INFO, "disconnect from [%s]", s->client);
	free(s);
}
