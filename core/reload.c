/*
 * core/reload.c - configuration snapshots and reload (see reload.h).
 *
 * The new snapshot is built on the main thread with mp_core_held
 * pointing at it, so the very functions that configure the daemon at
 * start (mp_core_configure, mp_core_load_modules) fill it; nothing else
 * sees it until one atomic store publishes it. Listeners follow the new
 * snapshot (listener.h): new ones are bound before it is published (a
 * port that cannot be bound refuses the reload), removed ones stop
 * accepting after. What cannot change while running is carried over
 * from the running snapshot and named in the log: server.state_dir /
 * user / module_dir / landlock, queue.workers and the metrics listener;
 * strings among those are copied, so the new snapshot never points
 * into the one it replaces.
 *
 * Replaced snapshots go on a list the main thread walks after each
 * reload and once a second (mp_reload_collect); one no hold counts is
 * freed there (reload.h says what that frees and the rule for readers).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>
#include <openssl/ssl.h>

#include "listener.h"
#include "loader.h"
#include "log.h"
#include "reload.h"
#include "settings.h"
#include "tls.h"
#include "util.h"

struct tls_files {
	char cert[4096], key[4096];
	struct stat cert_st, key_st;
	int known;
};

/* What the reload keeps about each configuration besides itself. */
struct snapshot_meta {
	atomic_int refs;	/* holds (sessions, attempts, threads' turns) */
	unsigned generation;
	struct tls_files tls;	/* what its server TLS context was made from */
	char **carried;		/* strings copied from the one it replaced */
	size_t ncarried;
	struct mp_core_config *next_retired;
};

/* A reloaded configuration; the start-up one is settings.c's
 * mp_core_boot, with its meta here. */
struct snapshot {
	struct mp_core_config core;	/* first: meta_of() casts back */
	struct snapshot_meta meta;
};

static struct snapshot_meta boot_meta;

/* Threads between reading mp_core_now and counting their hold on it
 * (see mp_reload_collect). */
static atomic_int holding;

/* Replaced configurations not yet freed; the main thread's alone. */
static struct mp_core_config *retired;

static struct snapshot_meta *
meta_of(struct mp_core_config *c)
{
	return c == &mp_core_boot ? &boot_meta : &((struct snapshot *)c)->meta;
}

void
mp_core_hold(void)
{
	struct mp_core_config *c;

	atomic_fetch_add(&holding, 1);
	c = atomic_load(&mp_core_now);
	atomic_fetch_add(&meta_of(c)->refs, 1);
	atomic_fetch_sub(&holding, 1);
	mp_core_held = c;
}

void
mp_core_release(void)
{
	if (mp_core_held)
		atomic_fetch_sub(&meta_of(mp_core_held)->refs, 1);
	mp_core_held = NULL;
}

/* ---- freeing replaced configurations ------------------------------------- */

/* What c owns: its TLS context references, its modules (an instance
 * another snapshot reuses lives on there), its config tree (kept while
 * a module instance from it lives), its lists and carried strings. */
static void
free_snapshot(struct mp_core_config *c)
{
	struct snapshot_meta *m = meta_of(c);

	SSL_CTX_free(c->tls_ctx);
	SSL_CTX_free(c->tls_client_ctx);
	mp_core_held = c;	/* mp_core_shutdown() ends mp_core */
	mp_core_shutdown();
	mp_core_held = NULL;
	for (size_t i = 0; i < m->ncarried; i++)
		free(m->carried[i]);
	free(m->carried);
	if (c != &mp_core_boot)
		free(c);
}

/*
 * A retired snapshot is freed when no hold counts it. A thread that
 * read mp_core_now before the reload replaced it but has not yet
 * counted its hold is inside mp_core_hold() with `holding` raised;
 * while any thread is (a few instructions), nothing is freed this
 * turn. Otherwise such a thread's count is already visible (sequential
 * consistency), and any later hold reads the newer snapshot.
 */
