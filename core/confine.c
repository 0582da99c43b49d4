/*
 * core/confine.c - PR_SET_NO_NEW_PRIVS and a Landlock file-system
 * domain (Linux 5.13+, raw syscalls; no library) set after the
 * privilege drop, before any thread starts, so every session thread
 * inherits them.
 *
 * What may be reached:
 *   read-write beneath state_dir, and beneath the directory of every
 *     absolute-or-relative path under modules.* whose key is database,
 *     root or dir (mail roots, SQLite files: their -journal and -wal
 *     files live beside them);
 *   read-only: module_dir, the config file's directory, the TLS
 *     certificate and key, files named by modules.*.path/cert/key,
 *     /etc, /usr, /lib*, /proc/self, /sys/devices/system/cpu,
 *     /dev/urandom (and /dev/null, also writable).
 * Paths a module uses by default without naming them in the config are
 * reachable only if they lie in one of those (the shipped defaults lie
 * under state_dir or the config directory).
 *
 * ABI 1 cannot rename a file into another directory at all, which
 * Maildir delivery needs, so the domain needs ABI 2 (LANDLOCK_ACCESS_FS_REFER);
 * on an older kernel, or one built without Landlock, the daemon runs
 * unconfined and says so once.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "confine.h"
#include "log.h"
#include "settings.h"
#include "util.h"

#define FS_V1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1)	/* bits 0..12 */
#define FS_TRUNCATE (1ULL << 14)			/* ABI 3 */
#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | \
    LANDLOCK_ACCESS_FS_EXECUTE)
#define FS_FILE_RW (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE)

struct domain {
	int fd;			/* the ruleset */
	uint64_t handled;	/* every right the domain restricts */
	int paths;		/* rules added */
};

static long
ll_create(const struct landlock_ruleset_attr *attr, size_t size, uint32_t flags)
{
	return syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

/* Allow access beneath path (a directory) or to it (a file); a path
 * that does not exist is skipped: nothing there to reach. */
static void
allow(struct domain *d, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr rule = { 0 };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= LANDLOCK_ACCESS_FS_EXECUTE | FS_FILE_RW | FS_TRUNCATE;
	rule.allowed_access = access & d->handled;
	rule.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, d->fd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == 0)
		d->paths++;
	close(fd);
}

/* The directory a configured path lives in: itself when it is one,
 * else its parent. Relative paths are taken from the config dir. */
static void
allow_dir_of(struct domain *d, const char *value, uint64_t access)
{
	char path[4096], parent[4096];
	struct stat st;

	if (mp_path_join(path, sizeof(path), mp_core.cfg->dir, value) < 0)
		return;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		allow(d, path, access);
		return;
	}
	mp_strlcpy(parent, path, sizeof(parent));
	allow(d, dirname(parent), access);
}

static void
allow_file(struct domain *d, const char *value)
{
	char path[4096];

	if (mp_path_join(path, sizeof(path), mp_core.cfg->dir, value) == 0)
		allow(d, path, LANDLOCK_ACCESS_FS_READ_FILE);
}

/* Every string setting under g (depth-first) whose key names a path. */
static void
allow_module_paths(struct domain *d, const config_setting_t *g, uint64_t rw)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(s), *value;
		if (config_setting_is_group(s)) {
			allow_module_paths(d, s, rw);
			continue;
		}
		if (key == NULL || (value = config_setting_get_string(s)) == NULL || !value[0])
			continue;
		if (!strcmp(key, "database") || !strcmp(key, "root") || !strcmp(key, "dir"))
			allow_dir_of(d, value, rw);
		else if (!strcmp(key, "path") || !strcmp(key, "cert") || !strcmp(key, "key"))
			allow_file(d, value);
	}
}

static void
allow_everything_needed(struct domain *d)
{
	static const char *const system_ro[] = { "/etc", "/usr", "/lib", "/lib64",
	    "/lib32", "/libx32", "/proc/self", "/sys/devices/system/cpu", "/dev/urandom" };
	const config_setting_t *mods = config_lookup(&mp_core.cfg->lc, "modules");
	uint64_t rw = d->handled;

	allow(d, mp_core.server.state_dir, rw);
	if (mods)
		allow_module_paths(d, mods, rw);
	allow(d, mp_core.server.module_dir, FS_READ);
	allow(d, mp_core.cfg->dir, FS_READ);
	allow(d, mp_core.tls_cert, LANDLOCK_ACCESS_FS_READ_FILE);
	allow(d, mp_core.tls_key, LANDLOCK_ACCESS_FS_READ_FILE);
	for (size_t i = 0; i < sizeof(system_ro) / sizeof(system_ro[0]); i++)
		allow(d, system_ro[i], FS_READ);
	allow(d, "/dev/null", FS_FILE_RW | FS_TRUNCATE);
}

static int
fail(char *err, size_t errsize, const char *what)
{
	snprintf(err, errsize, "%s: %s", what, strerror(errno));
	return -1;
}

int
mp_confine(int use_landlock, char *err, size_t errsize)
{
	struct landlock_ruleset_attr attr = { 0 };
	struct domain d = { -1, 0, 0 };
	long abi;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errsize, "cannot set no_new_privs");
	if (!use_landlock) {
		mp_log(MP_LOG_NOTICE, "landlock: off (server.landlock = false)");
		return 0;
	}
	abi = ll_create(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 2) {
		mp_log(MP_LOG_NOTICE, "landlock: not available (%s); running unconfined",
		    abi < 0 ? strerror(errno) : "kernel ABI 1 cannot rename across directories");
		return 0;
	}
	/* SQLite's temporary files go where the domain allows writing. */
	setenv("SQLITE_TMPDIR", mp_core.server.state_dir, 0);
	d.handled = FS_V1 | LANDLOCK_ACCESS_FS_REFER | (abi >= 3 ? FS_TRUNCATE : 0);
	attr.handled_access_fs = d.handled;
	if ((d.fd = (int)ll_create(&attr, sizeof(attr), 0)) < 0)
		return fail(err, errsize, "landlock: cannot create a ruleset");
	allow_everything_needed(&d);
	if (syscall(SYS_landlock_restrict_self, d.fd, 0) < 0) {
		close(d.fd);
		return fail(err, errsize, "landlock: cannot restrict the daemon");
	}
	close(d.fd);
	mp_log(MP_LOG_NOTICE, "landlock: confined to %d paths (ABI %ld)", d.paths, abi);
	return 0;
}
