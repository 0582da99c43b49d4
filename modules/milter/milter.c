/*
 * modules/milter/milter.c - the milter module: a filter that hands each
 * SMTP session to the configured milters (Sendmail's protocol, version
 * 6, as Postfix speaks it) and carries out what they decide.
 *
 * Each session opens its own connection to every milter at connect
 * (kept in txn_slot; a local submission, which has no connect hook,
 * at its first hook, with MAIL and RCPT caught up from txn_info), and
 * the hook points map onto milter commands:
 *   connect         CONNECT (macros j _ {daemon_name} {client_addr} ...)
 *   helo            HELO
 *   mail_from       MAIL ({auth_authen} {mail_addr} ...)
 *   rcpt_to         RCPT ({rcpt_addr} ...)
 *   end_of_headers  DATA ({i}, the queue id), one HEADER per field, EOH
 *   end_of_data     BODY chunks (64 KiB), BODYEOB; modifications
 *   txn_end         ABORT when a milter is still inside the message
 *   session_end     QUIT
 * Milters run in config order; the first refusal wins. ACCEPT at
 * connect or HELO leaves that milter out for the session, at a later
 * stage for the message. A milter that cannot be reached, times out or
 * breaks the protocol is dropped for the session and its
 * default_action decides (Postfix's milter_default_action): "accept"
 * goes on without it, "tempfail" (451 4.7.1) and "reject" (550 5.7.1)
 * refuse this and every later command of the session that a milter
 * would see. Milters all see the message as received; their changes
 * are applied in order at end of data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter.h"

/* Which part of the session an event belongs to. */
enum scope { SCOPE_SESSION, SCOPE_MESSAGE };

struct event {
	enum scope scope;
	int connect;		/* the connect event: refusals are 554/421 */
	/* Talk to one milter: 0 with its answer, -1 with *error_r. */
	int (*talk)(struct milter_session *s, struct milter_link *l,
	    struct mp_txn *txn, const void *arg, struct milter_answer *a,
	    const char **error_r);
};

static void
status_from(struct mp_status *st, int reply, const char *enhanced,
    const char *text)
{
	mp_status_set(st, reply, enhanced, text);
}

static int
rc_of(int reply)
{
	return reply >= 500 ? MP_PERMFAIL : MP_TEMPFAIL;
}

/* ---- sessions ------------------------------------------------------------ */

static void
session_free(struct milter_session *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		milter_link_close(&s->links[i], 1);
	free(s->buf);
	free(s->chunk);
	free(s);
}

static struct milter_session *
session_new(const struct milter_module *m)
{
	struct milter_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->m = m;
	s->n = m->n;
	s->buf = malloc(MILTER_MAX_PACKET);
	s->chunk = malloc(MILTER_CHUNK);
	if (s->buf == NULL || s->chunk == NULL) {
		session_free(s);
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++) {
		s->links[i].conf = &m->milters[i];
		s->links[i].buf = s->buf;
		s->links[i].fd = -1;
	}
	return s;
}

static int
live(const struct milter_link *l, enum scope scope)
{
	return l->fd >= 0 && !l->dead && !l->session_done &&
	    !(scope == SCOPE_MESSAGE && l->msg_done);
}

static const char *
default_name(enum milter_default d)
{
	return d == MILTER_DEFAULT_ACCEPT ? "accept" :
	    d == MILTER_DEFAULT_REJECT ? "reject" : "tempfail";
}

/*
 * A milter failed: drop it and apply its default action. MP_OK to go
 * on with the others, else the refusal in st. Refusals found at connect
 * or HELO wait for MAIL, as Postfix: the client gets a reply it can
 * act on rather than a closed connection.
 */
static int
link_failed(struct milter_session *s, struct milter_link *l, const char *why,
    enum scope scope, struct mp_status *st)
{
	const struct mp_host *host = s->m->host;
	enum milter_default d = l->conf->default_action;

