/*
 * tests/unit/test_runner.c - one delivery attempt of a queued message,
 * step by step (core/runner.c): classify builds the per-recipient
 * records from a real queue file; decide turns the attempt's results
 * into done flags and the retry decision (partial success, temporary
 * against permanent failure, the delay warning once at 4 h, the bounce
 * at exactly 5 days); persist queues the DSNs NOTIFY asks for and
 * writes the status file or removes the message. No module is loaded,
 * so the retry decision is the core's fallback policy; one test loads a
 * fake retry module to show its decision wins and its failure does not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "loader.h"
#include "queue.h"
#include "queue_fixture.h"
#include "rcpt.h"
#include "runner.h"
#include "settings.h"
#include "test.h"

#define HOUR 3600
#define DAY (24 * HOUR)

static char state[] = "/tmp/merpati-test-runner-XXXXXX";
static const char *domains[] = { "example.test" };

/* Queue a message from sender to the three recipients below, arrived
 * age seconds ago; load it into *m. */
static void
queue_message(struct mp_qmsg *m, const char *sender, time_t age)
{
	static char *rcpts[] = { (char *)"local@example.test",
	    (char *)"far@remote.test", (char *)"routed@example.test" };
	static char *notify[] = { NULL, (char *)"NEVER", (char *)"SUCCESS,DELAY" };
	static char *orcpt[] = { (char *)"rfc822;Local@example.test", NULL, NULL };
	static char *relay[] = { NULL, NULL, (char *)"10.0.0.5:2525" };
	struct mp_qmsg env = { 0 };

	env.sender = (char *)sender;
	env.rcpts = rcpts;
	env.notify = notify;
	env.orcpt = orcpt;
	env.relay = relay;
	env.nrcpt = 3;
	env.helo = env.client = env.auth_user = (char *)"";
	env.arrival = time(NULL) - age;
	fixture_queue(&env, "Subject: t\r\n\r\nbody\r\n", m);
}

static void
count_one(void *arg, const char *id)
{
	(void)id;
	++*(int *)arg;
}

/* Messages in the queue now (the one under test and any DSN). */
static int
queued(void)
{
	int n = 0;

	mp_queue_scan(mp_core.queue_dir, count_one, &n);
	return n;
}

static void
empty_queue(void *arg, const char *id)
{
	(void)arg;
	mp_queue_remove(mp_core.queue_dir, id);
}

static void
set_result(struct mp_rcpt *r, int rc, int reply, const char *enhanced,
    const char *text)
{
	r->rc = rc;
	r->status.reply = reply;
	snprintf(r->status.enhanced, sizeof(r->status.enhanced), "%s", enhanced);
	snprintf(r->status.text, sizeof(r->status.text), "%s", text);
}

static void
test_classify(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[3];
	char why[128];

	queue_message(&m, "s@example.test", 0);
	CHECK("classify: all pending", mp_runner_classify(&m, r) == 3);
	CHECK_STR("classify: address", r[1].address, "far@remote.test");
	CHECK("classify: index", r[0].index == 0 && r[2].index == 2);
	CHECK("classify: local domain is local", r[0].path == MP_RCPT_LOCAL);
	CHECK("classify: other domain is remote", r[1].path == MP_RCPT_REMOTE);
	CHECK("classify: a relay makes a local domain remote",
	    r[2].path == MP_RCPT_REMOTE && r[2].relay &&
	    strcmp(r[2].relay, "10.0.0.5:2525") == 0);
	CHECK("classify: ORCPT kept", r[0].orcpt &&
	    strcmp(r[0].orcpt, "rfc822;Local@example.test") == 0 && r[1].orcpt == NULL);
	CHECK("classify: NOTIFY kept", r[0].notify == NULL &&
	    r[1].notify && strcmp(r[1].notify, "NEVER") == 0);
	m.done[1] = 1;
	mp_queue_save_status(mp_core.queue_dir, &m);
	char id[MP_QID_SIZE];
	snprintf(id, sizeof(id), "%s", m.id);
	mp_qmsg_free(&m);
	mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why));
	CHECK("classify: done from the status file", mp_runner_classify(&m, r) == 2 &&
	    r[1].done && !r[0].done && !r[2].done);
	mp_queue_remove(mp_core.queue_dir, id);
	mp_qmsg_free(&m);
}

