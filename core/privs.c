/*
 * core/privs.c - privilege drop and the state directory a root start
 * may trust (see privs.h).
 *
 * The merpati user owns the inside of state_dir, so a root start must
 * not follow anything found there: every path is walked one component
 * at a time with O_NOFOLLOW, each directory checked for its owner, and
 * everything after that is done through file descriptors (fchown,
 * openat, fchownat on an O_PATH descriptor), so a symlink or a swapped
 * directory planted by that user can never make root chown, open or
 * write a file outside it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
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

static int
no_user(const char *user, char *err, size_t errsize)
{
	snprintf(err, errsize, "server.user: no such user \"%s\" "
	    "(create it with: useradd --system %s)", user, user);
	return -1;
}

/* A directory above state_dir: only root may change what it holds (a
 * sticky, world-writable one like /tmp is fine: nobody else can rename
 * or remove the root-owned entry below it). */
static int
ancestor_safe(const struct stat *st)
{
	return st->st_uid == 0 &&
	    ((st->st_mode & (S_IWGRP | S_IWOTH)) == 0 || (st->st_mode & S_ISVTX));
}

/* state_dir itself and its parts: root's or the daemon user's, and
 * writable by nobody else. */
static int
part_safe(const struct stat *st, uid_t uid)
{
	return S_ISDIR(st->st_mode) && (st->st_uid == 0 || st->st_uid == uid) &&
	    (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

static int
refuse(char *err, size_t errsize, const char *path, const char *why)
{
	snprintf(err, errsize, "refusing state_dir: %s %s (a root start trusts "
	    "only directories owned by root or server.user, writable by no one "
	    "else, reached without symlinks)", path, why);
	return -1;
}

/* Walk the resolved path from "/" without following symlinks; returns
 * a directory fd of its last component, or -1 with err set. */
static int
walk_verified(const char *real, uid_t uid, char *err, size_t errsize)
{
	char buf[PATH_MAX], *save = NULL, *name;
	struct stat st;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	snprintf(buf, sizeof(buf), "%s", real);
	for (name = strtok_r(buf, "/", &save); fd >= 0 && name != NULL; ) {
		char *next = strtok_r(NULL, "/", &save);
		if (fstat(fd, &st) < 0 || !ancestor_safe(&st)) {
			close(fd);
			return refuse(err, errsize, real, "has an ancestor directory "
			    "not owned by root, or writable by others");
		}
		int child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(fd);
		fd = child;
		name = next;
	}
	if (fd < 0)
		return refuse(err, errsize, real, strerror(errno));
	if (fstat(fd, &st) < 0 || !part_safe(&st, uid)) {
		close(fd);
		return refuse(err, errsize, real, "is not owned by root or "
		    "server.user, or is writable by others");
	}
	return fd;
}

int
mp_state_dir_open(const char *user, const char *state_dir, char *err,
    size_t errsize)
{
	char real[PATH_MAX];
	uid_t uid;
	gid_t gid;
	int fd;

	if (geteuid() != 0 || user == NULL || user[0] == '\0') {
		/* Not root: nothing to escalate to; still no symlink. */
		fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			snprintf(err, errsize, "cannot open %s: %s", state_dir,
			    strerror(errno));
		return fd;
	}
	if (lookup(user, &uid, &gid) < 0)
		return no_user(user, err, errsize);
	/* Symlinks above state_dir are the admin's (root-owned, checked
	 * below as resolved); none is followed inside it. */
	if (realpath(state_dir, real) == NULL) {
		snprintf(err, errsize, "cannot resolve %s: %s", state_dir,
		    strerror(errno));
		return -1;
	}
	return walk_verified(real, uid, err, errsize);
}

/* Hand one entry of a verified directory to the user: opened without
 * following it, and only a plain file with one link (never a symlink,
 * device or hard link to someone else's file). A file the user already
 * owns is left alone: a chown would reset its ctime, by which the tmp/
 * sweep tells a crash's leftovers from a save in progress. */
static void
chown_entry(int dirfd, const char *name, uid_t uid, gid_t gid)
{
	struct stat st;
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	    (st.st_uid == 0 || st.st_uid == uid) && (st.st_uid != uid || st.st_gid != gid))
		(void)!fchownat(fd, "", uid, gid, AT_EMPTY_PATH);
	close(fd);
}

static void
chown_files_in(int dirfd, uid_t uid, gid_t gid)
{
	struct dirent *e;
	int copy = dup(dirfd);
	DIR *d = copy >= 0 ? fdopendir(copy) : NULL;

	if (d == NULL) {
		if (copy >= 0)
			close(copy);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			chown_entry(dirfd, e->d_name, uid, gid);
	closedir(d);
}

/* Open parent/name as a directory without following a symlink, check
 * its owner and give it (and its files) to the user. 0 or -1 (err). */
static int
hand_over(int parent, const char *rel, const char *name, uid_t uid, gid_t gid,
    int *fd_r, char *err, size_t errsize)
{
	struct stat st;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);

	*fd_r = -1;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return refuse(err, errsize, rel, errno == ENOTDIR || errno == ELOOP ?
		    "is not a directory (a symlink?)" : strerror(errno));
	if (fstat(fd, &st) < 0 || !part_safe(&st, uid)) {
		close(fd);
		return refuse(err, errsize, rel, "is not owned by root or "
		    "server.user, or is writable by others");
	}
	if (fchown(fd, uid, gid) < 0) {
		snprintf(err, errsize, "cannot chown %s: %s", rel, strerror(errno));
		close(fd);
		return -1;
	}
	chown_files_in(fd, uid, gid);
	*fd_r = fd;
	return 0;
}

/* The state directories the daemon writes, handed over through fds. */
static int
hand_over_state(int state, uid_t uid, gid_t gid, char *err, size_t errsize)
{
	int queue, tmp = -1, corrupt, rc;

	/* state_dir keeps its group: the maildrop's (core/maildrop.h). */
	if (fchown(state, uid, (gid_t)-1) < 0) {
		snprintf(err, errsize, "cannot chown state_dir: %s", strerror(errno));
		return -1;
	}
	if (hand_over(state, "state_dir/queue", "queue", uid, gid, &queue,
	    err, errsize) < 0)
		return -1;
	rc = queue < 0 ? 0 : hand_over(queue, "state_dir/queue/tmp", "tmp", uid,
	    gid, &tmp, err, errsize);
	if (queue >= 0)
		close(queue);
	if (rc < 0)
		return -1;
	if (tmp >= 0)
		close(tmp);
	rc = hand_over(state, "state_dir/corrupt", "corrupt", uid, gid, &corrupt,
	    err, errsize);
	if (corrupt >= 0)
		close(corrupt);
	return rc;
}

int
mp_chown_to_user(const char *user, const char *state_dir, char *err,
    size_t errsize)
{
	uid_t uid;
	gid_t gid;
	int fd, rc = 0;

	if (geteuid() != 0 || user == NULL || user[0] == '\0')
		return 0;
	if (lookup(user, &uid, &gid) < 0)
		return no_user(user, err, errsize);
	if ((fd = mp_state_dir_open(user, state_dir, err, errsize)) < 0)
		return -1;
	if (fchown(fd, uid, (gid_t)-1) < 0) {	/* keeps its group, as above */
		snprintf(err, errsize, "cannot chown %s: %s", state_dir,
		    strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

int
mp_drop_privileges(const char *user, const char *state_dir, char *err,
    size_t errsize)
{
	uid_t uid;
	gid_t gid;
	int fd, rc;

	if (geteuid() != 0 || user == NULL || user[0] == '\0')
		return 0;
	if (lookup(user, &uid, &gid) < 0)
		return no_user(user, err, errsize);
	if ((fd = mp_state_dir_open(user, state_dir, err, errsize)) < 0)
		return -1;
	rc = hand_over_state(fd, uid, gid, err, errsize);
	close(fd);
	if (rc < 0)
		return -1;
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

/* Whether uid/gid (the primary group only: the drop clears the
 * supplementary ones) gets all of bits (4 r, 2 w, 1 x) on st. */
static int
user_may(const struct stat *st, uid_t uid, gid_t gid, unsigned bits)
{
	unsigned shift = st->st_uid == uid ? 6 : st->st_gid == gid ? 3 : 0;

	return ((st->st_mode >> shift) & bits) == bits;
}

static void
owner_name(uid_t uid, char *out, size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
		snprintf(out, size, "%s", pw.pw_name);
	else
		snprintf(out, size, "uid %ld", (long)uid);
}

/* "chmod o+x DIR", or u+x / g+x when user owns it or is in its group. */
static const char *
who_bits(const struct stat *st, uid_t uid, gid_t gid)
{
	return st->st_uid == uid ? "u" : st->st_gid == gid ? "g" : "o";
}

/* One directory server.user needs, as mp_user_dir examines it. */
struct user_dir {
	const char *user, *what, *path;
	uid_t uid;
	gid_t gid;
	struct stat handed;	/* state_dir: the drop gives it to the user */
	int has_handed;
	char *err;
	size_t errsize;
};

static int
unreachable(const struct user_dir *d, const char *dir, const struct stat *st)
{
	char owner[128];

	owner_name(st->st_uid, owner, sizeof(owner));
	snprintf(d->err, d->errsize, "%s %s is not reachable by user %s: %s is "
	    "mode %04o, owner %s; chmod %s+x %s, or choose a path below "
	    "directories %s can search", d->what, d->path, d->user, dir,
	    (unsigned)(st->st_mode & 07777), owner, who_bits(st, d->uid, d->gid),
	    dir, d->user);
	return -1;
}

static int
not_writable(const struct user_dir *d, const struct stat *st)
{
	char owner[128];

	owner_name(st->st_uid, owner, sizeof(owner));
	snprintf(d->err, d->errsize, "%s %s is not writable by user %s: mode "
	    "%04o, owner %s; chown %s %s (or chmod %s+rwx it)", d->what, d->path,
	    d->user, (unsigned)(st->st_mode & 07777), owner, d->user, d->path,
	    who_bits(st, d->uid, d->gid));
	return -1;
}

/* stat() path as the user will find it after the drop: the directory
 * handed over counts as the user's already. */
static int
stat_after_drop(const struct user_dir *d, const char *path, struct stat *st)
{
	if (stat(path, st) < 0)
		return -1;
	if (d->has_handed && st->st_dev == d->handed.st_dev &&
	    st->st_ino == d->handed.st_ino) {
		st->st_uid = d->uid;
		st->st_gid = d->gid;
	}
	return 0;
}

/*
 * Every existing ancestor of d->path must be searchable by the user
 * (following the admin's symlinks: that is the way the user will go).
 * *existing_r: the length of the deepest existing one (0: "/").
 * *creatable_r: whether root may make the missing rest without the
 * user steering it: every existing ancestor root's and not writable by
 * the user, except a sticky one (/tmp) whose next part exists. 0, or -1
 * with d->err naming the directory that blocks and the fix.
 */
static int
ancestors_reachable(const struct user_dir *d, size_t *existing_r,
    int *creatable_r)
{
	char prefix[PATH_MAX];
	struct stat st;
	size_t len = strlen(d->path);
	int user_writable = 0;

	*existing_r = 0;
	*creatable_r = 1;
	if (stat("/", &st) == 0 && !user_may(&st, d->uid, d->gid, 1))
		return unreachable(d, "/", &st);
	for (size_t i = 1; i <= len; i++) {
		if (d->path[i] != '/' && d->path[i] != '\0')
			continue;
		memcpy(prefix, d->path, i);
		prefix[i] = '\0';
		if (stat_after_drop(d, prefix, &st) < 0) {
			*creatable_r &= !user_writable;
			return 0;
		}
		if (i == len)
			break;
		*existing_r = i;
		*creatable_r &= st.st_uid == 0 &&
		    (!user_may(&st, d->uid, d->gid, 2) || (st.st_mode & S_ISVTX));
		user_writable = user_may(&st, d->uid, d->gid, 2);
		if (!user_may(&st, d->uid, d->gid, 1))
			return unreachable(d, prefix, &st);
	}
	*existing_r = len;
	return 0;
}

/* Make the missing parts of d->path below its first existing bytes
 * (0755, itself 0750) through directory descriptors, never following a
 * symlink, and give the last one to the user if root owns it. */
static int
create_user_dir(const struct user_dir *d, size_t existing)
{
	char buf[PATH_MAX], *save = NULL, *name, *next;
	struct stat st;
	int fd;

	snprintf(buf, sizeof(buf), "%.*s", (int)existing, d->path);
	fd = open(existing ? buf : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(buf, sizeof(buf), "%s", d->path + existing);
	for (name = strtok_r(buf, "/", &save); fd >= 0 && name; name = next) {
		next = strtok_r(NULL, "/", &save);
		if (mkdirat(fd, name, next ? 0755 : 0750) < 0 && errno != EEXIST) {
			close(fd);
			fd = -1;
			break;
		}
		int child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(fd);
		fd = child;
	}
	if (fd < 0 || (fstat(fd, &st) == 0 && st.st_uid == 0 &&
	    fchown(fd, d->uid, d->gid) < 0)) {
		snprintf(d->err, d->errsize, "cannot create %s for user %s: %s",
		    d->path, d->user, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
mp_user_dir(const char *user, const char *what, const char *path,
    const char *handed_over, int create, int need_write, char *err,
    size_t errsize)
{
	struct user_dir d = { .user = user, .what = what, .path = path,
	    .err = err, .errsize = errsize };
	struct stat st;
	size_t existing;
	int creatable;

	if (geteuid() != 0 || user == NULL || user[0] == '\0' || path[0] != '/' ||
	    strlen(path) >= PATH_MAX || lookup(user, &d.uid, &d.gid) < 0)
		return 0;	/* a missing user is reported by the drop */
	d.has_handed = handed_over != NULL && stat(handed_over, &d.handed) == 0;
	if (ancestors_reachable(&d, &existing, &creatable) < 0)
		return -1;
	if (stat_after_drop(&d, path, &st) < 0) {
		if (errno != ENOENT || !create || !creatable)
			return 0;	/* the daemon's own error names it later */
		return create_user_dir(&d, existing);
	}
	/* (not a directory: delivery reports that, as before) */
	if (need_write && S_ISDIR(st.st_mode) && !user_may(&st, d.uid, d.gid, 7))
		return not_writable(&d, &st);
	return 0;
}