	host->log(MP_LOG_WARNING, "milter %s (%s): %s; default action %s",
	    l->conf->name, l->conf->socket, why, default_name(d));
	milter_link_close(l, 0);
	l->dead = 1;
	if (d == MILTER_DEFAULT_ACCEPT)
		return MP_OK;
	if (!s->failed) {
		s->failed = 1;
		s->fail_st.struct_size = sizeof(s->fail_st);
		if (d == MILTER_DEFAULT_REJECT)
			status_from(&s->fail_st, 550, "5.7.1", "Command rejected");
		else
			status_from(&s->fail_st, 451, "4.7.1",
			    "Service unavailable - try again later");
	}
	if (scope == SCOPE_SESSION)
		return MP_OK;
	status_from(st, s->fail_st.reply, s->fail_st.enhanced, s->fail_st.text);
	return rc_of(s->fail_st.reply);
}

/* What a verdict means for the event: MP_OK, or a refusal in st. */
static int
take_verdict(struct milter_session *s, struct milter_link *l,
    const struct event *ev, const struct milter_answer *a,
    struct mp_status *st)
{
	const struct mp_host *host = s->m->host;

	switch (a->verdict) {
	case MV_CONTINUE: case MV_SKIP:
		return MP_OK;
	case MV_ACCEPT:
		if (ev->scope == SCOPE_SESSION)
			l->session_done = 1;
		else
			l->msg_done = 1;
		return MP_OK;
	case MV_DISCARD:
		if (ev->scope == SCOPE_SESSION)
			s->discard_session = 1;
		else
			s->discard_msg = 1;
		l->msg_done = 1;
		host->log(MP_LOG_NOTICE, "milter %s: discard", l->conf->name);
		return MP_OK;
	case MV_REJECT:
		if (ev->connect)
			status_from(st, 554, "5.7.1", "Access denied");
		else
			status_from(st, 550, "5.7.1", "Command rejected");
		break;
	case MV_TEMPFAIL:
		if (ev->connect)
			status_from(st, 421, "4.7.1", "Service unavailable - try again later");
		else
			status_from(st, 451, "4.7.1", "Service unavailable - try again later");
		break;
	case MV_REPLY:
		status_from(st, a->code, a->enhanced, a->text);
		break;
	}
	host->log(MP_LOG_INFO, "milter %s: %d %s %s", l->conf->name, st->reply,
	    st->enhanced, st->text);
	return rc_of(st->reply);
}

/* One event at every live milter, in order, until one refuses. */
static int
run_event(struct milter_session *s, struct mp_txn *txn, const struct event *ev,
    const void *arg, struct mp_status *st)
{
	for (size_t i = 0; i < s->n; i++) {
		struct milter_link *l = &s->links[i];
		struct milter_answer a;
		const char *why = "protocol error";
		int rc;
		if (!live(l, ev->scope))
			continue;
		if (ev->talk(s, l, txn, arg, &a, &why) < 0)
			rc = link_failed(s, l, why, ev->scope, st);
		else
			rc = take_verdict(s, l, ev, &a, st);
		if (rc != MP_OK)
			return rc;
	}
	return MP_OK;
}

/* ---- talking ------------------------------------------------------------------ */

/* Macros, a command, and its answer unless the milter sends none (nr). */
static int
step(struct milter_link *l, int stage, const struct milter_macro *m, size_t nm,
    char cmd, const void *data, size_t len, uint32_t nr,
    struct milter_answer *a, const char **error_r)
{
	memset(a, 0, sizeof(*a));
	if (stage >= 0 &&
	    milter_link_macros(l, (enum milter_stage)stage, cmd, m, nm, error_r) < 0)
		return -1;
	if (milter_link_send(l, cmd, data, len, error_r) < 0)
		return -1;
	if (l->protocol & nr)
		return 0;	/* MV_CONTINUE */
	return milter_link_answer(l, l->conf->command_ms, NULL, a, error_r);
}

static int
step_strs(struct milter_link *l, int stage, const struct milter_macro *m,
    size_t nm, char cmd, const char *const *strs, size_t n, uint32_t nr,
    struct milter_answer *a, const char **error_r)
{
	memset(a, 0, sizeof(*a));
	if (milter_link_macros(l, (enum milter_stage)stage, cmd, m, nm, error_r) < 0 ||
	    milter_link_send_strs(l, cmd, strs, n, error_r) < 0)
		return -1;
	if (l->protocol & nr)
		return 0;
	return milter_link_answer(l, l->conf->command_ms, NULL, a, error_r);
}

