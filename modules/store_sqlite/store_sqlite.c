/*
 * modules/store_sqlite/store_sqlite.c - the mailstore API (and local
 * delivery) on SQLite, so an ISP can swap Maildir for a database without
 * touching POP3 or IMAP.
 *
 * Bodies are BLOBs in wire form (CRLF), written and read in chunks with
 * SQLite's incremental BLOB I/O, so a big message never sits in memory.
 * One connection, opened at init, guarded by a mutex; WAL mode keeps
 * readers and the writer out of each other's way. The POP3 lock is held
 * in memory: all sessions live in the one merpatid process.
 *
 * The concurrency contract (store.h): UIDs come from folders.uidnext in
 * the inserting transaction; flag changes read and write the stored row
 * in one transaction; keywords are matched against the folder's table
 * (folder_keywords, first spelling wins, case-insensitive); \Recent is
 * claimed by moving folders.seen_uid in the claiming handle's refresh;
 * a message being read when it is expunged is only hidden (its folder
 * id negated) and deleted when its last reader closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <merpati/merpati.h>
#include <merpati/util.h>

#include "store_folders.h"
#include "store_keywords.h"
#include "store_message.h"
#include "store_snapshot.h"

#define CHUNK 65536
#define MAX_LOCKS 4096

struct store {
	const struct mp_host *host;
	const char *database;
	sqlite3 *db;
	pthread_mutex_t lock;
	long long locked[MAX_LOCKS];	/* folder ids held by POP3 sessions */
	size_t nlocked;
	struct mp_folder *open[MAX_LOCKS];	/* for change notification */
	size_t nopen;
	struct reading { long long rowid; int count; } *reading;	/* open streams */
	size_t nreading;
};

/* Keywords a folder may define (bounded: clients make them). */
#define KEYWORDS_MAX 256

struct mp_folder {
	struct mp_mailbox *mb;
	long long id;
	int holds_lock;
	int event_fd;		/* signalled when the folder changes; -1 unused */
	struct store_snapshot snap;	/* messages, \Recent claims */
};

static _Thread_local char err_buf[512];

static int
db_error(struct store *s, const char **error_r)
{
	snprintf(err_buf, sizeof(err_buf), "mail database: %s", sqlite3_errmsg(s->db));
	*error_r = err_buf;
	s->host->log(MP_LOG_ERR, "%s", err_buf);
	return MP_TEMPFAIL;
}

static sqlite3_stmt *
prepare(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;

	sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	return st;
}

