/*
 * core/cli_store.c - `merpati store init [STORE]`: creates or upgrades
 * a mailstore's own storage (a database store's tables) through the
 * store's storage_init op (store.h, since 2.1). STORE defaults to
 * server.mailstore; a store without the op needs no setting up and
 * says so. Safe to run again, and from several nodes at once (the store
 * serialises it). It runs as server.user, like the daemon.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "privs.h"
#include "settings.h"

int
cli_store(const char *config, char **overrides, size_t n, int argc, char **argv)
{
	const char *name, *err = NULL;
	struct mp_loaded *m;
	uint32_t version = 0;
	char why[256];
	int rc;

	if (argc < 1 || argc > 2 || strcmp(argv[0], "init") != 0) {
		fputs("usage: merpati store init [STORE]\n", stderr);
		return 2;
	}
	cli_setup(config, overrides, n, 1);
	name = argc == 2 ? argv[1] : mp_core.server.mailstore;
	m = name[0] ? mp_modules_named(&mp_core.modules, name) : NULL;
	if (m == NULL || !(m->mod->kinds & MP_KIND_STORE)) {
		fprintf(stderr, "merpati: %s is not a loaded store module\n",
		    name[0] ? name : "(server.mailstore unset)");
		return 1;
	}
	if (mp_drop_privileges(mp_core.server.user, mp_core.server.state_dir, why,
	    sizeof(why)) < 0) {
		fprintf(stderr, "merpati: %s\n", why);
		return 1;
	}
	if (m->mod->store->storage_init == NULL) {	/* may be NULL (store.h) */
		printf("%s: nothing to set up\n", name);
		mp_core_shutdown();
		return 0;
	}
	rc = m->mod->store->storage_init(m->ctx, &version, &err);
	if (rc == MP_OK)
		printf("%s: schema version %u in place\n", name, version);
	else
		fprintf(stderr, "merpati: %s: %s\n", name, err ? err : "setup failed");
	mp_core_shutdown();
	return rc == MP_OK ? 0 : 1;
}