static const struct mp_txn_info *
info_of(const struct milter_session *s, struct mp_txn *txn)
{
	return s->m->host->txn_info(txn);
}

static int
talk_connect(struct milter_session *s, struct milter_link *l,
    struct mp_txn *txn, const void *arg, struct milter_answer *a,
    const char **error_r)
{
	const struct mp_txn_info *info = info_of(s, txn);
	const char *peer = info && info->conn ? info->conn->peer : NULL;
	char client[300];
	struct milter_pkt p;

	(void)arg;
	memset(a, 0, sizeof(*a));
	if (l->protocol & SMFIP_NOCONNECT)
		return 0;
	snprintf(client, sizeof(client), "unknown [%s]", peer ? peer : "127.0.0.1");
	const struct milter_macro m[] = {
		{ "j", s->m->host->hostname() }, { "_", client },
		{ "{daemon_name}", "merpati" }, { "v", "merpati" },
		{ "{client_addr}", peer }, { "{client_name}", "unknown" },
		{ "{client_ptr}", "unknown" },
	};
	/* the client's name (never looked up here), family, port, address;
	 * built apart from the link's buffer, which step() reuses */
	unsigned char data[600];
	milter_pkt_begin(&p, data, sizeof(data), SMFIC_CONNECT);
	milter_pkt_str(&p, "unknown");
	if (peer == NULL) {
		milter_pkt_byte(&p, 'U');
	} else {
		milter_pkt_byte(&p, strchr(peer, ':') ? '6' : '4');
		milter_pkt_u16(&p, 0);	/* the client's port is not known */
		milter_pkt_str(&p, peer);
	}
	size_t n = milter_pkt_end(&p);
	if (n == 0) {
		*error_r = "client address too long";
		return -1;
	}
	return step(l, MILTER_AT_CONNECT, m, sizeof(m) / sizeof(m[0]),
	    SMFIC_CONNECT, data + 5, n - 5, SMFIP_NR_CONN, a, error_r);
}

static int
talk_helo(struct milter_session *s, struct milter_link *l, struct mp_txn *txn,
    const void *arg, struct milter_answer *a, const char **error_r)
{
	const struct mp_txn_info *info = info_of(s, txn);
	char version[32] = "";
	const char *name = arg;

	memset(a, 0, sizeof(*a));
	if (l->protocol & SMFIP_NOHELO)
		return 0;
	/* tls_desc reads "TLSv1.3 with cipher ...": its first word */
	if (info && info->conn && info->conn->tls && info->conn->tls_desc)
		snprintf(version, sizeof(version), "%.*s",
		    (int)strcspn(info->conn->tls_desc, " "), info->conn->tls_desc);
	const struct milter_macro m[] = {
		{ "{tls_version}", version[0] ? version : NULL },
	};
	return step_strs(l, MILTER_AT_HELO, m, 1, SMFIC_HELO, &name, 1,
	    SMFIP_NR_HELO, a, error_r);
}

static int
send_mail(struct milter_session *s, struct milter_link *l, struct mp_txn *txn,
    const char *sender, struct milter_answer *a, const char **error_r)
{
	const struct mp_txn_info *info = info_of(s, txn);
	char addr[1100];

	memset(a, 0, sizeof(*a));
	l->in_message = 1;
	l->rcpts_sent = 0;
	if (l->protocol & SMFIP_NOMAIL)
		return 0;
	snprintf(addr, sizeof(addr), "<%s>", sender);
	const char *strs[] = { addr };
	const struct milter_macro m[] = {
		{ "{i}", info ? info->queue_id : NULL },
		{ "{auth_authen}", info ? info->auth_user : NULL },
		{ "{mail_addr}", sender },
		{ "{mail_mailer}", "smtp" },
	};
	return step_strs(l, MILTER_AT_MAIL, m, sizeof(m) / sizeof(m[0]),
	    SMFIC_MAIL, strs, 1, SMFIP_NR_MAIL, a, error_r);
}

