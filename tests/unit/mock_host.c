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
	for (size_t i = 0; conf && conf->kv && conf->kv[i]; i += 2) {
		int known = strcmp(conf->kv[i], "path") == 0;
		for (const struct mp_option *o = table; o->name; o++)
			known |= strcmp(o->name, conf->kv[i]) == 0;
		if (!known)
			return fail(error_r, conf->kv[i], "unknown setting");
	}
	for (const struct mp_option *o = table; o->name; o++) {
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
};