/* Run sql with text/int binds given as a format: "t" text, "i" int64. */
static int
exec(struct store *s, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = prepare(s, sql);
	va_list ap;
	int rc;

	if (st == NULL)
		return SQLITE_ERROR;
	va_start(ap, types);
	for (int i = 0; types[i]; i++) {
		if (types[i] == 't')
			sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(st, i + 1, va_arg(ap, long long));
	}
	va_end(ap);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

/* Wake every open view of folder id (IMAP IDLE). Lock held. */
static void
notify(struct store *s, long long id)
{
	uint64_t one = 1;

	for (size_t i = 0; i < s->nopen; i++)
		if (s->open[i]->id == id && s->open[i]->event_fd >= 0)
			(void)!write(s->open[i]->event_fd, &one, sizeof(one));
}

/* A UIDVALIDITY the user never had (RFC 3501 2.3.1.1: a folder deleted
 * and made again must not reuse one): the clock, or one past the last
 * handed out. Lock held. */
static long long
fresh_uidvalidity(struct store *s, const char *user)
{
	long long v = (long long)time(NULL);
	sqlite3_stmt *st;

	if (exec(s, "INSERT INTO uidvalidities (user, last) VALUES (?1, ?2) ON CONFLICT(user)"
	    " DO UPDATE SET last = MAX(?2, last + 1)", "ti", user, v) != SQLITE_DONE)
		return v;
	st = prepare(s, "SELECT last FROM uidvalidities WHERE user = ?1");
	if (st == NULL)
		return v;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The folder's id, creating it when create; 0 when absent. Lock held. */
static long long
folder_id(struct store *s, const char *user, const char *name, int create)
{
	sqlite3_stmt *st = prepare(s, "SELECT id FROM folders WHERE user = ?1 AND name = ?2");
	long long id = 0;

	sqlite3_bind_text(st, 1, user, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, store_folder_canonical(name), -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (id == 0 && create && exec(s, "INSERT INTO folders (user, name, uidvalidity, uidnext, "
	    "seen_uid, subscribed) VALUES (?1, ?2, ?3, 1, 0, 0)", "tti", user,
	    store_folder_canonical(name), fresh_uidvalidity(s, user)) == SQLITE_DONE)
		id = sqlite3_last_insert_rowid(s->db);
	return id;
}

/* ---- mailbox and folders -------------------------------------------------- */

static int
st_open(void *ctx, const char *user, struct mp_mailbox **mb_r, const char **error_r)
{
	struct store *s = ctx;
	struct mp_mailbox *mb;
	long long id;

	if (store_mailbox_new(s, user, &mb, error_r) != MP_OK)
		return MP_ERROR;
	pthread_mutex_lock(&s->lock);
	id = folder_id(s, mb->user, "INBOX", 1);
	pthread_mutex_unlock(&s->lock);
	if (id == 0) {
		store_mailbox_close(mb);
		return db_error(s, error_r);
	}
	*mb_r = mb;
	return MP_OK;
}

static int
st_folders(struct mp_mailbox *mb, void (*each)(void *, const char *, unsigned),
    void *arg, const char **error_r)
{
	struct store *s = mb->s;
	sqlite3_stmt *st;
	struct store_folder_row *rows = NULL, *grown;
	size_t n = 0, cap = 0;
	int oom = 0;

	pthread_mutex_lock(&s->lock);
	st = prepare(s, "SELECT name, subscribed FROM folders WHERE user = ?1 "
	    "ORDER BY name <> 'INBOX', name");
	sqlite3_bind_text(st, 1, mb->user, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if ((grown = mp_array_grow(rows, &cap, n + 1, sizeof(*rows))) == NULL) {
			oom = 1;
			break;
		}
		rows = grown;
		snprintf(rows[n].name, sizeof(rows[n].name), "%s", sqlite3_column_text(st, 0));
		rows[n].attrs = mp_special_use_flag(rows[n].name) |
		    (sqlite3_column_int(st, 1) ? MP_FOLDER_SUBSCRIBED : 0);
		n++;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	if (oom) {
		free(rows);
		*error_r = "out of memory";
		return MP_TEMPFAIL;
	}
	store_folders_report(rows, n, each, arg);
	free(rows);
	return MP_OK;
}

static int
st_folder_create(struct mp_mailbox *mb, const char *name, const char **error_r)
{
	struct store *s = mb->s;
	int rc;

	if (!store_folder_valid(name)) {
		*error_r = "invalid folder name";
		return MP_ERROR;
	}
	pthread_mutex_lock(&s->lock);
	rc = folder_id(s, mb->user, name, 0) ? MP_DECLINED :
	    folder_id(s, mb->user, name, 1) ? MP_OK : db_error(s, error_r);
	pthread_mutex_unlock(&s->lock);
	if (rc == MP_DECLINED)
		*error_r = "folder exists";
	return rc;
}

/* Before a folder's messages go: hide those a stream is reading (their
 * last reader deletes them). Lock held. */
static void
hide_read_messages(struct store *s, long long folder)
{
	for (size_t i = 0; i < s->nreading; i++)
		exec(s, "UPDATE messages SET folder = -folder WHERE id = ?1 AND folder = ?2",
		    "ii", s->reading[i].rowid, folder);
}

static int
st_folder_delete(struct mp_mailbox *mb, const char *name, const char **error_r)
{
	struct store *s = mb->s;
	long long id;

	if (strcasecmp(name, "INBOX") == 0) {
		*error_r = "INBOX cannot be deleted";
		return MP_ERROR;
	}
	pthread_mutex_lock(&s->lock);
	id = folder_id(s, mb->user, name, 0);
	if (id) {	/* only this folder: "a/b" outlives "a" */
		if (s->nreading)
			hide_read_messages(s, id);
		exec(s, "DELETE FROM messages WHERE folder = ?1", "i", id);
		exec(s, "DELETE FROM folder_keywords WHERE folder = ?1", "i", id);
		exec(s, "DELETE FROM folders WHERE id = ?1", "i", id);
	}
	pthread_mutex_unlock(&s->lock);
	*error_r = "no such folder";
	return id ? MP_OK : MP_DECLINED;
}

static int
st_folder_rename(struct mp_mailbox *mb, const char *from, const char *to,
    const char **error_r)
{
	struct store *s = mb->s;
	int rc = MP_OK;

	if (strcasecmp(from, "INBOX") == 0 || !store_folder_valid(to)) {
		*error_r = "cannot rename to or from that name";
		return MP_ERROR;
	}
	pthread_mutex_lock(&s->lock);
	if (!folder_id(s, mb->user, from, 0)) {
		*error_r = "no such folder";
		rc = MP_DECLINED;
	} else if (folder_id(s, mb->user, to, 0)) {
		*error_r = "target folder exists";
		rc = MP_ERROR;
	} else if (exec(s, "UPDATE folders SET name = ?3 || substr(name, length(?2) + 1) "
	    "WHERE user = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')",
	    "ttt", mb->user, from, to) != SQLITE_DONE)
		rc = db_error(s, error_r);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int
st_folder_subscribe(struct mp_mailbox *mb, const char *name, int on,
    const char **error_r)
{
	struct store *s = mb->s;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = exec(s, "UPDATE folders SET subscribed = ?3 WHERE user = ?1 AND name = ?2",
	    "tti", mb->user, store_folder_canonical(name), (long long)(on != 0)) == SQLITE_DONE ?
	    MP_OK : db_error(s, error_r);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- open folders ---------------------------------------------------------- */

/* The compare-and-set that claims \Recent (snapshot_claim): moves
 * folders.seen_uid from seen to last unless another claimant moved it
 * first. 1 won, 0 lost, -1 error. Lock held. */
static int
claim_seen(void *arg, long long seen, uint32_t last)
{
	struct mp_folder *f = arg;
	struct store *s = f->mb->s;

	if (exec(s, "UPDATE folders SET seen_uid = ?3 WHERE id = ?1 AND seen_uid = ?2",
	    "iii", f->id, seen, (long long)last) != SQLITE_DONE)
		return -1;
	return sqlite3_changes(s->db) == 1;
}

/*
 * \Recent (store.h contract 5): the mark all handles share is
 * folders.seen_uid, claimed through claim_seen; only the one claimant
 * whose compare-and-set wins gets the UIDs. Only messages() claims: a
 * handle opened just to change flags takes none. Lock held.
 */
static int
claim_recent(struct mp_folder *f, int claim)
{
	struct store *s = f->mb->s;
	sqlite3_stmt *st = prepare(s, "SELECT seen_uid FROM folders WHERE id = ?1");
	long long seen = -1;

	sqlite3_bind_int64(st, 1, f->id);
	if (sqlite3_step(st) == SQLITE_ROW)
		seen = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (seen < 0)
		return -1;
	return snapshot_claim(&f->snap, seen, claim, claim_seen, f);
}

/* Re-read the folder's state and messages (claim: see claim_recent).
 * Lock held. */
static int
refresh(struct mp_folder *f, int claim)
{
	struct store *s = f->mb->s;
	sqlite3_stmt *st = prepare(s, "SELECT uidvalidity, uidnext FROM folders WHERE id = ?1");
	int ok;

	sqlite3_bind_int64(st, 1, f->id);
	ok = sqlite3_step(st) == SQLITE_ROW;
	if (ok) {
		f->snap.uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		f->snap.uidnext = (uint32_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (!ok || claim_recent(f, claim) < 0)
		return -1;
	snapshot_clear(&f->snap);
	st = prepare(s, "SELECT uid, flags, size, internal_date, keywords FROM messages "
	    "WHERE folder = ?1 ORDER BY uid");
	sqlite3_bind_int64(st, 1, f->id);
	while ((ok = sqlite3_step(st) == SQLITE_ROW)) {
		struct mp_msg_info m = {
			.uid = (uint32_t)sqlite3_column_int64(st, 0),
			.flags = (uint32_t)sqlite3_column_int64(st, 1),
			.size = (uint64_t)sqlite3_column_int64(st, 2),
			.internal_date = (time_t)sqlite3_column_int64(st, 3),
			.keywords = (const char *)sqlite3_column_text(st, 4),
		};
		if (m.keywords == NULL || snapshot_put(&f->snap, f->snap.n, &m) < 0)
			break;	/* out of memory */
	}
	sqlite3_finalize(st);
	return ok ? -1 : 0;
}

static void st_folder_close(struct mp_folder *f);

static int
st_folder_open(struct mp_mailbox *mb, const char *name, int read_only,
    struct mp_folder **f_r, const char **error_r)
{
	struct store *s = mb->s;
	struct mp_folder *f = calloc(1, sizeof(*f));
	int rc = MP_OK;

	if (f == NULL)
		return MP_ERROR;
	f->mb = mb;
	f->snap.read_only = read_only;
	f->event_fd = -1;
	pthread_mutex_lock(&s->lock);
	f->id = folder_id(s, mb->user, name, 0);
	if (f->id && s->nopen < MAX_LOCKS)
		s->open[s->nopen++] = f;
	if (f->id == 0) {
		*error_r = "no such folder";
		rc = MP_DECLINED;
	} else if (refresh(f, 0) < 0)
		rc = db_error(s, error_r);
	pthread_mutex_unlock(&s->lock);
	if (rc != MP_OK) {
		st_folder_close(f);
		return rc;
	}
	*f_r = f;
	return MP_OK;
}

static void
st_folder_close(struct mp_folder *f)
{
	struct store *s = f->mb->s;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; f->holds_lock && i < s->nlocked; i++)
		if (s->locked[i] == f->id) {
			s->locked[i] = s->locked[--s->nlocked];
			break;
		}
	for (size_t i = 0; i < s->nopen; i++)
		if (s->open[i] == f) {
			s->open[i] = s->open[--s->nopen];
			break;
		}
	pthread_mutex_unlock(&s->lock);
	if (f->event_fd >= 0)
		close(f->event_fd);
	snapshot_fini(&f->snap);
	free(f);
}

static int
st_folder_info(struct mp_folder *f, struct mp_folder_info *info, const char **error_r)
{
	(void)error_r;
	snapshot_folder_info(&f->snap, info);
	return MP_OK;
}

static int
st_messages(struct mp_folder *f, const struct mp_msg_info **v_r, size_t *n_r,
    const char **error_r)
{
	struct store *s = f->mb->s;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = refresh(f, 1) < 0 ? db_error(s, error_r) : MP_OK;
	pthread_mutex_unlock(&s->lock);
	*v_r = f->snap.info;
	*n_r = f->snap.n;
	return rc;
}

/* ---- message streams --------------------------------------------------------- */

struct blob_reader {
	struct store *s;
	long long rowid;
	long long pos, end;
};

static ssize_t
blob_read(struct mp_reader *r, void *buf, size_t len)
{
	struct blob_reader *b = r->priv;
	sqlite3_blob *blob = NULL;
	int rc;

	if (b->pos >= b->end)
		return 0;
	if ((long long)len > b->end - b->pos)
		len = (size_t)(b->end - b->pos);
	if (len > CHUNK)
		len = CHUNK;
	pthread_mutex_lock(&b->s->lock);
	rc = sqlite3_blob_open(b->s->db, "main", "messages", "body", b->rowid, 0, &blob);
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_read(blob, buf, (int)len, (int)b->pos);
	sqlite3_blob_close(blob);
	pthread_mutex_unlock(&b->s->lock);
	if (rc != SQLITE_OK) {
		errno = EIO;
		return -1;
	}
	b->pos += (long long)len;
	return (ssize_t)len;
}

/* Streams open on a row (store.h contract 2: an expunge while one is
 * open only hides the row). Lock held. */
static int
reading_add(struct store *s, long long rowid)
{
	struct reading *r;

	for (size_t i = 0; i < s->nreading; i++)
		if (s->reading[i].rowid == rowid) {
			s->reading[i].count++;
			return 0;
		}
	if ((r = realloc(s->reading, (s->nreading + 1) * sizeof(*r))) == NULL)
		return -1;
	s->reading = r;
	s->reading[s->nreading++] = (struct reading){ rowid, 1 };
	return 0;
}

static int
being_read(const struct store *s, long long rowid)
{
	for (size_t i = 0; i < s->nreading; i++)
		if (s->reading[i].rowid == rowid)
			return 1;
	return 0;
}

/* The last reader of a hidden (expunged) row deletes it. Lock held. */
static void
reading_done(struct store *s, long long rowid)
{
	for (size_t i = 0; i < s->nreading; i++) {
		if (s->reading[i].rowid != rowid || --s->reading[i].count > 0)
			continue;
		s->reading[i] = s->reading[--s->nreading];
		exec(s, "DELETE FROM messages WHERE id = ?1 AND folder < 0", "i", rowid);
		return;
	}
}

static int
st_message_open(struct mp_folder *f, uint32_t uid, enum mp_msg_part part,
    struct mp_reader *r, const char **error_r)
{
	struct store *s = f->mb->s;
	struct blob_reader *b = calloc(1, sizeof(*b));
	sqlite3_stmt *st;
	int found;

	if (b == NULL)
		return MP_ERROR;
	pthread_mutex_lock(&s->lock);
	st = prepare(s, "SELECT id, size FROM messages WHERE folder = ?1 AND uid = ?2");
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, uid);
	found = sqlite3_step(st) == SQLITE_ROW;
	if (found) {
		b->rowid = sqlite3_column_int64(st, 0);
		b->end = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (found && reading_add(s, b->rowid) < 0) {
		pthread_mutex_unlock(&s->lock);
		free(b);
		*error_r = "out of memory";
		return MP_ERROR;
	}
	pthread_mutex_unlock(&s->lock);
	if (!found) {
		free(b);
		*error_r = "no such message";
		return MP_DECLINED;
	}
	b->s = s;
	r->read = blob_read;
	r->priv = b;
	r->size = (off_t)b->end;
	if (part == MP_PART_HEADER) {
		long long h = store_header_length(r, b->end);
		b->pos = 0;
		b->end = h;
		r->size = -1;
	}
	return MP_OK;
}

static void
st_message_close(struct mp_reader *r)
{
	struct blob_reader *b = r->priv;

	if (b) {
		pthread_mutex_lock(&b->s->lock);
		reading_done(b->s, b->rowid);
		pthread_mutex_unlock(&b->s->lock);
		free(b);
	}
	r->priv = NULL;
}

/* ---- keywords (store.h contract 4) ---- */

struct spelling {
	struct store *s;
	long long folder;
};

/* store_spelling_fn on folder_keywords (first spelling wins; the table
 * compares case-insensitively). Every failure refuses the keyword (-2).
 * Lock and transaction held. */
static int
folder_spelling(void *arg, char *word, size_t size, const char **why)
{
	struct spelling *sp = arg;
	struct store *s = sp->s;
	sqlite3_stmt *st;
	long long count = 0;

	st = prepare(s, "SELECT name FROM folder_keywords WHERE folder = ?1 AND name = ?2");
	sqlite3_bind_int64(st, 1, sp->folder);
	sqlite3_bind_text(st, 2, word, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(word, size, "%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		return 0;
	}
	sqlite3_finalize(st);
	st = prepare(s, "SELECT count(*) FROM folder_keywords WHERE folder = ?1");
	sqlite3_bind_int64(st, 1, sp->folder);
	if (sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (count >= KEYWORDS_MAX) {
		*why = "too many keywords in this folder";
		return -2;
	}
	if (exec(s, "INSERT INTO folder_keywords (folder, name) VALUES (?1, ?2)", "it",
	    sp->folder, word) != SQLITE_DONE) {
		*why = "cannot record keyword";
		return -2;
	}
	return 0;
}

/* current changed by how/given, in the folder's spelling (malloc'd
 * *kw_r); 0, or -1 with *why. Lock and transaction held. */
static int
apply_keywords(struct store *s, long long folder, const char *current,
    enum mp_flags_how how, const char *given, char **kw_r, const char **why)
{
	struct spelling sp = { s, folder };

	return store_keywords_apply(current, how, given, folder_spelling, &sp, kw_r, why) < 0 ?
	    -1 : 0;
}

static int
st_folder_keywords(struct mp_folder *f, const char **keywords_r, const char **error_r)
{
	struct store *s = f->mb->s;
	sqlite3_stmt *st;
	char *out = strdup("");
	int rc = MP_OK;

	pthread_mutex_lock(&s->lock);
	st = prepare(s, "SELECT name FROM folder_keywords WHERE folder = ?1 ORDER BY rowid");
	sqlite3_bind_int64(st, 1, f->id);
	while (out && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if (mp_words_add(&out, name, strlen(name)) < 0) {
			free(out);
			out = NULL;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	if (out == NULL) {
		*error_r = "out of memory";
		rc = MP_ERROR;
	}
	*keywords_r = snapshot_result(&f->snap, out);
	return rc;
}

/* ---- changes ------------------------------------------------------------------ */

/* Read the stored row, change it, write it: one transaction (store.h
 * contract 3). MP_DECLINED when the UID is gone. Lock held. */
static int
change_row(struct store *s, long long folder, uint32_t uid, enum mp_flags_how how,
    uint32_t flags, const char *keywords, uint32_t *flags_r, char **kw_r,
    const char **error_r)
{
	sqlite3_stmt *st;
	char *current = NULL;
	uint32_t stored = 0;
	int found, rc = MP_OK;

	if (exec(s, "BEGIN IMMEDIATE", "") != SQLITE_DONE)
		return db_error(s, error_r);
	st = prepare(s, "SELECT flags, keywords FROM messages WHERE folder = ?1 AND uid = ?2");
	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, uid);
	if ((found = sqlite3_step(st) == SQLITE_ROW)) {
		stored = (uint32_t)sqlite3_column_int64(st, 0);
		current = strdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	if (!found) {
		*error_r = "no such message";
		rc = MP_DECLINED;
	} else if (current == NULL) {
		*error_r = "out of memory";
		rc = MP_ERROR;
	} else if (how == MP_FLAGS_REPLACE || (keywords && keywords[0])) {
		if (apply_keywords(s, folder, current, how, keywords, kw_r, error_r) < 0)
			rc = MP_ERROR;
	} else {
		*kw_r = current;
		current = NULL;
	}
	*flags_r = mp_flags_apply(stored, how, flags);
	if (rc == MP_OK && exec(s, "UPDATE messages SET flags = ?3, keywords = ?4 "
	    "WHERE folder = ?1 AND uid = ?2", "iiit", folder, (long long)uid,
	    (long long)*flags_r, *kw_r) != SQLITE_DONE)
		rc = db_error(s, error_r);
	if (rc == MP_OK && exec(s, "COMMIT", "") != SQLITE_DONE)
		rc = db_error(s, error_r);
	if (rc != MP_OK)
		exec(s, "ROLLBACK", "");	/* the caller frees *kw_r */
	free(current);
	return rc;
}

static int
st_flags_change(struct mp_folder *f, uint32_t uid, enum mp_flags_how how,
    uint32_t flags, const char *keywords, uint32_t *flags_r,
    const char **keywords_r, const char **error_r)
{
	struct store *s = f->mb->s;
	uint32_t now = 0;
	char *kw = NULL;
	int rc;

	if (f->snap.read_only) {
		*error_r = "folder is read-only";
		return MP_ERROR;
	}
	pthread_mutex_lock(&s->lock);
	rc = change_row(s, f->id, uid, how, flags, keywords, &now, &kw, error_r);
	if (rc == MP_OK)
		notify(s, f->id);
	pthread_mutex_unlock(&s->lock);
	if (rc != MP_OK) {
		free(kw);
		return rc;
	}
	snapshot_flags_changed(&f->snap, uid, now, kw, flags_r, keywords_r);
	return MP_OK;
}

static int
st_flags_set(struct mp_folder *f, uint32_t uid, uint32_t flags, const char *keywords,
    const char **error_r)
{
	return st_flags_change(f, uid, MP_FLAGS_REPLACE, flags, keywords, NULL, NULL, error_r);
}

/* Copy msg into a new row's BLOB in chunks, CRLF line ends. Lock held. */
static int
store_body(struct store *s, long long rowid, struct mp_reader *msg, long long *size_r)
{
	char in[CHUNK / 2], out[CHUNK];
	sqlite3_blob *blob = NULL;
	long long off = 0;
	char prev = 0;
	ssize_t n;

	/* The wire size is known only after reading: grow by rewriting. */
	while ((n = msg->read(msg, in, sizeof(in))) > 0) {
		size_t o = store_crlf(in, (size_t)n, out, &prev);
		if (exec(s, "UPDATE messages SET body = body || zeroblob(?2) WHERE id = ?1", "ii",
		    rowid, (long long)o) != SQLITE_DONE ||
		    sqlite3_blob_open(s->db, "main", "messages", "body", rowid, 1, &blob) != SQLITE_OK ||
		    sqlite3_blob_write(blob, out, (int)o, (int)off) != SQLITE_OK) {
			sqlite3_blob_close(blob);
			return -1;
		}
		sqlite3_blob_close(blob);
		blob = NULL;
		off += (long long)o;
	}
	*size_r = off;
	return n < 0 ? -1 : 0;
}

/* insert()'s second half, inside its transaction (ended here). */
static int
insert_row(struct store *s, long long folder, uint32_t *uid, struct mp_reader *msg,
    uint32_t flags, const char *keywords, time_t date, const char **error_r)
{
	long long size = 0, rowid;

	if (*uid == 0) {
		sqlite3_stmt *st = prepare(s, "SELECT uidnext FROM folders WHERE id = ?1");
		sqlite3_bind_int64(st, 1, folder);
		if (sqlite3_step(st) == SQLITE_ROW)
			*uid = (uint32_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (exec(s, "INSERT INTO messages (folder, uid, flags, keywords, internal_date, size, body) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, 0, x'')", "iiiti", folder, (long long)*uid,
	    (long long)(flags & ~MP_FLAG_RECENT), keywords ? keywords : "",
	    (long long)(date > 0 ? date : time(NULL))) != SQLITE_DONE) {
		int dup = sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE;
		exec(s, "ROLLBACK", "");
		*error_r = "UID already taken";
		return dup ? MP_DECLINED : db_error(s, error_r);
	}
	rowid = sqlite3_last_insert_rowid(s->db);
	if (store_body(s, rowid, msg, &size) < 0 ||
	    exec(s, "UPDATE messages SET size = ?2 WHERE id = ?1", "ii", rowid, size) != SQLITE_DONE ||
	    exec(s, "UPDATE folders SET uidnext = max(uidnext, ?2 + 1) WHERE id = ?1", "ii",
	    folder, (long long)*uid) != SQLITE_DONE ||
	    exec(s, "COMMIT", "") != SQLITE_DONE) {
		int rc = db_error(s, error_r);
		exec(s, "ROLLBACK", "");
		return rc;
	}
	notify(s, folder);
	return MP_OK;
}

/* Insert a message with uid (0: the next one) and keywords (in the
 * folder's spelling): the one save path of this store (store.h
 * contract 6). Lock held. */
static int
insert(struct store *s, long long folder, uint32_t *uid, struct mp_reader *msg,
    uint32_t flags, const char *keywords, time_t date, const char **error_r)
{
	char *kw = NULL;
	int rc;

	if (exec(s, "BEGIN IMMEDIATE", "") != SQLITE_DONE)
		return db_error(s, error_r);
	if (apply_keywords(s, folder, "", MP_FLAGS_ADD, keywords, &kw, error_r) < 0) {
		exec(s, "ROLLBACK", "");
		return MP_ERROR;
	}
	rc = insert_row(s, folder, uid, msg, flags, kw, date, error_r);
	free(kw);
	return rc;
}
static int
folder_uidvalidity(struct store *s, long long id, uint32_t *uv)
{
	sqlite3_stmt *st = prepare(s, "SELECT uidvalidity FROM folders WHERE id = ?1");

	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		*uv = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int
st_append(struct mp_mailbox *mb, const char *folder, struct mp_reader *msg,
    uint32_t flags, time_t date, uint32_t *uid_r, uint32_t *uidvalidity_r,
    const char **error_r)
{
	struct store *s = mb->s;
	long long id;
	int rc;

	*uid_r = 0;
	pthread_mutex_lock(&s->lock);
	id = folder_id(s, mb->user, folder, 0);
	rc = id ? insert(s, id, uid_r, msg, flags, "", date, error_r) : MP_DECLINED;
	if (id)
		folder_uidvalidity(s, id, uidvalidity_r);
	pthread_mutex_unlock(&s->lock);
	if (!id)
		*error_r = "no such folder";
	return rc;
}

/* Delete one message, or only hide it (negated folder id) while a
 * stream reads it. An SQLite result code. Lock held. */
static int
remove_message(struct store *s, long long folder, uint32_t uid)
{
	sqlite3_stmt *st = prepare(s, "SELECT id FROM messages WHERE folder = ?1 AND uid = ?2");
	long long rowid = 0;

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, uid);
	if (sqlite3_step(st) == SQLITE_ROW)
		rowid = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rowid && being_read(s, rowid) &&
	    exec(s, "UPDATE messages SET folder = -folder WHERE id = ?1", "i", rowid) == SQLITE_DONE)
		return SQLITE_DONE;
	return exec(s, "DELETE FROM messages WHERE id = ?1", "i", rowid);
}

static int
st_expunge(struct mp_folder *f, uint32_t uid, const char **error_r)
{
	struct store *s = f->mb->s;
	int rc, changed;

	pthread_mutex_lock(&s->lock);
	rc = remove_message(s, f->id, uid);
	changed = sqlite3_changes(s->db);
	if (changed)
		notify(s, f->id);
	pthread_mutex_unlock(&s->lock);
	if (rc != SQLITE_DONE)
		return db_error(s, error_r);
	return changed ? MP_OK : snapshot_expunge_gone(&f->snap, uid, error_r);
}

/* The stored flags, keywords and date of one message (malloc'd *kw_r);
 * 1 found, 0 not. Lock held. */
static int
stored_row(struct store *s, long long folder, uint32_t uid, uint32_t *flags_r,
    char **kw_r, time_t *date_r)
{
	sqlite3_stmt *st = prepare(s, "SELECT flags, keywords, internal_date FROM messages "
	    "WHERE folder = ?1 AND uid = ?2");
	int found;

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, uid);
	if ((found = sqlite3_step(st) == SQLITE_ROW)) {
		*flags_r = (uint32_t)sqlite3_column_int64(st, 0);
		*kw_r = strdup((const char *)sqlite3_column_text(st, 1));
		*date_r = (time_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return found && *kw_r != NULL;
}

static int
st_copy(struct mp_folder *f, uint32_t uid, const char *dest, int move,
    uint32_t *uid_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct store *s = f->mb->s;
	struct mp_reader r = { .struct_size = sizeof(r) };
	uint32_t flags = 0;
	char *kw = NULL;
	time_t date = 0;
	long long id;
	int rc;

	/* The mutex is recursive: the row, the stream and the insert are
	 * one step for every other session of this process. */
	pthread_mutex_lock(&s->lock);
	if (!stored_row(s, f->id, uid, &flags, &kw, &date) ||
	    st_message_open(f, uid, MP_PART_ALL, &r, error_r) != MP_OK) {
		pthread_mutex_unlock(&s->lock);
		free(kw);
		*error_r = "no such message";
		return MP_DECLINED;
	}
	*uid_r = 0;
	id = folder_id(s, f->mb->user, dest, 0);
	if (id == 0) {
		*error_r = "no such folder";	/* the destination, not the message */
		rc = MP_ERROR;
	} else if ((rc = insert(s, id, uid_r, &r, flags, kw, date, error_r)) == MP_OK)
		folder_uidvalidity(s, id, uidvalidity_r);
	st_message_close(&r);
	pthread_mutex_unlock(&s->lock);
	free(kw);
	if (rc == MP_DECLINED)
		rc = MP_ERROR;
	if (rc == MP_OK && move)
		rc = st_expunge(f, uid, error_r);
	return rc;
}

static int
st_lock(struct mp_folder *f, const char **error_r)
{
	struct store *s = f->mb->s;
	int rc = MP_OK;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nlocked; i++)
		if (s->locked[i] == f->id && !f->holds_lock)
			rc = MP_DECLINED;
	if (rc == MP_OK && !f->holds_lock) {
		if (s->nlocked == MAX_LOCKS)
			rc = MP_TEMPFAIL;
		else
			s->locked[s->nlocked++] = f->id;
		f->holds_lock = rc == MP_OK;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc != MP_OK)
		*error_r = "mailbox is locked by another session";
	return rc;
}

/* An eventfd written whenever mail is added to this folder in this
 * process (deliveries and other sessions all run in merpatid). */
static int
st_change_fd(struct mp_folder *f)
{
	if (f->event_fd < 0)
		f->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return f->event_fd;
}

static int
st_import(struct mp_mailbox *mb, const char *folder, uint32_t uidvalidity, uint32_t uid,
    struct mp_reader *msg, uint32_t flags, const char *keywords, time_t date,
    const char **error_r)
{
	struct store *s = mb->s;
	long long id;
	int rc, empty = 0;

	if (!store_folder_valid(folder) || uid == 0) {
		*error_r = "invalid folder name or UID";
		return MP_ERROR;
	}
	pthread_mutex_lock(&s->lock);
	id = folder_id(s, mb->user, folder, 1);
	sqlite3_stmt *st = prepare(s, "SELECT count(*) FROM messages WHERE folder = ?1");
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		empty = sqlite3_column_int64(st, 0) == 0;
	sqlite3_finalize(st);
	if (empty)
		exec(s, "UPDATE folders SET uidvalidity = ?2 WHERE id = ?1", "ii", id,
		    (long long)uidvalidity);
	rc = id ? insert(s, id, &uid, msg, flags, keywords, date, error_r) : db_error(s, error_r);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static const struct mp_store_ops store_ops = {
	.struct_size = sizeof(struct mp_store_ops),
	.open = st_open, .close = store_mailbox_close, .folders = st_folders,
	.folder_create = st_folder_create, .folder_delete = st_folder_delete,
	.folder_rename = st_folder_rename, .folder_subscribe = st_folder_subscribe,
	.folder_open = st_folder_open, .folder_close = st_folder_close,
	.folder_info = st_folder_info, .messages = st_messages,
	.message_open = st_message_open, .message_close = st_message_close,
	.flags_set = st_flags_set, .append = st_append, .copy = st_copy,
	.expunge = st_expunge, .lock = st_lock, .change_fd = st_change_fd,
	.import = st_import, .flags_change = st_flags_change,
	.folder_keywords = st_folder_keywords,
};

/* ---- local delivery -------------------------------------------------------------- */

static int
st_deliver(void *ctx, const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *msg, struct mp_status *status)
{
	struct store *s = ctx;
	struct store_delivery d;
	struct mp_mailbox *mb;
	const char *err = NULL;
	uint32_t uid = 0, uv = 0;
	int rc = st_open(s, rcpt, &mb, &err);

	store_delivery_init(&d, env, rcpt, msg);
	if (rc == MP_OK) {
		rc = st_append(mb, "INBOX", &d.reader, 0, time(NULL), &uid, &uv, &err);
		store_mailbox_close(mb);
	}
	return store_delivery_status(status, "store_sqlite", rc, err);
}

static const struct mp_deliver_ops deliver_ops = {
	.struct_size = sizeof(struct mp_deliver_ops),
	.deliver = st_deliver,
};

/* ---- module ------------------------------------------------------------------------- */

static const struct mp_option options[] = {
	MP_OPT("database", MP_OPT_PATH, offsetof(struct store, database), "mail.db", 0, 0),
	MP_OPT_END
};

static const char schema[] =
    "PRAGMA journal_mode = WAL;"
    "CREATE TABLE IF NOT EXISTS folders (id INTEGER PRIMARY KEY, user TEXT NOT NULL,"
    " name TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uidnext INTEGER NOT NULL,"
    " seen_uid INTEGER NOT NULL, subscribed INTEGER NOT NULL, UNIQUE (user, name));"
    "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY,"
    " folder INTEGER NOT NULL REFERENCES folders(id), uid INTEGER NOT NULL,"
    " flags INTEGER NOT NULL, keywords TEXT NOT NULL, internal_date INTEGER NOT NULL,"
    " size INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (folder, uid));"
    "CREATE TABLE IF NOT EXISTS uidvalidities (user TEXT PRIMARY KEY, last INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS folder_keywords (folder INTEGER NOT NULL,"
    " name TEXT NOT NULL COLLATE NOCASE, UNIQUE (folder, name));"
    /* hidden rows whose readers went away with a previous process */
    "DELETE FROM messages WHERE folder < 0;";

static void
st_fini(void *ctx)
{
	struct store *s = ctx;

	if (s->db)
		sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s->reading);
	s->host->free(s);
}

static int
st_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct store *s = host->alloc(sizeof(*s));
	int fd;

	if (s == NULL)
		return MP_ERROR;
	memset(s, 0, sizeof(*s));
	s->host = host;
	/* Recursive: copying streams one row's BLOB into another's insert. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (host->conf_options(conf, options, s, error_r) != MP_OK) {
		st_fini(s);
		return MP_ERROR;
	}
	fd = open(s->database, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	if (fd < 0 || sqlite3_open_v2(s->database, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err_buf, sizeof(err_buf), "modules.store_sqlite.database %s: %s",
		    s->database, s->db ? sqlite3_errmsg(s->db) : strerror(errno));
		*error_r = err_buf;
		st_fini(s);
		return MP_ERROR;
	}
	sqlite3_busy_timeout(s->db, 5000);
	*ctx_r = s;
	return MP_OK;
}

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "store_sqlite",
	.kinds = MP_KIND_STORE | MP_KIND_DELIVER,
	.init = st_init,
	.fini = st_fini,
	.deliver = &deliver_ops,
	.store = &store_ops,
};