static int dir_answer;		/* what the fake directory says */
static int dir_calls;

static int
fake_domain_exists(void *ctx, const char *domain, const char **error_r)
{
	dir_calls++;
	*error_r = "directory down";
	return strcmp(domain, "remote.test") == 0 ? dir_answer : 0;
}

static const struct mp_auth_ops dir_ops = { .struct_size = sizeof(dir_ops),
	.domain_exists = fake_domain_exists };

/* Domains the auth provider's directory knows are local too; when it
 * fails, the recipient waits (451) instead of guessing local or remote. */
static void
test_classify_directory(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[3];
	struct mp_runner_plan p;

	mp_core.auth.ops = &dir_ops;
	queue_message(&m, "s@example.test", 0);
	dir_answer = 1;
	dir_calls = 0;
	mp_runner_classify(&m, r);
	CHECK("classify: a directory domain is local", r[1].path == MP_RCPT_LOCAL);
	CHECK("classify: the static list and relays need no lookup",
	    dir_calls == 1 && r[0].path == MP_RCPT_LOCAL && r[2].path == MP_RCPT_REMOTE);
	dir_answer = -1;
	mp_runner_classify(&m, r);
	CHECK("classify: a failed lookup defers with 451 4.3.0",
	    r[1].path == MP_RCPT_UNKNOWN && r[1].rc == MP_TEMPFAIL &&
	    r[1].status.reply == 451 && strcmp(r[1].status.enhanced, "4.3.0") == 0 &&
	    strstr(r[1].status.text, "directory down") != NULL);
	r[0].rc = MP_OK;
	r[2].rc = MP_OK;
	mp_runner_decide(&m, r, 3, time(NULL), &p);
	CHECK("decide: the unknown recipient stays pending", !r[1].done &&
	    r[0].done && r[2].done);
	mp_queue_remove(mp_core.queue_dir, m.id);
	mp_qmsg_free(&m);
	mp_core.auth.ops = NULL;
}

/* Local delivered, remote refused for good, relayed deferred. */
static void
test_partial_success(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[3];
	struct mp_runner_plan p;
	time_t now = time(NULL), next;
	char id[MP_QID_SIZE], why[128];

	queue_message(&m, "s@example.test", 60);
	snprintf(id, sizeof(id), "%s", m.id);
	mp_runner_classify(&m, r);
	set_result(&r[0], MP_OK, 250, "2.0.0", "delivered");
	set_result(&r[1], MP_PERMFAIL, 550, "5.1.1", "no such user");
	set_result(&r[2], MP_TEMPFAIL, 451, "4.4.1", "connection refused");
	mp_runner_decide(&m, r, 3, now, &p);
	CHECK("decide: delivered is done", r[0].done && r[0].rc == MP_OK);
	CHECK("decide: permanent failure is done", r[1].done && r[1].rc == MP_PERMFAIL);
	CHECK("decide: temporary failure stays pending", !r[2].done &&
	    r[2].rc == MP_TEMPFAIL);
	CHECK("decide: the attempt is counted", m.attempts == 1 && m.last_attempt == now);
	CHECK_STR("decide: last error", m.last_error, "451 4.4.1 connection refused");
	CHECK("decide: next attempt after queue.retry_interval",
	    p.next_attempt == now + 900 && !p.warn);
	next = mp_runner_persist(&m, r, 3, &p, now);
	CHECK("persist: next due time", next == now + 900);
	CHECK("persist: NOTIFY=NEVER means no bounce for the refused one",
	    queued() == 1);
	mp_qmsg_free(&m);
	CHECK("persist: status file written", mp_queue_load(mp_core.queue_dir, id,
	    &m, why, sizeof(why)) == 0 && m.done[0] && m.done[1] && !m.done[2] &&
	    m.attempts == 1 && m.next_attempt == now + 900);

	/* The next run: the deferred one is delivered, the message goes. */
	mp_runner_classify(&m, r);
	set_result(&r[2], MP_OK, 250, "2.0.0", "ok");
	mp_runner_decide(&m, r, 3, now, &p);
	CHECK("persist: all done removes the message",
	    mp_runner_persist(&m, r, 3, &p, now) == 0 && queued() == 0);
	mp_qmsg_free(&m);
}

