/*
 * core/runner.c - the queue runner (see runner.h).
 *
 * The schedule is an array of (id, due, busy) under one mutex; workers
 * wait on a condition variable until something is due. Delivery state
 * is written to the queue's status file before the schedule changes,
 * so a crash at any point repeats at most one attempt (at-least-once).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <merpati/maildir.h>

#include "dsn.h"
#include "outbound.h"
#include "log.h"
#include "queue.h"
#include "runner.h"
#include "settings.h"
#include "smtp_client.h"
#include "smtp_parse.h"
#include "util.h"

#define IN_PROGRESS ((time_t)1 << 62)

struct entry {
	char id[MP_QID_SIZE];
	time_t due;
	int busy;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static struct entry *entries;
static size_t nentries, capentries;
static int running, stopping, busy_workers;

/* Caller holds lock. */
static struct entry *
find(const char *id)
{
	for (size_t i = 0; i < nentries; i++)
		if (strcmp(entries[i].id, id) == 0)
			return &entries[i];
	return NULL;
}

static void
schedule_locked(const char *id, time_t due)
{
	struct entry *e = find(id);

	if (e) {
		e->due = due;
		return;
	}
	if (nentries == capentries) {
		capentries = capentries ? capentries * 2 : 64;
		entries = realloc(entries, capentries * sizeof(*entries));
		if (entries == NULL)
			abort();
	}
	e = &entries[nentries++];
	mp_strlcpy(e->id, id, sizeof(e->id));
	e->due = due;
	e->busy = 0;
}

static void
forget_locked(const char *id)
{
	struct entry *e = find(id);

	if (e)
		*e = entries[--nentries];
}

void
mp_runner_notify(const char *id)
{
	pthread_mutex_lock(&lock);
	if (running) {
		schedule_locked(id, 0);
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
}

void
mp_runner_flush(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nentries; i++)
		entries[i].due = 0;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
}

/* ---- one delivery attempt -------------------------------------------- */

int
mp_runner_deliver(const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *r, struct mp_status *st)
{
	const struct mp_loaded *d = mp_core.deliver;
	int rc;

	memset(st, 0, sizeof(*st));
	st->struct_size = sizeof(*st);
	if (d == NULL) {
		*st = (struct mp_status)MP_STATUS(451, "4.3.5", "no deliver module loaded");
		return MP_TEMPFAIL;
	}
	mp_log_set_module(d->name);
	rc = d->mod->deliver->deliver(d->ctx, env, rcpt, r, st);
	mp_log_set_module(NULL);
	return rc == MP_ERROR || rc == MP_DECLINED ? MP_TEMPFAIL : rc;
}

static int
deliver_local(const struct mp_qmsg *m, const char *rcpt,
    struct mp_status *st)
{
	struct mp_envelope env = {
		.struct_size = sizeof(env), .queue_id = m->id,
		.sender = m->sender, .rcpts = (const char *const *)m->rcpts,
		.nrcpt = m->nrcpt, .arrival = m->arrival,
		.helo = m->helo, .client_addr = m->client,
		.auth_user = m->auth_user[0] ? m->auth_user : NULL,
	};
	struct mp_reader r;
	int rc;

	if (mp_queue_reader_open(mp_core.queue_dir, m, &r) < 0) {
		*st = (struct mp_status)MP_STATUS(451, "4.3.0", "cannot read queue file");
		return MP_TEMPFAIL;
	}
	rc = mp_runner_deliver(&env, rcpt, &r, st);
	mp_queue_reader_close(&r);
	return rc;
}

static int
is_local(const struct mp_qmsg *m, size_t i)
{
	const char *at = strrchr(m->rcpts[i], '@');

	if (m->relay && m->relay[i] && m->relay[i][0])
		return 0;
	return at && mp_core_is_local_domain(at + 1);
}

void
mp_runner_log_result(const char *rcpt, int rc, const struct mp_status *st,
    const char *via)
{
	const char *what = rc == MP_OK ? "delivered" :
	    rc == MP_PERMFAIL ? "bounced" : "deferred";

	mp_log(rc == MP_OK ? MP_LOG_INFO : MP_LOG_NOTICE,
	    "%s to=<%s> via=%s dsn=%s (%d %s)", what, rcpt, via,
	    st->enhanced[0] ? st->enhanced : "4.0.0", st->reply, st->text);
}

/* Every pending recipient: local ones through the deliver module, the
 * rest through the SMTP client; results in r (one per recipient). */
