/*
 * modules/store_pgsql/schema.c - store_pgsql's tables, their versions
 * and its prepared statements.
 *
 * merpati_schema (component, version) records which migrations ran: the
 * store's row is component 'store' (the directory, auth_pgsql, keeps its
 * own row in the same table). schema_setup runs under a transaction-level
 * advisory lock, so nodes starting together migrate once. A fresh
 * database is set up by the first connection; an older schema is only
 * upgraded by `merpati store init` (upgrade = 1), so a new node never
 * changes the tables under older ones by surprise (docs/scale-out.md).
 *
 * Bodies live in message_chunks, CHUNK octets a row, so a message is
 * written and read a chunk at a time. A message row is staged (folder
 * NULL) while its chunks go in, then placed in its folder with its UID
 * by one UPDATE that takes the folder row's lock for the rest of the
 * transaction: UIDs are assigned in commit order per folder (store.h
 * contract 1) across every node, and the lock is held only for the end
 * of the transaction, not while the body streams in. Expunged messages
 * keep their chunks (folder negated, expunged_at set) for an hour, so a
 * reader on any node that opened one first still reads it whole
 * (contract 2).
 *
 * folders.modseq counts the folder's changes (a message placed, its
 * flags written, one expunged), folders.expunges its expunges; a
 * message row carries the modseq of its last change. Every writer bumps
 * the folder row first (Q_BUMP, or the placing UPDATE) in its own
 * transaction, so the row lock orders the changes: a reader that sees
 * modseq N sees every change up to N committed, and re-reads only rows
 * above the N it saw last (or everything after an expunge). Taking the
 * folder row before any message row another transaction could lock (a
 * placed message's row is its own, staged) keeps one lock order: no
 * deadlock between flag changes, expunges and folder deletes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"

static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE folders (id bigserial PRIMARY KEY, username text NOT NULL,"
	" name text NOT NULL, uidvalidity bigint NOT NULL, uidnext bigint NOT NULL,"
	" seen_uid bigint NOT NULL DEFAULT 0, subscribed boolean NOT NULL DEFAULT false,"
	" UNIQUE (username, name));"
	"CREATE TABLE uidvalidities (username text PRIMARY KEY, last bigint NOT NULL);"
	"CREATE TABLE messages (id bigserial PRIMARY KEY, folder bigint, uid bigint,"
	" flags integer NOT NULL, keywords text NOT NULL, internal_date bigint NOT NULL,"
	" size bigint NOT NULL, expunged_at timestamptz, delivery_key text UNIQUE);"
	/* a UID names one message of its folder; expunged rows (folder
	 * negated) may repeat one that a migration imported again */
	"CREATE UNIQUE INDEX messages_uid ON messages (folder, uid) WHERE expunged_at IS NULL;"
	"CREATE INDEX messages_folder ON messages (folder, uid);"
	"CREATE INDEX messages_expunged ON messages (expunged_at) WHERE expunged_at IS NOT NULL;"
	"CREATE TABLE message_chunks (message bigint NOT NULL REFERENCES messages (id)"
	" ON DELETE CASCADE, seq integer NOT NULL, data bytea NOT NULL,"
	" PRIMARY KEY (message, seq));"
	"CREATE TABLE folder_keywords (folder bigint NOT NULL, name text NOT NULL,"
	" lname text NOT NULL, ord bigserial, UNIQUE (folder, lname));",
	/* 2: change counters, so an open folder re-reads only what changed
	 * (store_pgsql.c refresh); rows from version 1 start at 0 */
	"ALTER TABLE folders ADD COLUMN modseq bigint NOT NULL DEFAULT 0,"
	" ADD COLUMN expunges bigint NOT NULL DEFAULT 0;"
	"ALTER TABLE messages ADD COLUMN modseq bigint NOT NULL DEFAULT 0;"
	"CREATE INDEX messages_modseq ON messages (folder, modseq);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const sql[Q_COUNT_] = {
	[Q_FOLDER_ID] = "SELECT id FROM folders WHERE username = $1 AND name = $2",
	[Q_FOLDER_NEW] = "WITH uv AS (INSERT INTO uidvalidities (username, last)"
	    " VALUES ($1, $3::bigint) ON CONFLICT (username) DO UPDATE"
	    " SET last = GREATEST(EXCLUDED.last, uidvalidities.last + 1) RETURNING last)"
	    " INSERT INTO folders (username, name, uidvalidity, uidnext)"
	    " SELECT $1, $2, last, 1 FROM uv ON CONFLICT (username, name) DO NOTHING RETURNING id",
	[Q_FOLDERS] = "SELECT name, subscribed FROM folders WHERE username = $1"
	    " ORDER BY name <> 'INBOX', name COLLATE \"C\"",
	[Q_FOLDER_DELETE] = "WITH m AS (UPDATE messages SET folder = -folder, expunged_at = now()"
	    " WHERE folder = $1::bigint), k AS (DELETE FROM folder_keywords WHERE folder = $1::bigint)"
	    " DELETE FROM folders WHERE id = $1::bigint",
	[Q_FOLDER_RENAME] = "UPDATE folders SET name = $3 || substr(name, length($2) + 1)"
	    " WHERE username = $1 AND (name = $2 OR left(name, length($2) + 1) = $2 || '/')",
	[Q_SUBSCRIBE] = "UPDATE folders SET subscribed = $3::boolean WHERE username = $1 AND name = $2",
	[Q_FOLDER_STATE] = "SELECT uidvalidity, uidnext, seen_uid, modseq, expunges FROM folders"
	    " WHERE id = $1::bigint",
	[Q_CLAIM] = "UPDATE folders SET seen_uid = $3::bigint WHERE id = $1::bigint"
	    " AND seen_uid = $2::bigint",
	[Q_MESSAGES] = "SELECT uid, flags, size, internal_date, keywords FROM messages"
	    " WHERE folder = $1::bigint ORDER BY uid",
	[Q_CHANGES] = "SELECT uid, flags, size, internal_date, keywords FROM messages"
	    " WHERE folder = $1::bigint AND modseq > $2::bigint ORDER BY uid",
	[Q_BUMP] = "UPDATE folders SET modseq = modseq + 1, expunges = expunges + $2::bigint"
	    " WHERE id = $1::bigint RETURNING modseq",
	[Q_MSG_FIND] = "SELECT id, size FROM messages WHERE folder = $1::bigint AND uid = $2::bigint",
	[Q_CHUNK_READ] = "SELECT data FROM message_chunks WHERE message = $1::bigint"
	    " AND seq = $2::integer",
	[Q_CHUNK_WRITE] = "INSERT INTO message_chunks (message, seq, data)"
	    " VALUES ($1::bigint, $2::integer, $3::bytea)",
	[Q_MSG_STAGE] = "INSERT INTO messages (flags, keywords, internal_date, size, delivery_key)"
	    " VALUES ($1::integer, $2, $3::bigint, 0, $4) RETURNING id",
	[Q_PLACE_NEXT] = "WITH f AS (UPDATE folders SET uidnext = uidnext + 1, modseq = modseq + 1"
	    " WHERE id = $1::bigint RETURNING uidnext - 1 AS uid, uidvalidity, modseq)"
	    " UPDATE messages SET folder = $1::bigint, uid = f.uid, size = $3::bigint,"
	    " modseq = f.modseq FROM f WHERE messages.id = $2::bigint"
	    " RETURNING f.uid, f.uidvalidity",
	[Q_PLACE_AT] = "WITH f AS (UPDATE folders SET uidnext = GREATEST(uidnext, $4::bigint + 1),"
	    " modseq = modseq + 1 WHERE id = $1::bigint RETURNING uidvalidity, modseq)"
	    " UPDATE messages SET folder = $1::bigint, uid = $4::bigint, size = $3::bigint,"
	    " modseq = f.modseq FROM f WHERE messages.id = $2::bigint"
	    " RETURNING $4::bigint, f.uidvalidity",
	[Q_NOTIFY] = "SELECT pg_notify('" NOTIFY_CHANNEL "', $1)",
	[Q_FLAGS_GET] = "SELECT flags, keywords FROM messages WHERE folder = $1::bigint"
	    " AND uid = $2::bigint FOR UPDATE",
	[Q_FLAGS_PUT] = "UPDATE messages SET flags = $3::integer, keywords = $4, modseq = $5::bigint"
	    " WHERE folder = $1::bigint AND uid = $2::bigint",
	[Q_KW_FIND] = "SELECT name FROM folder_keywords WHERE folder = $1::bigint AND lname = lower($2)",
	[Q_KW_COUNT] = "SELECT count(*) FROM folder_keywords WHERE folder = $1::bigint",
	[Q_KW_ADD] = "INSERT INTO folder_keywords (folder, name, lname) VALUES ($1::bigint, $2,"
	    " lower($2)) ON CONFLICT (folder, lname) DO NOTHING",
	[Q_KW_LIST] = "SELECT name FROM folder_keywords WHERE folder = $1::bigint ORDER BY ord",
	[Q_EXPUNGE] = "UPDATE messages SET folder = -folder, expunged_at = now()"
	    " WHERE folder = $1::bigint AND uid = $2::bigint",
	[Q_PURGE] = "DELETE FROM messages WHERE expunged_at < now() - interval '1 hour'",
	[Q_MSG_ROW] = "SELECT id, flags, keywords, internal_date, size FROM messages"
	    " WHERE folder = $1::bigint AND uid = $2::bigint",
	[Q_CHUNKS_COPY] = "INSERT INTO message_chunks (message, seq, data)"
	    " SELECT $2::bigint, seq, data FROM message_chunks WHERE message = $1::bigint",
	[Q_UIDVALIDITY_SET] = "UPDATE folders SET uidvalidity = $2::bigint WHERE id = $1::bigint"
	    " AND NOT EXISTS (SELECT 1 FROM messages WHERE folder = $1::bigint)",
	[Q_DELIVERED] = "SELECT 1 FROM messages WHERE delivery_key = $1",
	[Q_MSG_COUNT] = "SELECT count(*) FROM messages WHERE folder = $1::bigint",
};

