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

/*
 * A structured event: text renders "event key=value, key=value (reply)",
 * JSON one object with time, level, ident, pid, event, module and
 * queue_id, then each field. A field with a NULL value is left out;
 * number: the value is a JSON number (text renders it the same);
 * reply: text puts it last, in parentheses (Postfix's remote reply).
 */
struct mp_log_field {
	const char *key;
	const char *value;
	int number;
	int reply;
};
void mp_log_event(int level, const char *event, const struct mp_log_field *f,
    size_t n);

/* Read the top-level `log` group (format = "text" | "json") of a loaded
 * config; *json_r set. 0, or -1 with the problem appended. */
struct mp_problems;
int mp_log_configure(const void *config, int *json_r, struct mp_problems *problems);
/* Switch every following line to JSON (1) or text (0). */
void mp_log_set_json(int on);

#endif
