/*
 * modules/auth_sqlite/auth_sqlite.c - the auth kind on SQLite: local
 * users and their passwords, hashed with crypt_r (yescrypt when libcrypt
 * has it, sha512-crypt otherwise; never clear text).
 *
 * One read-only connection, opened at init (before the daemon drops
 * privileges, so a root-owned 0600 database stays readable), guarded by
 * a mutex: a compromised session cannot write users.db through it. Only
 * `merpati user add|del|passwd` opens a second, writable one. Neither
 * follows a symlink (state_dir belongs to the daemon's user). The
 * connection is guarded by a mutex;
 * the slow hashing runs outside the lock. Unknown users cost the same
 * hashing time as known ones, so timing does not reveal who exists.
 *
 * Verified logins are remembered for verify_cache (default 1h) by the
 * login cache auth_pgsql shares (modules/common/pw_hash.c): an
 * HMAC-SHA256, under a key drawn at start, of (address, stored hash,
 * password), so the same password against the same stored hash skips
 * crypt_r (yescrypt costs ~90 ms of CPU). A changed password changes the
 * stored hash and misses; a deleted user fails the lookup first; failed
 * logins are never cached, so guessing still pays full price.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <merpati/merpati.h>

#include "pw_hash.h"

struct auth_settings {
	const char *database;
	long long verify_cache;	/* seconds; 0: off */
};

struct auth {
	const struct mp_host *host;
	struct auth_settings set;
	sqlite3 *db;	/* read-only: all the daemon ever needs */
	sqlite3_stmt *find;	/* the password lookup on db, prepared once */
	sqlite3 *rw;	/* opened by the first change (merpati user ...) */
	pthread_mutex_t lock;
	char *dummy_hash;
	struct login_cache cache;	/* modules/common/pw_hash.c */
};

static _Thread_local char err_buf[512];

static int
error(const char **error_r, int rc, const char *fmt, const char *arg)
{
	snprintf(err_buf, sizeof(err_buf), fmt, arg);
	*error_r = err_buf;
	return rc;
}

/* local@domain, no spaces or control characters, lower-cased into out. */
static int
normalise(const char *address, char *out, size_t size)
{
	const char *at = strchr(address, '@');
	size_t len = strlen(address);

	if (at == NULL || at == address || at[1] == '\0' || strchr(at + 1, '@') ||
	    len >= size || len > 320)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)address[i];
		if (c <= 0x20 || c == 0x7f)
			return -1;
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return 0;
}

/* Bind p1 and p2 (NULL: unbound), step once, copy column 0 to out. */
static int
step_once(sqlite3_stmt *st, const char *p1, const char *p2, char *out,
    size_t outsize)
{
	int rc;

	if (p1)
		sqlite3_bind_text(st, 1, p1, -1, SQLITE_TRANSIENT);
	if (p2)
		sqlite3_bind_text(st, 2, p2, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && out) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(out, outsize, "%s", t ? (const char *)t : "");
	}
	return rc;
}

static int
run(sqlite3 *db, const char *sql, const char *p1, const char *p2,
    char *out, size_t outsize)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = step_once(st, p1, p2, out, outsize);
	sqlite3_finalize(st);
	return rc;
}

static int
db_failed(struct auth *a, sqlite3 *db, const char **error_r)
{
	a->host->log(MP_LOG_ERR, "users database: %s", sqlite3_errmsg(db));
	return error(error_r, -1, "users database error: %s", sqlite3_errmsg(db));
}

/* The password lookup, compiled once per connection (under a->lock):
 * parsing the SQL on every RCPT and login was 3% of merpatid's CPU at
 * 100 KiB x 10 sessions (perf). SQLite recompiles it by itself should
 * another process change the schema. */
static int
run_find(struct auth *a, const char *address, char *hash, size_t size)
{
	int rc;

	if (a->find == NULL && (rc = sqlite3_prepare_v2(a->db,
	    "SELECT password FROM users WHERE address = ?1", -1, &a->find,
	    NULL)) != SQLITE_OK)
		return rc;
	rc = step_once(a->find, address, NULL, hash, size);
	sqlite3_reset(a->find);	/* ends the read transaction: no lock kept */
	return rc;
}

