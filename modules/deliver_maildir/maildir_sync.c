/*
 * modules/deliver_maildir/maildir_sync.c - bringing a folder handle's
 * view in step with the disk: under the list lock, read the list fresh,
 * move new/ to cur/ (read-write handles), give each file not yet listed
 * the next UID in name order (names start with the delivery time),
 * drop entries whose file is gone, claim \Recent, write the list back
 * only when it changed. Also finds a file whose name went stale.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir_private.h"

/* Vanished entries the list on disk may keep beyond a quarter of it
 * (drop_vanished): a small folder is not rewritten at every EXPUNGE. */
#define DROPPED_KEPT_MIN 64

/* Size as served: every LF not already after a CR gains one. */
static uint64_t
wire_size(int dir_fd, const char *path, off_t disk)
{
	char buf[8192];
	uint64_t extra = 0;
	char prev = 0;
	ssize_t n;
	int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return (uint64_t)disk;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			extra += buf[i] == '\n' && prev != '\r';
			prev = buf[i];
		}
	close(fd);
	return (uint64_t)disk + extra + (prev != '\n' && disk > 0 ? 2 : 0);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_uid(const void *a, const void *b)
{
	const struct md_entry *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* new/ -> cur/ (lock held: no sync sees the file in neither place). */
static void
move_new(const struct mp_folder *f)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct dirent *d;
	DIR *dir;

	snprintf(from, sizeof(from), "%s/new", f->path);
	if ((dir = opendir(from)) == NULL)
		return;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(from, sizeof(from), "%s/new/%s", f->path, d->d_name);
		snprintf(to, sizeof(to), "%s/cur/%s%s", f->path, d->d_name,
		    strstr(d->d_name, ":2,") ? "" : ":2,");
		rename(from, to);
	}
	closedir(dir);
}

/*
 * The listed entries by base name: an open-addressing table of indexes
 * into l->e, built once per sync. Looking every file of cur/ up here
 * costs a hash each, where sorting the list and bisecting it cost ~30
 * string comparisons per file (10,000 files: a sixth of a session's CPU).
 */
struct base_index {
	size_t *slot;		/* entry index + 1; 0: empty */
	size_t mask;
};

static size_t
base_hash(const char *base)
{
	size_t h = 1469598103934665603ull;	/* FNV-1a */

	for (; *base; base++)
		h = (h ^ (unsigned char)*base) * 1099511628211ull;
	return h;
}

static int
index_build(struct base_index *x, const struct md_list *l)
{
	size_t size = 16;

	while (size < l->n * 2)
		size *= 2;
	if ((x->slot = calloc(size, sizeof(*x->slot))) == NULL)
		return -1;
	x->mask = size - 1;
	for (size_t i = 0; i < l->n; i++) {
		size_t h = base_hash(l->e[i].base) & x->mask;
		while (x->slot[h])
			h = (h + 1) & x->mask;
		x->slot[h] = i + 1;
	}
	return 0;
}

static struct md_entry *
index_find(const struct base_index *x, struct md_list *l, const char *base)
{
	for (size_t h = base_hash(base) & x->mask; x->slot[h]; h = (h + 1) & x->mask)
		if (strcmp(l->e[x->slot[h] - 1].base, base) == 0)
			return &l->e[x->slot[h] - 1];
	return NULL;
}

/* Point listed entry e at dir/name. 0, or -1 out of memory. */
static int
adopt_listed(struct mp_folder *f, struct md_list *l, struct md_entry *e, const char *path,
    const char *name)
{
	struct stat st;

	if (e->mtime == 0) {
		if (fstatat(f->dir_fd, path, &st, 0) < 0)
			return 0;	/* expunged while we looked */
		e->mtime = st.st_mtime;
		l->dirty = 1;
	}
	free(e->file);
	if ((e->file = strdup(path)) == NULL)
		return -1;
	e->flags = md_flags_of(name);
	return 0;
}

