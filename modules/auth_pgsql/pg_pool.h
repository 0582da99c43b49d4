/*
 * modules/auth_pgsql/pg_pool.h - a fixed-size pool of libpq connections
 * with prepared statements, made lazily and remade with backoff after
 * PostgreSQL goes away. Not here: what the statements mean
 * (auth_pgsql.c) or the schema (pg_schema.c).
 */
#ifndef AUTH_PGSQL_POOL_H
#define AUTH_PGSQL_POOL_H

#include <stddef.h>
#include <libpq-fe.h>
#include <merpati/module.h>

/* One statement prepared on every connection as "s<index>". */
struct pg_stmt {
	const char *sql;
	int nparams;
};

struct pg_pool_config {
	const char *conninfo;		/* libpq connection string */
	const char *password;		/* from password_file; NULL: none */
	long long size;			/* connections at most */
	long long connect_timeout;	/* seconds, unless conninfo says */
	const struct pg_stmt *stmts;
	size_t nstmts;
	/* Run once per process on the first connection, before preparing
	 * (creates the schema): 0, or -1 with a message in err. */
	int (*setup)(PGconn *conn, char *err, size_t errsize);
};

struct pg_pool;

/* A pool that has not connected yet (the first query connects), or
 * NULL when out of memory. The config's strings are copied. */
struct pg_pool *pg_pool_new(const struct mp_host *host,
    const struct pg_pool_config *cfg);
void pg_pool_free(struct pg_pool *p);

/* Connect one connection now (start-up check): 0, or with *error_r
 * -1 when PostgreSQL is unreachable, -2 when it refuses the schema or a
 * statement (a newer schema version, missing privileges). */
int pg_pool_ping(struct pg_pool *p, const char **error_r);

/* Run statement stmt with text params: the result (PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK; the caller PQclear()s it), or NULL with *error_r
 * when PostgreSQL is unreachable, the pool stays busy too long, or the
 * statement failed. idempotent: may be sent again on a fresh
 * connection when the one it went out on turns out dead (a restart). */
PGresult *pg_pool_exec(struct pg_pool *p, size_t stmt,
    const char *const *params, int idempotent, const char **error_r);

#endif
