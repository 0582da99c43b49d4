/*
 * core/loader.c - module loading (see loader.h).
 *
 * Checks happen in the order that gives the most useful message: the
 * file exists, is safe (Postfix's rule: not writable by group or others,
 * owned by root or by us), is ELF, dlopen()s, exports merpati_module,
 * speaks our ABI, names itself as configured, and provides a table for
 * each kind it claims with every member that may not be NULL. The core
 * then uses the host-sized copies of those tables (struct
 * mp_module_tables), never the module's own.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "util.h"

static int
refuse(char *err, size_t errsize, const char *name, const char *path,
    const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(err, errsize, "module %s (%s): %s", name, path, why);
	return -1;
}

/*
 * dlopen() maps segments without checking they are inside the file; a
 * truncated module would then crash the daemon with SIGBUS when touched.
 * So: a 64-bit shared object whose headers and loadable segments all lie
 * within the file. NULL when sound, else the reason.
 */
static const char *
elf_problem(int fd, off_t size)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;

	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		return "truncated ELF file (no complete header)";
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_DYN)
		return "not a 64-bit ELF shared object";
	if (eh.e_phentsize != sizeof(ph) ||
	    eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(ph) > (uint64_t)size ||
	    eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize > (uint64_t)size)
		return "truncated ELF file (headers beyond the end)";
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph))
			return "truncated ELF file";
		if (ph.p_type == PT_LOAD && ph.p_offset + ph.p_filesz > (uint64_t)size)
			return "truncated ELF file (segment beyond the end)";
	}
	return NULL;
}

static int
check_file(const char *name, const char *path, char *err, size_t errsize)
{
	struct stat st;
	unsigned char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return refuse(err, errsize, name, path, "cannot open: %s",
		    strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return refuse(err, errsize, name, path, "not a regular file");
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		close(fd);
		return refuse(err, errsize, name, path,
		    "unsafe permissions %04o: writable by group or others",
		    (unsigned)(st.st_mode & 07777));
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		close(fd);
		return refuse(err, errsize, name, path,
		    "owned by uid %u, not by root or uid %u",
		    (unsigned)st.st_uid, (unsigned)geteuid());
	}
	ssize_t n = read(fd, magic, sizeof(magic));
	const char *why = n == 4 && memcmp(magic, "\177ELF", 4) == 0 ?
	    elf_problem(fd, st.st_size) : "not an ELF shared object";
	close(fd);
	if (why)
		return refuse(err, errsize, name, path, "%s", why);
	return 0;
}

/*
 * The descriptor and kind tables as this host reads them (module.h rule
 * 4): copies at the host's sizes, members an older module lacks NULL.
 * The core only ever sees these, through mp_loaded.mod.
 */
struct mp_module_tables {
	struct mp_module desc;
	struct mp_auth_ops auth;
	struct mp_route_ops route;
	struct mp_resolve_ops resolve;
	struct mp_retry_ops retry;
	struct mp_deliver_ops deliver;
	struct mp_store_ops store;
	struct mp_filter_ops filter;
	struct mp_protocol_ops protocol;
};

#define KIND(k, member) { MP_KIND_##k, #member, \
	offsetof(struct mp_module, member), \
	offsetof(struct mp_module_tables, member), \
	sizeof(((struct mp_module_tables *)0)->member) }
