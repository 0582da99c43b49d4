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

#include "delivery_log.h"
#include "destination.h"
#include "dsn.h"
#include "modcall.h"
#include "outbound.h"
#include "log.h"
#include "queue.h"
#include "rcpt.h"
#include "reload.h"
#include "requeue.h"
#include "runner.h"
#include "settings.h"
#include "smtp_client.h"
#include "tls.h"
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
	mp_dest_forget_dead();	/* the admin says: try them all now */
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nentries; i++)
		entries[i].due = 0;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
}

/* ---- one delivery attempt: classify -> attempt -> decide -> persist ---- */

size_t
mp_runner_classify(const struct mp_qmsg *m, struct mp_rcpt *r)
{
	size_t pending = 0;

	for (size_t i = 0; i < m->nrcpt; i++) {
		const char *relay = m->relay && m->relay[i] && m->relay[i][0] ?
		    m->relay[i] : NULL;
		const char *at = strrchr(m->rcpts[i], '@');
		const char *err = NULL;
		int local = relay == NULL && at ? mp_core_local_domain(at + 1, &err) : 0;
		r[i] = (struct mp_rcpt){
			.index = i, .address = m->rcpts[i],
			.orcpt = m->orcpt && m->orcpt[i] && m->orcpt[i][0] ? m->orcpt[i] : NULL,
			.notify = m->notify && m->notify[i] && m->notify[i][0] ?
			    m->notify[i] : NULL,
			.relay = relay,
			.path = local > 0 ? MP_RCPT_LOCAL : local < 0 ? MP_RCPT_UNKNOWN :
			    MP_RCPT_REMOTE,
			.rc = MP_OK, .done = m->done[i] != 0,
		};
		/* Not knowing whether the domain is ours, guessing either way
		 * could send local mail to the MX (ourselves) or remote mail
		 * into a mailbox: wait for the directory instead. */
		if (local < 0) {
			r[i].rc = MP_TEMPFAIL;
			r[i].status.reply = 451;
			snprintf(r[i].status.enhanced, sizeof(r[i].status.enhanced), "4.3.0");
			snprintf(r[i].status.text, sizeof(r[i].status.text),
			    "domain lookup failed: %.200s", err ? err : "unknown error");
		}
		pending += !r[i].done;
	}
	return pending;
}

static void
deliver_local(const struct mp_qmsg *m, struct mp_rcpt *x)
{
	struct mp_envelope env = {
		.struct_size = sizeof(env), .queue_id = m->id,
		.sender = m->sender, .rcpts = (const char *const *)m->rcpts,
		.nrcpt = m->nrcpt, .arrival = m->arrival,
		.helo = m->helo, .client_addr = m->client,
		.auth_user = m->auth_user[0] ? m->auth_user : NULL,
	};
	struct mp_reader r;

	if (mp_queue_reader_open(mp_core.queue_dir, m, &r) < 0) {
		x->rc = MP_TEMPFAIL;
		x->status.reply = 451;
		snprintf(x->status.enhanced, sizeof(x->status.enhanced), "4.3.0");
		snprintf(x->status.text, sizeof(x->status.text), "cannot read queue file");
		return;
	}
	x->rc = mp_call_deliver(&env, x->address, &r, &x->status);
	mp_queue_reader_close(&r);
}

void
mp_runner_log_result(const char *rcpt, int rc, const struct mp_status *st,
    const char *via)
{
	mp_delivery_log_direct(rcpt, rc, st, via);
}

/* Every pending recipient: local ones through the deliver module, the
 * rest through outbound (SMTP); each record gets rc and status. */
static void
attempt(const struct mp_qmsg *m, struct mp_rcpt *r, size_t n)
{
	struct mp_rcpt **remote = mp_xcalloc(n ? n : 1, sizeof(*remote));
	size_t nremote = 0;

	for (size_t i = 0; i < n; i++) {
		if (r[i].done)
			continue;
		if (r[i].path == MP_RCPT_UNKNOWN) {
			mp_runner_log_result(r[i].address, r[i].rc, &r[i].status, "none");
			continue;
		}
		if (r[i].path == MP_RCPT_REMOTE) {
			remote[nremote++] = &r[i];
			continue;
		}
		deliver_local(m, &r[i]);
		mp_delivery_log(m, &r[i], mp_core.deliver ? mp_core.deliver->name : "none");
	}
	if (nremote)
		mp_outbound_deliver(m, remote, nremote);
	for (size_t k = 0; k < nremote; k++)
		mp_delivery_log(m, remote[k], NULL);
	free(remote);
}

/* What the retry policy says at now: the module's, or the same policy
 * (merpati/retry.h) with the core's queue.* settings. */
static void
retry_decision(const struct mp_qmsg *m, const struct mp_status *last,
    time_t now, struct mp_retry_decision *d)
{
	struct mp_retry_info info = {
		.struct_size = sizeof(info), .arrival = m->arrival,
		.last_attempt = m->last_attempt, .attempts = m->attempts,
		.warned = m->warned, .last_status = last,
	};

	memset(d, 0, sizeof(*d));
	d->struct_size = sizeof(*d);
	if (mp_call_retry(&info, d) == MP_OK && d->next_attempt > now)
		return;
	memset(d, 0, sizeof(*d));
	d->struct_size = sizeof(*d);
	mp_retry_policy(&info, now, mp_core.queue.retry_interval,
	    mp_core.queue.warn_after, mp_core.queue.give_up_after, d);
}

/* A deferred recipient past the give-up time: bounced as 5.4.7
 * (RFC 3463: delivery time expired), with its last error in the text. */