static void
attempt(const struct mp_qmsg *m, struct client_rcpt *r, size_t *nr)
{
	struct client_rcpt *remote = mp_xcalloc(m->nrcpt, sizeof(*remote));
	size_t nremote = 0;

	*nr = 0;
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (m->done[i])
			continue;
		if (!is_local(m, i)) {
			remote[nremote++] = (struct client_rcpt){ .index = i };
			continue;
		}
		struct client_rcpt *x = &r[(*nr)++];
		x->index = i;
		x->rc = deliver_local(m, m->rcpts[i], &x->st);
		mp_runner_log_result(m->rcpts[i], x->rc, &x->st,
		    mp_core.deliver ? mp_core.deliver->name : "none");
	}
	if (nremote)
		mp_outbound_deliver(m, remote, nremote);
	for (size_t k = 0; k < nremote; k++) {
		mp_runner_log_result(m->rcpts[remote[k].index], remote[k].rc, &remote[k].st,
		    "smtp");
		r[(*nr)++] = remote[k];
	}
	free(remote);
}

/* What the retry policy says now (the module, or the core's defaults). */
static void
retry_decision(const struct mp_qmsg *m, const struct mp_status *last,
    struct mp_retry_decision *d)
{
	time_t now = time(NULL);
	struct mp_retry_info info = {
		.struct_size = sizeof(info), .arrival = m->arrival,
		.last_attempt = m->last_attempt, .attempts = m->attempts,
		.warned = m->warned, .last_status = last,
	};

	memset(d, 0, sizeof(*d));
	d->struct_size = sizeof(*d);
	if (mp_core.retry) {
		mp_log_set_module(mp_core.retry->name);
		int rc = mp_core.retry->mod->retry->schedule(mp_core.retry->ctx,
		    &info, d);
		mp_log_set_module(NULL);
		if (rc == MP_OK && d->next_attempt > now)
			return;
		memset(d, 0, sizeof(*d));
	}
	d->give_up = now - m->arrival >= mp_core.queue.give_up_after;
	d->send_warning = !m->warned && !d->give_up &&
	    now - m->arrival >= mp_core.queue.warn_after;
	d->next_attempt = now + mp_core.queue.retry_interval;
}

/* Returns the next due time, or 0 when the message is finished. */
static time_t
run_message(struct mp_qmsg *m)
{
	struct client_rcpt *r = mp_xcalloc(m->nrcpt, sizeof(*r));
	size_t nr, nfailed = 0, ndelayed = 0, pending = 0;
	struct dsn_rcpt *failed = mp_xcalloc(m->nrcpt, sizeof(*failed));
	struct dsn_rcpt *delayed = mp_xcalloc(m->nrcpt, sizeof(*delayed));
	struct mp_status last = { .struct_size = sizeof(last) };
	struct mp_retry_decision d = { 0 };
	time_t next = 0;

	attempt(m, r, &nr);
	m->attempts++;
	m->last_attempt = time(NULL);
	for (size_t k = 0; k < nr; k++) {
		if (r[k].rc == MP_TEMPFAIL || r[k].rc == MP_ERROR ||
		    r[k].rc == MP_DECLINED) {
			last = r[k].st;
			delayed[ndelayed++] = (struct dsn_rcpt){ m->rcpts[r[k].index], r[k].st };
			snprintf(m->last_error, sizeof(m->last_error), "%d %s %s",
			    r[k].st.reply, r[k].st.enhanced, r[k].st.text);
			continue;
		}
		m->done[r[k].index] = 1;
		if (r[k].rc == MP_PERMFAIL)
			failed[nfailed++] = (struct dsn_rcpt){ m->rcpts[r[k].index], r[k].st };
	}
	if (ndelayed) {
		retry_decision(m, &last, &d);
		if (d.give_up) {
			for (size_t k = 0; k < ndelayed; k++) {
				struct dsn_rcpt *x = &delayed[k];
				char text[sizeof(x->status.text)];
				snprintf(text, sizeof(text), "delivery time expired; last error: %.180s",
				    x->status.text);
				snprintf(x->status.text, sizeof(x->status.text), "%s", text);
				failed[nfailed++] = *x;
				for (size_t i = 0; i < m->nrcpt; i++)
					if (m->rcpts[i] == x->address)
						m->done[i] = 1;
				mp_log(MP_LOG_NOTICE, "bounced to=<%s> (gave up after %lld s)",
				    x->address, (long long)(time(NULL) - m->arrival));
			}
			ndelayed = 0;
		} else if (d.send_warning) {
			if (mp_dsn_send(m, delayed, ndelayed, DSN_DELAYED) == 0)
				m->warned = 1;
		}
	}
	if (nfailed && mp_dsn_send(m, failed, nfailed, DSN_FAILED) < 0) {
		/* Keep the failures pending so the bounce is not lost. */
		mp_log(MP_LOG_ERR, "cannot queue bounce; will try again");
		for (size_t k = 0; k < nfailed; k++)
			for (size_t i = 0; i < m->nrcpt; i++)
				if (m->rcpts[i] == failed[k].address)
					m->done[i] = 0;
	}
	for (size_t i = 0; i < m->nrcpt; i++)
		pending += !m->done[i];
	if (pending) {
		next = d.next_attempt > time(NULL) ? d.next_attempt :
		    time(NULL) + mp_core.queue.retry_interval;
		m->next_attempt = next;
		if (mp_queue_save_status(mp_core.queue_dir, m) < 0)
			mp_log_errno(MP_LOG_ERR, "cannot save queue status");
	} else if (mp_queue_remove(mp_core.queue_dir, m->id) < 0)
		mp_log_errno(MP_LOG_ERR, "cannot remove finished message");
	else
		mp_log(MP_LOG_INFO, "removed (all recipients done)");
	free(r);
	free(failed);
	free(delayed);
	return next;
}

