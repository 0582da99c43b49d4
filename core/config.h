/*
 * core/config.h - merpati's configuration: one libconfig file, `-o
 * path=value` overrides, relative paths resolved against the file's
 * directory, declarative option tables (struct mp_option) for the core
 * and for modules, and a list of every problem found.
 */
#ifndef MERPATI_CONFIG_H
#define MERPATI_CONFIG_H

#include <libconfig.h>
#include <merpati/module.h>

/* Every problem found while loading; check-config prints them all. */
struct mp_problems {
	char **lines;
	size_t n;
};
void mp_problem(struct mp_problems *p, const char *fmt, ...) MP_PRINTF(2, 3);
void mp_problems_free(struct mp_problems *p);

struct mp_cfg {
	config_t lc;
	char path[4096];	/* the config file as given */
	char dir[4096];		/* its directory, absolute */
	char **owned;		/* strings handed out by conf_options */
	size_t nowned;
	/* Its holders: whoever loaded it, plus each module instance
	 * initialised or reloaded from it (a module may keep pointers into
	 * its settings, module.h). The main thread alone changes it. */
	unsigned refs;
};

/*
 * Read file and apply overrides ("a.b.c=value", value in libconfig
 * syntax, or a bare word taken as a string). Returns NULL and records
 * the problem when the file cannot be read or parsed.
 */
struct mp_cfg *mp_cfg_load(const char *file, char *const *overrides,
    size_t noverrides, struct mp_problems *problems);
/* One more holder of cfg; returns cfg. */
struct mp_cfg *mp_cfg_ref(struct mp_cfg *cfg);
/* Drop one holder; the last one frees the tree and its strings. */
void mp_cfg_free(struct mp_cfg *cfg);

/* Apply one override; 0, or -1 with a message in err. */
int mp_cfg_override(config_t *lc, const char *expr, char *err, size_t errsize);

/* The dotted path of a setting, e.g. "modules.auth_sqlite.database". */
void mp_cfg_setting_path(const config_setting_t *s, char *out, size_t size);

/* The host's conf_options (see module.h); conf is a config_setting_t. */
int mp_cfg_options(const struct mp_conf *conf, const struct mp_option *table,
    void *settings, const char **error_r);

/* Resolve a relative path against the config dir; result owned by cfg. */
const char *mp_cfg_resolve(struct mp_cfg *cfg, const char *path);

#endif