static int
talk_mail(struct milter_session *s, struct milter_link *l, struct mp_txn *txn,
    const void *arg, struct milter_answer *a, const char **error_r)
{
	return send_mail(s, l, txn, arg, a, error_r);
}

static int
send_rcpt(struct milter_session *s, struct milter_link *l, struct mp_txn *txn,
    const char *rcpt, struct milter_answer *a, const char **error_r)
{
	const struct mp_txn_info *info = info_of(s, txn);
	const char *at = strrchr(rcpt, '@');
	int local = at && s->m->host->is_local_domain(at + 1);
	char addr[1100];

	memset(a, 0, sizeof(*a));
	l->rcpts_sent++;
	if (l->protocol & SMFIP_NORCPT)
		return 0;
	snprintf(addr, sizeof(addr), "<%s>", rcpt);
	const char *strs[] = { addr };
	const struct milter_macro m[] = {
		{ "{i}", info ? info->queue_id : NULL },
		{ "{rcpt_addr}", rcpt },
		{ "{rcpt_host}", at ? at + 1 : NULL },
		{ "{rcpt_mailer}", local ? "local" : "smtp" },
	};
	return step_strs(l, MILTER_AT_RCPT, m, sizeof(m) / sizeof(m[0]),
	    SMFIC_RCPT, strs, 1, SMFIP_NR_RCPT, a, error_r);
}

static int
talk_rcpt(struct milter_session *s, struct milter_link *l, struct mp_txn *txn,
    const void *arg, struct milter_answer *a, const char **error_r)
{
	return send_rcpt(s, l, txn, arg, a, error_r);
}

/* After a talk step: -1 it failed, 1 the milter decided (anything but
 * continue), 0 go on. */
static int
decided(int rc, const struct milter_answer *a)
{
	if (rc < 0)
		return -1;
	return a->verdict != MV_CONTINUE;
}

/* The outcome of a talk function once a step decided or failed. */
static int
stop(int d)
{
	return d < 0 ? -1 : 0;
}

/* A milter that has not seen this message's envelope (a session whose
 * earlier hooks did not run, e.g. local submission) gets it now. */
static int
catch_up(struct milter_session *s, struct milter_link *l, struct mp_txn *txn,
    struct milter_answer *a, const char **error_r)
{
	const struct mp_txn_info *info = info_of(s, txn);

	memset(a, 0, sizeof(*a));
	if (l->in_message || info == NULL || info->sender == NULL)
		return 0;
	int d = decided(send_mail(s, l, txn, info->sender, a, error_r), a);
	for (size_t i = 0; d == 0 && i < info->nrcpt; i++)
		d = decided(send_rcpt(s, l, txn, info->rcpts[i], a, error_r), a);
	return stop(d);
}

/* The header section (arg: its text and length) field by field. */
struct section {
	const char *text;
	size_t len;
};

static int
send_headers(struct milter_link *l, const struct section *sec,
    struct milter_answer *a, const char **error_r)
{
	static const size_t name_size = 256;
	char *name = malloc(name_size), *value = malloc(MILTER_CHUNK);
	size_t pos = 0;
	int rc = 0;

	memset(a, 0, sizeof(*a));
	if (name == NULL || value == NULL) {
		*error_r = "out of memory";
		rc = -1;
	}
	while (rc == 0 && a->verdict == MV_CONTINUE &&
	    milter_header_next(sec->text, sec->len, &pos, name, name_size, value,
	    MILTER_CHUNK)) {
		const char *strs[] = { name, value };
		memset(a, 0, sizeof(*a));
		if (milter_link_send_strs(l, SMFIC_HEADER, strs, 2, error_r) < 0)
			rc = -1;
		else if (!(l->protocol & SMFIP_NR_HDR))
			rc = milter_link_answer(l, l->conf->command_ms, NULL, a, error_r);
	}
	free(name);
	free(value);
	return rc;
}

