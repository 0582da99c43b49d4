/*
 * tests/fuzz/mem_store.c - the in-memory mailstore (see mem_store.h).
 * It keeps the points of the store contract a session can observe
 * from one thread: UIDs in order and never reused, a UIDVALIDITY
 * greater than any before for a recreated folder, flags_change on the
 * stored flags, keywords case-insensitive in their first spelling and
 * remembered per folder, \Recent claimed by the first read-write
 * handle that lists a message. Sizes are bounded (folders, messages,
 * octets) so that a fuzz input cannot grow it without limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/util.h>

#include "mem_store.h"

#define MAX_FOLDERS 32
#define MAX_NAME 200
#define MAX_MESSAGES 300	/* per folder */
#define MAX_OCTETS (4u << 20)	/* the whole store */
#define SEED_DATE 1700000000	/* 14-Nov-2023: no clock, for determinism */

struct mem_msg {
	uint32_t uid, flags;
	int unclaimed;		/* \Recent not yet claimed by a handle */
	time_t date;
	char *keywords;		/* "" or space-separated */
	char *text;		/* CRLF */
	size_t len;
};

struct mem_folder {
	char *name;
	int subscribed;
	uint32_t uidvalidity, uidnext;
	struct mem_msg *m;
	size_t n;
	char *keywords;		/* every keyword ever set here */
};

struct mem_data {
	struct mem_folder *f[MAX_FOLDERS];
	size_t nf;
	uint32_t last_uidvalidity;
	size_t octets;
};

struct mp_mailbox {
	struct mem_data *d;
};

struct mp_folder {
	struct mem_data *d;
	char *name;
	uint32_t uidvalidity;	/* tells a recreated folder from this one */
	int read_only;
	uint32_t *claimed;	/* UIDs whose \Recent this handle holds */
	size_t nclaimed;
	struct mp_msg_info *v;	/* the last messages() result */
	size_t nv;
	char *text;		/* the last string returned */
};

static int
fail(const char **error_r, const char *why, int rc)
{
	*error_r = why;
	return rc;
}

/* ---- keywords ---- */

/* have with change applied by how; each word spelt as in the folder. */
static char *
kw_apply(struct mem_folder *fd, const char *have, enum mp_flags_how how,
    const char *change)
{
	char *out = strdup("");

	for (const char *p = how == MP_FLAGS_REPLACE ? "" : have; *p;) {
		size_t l = strcspn(p, " ");
		if (l && !(how == MP_FLAGS_REMOVE && change && mp_words_find(change, p, l)))
			(void)mp_words_add(&out, p, l);
		p += l;
		p += *p == ' ';
	}
	for (const char *p = how == MP_FLAGS_REMOVE || !change ? "" : change; *p;) {
		size_t l = strcspn(p, " ");
		if (mp_keyword_valid(p, l) && !mp_words_find(out, p, l)) {
			if (!mp_words_find(fd->keywords, p, l))
				(void)mp_words_add(&fd->keywords, p, l);
			const char *spelt = mp_words_find(fd->keywords, p, l);
			if (spelt != NULL)	/* NULL: out of memory above */
				(void)mp_words_add(&out, spelt, l);
		}
		p += l;
		p += *p == ' ';
	}
	return out;
}

/* ---- folders and messages ---- */

static struct mem_folder *
find(struct mem_data *d, const char *name)
{
	for (size_t i = 0; i < d->nf; i++)
		if (strcmp(d->f[i]->name, name) == 0)
			return d->f[i];
	return NULL;
}

static struct mem_folder *
handle_folder(struct mp_folder *f)
{
	struct mem_folder *fd = find(f->d, f->name);

	return fd && fd->uidvalidity == f->uidvalidity ? fd : NULL;
}

static struct mem_msg *
find_msg(struct mem_folder *fd, uint32_t uid)
{
	for (size_t i = 0; fd && i < fd->n; i++)
		if (fd->m[i].uid == uid)
			return &fd->m[i];
	return NULL;
}

static void
free_msg(struct mem_data *d, struct mem_msg *m)
{
	d->octets -= m->len;
	free(m->keywords);
	free(m->text);
}

static void
free_folder(struct mem_data *d, struct mem_folder *fd)
{
	for (size_t i = 0; i < fd->n; i++)
		free_msg(d, &fd->m[i]);
	free(fd->m);
	free(fd->keywords);
	free(fd->name);
	free(fd);
}

