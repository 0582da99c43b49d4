/*
 * modules/store_pgsql/listen.c - cross-node change notification for IMAP
 * IDLE: every change to a folder runs pg_notify('merpati_store', folder
 * id) in its transaction, so PostgreSQL tells every listening node at
 * commit; one thread per process LISTENs on its own connection and
 * writes to the eventfd of each open folder with that id (change_fd).
 * Started by the first change_fd call (not at init: the CLI needs no
 * thread, and the daemon may fork after init). When its connection
 * breaks it wakes every open folder (it may have missed changes) and
 * reconnects, waiting 0.2 s doubling to 5 s between tries.
 */
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pgsql.h"

static void
wake(struct mp_folder *f)
{
	uint64_t one = 1;

	if (f->event_fd >= 0)
		(void)!write(f->event_fd, &one, sizeof(one));
}

void
wake_folder(struct store *s, long long folder)
{
	for (size_t i = 0; i < s->nopen; i++)
		if (s->open[i]->id == folder)
			wake(s->open[i]);
}

void
wake_all(struct store *s)
{
	for (size_t i = 0; i < s->nopen; i++)
		wake(s->open[i]);
}

static PGconn *
listen_connect(struct store *s)
{
	const char *err = NULL;
	PGconn *pg = pg_connect(s, &err);
	PGresult *res;

	if (pg == NULL) {
		s->host->log(MP_LOG_WARNING, "store_pgsql: listener: %s", err);
		return NULL;
	}
	res = PQexec(pg, "LISTEN " NOTIFY_CHANNEL);
	if (!run_ok(res)) {
		PQclear(res);
		PQfinish(pg);
		return NULL;
	}
	PQclear(res);
	PQsetnonblocking(pg, 1);
	return pg;
}

/* Hand out what arrived; -1 when the connection broke. */
static int
dispatch(struct store *s, PGconn *pg)
{
	PGnotify *n;

	if (!PQconsumeInput(pg))
		return -1;
	pthread_mutex_lock(&s->lock);
	while ((n = PQnotifies(pg)) != NULL) {
		wake_folder(s, strtoll(n->extra, NULL, 10));
		PQfreemem(n);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Sleep ms, or less when asked to stop; 1 when asked to stop. */
static int
pause_or_stop(struct store *s, int ms)
{
	struct pollfd p = { .fd = s->stop_fd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

static void *
listener_main(void *arg)
{
	struct store *s = arg;
	PGconn *pg = NULL;
	int backoff = 200;

	for (;;) {
		if (pg == NULL && (pg = listen_connect(s)) == NULL) {
			if (pause_or_stop(s, backoff))
				break;
			backoff = backoff < 5000 ? backoff * 2 : 5000;
			continue;
		}
		/* (re)connected: changes may have gone unseen meanwhile */
		pthread_mutex_lock(&s->lock);
		wake_all(s);
		pthread_mutex_unlock(&s->lock);
		backoff = 200;
		struct pollfd p[2] = { { .fd = PQsocket(pg), .events = POLLIN },
		    { .fd = s->stop_fd, .events = POLLIN } };
		int rc = 0;
		while (rc >= 0 && !(p[1].revents & POLLIN)) {
			if (poll(p, 2, -1) > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
				rc = dispatch(s, pg);
		}
		PQfinish(pg);
		pg = NULL;
		if (p[1].revents & POLLIN)
			break;
	}
	PQfinish(pg);
	return NULL;
}

/* Lock held. */
int
listener_start(struct store *s)
{
	if (s->listener_started)
		return 0;
	if (s->stop_fd < 0 && (s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -1;
	if (pthread_create(&s->listener, NULL, listener_main, s) != 0)
		return -1;
	s->listener_started = 1;
	return 0;
}

void
listener_stop(struct store *s)
{
	uint64_t one = 1;

	if (s->listener_started) {
		(void)!write(s->stop_fd, &one, sizeof(one));
		pthread_join(s->listener, NULL);
		s->listener_started = 0;
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	s->stop_fd = -1;
}