void
mp_reload_collect(void)
{
	struct mp_core_config **p = &retired;

	if (atomic_load(&holding) != 0)
		return;
	while (*p) {
		struct mp_core_config *c = *p;
		struct snapshot_meta *m = meta_of(c);
		if (atomic_load(&m->refs) != 0) {
			p = &m->next_retired;
			continue;
		}
		*p = m->next_retired;
		mp_log(MP_LOG_INFO, "reload: configuration %u freed (nothing uses it)",
		    m->generation);
		free_snapshot(c);
	}
}

/* ---- modules: reuse the running instance when nothing changed ------------ */

static const struct mp_core_config *reuse_from;	/* set while reloading */

/* Running instances whose changed settings their reload op applies once
 * every other check passed (so a refused reload changes nothing else). */
struct pending_reload {
	const struct mp_loaded *m;
	const config_setting_t *group;
};
static struct pending_reload pending[32];
static size_t npending;

int mp_reload_running(void) { return reuse_from != NULL; }

static int
scalar_equal(const config_setting_t *a, const config_setting_t *b)
{
	switch (config_setting_type(a)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return config_setting_get_int64(a) == config_setting_get_int64(b);
	case CONFIG_TYPE_FLOAT:
		return config_setting_get_float(a) == config_setting_get_float(b);
	case CONFIG_TYPE_BOOL:
		return config_setting_get_bool(a) == config_setting_get_bool(b);
	case CONFIG_TYPE_STRING:
		return strcmp(config_setting_get_string(a),
		    config_setting_get_string(b)) == 0;
	default:
		return 0;
	}
}

/* Recursion follows the config file's nesting, which libconfig has
 * already parsed (bounded by the admin's file, not by clients). */
int
mp_cfg_setting_equal(const void *va, const void *vb)
{
	const config_setting_t *a = va, *b = vb;
	int n;

	if (config_setting_type(a) != config_setting_type(b))
		return 0;
	if (!config_setting_is_aggregate(a))
		return scalar_equal(a, b);
	n = config_setting_length(a);
	if (n != config_setting_length(b))
		return 0;
	for (int i = 0; i < n; i++) {
		const config_setting_t *x = config_setting_get_elem(a, (unsigned)i);
		const config_setting_t *y = config_setting_get_elem(b, (unsigned)i);
		const char *nx = config_setting_name(x), *ny = config_setting_name(y);
		if ((nx || ny) && (!nx || !ny || strcmp(nx, ny) != 0))
			return 0;
		if (!mp_cfg_setting_equal(x, y))
			return 0;
	}
	return 1;
}

int
mp_reload_reuse_module(const char *name, const char *path, const void *group,
    struct mp_loaded *m)
{
	const config_setting_t *mods, *old_group;
	const struct mp_loaded *old;

	if (reuse_from == NULL || reuse_from->cfg == NULL)
		return 0;
	old = NULL;
	for (size_t i = 0; i < reuse_from->modules.n && !old; i++)
		if (strcmp(reuse_from->modules.v[i].name, name) == 0)
			old = &reuse_from->modules.v[i];
	mods = config_lookup(&reuse_from->cfg->lc, "modules");
	old_group = mods ? config_setting_get_member(mods, name) : NULL;
	if (old == NULL || old->mod == NULL || !old->initialised ||
	    strcmp(old->path, path) != 0 || old_group == NULL)
		return 0;
	if (!mp_cfg_setting_equal(old_group, group)) {
		if (old->mod->reload == NULL ||
		    npending == sizeof(pending) / sizeof(pending[0]))
			return 0;	/* a new instance, from init */
		pending[npending++] = (struct pending_reload){ old, group };
	}
	mp_module_share(old, m);
	return 1;
}

/* The modules' reload ops, last: a failure refuses the reload (an op
 * that already succeeded in this pass keeps its new settings; the
 * module's instance is shared, there is nothing to return to, and it
 * keeps cfg, the new tree, alive whatever becomes of the reload). */
