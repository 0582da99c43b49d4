/*
 * core/filter_hooks.c - the filter hook points, host side (see
 * filter_hooks.h and include/merpati/filter.h).
 *
 * A txn lives as long as its session. It knows which hook is running
 * and for which module (txn_slot is per module; each txn_* call checks
 * it is allowed at that hook), the notes filters leave each other, and
 * for the message being received its header section as a field list
 * (filter_headers.c), the headers inserted at the top, a replacement
 * body and the hold/discard decision. Filters read the message through
 * a view that serves all of that over the queue writer's bytes, so each
 * sees what the filters before it left; the message is written anew
 * only once, after before_queue, and only when more than top headers
 * changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "filter_headers.h"
#include "filter_hooks.h"
#include "log.h"
#include "modcall.h"
#include "settings.h"
#include "smtp_session.h"
#include "util.h"

enum hook {
	HOOK_NONE, HOOK_CONNECT, HOOK_HELO, HOOK_MAIL_FROM, HOOK_RCPT_TO,
	HOOK_END_OF_HEADERS, HOOK_END_OF_DATA, HOOK_BEFORE_QUEUE, HOOK_END
};
#define AT(h) (1u << (h))
/* Where each txn_* call is allowed (module.h). */
#define HEADER_HOOKS (AT(HOOK_END_OF_HEADERS) | AT(HOOK_END_OF_DATA) | \
	AT(HOOK_BEFORE_QUEUE))
#define ENVELOPE_HOOKS AT(HOOK_END_OF_DATA)
#define ANY_HOOK (~AT(HOOK_NONE))

#define MAX_NOTES 64
#define MAX_NOTE_NAME 64
#define MAX_NOTE_VALUE 4096

struct note {
	char *name, *value;
	int session;	/* set at connect or HELO: lasts the session */
};

struct mp_txn {
	struct session *s;
	struct mp_conn_info conn;
	struct mp_txn_info info;
	enum hook hook;		/* the hook running now */
	size_t module;		/* its module's index in mp_core.modules */
	void **slots;		/* one per loaded module */
	struct note notes[MAX_NOTES];
	size_t nnotes;
	int open;		/* a transaction began (MAIL FROM hooks ran) */
	/* the message being received */
	struct mp_qwriter **wp;
	char id[MP_QID_SIZE];
	struct mp_hdrs top;	/* inserted at the top, not yet split */
	struct mp_hdrs hdrs;	/* the section, once split from the writer */
	int hdrs_ok;		/* hdrs parsed (within MP_HDRS_MAX_BYTES) */
	int split;		/* headers served from hdrs, not the writer */
	size_t hdr_len;		/* the section's bytes in the writer */
	int blank;		/* it ends with an empty line */
	int body_fd;		/* a replacement body, or -1 */
	off_t body_len;
	int env_changed, held, discarded;
	char hold_reason[200];
};

int
mp_hooks_any(void)
{
	for (size_t i = 0; i < mp_core.modules.n; i++)
		if (mp_core.modules.v[i].mod->kinds & MP_KIND_FILTER)
			return 1;
	return 0;
}

struct mp_txn *
mp_txn_open(struct session *s)
{
	struct mp_txn *t = mp_xcalloc(1, sizeof(*t));

	t->s = s;
	t->body_fd = -1;
	t->slots = mp_xcalloc(mp_core.modules.n + 1, sizeof(void *));
	t->info.struct_size = sizeof(t->info);
	t->conn.struct_size = sizeof(t->conn);
	return t;
}