/* A file the list does not know: the next UID. 0, or -1 out of memory. */
static int
adopt_new(struct mp_folder *f, struct md_list *l, const char *path, const char *name)
{
	char base[BASE_MAX];
	struct md_entry *e;
	struct stat st;

	if (fstatat(f->dir_fd, path, &st, 0) < 0)
		return 0;	/* expunged while we looked */
	md_base_of(name, base, sizeof(base));
	e = md_list_add(l, l->uidnext++, wire_size(f->dir_fd, path, st.st_size), st.st_mtime,
	    base, "");
	if (e == NULL || (e->file = strdup(path)) == NULL)
		return -1;
	e->flags = md_flags_of(name);
	l->dirty = 1;
	return 0;
}

/* dir/'s file names; -1 when dir cannot be read or out of memory. */
static ssize_t
read_names(const struct mp_folder *f, const char *dir, char ***names_r)
{
	char path[PATH_MAX];
	struct dirent *d;
	char **names = NULL, **more;
	size_t n = 0, cap = 0;
	int rc = 0;
	DIR *dp;

	snprintf(path, sizeof(path), "%s/%s", f->path, dir);
	if ((dp = opendir(path)) == NULL)
		return -1;
	while (rc == 0 && (d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		more = mp_array_grow(names, &cap, n + 1, sizeof(*names));
		if (more != NULL)
			names = more;
		if (more == NULL || (names[n] = strdup(d->d_name)) == NULL)
			rc = -1;	/* a name left out would look like a vanished message */
		else
			n++;
	}
	closedir(dp);
	*names_r = names;
	if (rc < 0) {
		while (n > 0)
			free(names[--n]);
		free(names);
		return -1;
	}
	return (ssize_t)n;
}

/* Every file of dir/: its entry among the known ones, or, for those
 * unknown, new UIDs in name order (names start with the delivery time). */
static int
scan(struct mp_folder *f, struct md_list *l, const struct base_index *x, const char *dir)
{
	char path[PATH_MAX], base[BASE_MAX];
	char **names;
	ssize_t n = read_names(f, dir, &names);
	size_t unknown = 0;
	int rc = 0;

	if (n < 0)
		return -1;
	for (ssize_t i = 0; i < n; i++) {
		struct md_entry *e;
		md_base_of(names[i], base, sizeof(base));
		if ((e = index_find(x, l, base)) == NULL) {
			names[unknown++] = names[i];	/* kept for later, in place */
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (rc == 0)
			rc = adopt_listed(f, l, e, path, names[i]);
		free(names[i]);
	}
	if (unknown > 1)
		qsort(names, unknown, sizeof(*names), cmp_str);
	for (size_t i = 0; i < unknown; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (rc == 0)
			rc = adopt_new(f, l, path, names[i]);
		free(names[i]);
	}
	free(names);
	return rc;
}

/*
 * Drop the entries whose file is gone from the view. The list on disk
 * keeps them until it is written for another reason, or until they are
 * a quarter of it: an EXPUNGE then costs no list write (a new file, an
 * fsync and a rename under the lock every session waits for), and an
 * entry left behind is harmless: its file is gone, every sync drops it
 * again, and its UID is below UIDNEXT, so never given out again.
 */
static void
drop_vanished(struct md_list *l)
{
	size_t k = 0, dropped;

	for (size_t i = 0; i < l->n; i++) {
		if (l->e[i].file) {
			l->e[k++] = l->e[i];
			continue;
		}
		free(l->e[i].base);
		free(l->e[i].keywords);
	}
	dropped = l->n - k;
	l->n = k;
	if (dropped > 0 && dropped * 4 >= k + DROPPED_KEPT_MIN)
		l->dirty = 1;
}

static int
is_recent(const struct mp_folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->nrecent;

	if (f->read_only)
		return uid >= f->unclaimed;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (f->recent[mid] == uid)
			return 1;
		if (f->recent[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/*
 * \Recent (store.h contract 5): the UIDs from the lock file's first
 * unclaimed one up are this read-write handle's; the mark moves past
 * them. A read-only handle only remembers where the mark is. Lock held.
 * A folder without a mark yet starts it at UIDNEXT as the list was read
 * (so a list from before marks existed claims nothing older). Only
 * messages() claims: a handle opened just to change flags takes none.
 */
static int
claim_recent(struct mp_folder *f, const struct md_list *l, int claim)
{
	struct md_lockstate st;
	uint32_t from;

	md_lockstate_read(f->list_fd, &st, l->uidnext_read);
	from = st.unclaimed;

	if (f->read_only) {
		f->unclaimed = from;
		return 0;
	}
	if (!claim || from >= l->uidnext)
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		uint32_t *r;
		if (l->e[i].uid < from)
			continue;
		if ((r = realloc(f->recent, (f->nrecent + 1) * sizeof(*r))) == NULL)
			return -1;
		f->recent = r;
		f->recent[f->nrecent++] = l->e[i].uid;
	}
	st.unclaimed = l->uidnext;
	md_lockstate_write(f->list_fd, &st);
	return 0;
}

int
md_build_info(struct mp_folder *f)
{
	struct mp_msg_info *info = calloc(f->list.n ? f->list.n : 1, sizeof(*info));

	if (info == NULL)
		return -1;
	free(f->info);
	f->info = info;
	for (size_t i = 0; i < f->list.n; i++) {
		struct md_entry *e = &f->list.e[i];
		e->flags &= ~MP_FLAG_RECENT;
		if (is_recent(f, e->uid))
			e->flags |= MP_FLAG_RECENT;
		/* no keywords: one shared "", which a reader comparing the
		 * whole folder's flags finds without a cache miss per message */
		info[i] = (struct mp_msg_info){ sizeof(info[i]), e->uid, e->flags, e->vsize,
		    e->mtime, e->keywords[0] ? e->keywords : "" };
	}
	return 0;
}

/* What a sync under the shared lock found it must change (a file to
 * move out of new/, the list to write): it starts again, exclusive. */
#define NEED_EXCLUSIVE 1

/* Any file in new/? (-1: cannot tell) */
static int
new_has_files(const struct mp_folder *f)
{
	char path[PATH_MAX];
	struct dirent *d;
	int found = 0;
	DIR *dp;

	snprintf(path, sizeof(path), "%s/new", f->path);
	if ((dp = opendir(path)) == NULL)
		return -1;
	while (!found && (d = readdir(dp)) != NULL)
		found = d->d_name[0] != '.';
	closedir(dp);
	return found;
}

/* Read the list and scan the folder's files into l; lock held, shared
 * (nothing written: NEED_EXCLUSIVE when something must be) or not. */
static int
scan_folder(struct mp_folder *f, struct md_list *l, int exclusive, const char **error_r)
{
	struct base_index x;
	int rc;

	if (!exclusive && !f->read_only && new_has_files(f) != 0)
		return NEED_EXCLUSIVE;
	if (md_list_read(f->path, f->mb->path, f->list_fd, l) < 0)
		return md_fail(error_r, "cannot read UID list", MP_TEMPFAIL);
	if (!exclusive && l->dirty)
		return NEED_EXCLUSIVE;
	if (!f->read_only)
		move_new(f);
	if (index_build(&x, l) < 0)
		return md_fail(error_r, "out of memory", MP_ERROR);
	rc = scan(f, l, &x, "cur") < 0 || (f->read_only && scan(f, l, &x, "new") < 0);
	free(x.slot);
	if (rc)
		return md_fail(error_r, "cannot read folder", MP_TEMPFAIL);
	drop_vanished(l);
	if (!exclusive && l->dirty)
		return NEED_EXCLUSIVE;
	if (l->n > 1)
		qsort(l->e, l->n, sizeof(*l->e), cmp_uid);
	if (l->dirty && md_list_write(f->path, f->list_fd, l) < 0)
		return md_fail(error_r, "cannot write UID list", MP_TEMPFAIL);
	return MP_OK;
}

/* The sync proper, lock held: the process's snapshot of the folder as
 * `seen` shows it (maildir_snapshot.c), or a scan (*scanned set). */
static int
sync_locked(struct mp_folder *f, struct md_list *l, const struct md_stamps *seen,
    int claim, int *scanned, const char **error_r)
{
	int rc;

	*scanned = !(seen->valid &&
	    md_snap_get(f->mb->env->snaps, f->path, f->read_only, seen, l));
	if (*scanned && (rc = scan_folder(f, l, 1, error_r)) != MP_OK)
		return rc;
	if (claim_recent(f, l, claim) < 0)
		return md_fail(error_r, "out of memory", MP_ERROR);
	return MP_OK;
}

/* The folder's stamps now, quiet when all are two seconds old; 0, or -1
 * when one cannot be read. */
static int
stamps_read(const struct mp_folder *f, struct md_stamps *st)
{
	static const char *const names[MD_STAMPED] = { "new", "cur", UIDLIST, UIDLIST_LOCK };
	struct timespec clock;
	struct stat sb;

	if (clock_gettime(CLOCK_REALTIME, &clock) < 0)
		return -1;
	st->quiet = 1;
	for (int i = 0; i < MD_STAMPED; i++) {
		if (fstatat(f->dir_fd, names[i], &sb, 0) < 0)
			return -1;
		st->mtime[i] = sb.st_mtim;
		st->ino[i] = sb.st_ino;
		if (clock.tv_sec - sb.st_mtim.tv_sec < 2)
			st->quiet = 0;
	}
	return 0;
}

/*
 * 1 when nothing changed since the last full sync, so the view stands
 * without locking, reading the list or scanning cur/ (10,000 names: ~9
 * ms, at every IMAP command). File systems stamp times at a clock tick
 * (jiffies on ext4), so a change in the same tick as the last sync
 * could leave every stamp equal: stamps younger than two seconds are
 * never trusted, as Dovecot does with its Maildir directory mtimes.
 * That holds for the stamps the last sync saw as well as for those
 * now: a change made after that sync, in the tick its stamps were
 * read, leaves them all equal, and they are quiet two seconds later.
 */
static int
unchanged_since_sync(const struct mp_folder *f, struct md_stamps *now)
{
	if (stamps_read(f, now) < 0)
		return 0;
	now->valid = 1;
	if (!f->seen.valid || f->fresh.keywords != NULL)
		return 0;
	return now->quiet && f->seen.quiet && md_stamps_equal(now, &f->seen);
}

/* A current view that has not claimed \Recent yet (folder_open synced
 * it, messages() wants the claim): the claim alone, no rescan. A list
 * changed meanwhile only means fewer UIDs claimed now, more next time. */
static int
claim_only(struct mp_folder *f, const char **error_r)
{
	int rc;

	if (md_list_lock(f->list_fd) < 0)
		return md_fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
	rc = claim_recent(f, &f->list, 1);
	md_list_unlock(f->list_fd);
	if (rc < 0 || md_build_info(f) < 0)
		return md_fail(error_r, "out of memory", MP_ERROR);
	f->seen.claimed = 1;
	return MP_OK;
}

/* A scan of a quiet folder that changed nothing (no list write, no
 * move, no claim: the stamps are still those seen before it) gave the
 * view any handle would get until they move: keep it for the process.
 * Busy folders are never kept, so they skip the second look. */
static void
share_view(const struct mp_folder *f, const struct md_stamps *before,
    const struct md_list *l)
{
	struct md_stamps after;

	if (f->mb->env->snaps == NULL || !before->quiet)
		return;
	if (stamps_read(f, &after) == 0 && md_stamps_equal(before, &after))
		md_snap_put(f->mb->env->snaps, f->path, f->read_only, before, l);
}

/*
 * The sync most commands need on a busy folder, which changes nothing:
 * under the shared lock, so sessions of one folder scan at once instead
 * of one after the other (writers still exclude them all). The list is
 * as fresh as under the exclusive lock; what would write (new/ to
 * move, the list to rewrite) gives NEED_EXCLUSIVE, and a \Recent claim
 * is made after, briefly exclusive, only when there is one to make.
 */
static int
sync_shared(struct mp_folder *f, struct md_list *l, const struct md_stamps *seen,
    int claim, int *scanned, const char **error_r)
{
	struct md_lockstate st = { 0 };
	int rc;

	if (md_list_lock_shared(f->list_fd) < 0)
		return md_fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
	*scanned = !(seen->valid &&
	    md_snap_get(f->mb->env->snaps, f->path, f->read_only, seen, l));
	rc = *scanned ? scan_folder(f, l, 0, error_r) : MP_OK;
	if (rc == MP_OK && (f->read_only || !claim))
		rc = claim_recent(f, l, 0) < 0 ? md_fail(error_r, "out of memory", MP_ERROR) : MP_OK;
	else if (rc == MP_OK)
		md_lockstate_read(f->list_fd, &st, l->uidnext_read);
	md_list_unlock(f->list_fd);
	if (rc != MP_OK || f->read_only || !claim || st.unclaimed >= l->uidnext)
		return rc;
	if (md_list_lock(f->list_fd) < 0)
		return md_fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
	rc = claim_recent(f, l, 1);	/* what is left to claim by then */
	md_list_unlock(f->list_fd);
	return rc < 0 ? md_fail(error_r, "out of memory", MP_ERROR) : MP_OK;
}

int
md_sync(struct mp_folder *f, int claim, const char **error_r)
{
	struct md_list l = { 0 };
	struct md_stamps before = { 0 };
	int rc, scanned = 0;

	/* a read-only handle claims nothing: its view stands either way */
	if (unchanged_since_sync(f, &before))
		return claim && !f->seen.claimed && !f->read_only ? claim_only(f, error_r) : MP_OK;
	before.claimed = claim;
	f->seen.valid = 0;
	rc = sync_shared(f, &l, &before, claim, &scanned, error_r);
	if (rc == NEED_EXCLUSIVE) {
		md_list_free(&l);
		if (md_list_lock(f->list_fd) < 0)
			return md_fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
		rc = sync_locked(f, &l, &before, claim, &scanned, error_r);
		md_list_unlock(f->list_fd);
	}
	if (rc != MP_OK) {
		md_list_free(&l);
		return rc;
	}
	if (scanned)
		share_view(f, &before, &l);
	md_list_free(&f->list);
	md_list_free(&f->fresh);	/* the view is current again */
	f->list = l;
	f->seen = before;	/* stamps read before the scan: a change during
				   it makes them differ at the next call */
	return md_build_info(f) < 0 ? md_fail(error_r, "out of memory", MP_ERROR) : MP_OK;
}

/* Look for base's file in one subdirectory. 1 found, 0 not, -1 error. */
static int
locate_in(const struct mp_folder *f, const char *sub, const char *base,
    char *out, size_t size)
{
	char path[PATH_MAX];
	size_t blen = strlen(base);
	struct dirent *d;
	DIR *dp;
	int found = 0;

	snprintf(path, sizeof(path), "%s/%s", f->path, sub);
	if ((dp = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (!found && (d = readdir(dp)) != NULL)
		if (strncmp(d->d_name, base, blen) == 0 &&
		    (d->d_name[blen] == ':' || d->d_name[blen] == '\0')) {
			snprintf(out, size, "%s/%s", sub, d->d_name);
			found = 1;
		}
	closedir(dp);
	return found;
}

int
md_locate(const struct mp_folder *f, const char *base, char *out, size_t size)
{
	int rc = locate_in(f, "cur", base, out, size);

	return rc != 0 ? rc : locate_in(f, "new", base, out, size);
}
