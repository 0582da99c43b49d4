/*
 * core/destination.c - per-destination concurrency, rate and dead
 * destination back-off (see destination.h).
 *
 * One table of destinations and MX hosts under one mutex; a thread
 * waiting for a slot waits on a condition variable, bounded by
 * SLOT_WAIT, and never while it holds a slot of another destination
 * (it gives that back first), so waits cannot form a cycle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "destination.h"
#include "log.h"
#include "settings.h"
#include "smtp_client.h"
#include "util.h"

#define SLOT_WAIT 60		/* seconds a message waits for a slot or its rate turn */
#define MAX_ENTRIES 4096	/* idle entries are dropped beyond this */
#define KEY_MAX 300

enum kind { DEST, HOST };

struct dest {
	char key[KEY_MAX];
	enum kind kind;
	long long active;	/* slots held */
	double next_start;	/* monotonic seconds: the rate's next turn */
	unsigned failures;	/* failed connections in a row */
	time_t dead_until;
	char last_error[200];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;
static struct dest *table;
static size_t ntable, captable;

/* What this thread holds ("" for nothing). */
static _Thread_local char held_dest[KEY_MAX], held_host[KEY_MAX];

static double
monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
idle_entry(const struct dest *d, time_t now)
{
	return d->active == 0 && d->failures == 0 && d->dead_until <= now &&
	    d->next_start <= monotonic();
}

/* Caller holds lock. The entry of key, made when missing. */
static struct dest *
lookup(const char *key, enum kind kind)
{
	for (size_t i = 0; i < ntable; i++)
		if (table[i].kind == kind && strcasecmp(table[i].key, key) == 0)
			return &table[i];
	if (ntable >= MAX_ENTRIES) {	/* bounded by the destinations in use */
		size_t k = 0;
		time_t now = time(NULL);
		for (size_t i = 0; i < ntable; i++)
			if (!idle_entry(&table[i], now))
				table[k++] = table[i];
		ntable = k;
	}
	if (ntable == captable) {
		captable = captable ? captable * 2 : 64;
		table = mp_xresize(table, captable, sizeof(*table));
	}
	memset(&table[ntable], 0, sizeof(*table));
	mp_strlcpy(table[ntable].key, key, KEY_MAX);
	table[ntable].kind = kind;
	return &table[ntable++];
}

static void
set_status(struct mp_status *st, const char *enhanced, const char *fmt,
    const char *key, const char *extra)
{
	st->struct_size = sizeof(*st);
	st->reply = 451;
	snprintf(st->enhanced, sizeof(st->enhanced), "%s", enhanced);
	snprintf(st->text, sizeof(st->text), fmt, key, extra);
}

/* Give back what the thread holds of kind (held names it). */
static void
give_back(char *held, enum kind kind)
{
	if (held[0] == '\0')
		return;
	pthread_mutex_lock(&lock);
	struct dest *d = lookup(held, kind);
	if (d->active > 0)
		d->active--;
	pthread_cond_broadcast(&freed);
	pthread_mutex_unlock(&lock);
	held[0] = '\0';
}

/* Caller holds lock. Wait (bounded) for a free slot of d; 0 or -1. */
static int
take_slot(const char *key, enum kind kind, long long limit)
{
	struct timespec until;
	struct dest *d = lookup(key, kind);

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SLOT_WAIT;
	while (limit > 0 && d->active >= limit) {	/* 0: no limit (unset) */
		if (pthread_cond_timedwait(&freed, &lock, &until) == ETIMEDOUT)
			return -1;
		d = lookup(key, kind);	/* the table may have moved */
	}
	d->active++;
	return 0;
}

/* Caller holds lock. Seconds to wait for the rate's turn, or -1 when
 * that is longer than SLOT_WAIT (the turn is not taken then). */
static double
rate_turn(struct dest *d)
{
	double now = monotonic(), start;

	if (mp_core.outbound.destination_interval <= 0)
		return 0;
	start = d->next_start > now ? d->next_start : now;
	if (start - now > SLOT_WAIT)
		return -1;
	d->next_start = start + mp_core.outbound.destination_interval;
	return start - now;
}

static void
sleep_for(double seconds)
{
	struct timespec ts = { (time_t)seconds,
	    (long)((seconds - (double)(time_t)seconds) * 1e9) };

	while (seconds > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Caller holds lock: 1 when dest is backed off (st says until when). */
static int
backed_off(const char *dest, struct mp_status *st)
{
	struct dest *d = lookup(dest, DEST);
	char why[140];
	struct tm tm;
	char when[16];

	if (d->dead_until <= time(NULL))
		return 0;
	localtime_r(&d->dead_until, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	snprintf(why, sizeof(why), "%s after %u failed connections; last: %.70s",
	    when, d->failures, d->last_error);
	set_status(st, "4.4.1", "destination %.80s is backed off until %.140s", dest, why);
	return 1;
}

int
mp_dest_begin(const char *dest, struct mp_status *st)
{
	double wait;

	if (held_dest[0] && strcasecmp(held_dest, dest) != 0) {
		smtp_client_release();	/* a kept connection elsewhere */
		give_back(held_host, HOST);
		give_back(held_dest, DEST);
	}
	pthread_mutex_lock(&lock);
	if (backed_off(dest, st)) {
		pthread_mutex_unlock(&lock);
		if (held_dest[0]) {
			smtp_client_release();
			give_back(held_host, HOST);
			give_back(held_dest, DEST);
		}
		return MP_TEMPFAIL;
	}
	if (held_dest[0] == '\0') {
		if (take_slot(dest, DEST, mp_core.outbound.destination_concurrency) < 0) {
			pthread_mutex_unlock(&lock);
			set_status(st, "4.4.5", "destination %.150s is busy%.40s", dest,
			    " (every connection slot in use)");
			return MP_TEMPFAIL;
		}
		mp_strlcpy(held_dest, dest, sizeof(held_dest));
	}
	wait = rate_turn(lookup(dest, DEST));
	pthread_mutex_unlock(&lock);
	if (wait < 0) {
		set_status(st, "4.4.5", "destination %.150s is over its rate%.40s", dest,
		    " (outbound.destination_rate)");
		return MP_TEMPFAIL;
	}
	sleep_for(wait);
	return MP_OK;
}

int
mp_dest_host_begin(const char *host, struct mp_status *st)
{
	int rc = 0;

	if (mp_core.outbound.host_concurrency <= 0 ||
	    (held_host[0] && strcasecmp(held_host, host) == 0))
		return MP_OK;
	if (held_host[0]) {
		smtp_client_release();	/* kept to the other host */
		give_back(held_host, HOST);
	}
	pthread_mutex_lock(&lock);
	rc = take_slot(host, HOST, mp_core.outbound.host_concurrency);
	pthread_mutex_unlock(&lock);
	if (rc < 0) {
		set_status(st, "4.4.5", "mail server %.150s is busy%.40s", host,
		    " (every connection slot in use)");
		return MP_TEMPFAIL;
	}
	mp_strlcpy(held_host, host, sizeof(held_host));
	return MP_OK;
}

/* Caller holds lock. */
static void
count_failure(struct dest *d, const struct mp_status *st)
{
	d->failures++;
	snprintf(d->last_error, sizeof(d->last_error), "%.190s", st->text);
	if (mp_core.outbound.destination_dead_after <= 0 ||
	    d->failures < (unsigned)mp_core.outbound.destination_dead_after)
		return;
	d->dead_until = time(NULL) + mp_core.outbound.destination_backoff;
	mp_log(MP_LOG_NOTICE, "destination %s backed off for %llds after %u failed "
	    "connections in a row (%s)", d->key, mp_core.outbound.destination_backoff,
	    d->failures, d->last_error);
}

void
mp_dest_end(const char *dest, int connect_failed, int answered,
    const struct mp_status *st)
{
	pthread_mutex_lock(&lock);
	struct dest *d = lookup(dest, DEST);
	if (connect_failed)
		count_failure(d, st);
	else if (answered) {
		d->failures = 0;
		d->dead_until = 0;
	}
	pthread_mutex_unlock(&lock);
	if (!smtp_client_has_kept()) {
		give_back(held_host, HOST);
		give_back(held_dest, DEST);
	}
}

void
mp_dest_idle(void)
{
	smtp_client_release();
	give_back(held_host, HOST);
	give_back(held_dest, DEST);
}

void
mp_dest_forget_dead(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < ntable; i++) {
		table[i].failures = 0;
		table[i].dead_until = 0;
	}
	pthread_mutex_unlock(&lock);
}

void
mp_dest_reset(void)
{
	pthread_mutex_lock(&lock);
	free(table);
	table = NULL;
	ntable = captable = 0;
	pthread_mutex_unlock(&lock);
}
