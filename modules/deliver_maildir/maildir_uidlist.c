/*
 * modules/deliver_maildir/maildir_uidlist.c - the folder's UID list,
 * `merpati-uidlist`, and its lock, `merpati-uidlist.lock`:
 *     M4 V<uidvalidity> N<uidnext>
 *     K <keyword> <keyword> ...          (the folder's keywords, if any)
 *     <uid> <size with CRLF> <mtime> <base name> [<keyword> ...]
 * Entries are in UID order. The list is only read and changed under an
 * flock on the lock file, which also holds the first UID no read-write
 * session has claimed as \Recent and the list's generation (fixed-width
 * numbers rewritten in place: cheap, and losing them in a crash only
 * loses \Recent or one cache hit).
 *
 * A change is a rewrite (temp file, fsync, rename), except a new
 * message's entry (APPEND, COPY), which is appended to the file (M4):
 * no new file, no rename, and the fdatasync() that makes it durable
 * runs after the lock is let go, so sessions committing at once share
 * the disk flush instead of queueing behind each other's. An appended
 * entry has a UID at or past the header's N, each past the one before,
 * and counts only as a whole line (ending in LF): a crash in the middle
 * of an append leaves a torn line, which is skipped, or the line
 * missing, and then the message's file in cur/ is given the next UID by
 * a sync, as if it had been delivered there (its APPEND was never
 * answered OK). Older lists (M1, M2: keywords joined by ',' in one
 * field; M3: nothing appended) are read and written back as M4.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir_private.h"

int
md_list_lock_open(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/" UIDLIST_LOCK, dir);
	return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
}

int
md_list_lock(int fd)
{
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

int
md_list_lock_shared(int fd)
{
	while (flock(fd, LOCK_SH) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

void
md_list_unlock(int fd)
{
	flock(fd, LOCK_UN);
}

/* The lock file's text: "<first unclaimed UID> <list generation>\n",
 * fixed width so an in-place rewrite never leaves a stale tail. */
void
md_lockstate_read(int lock_fd, struct md_lockstate *st, uint32_t dflt_unclaimed)
{
	char buf[32];
	ssize_t n = pread(lock_fd, buf, sizeof(buf) - 1, 0);
	unsigned u, g;

	st->unclaimed = dflt_unclaimed;
	st->gen = 0;
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (sscanf(buf, "%u %u", &u, &g) == 2) {
		st->unclaimed = u;
		st->gen = g;
	}
}

void
md_lockstate_write(int lock_fd, const struct md_lockstate *st)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%010u %010u\n", st->unclaimed, st->gen);

	(void)!pwrite(lock_fd, buf, (size_t)n, 0);
}

void
md_list_free(struct md_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].base);
		free(l->e[i].file);
		free(l->e[i].keywords);
	}
	free(l->e);
	free(l->keywords);
	memset(l, 0, sizeof(*l));
}

/* A copy of one string field; NULL stays NULL. 0, or -1 out of memory. */
static int
dup_field(char **dst, const char *src)
{
	*dst = NULL;
	return src && (*dst = strdup(src)) == NULL ? -1 : 0;
}

int
md_list_copy(struct md_list *dst, const struct md_list *src)
{
	/* md_list_add grows the array 64 entries at a time: keep its room */
	size_t room = (src->n + 63) / 64 * 64;

	*dst = *src;
	dst->n = 0;
	dst->e = NULL;
	if (dup_field(&dst->keywords, src->keywords) < 0 ||
	    (room && (dst->e = calloc(room, sizeof(*dst->e))) == NULL)) {
		md_list_free(dst);
		return -1;
	}
	for (size_t i = 0; i < src->n; i++) {
		struct md_entry *e = &dst->e[dst->n++];
		*e = src->e[i];
		e->base = e->file = e->keywords = NULL;	/* not src's to free */
		if (dup_field(&e->base, src->e[i].base) < 0 ||
		    dup_field(&e->file, src->e[i].file) < 0 ||
		    dup_field(&e->keywords, src->e[i].keywords) < 0) {
			md_list_free(dst);
			return -1;
		}
	}
	return 0;
}