/* A message from sender whose local@ is refused for good and the other
 * two delivered, decided at now. */
static void
refuse_first(struct mp_qmsg *m, struct mp_rcpt *r, const char *sender,
    struct mp_runner_plan *p, time_t now)
{
	queue_message(m, sender, 60);
	mp_runner_classify(m, r);
	set_result(&r[0], MP_PERMFAIL, 550, "5.2.2", "mailbox full");
	set_result(&r[1], MP_OK, 250, "2.0.0", "ok");
	set_result(&r[2], MP_OK, 250, "2.0.0", "ok");
	mp_runner_decide(m, r, 3, now, p);
}

/* A permanent failure is bounced to the sender: one DSN is queued. */
static void
test_bounce_queued(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[3];
	struct mp_runner_plan p;
	time_t now = time(NULL);

	refuse_first(&m, r, "s@example.test", &p, now);
	CHECK("bounce: the message is finished",
	    mp_runner_persist(&m, r, 3, &p, now) == 0);
	CHECK("bounce: one DSN queued", queued() == 1);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);

	/* The null sender gets no bounce (it would loop). */
	refuse_first(&m, r, "", &p, now);
	mp_runner_persist(&m, r, 3, &p, now);
	CHECK("bounce: none to the null sender", queued() == 0);
	mp_qmsg_free(&m);
}

/* When the bounce cannot be queued the failure stays pending. */
static void
test_bounce_not_lost(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[3];
	struct mp_runner_plan p;
	time_t now = time(NULL);
	char saved[sizeof(mp_core.queue_dir)];

	refuse_first(&m, r, "s@example.test", &p, now);
	memcpy(saved, mp_core.queue_dir, sizeof(saved));
	snprintf(mp_core.queue_dir, sizeof(mp_core.queue_dir), "%s/gone", state);
	time_t next = mp_runner_persist(&m, r, 3, &p, now);
	memcpy(mp_core.queue_dir, saved, sizeof(saved));
	CHECK("bounce lost: the failed recipient stays pending",
	    !r[0].done && !m.done[0] && m.done[1] && m.done[2]);
	CHECK("bounce lost: tried again after the interval", next == now + 900);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);
}

/* Every recipient deferred at age; returns the plan. */
static void
defer_all(struct mp_qmsg *m, struct mp_rcpt *r, time_t age, int warned,
    struct mp_runner_plan *p, time_t *now)
{
	queue_message(m, "s@example.test", age);
	*now = m->arrival + age;
	m->warned = warned;
	mp_runner_classify(m, r);
	for (int i = 0; i < 3; i++)
		set_result(&r[i], MP_TEMPFAIL, 451, "4.4.1", "no answer");
	mp_runner_decide(m, r, 3, *now, p);
}

static void
test_warning(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[3];
	struct mp_runner_plan p;
	time_t now;

	defer_all(&m, r, 4 * HOUR - 1, 0, &p, &now);
	CHECK("warning: not before 4 h", !p.warn);
	mp_runner_persist(&m, r, 3, &p, now);
	CHECK("warning: none queued before 4 h", queued() == 1 && !m.warned);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);

	defer_all(&m, r, 4 * HOUR, 0, &p, &now);
	CHECK("warning: at exactly 4 h", p.warn);
	mp_runner_persist(&m, r, 3, &p, now);
	/* NOTIFY: default and SUCCESS,DELAY want it, NEVER does not; one DSN. */
	CHECK("warning: one delay DSN queued, the message marked warned",
	    queued() == 2 && m.warned);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);

	defer_all(&m, r, 4 * HOUR + 60, 1, &p, &now);
	CHECK("warning: only once", !p.warn);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);
}

