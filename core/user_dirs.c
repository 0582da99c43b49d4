/*
 * core/user_dirs.c - the directories server.user works in after the
 * privilege drop: server.state_dir and, with deliver_maildir, its mail
 * root. Before the drop the daemon creates a missing mail root and
 * gives it to that user, and both the daemon and check-config name any
 * directory the user cannot reach, with the fix, instead of the first
 * failed scan or delivery doing so later.
 */
#include <libconfig.h>
#include <stdio.h>

#include "privs.h"
#include "settings.h"
#include "user_dirs.h"

/* deliver_maildir.root as the module will resolve it (its default when
 * unset), or NULL when the module is not configured. */
static const char *
mail_root(void)
{
	const char *root = "../var/mail";	/* deliver_maildir's default */

	if (mp_core.cfg == NULL ||
	    config_lookup(&mp_core.cfg->lc, "modules.deliver_maildir") == NULL)
		return NULL;
	config_lookup_string(&mp_core.cfg->lc, "modules.deliver_maildir.root",
	    &root);
	return mp_cfg_resolve(mp_core.cfg, root);
}

int
mp_user_dirs(int create, struct mp_problems *problems)
{
	const char *user = mp_core.server.user, *root = mail_root();
	char err[1024];
	int rc = 0;

	/* state_dir itself is handed to the user by the drop; only the
	 * way to it matters here. */
	if (mp_user_dir(user, "server.state_dir", mp_core.server.state_dir, NULL,
	    0, 0, err, sizeof(err)) < 0) {
		mp_problem(problems, "%s", err);
		rc = -1;
	}
	if (root != NULL && mp_user_dir(user, "deliver_maildir.root", root,
	    mp_core.server.state_dir, create, 1, err, sizeof(err)) < 0) {
		mp_problem(problems, "%s", err);
		rc = -1;
	}
	return rc;
}
