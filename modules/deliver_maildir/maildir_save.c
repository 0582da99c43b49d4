/*
 * modules/deliver_maildir/maildir_save.c - the one save path (store.h
 * contract 6). Every message enters a folder the same way:
 *   1. its bytes go to a new file tmp/<unique name>, written with LF
 *      line ends (CRLF in, as Postfix and qmail store them), its wire
 *      size counted on the way (maildir_save_open / maildir_save_write);
 *   2a. delivery (deliver_maildir.c) makes it durable and renames it
 *      into new/; the first sync gives it its UID, under the list lock;
 *   2b. APPEND, COPY/MOVE and import commit it under the list lock:
 *      read the list, take UIDNEXT (or the imported UID), put the file
 *      in cur/ with its flags (a hard link for COPY), add the entry with
 *      its keywords in the folder's spelling, write the list.
 * So UIDs are handed out one at a time per folder, on a list read after
 * taking the lock, in the order messages become visible.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "maildir_private.h"

int
maildir_save_open(const struct mp_host *host, const char *dir, int make,
    char *base, size_t basesize)
{
	char tmp[PATH_MAX];
	int fd;

	maildir_unique_name(host, base, basesize);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, base);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && make && maildir_make_path(dir) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return fd;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* CRLF -> LF for one buffer; a CR at its end waits in *pending_cr
 * for the next byte. Runs between CRs are copied at once. */
static size_t
crlf_to_lf(const char *in, size_t n, char *out, int *pending_cr)
{
	size_t i = 0, o = 0;

	if (*pending_cr && n > 0) {
		if (in[0] != '\n')
			out[o++] = '\r';
		*pending_cr = 0;
	}
	while (i < n) {
		const char *cr = memchr(in + i, '\r', n - i);
		size_t run = cr ? (size_t)(cr - (in + i)) : n - i;
		memcpy(out + o, in + i, run);
		o += run;
		i += run;
		if (cr == NULL)
			break;
		if (++i == n) {
			*pending_cr = 1;
			break;
		}
		if (in[i] != '\n')
			out[o++] = '\r';	/* a lone CR stays */
	}
	return o;
}

/* What the file's bytes cost on the wire: every LF not after a CR gains
 * one, and a last line without LF is ended (as maildir_store.c serves
 * it). Counted across buffers. */
struct wire_count {
	uint64_t size;
	char prev;
};

static void
count_wire(struct wire_count *w, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;

	if (len == 0)
		return;
	w->size += len;
	/* memchr per line, not a test per byte: this runs over every
	 * delivered byte (6% of merpatid's CPU at 100 KiB messages). */
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		w->size += (nl > buf ? nl[-1] : w->prev) != '\r';
		p = nl + 1;
	}
	w->prev = buf[len - 1];
}

/*
 * The file is written from one buffer in whole pages: a write() ending
 * inside a page makes the kernel zero the rest of that page, which the
 * next write() then fills again (4% of merpatid's CPU at 100 KiB
 * messages written 16 KiB at a time), and a 100 KiB message takes two
 * write()s instead of eight. Only the last write() ends mid-page.
 */
#define SAVE_BUF (64 * 1024)
#define SAVE_PAGE 4096
#define SAVE_IN 16384	/* one read; its LF form may be one byte longer */

struct save_out {
	int fd;
	char *buf;
	size_t len;
	uint64_t off;		/* file offset of buf[0] */
	struct wire_count w;
};

/* Write what fills whole pages (all: everything), keep the rest. */
static int
out_flush(struct save_out *o, int all)
{
	size_t n = all ? o->len : o->len - (size_t)((o->off + o->len) % SAVE_PAGE);

	if (n == 0)
		return 0;
	if (write_all(o->fd, o->buf, n) < 0)
		return -1;
	memmove(o->buf, o->buf + n, o->len - n);
	o->len -= n;
	o->off += n;
	return 0;
}

/* Room for at least want more bytes at o->buf + o->len (want is at
 * most SAVE_IN + 1, so what stays after a flush, under a page, fits). */