static int
cmp_uid(const void *a, const void *b)
{
	const struct md_entry *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

struct md_entry *
md_list_find(const struct md_list *l, uint32_t uid)
{
	struct md_entry key = { .uid = uid };

	return l->n ? bsearch(&key, l->e, l->n, sizeof(*l->e), cmp_uid) : NULL;
}

struct md_entry *
md_list_add(struct md_list *l, uint32_t uid, uint64_t vsize, time_t mtime,
    const char *base, const char *keywords)
{
	struct md_entry *e = mp_array_grow(l->e, &l->cap, l->n + 1, sizeof(*e));
	char *base_copy, *kw_copy;
	size_t at = l->n;

	if (e == NULL)
		return NULL;
	l->e = e;
	base_copy = strdup(base);
	kw_copy = strdup(keywords ? keywords : "");
	if (base_copy == NULL || kw_copy == NULL) {
		free(base_copy);
		free(kw_copy);
		return NULL;
	}
	while (at > 0 && l->e[at - 1].uid > uid)	/* imports may go back */
		at--;
	memmove(&l->e[at + 1], &l->e[at], (l->n - at) * sizeof(*e));
	l->n++;
	e = &l->e[at];
	memset(e, 0, sizeof(*e));
	e->uid = uid;
	e->vsize = vsize;
	e->mtime = mtime;
	e->base = base_copy;
	e->keywords = kw_copy;
	return e;
}

/* A UIDVALIDITY this mailbox never gave out (RFC 3501 2.3.1.1: a folder
 * deleted and made again must not reuse one): the clock, or one past the
 * last one, kept in the mailbox's LAST_UIDVALIDITY. */
static uint32_t
fresh_uidvalidity(const char *mailbox_dir)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16];
	uint32_t v = (uint32_t)time(NULL);
	unsigned last = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/" LAST_UIDVALIDITY, mailbox_dir);
	if ((fp = fopen(path, "re")) != NULL) {
		if (fscanf(fp, "%u", &last) != 1)
			last = 0;
		fclose(fp);
	}
	if (last >= v)
		v = last + 1;
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	if ((fp = fopen(tmp, "we")) != NULL) {
		fprintf(fp, "%u\n", v);
		if (fclose(fp) == 0)
			rename(tmp, path);
	}
	return v;
}

static void
start_over(struct md_list *l, const char *mailbox_dir)
{
	l->uidvalidity = fresh_uidvalidity(mailbox_dir);
	l->uidnext = 1;
	l->dirty = 1;
}

/* One decimal field after optional spaces: 0, or -1 when there is none
 * or it overflows. Hand-made because sscanf() was a tenth of a POP3
 * session's CPU on a 1,000-message list. */
static int
field_u64(char **p, unsigned long long *v)
{
	char *end;

	*p += strspn(*p, " ");
	if (**p < '0' || **p > '9')
		return -1;
	errno = 0;
	*v = strtoull(*p, &end, 10);
	if (errno == ERANGE)
		return -1;
	*p = end;
	return 0;
}

static int
field_i64(char **p, long long *v)
{
	char *end;

	*p += strspn(*p, " ");
	if ((**p < '0' || **p > '9') && **p != '-')
		return -1;
	errno = 0;
	*v = strtoll(*p, &end, 10);
	if (errno == ERANGE || end == *p)
		return -1;
	*p = end;
	return 0;
}

/* The next space-delimited word, at most size - 1 bytes (else -1). */
static int
field_word(char **p, char *out, size_t size)
{
	size_t n;

	*p += strspn(*p, " ");
	n = strcspn(*p, " ");
	if (n == 0 || n >= size)
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return 0;
}

/*
 * Whether an entry's UID belongs: below the header's UIDNEXT while no
 * appended entry was seen; from then on (M4) only appended ones, each a
 * whole line past the UID before (*appended set by the first). So a
 * line left torn by a crash, or old bytes after it, never count.
 */
static int
uid_fits(struct md_list *l, unsigned long long uid, int version, int whole,
    int *appended)
{
	if (uid == 0)
		return 0;
	if (uid < l->uidnext)
		return !*appended;
	if (version < 4 || !whole || uid >= UINT32_MAX)
		return 0;
	*appended = 1;
	l->uidnext = (uint32_t)uid + 1;
	return 1;
}

/* "<uid> <size> [<mtime>] <base> <keywords...>"; version 1 has no mtime,
 * versions 1 and 2 join keywords with ','. A malformed line is skipped;
 * -1 only when out of memory (a line dropped would renumber its message). */
static int
parse_entry(struct md_list *l, char *line, int version, int *appended)
{
	unsigned long long uid, vsize;
	long long mtime = 0;
	char base[BASE_MAX], *p = line;
	size_t len = strcspn(line, "\n");
	int whole = line[len] == '\n';

	line[len] = '\0';
	if (field_u64(&p, &uid) < 0 || field_u64(&p, &vsize) < 0 ||
	    (version > 1 && field_i64(&p, &mtime) < 0) || field_word(&p, base, sizeof(base)) < 0)
		return 0;
	if (!uid_fits(l, uid, version, whole, appended))
		return 0;
	char *kw = p + strspn(p, " ");
	if (version < 3)
		for (char *c = kw; *c; c++)
			if (*c == ',')
				*c = ' ';
	return md_list_add(l, (uint32_t)uid, vsize, (time_t)mtime, base, kw) ? 0 : -1;
}