static int
create(struct mem_data *d, const char *name, const char **error_r)
{
	struct mem_folder *fd;

	if (name[0] == '\0' || strlen(name) > MAX_NAME || name[0] == '/' ||
	    strstr(name, "//") || name[strlen(name) - 1] == '/')
		return fail(error_r, "invalid folder name", MP_ERROR);
	if (find(d, name))
		return fail(error_r, "folder exists", MP_DECLINED);
	if (d->nf == MAX_FOLDERS)
		return fail(error_r, "too many folders", MP_ERROR);
	fd = calloc(1, sizeof(*fd));
	fd->name = strdup(name);
	fd->keywords = strdup("");
	fd->uidvalidity = ++d->last_uidvalidity;
	fd->uidnext = 1;
	d->f[d->nf++] = fd;
	return MP_OK;
}

/* The one save path (contract 6): APPEND, COPY/MOVE and import. uid 0:
 * the next one. text is taken over. */
static int
save(struct mem_data *d, struct mem_folder *fd, uint32_t uid, char *text, size_t len,
    uint32_t flags, const char *keywords, time_t date, uint32_t *uid_r,
    const char **error_r)
{
	if (fd->n == MAX_MESSAGES || d->octets + len > MAX_OCTETS) {
		free(text);
		return fail(error_r, "over quota", MP_TEMPFAIL);
	}
	if (uid == 0)
		uid = fd->uidnext;
	struct mem_msg *grown = realloc(fd->m, (fd->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(text);
		return fail(error_r, "out of memory", MP_TEMPFAIL);
	}
	fd->m = grown;
	size_t at = fd->n;
	while (at > 0 && fd->m[at - 1].uid > uid)
		at--;
	memmove(&fd->m[at + 1], &fd->m[at], (fd->n - at) * sizeof(*grown));
	fd->m[at] = (struct mem_msg){ .uid = uid, .flags = flags & ~(uint32_t)MP_FLAG_RECENT,
	    .unclaimed = 1, .date = date ? date : SEED_DATE, .text = text, .len = len };
	fd->m[at].keywords = kw_apply(fd, "", MP_FLAGS_ADD, keywords);
	fd->n++;
	d->octets += len;
	if (uid >= fd->uidnext)
		fd->uidnext = uid + 1;
	*uid_r = uid;
	return MP_OK;
}

/* A reader's whole text with bare LF made CRLF; NULL over the budget. */
static char *
read_crlf(struct mp_reader *r, size_t *len_r)
{
	size_t len = 0, cap = 4096, out = 0;
	char *raw = malloc(cap), *text;
	ssize_t n;

	while ((n = r->read(r, raw + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			if (cap >= MAX_OCTETS) {
				free(raw);
				return NULL;
			}
			cap *= 2;
			raw = realloc(raw, cap);
		}
	}
	text = malloc(2 * len + 1);
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			text[out++] = '\r';
		text[out++] = raw[i];
	}
	text[out] = '\0';
	free(raw);
	*len_r = out;
	return text;
}

/* ---- the ops ---- */

static int
op_open(void *ctx, const char *user, struct mp_mailbox **mb_r, const char **error_r)
{
	(void)user;
	(void)error_r;
	*mb_r = calloc(1, sizeof(**mb_r));
	(*mb_r)->d = ctx;
	return MP_OK;
}

static void
op_close(struct mp_mailbox *mb)
{
	free(mb);
}

static int
by_name(const void *a, const void *b)
{
	const struct mem_folder *x = *(struct mem_folder *const *)a;
	const struct mem_folder *y = *(struct mem_folder *const *)b;

	return strcmp(x->name, "INBOX") == 0 ? -1 : strcmp(y->name, "INBOX") == 0 ? 1 :
	    strcmp(x->name, y->name);
}

static unsigned
attrs_of(struct mem_data *d, const struct mem_folder *fd)
{
	size_t len = strlen(fd->name);
	unsigned a = fd->subscribed ? MP_FOLDER_SUBSCRIBED : 0;

	for (size_t i = 0; i < d->nf; i++)
		if (strncmp(d->f[i]->name, fd->name, len) == 0 && d->f[i]->name[len] == '/')
			a |= MP_FOLDER_HAS_CHILDREN;
	return a | mp_special_use_flag(fd->name);
}

static int
op_folders(struct mp_mailbox *mb, void (*each)(void *arg, const char *name, unsigned attrs),
    void *arg, const char **error_r)
{
	struct mem_data *d = mb->d;
	struct mem_folder *sorted[MAX_FOLDERS];

	(void)error_r;
	memcpy(sorted, d->f, d->nf * sizeof(sorted[0]));
	qsort(sorted, d->nf, sizeof(sorted[0]), by_name);
	for (size_t i = 0; i < d->nf; i++)
		each(arg, sorted[i]->name, attrs_of(d, sorted[i]));
	return MP_OK;
}

static int
op_folder_create(struct mp_mailbox *mb, const char *name, const char **error_r)
{
	return create(mb->d, name, error_r);
}

static int
op_folder_delete(struct mp_mailbox *mb, const char *name, const char **error_r)
{
	struct mem_data *d = mb->d;

	if (strcmp(name, "INBOX") == 0)
		return fail(error_r, "INBOX cannot be deleted", MP_ERROR);
	for (size_t i = 0; i < d->nf; i++)
		if (strcmp(d->f[i]->name, name) == 0) {
			free_folder(d, d->f[i]);
			d->f[i] = d->f[--d->nf];
			return MP_OK;
		}
	return fail(error_r, "no such folder", MP_DECLINED);
}

/* from and its children "from/..." become to and "to/...". */
static int
op_folder_rename(struct mp_mailbox *mb, const char *from, const char *to,
    const char **error_r)
{
	struct mem_data *d = mb->d;
	size_t flen = strlen(from);

	if (find(d, from) == NULL)
		return fail(error_r, "no such folder", MP_DECLINED);
	if (strcmp(from, "INBOX") == 0 || strcmp(to, "INBOX") == 0)
		return fail(error_r, "INBOX cannot be renamed here", MP_ERROR);
	if (to[0] == '\0' || strlen(to) > MAX_NAME || find(d, to) ||
	    (strncmp(to, from, flen) == 0 && to[flen] == '/'))
		return fail(error_r, "cannot rename to that name", MP_ERROR);
	for (size_t i = 0; i < d->nf; i++) {
		char *name = d->f[i]->name;
		if (strncmp(name, from, flen) != 0 || (name[flen] && name[flen] != '/'))
			continue;
		char *renamed = malloc(strlen(to) + strlen(name + flen) + 1);
		sprintf(renamed, "%s%s", to, name + flen);
		free(name);
		d->f[i]->name = renamed;
	}
	return MP_OK;
}

static int
op_folder_subscribe(struct mp_mailbox *mb, const char *name, int subscribed,
    const char **error_r)
{
	struct mem_folder *fd = find(mb->d, name);

	if (fd == NULL)
		return fail(error_r, "no such folder", MP_DECLINED);
	fd->subscribed = subscribed;
	return MP_OK;
}

static int
op_folder_open(struct mp_mailbox *mb, const char *name, int read_only, struct mp_folder **f_r,
    const char **error_r)
{
	struct mem_folder *fd = find(mb->d, name);
	struct mp_folder *f;

	if (fd == NULL)
		return fail(error_r, "no such folder", MP_DECLINED);
	f = calloc(1, sizeof(*f));
	f->d = mb->d;
	f->name = strdup(name);
	f->uidvalidity = fd->uidvalidity;
	f->read_only = read_only;
	*f_r = f;
	return MP_OK;
}

static void
release_view(struct mp_folder *f)
{
	for (size_t i = 0; i < f->nv; i++)
		free((char *)f->v[i].keywords);
	free(f->v);
	f->v = NULL;
	f->nv = 0;
}

static void
op_folder_close(struct mp_folder *f)
{
	release_view(f);
	free(f->claimed);
	free(f->text);
	free(f->name);
	free(f);
}

static int
holds_recent(const struct mp_folder *f, uint32_t uid)
{
	for (size_t i = 0; i < f->nclaimed; i++)
		if (f->claimed[i] == uid)
			return 1;
	return 0;
}

/* Contract 5: what this handle is told is \Recent. */
static int
is_recent(const struct mp_folder *f, const struct mem_msg *m)
{
	return f->read_only ? m->unclaimed : holds_recent(f, m->uid);
}

static int
op_folder_info(struct mp_folder *f, struct mp_folder_info *info_r, const char **error_r)
{
	struct mem_folder *fd = handle_folder(f);

	if (fd == NULL)
		return fail(error_r, "folder gone", MP_ERROR);
	*info_r = (struct mp_folder_info){ .struct_size = info_r->struct_size,
	    .uidvalidity = fd->uidvalidity, .uidnext = fd->uidnext,
	    .messages = (uint32_t)fd->n };
	for (size_t i = 0; i < fd->n; i++) {
		info_r->unseen += !(fd->m[i].flags & MP_FLAG_SEEN);
		info_r->recent += is_recent(f, &fd->m[i]);
	}
	return MP_OK;
}

static int
op_messages(struct mp_folder *f, const struct mp_msg_info **v_r, size_t *n_r,
    const char **error_r)
{
	struct mem_folder *fd = handle_folder(f);

	if (fd == NULL)
		return fail(error_r, "folder gone", MP_ERROR);
	release_view(f);
	f->v = calloc(fd->n + 1, sizeof(*f->v));
	for (size_t i = 0; i < fd->n; i++) {
		struct mem_msg *m = &fd->m[i];
		if (!f->read_only && m->unclaimed) {
			m->unclaimed = 0;
			f->claimed = realloc(f->claimed, (f->nclaimed + 1) * sizeof(uint32_t));
			f->claimed[f->nclaimed++] = m->uid;
		}
		f->v[i] = (struct mp_msg_info){ .struct_size = sizeof(f->v[i]), .uid = m->uid, .size = m->len,
		    .internal_date = m->date, .keywords = strdup(m->keywords),
		    .flags = m->flags | (is_recent(f, m) ? MP_FLAG_RECENT : 0) };
	}
	f->nv = fd->n;
	*v_r = f->v;
	*n_r = f->nv;
	return MP_OK;
}

/* The header section with its blank line (or all of it, if none). */
static size_t
header_len(const char *text, size_t len)
{
	const char *end = memmem(text, len, "\r\n\r\n", 4);

	if (len >= 2 && memcmp(text, "\r\n", 2) == 0)
		return 2;
	return end ? (size_t)(end - text) + 4 : len;
}

static int
op_message_open(struct mp_folder *f, uint32_t uid, enum mp_msg_part part, struct mp_reader *r,
    const char **error_r)
{
	struct mem_msg *m = find_msg(handle_folder(f), uid);
	struct mp_mem_reader *mr;
	size_t len;
	char *copy;

	if (m == NULL)
		return fail(error_r, "no such message", MP_DECLINED);
	len = part == MP_PART_HEADER ? header_len(m->text, m->len) : m->len;
	mr = calloc(1, sizeof(*mr));
	copy = malloc(len + 1);
	if (mr == NULL || copy == NULL) {
		free(mr);
		free(copy);
		return fail(error_r, "out of memory", MP_ERROR);
	}
	memcpy(copy, m->text, len);
	/* the caller sized r; priv is mr */
	MP_SIZED_WRITE(r, mp_mem_reader_init(mr, copy, len));
	return MP_OK;
}

static void
op_message_close(struct mp_reader *r)
{
	struct mp_mem_reader *mr = r->priv;

	free((char *)mr->p);
	free(mr);
}

static int
op_flags_change(struct mp_folder *f, uint32_t uid, enum mp_flags_how how, uint32_t flags,
    const char *keywords, uint32_t *flags_r, const char **keywords_r, const char **error_r)
{
	struct mem_folder *fd = handle_folder(f);
	struct mem_msg *m = find_msg(fd, uid);

	if (m == NULL)
		return fail(error_r, "no such message", MP_DECLINED);
	if (f->read_only)
		return fail(error_r, "read-only", MP_ERROR);
	m->flags = mp_flags_apply(m->flags, how, flags);
	char *kw = kw_apply(fd, m->keywords, how, keywords);
	free(m->keywords);
	m->keywords = kw;
	if (flags_r)
		*flags_r = m->flags | (is_recent(f, m) ? MP_FLAG_RECENT : 0);
	if (keywords_r) {
		free(f->text);
		*keywords_r = f->text = strdup(m->keywords);
	}
	return MP_OK;
}

static int
op_flags_set(struct mp_folder *f, uint32_t uid, uint32_t flags, const char *keywords,
    const char **error_r)
{
	return op_flags_change(f, uid, MP_FLAGS_REPLACE, flags, keywords, NULL, NULL, error_r);
}

static int
op_append(struct mp_mailbox *mb, const char *folder, struct mp_reader *msg, uint32_t flags,
    time_t date, uint32_t *uid_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct mem_folder *fd = find(mb->d, folder);
	size_t len;
	char *text;

	if (fd == NULL)
		return fail(error_r, "no such folder", MP_DECLINED);
	if ((text = read_crlf(msg, &len)) == NULL)
		return fail(error_r, "message too big", MP_ERROR);
	*uidvalidity_r = fd->uidvalidity;
	return save(mb->d, fd, 0, text, len, flags, "", date, uid_r, error_r);
}

static int
op_copy(struct mp_folder *f, uint32_t uid, const char *dest, int move, uint32_t *uid_r,
    uint32_t *uidvalidity_r, const char **error_r)
{
	struct mem_folder *from = handle_folder(f), *to = find(f->d, dest);
	struct mem_msg *m = find_msg(from, uid);

	if (m == NULL)
		return fail(error_r, "no such message", MP_DECLINED);
	if (to == NULL)
		return fail(error_r, "no such folder", MP_ERROR);
	char *text = malloc(m->len + 1);
	memcpy(text, m->text, m->len + 1);
	char *kw = strdup(m->keywords);
	int rc = save(f->d, to, 0, text, m->len, m->flags, kw, m->date, uid_r, error_r);
	free(kw);
	*uidvalidity_r = to->uidvalidity;
	if (rc == MP_OK && move && to != from) {
		m = find_msg(from, uid);
		free_msg(f->d, m);
		size_t i = (size_t)(m - from->m);
		memmove(m, m + 1, (from->n - i - 1) * sizeof(*m));
		from->n--;
	}
	return rc;
}

static int
op_expunge(struct mp_folder *f, uint32_t uid, const char **error_r)
{
	struct mem_folder *fd = handle_folder(f);
	struct mem_msg *m = find_msg(fd, uid);

	if (f->read_only)
		return fail(error_r, "read-only", MP_ERROR);
	if (m) {
		size_t i = (size_t)(m - fd->m);
		free_msg(f->d, m);
		memmove(m, m + 1, (fd->n - i - 1) * sizeof(*m));
		fd->n--;
	}
	return MP_OK;
}

static int
op_lock(struct mp_folder *f, const char **error_r)
{
	(void)f;
	(void)error_r;
	return MP_OK;
}

static int
op_change_fd(struct mp_folder *f)
{
	(void)f;
	return -1;
}

static int
op_import(struct mp_mailbox *mb, const char *folder, uint32_t uidvalidity, uint32_t uid,
    struct mp_reader *msg, uint32_t flags, const char *keywords, time_t date,
    const char **error_r)
{
	struct mem_folder *fd = find(mb->d, folder);
	uint32_t got;
	size_t len;
	char *text;

	if (fd == NULL && create(mb->d, folder, error_r) != MP_OK)
		return MP_ERROR;
	fd = find(mb->d, folder);
	if (fd->n == 0)
		fd->uidvalidity = uidvalidity;
	if (uid == 0 || find_msg(fd, uid))
		return fail(error_r, "UID taken", MP_DECLINED);
	if ((text = read_crlf(msg, &len)) == NULL)
		return fail(error_r, "message too big", MP_ERROR);
	return save(mb->d, fd, uid, text, len, flags, keywords, date, &got, error_r);
}

static int
op_folder_keywords(struct mp_folder *f, const char **keywords_r, const char **error_r)
{
	struct mem_folder *fd = handle_folder(f);

	if (fd == NULL)
		return fail(error_r, "folder gone", MP_ERROR);
	free(f->text);
	*keywords_r = f->text = strdup(fd->keywords);
	return MP_OK;
}

static const struct mp_store_ops mem_ops = {
	.struct_size = sizeof(struct mp_store_ops),
	.open = op_open,
	.close = op_close,
	.folders = op_folders,
	.folder_create = op_folder_create,
	.folder_delete = op_folder_delete,
	.folder_rename = op_folder_rename,
	.folder_subscribe = op_folder_subscribe,
	.folder_open = op_folder_open,
	.folder_close = op_folder_close,
	.folder_info = op_folder_info,
	.messages = op_messages,
	.message_open = op_message_open,
	.message_close = op_message_close,
	.flags_set = op_flags_set,
	.append = op_append,
	.copy = op_copy,
	.expunge = op_expunge,
	.lock = op_lock,
	.change_fd = op_change_fd,
	.import = op_import,
	.flags_change = op_flags_change,
	.folder_keywords = op_folder_keywords,
};

/* ---- the seed ---- */

static const struct {
	const char *folder;
	uint32_t flags;
	const char *keywords;
	const char *text;	/* LF; made CRLF when saved */
} seed[] = {
	{ "INBOX", MP_FLAG_SEEN, "",
	  "From: Ann Example <ann@example.test>\nTo: alice@example.test\n"
	  "Subject: plain hello\nDate: Mon, 13 Nov 2023 10:00:00 +0000\n"
	  "Message-ID: <1@example.test>\n\nHello Alice,\nthe pelican has landed.\n" },
	{ "INBOX", MP_FLAG_FLAGGED | MP_FLAG_ANSWERED, "$Forwarded Work",
	  "From: \"Bob, the Builder\" <bob@x.test>\nTo: alice@example.test, (c) <c@y.test>\n"
	  "Cc: team: d@z.test, e@z.test;\nSubject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?= with\n"
	  " attachment\nDate: 12 Nov 2023 09:00 -0500\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=\"outer\"\n\npreamble\n"
	  "--outer\nContent-Type: multipart/alternative; boundary=inner\n\n"
	  "--inner\nContent-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe, flamingo\n"
	  "--inner\nContent-Type: text/html\n\n<p>flamingo</p>\n--inner--\n"
	  "--outer\nContent-Type: application/octet-stream; name=a.bin\n"
	  "Content-Disposition: attachment; filename=\"a.bin\"\n"
	  "Content-Transfer-Encoding: base64\n\naGlkZGVud29yZA==\n"
	  "--outer\nContent-Type: message/rfc822\n\nFrom: inner@x.test\nSubject: forwarded\n"
	  "Content-Type: text/plain\n\ninner body\n--outer--\nepilogue\n" },
	{ "INBOX", MP_FLAG_DELETED | MP_FLAG_DRAFT, "Todo",
	  "From: undisclosed-recipients:;\nSubject: folded\n\tsubject line\n"
	  "X-Extra: first\nX-Extra: second\n  folded\nIn-Reply-To: <1@example.test>\n\n"
	  "short\n" },
	{ "INBOX", 0, "",
	  "From: carol@example.test\nTo: alice@example.test\nSubject: recent one\n"
	  "Date: Tue, 14 Nov 2023 08:30:00 +0100\nContent-Type: text/plain; charset=iso-8859-1\n"
	  "Content-Transfer-Encoding: 8bit\n\nna\xefve caf\xe9\n" },
	{ "Archive", MP_FLAG_SEEN, "Work",
	  "From: dave@example.test\nSubject: old news\n\narchived text\n" },
	{ "Archive", MP_FLAG_SEEN | MP_FLAG_DELETED, "",
	  "From: erin@example.test\nSubject: gone soon\n\nbye\n" },
	{ "Archive/2023", 0, "$Junk",
	  "Subject: nested folder\n\nbody only\n" },
};

struct mp_store *
mem_store_new(const char *user)
{
	struct mp_store *st = calloc(1, sizeof(*st));
	struct mem_data *d = calloc(1, sizeof(*d));
	const char *err;
	uint32_t uid;

	(void)user;
	st->struct_size = sizeof(*st);
	st->ops = &mem_ops;
	st->ctx = d;
	create(d, "INBOX", &err);
	for (size_t i = 0; i < sizeof(seed) / sizeof(seed[0]); i++) {
		struct mem_folder *fd = find(d, seed[i].folder);
		if (fd == NULL) {
			create(d, seed[i].folder, &err);
			fd = find(d, seed[i].folder);
		}
		struct mp_mem_reader mr;
		size_t len;
		char *text = read_crlf(mp_mem_reader_init(&mr, seed[i].text, strlen(seed[i].text)),
		    &len);
		save(d, fd, 0, text, len, seed[i].flags, seed[i].keywords,
		    SEED_DATE - 86400 * (time_t)i, &uid, &err);
	}
	find(d, "INBOX")->subscribed = 1;
	find(d, "Archive")->subscribed = 1;
	return st;
}

void
mem_store_free(struct mp_store *st)
{
	struct mem_data *d = st->ctx;

	for (size_t i = 0; i < d->nf; i++)
		free_folder(d, d->f[i]);
	free(d);
	free(st);
}