static int
out_room(struct save_out *o, size_t want)
{
	return SAVE_BUF - o->len >= want ? 0 : out_flush(o, 0);
}

static int
out_put(struct save_out *o, const char *p, size_t n)
{
	while (n > 0) {
		size_t take = n < SAVE_IN ? n : SAVE_IN;
		if (out_room(o, take) < 0)
			return -1;
		memcpy(o->buf + o->len, p, take);
		count_wire(&o->w, o->buf + o->len, take);
		o->len += take;
		p += take;
		n -= take;
	}
	return 0;
}

static int
save_stream(struct save_out *o, const char *prefix, struct mp_reader *msg)
{
	char in[SAVE_IN];
	int pending_cr = 0;
	ssize_t n;

	if (prefix && out_put(o, prefix, strlen(prefix)) < 0)
		return -1;
	while ((n = msg->read(msg, in, sizeof(in))) > 0) {
		if (out_room(o, (size_t)n + 1) < 0)
			return -1;
		size_t got = crlf_to_lf(in, (size_t)n, o->buf + o->len, &pending_cr);
		count_wire(&o->w, o->buf + o->len, got);
		o->len += got;
	}
	if (n < 0 || (pending_cr && out_put(o, "\r", 1) < 0))
		return -1;
	return out_flush(o, 1);
}

int
maildir_save_write(int fd, const char *prefix, struct mp_reader *msg,
    uint64_t *vsize_r)
{
	struct save_out o = { .fd = fd, .buf = malloc(SAVE_BUF) };
	int rc, err;

	if (o.buf == NULL)
		return -1;
	rc = save_stream(&o, prefix, msg);
	err = errno;
	free(o.buf);
	errno = err;
	if (rc == 0 && vsize_r)
		*vsize_r = o.w.size + (o.w.size > 0 && o.w.prev != '\n' ? 2 : 0);
	return rc;
}

/* ---- commit: the UID, under the destination's list lock ---- */

struct md_save {
	char src[PATH_MAX];	/* the file to rename (or link) into cur/ */
	int link;		/* COPY: link src, leave it in place */
	char base[BASE_MAX];
	uint32_t flags;
	const char *keywords;
	uint64_t vsize;
	time_t mtime;
	uint32_t uid;		/* import: this UID; 0: the next one */
	uint32_t uidvalidity;	/* import: for an empty folder */
};

/* The new entry into the list: appended when the list allows it (see
 * maildir_uidlist.c; *sync_fd_r then gets the file to fdatasync once
 * the lock is let go), else the list rewritten. 0 or -1. */
static int
record_entry(const char *dir, int lock_fd, struct md_list *l, const struct md_save *s,
    const struct md_entry *e, int *sync_fd_r)
{
	if (l->appendable && !l->dirty && s->uid == 0 && e == &l->e[l->n - 1])
		return md_list_append(dir, lock_fd, l, e, sync_fd_r);
	return md_list_write(dir, lock_fd, l);
}

static int
commit_locked(const char *dir, const char *mailbox_dir, int lock_fd,
    struct md_save *s, uint32_t *uid_r, uint32_t *uv_r, int *sync_fd_r,
    const char **error_r)
{
	struct md_list l = { 0 };
	struct md_entry *e;
	char cur[PATH_MAX], name[NAME_MAX_MD];
	char *kw = NULL;
	int rc = MP_OK;

	if (md_list_read(dir, mailbox_dir, lock_fd, &l) < 0)
		return md_fail(error_r, "cannot read UID list", MP_TEMPFAIL);
	if (s->uid && md_list_find(&l, s->uid)) {
		*error_r = "UID already taken";
		rc = MP_DECLINED;
	} else if (md_keywords_apply(&l, "", MP_FLAGS_ADD, s->keywords, &kw,
	    error_r) < 0)
		rc = MP_ERROR;
	if (rc != MP_OK)
		goto out;
	if (s->uid && l.n == 0 && l.uidvalidity != s->uidvalidity) {
		l.uidvalidity = s->uidvalidity;
		l.dirty = 1;
	}
	*uid_r = s->uid ? s->uid : l.uidnext;
	if (*uid_r >= l.uidnext)
		l.uidnext = *uid_r + 1;
	md_file_name(s->base, s->flags & ~MP_FLAG_RECENT, name, sizeof(name));
	snprintf(cur, sizeof(cur), "%s/cur/%s", dir, name);
	if ((s->link ? link(s->src, cur) : rename(s->src, cur)) < 0) {
		rc = md_fail(error_r, "cannot store message", MP_TEMPFAIL);
		goto out;
	}
	if ((e = md_list_add(&l, *uid_r, s->vsize, s->mtime, s->base, kw)) == NULL ||
	    record_entry(dir, lock_fd, &l, s, e, sync_fd_r) < 0) {
		rc = md_fail(error_r, "cannot write UID list", MP_TEMPFAIL);
		if (s->link)
			unlink(cur);
		else
			rename(cur, s->src);	/* the caller removes it */
		goto out;
	}
	*uv_r = l.uidvalidity;
out:
	free(kw);
	md_list_free(&l);
	return rc;
}