int
md_list_parse(FILE *fp, struct md_list *l)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len = 0;
	int version = 0, oom = 0, appended = 0, whole = 0;

	if (getline(&line, &cap, fp) < 0 ||
	    sscanf(line, "M%d V%u N%u", &version, &l->uidvalidity, &l->uidnext) != 3 ||
	    version < 1 || version > 4)
		version = 0;
	whole = version && line[strlen(line) - 1] == '\n';
	while (version && !oom && (len = getline(&line, &cap, fp)) > 0) {
		whole = line[len - 1] == '\n';
		if (strncmp(line, "K ", 2) == 0 && l->keywords == NULL) {
			line[strcspn(line, "\n")] = '\0';
			oom = (l->keywords = strdup(line + 2)) == NULL;
		} else
			oom = parse_entry(l, line, version, &appended) < 0;
	}
	free(line);
	/* appending after a torn last line would glue the two */
	l->appendable = version == 4 && whole;
	if (oom)
		return -1;
	if (l->keywords == NULL && (l->keywords = strdup("")) == NULL)
		return -1;
	if (version < 3) {	/* an older list: gather its keywords */
		l->dirty = 1;
		for (size_t i = 0; i < l->n; i++)
			if (md_keywords_register(l, l->e[i].keywords) < 0)
				return -1;
	}
	return version;
}

int
md_list_read(const char *dir, const char *mailbox_dir, int lock_fd,
    struct md_list *l)
{
	struct md_lockstate st;
	char path[PATH_MAX];
	int version;
	FILE *fp;

	md_list_free(l);
	md_lockstate_read(lock_fd, &st, 0);
	l->gen = st.gen;
	snprintf(path, sizeof(path), "%s/" UIDLIST, dir);
	if ((fp = fopen(path, "re")) == NULL) {
		if (errno != ENOENT)
			return -1;
		start_over(l, mailbox_dir);
		l->uidnext_read = 1;
		return l->keywords || (l->keywords = strdup("")) ? 0 : -1;
	}
	version = md_list_parse(fp, l);
	fclose(fp);
	if (version < 0)
		return -1;
	if (version == 0)	/* a broken list: start over with a new UIDVALIDITY (RFC 3501) */
		start_over(l, mailbox_dir);
	l->uidnext_read = l->uidnext;
	return 0;
}

/* A new generation tells handles their copy is no longer current. */
static void
bump_generation(int lock_fd, struct md_list *l)
{
	struct md_lockstate st;

	md_lockstate_read(lock_fd, &st, l->uidnext_read);
	l->gen = ++st.gen;
	md_lockstate_write(lock_fd, &st);
}

int
md_list_write(const char *dir, int lock_fd, struct md_list *l)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *fp;
	int ok;

	snprintf(path, sizeof(path), "%s/" UIDLIST, dir);
	snprintf(tmp, sizeof(tmp), "%s/" UIDLIST ".tmp", dir);
	if ((fp = fopen(tmp, "we")) == NULL)
		return -1;
	fprintf(fp, "M4 V%u N%u\n", l->uidvalidity, l->uidnext);
	if (l->keywords && l->keywords[0])
		fprintf(fp, "K %s\n", l->keywords);
	for (size_t i = 0; i < l->n; i++) {
		const struct md_entry *e = &l->e[i];
		fprintf(fp, "%u %llu %lld %s%s%s\n", e->uid,
		    (unsigned long long)e->vsize, (long long)e->mtime, e->base,
		    e->keywords[0] ? " " : "", e->keywords);
	}
	ok = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	bump_generation(lock_fd, l);
	l->dirty = 0;
	l->appendable = 1;
	return 0;
}

/* The entry's line as md_list_write writes it (malloc), its length in
 * *len_r; NULL when out of memory. */
static char *
entry_line(const struct md_entry *e, size_t *len_r)
{
	const char *fmt = "%u %llu %lld %s%s%s\n";
	const char *sep = e->keywords[0] ? " " : "";
	int n = snprintf(NULL, 0, fmt, e->uid, (unsigned long long)e->vsize,
	    (long long)e->mtime, e->base, sep, e->keywords);
	char *text = n > 0 ? malloc((size_t)n + 1) : NULL;

	if (text == NULL)
		return NULL;
	snprintf(text, (size_t)n + 1, fmt, e->uid, (unsigned long long)e->vsize,
	    (long long)e->mtime, e->base, sep, e->keywords);
	*len_r = (size_t)n;
	return text;
}

int
md_list_append(const char *dir, int lock_fd, struct md_list *l,
    const struct md_entry *e, int *fd_r)
{
	char path[PATH_MAX];
	size_t len;
	char *text = entry_line(e, &len);
	struct stat st;
	ssize_t n = -1;
	int fd, saved;

	if (text == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/" UIDLIST, dir);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) >= 0 && fstat(fd, &st) == 0)
		n = write(fd, text, len);
	free(text);
	if (n != (ssize_t)len) {
		saved = n < 0 ? errno : ENOSPC;
		if (fd >= 0) {
			if (n > 0)	/* no torn line left behind */
				(void)!ftruncate(fd, st.st_size);
			close(fd);
		}
		errno = saved;
		return -1;
	}
	bump_generation(lock_fd, l);
	*fd_r = fd;
	return 0;
}