static void
test_last_attempt(void)
{
	struct mp_qmsg m;
	struct mp_rcpt r[3];
	struct mp_runner_plan p;
	time_t now;

	defer_all(&m, r, 5 * DAY - 300, 1, &p, &now);
	CHECK("last attempt: pending just before 5 days", !r[0].done && !r[2].done);
	CHECK("last attempt: falls on the give-up time, not after it",
	    p.next_attempt == m.arrival + 5 * DAY);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);

	defer_all(&m, r, 5 * DAY - 1, 1, &p, &now);
	CHECK("last attempt: 1 s before 5 days still pending", !r[0].done &&
	    p.next_attempt == now + 1);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);

	defer_all(&m, r, 5 * DAY, 0, &p, &now);
	CHECK("last attempt: at exactly 5 days every deferred one bounces",
	    r[0].done && r[1].done && r[2].done && r[0].rc == MP_PERMFAIL);
	CHECK("last attempt: the bounce says why", strstr(r[0].status.text,
	    "delivery time expired; last error: 451 4.4.1 no answer") != NULL);
	CHECK("last attempt: status 5.4.7 (delivery time expired)",
	    strcmp(r[0].status.enhanced, "5.4.7") == 0 && r[0].status.reply == 554);
	CHECK("last attempt: no warning together with the bounce", !p.warn);
	CHECK("last attempt: the message is finished",
	    mp_runner_persist(&m, r, 3, &p, now) == 0);
	/* NOTIFY=NEVER (far@) and SUCCESS,DELAY (routed@) are left out;
	 * local@ (default NOTIFY) is reported. */
	CHECK("last attempt: one bounce queued", queued() == 1);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);
}

static void
test_notify_wanted(void)
{
	struct mp_rcpt r = { .address = "a@b.test" };

	CHECK("NOTIFY absent: failure and delay", mp_dsn_wanted(&r, DSN_FAILED) &&
	    mp_dsn_wanted(&r, DSN_DELAYED));
	r.notify = "NEVER";
	CHECK("NOTIFY=NEVER: neither", !mp_dsn_wanted(&r, DSN_FAILED) &&
	    !mp_dsn_wanted(&r, DSN_DELAYED));
	r.notify = "success,failure";
	CHECK("NOTIFY=SUCCESS,FAILURE: failure only (any case)",
	    mp_dsn_wanted(&r, DSN_FAILED) && !mp_dsn_wanted(&r, DSN_DELAYED));
}

/* A retry module's decision replaces the fallback; a failing one not. */
static int fake_rc;

static int
fake_schedule(void *ctx, const struct mp_retry_info *info,
    struct mp_retry_decision *d)
{
	(void)ctx;
	d->next_attempt = info->last_attempt + 42;
	d->send_warning = 1;
	return fake_rc;
}

static void
test_retry_module(void)
{
	static const struct mp_retry_ops ops = { sizeof(ops), fake_schedule };
	static const struct mp_module mod = { .abi_version = MP_ABI_VERSION,
	    .struct_size = sizeof(mod), .name = "fake_retry",
	    .kinds = MP_KIND_RETRY, .retry = &ops };
	struct mp_loaded loaded = { .name = "fake_retry", .mod = &mod };
	struct mp_qmsg m;
	struct mp_rcpt r[3];
	struct mp_runner_plan p;
	time_t now;

	mp_core.retry = &loaded;
	fake_rc = MP_OK;
	defer_all(&m, r, 60, 0, &p, &now);
	CHECK("retry module: its decision is used", p.next_attempt == now + 42 && p.warn);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);
	fake_rc = MP_ERROR;
	defer_all(&m, r, 60, 0, &p, &now);
	CHECK("retry module: MP_ERROR falls back to the core policy",
	    p.next_attempt == now + 900 && !p.warn);
	mp_queue_scan(mp_core.queue_dir, empty_queue, NULL);
	mp_qmsg_free(&m);
	mp_core.retry = NULL;
}

int
main(void)
{
	if (fixture_start(state) < 0)
		return 1;
	mp_core.domains = domains;
	mp_core.ndomains = 1;
	mp_core.queue.retry_interval = 900;
	mp_core.queue.warn_after = 4 * HOUR;
	mp_core.queue.give_up_after = 5 * DAY;
	test_classify();
	test_classify_directory();
	test_partial_success();
	test_bounce_queued();
	test_bounce_not_lost();
	test_warning();
	test_last_attempt();
	test_notify_wanted();
	test_retry_module();
	if (fixture_end(state) < 0)
		return 1;
	TEST_EXIT();
}
