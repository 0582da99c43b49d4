/*
 * modules/store_pgsql/store_pgsql.c - the mailstore API (and local
 * delivery) on PostgreSQL, so that N merpati nodes serve one user base
 * from one database (docs/scale-out.md).
 *
 * Every operation takes a connection from the process's pool (pool.c)
 * for its duration and runs prepared statements (schema.c). The
 * concurrency contract (store.h) holds across nodes because every
 * guarantee is PostgreSQL's, not this process's: UIDs are assigned by
 * UPDATE folders ... RETURNING in the inserting transaction (the row
 * lock orders them per folder in commit order); flag changes read the
 * row FOR UPDATE and write it in one transaction; keywords are matched
 * in folder_keywords under its unique (folder, lower(name)) key; \Recent
 * is claimed by a compare-and-set UPDATE of folders.seen_uid; an
 * expunged message keeps its chunks for an hour (schema.c), so a stream
 * opened before the expunge reads it whole; the POP3 lock is an advisory
 * lock held by a connection of its own, released explicitly at close or
 * by PostgreSQL when the node holding it dies. Changes notify every node
 * (listen.c), and count in folders.modseq, so an open folder re-reads
 * only what changed (refresh).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <merpati/util.h>

#include "pgsql.h"
#include "store_keywords.h"
#include "store_message.h"

#define KEYWORDS_MAX 256	/* keywords a folder may define (clients make them) */
#define POP3_LOCK_CLASS 0x6d70	/* advisory lock namespace ("mp") */

static _Thread_local char err_buf[512];

static int
say(const char **error_r, int rc, const char *text)
{
	*error_r = text;
	return rc;
}

/* Tell every node's IDLE that folder changed (at this transaction's
 * commit). 0 or -1. */
