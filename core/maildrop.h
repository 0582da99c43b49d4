/*
 * core/maildrop.h - local submission by users other than root, the
 * Postfix postdrop/pickup model (docs/security.md, "Local submission").
 *
 * <state_dir>/maildrop is owned by server.user, group MP_DROP_GROUP,
 * mode 1730: the setgid merpati-postdrop (core/postdrop.c) may create
 * files there and nobody else may list, read or remove them. The daemon
 * watches it (inotify, and a scan every few seconds), reads each file
 * as untrusted input (sendmail_drop_decode), queues it with a Received
 * field naming the uid merpati-postdrop recorded, and removes it. A file
 * it refuses (not a plain file, too large, not the format) is logged
 * and moved to <state_dir>/corrupt/maildrop-<name>.
 */
#ifndef MERPATI_MAILDROP_H
#define MERPATI_MAILDROP_H

#include <stddef.h>

/* The group merpati-postdrop is installed setgid to (make install,
 * the Debian package). */
#define MP_DROP_GROUP "merpatidrop"
#define MP_DROP_DIR "maildrop"

/*
 * At start, as root and before the privilege drop: when MP_DROP_GROUP
 * exists, give state_dir that group with mode 0710 (its members may
 * only pass through) and create maildrop/ as described above. Without
 * the group, or when not root, only maildrop/ itself is created if it
 * can be (then only the daemon's own user can drop). 0, or -1 with the
 * reason in err.
 */
int mp_maildrop_prepare(const char *state_dir, const char *user, char *err,
    size_t errsize);

/* Start the pickup thread (after the queue runner). 0, or -1. */
int mp_maildrop_start(void);

/* At shutdown: tell the pickup thread to stop after the file in hand
 * (an unfinished pick-up stays in the maildrop for the next start). */
void mp_maildrop_stop(void);

#endif
