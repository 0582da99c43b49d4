/*
 * modules/auth_pgsql/pg_pool.c - the connection pool (see pg_pool.h).
 *
 * Up to `size` connections, each used by one thread at a time (libpq
 * connections are not shared between threads). A thread waits at most
 * POOL_WAIT for a free one. Connections are made on first use, so a
 * daemon started while PostgreSQL is down comes up and tempfails
 * logins until it is back.
 *
 * A dead connection (PostgreSQL restarted) is dropped and remade; while
 * connecting keeps failing, attempts are spaced by a backoff doubling
 * from BACKOFF_MIN to BACKOFF_MAX, and a request inside the wait fails
 * at once: a login then gets a quick temporary failure instead of
 * queueing behind connect timeouts, and PostgreSQL is not hammered by
 * every session thread while it starts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "pg_pool.h"

#define POOL_WAIT 10		/* seconds a request waits for a free connection */
#define BACKOFF_MIN 100		/* ms */
#define BACKOFF_MAX 2000	/* ms: how late a node notices PostgreSQL is back */

struct pg_slot {
	PGconn *conn;
	int busy;
};

struct pg_pool {
	const struct mp_host *host;
	struct pg_pool_config cfg;
	char *conninfo, *password;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct pg_slot *slots;
	int setup_done;
	int down;			/* the last attempt failed (log once back) */
	long backoff_ms;
	struct timespec next_try;	/* no connect attempt before this */
};

static _Thread_local char err_buf[512];

static const char *
fail(const char *fmt, const char *arg)
{
	snprintf(err_buf, sizeof(err_buf), fmt, arg);
	/* libpq's messages end in a newline: keep log lines whole. */
	size_t n = strlen(err_buf);
	while (n > 0 && (err_buf[n - 1] == '\n' || err_buf[n - 1] == '\r'))
		err_buf[--n] = '\0';
	return err_buf;
}

static struct timespec
now_mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

static long
ms_until(struct timespec t)
{
	struct timespec n = now_mono();

	return (t.tv_sec - n.tv_sec) * 1000 + (t.tv_nsec - n.tv_nsec) / 1000000;
}

struct pg_pool *
pg_pool_new(const struct mp_host *host, const struct pg_pool_config *cfg)
{
	struct pg_pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->host = host;
	p->cfg = *cfg;
	p->conninfo = strdup(cfg->conninfo);
	p->password = cfg->password ? strdup(cfg->password) : NULL;
	p->slots = calloc((size_t)cfg->size, sizeof(*p->slots));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	if (p->conninfo == NULL || p->slots == NULL ||
	    (cfg->password && p->password == NULL)) {
		pg_pool_free(p);
		return NULL;
	}
	return p;
}

void
pg_pool_free(struct pg_pool *p)
{
	if (p == NULL)
		return;
	for (long long i = 0; p->slots && i < p->cfg.size; i++)
		if (p->slots[i].conn)
			PQfinish(p->slots[i].conn);
	if (p->password) {
		OPENSSL_cleanse(p->password, strlen(p->password));
		free(p->password);
	}
	free(p->conninfo);
	free(p->slots);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->freed);
	free(p);
}

/* A free slot, marked busy; NULL when none frees up within POOL_WAIT. */
static struct pg_slot *
acquire(struct pg_pool *p)
{
	struct timespec until;
	struct pg_slot *s = NULL;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += POOL_WAIT;
	pthread_mutex_lock(&p->lock);
	while (s == NULL) {
		for (long long i = 0; s == NULL && i < p->cfg.size; i++)
			if (!p->slots[i].busy)
				s = &p->slots[i];
		if (s == NULL && pthread_cond_timedwait(&p->freed, &p->lock,
		    &until) == ETIMEDOUT)
			break;
	}
	if (s)
		s->busy = 1;
	pthread_mutex_unlock(&p->lock);
	return s;
}