/* txn_info as the hook about to run sees it. */
static void
refresh_info(struct mp_txn *t)
{
	struct session *s = t->s;
	struct mp_txn_info *i = &t->info;

	if (s->l == NULL) {	/* local submission: no connection */
		memset(i, 0, sizeof(*i));
		i->struct_size = sizeof(*i);
		i->auth_user = s->auth_user;
		i->sender = s->sender;
		i->rcpts = (const char *const *)s->rcpts;
		i->nrcpt = s->nrcpt;
		i->queue_id = t->id[0] ? t->id : NULL;
		i->submission = 1;
		return;
	}
	t->conn.peer = s->client;
	t->conn.loopback = s->loopback;
	t->conn.tls = s->tls_info[0] != '\0';
	t->conn.tls_desc = s->tls_info;
	t->conn.starttls = s->l->tls == LISTEN_TLS_STARTTLS;
	t->conn.listener = s->l->label;
	i->conn = &t->conn;
	i->helo = s->helo[0] ? s->helo : NULL;
	i->auth_user = s->auth_user[0] ? s->auth_user : NULL;
	i->sender = t->open ? s->sender : NULL;
	i->rcpts = (const char *const *)s->rcpts;
	i->nrcpt = s->nrcpt;
	i->queue_id = t->id[0] ? t->id : NULL;
	i->submission = s->auth_user[0] != '\0';
}

static int
is_filter(size_t i)
{
	return (mp_core.modules.v[i].mod->kinds & MP_KIND_FILTER) != 0;
}

static const char *const hook_names[] = {
	"", "connect", "HELO", "MAIL FROM", "RCPT TO", "end of headers",
	"end of data", "before queue", "txn end",
};

/* The hook's call for module i; MP_OK, MP_TEMPFAIL or MP_PERMFAIL. */
typedef int (*hook_call)(struct mp_txn *t, const struct mp_loaded *f,
    const void *arg, struct mp_status *st);

/* Every filter in config order until one refuses; the refusal logged. */
static int
run_hook(struct mp_txn *t, enum hook h, hook_call call, const void *arg,
    struct mp_status *st)
{
	for (size_t i = 0; i < mp_core.modules.n; i++) {
		const struct mp_loaded *f = &mp_core.modules.v[i];
		int rc;
		if (!is_filter(i))
			continue;
		refresh_info(t);
		t->hook = h;
		t->module = i;
		rc = call(t, f, arg, st);
		t->hook = HOOK_NONE;
		if (rc == MP_OK)
			continue;
		mp_log(MP_LOG_NOTICE, "%s%s%s from %s%s%s by filter %s at %s: %d %s %s",
		    t->id[0] ? t->id : "", t->id[0] ? ": " : "",
		    rc == MP_TEMPFAIL ? "deferred" : "rejected",
		    t->s->l ? "[" : "local user ", t->s->l ? t->s->client : t->s->auth_user,
		    t->s->l ? "]" : "", f->name, hook_names[h], st->reply, st->enhanced,
		    st->text);
		return rc;
	}
	return MP_OK;
}

static int
call_connect(struct mp_txn *t, const struct mp_loaded *f, const void *arg,
    struct mp_status *st)
{
	(void)arg;
	return mp_call_filter_connect(f, t, st);
}

int
mp_hooks_connect(struct mp_txn *t, struct mp_status *st)
{
	int rc = run_hook(t, HOOK_CONNECT, call_connect, NULL, st);

	/* RFC 5321 3.1: a refusing server greets with 554 (or 421) */
	if (rc == MP_PERMFAIL)
		st->reply = 554;
	else if (rc == MP_TEMPFAIL)
		st->reply = 421;
	return rc;
}

static int
call_helo(struct mp_txn *t, const struct mp_loaded *f, const void *arg,
    struct mp_status *st)
{
	return mp_call_filter_helo(f, t, arg, st);
}

int
mp_hooks_helo(struct mp_txn *t, const char *name, struct mp_status *st)
{
	return run_hook(t, HOOK_HELO, call_helo, name, st);
}

static int
call_mail_from(struct mp_txn *t, const struct mp_loaded *f, const void *arg,
    struct mp_status *st)
{
	return mp_call_filter_mail_from(f, t, arg, st);
}

