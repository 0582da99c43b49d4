/*
 * core/user_dirs.h - the directories server.user needs after the drop
 * (see user_dirs.c).
 */
#ifndef MERPATI_USER_DIRS_H
#define MERPATI_USER_DIRS_H

#include "config.h"

/*
 * When root (the daemon will drop to server.user): with create, make a
 * missing mail root and give it to server.user; then record a problem,
 * naming the fix, for each of state_dir and the mail root that user
 * cannot reach (or, for the mail root, write). 0, or -1 when a problem
 * was recorded.
 */
int mp_user_dirs(int create, struct mp_problems *problems);

#endif
