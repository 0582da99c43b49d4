/*
 * modules/deliver_maildir/maildir_store.c - the mailstore API on
 * Maildir (and Maildir++ folders), used by POP3 and IMAP.
 *
 * Layout per user (root/<domain>/<local>/): INBOX is the Maildir
 * itself; folder "a/b" is the Maildir ".a.b" (so '.' cannot appear in
 * a folder name). Flags live in file names as the Maildir spec says
 * (":2," then D F R S T for Draft, Flagged, Replied, Seen, Trashed).
 * Each folder has a UID list, `merpati-uidlist`:
 *     M1 V<uidvalidity> N<uidnext>
 *     <uid> <size with CRLF> <base name> [<keyword,keyword>]
 * rewritten (temp file, fsync, rename) under an flock on
 * `merpati-uidlist.lock`, so deliveries, POP3 and IMAP sessions in any
 * number of threads or processes agree on UIDs. Files are stored with
 * LF line ends and served with CRLF.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "maildir_store.h"

#define UIDLIST "merpati-uidlist"
#define UIDLIST_LOCK "merpati-uidlist.lock"
#define POP3_LOCK "merpati-pop3.lock"
#define SUBSCRIPTIONS "merpati-subscriptions"
#define LAST_UIDVALIDITY "merpati-uidvalidity"

/* Folder paths stay well under PATH_MAX so that any file name fits. */
#define DIR_MAX (PATH_MAX - 1024)

struct mp_mailbox {
	const struct maildir_store_env *env;
	char path[DIR_MAX];
};

struct entry {
	uint32_t uid;
	uint32_t flags;
	uint64_t vsize;
	time_t mtime;
	char *base;		/* file name up to ':' */
	char *file;		/* current name in cur/, NULL if gone */
	char *keywords;		/* space-separated in memory */
};

struct mp_folder {
	struct mp_mailbox *mb;
	char path[DIR_MAX];
	int dir_fd;		/* O_PATH: short lookups for cur/x, new/x */
	int read_only;
	uint32_t uidvalidity, uidnext;
	struct entry *e;
	size_t n;
	struct mp_msg_info *info;
	uint32_t *recent;	/* UIDs this session saw first (\\Recent) */
	size_t nrecent;
	int lock_fd, notify_fd;
	int new_list;		/* no UID list yet: write one */
};

static _Thread_local char err_buf[256];

static int
fail(const char **error_r, const char *what, int rc)
{
	snprintf(err_buf, sizeof(err_buf), "%s: %s", what, strerror(errno));
	*error_r = err_buf;
	return rc;
}

/* ---- names and paths ----------------------------------------------------- */

