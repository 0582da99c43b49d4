/*
 * tests/unit/test_ratelimit.c - the sliding-window table of
 * merpati/ratewin.h (window edges, give back, LRU eviction under a flood
 * of keys, IPv6 /64 keys, concurrent takers) and the ratelimit module's
 * engine (scopes, all-or-nothing counting, the 451 4.7.1 text), all on
 * an injected clock so that nothing depends on timing.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <merpati/ratewin.h>

#include "mock_host.h"
#include "test.h"
#include "modules/ratelimit/ratelimit.h"

static long long fake_now;

static long long
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static struct mp_ratewin *
fake_table(long long window_ms, size_t cap)
{
	struct mp_ratewin *w = mp_ratewin_new(window_ms, cap);

	mp_ratewin_set_clock(w, fake_clock, NULL);
	return w;
}

static void
test_window_slides(void)
{
	struct mp_ratewin *w;
	int taken = 0;

	fake_now = 1000000;
	w = fake_table(8000, 10);	/* 8 s window, 1 s slots */
	for (int i = 0; i < 5; i++)
		taken += mp_ratewin_take(w, "192.0.2.1", 3);
	CHECK("window: 3 of 5 taken with limit 3", taken == 3);
	CHECK("window: count is 3", mp_ratewin_count(w, "192.0.2.1") == 3);
	CHECK("window: another key has its own count",
	    mp_ratewin_take(w, "192.0.2.2", 3) == 1);
	fake_now += 7999;
	CHECK("window: still refused just before the window ends",
	    mp_ratewin_take(w, "192.0.2.1", 3) == 0);
	fake_now += 1;
	CHECK("window: still refused at the window (never early)",
	    mp_ratewin_take(w, "192.0.2.1", 3) == 0);
	fake_now += 1000;	/* window + one slot: forgotten */
	CHECK("window: taken again within window + window/8",
	    mp_ratewin_take(w, "192.0.2.1", 3) == 1);
	CHECK("window: old events gone, one new", mp_ratewin_count(w,
	    "192.0.2.1") == 1);
	mp_ratewin_free(w);
}

/* Events spread over the window leave one slot at a time. */
static void
test_window_partial(void)
{
	struct mp_ratewin *w;

	fake_now = 0;
	w = fake_table(8000, 10);
	mp_ratewin_take(w, "k", 100);		/* t = 0 s */
	fake_now = 4000;
	mp_ratewin_take(w, "k", 100);		/* t = 4 s */
	mp_ratewin_take(w, "k", 100);
	fake_now = 8999;
	CHECK("partial: all three within window + slot",
	    mp_ratewin_count(w, "k") == 3);
	fake_now = 9000;
	CHECK("partial: the first left after window + slot",
	    mp_ratewin_count(w, "k") == 2);
	fake_now = 13000;
	CHECK("partial: all left", mp_ratewin_count(w, "k") == 0);
	fake_now = 1000000;
	CHECK("partial: a long pause clears the ring",
	    mp_ratewin_count(w, "k") == 0);
	mp_ratewin_free(w);
}

static void
test_give_back(void)
{
	struct mp_ratewin *w;

	fake_now = 50000;
	w = fake_table(60000, 10);
	CHECK("give: first taken", mp_ratewin_take(w, "u", 1) == 1);
	CHECK("give: second refused", mp_ratewin_take(w, "u", 1) == 0);
	fake_now += 20000;
	mp_ratewin_give(w, "u");
	CHECK("give: given back from an older slot",
	    mp_ratewin_count(w, "u") == 0);
	CHECK("give: taken again", mp_ratewin_take(w, "u", 1) == 1);
	mp_ratewin_give(w, "nobody");
	CHECK("give: unknown key stays unknown", mp_ratewin_keys(w) == 1);
	mp_ratewin_give(w, "u");
	mp_ratewin_give(w, "u");
	CHECK("give: never below zero", mp_ratewin_count(w, "u") == 0);
	mp_ratewin_free(w);
}

