/*
 * modules/ratelimit/ratelimit_engine.c - checking one event against the
 * limits of each scope: all or nothing, so a message refused by its
 * sender domain's limit does not use up its client's allowance.
 */
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

static const char *const setting_names[RL_NWHAT][RL_NSCOPES] = {
	{ "messages_per_ip", "messages_per_user",
	  "messages_per_sender_domain" },
	{ "recipients_per_ip", "recipients_per_user",
	  "recipients_per_sender_domain" },
};

static const char *const what_names[RL_NWHAT] = { "messages", "recipients" };
static const char *const scope_names[RL_NSCOPES] = {
	"client", "user", "sender domain"
};

const char *
ratelimit_setting(enum rl_what what, enum rl_scope scope)
{
	return setting_names[what][scope];
}

int
ratelimit_set(struct ratelimit *rl, enum rl_what what, enum rl_scope scope,
    long long count, long long window)
{
	struct rl_limit *l = &rl->limits[what][scope];

	mp_ratewin_free(l->table);
	l->table = mp_ratewin_new(window * 1000, (size_t)rl->table_size);
	l->count = count;
	l->window = window;
	return l->table ? 0 : -1;
}

/* "1h", "15m", "3s": the window as an admin would write it. */
static void
format_window(long long s, char *buf, size_t size)
{
	if (s % 86400 == 0)
		snprintf(buf, size, "%lldd", s / 86400);
	else if (s % 3600 == 0)
		snprintf(buf, size, "%lldh", s / 3600);
	else if (s % 60 == 0)
		snprintf(buf, size, "%lldm", s / 60);
	else
		snprintf(buf, size, "%llds", s);
}

static int
refuse(struct ratelimit *rl, enum rl_what what, enum rl_scope scope,
    const char *key, struct mp_status *st)
{
	const struct rl_limit *l = &rl->limits[what][scope];
	char window[32];

	format_window(l->window, window, sizeof(window));
	st->reply = 451;
	snprintf(st->enhanced, sizeof(st->enhanced), "4.7.1");
	snprintf(st->text, sizeof(st->text), "Rate limit %s: more than %lld "
	    "%s per %s from %s %.100s; try again later",
	    ratelimit_setting(what, scope), l->count, what_names[what], window,
	    scope_names[scope], key);
	rl->host->log(MP_LOG_NOTICE, "ratelimit: refused, %s %.100s over "
	    "%s (%lld per %s)", scope_names[scope], key,
	    ratelimit_setting(what, scope), l->count, window);
	return MP_TEMPFAIL;
}

int
ratelimit_check(struct ratelimit *rl, enum rl_what what,
    const char *const keys[RL_NSCOPES], struct mp_status *status_r)
{
	for (int scope = 0; scope < RL_NSCOPES; scope++) {
		const struct rl_limit *l = &rl->limits[what][scope];
		if (l->table == NULL || keys[scope] == NULL)
			continue;
		if (mp_ratewin_take(l->table, keys[scope],
		    (unsigned long)l->count))
			continue;
		/* refused: give back what this event took before */
		for (int back = 0; back < scope; back++) {
			const struct rl_limit *b = &rl->limits[what][back];
			if (b->table != NULL && keys[back] != NULL)
				mp_ratewin_give(b->table, keys[back]);
		}
		return refuse(rl, what, (enum rl_scope)scope, keys[scope],
		    status_r);
	}
	return MP_OK;
}

void
ratelimit_set_clock(struct ratelimit *rl, long long (*clock_ms)(void *),
    void *arg)
{
	for (int w = 0; w < RL_NWHAT; w++)
		for (int s = 0; s < RL_NSCOPES; s++)
			if (rl->limits[w][s].table != NULL)
				mp_ratewin_set_clock(rl->limits[w][s].table,
				    clock_ms, arg);
}

void
ratelimit_free_tables(struct ratelimit *rl)
{
	for (int w = 0; w < RL_NWHAT; w++)
		for (int s = 0; s < RL_NSCOPES; s++) {
			mp_ratewin_free(rl->limits[w][s].table);
			rl->limits[w][s].table = NULL;
		}
}
