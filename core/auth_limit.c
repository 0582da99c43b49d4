/*
 * core/auth_limit.c - the process-wide table of failed logins per
 * client address (an IPv6 client by its /64), a sliding window of
 * merpati/ratewin.h: the same implementation the ratelimit module uses.
 * SMTP AUTH calls it directly, IMAP and POP3 through the host table
 * (auth_limit_enter/leave). Made on first use, with the window of that
 * moment (the limit itself is read at each call); its size is capped,
 * the least recently seen addresses forgotten first, so a flood of
 * addresses costs bounded memory.
 */
#include <pthread.h>

#include <merpati/ratewin.h>

#include "auth_limit.h"
#include "settings.h"

/* Addresses remembered at once: about 400 bytes each, 20 MB at most. */
#define AUTH_LIMIT_KEYS 50000

static struct mp_ratewin *failures;
static pthread_once_t failures_once = PTHREAD_ONCE_INIT;

static void
make_table(void)
{
	failures = mp_ratewin_new(mp_core.limits.auth_failures_window * 1000,
	    AUTH_LIMIT_KEYS);
}

int
mp_auth_limit_enter(const char *client)
{
	char key[64];

	if (mp_core.limits.auth_failures_per_ip <= 0)
		return 1;
	pthread_once(&failures_once, make_table);
	if (failures == NULL)	/* out of memory: do not lock everyone out */
		return 1;
	return mp_ratewin_take(failures, mp_ratewin_ip_key(client, key,
	    sizeof(key)), (unsigned long)mp_core.limits.auth_failures_per_ip);
}

void
mp_auth_limit_leave(const char *client, int failed)
{
	char key[64];

	if (failed || mp_core.limits.auth_failures_per_ip <= 0)
		return;
	pthread_once(&failures_once, make_table);
	if (failures != NULL)
		mp_ratewin_give(failures, mp_ratewin_ip_key(client, key, sizeof(key)));
}
