/*
 * core/maildrop.c - the daemon's side of local submission (see
 * maildrop.h): preparing <state_dir>/maildrop at start, and the pickup
 * thread that turns drop files into queued messages.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "filter_hooks.h"
#include "log.h"
#include "maildrop.h"
#include "privs.h"
#include "reload.h"
#include "runner.h"
#include "sendmail_submit.h"
#include "settings.h"
#include "tls.h"

#define SCAN_EVERY 5		/* seconds, when inotify is quiet or absent */
#define TMP_MAX_AGE 3600	/* an unfinished "t" file older than this is dead */

static char drop_dir[4200];

/* maildrop/ in the verified state_dir fd: server.user's, group gid. */
static int
make_drop_dir(int state, uid_t uid, gid_t gid, char *err, size_t errsize)
{
	int fd;

	if (mkdirat(state, MP_DROP_DIR, 01730) < 0 && errno != EEXIST) {
		snprintf(err, errsize, "cannot create state_dir/%s: %s", MP_DROP_DIR,
		    strerror(errno));
		return -1;
	}
	fd = openat(state, MP_DROP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, uid, gid) < 0 ||
	    fchmod(fd, 01730) < 0) {
		snprintf(err, errsize, "state_dir/%s: %s (it must be a directory)",
		    MP_DROP_DIR, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
mp_maildrop_prepare(const char *state_dir, const char *user, char *err,
    size_t errsize)
{
	struct group *gr = getgrnam(MP_DROP_GROUP);
	struct passwd *pw = user && user[0] ? getpwnam(user) : NULL;
	char path[4200];
	int state, rc;

	if (geteuid() != 0 || gr == NULL || pw == NULL) {
		if (geteuid() == 0 && gr == NULL)
			mp_log(MP_LOG_NOTICE, "no group %s: only root can submit with "
			    "sendmail (create it: groupadd --system %s)", MP_DROP_GROUP,
			    MP_DROP_GROUP);
		snprintf(path, sizeof(path), "%s/%s", state_dir, MP_DROP_DIR);
		(void)mkdir(path, 0700);
		return 0;
	}
	if ((state = mp_state_dir_open(user, state_dir, err, errsize)) < 0)
		return -1;
	rc = make_drop_dir(state, pw->pw_uid, gr->gr_gid, err, errsize);
	if (rc == 0 && (fchown(state, (uid_t)-1, gr->gr_gid) < 0 ||
	    fchmod(state, 0710) < 0)) {
		snprintf(err, errsize, "cannot give %s to group %s: %s", state_dir,
		    MP_DROP_GROUP, strerror(errno));
		rc = -1;
	}
	close(state);
	return rc;
}

/* "d" or "t" and 16 hex digits: what merpati-postdrop names files. */
static int
drop_name(const char *name, char kind)
{
	if (name[0] != kind || strlen(name) != 17)
		return 0;
	return strspn(name + 1, "0123456789abcdef") == 16;
}

static void
set_aside(int dir, const char *name, const char *why)
{
	char to[4400];

	snprintf(to, sizeof(to), "%s/corrupt/maildrop-%s", mp_core.server.state_dir,
	    drop_name(name, 'd') || drop_name(name, 't') ? name : "badname");
	mp_log(MP_LOG_WARNING, "maildrop: refused %s (%s): moved to corrupt/",
	    drop_name(name, 'd') || drop_name(name, 't') ? name : "a file", why);
	if (renameat(dir, name, AT_FDCWD, to) < 0 && unlinkat(dir, name, 0) < 0)
		mp_log_errno(MP_LOG_ERR, "maildrop: cannot remove a refused file");
}

/* The whole file behind fd, which fstat said is size bytes. */
static char *
read_all(int fd, size_t size)
{
	char *text = malloc(size + 1);
	size_t got = 0;
	ssize_t n;

	if (text == NULL)
		return NULL;
	while (got < size && (n = read(fd, text + got, size - got)) > 0)
		got += (size_t)n;
	if (got != size || read(fd, &(char){ 0 }, 1) != 0) {
		free(text);	/* changed while read */
		return NULL;
	}
	text[size] = '\0';
	return text;
}

/* The login of uid, or "uid N" (txn_info's auth_user for filters). */
static void
login_of(long uid, char *out, size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[2048];

	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, size, "%s", pw.pw_name);
	else
		snprintf(out, size, "uid %ld", uid);
}

/*
 * Through the filters (filter.h: end_of_headers, end_of_data and
 * before_queue, no connection). 1 queued, 0 discarded, 2 refused for
 * good (why in why), -1 (errno) to keep the file for the next scan (a
 * deferral, or no disk).
 */
static int
queue_filtered(struct sm_drop *d, char **rcpts, char id[MP_QID_SIZE],
    char *why, size_t size)
{
	char user[300], held[200];
	struct mp_hooks_local in = { user, d->s.sender, rcpts, d->s.notify,
	    d->s.nrcpt, d->s.ret, d->s.envid };
	struct mp_qwriter *w;
	struct mp_status st;	/* the hooks fill it */

	login_of(d->s.uid, user, sizeof(user));
	if ((w = sendmail_write(&d->s, d->msg, d->len, id)) == NULL)
		return -1;
	switch (mp_hooks_local(&in, &w, id, &st, held, sizeof(held))) {
	case MP_HOOKS_QUEUE:
		return mp_queue_commit(w) < 0 ? -1 : 1;
	case MP_HOOKS_HOLD:
		if (mp_queue_commit_held(w, d->s.nrcpt, held) < 0)
			return -1;
		mp_log(MP_LOG_NOTICE, "%s: held: %s", id, held);
		return 1;
	case MP_HOOKS_DISCARD:
		mp_queue_abort(w);
		return 0;
	default:
		mp_queue_abort(w);
		if (st.reply / 100 == 4) {
			errno = EAGAIN;
			return -1;
		}
		snprintf(why, size, "a filter refused it: %d %s %.100s", st.reply,
		    st.enhanced, st.text);
		return 2;
	}
}

/* Queue a decoded file, recipients qualified (a hostile file may hold
 * a bare word). What queue_filtered returns. */
static int
queue_drop(struct sm_drop *d, char id[MP_QID_SIZE], char *why, size_t size)
{
	char **orig = d->s.rcpts, **q = mp_xcalloc(d->s.nrcpt, sizeof(char *));
	int rc;

	for (size_t i = 0; i < d->s.nrcpt; i++)
		q[i] = sendmail_qualify(orig[i]);
	d->s.rcpts = q;
	if (mp_hooks_any())
		rc = queue_filtered(d, q, id, why, size);
	else
		rc = sendmail_queue(&d->s, d->msg, d->len, id) < 0 ? -1 : 1;
	for (size_t i = 0; i < d->s.nrcpt; i++)
		free(q[i]);
	free(q);
	d->s.rcpts = orig;
	return rc;
}

/* One finished drop file; 1 when it was queued. */
static int
pick_up(int dir, const char *name)
{
	off_t max = mp_core.limits.message_size + 4096 +
	    (off_t)mp_core.limits.recipients * 700;
	char why[160], id[MP_QID_SIZE], *text = NULL;
	struct sm_drop d;
	struct stat st;
	int fd, queued = 0;

	/* Judged before opening: opening a FIFO or a device can block or
	 * act; fstat below judges what was really opened. */
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (!S_ISREG(st.st_mode)) {
		set_aside(dir, name, S_ISLNK(st.st_mode) ? "a symlink" : "not a plain file");
		return 0;
	}
	fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			set_aside(dir, name, errno == ELOOP ? "a symlink" : strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		set_aside(dir, name, "not a plain file");
	else if (st.st_nlink != 1)
		set_aside(dir, name, "a file with other links");
	else if (st.st_size > max)
		set_aside(dir, name, "larger than limits.message_size allows");
	else if ((text = read_all(fd, (size_t)st.st_size)) == NULL)
		set_aside(dir, name, "changed while read");
	else if (sendmail_drop_decode(text, (size_t)st.st_size,
	    (size_t)mp_core.limits.recipients, &d, why, sizeof(why)) < 0)
		set_aside(dir, name, why);
	else {
		int rc = queue_drop(&d, id, why, sizeof(why));
		if (rc < 0)
			mp_log_errno(MP_LOG_ERR, "maildrop: %s: cannot queue (kept for "
			    "the next scan)", name);
		else if (rc == 0) {
			mp_log(MP_LOG_NOTICE, "maildrop: %s from uid %ld discarded by a "
			    "filter", name, d.s.uid);
			unlinkat(dir, name, 0);
		} else if (rc == 2)
			set_aside(dir, name, why);	/* kept for the admin */
		else {
			mp_log(MP_LOG_INFO, "%s: from maildrop %s, uid %ld, sender <%s>, "
			    "%zu recipient(s)", id, name, d.s.uid, d.s.sender, d.s.nrcpt);
			unlinkat(dir, name, 0);
			queued = 1;
		}
		sendmail_drop_free(&d);
	}
	free(text);
	close(fd);
	return queued;
}

/* An unfinished file whose writer died long ago. */
static void
sweep_tmp(int dir, const char *name)
{
	struct stat st;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_mtime < time(NULL) - TMP_MAX_AGE && unlinkat(dir, name, 0) == 0)
		mp_log(MP_LOG_NOTICE, "maildrop: removed %s, left unfinished", name);
}

static void
scan(void)
{
	DIR *d = opendir(drop_dir);
	struct dirent *e;
	int queued = 0;

	if (d == NULL) {
		mp_log_errno(MP_LOG_ERR, "maildrop: cannot read %s", drop_dir);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (drop_name(e->d_name, 't'))
			sweep_tmp(dirfd(d), e->d_name);
		else if (drop_name(e->d_name, 'd'))
			queued += pick_up(dirfd(d), e->d_name);
		else
			set_aside(dirfd(d), e->d_name, "not named by merpati-postdrop");
	}
	closedir(d);
	if (queued)
		mp_runner_rescan();
}

static _Atomic int stopping;
static int wake_pipe[2] = { -1, -1 };	/* written by mp_maildrop_stop */

static void *
pickup_thread(void *arg)
{
	int in = inotify_init1(IN_CLOEXEC);
	char events[4096];

	(void)arg;
	if (in >= 0 && inotify_add_watch(in, drop_dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(in);
		in = -1;
	}
	while (!atomic_load(&stopping)) {
		/* poll() skips a negative fd: no inotify means a timed scan */
		struct pollfd p[2] = { { .fd = in, .events = POLLIN },
		    { .fd = wake_pipe[0], .events = POLLIN } };
		mp_core_hold();	/* a turn's configuration; none while it waits */
		scan();
		mp_core_release();
		if (poll(p, 2, SCAN_EVERY * 1000) > 0 && (p[0].revents & POLLIN))
			(void)!read(in, events, sizeof(events));
	}
	if (in >= 0)
		close(in);
	mp_tls_thread_done();
	return NULL;
}

void
mp_maildrop_stop(void)
{
	atomic_store(&stopping, 1);
	if (wake_pipe[1] >= 0)
		(void)!write(wake_pipe[1], "", 1);
}

int
mp_maildrop_start(void)
{
	pthread_t t;

	snprintf(drop_dir, sizeof(drop_dir), "%s/%s", mp_core.server.state_dir,
	    MP_DROP_DIR);
	if (access(drop_dir, R_OK | W_OK | X_OK) < 0) {
		mp_log(MP_LOG_NOTICE, "no usable %s: only root can submit with sendmail",
		    drop_dir);
		return 0;
	}
	if (pipe2(wake_pipe, O_CLOEXEC) < 0)
		return -1;
	mp_tls_thread_starting();
	if (pthread_create(&t, NULL, pickup_thread, NULL) != 0) {
		mp_tls_thread_not_started();
		return -1;
	}
	pthread_detach(t);
	return 0;
}
