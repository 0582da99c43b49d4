/*
 * core/privs.h - dropping root: after the sockets are bound and the
 * modules initialised, the daemon becomes server.user, and the state
 * directories it writes are handed over to that user first.
 */
#ifndef MERPATI_PRIVS_H
#define MERPATI_PRIVS_H

#include <stddef.h>

/*
 * If running as root and user is not empty: chown the state dirs to
 * user, then setgroups/setgid/setuid. 0 (also when not root), or -1
 * with the reason in err.
 */
int mp_drop_privileges(const char *user, const char *state_dir, char *err,
    size_t errsize);

/* Give path (and, for a queue directory, its files) to user when root. */
int mp_chown_to_user(const char *user, const char *path, int recurse_files);

#endif
