/*
 * modules/deliver_maildir/maildir_store.h - the Maildir implementation
 * of the mailstore API (store.h), private to this module.
 */
#ifndef MERPATI_MAILDIR_STORE_H
#define MERPATI_MAILDIR_STORE_H

#include <merpati/merpati.h>

/* What the store needs from the module's context. */
struct maildir_store_env {
	const struct mp_host *host;
	const char *root;	/* mail for a@d is in root/d/a/ */
};

/* Provided by deliver_maildir.c: the env inside the module context. */
const struct maildir_store_env *maildir_store_env(void *ctx);

/*
 * The user's Maildir path, root/<domain>/<local> lower-cased, refusing
 * anything that could leave root (empty parts, '/', '\\', control
 * characters, a leading '.'). 0, or -1 with *why set.
 */
int maildir_user_path(const char *root, const char *address, char *out,
    size_t size, const char **why);

extern const struct mp_store_ops maildir_store_ops;

#endif