/* A flood of distinct keys costs the cap, and forgets the quietest. */
static void
test_eviction(void)
{
	struct mp_ratewin *w;
	char key[32];

	fake_now = 0;
	w = fake_table(3600000, 100);
	mp_ratewin_take(w, "busy", 10);
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
		mp_ratewin_take(w, key, 10);
		if (i % 50 == 0)	/* busy stays recently used */
			mp_ratewin_take(w, "busy", 1000);
	}
	CHECK("evict: table holds at most its cap", mp_ratewin_keys(w) == 100);
	CHECK("evict: flood evicted the rest", w->evictions == 10000 + 1 - 100);
	CHECK("evict: a recently used key keeps its count",
	    mp_ratewin_count(w, "busy") == 1 + 200);
	CHECK("evict: the oldest flood key is forgotten",
	    mp_ratewin_count(w, "10.0.0.0") == 0);
	CHECK("evict: the newest flood key is kept",
	    mp_ratewin_count(w, "10.0.39.15") == 1);
	mp_ratewin_free(w);
}

static void
test_long_keys(void)
{
	struct mp_ratewin *w = fake_table(1000, 10);
	char a[600], b[600];

	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[sizeof(b) - 2] = 'b';	/* differs past MP_RATEWIN_KEY_MAX */
	mp_ratewin_take(w, a, 5);
	CHECK("long key: compared on its first 320 octets",
	    mp_ratewin_count(w, b) == 1);
	CHECK("long key: one entry", mp_ratewin_keys(w) == 1);
	mp_ratewin_free(w);
}

static void
test_ip_keys(void)
{
	char buf[64];

	CHECK_STR("ip key: IPv4 as it is",
	    mp_ratewin_ip_key("192.0.2.7", buf, sizeof(buf)), "192.0.2.7");
	CHECK_STR("ip key: IPv6 by its /64",
	    mp_ratewin_ip_key("2001:db8:1:2:aaaa::9", buf, sizeof(buf)),
	    "2001:db8:1:2::/64");
	CHECK_STR("ip key: IPv4-mapped as IPv4",
	    mp_ratewin_ip_key("::ffff:192.0.2.7", buf, sizeof(buf)),
	    "192.0.2.7");
	CHECK_STR("ip key: loopback ::1",
	    mp_ratewin_ip_key("::1", buf, sizeof(buf)), "::/64");
	CHECK_STR("ip key: not an address, as it is",
	    mp_ratewin_ip_key("garbage:x", buf, sizeof(buf)), "garbage:x");
}

/* Real threads released together by a barrier: the limit holds exactly. */
#define THREADS 8
#define TAKES 200
#define LIMIT 777

struct race {
	struct mp_ratewin *w;
	pthread_barrier_t start;
	int taken[THREADS];
	int id;
	pthread_mutex_t id_lock;
};

static void *
racer(void *arg)
{
	struct race *r = arg;

	pthread_mutex_lock(&r->id_lock);
	int me = r->id++;
	pthread_mutex_unlock(&r->id_lock);
	pthread_barrier_wait(&r->start);
	for (int i = 0; i < TAKES; i++)
		r->taken[me] += mp_ratewin_take(r->w, i % 2 ? "a" : "b", LIMIT);
	return NULL;
}

static void
test_concurrent(void)
{
	static struct race r;
	pthread_t t[THREADS];
	int sum = 0;

	r.w = mp_ratewin_new(3600000, 16);	/* the real clock: 1 h */
	pthread_barrier_init(&r.start, NULL, THREADS);
	pthread_mutex_init(&r.id_lock, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, racer, &r);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++)
		sum += r.taken[i];
	CHECK("concurrent: exactly limit per key taken by 8 threads",
	    sum == 2 * LIMIT);
	CHECK("concurrent: counts agree", mp_ratewin_count(r.w, "a") == LIMIT &&
	    mp_ratewin_count(r.w, "b") == LIMIT);
	pthread_barrier_destroy(&r.start);
	pthread_mutex_destroy(&r.id_lock);
	mp_ratewin_free(r.w);
}

static void
engine_init(struct ratelimit *rl)
{
	memset(rl, 0, sizeof(*rl));
	rl->host = &mock_host;
	rl->table_size = 1000;
}