/* Returns the next due time, 0 to forget the message. */
static time_t
process(const char *id)
{
	struct mp_qmsg m;
	char why[128];
	time_t next;
	int rc = mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why));

	if (rc == -2) {
		mp_log(MP_LOG_ERR, "corrupt queue file moved to corrupt/: %s", why);
		if (mp_queue_quarantine(mp_core.queue_dir, id) < 0)
			mp_log_errno(MP_LOG_ERR, "cannot move corrupt queue file");
		return 0;
	}
	if (rc < 0) {
		if (errno != ENOENT)
			mp_log_errno(MP_LOG_ERR, "cannot read queue file");
		return 0;
	}
	next = run_message(&m);
	mp_qmsg_free(&m);
	return next;
}

/* ---- workers ------------------------------------------------------------- */

/* Caller holds lock. The earliest due idle entry, or NULL. */
static struct entry *
earliest(void)
{
	struct entry *best = NULL;

	for (size_t i = 0; i < nentries; i++)
		if (!entries[i].busy && (!best || entries[i].due < best->due))
			best = &entries[i];
	return best;
}

static void
wait_for_work(struct entry *e)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	if (e == NULL || e->due - until.tv_sec > 60)
		until.tv_sec += 60;
	else
		until.tv_sec = e->due;
	pthread_cond_timedwait(&wake, &lock, &until);
}

static void
work_on(struct entry *e)
{
	char id[MP_QID_SIZE];
	time_t next;

	e->busy = 1;
	e->due = IN_PROGRESS;	/* a notify meanwhile resets it to 0 */
	busy_workers++;
	memcpy(id, e->id, sizeof(id));
	pthread_mutex_unlock(&lock);
	mp_log_set_queue_id(id);
	next = process(id);
	mp_log_set_queue_id(NULL);
	pthread_mutex_lock(&lock);
	busy_workers--;
	e = find(id);
	if (e) {
		e->busy = 0;
		if (next == 0)
			forget_locked(id);
		else if (e->due == IN_PROGRESS)
			e->due = next;
	}
	pthread_cond_broadcast(&idle);
}

static void *
worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping) {
		struct entry *e = earliest();
		if (e && e->due <= time(NULL)) {
			work_on(e);
			continue;
		}
		/* Nothing due: no connection stays open while we wait. */
		pthread_mutex_unlock(&lock);
		smtp_client_release();
		pthread_mutex_lock(&lock);
		e = earliest();
		if (!(e && e->due <= time(NULL)) && !stopping)
			wait_for_work(e);
	}
	pthread_mutex_unlock(&lock);
	smtp_client_release();
	return NULL;
}

static void
scan_one(void *arg, const char *id)
{
	struct mp_qmsg m;
	char why[128];
	int rc;

	(void)arg;
	rc = mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why));
	if (rc == -2) {
		mp_log(MP_LOG_ERR, "%s: corrupt queue file moved to corrupt/: %s",
		    id, why);
		mp_queue_quarantine(mp_core.queue_dir, id);
		return;
	}
	if (rc < 0)
		return;
	if (find(id) == NULL)
		schedule_locked(id, m.next_attempt);
	mp_qmsg_free(&m);
}

void
mp_runner_rescan(void)
{
	pthread_mutex_lock(&lock);
	mp_queue_scan(mp_core.queue_dir, scan_one, NULL);
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
}

int
mp_runner_start(void)
{
	int n;

	/* A restart is what follows a crash: clear what the crash left. */
	if ((n = mp_maildir_clean_tmp(mp_core.queue_dir, mp_core.queue.tmp_max_age)) > 0)
		mp_log(MP_LOG_NOTICE, "removed %d file(s) unchanged for queue.tmp_max_age "
		    "(%llds) from queue/tmp (left by a crash)", n, mp_core.queue.tmp_max_age);
	pthread_mutex_lock(&lock);
	running = 1;
	n = mp_queue_scan(mp_core.queue_dir, scan_one, NULL);
	pthread_mutex_unlock(&lock);
	if (n < 0) {
		mp_log_errno(MP_LOG_ERR, "cannot scan %s", mp_core.queue_dir);
		return -1;
	}
	mp_log(MP_LOG_INFO, "queue runner: %d queued message(s), %lld workers",
	    n, mp_core.queue.workers);
	for (long long i = 0; i < mp_core.queue.workers; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) != 0)
			return -1;
		pthread_detach(t);
	}
	return 0;
}

void
mp_runner_stop(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_broadcast(&wake);
	while (busy_workers > 0)
		if (pthread_cond_timedwait(&idle, &lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&lock);
}
