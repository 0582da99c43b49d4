/*
 * tests/modules/hooktest.c - a filter for tests/e2e/test_filter_hooks.py
 * whose every decision comes from its settings: refuse at a named hook
 * (or one recipient), insert/change/delete headers, change the sender,
 * add or drop a recipient, replace the body, hold, discard, set and read
 * notes. Each hook call appends one line to the file `log` names, with
 * what txn_info said, so a test can check order and contents. Built
 * twice (hooktest2.c includes this with another name) to test the order
 * of two filters.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <merpati/merpati.h>

#ifndef HOOKTEST_NAME
#define HOOKTEST_NAME "hooktest"
#endif

struct ht {
	const char *log, *refuse_at, *refuse_enhanced, *refuse_text;
	long long refuse_code;
	const char *refuse_rcpt, *insert_header, *legacy_header, *bq_header;
	long long insert_index;
	const char *change_header, *delete_header, *sender, *rcpt_add,
	    *rcpt_delete, *body, *hold, *hold_at, *note_set, *note_at,
	    *note_read, *look_for;
	int discard, checks;
};

#define S(n, def) MP_OPT(#n, MP_OPT_STRING, offsetof(struct ht, n), def, 0, 0)
static const struct mp_option ht_options[] = {
	S(log, ""), S(refuse_at, ""), S(refuse_enhanced, "5.7.1"),
	S(refuse_text, "refused by " HOOKTEST_NAME),
	MP_OPT("refuse_code", MP_OPT_INT, offsetof(struct ht, refuse_code), "550",
	    400, 599),
	S(refuse_rcpt, ""), S(insert_header, ""), S(legacy_header, ""),
	S(bq_header, ""),
	MP_OPT("insert_index", MP_OPT_INT, offsetof(struct ht, insert_index), "0",
	    0, 1000),
	S(change_header, ""), S(delete_header, ""), S(sender, ""), S(rcpt_add, ""),
	S(rcpt_delete, ""), S(body, ""), S(hold, ""), S(hold_at, "end_of_data"),
	S(note_set, ""), S(note_at, "connect"), S(note_read, ""), S(look_for, ""),
	MP_OPT("discard", MP_OPT_BOOL, offsetof(struct ht, discard), "false", 0, 0),
	MP_OPT("checks", MP_OPT_BOOL, offsetof(struct ht, checks), "false", 0, 0),
	MP_OPT_END
};

static const struct mp_host *host;

static int
ht_init(const struct mp_host *h, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct ht *c = h->alloc(sizeof(*c));

	host = h;
	if (c == NULL || h->conf_options(conf, ht_options, c, error_r) != MP_OK) {
		h->free(c);
		return MP_ERROR;
	}
	if (!MP_HOST_HAS(txn_discard)) {
		*error_r = "the host has no txn_* calls (ABI 2.1)";
		h->free(c);
		return MP_ERROR;
	}
	*ctx_r = c;
	return MP_OK;
}

static void
ht_fini(void *ctx)
{
	host->free(ctx);
}

/* Append one line to the log file (one write: lines never mix). */
static void
record(const struct ht *c, const char *fmt, ...) MP_PRINTF(2, 3);
static void
record(const struct ht *c, const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int fd, n;

	if (!c->log[0])
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if ((fd = open(c->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return;
	if (write(fd, line, (size_t)n) < 0)
		n = 0;
	close(fd);
}

/* What our slot holds for a session: a number telling sessions apart
 * in the log, and how many hooks we saw so far. */
struct session_state {
	unsigned long sid;
	long hooks;
};

static _Atomic unsigned long next_sid;

static struct session_state *
session_of(struct mp_txn *txn)
{
	void **slot = host->txn_slot(txn);
	struct session_state *ss;

	if (slot == NULL)
		return NULL;
	if (*slot == NULL && (ss = calloc(1, sizeof(*ss))) != NULL) {
		ss->sid = ++next_sid;
		*slot = ss;
	}
	return *slot;
}

static void
note_hook(const struct ht *c, struct mp_txn *txn, const char *hook)
{
	const struct mp_txn_info *i = host->txn_info(txn);
	char rcpts[1024] = "";
	const char *note = c->note_read[0] ? host->txn_note(txn, c->note_read) : NULL;
	struct session_state *ss = session_of(txn);

	for (size_t k = 0; i && k < i->nrcpt; k++) {
		if (k)
			strncat(rcpts, ",", sizeof(rcpts) - strlen(rcpts) - 1);
		strncat(rcpts, i->rcpts[k], sizeof(rcpts) - strlen(rcpts) - 1);
	}
	if (i == NULL) {
		record(c, "%s %s noinfo", HOOKTEST_NAME, hook);
		return;
	}
	record(c, "%s %s peer=%s helo=%s sender=%s rcpts=%s qid=%s auth=%s sub=%d note=%s slot=%ld sid=%lu",
	    HOOKTEST_NAME, hook, i->conn ? i->conn->peer : "-",
	    i->helo ? i->helo : "-", i->sender ? i->sender : "-", rcpts,
	    i->queue_id ? "yes" : "-", i->auth_user ? i->auth_user : "-",
	    i->submission, note ? note : "-", ss ? ++ss->hooks : -1L,
	    ss ? ss->sid : 0UL);
}

/* A refusal when refuse_at names this hook (MP_OK otherwise). */
static int
refusal(const struct ht *c, const char *hook, struct mp_status *st)
{
	if (strcmp(c->refuse_at, hook) != 0)
		return MP_OK;
	mp_status_set(st, (int)c->refuse_code, c->refuse_enhanced, c->refuse_text);
	return c->refuse_code >= 500 ? MP_PERMFAIL : MP_TEMPFAIL;
}

static void
maybe_note(const struct ht *c, struct mp_txn *txn, const char *hook)
{
	char name[128];
	const char *eq = strchr(c->note_set, '=');

	if (eq == NULL || strcmp(c->note_at, hook) != 0)
		return;
	snprintf(name, sizeof(name), "%.*s", (int)(eq - c->note_set), c->note_set);
	record(c, "%s note_set %s rc=%d", HOOKTEST_NAME, name,
	    host->txn_note_set(txn, name, eq + 1));
}

static void
maybe_hold(const struct ht *c, struct mp_txn *txn, const char *hook)
{
	if (c->hold[0] && strcmp(c->hold_at, hook) == 0)
		record(c, "%s hold rc=%d", HOOKTEST_NAME, host->txn_hold(txn, c->hold));
}

/* The calls a hook may not make, and malformed ones: each must be
 * MP_ERROR (recorded as "checks ... ok" or "... BAD"). */
static void
check_errors(const struct ht *c, struct mp_txn *txn, const char *hook, int headers)
{
	int bad = 0;

	if (!headers) {
		bad |= host->txn_header_insert(txn, 0, "X-A", "v") != MP_ERROR;
		bad |= host->txn_hold(txn, "no") != MP_ERROR;
		bad |= host->txn_discard(txn) != MP_ERROR;
		bad |= host->txn_sender_set(txn, "a@b.test") != MP_ERROR;
	} else {
		bad |= host->txn_header_insert(txn, 0, "X A", "v") != MP_ERROR;
		bad |= host->txn_header_insert(txn, 0, "X:A", "v") != MP_ERROR;
		bad |= host->txn_header_insert(txn, 0, "", "v") != MP_ERROR;
		bad |= host->txn_header_insert(txn, 0, "X-A", "a\nb") != MP_ERROR;
		bad |= host->txn_header_insert(txn, 0, "X-A", "a\rb") != MP_ERROR;
		bad |= host->txn_header_insert(txn, 0, "X-A", "a\r\nb") != MP_ERROR;
		bad |= host->txn_header_change(txn, "X-None-Such", 1, "v") != MP_DECLINED;
		bad |= host->txn_rcpt_add(txn, "no at sign") != MP_ERROR;
		bad |= host->txn_rcpt_delete(txn, "nobody@nowhere.test") != MP_DECLINED;
	}
	record(c, "%s checks %s %s", HOOKTEST_NAME, hook, bad ? "BAD" : "ok");
}

static int
ht_connect(void *ctx, struct mp_txn *txn, struct mp_status *st)
{
	const struct ht *c = ctx;

	note_hook(c, txn, "connect");
	maybe_note(c, txn, "connect");
	if (c->checks)
		check_errors(c, txn, "connect", 0);
	return refusal(c, "connect", st);
}

static int
ht_helo(void *ctx, struct mp_txn *txn, const char *name, struct mp_status *st)
{
	const struct ht *c = ctx;

	note_hook(c, txn, "helo");
	record(c, "%s helo_name %s", HOOKTEST_NAME, name);
	maybe_note(c, txn, "helo");
	return refusal(c, "helo", st);
}

static int
ht_mail_from(void *ctx, struct mp_txn *txn, const char *sender,
    struct mp_status *st)
{
	const struct ht *c = ctx;

	note_hook(c, txn, "mail_from");
	maybe_note(c, txn, "mail_from");
	if (c->checks)
		check_errors(c, txn, "mail_from", 0);
	return refusal(c, "mail_from", st);
}

static int
ht_rcpt_to(void *ctx, struct mp_txn *txn, const char *rcpt,
    struct mp_status *st)
{
	const struct ht *c = ctx;

	note_hook(c, txn, "rcpt_to");
	record(c, "%s rcpt_arg %s", HOOKTEST_NAME, rcpt);
	if (c->refuse_rcpt[0] && strcmp(c->refuse_rcpt, rcpt) == 0) {
		mp_status_set(st, (int)c->refuse_code, c->refuse_enhanced,
		    c->refuse_text);
		return c->refuse_code >= 500 ? MP_PERMFAIL : MP_TEMPFAIL;
	}
	return refusal(c, "rcpt_to", st);
}

/* 1 when the message read through r contains text. */
static int
reader_has(struct mp_reader *r, const char *text)
{
	size_t cap = 1024 * 1024, got = 0;
	char *buf = malloc(cap + 1);
	ssize_t n;
	int found;

	if (buf == NULL)
		return -1;
	while (got < cap && (n = r->read(r, buf + got, cap - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	found = strstr(buf, text) != NULL;
	free(buf);
	return found;
}

static int
ht_end_of_headers(void *ctx, struct mp_txn *txn, struct mp_reader *headers,
    struct mp_status *st)
{
	const struct ht *c = ctx;

	note_hook(c, txn, "end_of_headers");
	if (c->look_for[0])
		record(c, "%s end_of_headers found=%d", HOOKTEST_NAME,
		    reader_has(headers, c->look_for));
	maybe_note(c, txn, "end_of_headers");
	maybe_hold(c, txn, "end_of_headers");
	return refusal(c, "end_of_headers", st);
}

/* "Name: value" split at the first ": " into name (a copy) and value. */
static const char *
split_field(const char *field, char *name, size_t size)
{
	const char *colon = strstr(field, ": ");

	if (colon == NULL)
		return NULL;
	snprintf(name, size, "%.*s", (int)(colon - field), field);
	return colon + 2;
}

struct body_reader {
	const char *p;
	size_t len, pos;
};

static ssize_t
body_read(struct mp_reader *r, void *buf, size_t len)
{
	struct body_reader *b = r->priv;
	size_t k = b->len - b->pos < len ? b->len - b->pos : len;

	memcpy(buf, b->p + b->pos, k);
	b->pos += k;
	return (ssize_t)k;
}

/* body with each "\n" as CRLF. */
static int
replace_body(struct mp_txn *txn, const char *body)
{
	char text[4096];
	size_t o = 0;
	struct body_reader b;
	struct mp_reader r = { sizeof(r), body_read, -1, &b };

	for (size_t i = 0; body[i] && o + 2 < sizeof(text); i++) {
		if (body[i] == '\n')
			text[o++] = '\r';
		text[o++] = body[i];
	}
	b.p = text;
	b.len = o;
	b.pos = 0;
	return host->txn_body_replace(txn, &r);
}

static void
edit_headers(const struct ht *c, struct mp_txn *txn,
    int (*add_header)(struct mp_txn *, const char *, const char *))
{
	char name[256];
	const char *v;

	if ((v = split_field(c->insert_header, name, sizeof(name))) != NULL)
		record(c, "%s insert rc=%d", HOOKTEST_NAME,
		    host->txn_header_insert(txn, (size_t)c->insert_index, name, v));
	if ((v = split_field(c->legacy_header, name, sizeof(name))) != NULL)
		record(c, "%s legacy rc=%d", HOOKTEST_NAME, add_header(txn, name, v));
	if ((v = split_field(c->change_header, name, sizeof(name))) != NULL)
		record(c, "%s change rc=%d", HOOKTEST_NAME,
		    host->txn_header_change(txn, name, 1, v));
	if (c->delete_header[0])
		record(c, "%s delete rc=%d", HOOKTEST_NAME,
		    host->txn_header_change(txn, c->delete_header, 1, NULL));
}

static void
edit_envelope(const struct ht *c, struct mp_txn *txn)
{
	if (c->sender[0])
		record(c, "%s sender rc=%d", HOOKTEST_NAME,
		    host->txn_sender_set(txn, strcmp(c->sender, "<>") ? c->sender : ""));
	if (c->rcpt_add[0])
		record(c, "%s rcpt_add rc=%d", HOOKTEST_NAME,
		    host->txn_rcpt_add(txn, c->rcpt_add));
	if (c->rcpt_delete[0])
		record(c, "%s rcpt_delete rc=%d", HOOKTEST_NAME,
		    host->txn_rcpt_delete(txn, c->rcpt_delete));
	if (c->body[0])
		record(c, "%s body rc=%d", HOOKTEST_NAME, replace_body(txn, c->body));
}

static int
ht_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg,
    int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *st)
{
	const struct ht *c = ctx;

	note_hook(c, txn, "end_of_data");
	record(c, "%s env sender=%s nrcpt=%zu", HOOKTEST_NAME, env->sender,
	    env->nrcpt);
	if (c->look_for[0])
		record(c, "%s end_of_data found=%d", HOOKTEST_NAME,
		    reader_has(msg, c->look_for));
	if (c->checks)
		check_errors(c, txn, "end_of_data", 1);
	maybe_note(c, txn, "end_of_data");
	edit_headers(c, txn, add_header);
	edit_envelope(c, txn);
	maybe_hold(c, txn, "end_of_data");
	if (c->discard)
		record(c, "%s discard rc=%d", HOOKTEST_NAME, host->txn_discard(txn));
	return refusal(c, "end_of_data", st);
}

static int
ht_before_queue(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, struct mp_status *st)
{
	const struct ht *c = ctx;
	char name[256];
	const char *v;

	note_hook(c, txn, "before_queue");
	if (c->look_for[0])
		record(c, "%s before_queue found=%d", HOOKTEST_NAME,
		    reader_has(msg, c->look_for));
	if (c->checks)
		record(c, "%s checks before_queue %s", HOOKTEST_NAME,
		    host->txn_sender_set(txn, "x@y.test") == MP_ERROR ? "ok" : "BAD");
	if ((v = split_field(c->bq_header, name, sizeof(name))) != NULL)
		record(c, "%s bq_insert rc=%d", HOOKTEST_NAME,
		    host->txn_header_insert(txn, 0, name, v));
	maybe_hold(c, txn, "before_queue");
	(void)env;
	return refusal(c, "before_queue", st);
}

static void
ht_txn_end(void *ctx, struct mp_txn *txn)
{
	note_hook(ctx, txn, "txn_end");
}

static void
ht_session_end(void *ctx, struct mp_txn *txn)
{
	void **slot = host->txn_slot(txn);

	note_hook(ctx, txn, "session_end");
	if (slot) {
		free(*slot);
		*slot = NULL;
	}
}

static const struct mp_filter_ops ht_filter = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = ht_end_of_data,
	.connect = ht_connect,
	.helo = ht_helo,
	.mail_from = ht_mail_from,
	.rcpt_to = ht_rcpt_to,
	.end_of_headers = ht_end_of_headers,
	.before_queue = ht_before_queue,
	.txn_end = ht_txn_end,
	.session_end = ht_session_end,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = HOOKTEST_NAME,
	.kinds = MP_KIND_FILTER,
	.init = ht_init,
	.fini = ht_fini,
	.filter = &ht_filter,
};
