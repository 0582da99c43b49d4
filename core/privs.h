/*
 * core/privs.h - dropping root: after the sockets are bound and the
 * modules initialised, the daemon becomes server.user, and the state
 * directories it writes are handed over to that user first, without
 * following anything that user could have planted there.
 */
#ifndef MERPATI_PRIVS_H
#define MERPATI_PRIVS_H

#include <stddef.h>

/*
 * If running as root and user is not empty: verify state_dir (see
 * mp_state_dir_open), hand it and its queue/, queue/tmp/ and corrupt/
 * directories (with their plain files) to user through file
 * descriptors, then setgroups/setgid/setuid. 0 (also when not root), or
 * -1 with the reason in err.
 */
int mp_drop_privileges(const char *user, const char *state_dir, char *err,
    size_t errsize);

/*
 * A directory fd of state_dir that a root start may trust: reached from
 * "/" without following a symlink after realpath(), every ancestor owned
 * by root and writable by no one else (or sticky), state_dir owned by
 * root or user and not group/other-writable. Not root: state_dir plainly
 * opened. The fd (close-on-exec), or -1 with a clear reason in err.
 */
int mp_state_dir_open(const char *user, const char *state_dir, char *err,
    size_t errsize);

/* Give state_dir itself to user when root, after mp_state_dir_open's
 * checks. 0 (also when not root), or -1 with the reason in err. */
int mp_chown_to_user(const char *user, const char *state_dir, char *err,
    size_t errsize);

/*
 * A directory server.user must use after the drop (what: the setting
 * naming it, e.g. "deliver_maildir.root"). When root and user exist:
 * every existing ancestor must be searchable by user; with create, a
 * missing path whose existing ancestors are all root's and not writable
 * by user is made (0755 parents, 0750 itself) and given to user; with
 * need_write an existing directory must be writable by user.
 * handed_over (state_dir, or NULL) is judged as the user's: the drop
 * gives it to the user. 0 (also when
 * not root), or -1 with err naming the blocking directory and the fix.
 */
int mp_user_dir(const char *user, const char *what, const char *path,
    const char *handed_over, int create, int need_write, char *err,
    size_t errsize);

#endif
