/*
 * core/loader.c - module loading (see loader.h).
 *
 * Checks happen in the order that gives the most useful message: the
 * file exists, is safe (Postfix's rule: not writable by group or others,
 * owned by root or by us), is ELF, dlopen()s, exports merpati_module,
 * speaks our ABI, names itself as configured, and provides a table for
 * each kind it claims.
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

/* Each claimed kind needs its table, and each table a sane size. */
static int
check_kinds(const struct mp_module *mod, const char **why)
{
	static const struct { unsigned kind; size_t off; const char *name; }
	kinds[] = {
		{ MP_KIND_AUTH, offsetof(struct mp_module, auth), "auth" },
		{ MP_KIND_ROUTE, offsetof(struct mp_module, route), "route" },
		{ MP_KIND_RESOLVE, offsetof(struct mp_module, resolve), "resolve" },
		{ MP_KIND_RETRY, offsetof(struct mp_module, retry), "retry" },
		{ MP_KIND_DELIVER, offsetof(struct mp_module, deliver), "deliver" },
		{ MP_KIND_STORE, offsetof(struct mp_module, store), "store" },
		{ MP_KIND_FILTER, offsetof(struct mp_module, filter), "filter" },
		{ MP_KIND_PROTOCOL, offsetof(struct mp_module, protocol), "protocol" },
	};
	static _Thread_local char buf[128];

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (!(mod->kinds & kinds[i].kind))
			continue;
		const uint32_t *ops = *(const uint32_t *const *)
		    ((const char *)mod + kinds[i].off);
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

static int
check_descriptor(const struct mp_module *mod, const char *name,
    const char *path, char *err, size_t errsize)
{
	const char *why;

	if (mod->abi_version != MP_ABI_VERSION)
		return refuse(err, errsize, name, path,
		    "built for ABI version %u, this merpati speaks ABI %u",
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
	m->mod = dlsym(m->dl, MP_MODULE_SYMBOL);
	if (m->mod == NULL) {
		refuse(err, errsize, name, path,
		    "missing symbol %s (not a merpati module?)",
		    MP_MODULE_SYMBOL);
		mp_module_close(m);
		return -1;
	}
	if (check_descriptor(m->mod, name, path, err, errsize) < 0) {
		mp_module_close(m);
		return -1;
	}
	return 0;
}

int
mp_module_init(struct mp_loaded *m, const struct mp_host *host,
    const config_setting_t *conf, char *err, size_t errsize)
{
	const char *why = NULL;
	int rc;

	mp_log_set_module(m->name);
	rc = m->mod->init(host, (const struct mp_conf *)conf, &m->ctx, &why);
	mp_log_set_module(NULL);
	if (rc != MP_OK)
		return refuse(err, errsize, m->name, m->path,
		    "init failed: %s", why ? why : "(no reason given)");
	m->initialised = 1;
	return 0;
}

void
mp_module_close(struct mp_loaded *m)
{
	if (m->initialised && m->mod->fini) {
		mp_log_set_module(m->name);
		m->mod->fini(m->ctx);
		mp_log_set_module(NULL);
	}
	m->initialised = 0;
	/* Modules stay mapped: a thread may still be returning from one,
	 * and sanitizers report leaks in unloaded code as unknown. */
	m->mod = NULL;
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
	if (mp_module_open(name, path, &m, err, sizeof(err)) < 0 ||
	    mp_module_init(&m, host, group, err, sizeof(err)) < 0) {
		mp_problem(problems, "%s", err);
		return;
	}
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
