/*
 * modules/store_pgsql/pool.c - the per-process connection pool of
 * store_pgsql: pool_size connections made on first use, each with the
 * statements prepared; a connection found broken (PostgreSQL restarted)
 * is dropped when it comes back, or when it is taken and its server has
 * closed it meanwhile, and made again on its next use, no
 * sooner than its backoff (0.1 s doubling to 5 s) allows, so a database
 * that is down costs a quick MP_TEMPFAIL, not a connect storm.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define WAIT_FREE_S 30	/* longest wait for a free connection */

static _Thread_local char err_buf[512];
static _Thread_local char sqlstate[6];

/* The server's notices go to the log, not to stderr. */
static void
log_notice(void *arg, const char *message)
{
	struct store *s = arg;

	s->host->log(MP_LOG_INFO, "store_pgsql: database says: %.*s",
	    (int)strcspn(message, "\n"), message);
}

/* A new connection (conninfo, with the password file's password), or
 * NULL with *error_r. */
PGconn *
pg_connect(struct store *s, const char **error_r)
{
	const char *keys[] = { "dbname", "password", "connect_timeout", NULL };
	const char *vals[] = { s->conninfo, s->password, "5", NULL };
	PGconn *pg;

	if (s->password == NULL)
		keys[1] = "connect_timeout", vals[1] = "5", keys[2] = NULL;
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg != NULL && PQstatus(pg) == CONNECTION_OK) {
		PQsetNoticeProcessor(pg, log_notice, s);
		return pg;
	}
	snprintf(err_buf, sizeof(err_buf), "mail database: %s",
	    pg ? PQerrorMessage(pg) : "out of memory");
	err_buf[strcspn(err_buf, "\n")] = '\0';
	*error_r = err_buf;
	PQfinish(pg);
	return NULL;
}

static int
due(const struct timespec *at)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > at->tv_sec || (now.tv_sec == at->tv_sec && now.tv_nsec >= at->tv_nsec);
}

static void
back_off(struct conn *c)
{
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
	clock_gettime(CLOCK_MONOTONIC, &c->retry_at);
	c->retry_at.tv_nsec += (c->backoff_ms % 1000) * 1000000L;
	c->retry_at.tv_sec += c->backoff_ms / 1000 + c->retry_at.tv_nsec / 1000000000L;
	c->retry_at.tv_nsec %= 1000000000L;
}

/* An idle connection has nothing to read unless its server went away
 * (a restart sends a FATAL and closes): drop such a connection now, so
 * that an operation starting after a restart does not fail on it. */
static void
drop_if_gone(struct conn *c)
{
	struct pollfd p = { .fd = PQsocket(c->pg), .events = POLLIN };

	if (p.fd >= 0 && poll(&p, 1, 0) == 0)
		return;
	PQfinish(c->pg);	/* nothing else comes on a pooled connection */
	c->pg = NULL;
}

/* Connect c if it is not: the schema is checked once per process, the
 * statements on every connection. */
static int
ensure_connected(struct store *s, struct conn *c, const char **error_r)
{
	if (c->pg != NULL)
		drop_if_gone(c);
	if (c->pg != NULL)
		return MP_OK;
	if (!due(&c->retry_at)) {
		*error_r = "mail database unavailable (reconnecting)";
		return MP_TEMPFAIL;
	}
	c->pg = pg_connect(s, error_r);
	if (c->pg != NULL && !s->schema_ok && schema_setup(s, c->pg, error_r) == MP_OK)
		s->schema_ok = 1;
	if (c->pg == NULL || !s->schema_ok || prepare_all(c->pg, error_r) != MP_OK) {
		s->host->log(MP_LOG_ERR, "store_pgsql: %s", *error_r);
		PQfinish(c->pg);
		c->pg = NULL;
		back_off(c);
		return MP_TEMPFAIL;
	}
	c->backoff_ms = 0;
	return MP_OK;
}

/* A free connection, waiting (bounded) while all are busy. */
int
pool_get(struct store *s, struct conn **c_r, const char **error_r)
{
	struct timespec until;
	struct conn *c = NULL;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_FREE_S;
	pthread_mutex_lock(&s->lock);
	while (c == NULL && rc == 0) {
		for (long long i = 0; i < s->pool_size && c == NULL; i++)
			if (!s->pool[i].busy)
				c = &s->pool[i];
		if (c == NULL)
			rc = pthread_cond_timedwait(&s->freed, &s->lock, &until);
	}
	if (c)
		c->busy = 1;
	pthread_mutex_unlock(&s->lock);
	if (c == NULL) {
		*error_r = "mail database: every connection busy";
		return MP_TEMPFAIL;
	}
	if ((rc = ensure_connected(s, c, error_r)) != MP_OK) {
		pool_put(s, c);
		return rc;
	}
	*c_r = c;
	return MP_OK;
}

/* Give c back; a broken connection is dropped (made again on next use). */
void
pool_put(struct store *s, struct conn *c)
{
	if (c->pg && (PQstatus(c->pg) != CONNECTION_OK ||
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	pthread_mutex_lock(&s->lock);
	c->busy = 0;
	pthread_cond_signal(&s->freed);
	pthread_mutex_unlock(&s->lock);
}

void
pool_fini(struct store *s)
{
	for (long long i = 0; s->pool && i < s->pool_size; i++)
		PQfinish(s->pool[i].pg);
	free(s->pool);
	s->pool = NULL;
}

/* A failed statement: log it, roll back what c began, and say
 * MP_TEMPFAIL (the database is the one to blame, or gone). */
int
pg_fail(struct store *s, struct conn *c, PGresult *res, const char **error_r)
{
	const char *msg = res ? PQresultErrorMessage(res) : "";

	if (!msg[0])	/* run() keeps no result: the connection's last error */
		msg = PQerrorMessage(c->pg);
	snprintf(err_buf, sizeof(err_buf), "mail database: %s", msg[0] ? msg : "failed");
	err_buf[strcspn(err_buf, "\n")] = '\0';
	*error_r = err_buf;
	s->host->log(MP_LOG_ERR, "store_pgsql: %s", err_buf);
	PQclear(res);
	if (PQtransactionStatus(c->pg) == PQTRANS_INERROR || PQtransactionStatus(c->pg) == PQTRANS_INTRANS)
		tx(c, "ROLLBACK");
	return MP_TEMPFAIL;
}

void
p_int(struct params *p, long long v)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", v);
	p->v[p->n] = p->num[p->n];
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

void
p_text(struct params *p, const char *v)
{
	p->v[p->n] = v;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

void
p_blob(struct params *p, const void *v, size_t len)
{
	p->v[p->n] = v;
	p->len[p->n] = (int)len;
	p->fmt[p->n++] = 1;
}

PGresult *
run(struct conn *c, enum stmt q, const struct params *p, int binary)
{
	char name[16];
	PGresult *res;

	snprintf(name, sizeof(name), "s%d", (int)q);
	res = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
	    p ? p->fmt : NULL, binary);
	if (run_ok(res))
		return res;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(sqlstate, sizeof(sqlstate), "%s", state ? state : "");
	PQclear(res);
	return NULL;
}

/* The SQLSTATE of this thread's last failed run() ("" when none). */
const char *
last_sqlstate(void)
{
	return sqlstate;
}

int
run_ok(PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int
tx(struct conn *c, const char *cmd)
{
	PGresult *res = PQexec(c->pg, cmd);
	int ok = run_ok(res);

	PQclear(res);
	return ok ? 0 : -1;
}

long long
col_int(PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}
