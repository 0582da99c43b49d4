/*
 * merpati/auth.h - the auth kind: who the local users are, and their
 * passwords. Used by RCPT (does this mailbox exist?), by AUTH/LOGIN in
 * SMTP, POP3 and IMAP, and by `merpati user ...`.
 *
 * Every callback may run concurrently from several threads.
 * Addresses are full "local@domain", compared case-insensitively.
 * *error_r, when set, stays valid until the next call from the same
 * thread.
 */
#ifndef MERPATI_AUTH_H
#define MERPATI_AUTH_H

#include <merpati/module.h>

struct mp_auth_ops {
	uint32_t struct_size;

	/* 1 the user exists, 0 not, -1 error (the caller tempfails). */
	int (*user_exists)(void *ctx, const char *address,
	    const char **error_r);
	/* 1 password matches, 0 wrong or no such user, -1 error. */
	int (*verify)(void *ctx, const char *address, const char *password,
	    const char **error_r);

	/* Administration; MP_OK, MP_DECLINED (exists / no such user),
	 * MP_ERROR. Passwords are stored hashed, never in clear. Each of
	 * these four may be NULL: users are then managed elsewhere, and
	 * `merpati user` says so. */
	int (*user_add)(void *ctx, const char *address, const char *password,
	    const char **error_r);
	int (*user_del)(void *ctx, const char *address, const char **error_r);
	int (*user_passwd)(void *ctx, const char *address,
	    const char *password, const char **error_r);
	/* Calls each(arg, address) in address order. MP_OK or MP_ERROR. */
	int (*user_list)(void *ctx,
	    void (*each)(void *arg, const char *address), void *arg,
	    const char **error_r);

	/* since 2.1 -- the directory: local domains and aliases kept by the
	 * auth provider (e.g. in a database several nodes share). Either may
	 * be NULL, or beyond struct_size for a 2.0 module: the core then has
	 * only its static `domains` list and routing's rewrites. */

	/* 1 domain (lower-case, no '@') is local, 0 not, -1 error (the
	 * caller tempfails). Asked for domains not in the static list. */
	int (*domain_exists)(void *ctx, const char *domain,
	    const char **error_r);
	/* What address (in a local domain) expands to: 1 with *targets_r an
	 * array of *ntargets_r (>= 1) full addresses, the array and each
	 * string host->alloc()ed and freed by the caller with host->free;
	 * 0 not an alias (deliver to the user, if any); -1 error. A target
	 * may be the alias itself (keep a copy in its own mailbox). */
	int (*alias_expand)(void *ctx, const char *address, char ***targets_r,
	    size_t *ntargets_r, const char **error_r);
};

/* What host->auth() returns: the provider in use. */
struct mp_auth {
	uint32_t struct_size;
	const struct mp_auth_ops *ops;
	void *ctx;
};

#endif