int
mp_hooks_mail_from(struct mp_txn *t, struct mp_status *st)
{
	t->open = 1;
	return run_hook(t, HOOK_MAIL_FROM, call_mail_from, t->s->sender, st);
}

static int
call_rcpt_to(struct mp_txn *t, const struct mp_loaded *f, const void *arg,
    struct mp_status *st)
{
	return mp_call_filter_rcpt_to(f, t, arg, st);
}

int
mp_hooks_rcpt_to(struct mp_txn *t, const char *rcpt, struct mp_status *st)
{
	return run_hook(t, HOOK_RCPT_TO, call_rcpt_to, rcpt, st);
}

/* ---- notes -------------------------------------------------------------- */

static void
drop_note(struct mp_txn *t, size_t i)
{
	free(t->notes[i].name);
	free(t->notes[i].value);
	t->notes[i] = t->notes[--t->nnotes];
}

static struct note *
find_note(struct mp_txn *t, const char *name)
{
	for (size_t i = 0; i < t->nnotes; i++)
		if (strcmp(t->notes[i].name, name) == 0)
			return &t->notes[i];
	return NULL;
}

/* ---- the message ---------------------------------------------------------- */

static void
message_reset(struct mp_txn *t)
{
	mp_hdrs_free(&t->top);
	mp_hdrs_free(&t->hdrs);
	if (t->body_fd >= 0)
		close(t->body_fd);
	t->body_fd = -1;
	t->body_len = 0;
	t->wp = NULL;
	t->id[0] = '\0';
	t->hdrs_ok = t->split = t->blank = 0;
	t->hdr_len = 0;
	t->env_changed = t->held = t->discarded = 0;
	t->hold_reason[0] = '\0';
}

void
mp_hooks_txn_end(struct mp_txn *t)
{
	if (t == NULL || !t->open)
		return;
	for (size_t i = 0; i < mp_core.modules.n; i++) {
		if (!is_filter(i))
			continue;
		refresh_info(t);
		t->hook = HOOK_END;
		t->module = i;
		mp_call_filter_txn_end(&mp_core.modules.v[i], t);
		t->hook = HOOK_NONE;
	}
	t->open = 0;
	for (size_t i = t->nnotes; i-- > 0;)
		if (!t->notes[i].session)
			drop_note(t, i);
	message_reset(t);
}

void
mp_txn_close(struct mp_txn *t)
{
	if (t == NULL)
		return;
	mp_hooks_txn_end(t);
	for (size_t i = 0; i < mp_core.modules.n; i++) {
		if (!is_filter(i))
			continue;
		refresh_info(t);
		t->hook = HOOK_END;
		t->module = i;
		mp_call_filter_session_end(&mp_core.modules.v[i], t);
		t->hook = HOOK_NONE;
	}
	while (t->nnotes)
		drop_note(t, t->nnotes - 1);
	message_reset(t);
	free(t->slots);
	free(t);
}

const char *
mp_hooks_hold_reason(const struct mp_txn *t)
{
	return t->hold_reason;
}

/*
 * A reader over the message as the filters have left it: mem (the
 * header fields served from the txn), then the source: the replacement
 * body, or the writer's bytes from skip on (at most limit of them).
 */
struct view {
	char *mem;
	size_t mlen, mpos;
	int fd;			/* replacement body, or -1 */
	off_t fpos, flen;
	struct mp_reader src;	/* the writer's bytes */
	off_t skip, limit;
};

static ssize_t
view_src(struct view *v, char *buf, size_t len)
{
	char junk[4096];

	while (v->skip > 0) {
		size_t k = (size_t)(v->skip < (off_t)sizeof(junk) ? v->skip :
		    (off_t)sizeof(junk));
		ssize_t n = v->src.read(&v->src, junk, k);
		if (n <= 0)
			return n;
		v->skip -= n;
	}
	if (v->limit >= 0 && (off_t)len > v->limit)
		len = (size_t)v->limit;
	if (len == 0)
		return 0;
	ssize_t n = v->src.read(&v->src, buf, len);
	if (n > 0 && v->limit >= 0)
		v->limit -= n;
	return n;
}

