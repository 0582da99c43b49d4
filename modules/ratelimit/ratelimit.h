/*
 * modules/ratelimit/ratelimit.h - the ratelimit module's engine: message
 * and recipient counts per client address, authenticated user and
 * sender domain over sliding windows (merpati/ratewin.h), shared by all
 * sessions of the process. Private to the module and its unit test.
 */
#ifndef MERPATI_RATELIMIT_H
#define MERPATI_RATELIMIT_H

#include <merpati/merpati.h>
#include <merpati/ratewin.h>

/* What is counted: a message at each MAIL FROM, a recipient at each
 * accepted RCPT TO. */
enum rl_what { RL_MESSAGES, RL_RECIPIENTS, RL_NWHAT };
/* Whose count it is. */
enum rl_scope { RL_IP, RL_USER, RL_SENDER_DOMAIN, RL_NSCOPES };

struct rl_limit {
	long long count;		/* events allowed per window */
	long long window;		/* seconds */
	struct mp_ratewin *table;	/* NULL: this limit is not set */
};

struct ratelimit {
	const struct mp_host *host;
	long long table_size;		/* keys per limit, then LRU eviction */
	struct rl_limit limits[RL_NWHAT][RL_NSCOPES];
};

/* "messages_per_ip" and the like: the setting's name of a limit. */
const char *ratelimit_setting(enum rl_what what, enum rl_scope scope);

/*
 * Set one limit: count events per window seconds, in a table of at
 * most rl->table_size keys. 0, or -1 when out of memory.
 */
int ratelimit_set(struct ratelimit *rl, enum rl_what what,
    enum rl_scope scope, long long count, long long window);

/* Read modules.ratelimit (every limit group and table_size); MP_OK or
 * MP_ERROR with *error_r naming the setting. */
int ratelimit_configure(struct ratelimit *rl, const struct mp_conf *conf,
    const char **error_r);

/*
 * Count one event of kind what for each scope's key (keys[scope] NULL:
 * that scope does not apply, e.g. no AUTH). MP_OK when every set limit
 * still had room; else MP_TEMPFAIL with a 451 4.7.1 status naming the
 * limit, a log line, and nothing counted for this event anywhere.
 */
int ratelimit_check(struct ratelimit *rl, enum rl_what what,
    const char *const keys[RL_NSCOPES], struct mp_status *status_r);

/* Use clock_ms for every table (unit tests). */
void ratelimit_set_clock(struct ratelimit *rl,
    long long (*clock_ms)(void *), void *arg);

void ratelimit_free_tables(struct ratelimit *rl);

#endif
