/*
 * core/auth_limit.h - failed logins per client address across
 * connections (limits.auth_failures_per_ip in limits.auth_failures_window),
 * so that guessing over many parallel connections is cut off as surely
 * as over one. Private to the core.
 */
#ifndef MERPATI_AUTH_LIMIT_H
#define MERPATI_AUTH_LIMIT_H

/*
 * Before checking a password from client: 1 when it may be checked (a
 * place is held for the check, so parallel attempts cannot overshoot
 * the limit; it may wait up to 10 s for one while other checks from
 * the address are in progress), 0 when client is over the limit.
 * Always 1 when the limit is off (limits.auth_failures_per_ip = 0).
 */
int mp_auth_limit_enter(const char *client);

/* After a check that mp_auth_limit_enter allowed: failed 1 counts a
 * wrong password; the check's place is given back either way. */
void mp_auth_limit_leave(const char *client, int failed);

#endif