static void
apply_module_reloads(struct mp_cfg *cfg, struct mp_problems *problems)
{
	for (size_t i = 0; i < npending && problems->n == 0; i++) {
		const struct mp_loaded *m = pending[i].m;
		const char *why = NULL;
		mp_log_set_module(m->name);
		int rc = m->mod->reload(m->ctx, (const struct mp_conf *)pending[i].group,
		    &why);
		mp_log_set_module(NULL);
		if (rc != MP_OK)
			mp_problem(problems, "modules.%s: %s (its running settings stay)",
			    m->name, why ? why : "the module refused its new settings");
		else {
			mp_module_keep_cfg(m, cfg);
			mp_log(MP_LOG_INFO, "reload: module %s applied its new settings",
			    m->name);
		}
	}
	npending = 0;
}

/* ---- TLS: re-read only what changed ------------------------------------- */

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void
note_tls_files(struct tls_files *t, const struct mp_core_config *c)
{
	memset(t, 0, sizeof(*t));
	mp_strlcpy(t->cert, c->tls_cert, sizeof(t->cert));
	mp_strlcpy(t->key, c->tls_key, sizeof(t->key));
	t->known = stat(t->cert, &t->cert_st) == 0 && stat(t->key, &t->key_st) == 0;
}

void
mp_reload_note_tls(void)
{
	note_tls_files(&boot_meta.tls, &mp_core_boot);
}

static int
tls_needed(const struct mp_core_config *c)
{
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i].tls != LISTEN_TLS_NONE)
			return 1;
	return 0;
}

/* One more reference to a context another snapshot has too: each
 * snapshot frees its own. */
static void *
share_ctx(void *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
	return ctx;
}

/* The new snapshot's server context: the running one when the same
 * files are unchanged, else a new one (the same checks as at start). */
static void
reload_tls(struct snapshot *s, struct mp_core_config *oldc,
    const struct snapshot_meta *om, struct mp_problems *problems)
{
	struct tls_files now;
	char err[1024];

	s->core.tls_client_ctx = share_ctx(oldc->tls_client_ctx);
	if (s->core.tls_client_ctx == NULL && strcmp(s->core.outbound.tls, "none") != 0 &&
	    (s->core.tls_client_ctx = mp_tls_client_ctx(err, sizeof(err))) == NULL)
		mp_problem(problems, "%s", err);
	if (!tls_needed(&s->core))
		return;
	note_tls_files(&now, &s->core);
	int same_paths = strcmp(now.cert, om->tls.cert) == 0 &&
	    strcmp(now.key, om->tls.key) == 0;
	if (oldc->tls_ctx && same_paths && !now.known) {
		/* The start-up files, e.g. the generated pair in a directory
		 * only root may enter: unchanged as far as we can tell. */
		mp_log(MP_LOG_WARNING, "reload: cannot look at %s or %s as "
		    "server.user: the running certificate stays (restart to "
		    "re-read them)", now.cert, now.key);
		s->core.tls_ctx = share_ctx(oldc->tls_ctx);
		s->meta.tls = om->tls;
		return;
	}
	if (oldc->tls_ctx && om->tls.known && now.known && same_paths &&
	    same_file(&now.cert_st, &om->tls.cert_st) &&
	    same_file(&now.key_st, &om->tls.key_st)) {
		s->core.tls_ctx = share_ctx(oldc->tls_ctx);
		s->meta.tls = om->tls;
		return;
	}
	s->core.tls_ctx = mp_tls_server_ctx(s->core.tls_cert, s->core.tls_key,
	    s->core.server.hostname, err, sizeof(err));
	if (s->core.tls_ctx == NULL) {
		mp_problem(problems, "%s%s", err, errno == EACCES ?
		    " (merpatid runs as server.user now: the certificate, the key "
		    "and their directories must be readable by it)" : "");
		return;
	}
	note_tls_files(&s->meta.tls, &s->core);
	mp_log(MP_LOG_INFO, "reload: TLS certificate %s and key %s read",
	    s->core.tls_cert, s->core.tls_key);
}

/* ---- what a reload cannot change ----------------------------------------- */

static int
differs(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") != 0;
}