static int
talk_headers(struct milter_session *s, struct milter_link *l,
    struct mp_txn *txn, const void *arg, struct milter_answer *a,
    const char **error_r)
{
	const struct mp_txn_info *info = info_of(s, txn);
	const struct milter_macro m[] = { { "{i}", info ? info->queue_id : NULL } };

	int d = decided(catch_up(s, l, txn, a, error_r), a);

	if (d == 0 && !(l->protocol & SMFIP_NODATA))
		d = decided(step(l, MILTER_AT_DATA, m, 1, SMFIC_DATA, NULL, 0,
		    SMFIP_NR_DATA, a, error_r), a);
	if (d == 0 && !(l->protocol & SMFIP_NOHDRS))
		d = decided(send_headers(l, arg, a, error_r), a);
	if (d != 0)
		return stop(d);
	if (l->protocol & SMFIP_NOEOH)
		return 0;
	return step(l, MILTER_AT_EOH, m, 1, SMFIC_EOH, NULL, 0, SMFIP_NR_EOH, a,
	    error_r);
}

/* ---- body and end of message ---------------------------------------------- */

/* One body chunk to every milter still reading the body. */
static int
body_chunk(struct milter_session *s, const char *data, size_t len,
    struct mp_status *st)
{
	static const struct event ev = { SCOPE_MESSAGE, 0, NULL };

	for (size_t i = 0; i < s->n; i++) {
		struct milter_link *l = &s->links[i];
		struct milter_answer a = { 0 };
		const char *why = "protocol error";
		int rc = MP_OK;
		if (!live(l, SCOPE_MESSAGE) || s->body_skip[i] ||
		    (l->protocol & SMFIP_NOBODY))
			continue;
		if (milter_link_send(l, SMFIC_BODY, data, len, &why) < 0 ||
		    (!(l->protocol & SMFIP_NR_BODY) &&
		    milter_link_answer(l, l->conf->content_ms, NULL, &a, &why) < 0))
			rc = link_failed(s, l, why, SCOPE_MESSAGE, st);
		else if (a.verdict == MV_SKIP)
			s->body_skip[i] = 1;
		else
			rc = take_verdict(s, l, &ev, &a, st);
		if (rc != MP_OK)
			return rc;
	}
	return MP_OK;
}

static int
any_wants_body(const struct milter_session *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (live(&s->links[i], SCOPE_MESSAGE) && !s->body_skip[i] &&
		    !(s->links[i].protocol & SMFIP_NOBODY))
			return 1;
	return 0;
}

/* The body of msg, in chunks of MILTER_CHUNK, to the milters. */
static int
send_body(struct milter_session *s, struct mp_reader *msg, struct mp_status *st)
{
	struct milter_body_cut cut = { 0 };
	char in[16384];	/* sessions run on 256 KiB stacks */
	size_t have = 0;
	ssize_t n;
	int rc = MP_OK;

	while (rc == MP_OK && any_wants_body(s) &&
	    (n = msg->read(msg, in, sizeof(in) - 1)) > 0) {
		/* cut output is at most 2n octets: flush before it could overflow */
		if (have + 2 * (size_t)n > MILTER_CHUNK) {
			rc = body_chunk(s, s->chunk, have, st);
			have = 0;
		}
		have += milter_body_cut(&cut, in, (size_t)n, s->chunk + have);
	}
	if (rc == MP_OK && have > 0 && any_wants_body(s))
		rc = body_chunk(s, s->chunk, have, st);
	return rc;
}

static int
end_of_message(struct milter_session *s, struct milter_link *l,
    struct mp_txn *txn, const char *queue_id, struct milter_answer *a,
    const char **error_r)
{
	const struct milter_macro m[] = { { "{i}", queue_id } };
	struct milter_apply ap = { s->m->host, txn, l->conf->name, 0, NULL, 0 };
	struct milter_mods mods = { milter_apply_mod, &ap };
	int rc;

	memset(a, 0, sizeof(*a));
	if (milter_link_macros(l, MILTER_AT_EOM, SMFIC_BODYEOB, m, 1, error_r) < 0 ||
	    milter_link_send(l, SMFIC_BODYEOB, NULL, 0, error_r) < 0)
		return -1;
	rc = milter_link_answer(l, l->conf->content_ms, &mods, a, error_r);
	milter_apply_finish(&ap, rc == 0 && (a->verdict == MV_CONTINUE ||
	    a->verdict == MV_ACCEPT));
	if (rc == 0)
		l->in_message = 0;	/* the milter is back before MAIL */
	return rc;
}

