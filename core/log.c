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
	write_stderr_line(level, prefix, msg);
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