static const struct kind_table {
	unsigned kind;
	const char *name;
	size_t desc_off;	/* the table pointer in struct mp_module */
	size_t copy_off;	/* the copy in struct mp_module_tables */
	size_t size;		/* this host's size of the table */
} kinds[] = {
	KIND(AUTH, auth), KIND(ROUTE, route), KIND(RESOLVE, resolve),
	KIND(RETRY, retry), KIND(DELIVER, deliver), KIND(STORE, store),
	KIND(FILTER, filter), KIND(PROTOCOL, protocol),
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* The ops members that may not be NULL (module.h, auth.h, store.h say
 * which may). */
#define NEED(k, type, m) { MP_KIND_##k, offsetof(struct type, m), #m }
static const struct required {
	unsigned kind;
	size_t off;
	const char *name;
} required[] = {
	NEED(AUTH, mp_auth_ops, user_exists), NEED(AUTH, mp_auth_ops, verify),
	NEED(ROUTE, mp_route_ops, route),
	NEED(RESOLVE, mp_resolve_ops, mx),
	NEED(RESOLVE, mp_resolve_ops, addresses),
	NEED(RETRY, mp_retry_ops, schedule),
	NEED(DELIVER, mp_deliver_ops, deliver),
	NEED(STORE, mp_store_ops, open), NEED(STORE, mp_store_ops, close),
	NEED(STORE, mp_store_ops, folders),
	NEED(STORE, mp_store_ops, folder_create),
	NEED(STORE, mp_store_ops, folder_delete),
	NEED(STORE, mp_store_ops, folder_rename),
	NEED(STORE, mp_store_ops, folder_subscribe),
	NEED(STORE, mp_store_ops, folder_open),
	NEED(STORE, mp_store_ops, folder_close),
	NEED(STORE, mp_store_ops, folder_info),
	NEED(STORE, mp_store_ops, messages),
	NEED(STORE, mp_store_ops, message_open),
	NEED(STORE, mp_store_ops, message_close),
	NEED(STORE, mp_store_ops, flags_set), NEED(STORE, mp_store_ops, append),
	NEED(STORE, mp_store_ops, copy), NEED(STORE, mp_store_ops, expunge),
	NEED(STORE, mp_store_ops, lock),
	NEED(FILTER, mp_filter_ops, end_of_data),
	NEED(PROTOCOL, mp_protocol_ops, protocol),
	NEED(PROTOCOL, mp_protocol_ops, session),
};

static const void *
table_of(const struct mp_module *mod, const struct kind_table *k)
{
	const void *table;

	memcpy(&table, (const char *)mod + k->desc_off, sizeof(table));
	return table;
}

/* Each claimed kind needs its table, and each table a sane size. */
static int
check_kinds(const struct mp_module *mod, const char **why)
{
	static _Thread_local char buf[128];

	for (size_t i = 0; i < NKINDS; i++) {
		const uint32_t *ops = table_of(mod, &kinds[i]);
		if (!(mod->kinds & kinds[i].kind))
			continue;
		if (ops == NULL || *ops < sizeof(uint32_t)) {
			snprintf(buf, sizeof(buf),
			    "claims kind %s but has no valid %s table",
			    kinds[i].name, kinds[i].name);
			*why = buf;
			return -1;
		}
	}
	if (mod->kinds & ~0xffu) {
		*why = "claims an unknown kind";
		return -1;
	}
	return 0;
}

/* Copy the descriptor and its claimed tables at this host's sizes. */
static struct mp_module_tables *
read_tables(const struct mp_module *mod)
{
	struct mp_module_tables *t = mp_xcalloc(1, sizeof(*t));

	t->desc.struct_size = sizeof(t->desc);
	MP_SIZED_READ(t->desc, mod);
	for (size_t i = 0; i < NKINDS; i++) {
		const uint32_t *ops = table_of(mod, &kinds[i]);
		void *copy = (char *)t + kinds[i].copy_off;
		if (!(mod->kinds & kinds[i].kind))
			ops = NULL;
		if (ops == NULL)
			copy = NULL;
		else
			mp_sized_copy(copy, kinds[i].size, ops, *ops, 0);
		memcpy((char *)&t->desc + kinds[i].desc_off, &copy, sizeof(copy));
	}
	return t;
}

/* A required ops member that is NULL in the host's copies, or NULL. */
static const char *
missing_op(const struct mp_module_tables *t, const char **kind_r)
{
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		const struct kind_table *k = &kinds[0];
		void (*fn)(void);
		while (k->kind != required[i].kind)
			k++;
		if (!(t->desc.kinds & k->kind))
			continue;
		memcpy(&fn, (const char *)t + k->copy_off + required[i].off,
		    sizeof(fn));
		if (fn == NULL) {
			*kind_r = k->name;
			return required[i].name;
		}
	}
	return NULL;
}