/* The stored hash of address: 1 found, 0 not, -1 error. */
static int
lookup(struct auth *a, const char *address, char *hash, size_t size,
    const char **error_r)
{
	int rc;

	pthread_mutex_lock(&a->lock);
	rc = run_find(a, address, hash, size);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		rc = db_failed(a, a->db, error_r);
	pthread_mutex_unlock(&a->lock);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int
auth_user_exists(void *ctx, const char *address, const char **error_r)
{
	char addr[330], hash[256];

	if (normalise(address, addr, sizeof(addr)) < 0)
		return 0;
	return lookup(ctx, addr, hash, sizeof(hash), error_r);
}

static int
auth_verify(void *ctx, const char *address, const char *password,
    const char **error_r)
{
	struct auth *a = ctx;
	char addr[330], hash[256];
	int found = normalise(address, addr, sizeof(addr)) < 0 ? 0 :
	    lookup(a, addr, hash, sizeof(hash), error_r);

	if (found < 0)
		return -1;
	int match = pw_verify(&a->cache, addr, found ? hash : NULL, a->dummy_hash,
	    password);
	if (match < 0)
		*error_r = "auth_sqlite: out of memory";
	return match;
}

static int open_conn(struct auth *a, int mode, sqlite3 **db_r,
    const char **error_r);

static int
change(void *ctx, const char *sql, const char *address, const char *password,
    const char **error_r)
{
	struct auth *a = ctx;
	char addr[330];
	char *hash = NULL;
	int rc;

	if (normalise(address, addr, sizeof(addr)) < 0)
		return error(error_r, MP_ERROR, "malformed address \"%s\" (want local@domain)",
		    address);
	if (password && password[0] == '\0')
		return error(error_r, MP_ERROR, "%s", "empty password");
	if (password && (hash = pw_hash_new(password)) == NULL)
		return error(error_r, MP_ERROR, "%s", "cannot hash password (libcrypt)");
	pthread_mutex_lock(&a->lock);
	if (a->rw == NULL && open_conn(a, SQLITE_OPEN_READWRITE, &a->rw,
	    error_r) != MP_OK) {
		pthread_mutex_unlock(&a->lock);
		free(hash);
		return MP_ERROR;
	}
	rc = run(a->rw, sql, addr, hash, NULL, 0);
	int changed = sqlite3_changes(a->rw);
	if (rc == SQLITE_CONSTRAINT)
		rc = error(error_r, MP_DECLINED, "%s", "user exists");
	else if (rc != SQLITE_DONE) {
		db_failed(a, a->rw, error_r);
		rc = MP_ERROR;
	}
	else if (changed == 0)
		rc = error(error_r, MP_DECLINED, "%s", "no such user");
	else
		rc = MP_OK;
	pthread_mutex_unlock(&a->lock);
	free(hash);
	return rc;
}

static int
auth_user_add(void *ctx, const char *address, const char *password,
    const char **error_r)
{
	return change(ctx, "INSERT INTO users (address, password, created) "
	    "VALUES (?1, ?2, strftime('%s','now'))", address, password, error_r);
}

static int
auth_user_passwd(void *ctx, const char *address, const char *password,
    const char **error_r)
{
	return change(ctx, "UPDATE users SET password = ?2 WHERE address = ?1",
	    address, password, error_r);
}

static int
auth_user_del(void *ctx, const char *address, const char **error_r)
{
	return change(ctx, "DELETE FROM users WHERE address = ?1", address, NULL,
	    error_r);
}

static int
auth_user_list(void *ctx, void (*each)(void *arg, const char *address),
    void *arg, const char **error_r)
{
	struct auth *a = ctx;
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&a->lock);
	rc = sqlite3_prepare_v2(a->db, "SELECT address FROM users ORDER BY address",
	    -1, &st, NULL);
	if (rc == SQLITE_OK)
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			each(arg, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		db_failed(a, a->db, error_r);
	pthread_mutex_unlock(&a->lock);
	return rc == SQLITE_DONE ? MP_OK : MP_ERROR;
}

/* The database's directory is created (0700) when missing, like the
 * daemon's state_dir, so a fresh install works at once. */
static void
make_parents(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(buf, 0700);
		*p = '/';
	}
}

