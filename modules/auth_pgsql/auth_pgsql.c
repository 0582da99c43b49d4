/*
 * modules/auth_pgsql/auth_pgsql.c - the auth kind on PostgreSQL: users
 * (crypt hashes), local domains and aliases in tables every node shares
 * (etc/auth_pgsql.sql), so a user, domain or alias added through one
 * node is seen by all at their next lookup.
 *
 * Every answer comes from the database at the time of the request;
 * nothing is copied into the node. The login cache only saves the
 * crypt_r work: its entries are named by the stored hash, which each
 * login reads afresh (one indexed SELECT), so a password changed on any
 * node refuses the old one on every node at once. (LISTEN/NOTIFY
 * invalidation would save that SELECT but leave a window after a lost
 * connection, where notices are missed and a stale entry would let the
 * old password in.)
 *
 * When PostgreSQL is unreachable every call returns -1: RCPT gets a 451,
 * a login a temporary failure, never "wrong password" (pg_pool.c
 * reconnects with backoff). Not here: the pool (pg_pool.c), the schema
 * (pg_schema.c), hashing and the cache (modules/common/pw_hash.c).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <merpati/merpati.h>

#include "pg_pool.h"
#include "pg_schema.h"
#include "pw_hash.h"

struct auth_settings {
	const char *conninfo;
	const char *password_file;
	long long pool_size;
	long long connect_timeout;
	long long verify_cache;	/* seconds; 0: off */
};

enum stmt {
	ST_USER_HASH, ST_USER_ADD, ST_USER_PASSWD, ST_USER_DEL, ST_USER_LIST,
	ST_DOMAIN, ST_ALIAS
};

/* An alias reads at most 256 targets: more than the core takes (it
 * answers 452 beyond its limit), but a bound on what one lookup costs. */
static const struct pg_stmt stmts[] = {
	[ST_USER_HASH] = { "SELECT password FROM auth_users WHERE address = $1", 1 },
	[ST_USER_ADD] = { "INSERT INTO auth_users (address, password) VALUES ($1, $2) "
	    "ON CONFLICT (address) DO NOTHING", 2 },
	[ST_USER_PASSWD] = { "UPDATE auth_users SET password = $2 WHERE address = $1", 2 },
	[ST_USER_DEL] = { "DELETE FROM auth_users WHERE address = $1", 1 },
	[ST_USER_LIST] = { "SELECT address FROM auth_users ORDER BY address", 0 },
	[ST_DOMAIN] = { "SELECT 1 FROM auth_domains WHERE domain = $1", 1 },
	[ST_ALIAS] = { "SELECT target FROM auth_aliases WHERE address = $1 "
	    "ORDER BY target LIMIT 256", 1 },
};

struct auth {
	const struct mp_host *host;
	struct auth_settings set;
	struct pg_pool *pool;
	char *dummy_hash;
	struct login_cache cache;
};

static _Thread_local char err_buf[512];

static int
error(const char **error_r, int rc, const char *fmt, const char *arg)
{
	snprintf(err_buf, sizeof(err_buf), fmt, arg);
	*error_r = err_buf;
	return rc;
}

