/*
 * core/log.c - logging (see log.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_stderr = 1;
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

void mp_log_set_module(const char *name) { ctx_module = name; }
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

void
mp_logv(int level, const char *fmt, va_list ap)
{
	char msg[2048], prefix[160] = "";
	int off = 0;

	if (ctx_module)
		off += snprintf(prefix + off, sizeof(prefix) - (size_t)off,
		    "%s: ", ctx_module);
	if (ctx_queue_id && off < (int)sizeof(prefix))
		snprintf(prefix + off, sizeof(prefix) - (size_t)off, "%s: ",
		    ctx_queue_id);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (!log_stderr) {
		syslog(level, "%s%s", prefix, msg);
		return;
	}
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s %s[%d]: %s: %s%s\n", stamp, log_ident,
	    (int)getpid(), level_name(level), prefix, msg);
	funlockfile(stderr);
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