static _Thread_local char err_buf[512];

static int
fail(PGconn *pg, PGresult *res, const char *what, const char **error_r)
{
	snprintf(err_buf, sizeof(err_buf), "mail database schema: %s: %s", what,
	    res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res) : PQerrorMessage(pg));
	err_buf[strcspn(err_buf, "\n")] = '\0';
	*error_r = err_buf;
	PQclear(res);
	PQclear(PQexec(pg, "ROLLBACK"));
	return MP_ERROR;
}

static int
exec_ok(PGconn *pg, const char *cmd, PGresult **res_r)
{
	*res_r = PQexec(pg, cmd);
	return run_ok(*res_r);
}

/* The store's schema version in this database (0: none yet), or -1. */
static int
current_version(PGconn *pg, PGresult **res_r)
{
	int v = 0;

	if (!exec_ok(pg, "CREATE TABLE IF NOT EXISTS merpati_schema (component text PRIMARY KEY,"
	    " version integer NOT NULL)", res_r))
		return -1;
	PQclear(*res_r);
	if (!exec_ok(pg, "SELECT version FROM merpati_schema WHERE component = 'store'", res_r))
		return -1;
	if (PQntuples(*res_r) == 1)
		v = atoi(PQgetvalue(*res_r, 0, 0));
	PQclear(*res_r);
	*res_r = NULL;
	return v;
}