/* A copy of a string another snapshot owns, owned by s. */
static const char *
carry(struct snapshot *s, const char *str)
{
	struct snapshot_meta *m = &s->meta;

	if (str == NULL)
		return NULL;
	m->carried = mp_xresize(m->carried, m->ncarried + 1, sizeof(*m->carried));
	return m->carried[m->ncarried++] = mp_xstrdup(str);
}

static void
keep_fixed(struct snapshot *s, const struct mp_core_config *old)
{
	struct mp_core_config *c = &s->core;

	if (differs(c->server.state_dir, old->server.state_dir) ||
	    differs(c->server.user, old->server.user) ||
	    differs(c->server.module_dir, old->server.module_dir) ||
	    c->server.landlock != old->server.landlock)
		mp_log(MP_LOG_WARNING, "reload: server.state_dir, user, module_dir "
		    "and landlock need a restart; the running values stay");
	/* Copies: old, and the tree its strings live in, may be freed
	 * before this snapshot. */
	c->server.state_dir = carry(s, old->server.state_dir);
	c->server.user = carry(s, old->server.user);
	c->server.module_dir = carry(s, old->server.module_dir);
	c->server.landlock = old->server.landlock;
	memcpy(c->queue_dir, old->queue_dir, sizeof(c->queue_dir));
	if (c->queue.workers != old->queue.workers)
		mp_log(MP_LOG_WARNING, "reload: queue.workers needs a restart; "
		    "%lld workers keep running", old->queue.workers);
	c->queue.workers = old->queue.workers;
	if (memcmp(&c->metrics, &old->metrics, sizeof(c->metrics)) != 0)
		mp_log(MP_LOG_WARNING, "reload: metrics needs a restart; the "
		    "running metrics listener stays");
	c->metrics = old->metrics;
}

/* ---- the reload ------------------------------------------------------------ */

static void
refuse(struct snapshot *s, struct mp_problems *problems)
{
	for (size_t i = 0; i < problems->n; i++)
		mp_log(MP_LOG_ERR, "reload: %s", problems->lines[i]);
	mp_log(MP_LOG_ERR, "reload refused (%zu problem(s)): the running "
	    "configuration stays", problems->n);
	mp_problems_free(problems);
	free_snapshot(&s->core);	/* the running instances it reused stay */
}

int
mp_reload(const char *file, char *const *overrides, size_t noverrides)
{
	struct mp_core_config *oldc = atomic_load(&mp_core_now);
	struct snapshot_meta *om = meta_of(oldc);
	struct snapshot *s = mp_xcalloc(1, sizeof(*s));
	struct mp_problems problems = { 0 };

	mp_log(MP_LOG_NOTICE, "reload: reading %s", file);
	mp_core_held = &s->core;
	reuse_from = oldc;
	npending = 0;
	if (mp_core_configure(file, overrides, noverrides, &problems) == 0)
		mp_core_load_modules(&problems);
	else if (s->core.cfg && s->core.server.module_dir)
		mp_core_load_modules(&problems);	/* report those too */
	reuse_from = NULL;
	if (problems.n == 0)
		reload_tls(s, oldc, om, &problems);
	/* Before the modules' reload ops, which cannot be undone: a port
	 * that cannot be bound refuses the reload with nothing applied. */
	if (problems.n == 0)
		mp_listener_prepare(&s->core, &problems);
	if (problems.n == 0)
		apply_module_reloads(s->core.cfg, &problems);
	npending = 0;
	if (problems.n > 0) {
		mp_listener_abort();
		refuse(s, &problems);
		return -1;
	}
	keep_fixed(s, oldc);
	s->meta.generation = om->generation + 1;
	mp_core_held = NULL;
	atomic_store(&mp_core_now, &s->core);
	mp_listener_commit();
	om->next_retired = retired;
	retired = oldc;
	mp_log_set_json(s->core.log_json);
	mp_log(MP_LOG_NOTICE, "reload: configuration %u in force for new sessions "
	    "and deliveries (%zu module(s)); %d session(s) or attempt(s) finish on "
	    "configuration %u", s->meta.generation, s->core.modules.n,
	    atomic_load(&om->refs), om->generation);
	mp_reload_collect();
	return 0;
}
