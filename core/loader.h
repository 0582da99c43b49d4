/*
 * core/loader.h - finds, checks and dlopen()s modules, and runs their
 * init. Every refusal is one line: "module NAME (PATH): REASON".
 */
#ifndef MERPATI_LOADER_H
#define MERPATI_LOADER_H

#include <libconfig.h>
#include <merpati/merpati.h>

#include "config.h"

struct mp_module_tables;
struct mp_instance;

struct mp_loaded {
	char name[64];
	char path[4096];
	void *dl;
	/* The descriptor at this host's size: its kind tables are copies
	 * where members an older module lacks are NULL (loader.c). */
	const struct mp_module *mod;
	struct mp_module_tables *tables;
	void *ctx;
	int initialised;
	/* What the copies of one initialised instance share: how many
	 * configuration snapshots use it and the config trees it may point
	 * into (loader.c). NULL until init succeeded. */
	struct mp_instance *inst;
};

struct mp_modules {
	struct mp_loaded *v;
	size_t n;
};

/*
 * Open the shared object at path and check it is a merpati module of
 * this ABI named name. 0, or -1 with "module NAME (PATH): REASON" in err.
 */
int mp_module_open(const char *name, const char *path, struct mp_loaded *m,
    char *err, size_t errsize);

/* Run init with the module's config group; 0, or -1 with err set and
 * the module closed. */
int mp_module_init(struct mp_loaded *m, const struct mp_host *host,
    const config_setting_t *conf, char *err, size_t errsize);

/*
 * Drop m's use of its instance. The last user (configuration snapshot)
 * runs fini and releases the tables and the config trees the instance
 * was initialised or reloaded from; the others only forget m.
 */
void mp_module_close(struct mp_loaded *m);

/* *m becomes one more user of the initialised instance old (a reload
 * reusing it in its new snapshot). */
void mp_module_share(const struct mp_loaded *old, struct mp_loaded *m);

/* The instance of m keeps cfg alive as long as it lives: it was
 * initialised or reloaded from one of cfg's settings. */
void mp_module_keep_cfg(const struct mp_loaded *m, struct mp_cfg *cfg);

/*
 * Load and init every module under `modules` in cfg. Problems go to
 * problems (all of them, not just the first); returns the count.
 */
int mp_modules_load(struct mp_cfg *cfg, const char *module_dir,
    const struct mp_host *host, struct mp_modules *out,
    struct mp_problems *problems);
void mp_modules_unload(struct mp_modules *mods);

/* The first loaded module that implements kind, or NULL. */
struct mp_loaded *mp_modules_kind(struct mp_modules *mods, unsigned kind);

/* The module named name, or NULL. */
struct mp_loaded *mp_modules_named(struct mp_modules *mods, const char *name);

#endif