static int
check_descriptor(const struct mp_module *mod, const char *name,
    const char *path, char *err, size_t errsize)
{
	const char *why;

	if (mod->abi_version != MP_ABI_VERSION)
		return refuse(err, errsize, name, path,
		    "built for ABI version %u, this merpati speaks ABI %u: "
		    "rebuild the module against this merpati's headers",
		    (unsigned)mod->abi_version, (unsigned)MP_ABI_VERSION);
	if (mod->struct_size < offsetof(struct mp_module, protocol) +
	    sizeof(mod->protocol))
		return refuse(err, errsize, name, path,
		    "descriptor of %u bytes is smaller than ABI %u's",
		    (unsigned)mod->struct_size, (unsigned)MP_ABI_VERSION);
	if (mod->name == NULL || strcmp(mod->name, name) != 0)
		return refuse(err, errsize, name, path,
		    "calls itself \"%s\", configured as \"%s\"",
		    mod->name ? mod->name : "(null)", name);
	if (mod->init == NULL)
		return refuse(err, errsize, name, path, "has no init function");
	if (check_kinds(mod, &why) < 0)
		return refuse(err, errsize, name, path, "%s", why);
	return 0;
}

/* Read the checked descriptor into m; -1 when a required op is NULL. */
static int
adopt_tables(struct mp_loaded *m, const struct mp_module *mod, char *err,
    size_t errsize)
{
	const char *kind, *op;

	m->tables = read_tables(mod);
	m->mod = &m->tables->desc;
	if ((op = missing_op(m->tables, &kind)) != NULL)
		return refuse(err, errsize, m->name, m->path,
		    "its %s table has no %s (only members documented as "
		    "\"may be NULL\" may be)", kind, op);
	return 0;
}

int
mp_module_open(const char *name, const char *path, struct mp_loaded *m,
    char *err, size_t errsize)
{
	memset(m, 0, sizeof(*m));
	mp_strlcpy(m->name, name, sizeof(m->name));
	mp_strlcpy(m->path, path, sizeof(m->path));
	if (check_file(name, path, err, errsize) < 0)
		return -1;
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (m->dl == NULL)
		return refuse(err, errsize, name, path, "dlopen failed: %s",
		    dlerror());
	const struct mp_module *mod = dlsym(m->dl, MP_MODULE_SYMBOL);
	if (mod == NULL) {
		refuse(err, errsize, name, path,
		    "missing symbol %s (not a merpati module?)",
		    MP_MODULE_SYMBOL);
		mp_module_close(m);
		return -1;
	}
	if (check_descriptor(mod, name, path, err, errsize) < 0 ||
	    adopt_tables(m, mod, err, errsize) < 0) {
		mp_module_close(m);
		return -1;
	}
	return 0;
}

/* Shared by every mp_loaded copy of one initialised instance. Only the
 * main thread loads, reloads and frees configurations, so plain
 * counts do. */
struct mp_instance {
	unsigned users;		/* snapshots whose modules list it */
	struct mp_cfg **cfgs;	/* trees it may point into (one ref each) */
	size_t ncfgs;
};

int
mp_module_init(struct mp_loaded *m, const struct mp_host *host,
    const config_setting_t *conf, char *err, size_t errsize)
{
	const char *why = NULL;
	int rc;

	mp_log_set_module(m->name);
	rc = m->mod->init(host, (const struct mp_conf *)conf, &m->ctx, &why);
	mp_log_set_module(NULL);
	if (rc != MP_OK) {
		refuse(err, errsize, m->name, m->path, "init failed: %s",
		    why ? why : "(no reason given)");
		mp_module_close(m);
		return -1;
	}
	m->initialised = 1;
	m->inst = mp_xcalloc(1, sizeof(*m->inst));
	m->inst->users = 1;
	return 0;
}

void
mp_module_share(const struct mp_loaded *old, struct mp_loaded *m)
{
	*m = *old;
	m->inst->users++;
}

void
mp_module_keep_cfg(const struct mp_loaded *m, struct mp_cfg *cfg)
{
	struct mp_instance *in = m->inst;

	in->cfgs = mp_xresize(in->cfgs, in->ncfgs + 1, sizeof(*in->cfgs));
	in->cfgs[in->ncfgs++] = mp_cfg_ref(cfg);
}