static int
safe_part(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == '\\' || (unsigned char)s[i] < 0x20 ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

int
maildir_user_path(const char *root, const char *address, char *out,
    size_t size, const char **why)
{
	const char *at = strrchr(address, '@');
	int n;

	if (at == NULL || !safe_part(address, (size_t)(at - address)) ||
	    !safe_part(at + 1, strlen(at + 1))) {
		*why = "unsafe or malformed mailbox address";
		return -1;
	}
	n = snprintf(out, size, "%s/%s/%.*s", root, at + 1,
	    (int)(at - address), address);
	if (n < 0 || (size_t)n >= size) {
		*why = "mailbox path too long";
		return -1;
	}
	for (char *p = out + strlen(root); *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* IMAP name "a/b" -> Maildir++ ".a.b"; INBOX is the Maildir itself. */
static int
folder_dir(const struct mp_mailbox *mb, const char *name, char *out,
    size_t size)
{
	size_t len = strlen(name);

	if (strcasecmp(name, "INBOX") == 0) {
		snprintf(out, size, "%s", mb->path);
		return 0;
	}
	if (len == 0 || len > 200 || name[0] == '/' || name[len - 1] == '/' ||
	    strstr(name, "//") || strchr(name, '.') || strchr(name, '\\'))
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return -1;
	if ((size_t)snprintf(out, size, "%s/.%s", mb->path, name) >= size)
		return -1;
	for (char *p = out + strlen(mb->path) + 2; *p; p++)
		if (*p == '/')
			*p = '.';
	return 0;
}

int
maildir_make(const char *dir)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char path[PATH_MAX];

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

static int mkdir_parents(const char *path);

int
maildir_make_path(const char *dir)
{
	return mkdir_parents(dir) < 0 ? -1 : maildir_make(dir);
}

static int
mkdir_parents(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

void
maildir_unique_name(const struct mp_host *host, char *out, size_t size)
{
	static _Atomic unsigned counter;
	struct timeval tv;
	char hostpart[128];
	size_t o = 0;

	for (const char *h = host->hostname(); *h && o + 5 < sizeof(hostpart); h++) {
		if (*h == '/' || *h == ':')
			o += (size_t)snprintf(hostpart + o, sizeof(hostpart) - o,
			    "\\%03o", (unsigned char)*h);
		else
			hostpart[o++] = *h;
	}
	hostpart[o] = '\0';
	gettimeofday(&tv, NULL);
	snprintf(out, size, "%lld.M%06ldP%dQ%u.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (int)getpid(), atomic_fetch_add(&counter, 1),
	    hostpart);
}

/* ---- flags in file names ---------------------------------------------- */

static const struct { char letter; uint32_t flag; } flag_letters[] = {
	{ 'D', MP_FLAG_DRAFT }, { 'F', MP_FLAG_FLAGGED },
	{ 'R', MP_FLAG_ANSWERED }, { 'S', MP_FLAG_SEEN },
	{ 'T', MP_FLAG_DELETED },
};

static uint32_t
flags_of(const char *file)
{
	const char *info = strstr(file, ":2,");
	uint32_t flags = 0;

	for (const char *p = info ? info + 3 : ""; *p; p++)
		for (size_t i = 0; i < 5; i++)
			if (*p == flag_letters[i].letter)
				flags |= flag_letters[i].flag;
	return flags;
}

static void
file_name(const char *base, uint32_t flags, char *out, size_t size)
{
	size_t o = (size_t)snprintf(out, size, "%s:2,", base);

	for (size_t i = 0; i < 5 && o + 1 < size; i++)
		if (flags & flag_letters[i].flag)
			out[o++] = flag_letters[i].letter;
	out[o < size ? o : size - 1] = '\0';
}

/* ---- the UID list ------------------------------------------------------ */

static void
free_entries(struct mp_folder *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->e[i].base);
		free(f->e[i].file);
		free(f->e[i].keywords);
	}
	free(f->e);
	f->e = NULL;
	f->n = 0;
}

static struct entry *
add_entry(struct mp_folder *f, uint32_t uid, uint64_t vsize, time_t mtime,
    const char *base, const char *kw)
{
	struct entry *e;

	if (f->n % 64 == 0) {
		e = realloc(f->e, (f->n + 64) * sizeof(*e));
		if (e == NULL)
			return NULL;
		f->e = e;
	}
	e = &f->e[f->n++];
	memset(e, 0, sizeof(*e));
	e->uid = uid;
	e->vsize = vsize;
	e->mtime = mtime;
	e->base = strdup(base);
	e->keywords = strdup(kw ? kw : "");
	for (char *p = e->keywords; *p; p++)
		if (*p == ',')
			*p = ' ';
	return e;
}

/* A UIDVALIDITY this mailbox never gave out (RFC 3501 2.3.1.1: a folder
 * deleted and made again must not reuse one): the clock, or one past the
 * last one, kept in the mailbox's LAST_UIDVALIDITY. Called under the
 * folder's list lock. */
static uint32_t
fresh_uidvalidity(const struct mp_folder *f)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	uint32_t v = (uint32_t)time(NULL);
	unsigned last = 0;
	FILE *fp;

	if (f->mb == NULL)
		return v;
	snprintf(path, sizeof(path), "%s/" LAST_UIDVALIDITY, f->mb->path);
	if ((fp = fopen(path, "re")) != NULL) {
		if (fscanf(fp, "%u", &last) != 1)
			last = 0;
		fclose(fp);
	}
	if (last >= v)
		v = last + 1;
	snprintf(tmp, sizeof(tmp), "%s/" LAST_UIDVALIDITY ".tmp", f->path);
	if ((fp = fopen(tmp, "we")) != NULL) {
		fprintf(fp, "%u\n", v);
		if (fclose(fp) == 0)
			rename(tmp, path);
	}
	return v;
}

static int
read_uidlist(struct mp_folder *f)
{
	char path[PATH_MAX], line[1024], base[512], kw[512];
	FILE *fp;

	free_entries(f);
	snprintf(path, sizeof(path), "%s/" UIDLIST, f->path);
	fp = fopen(path, "re");
	if (fp == NULL) {
		if (errno != ENOENT)
			return -1;
		f->uidvalidity = fresh_uidvalidity(f);
		f->uidnext = 1;
		f->new_list = 1;
		return 0;
	}
	/* M2 lines carry the file's mtime (INTERNALDATE), M1 lines do not. */
	int v2 = 0;

	if (fgets(line, sizeof(line), fp) == NULL ||
	    sscanf(line, "M%d V%u N%u", &v2, &f->uidvalidity, &f->uidnext) != 3 ||
	    (v2 != 1 && v2 != 2)) {
		/* A broken list: start over with a new UIDVALIDITY (RFC 3501). */
		f->uidvalidity = fresh_uidvalidity(f);
		f->uidnext = 1;
		f->new_list = 1;
	}
	v2 = v2 == 2;
	while (fgets(line, sizeof(line), fp)) {
		unsigned uid;
		unsigned long long vsize;
		long long mtime = 0;
		int got;
		kw[0] = '\0';
		got = v2 ? sscanf(line, "%u %llu %lld %511s %511s", &uid, &vsize, &mtime, base, kw) - 1 :
		    sscanf(line, "%u %llu %511s %511s", &uid, &vsize, base, kw);
		if (got >= 3 && uid > 0 && uid < f->uidnext)
			add_entry(f, uid, vsize, (time_t)mtime, base, kw);
	}
	fclose(fp);
	return 0;
}

static int
write_uidlist(struct mp_folder *f)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *fp;
	int ok;

	snprintf(path, sizeof(path), "%s/" UIDLIST, f->path);
	snprintf(tmp, sizeof(tmp), "%s/" UIDLIST ".tmp", f->path);
	fp = fopen(tmp, "we");
	if (fp == NULL)
		return -1;
	fprintf(fp, "M2 V%u N%u\n", f->uidvalidity, f->uidnext);
	for (size_t i = 0; i < f->n; i++) {
		if (f->e[i].file == NULL)
			continue;
		fprintf(fp, "%u %llu %lld %s", f->e[i].uid,
		    (unsigned long long)f->e[i].vsize, (long long)f->e[i].mtime,
		    f->e[i].base);
		if (f->e[i].keywords[0]) {
			fputc(' ', fp);
			for (const char *k = f->e[i].keywords; *k; k++)
				fputc(*k == ' ' ? ',' : *k, fp);
		}
		fputc('\n', fp);
	}
	ok = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	ok = fclose(fp) == 0 && ok;
	return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static int
lock_list(const struct mp_folder *f)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/" UIDLIST_LOCK, f->path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

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
cmp_base(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->base, ((const struct entry *)b)->base);
}

