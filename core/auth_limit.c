/*
 * core/auth_limit.c - the process-wide count of failed logins per
 * client address (an IPv6 client by its /64) over a sliding window of
 * merpati/ratewin.h: the same implementation the ratelimit module uses.
 * SMTP AUTH calls it directly, IMAP and POP3 through the host table
 * (auth_limit_enter/leave).
 *
 * Exact under concurrency: a password check in progress holds a place
 * ("checking"), and a new one starts only while failures + checks in
 * progress stay under the limit, so parallel guessers get exactly the
 * limit's worth of checks. A login that finds every place taken waits
 * (briefly, bounded) instead of failing: many good logins from one
 * address at once, as from a webmail host, are slowed, never refused.
 *
 * Made on first use, with the window of that moment (the limit itself
 * is read at each call). Each table holds at most AUTH_LIMIT_KEYS
 * addresses, the least recently seen forgotten first, so a flood of
 * addresses costs bounded memory.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>

#include <merpati/ratewin.h>

#include "auth_limit.h"
#include "settings.h"

/* Addresses each table remembers at once: about 150 bytes each, so
 * the two tables stay under 16 MB. */
#define AUTH_LIMIT_KEYS 50000
/* A place is given back within a check and its failure pause (at most
 * 5 s); an hour only bounds a place a lost thread would never return. */
#define CHECKING_WINDOW_MS (3600 * 1000)
#define WAIT_STEP_MS 20
#define WAIT_MAX_MS 10000

static struct mp_ratewin *failures, *checking;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
/* Makes "count the failures, then take a place" one step. */
static pthread_mutex_t places = PTHREAD_MUTEX_INITIALIZER;

static void
make_tables(void)
{
	failures = mp_ratewin_new(mp_core.limits.auth_failures_window * 1000,
	    AUTH_LIMIT_KEYS);
	checking = mp_ratewin_new(CHECKING_WINDOW_MS, AUTH_LIMIT_KEYS);
}

/* 1 with a place taken, 0 when the address is over the limit, -1 when
 * every place left is held by a check in progress. */
static int
try_enter(const char *key, unsigned long limit)
{
	int r;

	pthread_mutex_lock(&places);
	unsigned long failed = mp_ratewin_count(failures, key);
	if (failed >= limit)
		r = 0;
	else
		r = mp_ratewin_take(checking, key, limit - failed) ? 1 : -1;
	pthread_mutex_unlock(&places);
	return r;
}

int
mp_auth_limit_enter(const char *client)
{
	long long limit = mp_core.limits.auth_failures_per_ip;
	char key[64];
	int r;

	if (limit <= 0)
		return 1;
	pthread_once(&tables_once, make_tables);
	if (failures == NULL || checking == NULL)
		return 1;	/* out of memory: do not lock everyone out */
	mp_ratewin_ip_key(client, key, sizeof(key));
	for (int waited = 0; (r = try_enter(key, (unsigned long)limit)) < 0;
	    waited += WAIT_STEP_MS) {
		if (waited >= WAIT_MAX_MS)
			return 0;	/* places held this long: a flood */
		poll(NULL, 0, WAIT_STEP_MS);
	}
	return r;
}

void
mp_auth_limit_leave(const char *client, int failed)
{
	char key[64];

	if (mp_core.limits.auth_failures_per_ip <= 0)
		return;
	pthread_once(&tables_once, make_tables);
	if (failures == NULL || checking == NULL)
		return;
	mp_ratewin_ip_key(client, key, sizeof(key));
	pthread_mutex_lock(&places);
	if (failed)
		mp_ratewin_take(failures, key, ULONG_MAX);
	mp_ratewin_give(checking, key);
	pthread_mutex_unlock(&places);
}