/* The last user is gone: the instance's config trees follow it. */
static void
instance_free(struct mp_instance *in)
{
	for (size_t i = 0; i < in->ncfgs; i++)
		mp_cfg_free(in->cfgs[i]);
	free(in->cfgs);
	free(in);
}

void
mp_module_close(struct mp_loaded *m)
{
	if (m->inst && --m->inst->users > 0) {	/* another snapshot's too */
		memset(m, 0, sizeof(*m));
		return;
	}
	if (m->initialised)
		mp_metrics_forget(m->ctx);
	if (m->initialised && m->mod->fini) {
		mp_log_set_module(m->name);
		m->mod->fini(m->ctx);
		mp_log_set_module(NULL);
	}
	if (m->inst)
		instance_free(m->inst);
	m->inst = NULL;
	m->initialised = 0;
	/* Modules stay mapped: a thread may still be returning from one,
	 * and sanitizers report leaks in unloaded code as unknown. */
	m->mod = NULL;
	free(m->tables);
	m->tables = NULL;
}

static const char *
module_path(struct mp_cfg *cfg, const config_setting_t *group,
    const char *module_dir, const char *name)
{
	const char *explicit_path;
	char buf[PATH_MAX];

	if (config_setting_lookup_string(group, "path", &explicit_path))
		return mp_cfg_resolve(cfg, explicit_path);
	snprintf(buf, sizeof(buf), "%s/%s/%s.so", module_dir, name, name);
	return mp_cfg_resolve(cfg, buf);
}

static void
load_one(struct mp_cfg *cfg, const config_setting_t *group,
    const char *module_dir, const struct mp_host *host,
    struct mp_modules *out, struct mp_problems *problems)
{
	const char *name = config_setting_name(group);
	const char *path = module_path(cfg, group, module_dir, name);
	struct mp_loaded m;
	char err[1536];

	if (!config_setting_is_group(group)) {
		mp_problem(problems, "modules.%s: must be a group { ... }", name);
		return;
	}
	if (path == NULL) {
		mp_problem(problems, "modules.%s: path too long", name);
		return;
	}
	if (mp_reload_reuse_module(name, path, group, &m))
		;	/* unchanged settings: the running instance serves on */
	else if (mp_module_open(name, path, &m, err, sizeof(err)) < 0 ||
	    mp_module_init(&m, host, group, err, sizeof(err)) < 0) {
		mp_problem(problems, "%s%s", err, mp_reload_running() ?
		    " (its settings changed; restart merpatid to apply them)" : "");
		return;
	} else
		mp_module_keep_cfg(&m, cfg);	/* init may keep its settings */
	out->v = mp_xresize(out->v, out->n + 1, sizeof(*out->v));
	out->v[out->n++] = m;
}

int
mp_modules_load(struct mp_cfg *cfg, const char *module_dir,
    const struct mp_host *host, struct mp_modules *out,
    struct mp_problems *problems)
{
	const config_setting_t *mods = config_lookup(&cfg->lc, "modules");
	size_t before = problems->n;

	memset(out, 0, sizeof(*out));
	if (mods == NULL)
		return 0;
	if (!config_setting_is_group(mods)) {
		mp_problem(problems, "modules: must be a group { ... }");
		return 1;
	}
	for (int i = 0; i < config_setting_length(mods); i++)
		load_one(cfg, config_setting_get_elem(mods, (unsigned)i),
		    module_dir, host, out, problems);
	return (int)(problems->n - before);
}

void
mp_modules_unload(struct mp_modules *mods)
{
	for (size_t i = mods->n; i-- > 0;)
		mp_module_close(&mods->v[i]);
	free(mods->v);
	mods->v = NULL;
	mods->n = 0;
}

struct mp_loaded *
mp_modules_kind(struct mp_modules *mods, unsigned kind)
{
	for (size_t i = 0; i < mods->n; i++)
		if (mods->v[i].mod && (mods->v[i].mod->kinds & kind))
			return &mods->v[i];
	return NULL;
}

struct mp_loaded *
mp_modules_named(struct mp_modules *mods, const char *name)
{
	for (size_t i = 0; i < mods->n; i++)
		if (strcmp(mods->v[i].name, name) == 0)
			return &mods->v[i];
	return NULL;
}