/* ---- the hooks -------------------------------------------------------------- */

static int
host_ready(const struct mp_host *host)
{
	return MP_HOST_HAS(txn_discard) && host->txn_info && host->txn_slot &&
	    host->txn_header_insert && host->txn_header_change &&
	    host->txn_sender_set && host->txn_rcpt_add && host->txn_rcpt_delete &&
	    host->txn_body_replace && host->txn_hold && host->txn_discard;
}

static const struct event connect_event = { SCOPE_SESSION, 1, talk_connect };
static const struct event helo_event = { SCOPE_SESSION, 0, talk_helo };
static const struct event mail_event = { SCOPE_MESSAGE, 0, talk_mail };
static const struct event rcpt_event = { SCOPE_MESSAGE, 0, talk_rcpt };
static const struct event headers_event = { SCOPE_MESSAGE, 0, talk_headers };

/* Open every milter and run the connect event. */
static int
session_start(struct milter_session *s, struct mp_txn *txn, struct mp_status *st)
{
	s->connected = 1;
	for (size_t i = 0; i < s->n; i++) {
		const char *why = "cannot connect";
		if (milter_link_open(&s->links[i], &why) < 0)
			link_failed(s, &s->links[i], why, SCOPE_SESSION, st);
	}
	return run_event(s, txn, &connect_event, NULL, st);
}

/* This session's state, made (and connected) on first use; NULL when
 * out of memory (st says so). */
static struct milter_session *
session_of(const struct milter_module *m, struct mp_txn *txn,
    struct mp_status *st, int *rc_r)
{
	void **slot = m->host->txn_slot(txn);

	*rc_r = MP_OK;
	if (slot == NULL) {
		status_from(st, 451, "4.3.0", "milter: no session slot");
		*rc_r = MP_TEMPFAIL;
		return NULL;
	}
	if (*slot == NULL) {
		if ((*slot = session_new(m)) == NULL) {
			status_from(st, 451, "4.3.0", "milter: out of memory");
			*rc_r = MP_TEMPFAIL;
			return NULL;
		}
		*rc_r = session_start(*slot, txn, st);
	}
	return *slot;
}

/* The refusal a failed milter left for every later command. */
static int
session_failed(const struct milter_session *s, struct mp_status *st)
{
	if (!s->failed)
		return MP_OK;
	status_from(st, s->fail_st.reply, s->fail_st.enhanced, s->fail_st.text);
	return rc_of(s->fail_st.reply);
}

static int
milter_connect(void *ctx, struct mp_txn *txn, struct mp_status *st)
{
	int rc;

	session_of(ctx, txn, st, &rc);
	return rc;
}

static int
milter_helo(void *ctx, struct mp_txn *txn, const char *name,
    struct mp_status *st)
{
	int rc;
	struct milter_session *s = session_of(ctx, txn, st, &rc);

	if (s == NULL || rc != MP_OK)
		return rc;
	return run_event(s, txn, &helo_event, name, st);
}

static int
milter_mail_from(void *ctx, struct mp_txn *txn, const char *sender,
    struct mp_status *st)
{
	int rc;
	struct milter_session *s = session_of(ctx, txn, st, &rc);

	if (s == NULL || rc != MP_OK)
		return rc;
	if ((rc = session_failed(s, st)) != MP_OK)
		return rc;
	return run_event(s, txn, &mail_event, sender, st);
}

static int
milter_rcpt_to(void *ctx, struct mp_txn *txn, const char *rcpt,
    struct mp_status *st)
{
	int rc;
	struct milter_session *s = session_of(ctx, txn, st, &rc);

	if (s == NULL || rc != MP_OK)
		return rc;
	if ((rc = session_failed(s, st)) != MP_OK)
		return rc;
	return run_event(s, txn, &rcpt_event, rcpt, st);
}

/* How much of the header section is read for milters; fields past it
 * are not shown to them (the message itself is not cut). */
#define MILTER_MAX_SECTION (1024 * 1024)

