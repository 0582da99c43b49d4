/*
 * core/log.c - logging (see log.h): plain lines or, with `log = {
 * format = "json"; }`, one JSON object per line with the same fields.
 * Structured events (mp_log_event) render as "key=value, ..." in text,
 * Postfix-style, and as JSON members in JSON.
 */
#include <errno.h>
#include <libconfig.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

static int log_stderr = 1;
static atomic_int log_json;	/* read on every line; set at start and reload */
static const char *log_ident = "merpati";
static _Thread_local const char *ctx_module;
static _Thread_local const char *ctx_queue_id;

void
mp_log_open(const char *ident, int to_stderr)
{
	log_ident = ident;
	log_stderr = to_stderr;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static _Thread_local const char *ctx_last_module;

void
mp_log_set_module(const char *name)
{
	ctx_module = name;
	if (name)
		ctx_last_module = name;
}

const char *mp_log_last_module(void) { return ctx_last_module; }
void mp_log_set_queue_id(const char *id) { ctx_queue_id = id; }
const char *mp_log_module(void) { return ctx_module; }

static const char *
level_name(int level)
{
	switch (level) {
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: return "notice";
	case LOG_DEBUG: return "debug";
	default: return "info";
	}
}

/* The time stamp, formatted once per second per thread: localtime_r()
 * takes glibc's time zone lock, contended when many sessions log. */
static const char *
stamp_now(void)
{
	static _Thread_local char stamp[32];
	static _Thread_local time_t stamped = (time_t)-1;
	time_t now = time(NULL);

	if (now != stamped) {
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		stamped = now;
	}
	return stamp;
}

/* One write() per line, no stdio lock held across it: lines from many
 * threads stay whole (O_APPEND file, or a pipe under PIPE_BUF). */
static void
write_stderr_line(int level, const char *prefix, const char *msg)
{
	char line[2304];
	int n = snprintf(line, sizeof(line), "%s %s[%d]: %s: %s%s\n", stamp_now(),
	    log_ident, (int)getpid(), level_name(level), prefix, msg);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

/* The context prefix of text lines: "module: queue-id: ". */
static void
context_prefix(char *prefix, size_t size)
{
	int off = 0;

	prefix[0] = '\0';
	if (ctx_module)
		off += snprintf(prefix + off, size - (size_t)off, "%s: ", ctx_module);
	if (ctx_queue_id && off < (int)size)
		snprintf(prefix + off, size - (size_t)off, "%s: ", ctx_queue_id);
}

static void
emit(int level, const char *prefix, const char *msg)
{
	if (!log_stderr) {
		syslog(level, "%s%s", prefix, msg);
		return;
	}
	write_stderr_line(level, prefix, msg);
}

void
mp_logv(int level, const char *fmt, va_list ap)
{
	char msg[2048], prefix[160];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (atomic_load(&log_json)) {
		struct mp_log_field f = { "message", msg, 0, 0 };
		mp_log_event(level, NULL, &f, 1);
		return;
	}
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	context_prefix(prefix, sizeof(prefix));
	emit(level, prefix, msg);
}

/* ---- JSON ---------------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, size;		/* n stays < size; output is cut, never overrun */
};

static void
add(struct buf *b, const char *s, size_t len)
{
	if (len > b->size - 1 - b->n)
		len = b->size - 1 - b->n;
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = '\0';
}

static void
add_str(struct buf *b, const char *s)
{
	add(b, s, strlen(s));
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629 4: no
 * overlongs, no surrogates, nothing past U+10FFFF), or 0. */
static size_t
utf8_length(const unsigned char *p)
{
	size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;

	if (n == 0 || p[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return n;
}

/* A JSON string (RFC 8259 7): quote, backslash and control characters
 * escaped; bytes >= 0x80 pass as they are (UTF-8 stays UTF-8), and a
 * byte that is not valid UTF-8 becomes U+FFFD so every line parses.
 * A string that does not fit is cut between whole characters, leaving
 * room for its closing quote and the object's closing brace. */
static void
add_json_string(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	add(b, "\"", 1);
	while (*p) {
		char unit[8];
		size_t len = 1, step = 1, ulen = utf8_length(p);
		if (*p == '"' || *p == '\\') {
			unit[0] = '\\';
			unit[1] = (char)*p;
			len = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			len = (size_t)snprintf(unit, sizeof(unit), "\\u%04x", *p);
		} else if (*p < 0x80) {
			unit[0] = (char)*p;
		} else if (ulen == 0) {
			memcpy(unit, "\xef\xbf\xbd", 3);
			len = 3;
		} else {
			memcpy(unit, p, ulen);
			len = step = ulen;
		}
		if (b->n + len + 3 >= b->size)
			break;
		add(b, unit, len);
		p += step;
	}
	add(b, "\"", 1);
}

/* A member only when its key and a start of its value fit. */
static void
add_member(struct buf *b, const char *key, const char *value, int is_number)
{
	if (b->n + strlen(key) + 32 >= b->size)
		return;
	add(b, ",", 1);
	add_json_string(b, key);
	add(b, ":", 1);
	if (is_number && strlen(value) + b->n + 3 < b->size)
		add_str(b, value);
	else
		add_json_string(b, value);
}

static void
json_line(int level, const char *event, const struct mp_log_field *f, size_t n)
{
	char line[4096], pid[24];
	struct buf b = { line, 0, sizeof(line) };

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	add_str(&b, "{\"time\":");
	add_json_string(&b, stamp_now());
	add_member(&b, "level", level_name(level), 0);
	add_member(&b, "ident", log_ident, 0);
	add_member(&b, "pid", pid, 1);
	if (event)
		add_member(&b, "event", event, 0);
	if (ctx_module)
		add_member(&b, "module", ctx_module, 0);
	if (ctx_queue_id)
		add_member(&b, "queue_id", ctx_queue_id, 0);
	for (size_t i = 0; i < n; i++)
		if (f[i].value)
			add_member(&b, f[i].key, f[i].value, f[i].number);
	add(&b, "}", 1);	/* room kept for it by every member */
	if (!log_stderr) {
		syslog(level, "%s", line);
		return;
	}
	char out[4200];
	int len = snprintf(out, sizeof(out), "%s\n", line);
	(void)!write(STDERR_FILENO, out, (size_t)len);
}

/* Text: "event key=value, key=value (reply)" the way Postfix writes
 * its delivery lines; a field marked reply goes last, in parentheses. */
static void
text_line(int level, const char *event, const struct mp_log_field *f, size_t n)
{
	char msg[2048], prefix[160];
	struct buf b = { msg, 0, sizeof(msg) };
	const char *reply = NULL;
	int first = 1;

	msg[0] = '\0';
	if (event) {
		add_str(&b, event);
		add(&b, " ", 1);
	}
	for (size_t i = 0; i < n; i++) {
		if (f[i].value == NULL)
			continue;
		if (f[i].reply) {
			reply = f[i].value;
			continue;
		}
		if (!first)
			add(&b, ", ", 2);
		first = 0;
		add_str(&b, f[i].key);
		add(&b, "=", 1);
		add_str(&b, f[i].value);
	}
	if (reply) {
		add(&b, " (", 2);
		add_str(&b, reply);
		add(&b, ")", 1);
	}
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	context_prefix(prefix, sizeof(prefix));
	emit(level, prefix, msg);
}

void
mp_log_event(int level, const char *event, const struct mp_log_field *f, size_t n)
{
	if (atomic_load(&log_json))
		json_line(level, event, f, n);
	else
		text_line(level, event, f, n);
}

void mp_log_set_json(int on) { atomic_store(&log_json, on != 0); }

int
mp_log_configure(const void *config, int *json_r, struct mp_problems *problems)
{
	const config_setting_t *g = config_lookup((const config_t *)config, "log");
	const char *format = "text";

	*json_r = 0;
	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g)) {
		mp_problem(problems, "log: must be a group { ... }");
		return -1;
	}
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		if (strcmp(config_setting_name(m), "format") != 0) {
			mp_problem(problems, "log.%s: unknown setting", config_setting_name(m));
			return -1;
		}
	}
	if (config_setting_lookup_string(g, "format", &format) == CONFIG_FALSE &&
	    config_setting_get_member(g, "format") != NULL) {
		mp_problem(problems, "log.format: must be a string");
		return -1;
	}
	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
		mp_problem(problems, "log.format: \"%s\" is not text or json", format);
		return -1;
	}
	*json_r = strcmp(format, "json") == 0;
	return 0;
}

void
mp_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mp_logv(level, fmt, ap);
	va_end(ap);
}

void
mp_log_errno(int level, const char *fmt, ...)
{
	char buf[1536];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	mp_log(level, "%s: %s", buf, strerror(saved));
}