static ssize_t
view_read(struct mp_reader *r, void *buf, size_t len)
{
	struct view *v = r->priv;

	if (v->mpos < v->mlen) {
		size_t k = v->mlen - v->mpos < len ? v->mlen - v->mpos : len;
		memcpy(buf, v->mem + v->mpos, k);
		v->mpos += k;
		return (ssize_t)k;
	}
	if (v->fd >= 0) {
		if (v->fpos >= v->flen)
			return 0;
		if ((off_t)len > v->flen - v->fpos)
			len = (size_t)(v->flen - v->fpos);
		ssize_t n = pread(v->fd, buf, len, v->fpos);
		if (n > 0)
			v->fpos += n;
		return n;
	}
	return view_src(v, buf, len);
}

static void
mem_add(struct mp_buf *b, const struct mp_hdrs *h)
{
	for (size_t i = 0; i < h->n; i++)
		mp_buf_put(b, h->v[i], strlen(h->v[i]));
}

/* The whole message as it stands now, or (headers_only) the section as
 * received, for end_of_headers. */
static void
view_open(struct mp_txn *t, struct mp_reader *r, int headers_only)
{
	struct view *v = mp_xcalloc(1, sizeof(*v));
	struct mp_buf b = { 0 };

	v->fd = -1;
	v->limit = -1;
	if (headers_only) {
		if (t->hdrs_ok)
			v->limit = (off_t)t->hdr_len;
		else	/* too big to edit: its first MP_HDRS_MAX_BYTES */
			v->limit = MP_HDRS_MAX_BYTES;
	} else {
		mem_add(&b, &t->top);
		if (t->split) {
			mem_add(&b, &t->hdrs);
			if (t->blank || t->body_fd >= 0)
				mp_buf_put(&b, "\r\n", 2);
			v->skip = (off_t)t->hdr_len;
		}
		v->fd = t->body_fd;
		v->flen = t->body_len;
	}
	v->mem = b.p;
	v->mlen = b.len;
	mp_queue_writer_reader(*t->wp, &v->src);
	r->struct_size = sizeof(*r);
	r->read = view_read;
	r->size = -1;
	r->priv = v;
}

static void
view_close(struct mp_reader *r)
{
	struct view *v = r->priv;

	mp_queue_writer_reader_close(&v->src);
	free(v->mem);
	free(v);
	r->priv = NULL;
}

/* 1 when buf (got bytes) holds the empty line ending a header section;
 * only what follows from (less 3 bytes, for a CRLFCRLF cut in two) is
 * searched: what came before was searched already. */
static int
section_ended(const char *buf, size_t got, size_t from)
{
	if (got >= 2 && memcmp(buf, "\r\n", 2) == 0)
		return 1;
	from = from > 3 ? from - 3 : 0;
	return got > from && memmem(buf + from, got - from, "\r\n\r\n", 4) != NULL;
}

/* Parse the header section the writer holds, reading no further than
 * its end (or MP_HDRS_MAX_BYTES); memory grows with what is read. */
static void
load_headers(struct mp_txn *t)
{
	struct mp_buf b = { 0 };
	struct mp_reader r;
	char chunk[16384];
	size_t before = 0;
	ssize_t n;

	mp_queue_writer_reader(*t->wp, &r);
	while (b.len <= MP_HDRS_MAX_BYTES && !section_ended(b.p, b.len, before) &&
	    (n = r.read(&r, chunk, sizeof(chunk))) > 0) {
		before = b.len;
		mp_buf_put(&b, chunk, (size_t)n);
	}
	mp_queue_writer_reader_close(&r);
	t->hdrs_ok = mp_hdrs_parse(&t->hdrs, b.p ? b.p : "", b.len, &t->hdr_len,
	    &t->blank) == 0;
	free(b.p);
}