static void
release(struct pg_pool *p, struct pg_slot *s)
{
	pthread_mutex_lock(&p->lock);
	s->busy = 0;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

/* A new connection: our defaults first so that the conninfo can
 * override them, the password last so the file wins over the string.
 * tcp_user_timeout bounds how long a query waits on a peer that
 * vanished without a reset (a partition), which libpq otherwise waits
 * out for the kernel's full retransmission time. */
static PGconn *
connect_db(struct pg_pool *p)
{
	char timeout[24];
	const char *keys[] = { "connect_timeout", "tcp_user_timeout", "dbname",
	    "fallback_application_name", p->password ? "password" : NULL, NULL };
	const char *values[] = { timeout, "15000", p->conninfo, "merpati auth_pgsql",
	    p->password, NULL };

	snprintf(timeout, sizeof(timeout), "%lld", p->cfg.connect_timeout);
	return PQconnectdbParams(keys, values, 1);
}

/* Schema once per process, then every statement: 0 or -1 (err_buf). */
static int
prepare(struct pg_pool *p, PGconn *c, const char **error_r)
{
	char name[24], err[300];

	pthread_mutex_lock(&p->lock);
	int need_setup = !p->setup_done;
	pthread_mutex_unlock(&p->lock);
	if (need_setup && p->cfg.setup) {
		if (p->cfg.setup(c, err, sizeof(err)) < 0) {
			*error_r = fail("schema: %s", err);
			return -1;
		}
		pthread_mutex_lock(&p->lock);
		p->setup_done = 1;
		pthread_mutex_unlock(&p->lock);
	}
	for (size_t i = 0; i < p->cfg.nstmts; i++) {
		snprintf(name, sizeof(name), "s%zu", i);
		PGresult *r = PQprepare(c, name, p->cfg.stmts[i].sql,
		    p->cfg.stmts[i].nparams, NULL);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			*error_r = fail("prepare: %s", PQerrorMessage(c));
		PQclear(r);
		if (!ok)
			return -1;
	}
	return 0;
}

/* After a failed attempt: wait longer before the next one. */
static void
backoff(struct pg_pool *p, const char *why)
{
	pthread_mutex_lock(&p->lock);
	p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN;
	if (p->backoff_ms > BACKOFF_MAX)
		p->backoff_ms = BACKOFF_MAX;
	p->next_try = now_mono();
	p->next_try.tv_nsec += (p->backoff_ms % 1000) * 1000000;
	p->next_try.tv_sec += p->backoff_ms / 1000 + p->next_try.tv_nsec / 1000000000;
	p->next_try.tv_nsec %= 1000000000;
	long wait = p->backoff_ms;
	p->down = 1;
	pthread_mutex_unlock(&p->lock);
	p->host->log(MP_LOG_WARNING, "PostgreSQL unavailable (next attempt in %ld ms): %s",
	    wait, why);
}

/* The slot's connection, made if missing: 0, or with *error_r -1 when
 * PostgreSQL cannot be reached, -2 when it can but the schema or a
 * statement is refused. */
static int
ensure_conn(struct pg_pool *p, struct pg_slot *s, const char **error_r)
{
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	if (s->conn) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
	pthread_mutex_lock(&p->lock);
	long wait = p->down ? ms_until(p->next_try) : 0;
	pthread_mutex_unlock(&p->lock);
	if (wait > 0) {
		*error_r = fail("%s", "PostgreSQL unavailable (reconnecting)");
		return -1;
	}
	PGconn *c = connect_db(p);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		*error_r = fail("connect: %s", c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		backoff(p, err_buf);
		return -1;
	}
	if (prepare(p, c, error_r) < 0) {
		PQfinish(c);
		backoff(p, err_buf);
		return -2;
	}
	pthread_mutex_lock(&p->lock);
	int was_down = p->down;
	p->down = 0;
	p->backoff_ms = 0;
	pthread_mutex_unlock(&p->lock);
	if (was_down)
		p->host->log(MP_LOG_NOTICE, "PostgreSQL reachable again");
	s->conn = c;
	return 0;
}

int
pg_pool_ping(struct pg_pool *p, const char **error_r)
{
	struct pg_slot *s = acquire(p);
	int rc;

	if (s == NULL) {
		*error_r = "connection pool busy";
		return -1;
	}
	rc = ensure_conn(p, s, error_r);
	release(p, s);
	return rc;
}

/* One try on one connection: the result, or NULL with *error_r and
 * *dead_r saying whether the connection died under it. */
static PGresult *
exec_once(struct pg_pool *p, size_t stmt, const char *const *params,
    int *dead_r, const char **error_r)
{
	struct pg_slot *s = acquire(p);
	char name[24];
	PGresult *r;

	*dead_r = 0;
	if (s == NULL) {
		*error_r = "connection pool busy (raise pool_size?)";
		return NULL;
	}
	if (ensure_conn(p, s, error_r) != 0) {
		release(p, s);
		return NULL;
	}
	snprintf(name, sizeof(name), "s%zu", stmt);
	r = PQexecPrepared(s->conn, name, p->cfg.stmts[stmt].nparams, params,
	    NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		*error_r = fail("%s", PQerrorMessage(s->conn));
		PQclear(r);
		r = NULL;
		if (PQstatus(s->conn) != CONNECTION_OK) {
			*dead_r = 1;
			PQfinish(s->conn);
			s->conn = NULL;
		}
	}
	release(p, s);
	return r;
}

PGresult *
pg_pool_exec(struct pg_pool *p, size_t stmt, const char *const *params,
    int idempotent, const char **error_r)
{
	int dead;
	PGresult *r = exec_once(p, stmt, params, &dead, error_r);

	/* Every pooled connection dies with a restart: the first request
	 * on each would fail for nothing. A read is safe to send again; a
	 * write might have committed before the connection dropped. */
	if (r == NULL && dead && idempotent)
		r = exec_once(p, stmt, params, &dead, error_r);
	return r;
}
