/*
 * tests/unit/mock_host.c - the mock host table (see mock_host.h).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mock_host.h"
#include <merpati/protocol.h>
#include "../../core/smtp_auth_parse.h"
#include "../../core/sync.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *owned[64];		/* PATH values, freed at exit */
static size_t nowned;

static void
free_owned(void)
{
	while (nowned > 0)
		free(owned[--nowned]);
}

static const char *
own(char *p)
{
	if (nowned == 0)
		atexit(free_owned);
	if (nowned < sizeof(owned) / sizeof(owned[0]))
		owned[nowned++] = p;
	return p;
}
static char log_text[65536];
static _Thread_local char error_text[256];

const char *
mock_log_text(void)
{
	return log_text;
}

static void
mock_logv(const char *fmt, va_list ap, const char *suffix)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	pthread_mutex_lock(&log_lock);
	size_t used = strlen(log_text);
	snprintf(log_text + used, sizeof(log_text) - used, "%s%s\n", line, suffix);
	pthread_mutex_unlock(&log_lock);
}

static void
mock_log(int level, const char *fmt, ...)
{
	va_list ap;

	(void)level;
	va_start(ap, fmt);
	mock_logv(fmt, ap, "");
	va_end(ap);
}

static void
mock_log_errno(int level, const char *fmt, ...)
{
	va_list ap;

	(void)level;
	va_start(ap, fmt);
	mock_logv(fmt, ap, " (errno)");
	va_end(ap);
}

static const char *
value_of(const struct mp_conf *conf, const char *name)
{
	for (size_t i = 0; conf && conf->kv && conf->kv[i]; i += 2)
		if (strcmp(conf->kv[i], name) == 0)
			return conf->kv[i + 1];
	return NULL;
}

static int
fail(const char **error_r, const char *name, const char *why)
{
	snprintf(error_text, sizeof(error_text), "%s: %s", name, why);
	*error_r = error_text;
	return MP_ERROR;
}

static int
duration(const char *s, long long *v)
{
	char *end;
	long long n = strtoll(s, &end, 10), unit = 1;

	if (end == s)
		return -1;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -1;
	}
	*v = n * unit;
	return 0;
}

static int
store(const struct mp_conf *conf, const struct mp_option *o, const char *text,
    void *field, const char **error_r)
{
	long long v = 0;
	char *end;

	switch (o->type) {
	case MP_OPT_STRING:
		*(const char **)field = text;
		return MP_OK;
	case MP_OPT_PATH:
		if (text[0] == '/' || conf == NULL || conf->base_dir == NULL)
			*(const char **)field = own(strdup(text));
		else {
			char *p = malloc(strlen(conf->base_dir) + strlen(text) + 2);
			sprintf(p, "%s/%s", conf->base_dir, text);
			*(const char **)field = own(p);
		}
		return MP_OK;
	case MP_OPT_BOOL:
		*(int *)field = strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0;
		return MP_OK;
	case MP_OPT_INT:
		v = strtoll(text, &end, 10);
		if (*end || end == text)
			return fail(error_r, o->name, "not an integer");
		break;
	case MP_OPT_DURATION:
		if (duration(text, &v) < 0)
			return fail(error_r, o->name, "bad duration");
		break;
	}
	if (o->max > o->min && (v < o->min || v > o->max))
		return fail(error_r, o->name, "out of range");
	*(long long *)field = v;
	return MP_OK;
}

static int
mock_conf_options(const struct mp_conf *conf, const struct mp_option *table,
    void *settings, const char **error_r)
{
	/* rows are stepped through by their own size (module.h rule 2) */
	for (size_t i = 0; conf && conf->kv && conf->kv[i]; i += 2) {
		int known = strcmp(conf->kv[i], "path") == 0;
		for (size_t k = 0; MP_ELEM(table, k)->name; k++)
			known |= strcmp(MP_ELEM(table, k)->name, conf->kv[i]) == 0;
		if (!known)
			return fail(error_r, conf->kv[i], "unknown setting");
	}
	for (size_t k = 0; MP_ELEM(table, k)->name; k++) {
		const struct mp_option *o = MP_ELEM(table, k);
		const char *text = value_of(conf, o->name);
		if (text == NULL)
			text = o->def;
		if (text == NULL)
			return fail(error_r, o->name, "required");
		if (store(conf, o, text, (char *)settings + o->offset, error_r) != MP_OK)
			return MP_ERROR;
	}
	return MP_OK;
}

static void *mock_alloc(size_t n) { return malloc(n ? n : 1); }
static void mock_free(void *p) { free(p); }
static const char *mock_hostname(void) { return "mail.example.test"; }
static time_t mock_now(void) { return time(NULL); }

static int
mock_is_local(const char *domain)
{
	return strcasecmp(domain, "example.test") == 0;
}

static int
mock_base64_decode(const char *in, char *out, size_t size)
{
	(void)in; (void)out; (void)size;
	return -1;	/* modules under unit test do no SASL */
}

static int
mock_auth_allowed(const struct mp_conn_info *info, int plaintext_auth)
{
	return mp_auth_allowed(info->tls, info->loopback, plaintext_auth);
}

ssize_t
mock_text_read(struct mp_reader *r, void *buf, size_t len)
{
	struct mock_text *t = r->priv;
	size_t left = strlen(t->text) - t->pos;

	if (len > left)
		len = left;
	if (t->step && len > t->step)
		len = t->step;
	memcpy(buf, t->text + t->pos, len);
	t->pos += len;
	return (ssize_t)len;
}

