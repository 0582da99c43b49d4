/*
 * tests/fuzz/no_modules.c - for targets that link core/settings.c (for
 * mp_core, CIDR parsing, ...) but load no module: settings.c also wires
 * modules, the host table and the providers (providers.c), and asks the
 * auth provider's directory about domains; these entry points are never
 * reached.
 */
#include <stdlib.h>

#include "loader.h"
#include "modcall.h"
#include "providers.h"
#include "settings.h"

const struct mp_host mp_host_table;

int
mp_modules_load(struct mp_cfg *cfg, const char *module_dir, const struct mp_host *host,
    struct mp_modules *mods, struct mp_problems *problems)
{
	abort();
}

void
mp_modules_unload(struct mp_modules *mods)
{
	abort();
}

void
mp_providers_pick(struct mp_problems *problems)
{
	abort();
}

int
mp_call_auth_domain_exists(const char *domain, const char **error_r)
{
	abort();
}
