/*
 * core/privs.c - privilege drop (see privs.h).
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privs.h"

static int
lookup(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return -1;
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

static void
chown_files_in(const char *dir, uid_t uid, gid_t gid)
{
	char path[4096];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lchown(path, uid, gid) < 0 && errno != ENOENT)
			continue;
	}
	closedir(d);
}

int
mp_chown_to_user(const char *user, const char *path, int recurse_files)
{
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0 || user == NULL || user[0] == '\0')
		return 0;
	if (lookup(user, &uid, &gid) < 0)
		return -1;
	if (chown(path, uid, gid) < 0)
		return -1;
	if (recurse_files)
		chown_files_in(path, uid, gid);
	return 0;
}

int
mp_drop_privileges(const char *user, const char *state_dir, char *err,
    size_t errsize)
{
	static const char *const owned[] = { "", "/queue", "/queue/tmp",
	    "/corrupt" };
	char path[4096];
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0 || user == NULL || user[0] == '\0')
		return 0;
	if (lookup(user, &uid, &gid) < 0) {
		snprintf(err, errsize, "server.user: no such user \"%s\" "
		    "(create it with: useradd --system %s)", user, user);
		return -1;
	}
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", state_dir, owned[i]);
		if (chown(path, uid, gid) < 0 && errno != ENOENT) {
			snprintf(err, errsize, "cannot chown %s: %s", path,
			    strerror(errno));
			return -1;
		}
		if (i > 0)
			chown_files_in(path, uid, gid);
	}
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		snprintf(err, errsize, "cannot become user %s: %s", user,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		snprintf(err, errsize, "privilege drop to %s did not stick", user);
		return -1;
	}
	return 0;
}