const struct mp_host mock_host = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_host),
	.log = mock_log,
	.log_errno = mock_log_errno,
	.conf_options = mock_conf_options,
	.alloc = mock_alloc,
	.free = mock_free,
	.hostname = mock_hostname,
	.now = mock_now,
	.is_local_domain = mock_is_local,
	.base64_decode = mock_base64_decode,
	.sync_group = mp_sync_group,	/* the core's own, linked in */
	.sasl_plain = smtp_auth_plain_fields,	/* likewise */
	.auth_allowed = mock_auth_allowed,
};

/* ---- a connection fed from memory (mock_conn_*, see mock_host.h) ---- */

struct mp_conn {
	char *in;		/* what the client sent, consumed or not */
	size_t len, pos, cap;
	mock_conn_refill *refill;	/* asked for more when all is read */
	void *refill_arg;
	char *out;		/* the first keep octets written */
	size_t keep, kept, written;
	struct mp_conn_info info;
};

struct mp_conn *
mock_conn_new(const void *input, size_t len, size_t keep)
{
	struct mp_conn *c = calloc(1, sizeof(*c));

	mock_conn_feed(c, input, len);
	c->keep = keep;
	c->out = malloc(keep + 1);
	c->out[0] = '\0';
	c->info = (struct mp_conn_info){ .struct_size = sizeof(c->info),
	    .peer = "127.0.0.1", .loopback = 1, .tls_desc = "", .listener = "mock.plain" };
	return c;
}

void
mock_conn_feed(struct mp_conn *c, const void *bytes, size_t len)
{
	if (c->len + len + 1 > c->cap) {
		c->cap = 2 * (c->len + len) + 1;
		c->in = realloc(c->in, c->cap);
	}
	if (len)
		memcpy(c->in + c->len, bytes, len);
	c->len += len;
}

void
mock_conn_source(struct mp_conn *c, mock_conn_refill *refill, void *arg)
{
	c->refill = refill;
	c->refill_arg = arg;
}

/* 1 if the source gave more input. */
static int
refill(struct mp_conn *c)
{
	size_t had = c->len;

	if (c->refill)
		c->refill(c->refill_arg, c);
	return c->len > had;
}

void
mock_conn_free(struct mp_conn *c)
{
	if (c) {
		free(c->in);
		free(c->out);
	}
	free(c);
}

const char *
mock_conn_output(const struct mp_conn *c, size_t *kept_r)
{
	*kept_r = c->kept;
	return c->out;
}

size_t
mock_conn_written(const struct mp_conn *c)
{
	return c->written;
}

const char *
mock_conn_input(const struct mp_conn *c, size_t *len_r)
{
	*len_r = c->len;
	return c->in;
}

size_t
mock_conn_unread(const struct mp_conn *c)
{
	return c->len - c->pos;
}

/* Like core/conn.c: over the limit, the line's start (size - 1 octets)
 * is left in buf and the rest of it up to LF is skipped. */
static int
conn_read_line(struct mp_conn *c, char *buf, size_t size, size_t *len_r)
{
	const char *nl;

	while ((nl = memchr(c->in + c->pos, '\n', c->len - c->pos)) == NULL && refill(c))
		;
	const char *start = c->in + c->pos;
	size_t len = nl ? (size_t)(nl - start) : c->len - c->pos;
	size_t k = len < size - 1 ? len : size - 1;

	memcpy(buf, start, k);
	buf[k] = '\0';
	if (nl == NULL) {	/* no LF before the end of input */
		c->pos = c->len;
		return MP_CONN_EOF;
	}
	c->pos += len + 1;
	if (len >= size)
		return MP_CONN_TOO_LONG;
	if (k > 0 && buf[k - 1] == '\r')
		buf[--k] = '\0';
	*len_r = k;
	return MP_CONN_OK;
}

static ssize_t
conn_read(struct mp_conn *c, void *buf, size_t size)
{
	if (c->pos == c->len)
		refill(c);
	size_t n = c->len - c->pos < size ? c->len - c->pos : size;

	memcpy(buf, c->in + c->pos, n);
	c->pos += n;
	return (ssize_t)n;
}

static int
conn_write(struct mp_conn *c, const void *buf, size_t len)
{
	size_t k = c->keep - c->kept < len ? c->keep - c->kept : len;

	memcpy(c->out + c->kept, buf, k);
	c->kept += k;
	c->out[c->kept] = '\0';
	c->written += len;
	return 0;
}

static int
conn_printf(struct mp_conn *c, const char *fmt, ...)
{
	va_list ap;
	char *text;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	conn_write(c, text, (size_t)n);
	free(text);
	return 0;
}

static int conn_flush(struct mp_conn *c) { (void)c; return 0; }
/* What the client has sent so far and the session not read. */
static size_t conn_pending(struct mp_conn *c) { return c->len - c->pos; }
static int conn_start_tls(struct mp_conn *c) { (void)c; return -1; }
static const struct mp_conn_info *conn_info(struct mp_conn *c) { return &c->info; }
static void conn_set_timeout(struct mp_conn *c, long long s) { (void)c; (void)s; }

/* Input waiting: 1; none left: the client is gone (-1), never a wait. */
static int
conn_wait(struct mp_conn *c, int other_fd, int timeout_ms)
{
	(void)other_fd;
	(void)timeout_ms;
	return c->pos < c->len || refill(c) ? 1 : -1;
}

void
mock_conn_host(struct mp_host *h)
{
	h->conn_read_line = conn_read_line;
	h->conn_read = conn_read;
	h->conn_write = conn_write;
	h->conn_printf = conn_printf;
	h->conn_flush = conn_flush;
	h->conn_pending = conn_pending;
	h->conn_start_tls = conn_start_tls;
	h->conn_info = conn_info;
	h->conn_set_timeout = conn_set_timeout;
	h->conn_wait = conn_wait;
}
