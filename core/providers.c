/*
 * core/providers.c - which loaded module provides each kind the core
 * calls: auth (server.auth, or the first auth module loaded), deliver
 * (the chosen mailstore when it can deliver),
 * route, resolve, retry and the mail store (server.mailstore, or the
 * first store loaded). Not here: loading the modules (loader.c) and
 * reading the settings (settings.c).
 */
#include <string.h>

#include "providers.h"
#include "settings.h"

static void
pick_store(struct mp_problems *problems)
{
	const char *want = mp_core.server.mailstore;
	struct mp_loaded *s = want[0] ? mp_modules_named(&mp_core.modules, want) :
	    mp_modules_kind(&mp_core.modules, MP_KIND_STORE);

	if (want[0] && (s == NULL || !(s->mod->kinds & MP_KIND_STORE))) {
		mp_problem(problems, "server.mailstore: \"%s\" is not a loaded store module",
		    want);
		return;
	}
	if (s && s->mod->kinds & MP_KIND_STORE) {
		mp_core.store.struct_size = sizeof(mp_core.store);
		mp_core.store.ops = s->mod->store;
		mp_core.store.ctx = s->ctx;
	}
}

/* The same rule as the store's: server.auth names the provider when
 * several auth modules are loaded (e.g. auth_pgsql beside auth_sqlite
 * during a move); unset, the first one loaded. */
static struct mp_loaded *
pick_auth(struct mp_problems *problems)
{
	const char *want = mp_core.server.auth;
	struct mp_loaded *a = want[0] ? mp_modules_named(&mp_core.modules, want) :
	    mp_modules_kind(&mp_core.modules, MP_KIND_AUTH);

	if (want[0] && (a == NULL || !(a->mod->kinds & MP_KIND_AUTH))) {
		mp_problem(problems, "server.auth: \"%s\" is not a loaded auth module",
		    want);
		return NULL;
	}
	if (a) {
		mp_core.auth.struct_size = sizeof(mp_core.auth);
		mp_core.auth.ops = a->mod->auth;
		mp_core.auth.ctx = a->ctx;
	}
	return a;
}

void
mp_providers_pick(struct mp_problems *problems)
{
	struct mp_loaded *a = pick_auth(problems);

	mp_core.deliver = mp_modules_kind(&mp_core.modules, MP_KIND_DELIVER);
	/* The chosen mailstore also receives local mail when it can. */
	struct mp_loaded *store = mp_core.server.mailstore[0] ?
	    mp_modules_named(&mp_core.modules, mp_core.server.mailstore) : NULL;
	if (store && (store->mod->kinds & MP_KIND_DELIVER))
		mp_core.deliver = store;
	mp_core.route = mp_modules_kind(&mp_core.modules, MP_KIND_ROUTE);
	mp_core.resolve = mp_modules_kind(&mp_core.modules, MP_KIND_RESOLVE);
	mp_core.retry = mp_modules_kind(&mp_core.modules, MP_KIND_RETRY);
	if (mp_core.deliver == NULL)
		mp_problem(problems,
		    "modules: no deliver module loaded (e.g. deliver_maildir = { ... })");
	pick_store(problems);
	if (a == NULL && mp_core.ndomains > 0 && mp_core.server.auth[0] == '\0')
		mp_problem(problems,
		    "modules: no auth module loaded; local users cannot be checked (e.g. auth_sqlite = { ... })");
}
