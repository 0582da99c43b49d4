/*
 * core/log.h - one line per event, to stderr (foreground) or syslog.
 * The module name and queue id of the current thread's context are
 * prefixed, so every line about a message is greppable by its id.
 */
#ifndef MERPATI_LOG_H
#define MERPATI_LOG_H

#include <stdarg.h>
#include <merpati/module.h>

void mp_log_open(const char *ident, int to_stderr);
void mp_log(int level, const char *fmt, ...) MP_PRINTF(2, 3);
void mp_log_errno(int level, const char *fmt, ...) MP_PRINTF(2, 3);
void mp_logv(int level, const char *fmt, va_list ap);

/* Per-thread context shown in log lines; NULL clears. */
void mp_log_set_module(const char *name);
void mp_log_set_queue_id(const char *id);
const char *mp_log_module(void);
/* The module most recently set on this thread (kept after it is
 * cleared), to name the module whose call just returned; or NULL. */
const char *mp_log_last_module(void);

#endif