static void
fsync_cur(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/cur", dir);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int
commit(struct mp_mailbox *mb, const char *dir, struct md_save *s,
    uint32_t *uid_r, uint32_t *uv_r, const char **error_r)
{
	int fd = md_list_lock_open(dir), sync_fd = -1, rc;

	if (fd < 0 || md_list_lock(fd) < 0) {
		if (fd >= 0)
			close(fd);
		return md_fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
	}
	rc = commit_locked(dir, mb->path, fd, s, uid_r, uv_r, &sync_fd, error_r);
	md_list_unlock(fd);
	close(fd);
	/* An appended entry is durable before we answer; flushed outside the
	 * lock, so sessions appending at once share one flush of the file. */
	if (sync_fd >= 0) {
		if (fdatasync(sync_fd) < 0 && rc == MP_OK)
			rc = md_fail(error_r, "cannot write UID list", MP_TEMPFAIL);
		close(sync_fd);
	}
	if (rc == MP_OK)
		fsync_cur(dir);	/* the new name is durable before we answer */
	return rc;
}

/* Step 1 for APPEND and import: msg into tmp/, durable, dated. */
static int
save_tmp(struct mp_mailbox *mb, const char *dir, struct mp_reader *msg,
    time_t date, struct md_save *s, const char **error_r)
{
	int fd = maildir_save_open(mb->env->host, dir, 0, s->base, sizeof(s->base));

	if (fd < 0)
		return md_fail(error_r, "cannot create message file", MP_TEMPFAIL);
	snprintf(s->src, sizeof(s->src), "%s/tmp/%s", dir, s->base);
	if (maildir_save_write(fd, NULL, msg, &s->vsize) < 0 || fsync(fd) < 0) {
		md_fail(error_r, "cannot write message", MP_TEMPFAIL);
		close(fd);
		unlink(s->src);
		return MP_TEMPFAIL;
	}
	close(fd);
	s->mtime = date > 0 ? date : time(NULL);
	if (date > 0) {
		struct timeval tv[2] = { { date, 0 }, { date, 0 } };
		utimes(s->src, tv);
	}
	return MP_OK;
}

int
md_append(struct mp_mailbox *mb, const char *folder, struct mp_reader *msg,
    uint32_t flags, time_t date, uint32_t *uid_r, uint32_t *uidvalidity_r,
    const char **error_r)
{
	struct md_save s = { .flags = flags };
	char dir[DIR_MAX];
	struct stat st;
	int rc;

	if (md_folder_dir(mb, folder, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		*error_r = "no such folder";
		return MP_DECLINED;
	}
	if ((rc = save_tmp(mb, dir, msg, date, &s, error_r)) != MP_OK)
		return rc;
	rc = commit(mb, dir, &s, uid_r, uidvalidity_r, error_r);
	if (rc != MP_OK)
		unlink(s.src);
	return rc;
}

int
md_import(struct mp_mailbox *mb, const char *folder, uint32_t uidvalidity,
    uint32_t uid, struct mp_reader *msg, uint32_t flags, const char *keywords,
    time_t date, const char **error_r)
{
	struct md_save s = { .flags = flags, .keywords = keywords, .uid = uid,
	    .uidvalidity = uidvalidity };
	char dir[DIR_MAX];
	uint32_t uid_r, uv_r;
	int rc;

	if (md_folder_dir(mb, folder, dir, sizeof(dir)) < 0 || uid == 0) {
		*error_r = "invalid folder name or UID";
		return MP_ERROR;
	}
	if (maildir_make(dir) < 0)
		return md_fail(error_r, "cannot create folder", MP_TEMPFAIL);
	if ((rc = save_tmp(mb, dir, msg, date, &s, error_r)) != MP_OK)
		return rc;
	rc = commit(mb, dir, &s, &uid_r, &uv_r, error_r);
	if (rc != MP_OK)
		unlink(s.src);
	return rc;
}

/* Point s->src at the message's file as it is now (its name may have
 * gone stale). MP_DECLINED when it was expunged. */
static int
current_file(struct mp_folder *f, struct md_entry *e, struct md_save *s,
    const char **error_r)
{
	char name[1000];	/* "cur/" + a file name; fits after any path */
	struct stat st;

	snprintf(name, sizeof(name), "%s", e->file);
	if (fstatat(f->dir_fd, name, &st, 0) < 0) {
		int found = errno == ENOENT ? md_locate(f, e->base, name, sizeof(name)) : -1;
		if (found < 0)
			return md_fail(error_r, "cannot read folder", MP_TEMPFAIL);
		if (found == 0) {
			*error_r = "message was expunged";
			return MP_DECLINED;
		}
	}
	snprintf(s->src, sizeof(s->src), "%s/%s", f->path, name);
	s->flags = md_flags_of(name);
	return MP_OK;
}

int
md_copy(struct mp_folder *f, uint32_t uid, const char *dest, int move,
    uint32_t *uid_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct md_entry *e = md_list_find(&f->list, uid);
	struct md_save s = { .link = 1 };
	char dir[DIR_MAX];
	struct stat st;
	int rc;

	if (e == NULL || e->file == NULL) {
		*error_r = "no such message";
		return MP_DECLINED;
	}
	if (md_folder_dir(f->mb, dest, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		*error_r = "no such folder";
		return MP_ERROR;
	}
	if ((rc = current_file(f, e, &s, error_r)) != MP_OK)
		return rc;
	/* A hard link is an atomic, durable copy within one file system;
	 * the file keeps its mtime (INTERNALDATE). */
	maildir_unique_name(f->mb->env->host, s.base, sizeof(s.base));
	s.keywords = e->keywords;
	s.vsize = e->vsize;
	s.mtime = e->mtime;
	rc = commit(f->mb, dir, &s, uid_r, uidvalidity_r, error_r);
	if (rc == MP_OK && move)
		rc = md_expunge(f, uid, error_r);
	return rc;
}

int
md_expunge(struct mp_folder *f, uint32_t uid, const char **error_r)
{
	struct md_entry *e = md_list_find(&f->list, uid);
	char name[PATH_MAX];
	int found = 1;

	if (e == NULL) {
		*error_r = "no such message";
		return MP_DECLINED;
	}
	if (e->file == NULL)
		return MP_OK;	/* gone already: removed is removed */
	if (unlinkat(f->dir_fd, e->file, 0) < 0) {
		if (errno != ENOENT)
			return md_fail(error_r, "cannot remove message", MP_TEMPFAIL);
		/* Renamed meanwhile: find it where renames cannot happen. */
		if (md_list_lock(f->list_fd) < 0)
			return md_fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
		found = md_locate(f, e->base, name, sizeof(name));
		if (found > 0 && unlinkat(f->dir_fd, name, 0) < 0 && errno != ENOENT)
			found = -1;
		md_list_unlock(f->list_fd);
		if (found < 0)
			return md_fail(error_r, "cannot remove message", MP_TEMPFAIL);
	}
	free(e->file);
	e->file = NULL;
	return MP_OK;
}