static void
test_engine_scopes(void)
{
	struct ratelimit rl;
	struct mp_status st = MP_STATUS(0, "", "");
	const char *alice[RL_NSCOPES] = { "192.0.2.1", "alice@example.test",
	    "example.test" };
	const char *anon[RL_NSCOPES] = { "192.0.2.1", NULL, "example.org" };
	int rc;

	engine_init(&rl);
	ratelimit_set(&rl, RL_MESSAGES, RL_IP, 3, 60);
	ratelimit_set(&rl, RL_MESSAGES, RL_USER, 2, 3600);
	ratelimit_set(&rl, RL_RECIPIENTS, RL_SENDER_DOMAIN, 1, 10);
	fake_now = 0;
	ratelimit_set_clock(&rl, fake_clock, NULL);

	CHECK("engine: message 1", ratelimit_check(&rl, RL_MESSAGES, alice,
	    &st) == MP_OK);
	CHECK("engine: message 2", ratelimit_check(&rl, RL_MESSAGES, alice,
	    &st) == MP_OK);
	rc = ratelimit_check(&rl, RL_MESSAGES, alice, &st);
	CHECK("engine: user limit refuses message 3", rc == MP_TEMPFAIL);
	CHECK("engine: 451", st.reply == 451);
	CHECK_STR("engine: 4.7.1", st.enhanced, "4.7.1");
	CHECK_STR("engine: text names the limit", st.text,
	    "Rate limit messages_per_user: more than 2 messages per 1h from "
	    "user alice@example.test; try again later");
	CHECK("engine: log line", strstr(mock_log_text(),
	    "ratelimit: refused, user alice@example.test over "
	    "messages_per_user (2 per 1h)") != NULL);
	/* the refused message gave back its IP count: one left for anon */
	CHECK("engine: refused message did not use the IP allowance",
	    ratelimit_check(&rl, RL_MESSAGES, anon, &st) == MP_OK);
	rc = ratelimit_check(&rl, RL_MESSAGES, anon, &st);
	CHECK("engine: IP limit refuses the 4th", rc == MP_TEMPFAIL &&
	    strstr(st.text, "messages_per_ip: more than 3 messages per 1m "
	    "from client 192.0.2.1") != NULL);
	CHECK("engine: recipients counted apart",
	    ratelimit_check(&rl, RL_RECIPIENTS, anon, &st) == MP_OK);
	CHECK("engine: recipient limit per sender domain",
	    ratelimit_check(&rl, RL_RECIPIENTS, anon, &st) == MP_TEMPFAIL &&
	    strstr(st.text, "recipients_per_sender_domain: more than 1 "
	    "recipients per 10s from sender domain example.org") != NULL);
	fake_now = 60000 + 7500;	/* past the 1 m window + its slot */
	CHECK("engine: IP window slid",
	    ratelimit_check(&rl, RL_MESSAGES, anon, &st) == MP_OK);
	CHECK("engine: user window has not",
	    ratelimit_check(&rl, RL_MESSAGES, alice, &st) == MP_TEMPFAIL);
	ratelimit_free_tables(&rl);
}

static void
test_engine_unlimited(void)
{
	struct ratelimit rl;
	struct mp_status st = MP_STATUS(0, "", "");
	const char *keys[RL_NSCOPES] = { "192.0.2.9", NULL, NULL };
	int ok = 1;

	engine_init(&rl);
	ratelimit_set(&rl, RL_MESSAGES, RL_USER, 1, 60);
	for (int i = 0; i < 1000; i++)
		ok &= ratelimit_check(&rl, RL_MESSAGES, keys, &st) == MP_OK;
	CHECK("engine: limits not set, and scopes absent, are unlimited", ok);
	CHECK_STR("engine: setting names", ratelimit_setting(RL_RECIPIENTS,
	    RL_USER), "recipients_per_user");
	ratelimit_free_tables(&rl);
}

int
main(void)
{
	test_window_slides();
	test_window_partial();
	test_give_back();
	test_eviction();
	test_long_keys();
	test_ip_keys();
	test_concurrent();
	test_engine_scopes();
	test_engine_unlimited();
	TEST_EXIT();
}