/* A failed query: logged, and -1 for the caller's tempfail. */
static int
db_failed(struct auth *a, const char *what, const char *why,
    const char **error_r)
{
	a->host->log(MP_LOG_ERR, "%s: %s", what, why ? why : "unknown error");
	snprintf(err_buf, sizeof(err_buf), "directory unavailable: %s",
	    why ? why : "unknown error");
	*error_r = err_buf;
	return -1;
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

/* The stored hash of addr: 1 found, 0 not, -1 error. */
static int
lookup(struct auth *a, const char *addr, char *hash, size_t size,
    const char **error_r)
{
	const char *params[] = { addr };
	PGresult *r = pg_pool_exec(a->pool, ST_USER_HASH, params, 1, error_r);
	int found;

	if (r == NULL)
		return db_failed(a, "user lookup", *error_r, error_r);
	found = PQntuples(r) == 1;
	if (found)
		snprintf(hash, size, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return found;
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
		*error_r = "auth_pgsql: out of memory";
	return match;
}

/* One change by `merpati user`: MP_OK, MP_DECLINED when no row was
 * touched (declined_why), MP_ERROR. */
static int
change(struct auth *a, enum stmt st, const char *address, const char *password,
    const char *declined_why, const char **error_r)
{
	char addr[330];
	char *hash = NULL;

	if (normalise(address, addr, sizeof(addr)) < 0)
		return error(error_r, MP_ERROR, "malformed address \"%s\" (want local@domain)",
		    address);
	if (password && password[0] == '\0')
		return error(error_r, MP_ERROR, "%s", "empty password");
	if (password && (hash = pw_hash_new(password)) == NULL)
		return error(error_r, MP_ERROR, "%s", "cannot hash password (libcrypt)");
	const char *params[] = { addr, hash };
	PGresult *r = pg_pool_exec(a->pool, st, params, 0, error_r);
	free(hash);
	if (r == NULL) {
		db_failed(a, "user change", *error_r, error_r);
		return MP_ERROR;
	}
	int changed = atoi(PQcmdTuples(r));
	PQclear(r);
	if (changed == 0)
		return error(error_r, MP_DECLINED, "%s", declined_why);
	return MP_OK;
}

static int
auth_user_add(void *ctx, const char *address, const char *password,
    const char **error_r)
{
	return change(ctx, ST_USER_ADD, address, password, "user exists", error_r);
}

static int
auth_user_passwd(void *ctx, const char *address, const char *password,
    const char **error_r)
{
	return change(ctx, ST_USER_PASSWD, address, password, "no such user", error_r);
}

static int
auth_user_del(void *ctx, const char *address, const char **error_r)
{
	return change(ctx, ST_USER_DEL, address, NULL, "no such user", error_r);
}

static int
auth_user_list(void *ctx, void (*each)(void *arg, const char *address),
    void *arg, const char **error_r)
{
	struct auth *a = ctx;
	PGresult *r = pg_pool_exec(a->pool, ST_USER_LIST, NULL, 1, error_r);

	if (r == NULL) {
		db_failed(a, "user list", *error_r, error_r);
		return MP_ERROR;
	}
	for (int i = 0; i < PQntuples(r); i++)
		each(arg, PQgetvalue(r, i, 0));
	PQclear(r);
	return MP_OK;
}

static int
auth_domain_exists(void *ctx, const char *domain, const char **error_r)
{
	struct auth *a = ctx;
	char lower[256];
	size_t len = strlen(domain);

	if (len == 0 || len >= sizeof(lower) || strchr(domain, '@'))
		return 0;
	for (size_t i = 0; i <= len; i++)
		lower[i] = (char)tolower((unsigned char)domain[i]);
	const char *params[] = { lower };
	PGresult *r = pg_pool_exec(a->pool, ST_DOMAIN, params, 1, error_r);
	if (r == NULL)
		return db_failed(a, "domain lookup", *error_r, error_r);
	int found = PQntuples(r) > 0;
	PQclear(r);
	return found;
}

/* The rows of r as a host->alloc()ed array of host->alloc()ed strings;
 * -1 when out of memory (nothing left allocated). */
static int
copy_targets(const struct mp_host *h, PGresult *r, char ***targets_r,
    size_t *n_r)
{
	size_t n = (size_t)PQntuples(r);
	char **v = h->alloc(n * sizeof(*v));

	if (v == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *t = PQgetvalue(r, (int)i, 0);
		size_t len = strlen(t) + 1;
		if ((v[i] = h->alloc(len)) == NULL) {
			while (i > 0)
				h->free(v[--i]);
			h->free(v);
			return -1;
		}
		memcpy(v[i], t, len);
	}
	*targets_r = v;
	*n_r = n;
	return 0;
}

static int
auth_alias_expand(void *ctx, const char *address, char ***targets_r,
    size_t *ntargets_r, const char **error_r)
{
	struct auth *a = ctx;
	char addr[330];
	int rc = 0;

	*targets_r = NULL;
	*ntargets_r = 0;
	if (normalise(address, addr, sizeof(addr)) < 0)
		return 0;
	const char *params[] = { addr };
	PGresult *r = pg_pool_exec(a->pool, ST_ALIAS, params, 1, error_r);
	if (r == NULL)
		return db_failed(a, "alias lookup", *error_r, error_r);
	if (PQntuples(r) > 0) {
		rc = copy_targets(a->host, r, targets_r, ntargets_r) == 0 ? 1 :
		    error(error_r, -1, "%s", "auth_pgsql: out of memory");
	}
	PQclear(r);
	return rc;
}

/* The password from password_file (read before the privilege drop):
 * its first line. The file must not be readable by others. */
static char *
read_password(const char *path, const char **error_r)
{
	char buf[1024];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	const char *why = NULL;
	ssize_t n = -1;

	if (fd < 0)
		why = strerror(errno);
	else if (fstat(fd, &st) < 0 || (st.st_mode & S_IROTH))
		why = "readable by others (chmod o-r)";
	else if ((n = read(fd, buf, sizeof(buf) - 1)) < 0)
		why = strerror(errno);
	if (fd >= 0)
		close(fd);
	if (why == NULL) {
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		if (buf[0] == '\0')
			why = "empty";
	}
	char *pw = why ? NULL : strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (why == NULL && pw == NULL)
		why = "out of memory";
	if (why) {
		snprintf(err_buf, sizeof(err_buf), "password_file %s: %s", path, why);
		*error_r = err_buf;
	}
	return pw;
}

static void
auth_fini(void *ctx)
{
	struct auth *a = ctx;

	pg_pool_free(a->pool);
	login_cache_fini(&a->cache);
	free(a->dummy_hash);
	a->host->free(a);
}

static const struct mp_option auth_options[] = {
	MP_OPT("conninfo", MP_OPT_STRING, offsetof(struct auth_settings, conninfo), "", 0, 0),
	MP_OPT("password_file", MP_OPT_STRING, offsetof(struct auth_settings, password_file),
	    "", 0, 0),
	MP_OPT("pool_size", MP_OPT_INT, offsetof(struct auth_settings, pool_size), "4", 1, 256),
	MP_OPT("connect_timeout", MP_OPT_DURATION,
	    offsetof(struct auth_settings, connect_timeout), "5", 1, 300),
	MP_OPT("verify_cache", MP_OPT_DURATION, offsetof(struct auth_settings, verify_cache), "1h",
	    0, 86400),
	MP_OPT_END
};

/* The pool for the settings; MP_OK or MP_ERROR with *error_r. */
static int
open_pool(struct auth *a, const char **error_r)
{
	char *password = NULL;
	const char *pf = a->set.password_file;

	if (a->set.conninfo[0] == '\0')
		return error(error_r, MP_ERROR, "%s",
		    "conninfo is required (a libpq connection string)");
	if (pf[0] && pf[0] != '/')
		return error(error_r, MP_ERROR, "password_file \"%s\": want an absolute path", pf);
	if (pf[0] && (password = read_password(pf, error_r)) == NULL)
		return MP_ERROR;
	struct pg_pool_config cfg = {
		.conninfo = a->set.conninfo, .password = password,
		.size = a->set.pool_size, .connect_timeout = a->set.connect_timeout,
		.stmts = stmts, .nstmts = sizeof(stmts) / sizeof(stmts[0]),
		.setup = pg_schema_setup,
	};
	a->pool = pg_pool_new(a->host, &cfg);
	if (password) {
		OPENSSL_cleanse(password, strlen(password));
		free(password);
	}
	if (a->pool == NULL)
		return error(error_r, MP_ERROR, "%s", "out of memory");
	/* Down at start is not a config error: log it, tempfail until back.
	 * A database that answers but refuses our schema is one. */
	const char *why = NULL;
	int rc = pg_pool_ping(a->pool, &why);
	if (rc == -2)
		return error(error_r, MP_ERROR, "%s", why);
	if (rc < 0)
		a->host->log(MP_LOG_WARNING, "PostgreSQL not reachable at start: %s "
		    "(logins and lookups fail temporarily until it is)", why);
	return MP_OK;
}

static int
auth_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct auth *a = host->alloc(sizeof(*a));

	if (a == NULL)
		return error(error_r, MP_ERROR, "%s", "out of memory");
	memset(a, 0, sizeof(*a));
	a->host = host;
	if (host->conf_options(conf, auth_options, &a->set, error_r) != MP_OK) {
		host->free(a);
		return MP_ERROR;
	}
	login_cache_init(&a->cache, a->set.verify_cache);
	if ((a->dummy_hash = pw_hash_dummy()) == NULL) {
		auth_fini(a);
		return error(error_r, MP_ERROR, "%s", "cannot hash passwords (libcrypt)");
	}
	if (open_pool(a, error_r) != MP_OK) {
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
	.domain_exists = auth_domain_exists,
	.alias_expand = auth_alias_expand,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "auth_pgsql",
	.kinds = MP_KIND_AUTH,
	.init = auth_init,
	.fini = auth_fini,
	.auth = &auth_ops,
};