/* Create or upgrade the tables (see the top of this file). */
static int
migrate(PGconn *pg, int upgrade, const char **error_r)
{
	PGresult *res = NULL;
	char cmd[160];
	int v;

	if (!exec_ok(pg, "BEGIN", &res))
		return fail(pg, res, "begin", error_r);
	PQclear(res);
	if (!exec_ok(pg, "SELECT pg_advisory_xact_lock(hashtext('merpati_store_schema'))", &res))
		return fail(pg, res, "lock", error_r);
	PQclear(res);
	if ((v = current_version(pg, &res)) < 0)
		return fail(pg, res, "version table", error_r);
	if (v > SCHEMA_VERSION || (v > 0 && v < SCHEMA_VERSION && !upgrade)) {
		snprintf(err_buf, sizeof(err_buf), "mail database schema is version %d, this "
		    "store_pgsql uses %d%s", v, SCHEMA_VERSION,
		    v > SCHEMA_VERSION ? "" : ": run `merpati store init` to upgrade");
		*error_r = err_buf;
		PQclear(PQexec(pg, "ROLLBACK"));
		return MP_ERROR;
	}
	for (; v < SCHEMA_VERSION; v++)
		if (!exec_ok(pg, migrations[v], &res))
			return fail(pg, res, "migration", error_r);
		else
			PQclear(res);
	snprintf(cmd, sizeof(cmd), "INSERT INTO merpati_schema VALUES ('store', %d) ON CONFLICT"
	    " (component) DO UPDATE SET version = EXCLUDED.version", SCHEMA_VERSION);
	if (!exec_ok(pg, cmd, &res))
		return fail(pg, res, "version", error_r);
	PQclear(res);
	if (!exec_ok(pg, "COMMIT", &res))
		return fail(pg, res, "commit", error_r);
	PQclear(res);
	return MP_OK;
}

/* Checked once per process by the pool: create a fresh schema, refuse an
 * old or newer one; and drop long-expunged messages. */
int
schema_setup(struct store *s, PGconn *pg, const char **error_r)
{
	(void)s;
	if (migrate(pg, 0, error_r) != MP_OK)
		return MP_ERROR;
	PQclear(PQexec(pg, "DELETE FROM messages WHERE expunged_at < now() - interval '1 hour'"));
	return MP_OK;
}

/* `merpati store init`: create or upgrade; says which version is there. */
int
schema_init(PGconn *pg, int *version_r, const char **error_r)
{
	*version_r = SCHEMA_VERSION;
	return migrate(pg, 1, error_r);
}

int
prepare_all(PGconn *pg, const char **error_r)
{
	char name[16];

	for (int i = 0; i < Q_COUNT_; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		PGresult *res = PQprepare(pg, name, sql[i], 0, NULL);
		if (!run_ok(res)) {
			snprintf(err_buf, sizeof(err_buf), "mail database: prepare %s: %s", name,
			    PQerrorMessage(pg));
			err_buf[strcspn(err_buf, "\n")] = '\0';
			*error_r = err_buf;
			PQclear(res);
			return MP_ERROR;
		}
		PQclear(res);
	}
	return MP_OK;
}