static int
milter_end_of_headers(void *ctx, struct mp_txn *txn, struct mp_reader *headers,
    struct mp_status *st)
{
	struct section sec = { 0 };
	char *text;
	ssize_t n;
	int rc;
	struct milter_session *s = session_of(ctx, txn, st, &rc);

	if (s == NULL || rc != MP_OK)
		return rc;
	if ((rc = session_failed(s, st)) != MP_OK)
		return rc;
	if ((text = malloc(MILTER_MAX_SECTION)) == NULL) {
		status_from(st, 451, "4.3.0", "milter: out of memory");
		return MP_TEMPFAIL;
	}
	while (sec.len < MILTER_MAX_SECTION && (n = headers->read(headers,
	    text + sec.len, MILTER_MAX_SECTION - sec.len)) > 0)
		sec.len += (size_t)n;
	sec.text = text;
	rc = run_event(s, txn, &headers_event, &sec, st);
	free(text);
	return rc;
}

static int
milter_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg,
    int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *st)
{
	struct milter_module *m = ctx;
	int rc;
	struct milter_session *s;

	(void)add_header;	/* the txn_* calls do more */
	if ((s = session_of(m, txn, st, &rc)) == NULL || rc != MP_OK)
		return rc;
	if ((rc = session_failed(s, st)) != MP_OK ||
	    (rc = send_body(s, msg, st)) != MP_OK)
		return rc;
	for (size_t i = 0; i < s->n; i++) {
		struct milter_link *l = &s->links[i];
		static const struct event ev = { SCOPE_MESSAGE, 0, NULL };
		struct milter_answer a;
		const char *why = "protocol error";
		if (!live(l, SCOPE_MESSAGE))
			continue;
		if (end_of_message(s, l, txn, env->queue_id, &a, &why) < 0)
			rc = link_failed(s, l, why, SCOPE_MESSAGE, st);
		else
			rc = take_verdict(s, l, &ev, &a, st);
		if (rc != MP_OK)
			return rc;
	}
	if (s->discard_msg || s->discard_session)
		m->host->txn_discard(txn);
	return MP_OK;
}

static void
milter_txn_end(void *ctx, struct mp_txn *txn)
{
	struct milter_module *m = ctx;
	void **slot = m->host->txn_slot(txn);
	struct milter_session *s = slot ? *slot : NULL;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct milter_link *l = &s->links[i];
		const char *why;
		if (l->fd >= 0 && !l->dead && l->in_message &&
		    milter_link_send(l, SMFIC_ABORT, NULL, 0, &why) < 0)
			link_failed(s, l, why, SCOPE_SESSION, &s->fail_st);
		l->in_message = 0;
		l->msg_done = 0;
		l->rcpts_sent = 0;
		s->body_skip[i] = 0;
	}
	s->discard_msg = 0;
}

static void
milter_session_end(void *ctx, struct mp_txn *txn)
{
	struct milter_module *m = ctx;
	void **slot = m->host->txn_slot(txn);

	if (slot == NULL)
		return;
	session_free(*slot);
	*slot = NULL;
}

/* ---- the module -------------------------------------------------------------- */

static void
milter_fini(void *ctx)
{
	struct milter_module *m = ctx;

	free(m->milters);
	free(m);
}

static int
milter_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct milter_module *m;

	if (!host_ready(host)) {
		*error_r = "modules.milter: this merpatid lacks the ABI 2.1 filter hooks";
		return MP_ERROR;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		*error_r = "modules.milter: out of memory";
		return MP_ERROR;
	}
	m->host = host;
	if (milter_config(host, conf, m, error_r) != MP_OK) {
		milter_fini(m);
		return MP_ERROR;
	}
	*ctx_r = m;
	return MP_OK;
}

static const struct mp_filter_ops milter_filter_ops = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = milter_end_of_data,
	.connect = milter_connect,
	.helo = milter_helo,
	.mail_from = milter_mail_from,
	.rcpt_to = milter_rcpt_to,
	.end_of_headers = milter_end_of_headers,
	.txn_end = milter_txn_end,
	.session_end = milter_session_end,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "milter",
	.kinds = MP_KIND_FILTER,
	.init = milter_init,
	.fini = milter_fini,
	.filter = &milter_filter_ops,
};
