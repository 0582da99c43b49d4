/*
 * tests/fuzz/no_modules.c - for targets that link core/settings.c (for
 * mp_core, CIDR parsing, ...) but load no module: settings.c also wires
 * modules and the host table, and these entry points are never reached.
 */
#include <stdlib.h>

#include "loader.h"
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

struct mp_loaded *
mp_modules_kind(struct mp_modules *mods, unsigned kind)
{
	abort();
}

struct mp_loaded *
mp_modules_named(struct mp_modules *mods, const char *name)
{
	abort();
}