static int
cmp_uid(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* new/ -> cur/ (the message is no longer new once a client saw it). */
static void
move_new(struct mp_folder *f, int *recent_seen)
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
		if (rename(from, to) == 0)
			(*recent_seen)++;
	}
	closedir(dir);
}

/* UIDs grow, so the list stays sorted for is_recent's search. */
static void
remember_recent(struct mp_folder *f, uint32_t uid)
{
	uint32_t *r = realloc(f->recent, (f->nrecent + 1) * sizeof(*r));

	if (r == NULL)
		return;
	f->recent = r;
	f->recent[f->nrecent++] = uid;
}

static int
is_recent(const struct mp_folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->nrecent;

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

/* A file in cur/ not yet in the list gets the next UID. */
static int
adopt(struct mp_folder *f, const char *dir, const char *name, size_t known)
{
	char path[PATH_MAX], base[512];
	struct entry key, *e;
	struct stat st;

	snprintf(base, sizeof(base), "%.*s", (int)strcspn(name, ":"), name);
	key.base = base;
	e = known ? bsearch(&key, f->e, known, sizeof(*f->e), cmp_base) : NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (e == NULL || e->mtime == 0) {
		if (fstatat(f->dir_fd, path, &st, 0) < 0)
			return 0;
		if (e == NULL) {
			e = add_entry(f, f->uidnext++, wire_size(f->dir_fd, path, st.st_size),
			    st.st_mtime, base, "");
			if (e == NULL)
				return -1;
			remember_recent(f, e->uid);
		}
		e->mtime = st.st_mtime;
	}
	free(e->file);
	e->file = malloc(strlen(dir) + strlen(name) + 2);
	if (e->file)
		sprintf(e->file, "%s/%s", dir, name);	/* "cur/x" (or "new/x" read-only) */
	e->flags = (e->flags & MP_FLAG_RECENT) | flags_of(name);
	return 1;
}

static int
scan(struct mp_folder *f, const char *dir, size_t known, int *added)
{
	char path[PATH_MAX];
	struct dirent *d;
	char **names = NULL;
	size_t n = 0;
	DIR *dp;

	snprintf(path, sizeof(path), "%s/%s", f->path, dir);
	if ((dp = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		if (n % 256 == 0)
			names = realloc(names, (n + 256) * sizeof(char *));
		names[n++] = strdup(d->d_name);
	}
	closedir(dp);
	/* Sorted, so new UIDs follow delivery order (names start with time). */
	if (n > 1)
		qsort(names, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++) {
		size_t before = f->n;
		if (adopt(f, dir, names[i], known) > 0 && f->n > before)
			(*added)++;
		free(names[i]);
	}
	free(names);
	return 0;
}

static void
drop_vanished(struct mp_folder *f, int *changed)
{
	size_t k = 0;

	for (size_t i = 0; i < f->n; i++) {
		if (f->e[i].file) {
			f->e[k++] = f->e[i];
			continue;
		}
		free(f->e[i].base);
		free(f->e[i].keywords);
		(*changed)++;
	}
	f->n = k;
}

static int
build_info(struct mp_folder *f)
{
	free(f->info);
	f->info = calloc(f->n ? f->n : 1, sizeof(*f->info));
	if (f->info == NULL)
		return -1;
	for (size_t i = 0; i < f->n; i++) {
		if (is_recent(f, f->e[i].uid))
			f->e[i].flags |= MP_FLAG_RECENT;
		f->info[i] = (struct mp_msg_info){ f->e[i].uid, f->e[i].flags,
		    f->e[i].vsize, f->e[i].mtime, f->e[i].keywords };
	}
	return 0;
}

/* Bring the list in step with the directory (under the list lock). */
static int
sync_folder(struct mp_folder *f, const char **error_r)
{
	int fd = lock_list(f), changed = 0, moved = 0;
	size_t known;

	if (fd < 0)
		return fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
	if (read_uidlist(f) < 0) {
		close(fd);
		return fail(error_r, "cannot read UID list", MP_TEMPFAIL);
	}
	if (!f->read_only)
		move_new(f, &moved);
	if (f->n > 1)
		qsort(f->e, f->n, sizeof(*f->e), cmp_base);
	known = f->n;
	if (scan(f, "cur", known, &changed) < 0 ||
	    (f->read_only && scan(f, "new", known, &changed) < 0)) {
		close(fd);
		return fail(error_r, "cannot read folder", MP_TEMPFAIL);
	}
	drop_vanished(f, &changed);
	if (f->n > 1)
		qsort(f->e, f->n, sizeof(*f->e), cmp_uid);
	if ((changed || moved || f->new_list) && write_uidlist(f) < 0) {
		close(fd);
		return fail(error_r, "cannot write UID list", MP_TEMPFAIL);
	}
	f->new_list = 0;
	close(fd);
	return build_info(f) < 0 ? fail(error_r, "out of memory", MP_ERROR) : MP_OK;
}

/* ---- mailbox --------------------------------------------------------------- */

static int
store_open(void *ctx, const char *user, struct mp_mailbox **mb_r,
    const char **error_r)
{
	const struct maildir_store_env *env = maildir_store_env(ctx);
	struct mp_mailbox *mb = calloc(1, sizeof(*mb));

	if (mb == NULL)
		return fail(error_r, "out of memory", MP_ERROR);
	mb->env = env;
	if (maildir_user_path(env->root, user, mb->path, sizeof(mb->path) - 256,
	    error_r) < 0) {
		free(mb);
		return MP_ERROR;
	}
	if (maildir_make_path(mb->path) < 0) {
		free(mb);
		return fail(error_r, "cannot create Maildir", MP_TEMPFAIL);
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

static unsigned
special_use(const char *name)
{
	static const struct { const char *name; unsigned attr; } uses[] = {
		{ "Sent", MP_FOLDER_SENT }, { "Drafts", MP_FOLDER_DRAFTS },
		{ "Trash", MP_FOLDER_TRASH }, { "Junk", MP_FOLDER_JUNK },
	};

	for (size_t i = 0; i < 4; i++)
		if (strcasecmp(name, uses[i].name) == 0)
			return uses[i].attr;
	return 0;
}

static int
store_folders(struct mp_mailbox *mb,
    void (*each)(void *arg, const char *name, unsigned attrs), void *arg,
    const char **error_r)
{
	DIR *dp = opendir(mb->path);
	struct dirent *d;
	char **names = NULL;
	size_t n = 0;

	if (dp == NULL)
		return fail(error_r, "cannot list folders", MP_TEMPFAIL);
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] != '.' || d->d_name[1] == '\0' ||
		    strcmp(d->d_name, "..") == 0 || d->d_type != DT_DIR)
			continue;
		if (n % 64 == 0)
			names = realloc(names, (n + 64) * sizeof(char *));
		names[n] = strdup(d->d_name + 1);
		for (char *p = names[n]; *p; p++)
			if (*p == '.')
				*p = '/';
		n++;
	}
	closedir(dp);
	if (n > 1)
		qsort(names, n, sizeof(char *), cmp_str);
	each(arg, "INBOX", subscribed(mb, "INBOX") ? MP_FOLDER_SUBSCRIBED : 0);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		unsigned attrs = special_use(names[i]) |
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

	if (folder_dir(mb, name, dir, sizeof(dir)) < 0) {
		*error_r = "invalid folder name ('.' is not allowed)";
		return MP_ERROR;
	}
	if (stat(dir, &st) == 0) {
		*error_r = "folder exists";
		return MP_DECLINED;
	}
	return maildir_make(dir) < 0 ? fail(error_r, "cannot create folder",
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
	if (folder_dir(mb, name, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		*error_r = "no such folder";
		return MP_DECLINED;
	}
	return remove_tree(dir) < 0 ? fail(error_r, "cannot delete folder",
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
	if (folder_dir(mb, from, src, sizeof(src)) < 0 ||
	    folder_dir(mb, to, dst, sizeof(dst)) < 0) {
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
		return fail(error_r, "cannot rename folder", MP_TEMPFAIL);
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

static int
store_folder_subscribe(struct mp_mailbox *mb, const char *name, int on,
    const char **error_r)
{
	char path[PATH_MAX], tmp[PATH_MAX], line[512];
	FILE *in, *out;

	snprintf(path, sizeof(path), "%s/" SUBSCRIPTIONS, mb->path);
	snprintf(tmp, sizeof(tmp), "%s/" SUBSCRIPTIONS ".tmp", mb->path);
	if ((out = fopen(tmp, "we")) == NULL)
		return fail(error_r, "cannot write subscriptions", MP_TEMPFAIL);
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
	if (fclose(out) != 0 || rename(tmp, path) < 0)
		return fail(error_r, "cannot write subscriptions", MP_TEMPFAIL);
	return MP_OK;
}

/* ---- folders ------------------------------------------------------------------- */

static int
store_folder_open(struct mp_mailbox *mb, const char *name, int read_only,
    struct mp_folder **f_r, const char **error_r)
{
	struct mp_folder *f;
	struct stat st;
	char dir[DIR_MAX];
	int rc;

	if (folder_dir(mb, name, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		*error_r = "no such folder";
		return MP_DECLINED;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return fail(error_r, "out of memory", MP_ERROR);
	f->mb = mb;
	f->read_only = read_only;
	f->lock_fd = f->notify_fd = -1;
	if ((size_t)snprintf(f->path, sizeof(f->path), "%s", dir) >= sizeof(f->path)) {
		free(f);
		*error_r = "folder path too long";
		return MP_ERROR;
	}
	maildir_make(dir);
	f->dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (f->dir_fd < 0) {
		free(f);
		return fail(error_r, "cannot open folder", MP_TEMPFAIL);
	}
	if ((rc = sync_folder(f, error_r)) != MP_OK) {
		close(f->dir_fd);
		free(f);
		return rc;
	}
	*f_r = f;
	return MP_OK;
}

static void
store_folder_close(struct mp_folder *f)
{
	free_entries(f);
	free(f->info);
	free(f->recent);
	if (f->lock_fd >= 0)
		close(f->lock_fd);
	if (f->notify_fd >= 0)
		close(f->notify_fd);
	close(f->dir_fd);
	free(f);
}

static int
store_folder_info(struct mp_folder *f, struct mp_folder_info *info,
    const char **error_r)
{
	(void)error_r;
	memset(info, 0, sizeof(*info));
	info->uidvalidity = f->uidvalidity;
	info->uidnext = f->uidnext;
	info->messages = (uint32_t)f->n;
	for (size_t i = 0; i < f->n; i++) {
		info->unseen += !(f->e[i].flags & MP_FLAG_SEEN);
		info->recent += !!(f->e[i].flags & MP_FLAG_RECENT);
	}
	return MP_OK;
}

static int
store_messages(struct mp_folder *f, const struct mp_msg_info **v_r,
    size_t *n_r, const char **error_r)
{
	int rc = sync_folder(f, error_r);

	if (rc == MP_OK) {
		*v_r = f->info;
		*n_r = f->n;
	}
	return rc;
}

static struct entry *
find_uid(struct mp_folder *f, uint32_t uid)
{
	struct entry key = { .uid = uid };

	return f->n ? bsearch(&key, f->e, f->n, sizeof(*f->e), cmp_uid) : NULL;
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

static int
store_message_open(struct mp_folder *f, uint32_t uid, enum mp_msg_part part,
    struct mp_reader *r, const char **error_r)
{
	struct entry *e = find_uid(f, uid);
	struct mreader *m;

	if (e == NULL || e->file == NULL) {
		*error_r = "no such message";
		return MP_DECLINED;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return fail(error_r, "out of memory", MP_ERROR);
	m->fd = openat(f->dir_fd, e->file, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0) {
		free(m);
		if (errno == ENOENT) {
			*error_r = "message was expunged";
			return MP_DECLINED;
		}
		return fail(error_r, "cannot open message", MP_TEMPFAIL);
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

/* ---- changes ---------------------------------------------------------------- */

static int
store_flags_set(struct mp_folder *f, uint32_t uid, uint32_t flags,
    const char *keywords, const char **error_r)
{
	struct entry *e = find_uid(f, uid);
	char from[PATH_MAX], to[PATH_MAX], name[600];
	int fd, rc = MP_OK;

	if (e == NULL || e->file == NULL) {
		*error_r = "no such message";
		return MP_DECLINED;
	}
	if (f->read_only) {
		*error_r = "folder is read-only";
		return MP_ERROR;
	}
	file_name(e->base, flags & ~MP_FLAG_RECENT, name, sizeof(name));
	snprintf(from, sizeof(from), "%s/%s", f->path, e->file);
	snprintf(to, sizeof(to), "%s/cur/%s", f->path, name);
	if (strcmp(from, to) != 0 && rename(from, to) < 0)
		return fail(error_r, "cannot change flags", errno == ENOENT ?
		    MP_DECLINED : MP_TEMPFAIL);
	free(e->file);
	e->file = malloc(strlen(name) + 5);
	if (e->file)
		sprintf(e->file, "cur/%s", name);
	e->flags = (e->flags & MP_FLAG_RECENT) | (flags & ~MP_FLAG_RECENT);
	if (keywords && strcmp(keywords, e->keywords) != 0) {
		free(e->keywords);
		e->keywords = strdup(keywords);
		/* Keywords live in the list: rewrite it under its lock. */
		if ((fd = lock_list(f)) < 0)
			return fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
		if (write_uidlist(f) < 0)
			rc = fail(error_r, "cannot write UID list", MP_TEMPFAIL);
		close(fd);
	}
	build_info(f);
	return rc;
}

/* Write msg (CRLF or LF) to dir/tmp/<new unique base> and fsync it. */
static int
write_tmp(const struct mp_host *host, const char *dir, struct mp_reader *msg,
    time_t date, char *base, size_t basesize, const char **error_r)
{
	char tmp[PATH_MAX], buf[8192], out[8192];
	int fd, pending_cr = 0;
	ssize_t n;

	maildir_unique_name(host, base, basesize);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, base);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(error_r, "cannot create message file", MP_TEMPFAIL);
	while ((n = msg->read(msg, buf, sizeof(buf))) > 0) {
		size_t o = 0;
		for (ssize_t i = 0; i < n; i++) {
			if (pending_cr && buf[i] != '\n')
				out[o++] = '\r';
			pending_cr = buf[i] == '\r';
			if (!pending_cr)
				out[o++] = buf[i];
		}
		if (write(fd, out, o) != (ssize_t)o)
			n = -1;
		if (n < 0)
			break;
	}
	if (n < 0 || fsync(fd) < 0 || close(fd) < 0) {
		unlink(tmp);
		return fail(error_r, "cannot write message", MP_TEMPFAIL);
	}
	if (date > 0) {
		struct timeval tv[2] = { { date, 0 }, { date, 0 } };
		utimes(tmp, tv);
	}
	return MP_OK;
}

/* Move dir/tmp/base into dir/cur with its flags, and sync cur/. */
static int
publish(const char *dir, const char *base, uint32_t flags, const char **error_r)
{
	char tmp[PATH_MAX], cur[PATH_MAX], name[600];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, base);
	file_name(base, flags & ~MP_FLAG_RECENT, name, sizeof(name));
	snprintf(cur, sizeof(cur), "%s/cur/%s", dir, name);
	if (rename(tmp, cur) < 0) {
		unlink(tmp);
		return fail(error_r, "cannot store message", MP_TEMPFAIL);
	}
	snprintf(cur, sizeof(cur), "%s/cur", dir);
	fd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return MP_OK;
}

static int
write_message(const struct mp_host *host, const char *dir,
    struct mp_reader *msg, uint32_t flags, time_t date, char *base,
    size_t basesize, const char **error_r)
{
	int rc = write_tmp(host, dir, msg, date, base, basesize, error_r);

	return rc == MP_OK ? publish(dir, base, flags, error_r) : rc;
}

/* The UID the folder's list gives to base (after a sync). */
static int
uid_of_base(struct mp_mailbox *mb, const char *folder, const char *base,
    uint32_t *uid_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct mp_folder *f;
	int rc = store_folder_open(mb, folder, 0, &f, error_r);

	if (rc != MP_OK)
		return rc;
	*uid_r = 0;
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->e[i].base, base) == 0)
			*uid_r = f->e[i].uid;
	*uidvalidity_r = f->uidvalidity;
	store_folder_close(f);
	return MP_OK;
}

static int
store_append(struct mp_mailbox *mb, const char *folder, struct mp_reader *msg,
    uint32_t flags, time_t date, uint32_t *uid_r, uint32_t *uidvalidity_r,
    const char **error_r)
{
	char dir[DIR_MAX], base[300];
	struct stat st;
	int rc;

	if (folder_dir(mb, folder, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		*error_r = "no such folder";
		return MP_DECLINED;
	}
	rc = write_message(mb->env->host, dir, msg, flags, date, base,
	    sizeof(base), error_r);
	if (rc != MP_OK)
		return rc;
	return uid_of_base(mb, folder, base, uid_r, uidvalidity_r, error_r);
}

static int
store_expunge(struct mp_folder *f, uint32_t uid, const char **error_r)
{
	struct entry *e = find_uid(f, uid);
	char path[PATH_MAX];

	if (e == NULL || e->file == NULL) {
		*error_r = "no such message";
		return MP_DECLINED;
	}
	snprintf(path, sizeof(path), "%s/%s", f->path, e->file);
	if (unlink(path) < 0 && errno != ENOENT)
		return fail(error_r, "cannot remove message", MP_TEMPFAIL);
	free(e->file);
	e->file = NULL;
	return MP_OK;
}

static int
store_copy(struct mp_folder *f, uint32_t uid, const char *dest, int move,
    uint32_t *uid_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct entry *e = find_uid(f, uid);
	char dir[DIR_MAX], src[PATH_MAX], dst[PATH_MAX], base[300], name[600];
	struct stat st;
	int rc;

	if (e == NULL || e->file == NULL) {
		*error_r = "no such message";
		return MP_DECLINED;
	}
	if (folder_dir(f->mb, dest, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		*error_r = "no such folder";
		return MP_ERROR;
	}
	maildir_unique_name(f->mb->env->host, base, sizeof(base));
	file_name(base, e->flags & ~MP_FLAG_RECENT, name, sizeof(name));
	snprintf(src, sizeof(src), "%s/%s", f->path, e->file);
	snprintf(dst, sizeof(dst), "%s/cur/%s", dir, name);
	/* A hard link is an atomic, durable copy within one file system. */
	if (link(src, dst) < 0)
		return fail(error_r, "cannot copy message", MP_TEMPFAIL);
	rc = uid_of_base(f->mb, dest, base, uid_r, uidvalidity_r, error_r);
	if (rc == MP_OK && move)
		rc = store_expunge(f, uid, error_r);
	return rc;
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
		return fail(error_r, "cannot open lock file", MP_TEMPFAIL);
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
	char path[PATH_MAX];

	if (f->notify_fd >= 0)
		return f->notify_fd;
	f->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f->notify_fd < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/new", f->path);
	inotify_add_watch(f->notify_fd, path, IN_CREATE | IN_MOVED_TO |
	    IN_DELETE | IN_MOVED_FROM);
	snprintf(path, sizeof(path), "%s/cur", f->path);
	inotify_add_watch(f->notify_fd, path, IN_CREATE | IN_MOVED_TO |
	    IN_DELETE | IN_MOVED_FROM);
	return f->notify_fd;
}

/* Record (uid, base) in the folder's list, then publish the file, both
 * under the list lock so no sync can give the file another UID. */
static int
claim_uid(struct mp_folder *f, uint32_t uidvalidity, uint32_t uid,
    const char *base, uint64_t vsize, uint32_t flags, const char *keywords,
    const char **error_r)
{
	char name[600];
	int fd = lock_list(f), rc = MP_OK;
	struct entry *e;

	if (fd < 0 || read_uidlist(f) < 0) {
		if (fd >= 0)
			close(fd);
		return fail(error_r, "cannot lock or read UID list", MP_TEMPFAIL);
	}
	if (f->n == 0)
		f->uidvalidity = uidvalidity;
	for (size_t i = 0; i < f->n; i++)
		if (f->e[i].uid == uid)
			rc = MP_DECLINED;
	for (size_t i = 0; i < f->n; i++) {	/* keep the entries listed */
		file_name(f->e[i].base, 0, name, sizeof(name));
		f->e[i].file = strdup(name);
	}
	/* mtime 0: the next sync reads it from the file */
	if (rc == MP_OK && (e = add_entry(f, uid, vsize, 0, base, "")) != NULL) {
		free(e->keywords);
		e->keywords = strdup(keywords ? keywords : "");
		file_name(base, flags, name, sizeof(name));
		e->file = strdup(name);
		if (uid >= f->uidnext)
			f->uidnext = uid + 1;
		if (write_uidlist(f) < 0)
			rc = fail(error_r, "cannot write UID list", MP_TEMPFAIL);
		else
			rc = publish(f->path, base, flags, error_r);
	} else if (rc == MP_DECLINED)
		*error_r = "UID already taken";
	close(fd);
	return rc;
}

static int
store_import(struct mp_mailbox *mb, const char *folder, uint32_t uidvalidity,
    uint32_t uid, struct mp_reader *msg, uint32_t flags, const char *keywords,
    time_t date, const char **error_r)
{
	struct mp_folder f = { .mb = mb, .lock_fd = -1, .notify_fd = -1 };
	char base[300], tmp[PATH_MAX];
	struct stat st;
	int rc;

	if (folder_dir(mb, folder, f.path, sizeof(f.path)) < 0) {
		*error_r = "invalid folder name";
		return MP_ERROR;
	}
	if (maildir_make(f.path) < 0)
		return fail(error_r, "cannot create folder", MP_TEMPFAIL);
	rc = write_tmp(mb->env->host, f.path, msg, date, base, sizeof(base), error_r);
	if (rc != MP_OK)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", f.path, base);
	if (stat(tmp, &st) < 0)
		return fail(error_r, "cannot stat message", MP_TEMPFAIL);
	rc = claim_uid(&f, uidvalidity, uid, base, wire_size(AT_FDCWD, tmp, st.st_size),
	    flags & ~MP_FLAG_RECENT, keywords, error_r);
	if (rc != MP_OK)
		unlink(tmp);
	free_entries(&f);
	return rc;
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
	.flags_set = store_flags_set,
	.append = store_append,
	.copy = store_copy,
	.expunge = store_expunge,
	.lock = store_lock,
	.change_fd = store_change_fd,
	.import = store_import,
};