/* From now on the headers are served from t->hdrs, the top ones and
 * those added by earlier filters (the writer's) first. -1 when the
 * section is too big to edit. */
static int
split_headers(struct mp_txn *t)
{
	struct mp_hdrs added;
	size_t len, used;
	int blank;
	char *text;

	if (t->split)
		return 0;
	if (!t->hdrs_ok)
		return -1;
	text = mp_queue_take_added(*t->wp, &len);
	if (mp_hdrs_parse(&added, text, len, &used, &blank) < 0) {
		free(text);
		return -1;
	}
	free(text);
	for (size_t i = added.n; i-- > 0;) {
		t->hdrs.v = mp_xresize(t->hdrs.v, t->hdrs.n + 1, sizeof(char *));
		memmove(t->hdrs.v + 1, t->hdrs.v, t->hdrs.n * sizeof(char *));
		t->hdrs.v[0] = added.v[i];
		t->hdrs.n++;
		t->hdrs.bytes += strlen(added.v[i]);
	}
	free(added.v);
	for (size_t i = t->top.n; i-- > 0;) {
		t->hdrs.v = mp_xresize(t->hdrs.v, t->hdrs.n + 1, sizeof(char *));
		memmove(t->hdrs.v + 1, t->hdrs.v, t->hdrs.n * sizeof(char *));
		t->hdrs.v[0] = t->top.v[i];
		t->hdrs.n++;
		t->hdrs.bytes += strlen(t->top.v[i]);
	}
	free(t->top.v);
	memset(&t->top, 0, sizeof(t->top));
	t->split = 1;
	return 0;
}

/* The envelope filters see at end_of_data and before_queue. */
static void
envelope_of(struct mp_txn *t, struct mp_envelope *env)
{
	struct session *s = t->s;

	memset(env, 0, sizeof(*env));
	env->struct_size = sizeof(*env);
	env->queue_id = t->id;
	env->sender = s->sender;
	env->rcpts = (const char *const *)s->rcpts;
	env->nrcpt = s->nrcpt;
	env->arrival = time(NULL);
	env->helo = s->helo[0] ? s->helo : NULL;
	env->client_addr = s->client[0] ? s->client : NULL;
	env->auth_user = s->auth_user[0] ? s->auth_user : NULL;
}

static int
legacy_add_header(struct mp_txn *t, const char *name, const char *value)
{
	return mp_txn_header_insert(t, 0, name, value);
}

struct msg_arg {
	const struct mp_envelope *env;
	int headers_only;
};

static int
call_end_of_headers(struct mp_txn *t, const struct mp_loaded *f,
    const void *arg, struct mp_status *st)
{
	struct mp_reader r;
	int rc;

	(void)arg;
	view_open(t, &r, 1);
	rc = mp_call_filter_end_of_headers(f, t, &r, st);
	view_close(&r);
	return rc;
}

static int
call_end_of_data(struct mp_txn *t, const struct mp_loaded *f,
    const void *arg, struct mp_status *st)
{
	struct mp_envelope env;
	struct mp_reader r;
	int rc;

	(void)arg;
	envelope_of(t, &env);
	view_open(t, &r, 0);
	rc = mp_call_filter(f, t, &env, &r, legacy_add_header, st);
	view_close(&r);
	return rc;
}

static int
call_before_queue(struct mp_txn *t, const struct mp_loaded *f,
    const void *arg, struct mp_status *st)
{
	struct mp_envelope env;
	struct mp_reader r;
	int rc;

	(void)arg;
	envelope_of(t, &env);
	view_open(t, &r, 0);
	rc = mp_call_filter_before_queue(f, t, &env, &r, st);
	view_close(&r);
	return rc;
}

/* Top headers not split off go to the writer's added headers, which
 * are kept line by line and bounded (queue.c: 64 KiB): a folded one, or
 * too many, need the message rewritten. */
