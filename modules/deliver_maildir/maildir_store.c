/*
 * modules/deliver_maildir/maildir_store.c - the mailstore API on
 * Maildir (and Maildir++ folders), used by POP3 and IMAP: the mailbox
 * and its folders, open folder handles, message streams (LF on disk,
 * CRLF on the wire), the POP3 lock, change notification, and the ops
 * table. The other concerns are in their own files (maildir_private.h
 * says which); the concurrency rules are store.h's contract.
 *
 * Layout per user (root/<domain>/<local>/): INBOX is the Maildir
 * itself; folder "a/b" is the Maildir ".a.b" (so '.' cannot appear in
 * a folder name). Deleting "a" leaves ".a.b" alone. Flags live in file
 * names; UIDs and keywords in each folder's merpati-uidlist.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <merpati/maildir.h>

#include "maildir_private.h"

static _Thread_local char err_buf[256];

int
md_fail(const char **error_r, const char *what, int rc)
{
	snprintf(err_buf, sizeof(err_buf), "%s: %s", what, strerror(errno));
	*error_r = err_buf;
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- mailbox --------------------------------------------------------------- */

static int
store_open(void *ctx, const char *user, struct mp_mailbox **mb_r,
    const char **error_r)
{
	const struct maildir_store_env *env = maildir_store_env(ctx);
	struct mp_mailbox *mb = calloc(1, sizeof(*mb));

	if (mb == NULL)
		return md_fail(error_r, "out of memory", MP_ERROR);
	mb->env = env;
	if (maildir_user_path(env->root, user, mb->path, sizeof(mb->path) - 256,
	    error_r) < 0) {
		free(mb);
		return MP_ERROR;
	}
	/* the Maildir as it is at every login but the first: four mkdir()s
	 * that find it there, not one per component of its path too */
	if (maildir_make(mb->path) < 0 && (errno != ENOENT || maildir_make_path(mb->path) < 0)) {
		free(mb);
		return md_fail(error_r, "cannot create Maildir", MP_TEMPFAIL);
	}
	*mb_r = mb;
	return MP_OK;
}

static void
store_close(struct mp_mailbox *mb)
{
	free(mb);
}

static int
subscribed(const struct mp_mailbox *mb, const char *name)
{
	char path[PATH_MAX], line[512];
	FILE *fp;
	int found = 0;

	snprintf(path, sizeof(path), "%s/" SUBSCRIPTIONS, mb->path);
	if ((fp = fopen(path, "re")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		found = strcmp(line, name) == 0;
	}
	fclose(fp);
	return found;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
store_folders(struct mp_mailbox *mb,
    void (*each)(void *arg, const char *name, unsigned attrs), void *arg,
    const char **error_r)
{
	DIR *dp = opendir(mb->path);
	struct dirent *d;
	char **names = NULL, *name;
	size_t n = 0, cap = 0;

	if (dp == NULL)
		return md_fail(error_r, "cannot list folders", MP_TEMPFAIL);
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] != '.' || d->d_name[1] == '\0' ||
		    strcmp(d->d_name, "..") == 0 || d->d_type != DT_DIR)
			continue;
		char **grown = mp_array_grow(names, &cap, n + 1, sizeof(*names));
		if (grown == NULL || (name = strdup(d->d_name + 1)) == NULL) {
			closedir(dp);
			free_names(grown ? grown : names, n);
			return md_fail(error_r, "out of memory", MP_TEMPFAIL);
		}
		names = grown;
		for (char *p = name; *p; p++)
			if (*p == '.')
				*p = '/';
		names[n++] = name;
	}
	closedir(dp);
	if (n > 1)
		qsort(names, n, sizeof(char *), cmp_str);
	each(arg, "INBOX", subscribed(mb, "INBOX") ? MP_FOLDER_SUBSCRIBED : 0);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		unsigned attrs = mp_special_use_flag(names[i]) |
		    (subscribed(mb, names[i]) ? MP_FOLDER_SUBSCRIBED : 0);
		if (i + 1 < n && strncmp(names[i + 1], names[i], len) == 0 &&
		    names[i + 1][len] == '/')
			attrs |= MP_FOLDER_HAS_CHILDREN;
		each(arg, names[i], attrs);
		free(names[i]);
	}
	free(names);
	return MP_OK;
}

static int
store_folder_create(struct mp_mailbox *mb, const char *name,
    const char **error_r)
{
	char dir[DIR_MAX];
	struct stat st;

	if (md_folder_dir(mb, name, dir, sizeof(dir)) < 0) {
		*error_r = "invalid folder name ('.' is not allowed)";
		return MP_ERROR;
	}
	if (stat(dir, &st) == 0) {
		*error_r = "folder exists";
		return MP_DECLINED;
	}
	return maildir_make(dir) < 0 ? md_fail(error_r, "cannot create folder",
	    MP_TEMPFAIL) : MP_OK;
}