static void
expire(const struct mp_qmsg *m, struct mp_rcpt *x, time_t now)
{
	char text[sizeof(x->status.text)];

	snprintf(text, sizeof(text), "delivery time expired; last error: %d %.15s %.160s",
	    x->status.reply, x->status.enhanced, x->status.text);
	snprintf(x->status.text, sizeof(x->status.text), "%s", text);
	snprintf(x->status.enhanced, sizeof(x->status.enhanced), "5.4.7");
	x->status.reply = 554;
	x->rc = MP_PERMFAIL;
	x->done = 1;
	mp_delivery_log(m, x, "expired");
}

void
mp_runner_decide(struct mp_qmsg *m, struct mp_rcpt *r, size_t n, time_t now,
    struct mp_runner_plan *p)
{
	const struct mp_rcpt *last = NULL;
	struct mp_retry_decision d;

	memset(p, 0, sizeof(*p));
	m->attempts++;
	m->last_attempt = now;
	for (size_t i = 0; i < n; i++) {
		if (r[i].done)
			continue;	/* finished in an earlier run */
		if (r[i].rc == MP_OK || r[i].rc == MP_PERMFAIL) {
			r[i].done = 1;
			continue;
		}
		r[i].rc = MP_TEMPFAIL;
		last = &r[i];
	}
	if (last == NULL)
		return;
	snprintf(m->last_error, sizeof(m->last_error), "%d %s %s",
	    last->status.reply, last->status.enhanced, last->status.text);
	retry_decision(m, &last->status, now, &d);
	if (d.give_up) {
		for (size_t i = 0; i < n; i++)
			if (!r[i].done)
				expire(m, &r[i], now);
		return;
	}
	p->warn = d.send_warning;
	p->next_attempt = d.next_attempt;
}

static size_t
count_rc(const struct mp_rcpt *r, size_t n, int rc)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += r[i].rc == rc;
	return k;
}

/* The bounce and the delay warning the attempt calls for. */
static void
notify_sender(struct mp_qmsg *m, struct mp_rcpt *r, size_t n,
    const struct mp_runner_plan *p)
{
	if (p->warn && mp_dsn_send(m, r, n, DSN_DELAYED) == 0)
		m->warned = 1;
	if (count_rc(r, n, MP_PERMFAIL) == 0 || mp_dsn_send(m, r, n, DSN_FAILED) == 0)
		return;
	/* Keep the failures pending so the bounce is not lost. */
	mp_log(MP_LOG_ERR, "cannot queue bounce; will try again");
	for (size_t i = 0; i < n; i++)
		if (r[i].rc == MP_PERMFAIL)
			r[i].done = 0;
}

time_t
mp_runner_persist(struct mp_qmsg *m, struct mp_rcpt *r, size_t n,
    const struct mp_runner_plan *p, time_t now)
{
	size_t pending = 0;

	notify_sender(m, r, n, p);
	for (size_t i = 0; i < n; i++) {
		m->done[r[i].index] = (unsigned char)r[i].done;
		pending += !r[i].done;
	}
	if (pending == 0) {
		if (mp_queue_remove(mp_core.queue_dir, m->id) < 0)
			mp_log_errno(MP_LOG_ERR, "cannot remove finished message");
		else
			mp_log(MP_LOG_INFO, "removed (all recipients done)");
		return 0;
	}
	m->next_attempt = p->next_attempt > now ? p->next_attempt :
	    now + mp_core.queue.retry_interval;
	if (mp_queue_save_status(mp_core.queue_dir, m) < 0)
		mp_log_errno(MP_LOG_ERR, "cannot save queue status");
	return m->next_attempt;
}

/* Returns the next due time, or 0 when the message is finished. */
static time_t
run_message(struct mp_qmsg *m)
{
	struct mp_rcpt *r = mp_xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(*r));
	struct mp_runner_plan plan;
	time_t next;

	mp_runner_classify(m, r);
	mp_delivery_attempt_begin();
	attempt(m, r, m->nrcpt);
	mp_runner_decide(m, r, m->nrcpt, time(NULL), &plan);
	next = mp_runner_persist(m, r, m->nrcpt, &plan, time(NULL));
	free(r);
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
	/* held (queue.h): neither tried nor expired; release rescans it */
	if (!m.held && m.reroute)
		mp_requeue_route(&m);
	next = m.held ? 0 : run_message(&m);
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
	mp_core_hold();
	next = process(id);
	mp_core_release();
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

/* Closing a kept connection talks SMTP (QUIT) with the configuration's
 * timeouts: held like an attempt, never while the worker waits. */
static void
idle_outbound(void)
{
	mp_core_hold();
	mp_outbound_idle();
	mp_core_release();
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
		idle_outbound();	/* with its destination slots */
		pthread_mutex_lock(&lock);
		e = earliest();
		if (!(e && e->due <= time(NULL)) && !stopping)
			wait_for_work(e);
	}
	pthread_mutex_unlock(&lock);
	idle_outbound();
	mp_tls_thread_done();
	return NULL;
}

static void
scan_one(void *arg, const char *id)
{
	struct mp_qmsg m;
	struct entry *e;
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
	e = find(id);
	if (!m.held && e == NULL)
		schedule_locked(id, m.next_attempt);
	else if (!m.held && !e->busy && m.next_attempt < e->due)
		e->due = m.next_attempt;	/* made due by queue requeue */
	mp_qmsg_free(&m);
}

/* Called by the main thread (SIGUSR2) and by the maildrop pickup in
 * its held turn, so mp_core is safe to read. */
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
		mp_tls_thread_starting();
		if (pthread_create(&t, NULL, worker, NULL) != 0) {
			mp_tls_thread_not_started();
			return -1;
		}
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