static int
notify(struct conn *c, long long folder)
{
	struct params p = { .n = 0 };
	char id[24];
	PGresult *res;

	snprintf(id, sizeof(id), "%lld", folder);
	p_text(&p, id);
	if ((res = run(c, Q_NOTIFY, &p, 0)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Run a statement whose result is not needed: 0, or -1. */
static int
run_only(struct conn *c, enum stmt q, const struct params *p)
{
	PGresult *res = run(c, q, p, 0);

	PQclear(res);
	return res ? 0 : -1;
}

/* Count a change of folder (an expunge when expunge) in this
 * transaction, taking the folder row's lock before any message row's
 * (schema.c); modseq (24 octets) gets the new count. 0 or -1. */
static int
bump(struct conn *c, long long folder, int expunge, char *modseq)
{
	struct params p = { .n = 0 };
	PGresult *res;

	p_int(&p, folder);
	p_int(&p, expunge);
	if ((res = run(c, Q_BUMP, &p, 0)) == NULL)
		return -1;
	snprintf(modseq, 24, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "0");
	PQclear(res);
	return 0;
}

/* *id_r = the folder's id (0 when absent and !create). 0 or -1. */
static int
folder_lookup(struct conn *c, const char *user, const char *name, int create,
    long long *id_r)
{
	struct params p = { .n = 0 };
	PGresult *res;

	p_text(&p, user);
	p_text(&p, store_folder_canonical(name));
	for (int pass = 0; pass < 2; pass++) {
		if ((res = run(c, Q_FOLDER_ID, &p, 0)) == NULL)
			return -1;
		*id_r = PQntuples(res) ? col_int(res, 0, 0) : 0;
		PQclear(res);
		if (*id_r || !create || pass)
			return 0;
		struct params n = { .n = 0 };
		p_text(&n, user);
		p_text(&n, store_folder_canonical(name));
		p_int(&n, (long long)time(NULL));	/* a fresh UIDVALIDITY */
		if ((res = run(c, Q_FOLDER_NEW, &n, 0)) == NULL)
			return -1;
		*id_r = PQntuples(res) ? col_int(res, 0, 0) : 0;
		PQclear(res);
		if (*id_r)	/* else another session made it: read it */
			return 0;
	}
	return 0;
}

/* ---- mailbox and folders -------------------------------------------------- */

static int
st_open(void *ctx, const char *user, struct mp_mailbox **mb_r, const char **error_r)
{
	struct store *s = ctx;
	struct mp_mailbox *mb;
	struct conn *c;
	long long id = 0;
	int rc;

	if (store_mailbox_new(s, user, &mb, error_r) != MP_OK)
		return MP_ERROR;
	if ((rc = pool_get(s, &c, error_r)) == MP_OK) {
		if (folder_lookup(c, mb->user, "INBOX", 1, &id) < 0)
			rc = pg_fail(s, c, NULL, error_r);
		pool_put(s, c);
	}
	if (rc != MP_OK) {
		store_mailbox_close(mb);
		return rc;
	}
	*mb_r = mb;
	return MP_OK;
}

/* The user's folders with their attributes; count or -1. */
static long
list_folders(struct conn *c, const char *user, struct store_folder_row **rows_r)
{
	struct params p = { .n = 0 };
	PGresult *res;
	struct store_folder_row *rows;
	int n;

	p_text(&p, user);
	if ((res = run(c, Q_FOLDERS, &p, 0)) == NULL)
		return -1;
	n = PQntuples(res);
	if ((rows = calloc((size_t)n + 1, sizeof(*rows))) == NULL) {
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		snprintf(rows[i].name, sizeof(rows[i].name), "%s", PQgetvalue(res, i, 0));
		rows[i].attrs = mp_special_use_flag(rows[i].name) |
		    (PQgetvalue(res, i, 1)[0] == 't' ? MP_FOLDER_SUBSCRIBED : 0);
	}
	PQclear(res);
	*rows_r = rows;
	return n;
}

static int
st_folders(struct mp_mailbox *mb, void (*each)(void *, const char *, unsigned),
    void *arg, const char **error_r)
{
	struct store *s = mb->s;
	struct store_folder_row *rows = NULL;
	struct conn *c;
	long n;
	int rc;

	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	n = list_folders(c, mb->user, &rows);
	if (n < 0)
		rc = pg_fail(s, c, NULL, error_r);
	pool_put(s, c);
	if (n > 0)
		store_folders_report(rows, (size_t)n, each, arg);
	free(rows);
	return rc;
}

static int
st_folder_create(struct mp_mailbox *mb, const char *name, const char **error_r)
{
	struct store *s = mb->s;
	struct conn *c;
	long long id = 0;
	int rc;

	if (!store_folder_valid(name))
		return say(error_r, MP_ERROR, "invalid folder name");
	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	if (folder_lookup(c, mb->user, name, 0, &id) < 0)
		rc = pg_fail(s, c, NULL, error_r);
	else if (id)
		rc = say(error_r, MP_DECLINED, "folder exists");
	else if (folder_lookup(c, mb->user, name, 1, &id) < 0)
		rc = pg_fail(s, c, NULL, error_r);
	pool_put(s, c);
	return rc;
}

static int
st_folder_delete(struct mp_mailbox *mb, const char *name, const char **error_r)
{
	struct store *s = mb->s;
	struct params p = { .n = 0 };
	struct conn *c;
	long long id = 0;
	int rc;

	if (strcasecmp(name, "INBOX") == 0)
		return say(error_r, MP_ERROR, "INBOX cannot be deleted");
	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	if (folder_lookup(c, mb->user, name, 0, &id) < 0)
		rc = pg_fail(s, c, NULL, error_r);
	else if (id == 0)
		rc = say(error_r, MP_DECLINED, "no such folder");
	else {	/* only this folder: "a/b" outlives "a"; its row locked
		 * before its messages' (schema.c: one lock order) */
		char modseq[24];
		p_int(&p, id);
		if (tx(c, "BEGIN") < 0 || bump(c, id, 1, modseq) < 0 ||
		    run_only(c, Q_FOLDER_DELETE, &p) < 0 ||
		    notify(c, id) < 0 || tx(c, "COMMIT") < 0)
			rc = pg_fail(s, c, NULL, error_r);
	}
	pool_put(s, c);
	return rc;
}

static int
st_folder_rename(struct mp_mailbox *mb, const char *from, const char *to,
    const char **error_r)
{
	struct store *s = mb->s;
	struct params p = { .n = 0 };
	struct conn *c;
	long long id = 0, taken = 0;
	int rc;

	if (strcasecmp(from, "INBOX") == 0 || !store_folder_valid(to))
		return say(error_r, MP_ERROR, "cannot rename to or from that name");
	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	p_text(&p, mb->user);
	p_text(&p, from);
	p_text(&p, to);
	if (folder_lookup(c, mb->user, from, 0, &id) < 0 ||
	    folder_lookup(c, mb->user, to, 0, &taken) < 0)
		rc = pg_fail(s, c, NULL, error_r);
	else if (id == 0)
		rc = say(error_r, MP_DECLINED, "no such folder");
	else if (taken)
		rc = say(error_r, MP_ERROR, "target folder exists");
	else if (run_only(c, Q_FOLDER_RENAME, &p) < 0)
		rc = strcmp(last_sqlstate(), "23505") == 0 ?
		    say(error_r, MP_ERROR, "target folder exists") : pg_fail(s, c, NULL, error_r);
	pool_put(s, c);
	return rc;
}

static int
st_folder_subscribe(struct mp_mailbox *mb, const char *name, int on,
    const char **error_r)
{
	struct store *s = mb->s;
	struct params p = { .n = 0 };
	struct conn *c;
	int rc;

	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	p_text(&p, mb->user);
	p_text(&p, store_folder_canonical(name));
	p_int(&p, on != 0);
	if (run_only(c, Q_SUBSCRIBE, &p) < 0)
		rc = pg_fail(s, c, NULL, error_r);
	pool_put(s, c);
	return rc;
}

/* ---- open folders ---------------------------------------------------------- */

struct claiming {
	struct mp_folder *f;
	struct conn *c;
};

/*
 * \Recent (store.h contract 5; snapshot_claim): the compare-and-set
 * that moves folders.seen_uid from seen to last unless another
 * claimant, on whichever node, moved it first. 1 won, 0 lost, -1 error.
 */
static int
claim_seen(void *arg, long long seen, uint32_t last)
{
	struct claiming *cl = arg;
	struct params p = { .n = 0 };
	PGresult *res;
	int won;

	p_int(&p, cl->f->id);
	p_int(&p, seen);
	p_int(&p, last);
	if ((res = run(cl->c, Q_CLAIM, &p, 0)) == NULL)
		return -1;
	won = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	return won;
}

/* Row `row` of a Q_MESSAGES / Q_CHANGES result, its keywords borrowed
 * from res. */
static struct mp_msg_info
row_message(PGresult *res, int row)
{
	return (struct mp_msg_info){
		.uid = (uint32_t)col_int(res, row, 0),
		.flags = (uint32_t)col_int(res, row, 1),
		.size = (uint64_t)col_int(res, row, 2),
		.internal_date = (time_t)col_int(res, row, 3),
		.keywords = PQgetvalue(res, row, 4),
	};
}

/* Take all rows of Q_MESSAGES as the snapshot; 0 or -1 (memory). */
static int
take_messages(struct mp_folder *f, PGresult *res)
{
	int rows = PQntuples(res);

	snapshot_clear(&f->snap);
	if (rows > 0 && snapshot_reserve(&f->snap, (size_t)rows) < 0)
		return -1;
	for (int r = 0; r < rows; r++) {
		struct mp_msg_info m = row_message(res, r);
		if (snapshot_put(&f->snap, f->snap.n, &m) < 0)
			return -1;
	}
	return 0;
}

/* Merge the rows of Q_CHANGES (UID order) into the snapshot; 0, -1
 * (memory) or 1: re-read everything (snapshot_merge). */
static int
merge_changes(struct mp_folder *f, PGresult *res)
{
	int rows = PQntuples(res), rc = 0;

	for (int r = 0; rc == 0 && r < rows; r++) {
		struct mp_msg_info m = row_message(res, r);
		rc = snapshot_merge(&f->snap, &m);
	}
	return rc;
}

/* Bring the snapshot from f->modseq up to date: only the changed rows
 * (incremental: the snapshot is whole and no message was expunged
 * since), else all. 0, -1 (database) or -2 (memory). */
static int
read_messages(struct mp_folder *f, struct conn *c, int incremental)
{
	struct params p = { .n = 0 };
	PGresult *res;
	int rc = 1;

	p_int(&p, f->id);
	if (incremental) {
		p_int(&p, f->modseq);
		if ((res = run(c, Q_CHANGES, &p, 0)) == NULL)
			return -1;
		rc = merge_changes(f, res);
		PQclear(res);
		p.n = 1;
	}
	if (rc > 0) {
		if ((res = run(c, Q_MESSAGES, &p, 0)) == NULL)
			return -1;
		rc = take_messages(f, res);
		PQclear(res);
	}
	return rc < 0 ? -2 : 0;
}

/*
 * Bring the folder's state and messages up to date (claim: see
 * snapshot_claim). folders.modseq tells whether anything changed since
 * the last read (schema.c): unchanged, one indexed row is all a command
 * costs. 0, -1 (database) or -2 (out of memory).
 */
static int
refresh(struct mp_folder *f, struct conn *c, int claim)
{
	struct params p = { .n = 0 };
	PGresult *res;
	struct claiming cl = { f, c };
	long long seen, modseq, expunges;
	uint32_t uidvalidity;
	int rc = 0;

	p_int(&p, f->id);
	if ((res = run(c, Q_FOLDER_STATE, &p, 0)) == NULL)
		return -1;
	if (PQntuples(res) != 1) {	/* deleted meanwhile: shows empty */
		PQclear(res);
		snapshot_clear(&f->snap);
		f->loaded = 0;
		return 0;
	}
	uidvalidity = (uint32_t)col_int(res, 0, 0);
	f->snap.uidnext = (uint32_t)col_int(res, 0, 1);
	seen = col_int(res, 0, 2);
	modseq = col_int(res, 0, 3);
	expunges = col_int(res, 0, 4);
	PQclear(res);
	if (!f->loaded || modseq != f->modseq || uidvalidity != f->snap.uidvalidity) {
		int incremental = f->loaded && uidvalidity == f->snap.uidvalidity &&
		    expunges == f->expunges;
		f->loaded = 0;	/* until the read below is whole */
		if ((rc = read_messages(f, c, incremental)) < 0) {
			snapshot_clear(&f->snap);
			return rc;
		}
		f->snap.uidvalidity = uidvalidity;
		f->modseq = modseq;
		f->expunges = expunges;
		f->loaded = 1;
	}
	if (snapshot_claim(&f->snap, seen, claim, claim_seen, &cl) < 0)
		return -1;
	snapshot_mark_recent(&f->snap);
	return 0;
}

/* The POP3 lock's advisory key of folder f, as "class, id" (see st_lock). */
static void
pop3_lock_key(const struct mp_folder *f, char *buf, size_t size)
{
	snprintf(buf, size, "%d, %d", POP3_LOCK_CLASS + (int)(f->id >> 31),
	    (int)(f->id & 0x7fffffff));
}

/* Release the POP3 lock and close its connection. The unlock is explicit
 * because PostgreSQL frees a closed connection's locks only when its
 * backend has exited, a moment after PQfinish returns: a client logging
 * in again at once would find the maildrop still in use. */
static void
pop3_unlock(struct mp_folder *f)
{
	char sql[96], key[48];

	if (f->lock_conn == NULL)
		return;
	pop3_lock_key(f, key, sizeof(key));
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%s)", key);
	PQclear(PQexec(f->lock_conn, sql));
	PQfinish(f->lock_conn);
	f->lock_conn = NULL;
}

static void st_folder_close(struct mp_folder *f);

/* Keep f on the list the listener wakes; 0 or -1. */
static int
register_open(struct store *s, struct mp_folder *f)
{
	struct mp_folder **grown;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if ((grown = mp_array_grow(s->open, &s->open_cap, s->nopen + 1, sizeof(*grown))) == NULL)
		rc = -1;
	else {
		s->open = grown;
		s->open[s->nopen++] = f;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int
st_folder_open(struct mp_mailbox *mb, const char *name, int read_only,
    struct mp_folder **f_r, const char **error_r)
{
	struct store *s = mb->s;
	struct mp_folder *f = calloc(1, sizeof(*f));
	struct conn *c;
	int rc, r;

	if (f == NULL)
		return say(error_r, MP_ERROR, "out of memory");
	f->mb = mb;
	f->snap.read_only = read_only;
	f->event_fd = -1;
	if ((rc = pool_get(s, &c, error_r)) != MP_OK) {
		free(f);
		return rc;
	}
	if (folder_lookup(c, mb->user, name, 0, &f->id) < 0)
		rc = pg_fail(s, c, NULL, error_r);
	else if (f->id == 0)
		rc = say(error_r, MP_DECLINED, "no such folder");
	else if ((r = refresh(f, c, 0)) < 0)
		rc = r == -1 ? pg_fail(s, c, NULL, error_r) : say(error_r, MP_ERROR, "out of memory");
	pool_put(s, c);
	if (rc == MP_OK && register_open(s, f) < 0)
		rc = say(error_r, MP_ERROR, "out of memory");
	if (rc != MP_OK) {
		snapshot_fini(&f->snap);
		free(f);
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
	for (size_t i = 0; i < s->nopen; i++)
		if (s->open[i] == f) {
			s->open[i] = s->open[--s->nopen];
			break;
		}
	pthread_mutex_unlock(&s->lock);
	pop3_unlock(f);
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
	struct conn *c;
	int rc, r;

	if ((rc = pool_get(s, &c, error_r)) == MP_OK) {
		if ((r = refresh(f, c, 1)) < 0)
			rc = r == -1 ? pg_fail(s, c, NULL, error_r) : say(error_r, MP_ERROR, "out of memory");
		pool_put(s, c);
	}
	*v_r = f->snap.info;
	*n_r = f->snap.n;
	return rc;
}

/* ---- message streams --------------------------------------------------------- */

/* Reads a message's chunk rows one at a time, each with a pooled
 * connection taken only for that row. */
struct body_reader {
	struct store *s;
	long long id;
	long long pos, end;	/* octets served, octets to serve */
	int seq;		/* next chunk row */
	unsigned char *buf;
	size_t blen, boff;	/* the current chunk */
};

/* Fetch chunk b->seq into b->buf; 0, or -1 (errno set). */
static int
next_chunk(struct body_reader *b)
{
	struct params p = { .n = 0 };
	const char *err = NULL;
	struct conn *c;
	PGresult *res;
	int len;

	if (pool_get(b->s, &c, &err) != MP_OK) {
		errno = EAGAIN;
		return -1;
	}
	p_int(&p, b->id);
	p_int(&p, b->seq);
	res = run(c, Q_CHUNK_READ, &p, 1);
	if (res == NULL || PQntuples(res) != 1 || (len = PQgetlength(res, 0, 0)) > CHUNK) {
		if (res == NULL)
			pg_fail(b->s, c, NULL, &err);
		PQclear(res);
		pool_put(b->s, c);
		errno = EIO;
		return -1;
	}
	memcpy(b->buf, PQgetvalue(res, 0, 0), (size_t)len);
	PQclear(res);
	pool_put(b->s, c);
	b->blen = (size_t)len;
	b->boff = 0;
	b->seq++;
	return 0;
}

static ssize_t
body_read(struct mp_reader *r, void *buf, size_t len)
{
	struct body_reader *b = r->priv;

	if (b->pos >= b->end)
		return 0;
	if (b->boff == b->blen && next_chunk(b) < 0)
		return -1;
	if (len > b->blen - b->boff)
		len = b->blen - b->boff;
	if ((long long)len > b->end - b->pos)
		len = (size_t)(b->end - b->pos);
	memcpy(buf, b->buf + b->boff, len);
	b->boff += len;
	b->pos += (long long)len;
	return (ssize_t)len;
}

static int
st_message_open(struct mp_folder *f, uint32_t uid, enum mp_msg_part part,
    struct mp_reader *r, const char **error_r)
{
	struct store *s = f->mb->s;
	struct body_reader *b = calloc(1, sizeof(*b));
	struct params p = { .n = 0 };
	struct conn *c;
	PGresult *res = NULL;
	int rc;

	if (b == NULL || (b->buf = malloc(CHUNK)) == NULL) {
		free(b);
		return say(error_r, MP_ERROR, "out of memory");
	}
	if ((rc = pool_get(s, &c, error_r)) == MP_OK) {
		p_int(&p, f->id);
		p_int(&p, uid);
		if ((res = run(c, Q_MSG_FIND, &p, 0)) == NULL)
			rc = pg_fail(s, c, NULL, error_r);
		else if (PQntuples(res) != 1)
			rc = say(error_r, MP_DECLINED, "no such message");
		else {
			b->id = col_int(res, 0, 0);
			b->end = col_int(res, 0, 1);
		}
		PQclear(res);
		pool_put(s, c);
	}
	if (rc != MP_OK) {
		free(b->buf);
		free(b);
		return rc;
	}
	b->s = s;
	r->read = body_read;
	r->priv = b;
	r->size = (off_t)b->end;
	if (part == MP_PART_HEADER) {
		long long h = store_header_length(r, b->end);
		b->pos = b->seq = 0;
		b->blen = b->boff = 0;
		b->end = h;
		r->size = -1;
	}
	return MP_OK;
}

static void
st_message_close(struct mp_reader *r)
{
	struct body_reader *b = r->priv;

	if (b) {
		free(b->buf);
		free(b);
	}
	r->priv = NULL;
}

/* ---- keywords (store.h contract 4) ---- */

struct spelling {
	struct conn *c;
	long long folder;
};

/* store_spelling_fn on folder_keywords, whose unique (folder,
 * lower(name)) key makes the first spelling win on every node. */
static int
folder_spelling(void *arg, char *word, size_t size, const char **why)
{
	struct spelling *sp = arg;
	struct params p = { .n = 0 };
	PGresult *res;

	p_int(&p, sp->folder);
	p_text(&p, word);
	for (int pass = 0; pass < 2; pass++) {
		if ((res = run(sp->c, Q_KW_FIND, &p, 0)) == NULL)
			return -1;
		if (PQntuples(res) == 1) {
			snprintf(word, size, "%s", PQgetvalue(res, 0, 0));
			PQclear(res);
			return 0;
		}
		PQclear(res);
		if (pass)
			break;
		struct params q = { .n = 0 };
		p_int(&q, sp->folder);
		if ((res = run(sp->c, Q_KW_COUNT, &q, 0)) == NULL)
			return -1;
		long long count = col_int(res, 0, 0);
		PQclear(res);
		if (count >= KEYWORDS_MAX) {
			*why = "too many keywords in this folder";
			return -2;
		}
		if (run_only(sp->c, Q_KW_ADD, &p) < 0)
			return -1;
	}
	*why = "cannot record keyword";
	return -2;
}

/* current changed by how/given, in the folder's spelling (malloc'd
 * *kw_r); 0, -1 (database) or -2 (refused or no memory, *why). */
static int
apply_keywords(struct conn *c, long long folder, const char *current,
    enum mp_flags_how how, const char *given, char **kw_r, const char **why)
{
	struct spelling sp = { c, folder };

	return store_keywords_apply(current, how, given, folder_spelling, &sp, kw_r, why);
}

static int
st_folder_keywords(struct mp_folder *f, const char **keywords_r, const char **error_r)
{
	struct store *s = f->mb->s;
	struct params p = { .n = 0 };
	struct conn *c;
	PGresult *res;
	char *out = strdup("");
	int rc;

	if (out == NULL)
		return say(error_r, MP_ERROR, "out of memory");
	if ((rc = pool_get(s, &c, error_r)) != MP_OK) {
		free(out);
		return rc;
	}
	p_int(&p, f->id);
	if ((res = run(c, Q_KW_LIST, &p, 0)) == NULL)
		rc = pg_fail(s, c, NULL, error_r);
	for (int i = 0; res && out && i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		if (mp_words_add(&out, name, strlen(name)) < 0) {
			free(out);
			out = NULL;
		}
	}
	PQclear(res);
	pool_put(s, c);
	if (out == NULL)
		rc = say(error_r, MP_ERROR, "out of memory");
	*keywords_r = snapshot_result(&f->snap, out);
	return rc;
}

/* ---- changes ------------------------------------------------------------------ */

/* A keyword step's failure as a store result; the transaction rolled back. */
static int
keyword_fail(struct store *s, struct conn *c, int k, const char *why, const char **error_r)
{
	if (k == -1)
		return pg_fail(s, c, NULL, error_r);
	tx(c, "ROLLBACK");
	return say(error_r, MP_ERROR, why);
}

/* Read the stored row FOR UPDATE, change it, write it: one transaction
 * (store.h contract 3). MP_DECLINED when the UID is gone. */
static int
change_row(struct store *s, struct conn *c, long long folder, uint32_t uid,
    enum mp_flags_how how, uint32_t flags, const char *keywords, uint32_t *flags_r,
    char **kw_r, const char **error_r)
{
	struct params p = { .n = 0 };
	const char *why = NULL;
	char now[12];
	PGresult *res;
	int k;

	char modseq[24];

	if (tx(c, "BEGIN") < 0 || bump(c, folder, 0, modseq) < 0)
		return pg_fail(s, c, NULL, error_r);
	p_int(&p, folder);
	p_int(&p, uid);
	if ((res = run(c, Q_FLAGS_GET, &p, 0)) == NULL)
		return pg_fail(s, c, NULL, error_r);
	if (PQntuples(res) != 1) {
		PQclear(res);
		tx(c, "ROLLBACK");
		return say(error_r, MP_DECLINED, "no such message");
	}
	*flags_r = mp_flags_apply((uint32_t)col_int(res, 0, 0), how, flags);
	if (how == MP_FLAGS_REPLACE || (keywords && keywords[0]))
		k = apply_keywords(c, folder, PQgetvalue(res, 0, 1), how, keywords, kw_r, &why);
	else
		k = (*kw_r = strdup(PQgetvalue(res, 0, 1))) ? 0 : -2;
	PQclear(res);
	if (k < 0)
		return keyword_fail(s, c, k, why ? why : "out of memory", error_r);
	snprintf(now, sizeof(now), "%u", *flags_r);
	p_text(&p, now);
	p_text(&p, *kw_r);
	p_text(&p, modseq);
	if (run_only(c, Q_FLAGS_PUT, &p) < 0 || notify(c, folder) < 0 || tx(c, "COMMIT") < 0) {
		free(*kw_r);
		*kw_r = NULL;
		return pg_fail(s, c, NULL, error_r);
	}
	return MP_OK;
}

static int
st_flags_change(struct mp_folder *f, uint32_t uid, enum mp_flags_how how,
    uint32_t flags, const char *keywords, uint32_t *flags_r,
    const char **keywords_r, const char **error_r)
{
	struct store *s = f->mb->s;
	struct conn *c;
	uint32_t now = 0;
	char *kw = NULL;
	int rc;

	if (f->snap.read_only)
		return say(error_r, MP_ERROR, "folder is read-only");
	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	rc = change_row(s, c, f->id, uid, how, flags, keywords, &now, &kw, error_r);
	pool_put(s, c);
	if (rc != MP_OK)
		return rc;
	snapshot_flags_changed(&f->snap, uid, now, kw, flags_r, keywords_r);
	return MP_OK;
}

static int
st_flags_set(struct mp_folder *f, uint32_t uid, uint32_t flags, const char *keywords,
    const char **error_r)
{
	return st_flags_change(f, uid, MP_FLAGS_REPLACE, flags, keywords, NULL, NULL, error_r);
}

/* ---- the one save path (store.h contract 6) ---------------------------------- */

/* What insert() stores and where its body comes from. */
struct saving {
	long long folder;
	uint32_t uid;		/* 0: the next one */
	struct mp_reader *msg;	/* the body, CRLF or LF; or */
	long long copy_of;	/* the message whose chunks are copied */
	long long copy_size;
	uint32_t flags;
	const char *keywords;
	time_t date;
	const char *delivery_key;	/* NULL, or unique per queued delivery */
};

/* Write one chunk row; 0 or -1. */
static int
write_chunk(struct conn *c, long long id, int seq, const void *data, size_t len)
{
	struct params p = { .n = 0 };

	p_int(&p, id);
	p_int(&p, seq);
	p_blob(&p, data, len);
	return run_only(c, Q_CHUNK_WRITE, &p);
}

/* Stream msg into chunk rows of message id with CRLF line ends; the
 * wire size, or -1 (database), -2 (reading msg failed or no memory). */
static long long
store_body(struct conn *c, long long id, struct mp_reader *msg)
{
	char *in = malloc(CHUNK / 2), *acc = malloc(2 * CHUNK);
	size_t alen = 0;
	long long size = 0;
	int seq = 0, rc = 0;
	char prev = 0;
	ssize_t n = 0;

	if (in == NULL || acc == NULL)
		rc = -2;
	while (rc == 0 && (n = msg->read(msg, in, CHUNK / 2)) > 0) {
		/* alen < CHUNK here and CHUNK / 2 octets grow to at most CHUNK */
		alen += store_crlf(in, (size_t)n, acc + alen, &prev);
		while (rc == 0 && alen >= CHUNK) {
			rc = write_chunk(c, id, seq++, acc, CHUNK);
			memmove(acc, acc + CHUNK, alen - CHUNK);
			alen -= CHUNK;
			size += CHUNK;
		}
	}
	if (rc == 0 && n < 0)
		rc = -2;
	if (rc == 0 && alen > 0) {
		rc = write_chunk(c, id, seq, acc, alen);
		size += (long long)alen;
	}
	free(in);
	free(acc);
	return rc < 0 ? rc : size;
}

/* Stage the row, fill its body, place it in the folder with its UID.
 * Inside insert()'s transaction: 0, -1 (database), -2 (reading the
 * body failed), -3 (the UID is taken). */
static int
insert_rows(struct conn *c, struct saving *sv, const char *kw, uint32_t *uv_r)
{
	struct params p = { .n = 0 };
	PGresult *res;
	long long id, size;
	char flags[12];

	snprintf(flags, sizeof(flags), "%u", sv->flags & ~(uint32_t)MP_FLAG_RECENT);
	p_text(&p, flags);
	p_text(&p, kw);
	p_int(&p, (long long)(sv->date > 0 ? sv->date : time(NULL)));
	p_text(&p, sv->delivery_key);
	if ((res = run(c, Q_MSG_STAGE, &p, 0)) == NULL)
		return -1;
	id = col_int(res, 0, 0);
	PQclear(res);
	if (sv->msg)
		size = store_body(c, id, sv->msg);
	else {
		struct params q = { .n = 0 };
		p_int(&q, sv->copy_of);
		p_int(&q, id);
		size = run_only(c, Q_CHUNKS_COPY, &q) < 0 ? -1 : sv->copy_size;
	}
	if (size < 0)
		return (int)size;
	p.n = 0;
	p_int(&p, sv->folder);
	p_int(&p, id);
	p_int(&p, size);
	if (sv->uid)
		p_int(&p, sv->uid);
	if ((res = run(c, sv->uid ? Q_PLACE_AT : Q_PLACE_NEXT, &p, 0)) == NULL)
		return strcmp(last_sqlstate(), "23505") == 0 ? -3 : -1;
	if (PQntuples(res) != 1) {	/* the folder went away meanwhile */
		PQclear(res);
		return -1;
	}
	sv->uid = (uint32_t)col_int(res, 0, 0);
	*uv_r = (uint32_t)col_int(res, 0, 1);
	PQclear(res);
	return 0;
}

/* Save one message in one transaction (the one save path of this
 * store): MP_OK with *uid_r and *uv_r, MP_DECLINED when sv->uid is
 * taken, MP_TEMPFAIL when the database failed, MP_ERROR otherwise. */
static int
insert(struct store *s, struct conn *c, struct saving *sv, uint32_t *uid_r, uint32_t *uv_r,
    const char **error_r)
{
	const char *why = NULL;
	char *kw = NULL;
	int k;

	if (tx(c, "BEGIN") < 0)
		return pg_fail(s, c, NULL, error_r);
	if ((k = apply_keywords(c, sv->folder, "", MP_FLAGS_ADD, sv->keywords, &kw, &why)) < 0)
		return keyword_fail(s, c, k, why, error_r);
	k = insert_rows(c, sv, kw, uv_r);
	free(kw);
	if (k == 0 && (notify(c, sv->folder) < 0 || tx(c, "COMMIT") < 0))
		k = -1;
	if (k == -1)
		return pg_fail(s, c, NULL, error_r);
	if (k < 0) {
		tx(c, "ROLLBACK");
		return say(error_r, k == -3 ? MP_DECLINED : MP_TEMPFAIL,
		    k == -3 ? "UID already taken" : "cannot read the message");
	}
	*uid_r = sv->uid;
	return MP_OK;
}

static int
st_append(struct mp_mailbox *mb, const char *folder, struct mp_reader *msg,
    uint32_t flags, time_t date, uint32_t *uid_r, uint32_t *uidvalidity_r,
    const char **error_r)
{
	struct store *s = mb->s;
	struct saving sv = { .msg = msg, .flags = flags, .keywords = "", .date = date };
	struct conn *c;
	int rc;

	*uid_r = 0;
	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	if (folder_lookup(c, mb->user, folder, 0, &sv.folder) < 0)
		rc = pg_fail(s, c, NULL, error_r);
	else if (sv.folder == 0)
		rc = say(error_r, MP_DECLINED, "no such folder");
	else
		rc = insert(s, c, &sv, uid_r, uidvalidity_r, error_r);
	pool_put(s, c);
	return rc;
}

static int
st_expunge(struct mp_folder *f, uint32_t uid, const char **error_r)
{
	static _Atomic unsigned expunges;
	struct store *s = f->mb->s;
	struct params p = { .n = 0 };
	struct conn *c;
	PGresult *res;
	char modseq[24];
	int rc, changed = 0;

	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	p_int(&p, f->id);
	p_int(&p, uid);
	if (tx(c, "BEGIN") < 0 || bump(c, f->id, 1, modseq) < 0 ||
	    (res = run(c, Q_EXPUNGE, &p, 0)) == NULL)
		rc = pg_fail(s, c, NULL, error_r);
	else {	/* nothing expunged: the count goes back too */
		changed = strcmp(PQcmdTuples(res), "0") != 0;
		PQclear(res);
		if ((changed && notify(c, f->id) < 0) || tx(c, changed ? "COMMIT" : "ROLLBACK") < 0)
			rc = pg_fail(s, c, NULL, error_r);
	}
	if (rc == MP_OK && ++expunges % 256 == 0)
		run_only(c, Q_PURGE, NULL);	/* long-expunged rows (schema.c) */
	pool_put(s, c);
	return rc != MP_OK || changed ? rc : snapshot_expunge_gone(&f->snap, uid, error_r);
}

static int
st_copy(struct mp_folder *f, uint32_t uid, const char *dest, int move,
    uint32_t *uid_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct store *s = f->mb->s;
	struct params p = { .n = 0 };
	struct saving sv = { .folder = 0 };
	struct conn *c;
	PGresult *res;
	int rc;

	*uid_r = 0;
	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	p_int(&p, f->id);
	p_int(&p, uid);
	if ((res = run(c, Q_MSG_ROW, &p, 0)) == NULL)
		rc = pg_fail(s, c, NULL, error_r);
	else if (PQntuples(res) != 1)
		rc = say(error_r, MP_DECLINED, "no such message");
	else if (folder_lookup(c, f->mb->user, dest, 0, &sv.folder) < 0)
		rc = pg_fail(s, c, NULL, error_r);
	else if (sv.folder == 0)
		rc = say(error_r, MP_ERROR, "no such folder");	/* the destination */
	else {
		sv.copy_of = col_int(res, 0, 0);
		sv.flags = (uint32_t)col_int(res, 0, 1);
		sv.keywords = PQgetvalue(res, 0, 2);
		sv.date = (time_t)col_int(res, 0, 3);
		sv.copy_size = col_int(res, 0, 4);
		if ((rc = insert(s, c, &sv, uid_r, uidvalidity_r, error_r)) == MP_DECLINED)
			rc = MP_ERROR;
	}
	PQclear(res);
	pool_put(s, c);
	if (rc == MP_OK && move)
		rc = st_expunge(f, uid, error_r);
	return rc;
}

/* POP3's maildrop lock (RFC 1939 8): an advisory lock on a connection
 * of the folder's own, so that it holds across nodes and goes with the
 * node that held it. */
static int
st_lock(struct mp_folder *f, const char **error_r)
{
	struct store *s = f->mb->s;
	char sql[128], key[48];
	PGresult *res;
	int got;

	if (f->lock_conn)
		return MP_OK;
	if ((f->lock_conn = pg_connect(s, error_r)) == NULL)
		return MP_TEMPFAIL;
	pop3_lock_key(f, key, sizeof(key));
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%s)", key);
	res = PQexec(f->lock_conn, sql);
	if (!run_ok(res)) {
		PQclear(res);
		PQfinish(f->lock_conn);
		f->lock_conn = NULL;
		return say(error_r, MP_TEMPFAIL, "mail database: cannot take the mailbox lock");
	}
	got = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (got)
		return MP_OK;
	PQfinish(f->lock_conn);
	f->lock_conn = NULL;
	return say(error_r, MP_DECLINED, "mailbox is locked by another session");
}

/* An eventfd the LISTEN thread writes when any node changes the folder. */
static int
st_change_fd(struct mp_folder *f)
{
	struct store *s = f->mb->s;

	pthread_mutex_lock(&s->lock);
	if (f->event_fd < 0)
		f->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (f->event_fd >= 0 && listener_start(s) < 0) {
		close(f->event_fd);
		f->event_fd = -1;
	}
	pthread_mutex_unlock(&s->lock);
	return f->event_fd;
}

static int
st_import(struct mp_mailbox *mb, const char *folder, uint32_t uidvalidity, uint32_t uid,
    struct mp_reader *msg, uint32_t flags, const char *keywords, time_t date,
    const char **error_r)
{
	struct store *s = mb->s;
	struct saving sv = { .uid = uid, .msg = msg, .flags = flags, .keywords = keywords,
	    .date = date };
	struct params p = { .n = 0 };
	struct conn *c;
	uint32_t uid_r, uv_r;
	int rc;

	if (!store_folder_valid(folder) || uid == 0)
		return say(error_r, MP_ERROR, "invalid folder name or UID");
	if ((rc = pool_get(s, &c, error_r)) != MP_OK)
		return rc;
	if (folder_lookup(c, mb->user, folder, 1, &sv.folder) < 0 || sv.folder == 0)
		rc = pg_fail(s, c, NULL, error_r);
	else {
		p_int(&p, sv.folder);
		p_int(&p, uidvalidity);	/* only while the folder is empty */
		rc = run_only(c, Q_UIDVALIDITY_SET, &p) < 0 ? pg_fail(s, c, NULL, error_r) :
		    insert(s, c, &sv, &uid_r, &uv_r, error_r);
	}
	pool_put(s, c);
	return rc;
}

/* `merpati store init`: create or upgrade the tables (schema.c). */
static int
st_storage_init(void *ctx, uint32_t *version_r, const char **error_r)
{
	struct store *s = ctx;
	PGconn *pg = pg_connect(s, error_r);
	int version = 0, rc;

	if (pg == NULL)
		return MP_TEMPFAIL;
	rc = schema_init(pg, &version, error_r);
	PQfinish(pg);
	*version_r = (uint32_t)version;
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
	.folder_keywords = st_folder_keywords, .storage_init = st_storage_init,
};

/* ---- local delivery -------------------------------------------------------------- */

/* Has this queued delivery been stored already (its COMMIT went through
 * but its answer was lost, so the queue tries again)? 1, 0 or -1. */
static int
delivered(struct conn *c, const char *key)
{
	struct params p = { .n = 0 };
	PGresult *res;
	int found;

	p_text(&p, key);
	if ((res = run(c, Q_DELIVERED, &p, 0)) == NULL)
		return -1;
	found = PQntuples(res) > 0;
	PQclear(res);
	return found;
}

/* Deliver into rcpt's INBOX, once per queue id and recipient. */
static int
deliver_once(struct store *s, const char *rcpt, const char *key, struct mp_reader *msg,
    const char **error_r)
{
	struct saving sv = { .msg = msg, .keywords = "", .date = time(NULL), .delivery_key = key };
	struct mp_mailbox *mb;
	struct conn *c;
	uint32_t uid, uv;
	int rc, done;

	if ((rc = st_open(s, rcpt, &mb, error_r)) != MP_OK)
		return rc;
	if ((rc = pool_get(s, &c, error_r)) == MP_OK) {
		if ((done = key[0] ? delivered(c, key) : 0) < 0 ||
		    folder_lookup(c, mb->user, "INBOX", 1, &sv.folder) < 0)
			rc = pg_fail(s, c, NULL, error_r);
		else if (!done)
			rc = insert(s, c, &sv, &uid, &uv, error_r);
		pool_put(s, c);
	}
	store_mailbox_close(mb);
	return rc;
}

static int
st_deliver(void *ctx, const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *msg, struct mp_status *status)
{
	struct store_delivery d;
	char key[600];
	const char *err = NULL;

	store_delivery_init(&d, env, rcpt, msg);
	snprintf(key, sizeof(key), "%s", "");
	if (env->queue_id && env->queue_id[0])
		snprintf(key, sizeof(key), "%s/%ld/%s", env->queue_id, (long)env->arrival, rcpt);
	return store_delivery_status(status, "store_pgsql",
	    deliver_once(ctx, rcpt, key, &d.reader, &err), err);
}

static const struct mp_deliver_ops deliver_ops = {
	.struct_size = sizeof(struct mp_deliver_ops),
	.deliver = st_deliver,
};

/* ---- module ------------------------------------------------------------------------- */

static const struct mp_option options[] = {
	MP_OPT("conninfo", MP_OPT_STRING, offsetof(struct store, conninfo), "", 0, 0),
	MP_OPT("password_file", MP_OPT_PATH, offsetof(struct store, password_file), "", 0, 0),
	MP_OPT("pool_size", MP_OPT_INT, offsetof(struct store, pool_size), "4", 1, 200),
	MP_OPT_END
};

static void
st_fini(void *ctx)
{
	struct store *s = ctx;

	listener_stop(s);
	pool_fini(s);
	free(s->open);
	if (s->password) {
		memset(s->password, 0, strlen(s->password));
		free(s->password);
	}
	pthread_cond_destroy(&s->freed);
	pthread_mutex_destroy(&s->lock);
	s->host->free(s);
}

/* The password file's first line, read at init (before privileges go). */
static int
read_password(struct store *s, const char **error_r)
{
	char line[1024];
	FILE *fp;

	if (s->password_file == NULL || s->password_file[0] == '\0')
		return 0;
	if ((fp = fopen(s->password_file, "re")) == NULL) {
		snprintf(err_buf, sizeof(err_buf), "modules.store_pgsql.password_file %s: %s",
		    s->password_file, strerror(errno));
		*error_r = err_buf;
		return -1;
	}
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	s->password = strdup(line);
	memset(line, 0, sizeof(line));
	return s->password ? 0 : -1;
}

static int
check_conninfo(const char *conninfo, const char **error_r)
{
	char *why = NULL;
	PQconninfoOption *opts;

	if (conninfo == NULL || conninfo[0] == '\0') {
		*error_r = "modules.store_pgsql.conninfo is required";
		return -1;
	}
	if ((opts = PQconninfoParse(conninfo, &why)) == NULL) {
		snprintf(err_buf, sizeof(err_buf), "modules.store_pgsql.conninfo: %s",
		    why ? why : "cannot parse");
		err_buf[strcspn(err_buf, "\n")] = '\0';
		*error_r = err_buf;
		PQfreemem(why);
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

static int
st_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct store *s = host->alloc(sizeof(*s));

	if (s == NULL)
		return MP_ERROR;
	memset(s, 0, sizeof(*s));
	s->host = host;
	s->stop_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->freed, NULL);
	if (host->conf_options(conf, options, s, error_r) != MP_OK ||
	    check_conninfo(s->conninfo, error_r) < 0 || read_password(s, error_r) < 0 ||
	    (s->pool = calloc((size_t)s->pool_size, sizeof(*s->pool))) == NULL) {
		st_fini(s);
		return MP_ERROR;
	}
	*ctx_r = s;	/* connections are made on first use */
	return MP_OK;
}

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "store_pgsql",
	.kinds = MP_KIND_STORE | MP_KIND_DELIVER,
	.init = st_init,
	.fini = st_fini,
	.deliver = &deliver_ops,
	.store = &store_ops,
};