static int
remove_tree(const char *path)
{
	struct dirent *d;
	DIR *dp = opendir(path);
	char sub[PATH_MAX];

	if (dp == NULL)
		return unlink(path);
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, d->d_name);
		remove_tree(sub);
	}
	closedir(dp);
	return rmdir(path);
}

static int
store_folder_delete(struct mp_mailbox *mb, const char *name,
    const char **error_r)
{
	char dir[DIR_MAX];
	struct stat st;

	if (strcasecmp(name, "INBOX") == 0) {
		*error_r = "INBOX cannot be deleted";
		return MP_ERROR;
	}
	if (md_folder_dir(mb, name, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		*error_r = "no such folder";
		return MP_DECLINED;
	}
	return remove_tree(dir) < 0 ? md_fail(error_r, "cannot delete folder",
	    MP_TEMPFAIL) : MP_OK;
}

/* Rename the folder and its children (".from.x" -> ".to.x"). */
static int
store_folder_rename(struct mp_mailbox *mb, const char *from, const char *to,
    const char **error_r)
{
	char src[PATH_MAX], dst[PATH_MAX], child[PATH_MAX], newchild[PATH_MAX];
	size_t slen;
	struct dirent *d;
	struct stat st;
	DIR *dp;

	if (strcasecmp(from, "INBOX") == 0 || strcasecmp(to, "INBOX") == 0) {
		*error_r = "renaming INBOX is not supported";
		return MP_ERROR;
	}
	if (md_folder_dir(mb, from, src, sizeof(src)) < 0 ||
	    md_folder_dir(mb, to, dst, sizeof(dst)) < 0) {
		*error_r = "invalid folder name";
		return MP_ERROR;
	}
	if (stat(src, &st) < 0) {
		*error_r = "no such folder";
		return MP_DECLINED;
	}
	if (stat(dst, &st) == 0) {
		*error_r = "target folder exists";
		return MP_ERROR;
	}
	if (rename(src, dst) < 0)
		return md_fail(error_r, "cannot rename folder", MP_TEMPFAIL);
	slen = strlen(src);
	if ((dp = opendir(mb->path)) == NULL)
		return MP_OK;
	while ((d = readdir(dp)) != NULL) {
		snprintf(child, sizeof(child), "%s/%s", mb->path, d->d_name);
		if (strncmp(child, src, slen) != 0 || child[slen] != '.')
			continue;
		snprintf(newchild, sizeof(newchild), "%s%s", dst, child + slen);
		rename(child, newchild);
	}
	closedir(dp);
	return MP_OK;
}

/* The list with name added or removed, as a new file renamed over it.
 * The caller holds the subscriptions lock. */
static int
rewrite_subscriptions(struct mp_mailbox *mb, const char *name, int on)
{
	char path[PATH_MAX], tmp[PATH_MAX], line[512];
	FILE *in, *out;

	snprintf(path, sizeof(path), "%s/" SUBSCRIPTIONS, mb->path);
	snprintf(tmp, sizeof(tmp), "%s/" SUBSCRIPTIONS ".tmp", mb->path);
	if ((out = fopen(tmp, "we")) == NULL)
		return -1;
	if ((in = fopen(path, "re")) != NULL) {
		while (fgets(line, sizeof(line), in)) {
			line[strcspn(line, "\n")] = '\0';
			if (strcmp(line, name) != 0 && line[0])
				fprintf(out, "%s\n", line);
		}
		fclose(in);
	}
	if (on)
		fprintf(out, "%s\n", name);
	return fclose(out) != 0 || rename(tmp, path) < 0 ? -1 : 0;
}

/*
 * Two sessions of one user may (un)subscribe at once: each change is a
 * read-modify-write of the whole list through one temporary name, so
 * they take turns on a lock file (otherwise one change is lost or the
 * temporary file is written by both).
 */
static int
store_folder_subscribe(struct mp_mailbox *mb, const char *name, int on,
    const char **error_r)
{
	char lock[PATH_MAX];
	int fd, rc;

	/* Every login subscribes INBOX (imap_auth.c): a list that already
	 * says so is left alone, not rewritten (a new file, a rename). */
	if (subscribed(mb, name) == !!on)
		return MP_OK;
	snprintf(lock, sizeof(lock), "%s/" SUBSCRIPTIONS ".lock", mb->path);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return md_fail(error_r, "cannot lock subscriptions", MP_TEMPFAIL);
	if (md_list_lock(fd) < 0) {
		close(fd);
		return md_fail(error_r, "cannot lock subscriptions", MP_TEMPFAIL);
	}
	rc = subscribed(mb, name) == !!on ? 0 : rewrite_subscriptions(mb, name, on);
	close(fd);	/* releases the lock */
	if (rc < 0)
		return md_fail(error_r, "cannot write subscriptions", MP_TEMPFAIL);
	return MP_OK;
}

/* ---- folders ------------------------------------------------------------------- */

static void store_folder_close(struct mp_folder *f);

static int
store_folder_open(struct mp_mailbox *mb, const char *name, int read_only,
    struct mp_folder **f_r, const char **error_r)
{
	struct mp_folder *f;
	struct stat st;
	char dir[DIR_MAX];
	int rc;

	if (md_folder_dir(mb, name, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		*error_r = "no such folder";
		return MP_DECLINED;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return md_fail(error_r, "out of memory", MP_ERROR);
	f->mb = mb;
	f->read_only = read_only;
	f->lock_fd = f->notify_fd = f->dir_fd = -1;
	snprintf(f->path, sizeof(f->path), "%s", dir);
	maildir_make(dir);
	/* what a crashed delivery or APPEND left in tmp/ (a readdir of an
	 * empty directory when nothing did) */
	mp_maildir_clean_tmp(dir, mb->env->tmp_max_age);
	f->dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	f->list_fd = md_list_lock_open(dir);
	if (f->dir_fd < 0 || f->list_fd < 0) {
		rc = md_fail(error_r, "cannot open folder", MP_TEMPFAIL);
		store_folder_close(f);
		return rc;
	}
	if ((rc = md_sync(f, 0, error_r)) != MP_OK) {
		store_folder_close(f);
		return rc;
	}
	*f_r = f;
	return MP_OK;
}

static void
store_folder_close(struct mp_folder *f)
{
	md_list_free(&f->list);
	md_list_free(&f->fresh);
	free(f->info);
	free(f->recent);
	free(f->result_kw);
	if (f->lock_fd >= 0)
		close(f->lock_fd);
	if (f->notify_fd >= 0)
		md_watch_unsubscribe(f->mb->env->watcher, f->notify_fd, f->notify_wd);
	if (f->list_fd >= 0)
		close(f->list_fd);
	if (f->dir_fd >= 0)
		close(f->dir_fd);
	free(f);
}

static int
store_folder_info(struct mp_folder *f, struct mp_folder_info *info,
    const char **error_r)
{
	(void)error_r;
	info->unseen = info->recent = 0;	/* the caller sized info */
	info->uidvalidity = f->list.uidvalidity;
	info->uidnext = f->list.uidnext;
	info->messages = (uint32_t)f->list.n;
	for (size_t i = 0; i < f->list.n; i++) {
		info->unseen += !(f->list.e[i].flags & MP_FLAG_SEEN);
		info->recent += !!(f->list.e[i].flags & MP_FLAG_RECENT);
	}
	return MP_OK;
}

static int
store_messages(struct mp_folder *f, const struct mp_msg_info **v_r,
    size_t *n_r, const char **error_r)
{
	int rc = md_sync(f, 1, error_r);

	if (rc == MP_OK) {
		*v_r = f->info;
		*n_r = f->list.n;
	}
	return rc;
}

/* ---- message streams: LF on disk, CRLF on the wire --------------------- */

/* Reads a Maildir file (LF) as wire form (CRLF), whole or header only.
 * Runs of bytes between LFs are copied at once; a CR or LF that did not
 * fit in the caller's buffer waits in cr_due/lf_due. */
struct mreader {
	int fd;
	int header_only, eof, done, cr_due, lf_due;
	char prev;
	size_t line_len;
	char in[16384];
	size_t ipos, iend;
};

static int
fill_input(struct mreader *m)
{
	ssize_t n = read(m->fd, m->in, sizeof(m->in));

	if (n < 0)
		return -1;
	m->ipos = 0;
	m->iend = (size_t)n;
	if (n == 0) {
		m->eof = 1;
		if (m->prev != '\n' && m->prev != 0)
			m->cr_due = m->lf_due = 1;	/* end the last line */
	}
	return 0;
}

/* Copy up to the next LF; an LF becomes CRLF unless a CR precedes it. */
static size_t
copy_run(struct mreader *m, char *out, size_t room)
{
	const char *p = m->in + m->ipos;
	size_t avail = m->iend - m->ipos, max = avail < room ? avail : room;
	const char *nl = memchr(p, '\n', max);
	size_t run = nl ? (size_t)(nl - p) : max;

	memcpy(out, p, run);
	m->ipos += run;
	if (run) {
		m->prev = p[run - 1];
		m->line_len += run - (m->prev == '\r');
	}
	if (nl) {
		m->ipos++;
		m->cr_due = m->prev != '\r';
		m->lf_due = 1;
	}
	return run;
}

static ssize_t
mreader_read(struct mp_reader *r, void *buf, size_t len)
{
	struct mreader *m = r->priv;
	char *out = buf;
	size_t o = 0;

	while (o < len && !m->done) {
		if (m->cr_due) {
			out[o++] = '\r';
			m->cr_due = 0;
		} else if (m->lf_due) {
			out[o++] = '\n';
			m->lf_due = 0;
			m->prev = '\n';
			m->done = m->eof || (m->header_only && m->line_len == 0);
			m->line_len = 0;
		} else if (m->eof)
			m->done = 1;
		else if (m->ipos == m->iend) {
			if (fill_input(m) < 0)
				return -1;
		} else
			o += copy_run(m, out + o, len - o);
	}
	return (ssize_t)o;
}

/* Open the message's file; when its name went stale (another session
 * changed its flags), look it up again: a file is renamed, never
 * rewritten, so whatever name it has, its bytes are the UID's. */
static int
open_message(struct mp_folder *f, struct md_entry *e)
{
	char name[PATH_MAX];
	int fd = openat(f->dir_fd, e->file, O_RDONLY | O_CLOEXEC);

	for (int tries = 0; fd < 0 && errno == ENOENT && tries < 3; tries++) {
		int found = md_locate(f, e->base, name, sizeof(name));
		if (found <= 0) {
			errno = found == 0 ? ENOENT : EIO;
			return -1;
		}
		fd = openat(f->dir_fd, name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			char *keep = strdup(name);
			if (keep) {
				free(e->file);
				e->file = keep;
			}
		}
	}
	return fd;
}

static int
store_message_open(struct mp_folder *f, uint32_t uid, enum mp_msg_part part,
    struct mp_reader *r, const char **error_r)
{
	struct md_entry *e = md_list_find(&f->list, uid);
	struct mreader *m;

	if (e == NULL || e->file == NULL) {
		*error_r = "no such message";
		return MP_DECLINED;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return md_fail(error_r, "out of memory", MP_ERROR);
	m->fd = open_message(f, e);
	if (m->fd < 0) {
		free(m);
		if (errno == ENOENT) {
			*error_r = "message was expunged";
			return MP_DECLINED;
		}
		return md_fail(error_r, "cannot open message", MP_TEMPFAIL);
	}
	m->header_only = part == MP_PART_HEADER;
	r->read = mreader_read;
	r->size = part == MP_PART_ALL ? (off_t)e->vsize : -1;
	r->priv = m;
	return MP_OK;
}

static void
store_message_close(struct mp_reader *r)
{
	struct mreader *m = r->priv;

	if (m) {
		close(m->fd);
		free(m);
	}
	r->priv = NULL;
}

static int
store_lock(struct mp_folder *f, const char **error_r)
{
	char path[PATH_MAX];

	if (f->lock_fd >= 0)
		return MP_OK;
	snprintf(path, sizeof(path), "%s/" POP3_LOCK, f->path);
	f->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f->lock_fd < 0)
		return md_fail(error_r, "cannot open lock file", MP_TEMPFAIL);
	if (flock(f->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		close(f->lock_fd);
		f->lock_fd = -1;
		*error_r = "mailbox is locked by another session";
		return MP_DECLINED;
	}
	return MP_OK;
}

static int
store_change_fd(struct mp_folder *f)
{
	if (f->notify_fd < 0)
		f->notify_fd = md_watch_subscribe(f->mb->env->watcher, f->path, f->notify_wd);
	return f->notify_fd;
}

const struct mp_store_ops maildir_store_ops = {
	.struct_size = sizeof(struct mp_store_ops),
	.open = store_open,
	.close = store_close,
	.folders = store_folders,
	.folder_create = store_folder_create,
	.folder_delete = store_folder_delete,
	.folder_rename = store_folder_rename,
	.folder_subscribe = store_folder_subscribe,
	.folder_open = store_folder_open,
	.folder_close = store_folder_close,
	.folder_info = store_folder_info,
	.messages = store_messages,
	.message_open = store_message_open,
	.message_close = store_message_close,
	.flags_set = md_flags_set,
	.append = md_append,
	.copy = md_copy,
	.expunge = md_expunge,
	.lock = store_lock,
	.change_fd = store_change_fd,
	.import = md_import,
	.flags_change = md_flags_change,
	.folder_keywords = md_folder_keywords,
};