/* One connection to the database, never through a symlink. */
static int
open_conn(struct auth *a, int mode, sqlite3 **db_r, const char **error_r)
{
	if (sqlite3_open_v2(a->set.database, db_r, mode | SQLITE_OPEN_NOMUTEX |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		snprintf(err_buf, sizeof(err_buf), "database %s: %s", a->set.database,
		    *db_r ? sqlite3_errmsg(*db_r) : "cannot open");
		*error_r = err_buf;
		sqlite3_close(*db_r);
		*db_r = NULL;
		return MP_ERROR;
	}
	sqlite3_busy_timeout(*db_r, 5000);
	return MP_OK;
}

/* Create the file (0600) and the table once, then keep only a
 * read-only connection. */
static int
open_db(struct auth *a, const char **error_r)
{
	sqlite3 *setup = NULL;
	int fd, rc;

	make_parents(a->set.database);
	fd = open(a->set.database, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err_buf, sizeof(err_buf), "cannot open %s: %s%s",
		    a->set.database, strerror(errno), errno == ELOOP ?
		    " (a symlink: refused)" : "");
		*error_r = err_buf;
		return MP_ERROR;
	}
	close(fd);
	if (open_conn(a, SQLITE_OPEN_READWRITE, &setup, error_r) != MP_OK)
		return MP_ERROR;
	rc = sqlite3_exec(setup, "CREATE TABLE IF NOT EXISTS users ("
	    "address TEXT PRIMARY KEY COLLATE NOCASE, password TEXT NOT NULL, "
	    "created INTEGER NOT NULL)", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err_buf, sizeof(err_buf), "database %s: %s", a->set.database,
		    sqlite3_errmsg(setup));
		*error_r = err_buf;
	}
	sqlite3_close(setup);
	if (rc != SQLITE_OK)
		return MP_ERROR;
	return open_conn(a, SQLITE_OPEN_READONLY, &a->db, error_r);
}

static void
auth_fini(void *ctx)
{
	struct auth *a = ctx;

	sqlite3_finalize(a->find);
	if (a->db)
		sqlite3_close(a->db);
	if (a->rw)
		sqlite3_close(a->rw);
	pthread_mutex_destroy(&a->lock);
	login_cache_fini(&a->cache);
	free(a->dummy_hash);
	a->host->free(a);
}

static const struct mp_option auth_options[] = {
	MP_OPT("database", MP_OPT_PATH, offsetof(struct auth_settings, database), "users.db", 0, 0),
	MP_OPT("verify_cache", MP_OPT_DURATION, offsetof(struct auth_settings, verify_cache), "1h",
	    0, 86400),
	MP_OPT_END
};

static int
auth_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct auth *a = host->alloc(sizeof(*a));

	if (a == NULL)
		return error(error_r, MP_ERROR, "%s", "out of memory");
	memset(a, 0, sizeof(*a));
	a->host = host;
	pthread_mutex_init(&a->lock, NULL);
	if (host->conf_options(conf, auth_options, &a->set, error_r) != MP_OK) {
		auth_fini(a);	/* a zeroed cache is safe to finish */
		return MP_ERROR;
	}
	login_cache_init(&a->cache, a->set.verify_cache);
	if (open_db(a, error_r) != MP_OK ||
	    (a->dummy_hash = pw_hash_dummy()) == NULL) {
		if (a->dummy_hash == NULL && *error_r == NULL)
			*error_r = "cannot hash passwords (libcrypt)";
		auth_fini(a);
		return MP_ERROR;
	}
	*ctx_r = a;
	return MP_OK;
}

static const struct mp_auth_ops auth_ops = {
	.struct_size = sizeof(struct mp_auth_ops),
	.user_exists = auth_user_exists,
	.verify = auth_verify,
	.user_add = auth_user_add,
	.user_del = auth_user_del,
	.user_passwd = auth_user_passwd,
	.user_list = auth_user_list,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "auth_sqlite",
	.kinds = MP_KIND_AUTH,
	.init = auth_init,
	.fini = auth_fini,
	.auth = &auth_ops,
};