static int
top_fits_writer(const struct mp_txn *t)
{
	if (t->top.bytes + 8 * t->top.n > 60000)
		return 0;
	for (size_t i = 0; i < t->top.n; i++)
		if (strchr(t->top.v[i], '\n') != t->top.v[i] + strlen(t->top.v[i]) - 1)
			return 0;
	return 1;
}

static int
top_to_writer(struct mp_txn *t)
{
	/* the last of top goes in first: each lands above the one before */
	for (size_t i = t->top.n; i-- > 0;) {
		char *f = t->top.v[i], *colon = strchr(f, ':');
		*colon = '\0';
		f[strlen(colon + 1) + (size_t)(colon - f) - 1] = '\0';	/* CRLF */
		int rc = mp_queue_add_header(*t->wp, f, colon + 2);
		*colon = ':';
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Write the message anew when more than its top headers changed. */
static int
apply_changes(struct mp_txn *t)
{
	struct mp_qwriter *n;
	struct mp_qmsg env;
	struct mp_reader r;

	if (!t->split && !t->env_changed && top_fits_writer(t)) {
		if (top_to_writer(t) < 0)
			return -1;
		mp_hdrs_free(&t->top);
		return 0;
	}
	if (split_headers(t) < 0)
		return -1;
	smtp_fill_qmsg(t->s, &env);
	view_open(t, &r, 0);
	n = mp_queue_rewrite(*t->wp, &env, &r);
	view_close(&r);
	if (n == NULL)
		return -1;
	*t->wp = n;
	/* the new writer holds every change: serve it as it is */
	mp_hdrs_free(&t->hdrs);
	t->split = 0;
	return 0;
}

enum mp_hooks_verdict
mp_hooks_message(struct mp_txn *t, struct mp_qwriter **wp, const char *id,
    struct mp_status *st)
{
	int rc;

	t->wp = wp;
	mp_strlcpy(t->id, id, sizeof(t->id));
	load_headers(t);
	rc = run_hook(t, HOOK_END_OF_HEADERS, call_end_of_headers, NULL, st);
	if (rc == MP_OK)
		rc = run_hook(t, HOOK_END_OF_DATA, call_end_of_data, NULL, st);
	if (rc == MP_OK)
		rc = run_hook(t, HOOK_BEFORE_QUEUE, call_before_queue, NULL, st);
	if (rc != MP_OK)
		return MP_HOOKS_REFUSE;
	if (t->discarded || t->s->nrcpt == 0) {
		mp_log(MP_LOG_NOTICE, "%s: discarded by a filter%s", id,
		    t->discarded ? "" : " (every recipient deleted)");
		return MP_HOOKS_DISCARD;
	}
	if (apply_changes(t) < 0) {
		mp_log_errno(MP_LOG_ERR, "%s: cannot apply the filters' changes", id);
		mp_status_set(st, 451, "4.3.0", "cannot apply the filters' changes");
		return MP_HOOKS_REFUSE;
	}
	return t->held ? MP_HOOKS_HOLD : MP_HOOKS_QUEUE;
}

/* ---- txn_* ------------------------------------------------------------------ */

/* 1 when the running hook is one of mask (a txn is only valid inside a
 * hook call: module.h). */
static int
allowed(const struct mp_txn *t, unsigned mask)
{
	return t != NULL && t->hook != HOOK_NONE && (mask & AT(t->hook));
}

const struct mp_txn_info *
mp_txn_info_get(struct mp_txn *t)
{
	return allowed(t, ANY_HOOK) ? &t->info : NULL;
}

void **
mp_txn_slot(struct mp_txn *t)
{
	return allowed(t, ANY_HOOK) ? &t->slots[t->module] : NULL;
}

static int
note_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= MAX_NOTE_NAME && strpbrk(name, " \t\r\n=") == NULL;
}

int
mp_txn_note_set(struct mp_txn *t, const char *name, const char *value)
{
	struct note *n;

	if (!allowed(t, ANY_HOOK) || name == NULL || value == NULL ||
	    !note_name_ok(name) || strlen(value) > MAX_NOTE_VALUE)
		return MP_ERROR;
	if ((n = find_note(t, name)) == NULL) {
		if (t->nnotes == MAX_NOTES)
			return MP_ERROR;
		n = &t->notes[t->nnotes++];
		n->name = mp_xstrdup(name);
		n->value = NULL;
	}
	free(n->value);
	n->value = mp_xstrdup(value);
	n->session = t->hook == HOOK_CONNECT || t->hook == HOOK_HELO;
	return MP_OK;
}

const char *
mp_txn_note(struct mp_txn *t, const char *name)
{
	struct note *n;

	if (!allowed(t, ANY_HOOK) || name == NULL)
		return NULL;
	n = find_note(t, name);
	return n ? n->value : NULL;
}

int
mp_txn_header_insert(struct mp_txn *t, size_t index, const char *name,
    const char *value)
{
	if (!allowed(t, HEADER_HOOKS) || name == NULL || value == NULL ||
	    !mp_hdr_name_valid(name) || !mp_hdr_value_valid(value))
		return MP_ERROR;
	if (index == 0 && !t->split)
		return mp_hdrs_insert(&t->top, 0, name, value) == 0 ? MP_OK : MP_ERROR;
	if (split_headers(t) < 0)
		return MP_ERROR;
	return mp_hdrs_insert(&t->hdrs, index, name, value) == 0 ? MP_OK : MP_ERROR;
}

int
mp_txn_header_change(struct mp_txn *t, const char *name, unsigned nth,
    const char *value)
{
	int rc;

	if (!allowed(t, HEADER_HOOKS) || name == NULL || nth == 0 ||
	    !mp_hdr_name_valid(name) || (value && !mp_hdr_value_valid(value)))
		return MP_ERROR;
	if (split_headers(t) < 0)
		return MP_ERROR;
	rc = mp_hdrs_change(&t->hdrs, name, nth, value);
	return rc == 1 ? MP_OK : rc == 0 ? MP_DECLINED : MP_ERROR;
}

/* An address a filter gives: no controls, spaces or angle brackets
 * (the queue's envelope is line based); rcpt needs a domain. */
static int
address_ok(const char *a, int rcpt)
{
	size_t n = strlen(a);

	if (n >= ADDR_MAX || (rcpt && (n == 0 || strchr(a, '@') == NULL)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)a[i] <= ' ' || a[i] == '<' || a[i] == '>' ||
		    a[i] == 0x7f)
			return 0;
	return 1;
}

int
mp_txn_sender_set(struct mp_txn *t, const char *sender)
{
	if (!allowed(t, ENVELOPE_HOOKS) || sender == NULL || !address_ok(sender, 0))
		return MP_ERROR;
	mp_strlcpy(t->s->sender, sender, sizeof(t->s->sender));
	t->env_changed = 1;
	return MP_OK;
}

static ssize_t
rcpt_index(const struct session *s, const char *rcpt)
{
	for (size_t i = 0; i < s->nrcpt; i++)
		if (strcasecmp(s->rcpts[i], rcpt) == 0)
			return (ssize_t)i;
	return -1;
}

int
mp_txn_rcpt_add(struct mp_txn *t, const char *rcpt)
{
	if (!allowed(t, ENVELOPE_HOOKS) || rcpt == NULL || !address_ok(rcpt, 1) ||
	    (long long)t->s->nrcpt >= mp_core.limits.recipients)
		return MP_ERROR;
	if (rcpt_index(t->s, rcpt) >= 0)
		return MP_OK;
	smtp_add_rcpt(t->s, rcpt, "", "", "");
	t->env_changed = 1;
	refresh_info(t);	/* its rcpts may have moved */
	return MP_OK;
}

int
mp_txn_rcpt_delete(struct mp_txn *t, const char *rcpt)
{
	ssize_t i;

	if (!allowed(t, ENVELOPE_HOOKS) || rcpt == NULL)
		return MP_ERROR;
	if ((i = rcpt_index(t->s, rcpt)) < 0)
		return MP_DECLINED;
	smtp_delete_rcpt(t->s, (size_t)i);
	t->env_changed = 1;
	refresh_info(t);
	return MP_OK;
}

/* An unnamed file in the queue's tmp/ (gone when closed). */
static int
body_file(void)
{
	char dir[4200];

	snprintf(dir, sizeof(dir), "%s/tmp", mp_core.queue_dir);
	return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

int
mp_txn_body_replace(struct mp_txn *t, struct mp_reader *body)
{
	char buf[16384];
	off_t len = 0;
	ssize_t n;
	int fd;

	if (!allowed(t, ENVELOPE_HOOKS) || body == NULL || split_headers(t) < 0)
		return MP_ERROR;
	if ((fd = body_file()) < 0) {
		mp_log_errno(MP_LOG_ERR, "%s: cannot create a body file", t->id);
		return MP_ERROR;
	}
	while ((n = body->read(body, buf, sizeof(buf))) > 0) {
		len += n;
		if (len > mp_core.limits.message_size ||
		    mp_write_all(fd, buf, (size_t)n) < 0) {
			n = -1;
			break;
		}
	}
	if (n < 0) {
		close(fd);
		return MP_ERROR;
	}
	if (t->body_fd >= 0)
		close(t->body_fd);
	t->body_fd = fd;
	t->body_len = len;
	return MP_OK;
}

int
mp_txn_hold(struct mp_txn *t, const char *reason)
{
	if (!allowed(t, HEADER_HOOKS))
		return MP_ERROR;
	t->held = 1;
	mp_strlcpy(t->hold_reason, reason ? reason : "held by a filter",
	    sizeof(t->hold_reason));
	/* the status file is line based */
	for (char *p = t->hold_reason; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	if (t->hold_reason[0] == '\0')
		mp_strlcpy(t->hold_reason, "held by a filter", sizeof(t->hold_reason));
	return MP_OK;
}

int
mp_txn_discard(struct mp_txn *t)
{
	if (!allowed(t, HEADER_HOOKS))
		return MP_ERROR;
	t->discarded = 1;
	return MP_OK;
}

/* ---- local submission ------------------------------------------------------- */

enum mp_hooks_verdict
mp_hooks_local(const struct mp_hooks_local *in, struct mp_qwriter **wp,
    const char *id, struct mp_status *st, char *hold_reason, size_t size)
{
	/* a session with no listener and no connection: what the txn works on */
	struct session *s;
	enum mp_hooks_verdict v;
	struct mp_txn *t;

	if (strlen(in->sender) >= sizeof(s->sender)) {
		mp_status_set(st, 553, "5.1.7", "sender address too long");
		return MP_HOOKS_REFUSE;
	}
	s = mp_xcalloc(1, sizeof(*s));
	mp_strlcpy(s->sender, in->sender, sizeof(s->sender));
	mp_strlcpy(s->auth_user, in->user, sizeof(s->auth_user));
	mp_strlcpy(s->params.ret, in->ret ? in->ret : "", sizeof(s->params.ret));
	mp_strlcpy(s->params.envid, in->envid ? in->envid : "",
	    sizeof(s->params.envid));
	for (size_t i = 0; i < in->nrcpt; i++)
		smtp_add_rcpt(s, in->rcpts[i], in->notify && in->notify[i] ?
		    in->notify[i] : "", "", "");
	t = mp_txn_open(s);
	t->open = 1;
	v = mp_hooks_message(t, wp, id, st);
	mp_strlcpy(hold_reason, t->hold_reason, size);
	mp_txn_close(t);	/* txn_end, session_end */
	for (size_t i = s->nrcpt; i-- > 0;)
		smtp_delete_rcpt(s, i);
	free(s->rcpts);
	free(s->notify);
	free(s->orcpt);
	free(s->relay);
	free(s);
	return v;
}
