/*
 * tests/unit/test_destination.c - per-destination control
 * (core/destination.c): a third thread waits while two hold the slots
 * of a destination limited to 2 and goes on once one is given back; a
 * destination backs off after destination_dead_after failed connections
 * in a row (others are unaffected, a reply resets the count); the rate
 * spaces messages; host_concurrency limits one MX host.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "destination.h"
#include "settings.h"
#include "test.h"

static pthread_barrier_t holding, let_go[2];	/* one per holder */
static atomic_int third_in;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
holder(void *arg)
{
	struct mp_status st;

	mp_dest_begin("c.test", &st);
	pthread_barrier_wait(&holding);
	pthread_barrier_wait(arg);
	mp_dest_idle();
	return NULL;
}

static void *
third(void *arg)
{
	struct mp_status st;

	(void)arg;
	if (mp_dest_begin("c.test", &st) == MP_OK)
		atomic_store(&third_in, 1);
	mp_dest_idle();
	return NULL;
}

static void
test_concurrency(void)
{
	pthread_t a, b, c;

	mp_core.outbound.destination_concurrency = 2;
	pthread_barrier_init(&holding, NULL, 3);
	pthread_barrier_init(&let_go[0], NULL, 2);
	pthread_barrier_init(&let_go[1], NULL, 2);
	pthread_create(&a, NULL, holder, &let_go[0]);
	pthread_create(&b, NULL, holder, &let_go[1]);
	pthread_barrier_wait(&holding);		/* both slots are held */
	pthread_create(&c, NULL, third, NULL);
	usleep(300 * 1000);
	CHECK("a third connection waits while 2 are held", atomic_load(&third_in) == 0);
	pthread_barrier_wait(&let_go[0]);	/* one holder gives its slot back */
	pthread_join(a, NULL);
	pthread_join(c, NULL);
	CHECK("the third goes once a slot is free", atomic_load(&third_in) == 1);
	pthread_barrier_wait(&let_go[1]);
	pthread_join(b, NULL);
	pthread_barrier_destroy(&holding);
	pthread_barrier_destroy(&let_go[0]);
	pthread_barrier_destroy(&let_go[1]);
}

static pthread_barrier_t host_held, host_go;
static atomic_int second_in;

static void *
host_holder(void *arg)
{
	struct mp_status st;

	(void)arg;
	mp_dest_host_begin("mx.test", &st);
	pthread_barrier_wait(&host_held);
	pthread_barrier_wait(&host_go);
	mp_dest_idle();
	return NULL;
}

static void *
host_second(void *arg)
{
	struct mp_status st;

	(void)arg;
	if (mp_dest_host_begin("MX.test", &st) == MP_OK)
		atomic_store(&second_in, 1);
	mp_dest_idle();
	return NULL;
}

/* host_concurrency = 1: one MX host, whatever the destination. */
static void
test_host_concurrency(void)
{
	pthread_t a, b;
	struct mp_status st;

	mp_core.outbound.host_concurrency = 1;
	pthread_barrier_init(&host_held, NULL, 2);
	pthread_barrier_init(&host_go, NULL, 2);
	pthread_create(&a, NULL, host_holder, NULL);
	pthread_barrier_wait(&host_held);
	pthread_create(&b, NULL, host_second, NULL);
	CHECK("another host is free", mp_dest_host_begin("mx2.test", &st) == MP_OK);
	mp_dest_idle();
	usleep(300 * 1000);
	CHECK("a second connection to the host waits", atomic_load(&second_in) == 0);
	pthread_barrier_wait(&host_go);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK("and goes once the first closes", atomic_load(&second_in) == 1);
	pthread_barrier_destroy(&host_held);
	pthread_barrier_destroy(&host_go);
	mp_core.outbound.host_concurrency = 0;
}

static void
fail_once(const char *dest, int connect_failed, int answered)
{
	struct mp_status st = { .struct_size = sizeof(st), .reply = 451,
	    .enhanced = "4.4.1", .text = "connect to mx: Connection refused" };

	mp_dest_begin(dest, &st);
	mp_dest_end(dest, connect_failed, answered, &st);
}

static void
test_dead_destination(void)
{
	struct mp_status st;

	mp_dest_reset();
	mp_core.outbound.destination_dead_after = 2;
	mp_core.outbound.destination_backoff = 60;
	fail_once("d.test", 1, 0);
	fail_once("d.test", 0, 1);	/* a reply: the count starts again */
	fail_once("d.test", 1, 0);
	CHECK("one failure after a reply is not dead", mp_dest_begin("d.test", &st) == MP_OK);
	snprintf(st.text, sizeof(st.text), "connect to mx: Connection refused");
	mp_dest_end("d.test", 1, 0, &st);	/* two in a row */
	CHECK("backed off after 2 failures in a row",
	    mp_dest_begin("d.test", &st) == MP_TEMPFAIL);
	CHECK("the reason names the back-off", strstr(st.text, "backed off until") != NULL);
	CHECK("and the last error", strstr(st.text, "Connection refused") != NULL);
	CHECK_STR("4.4.1", st.enhanced, "4.4.1");
	CHECK("another destination is not", mp_dest_begin("e.test", &st) == MP_OK);
	mp_dest_idle();
	mp_core.outbound.destination_dead_after = 0;
}

static void
test_rate(void)
{
	struct mp_status st;
	double start = now();

	mp_dest_reset();
	mp_core.outbound.destination_interval = 0.2;
	for (int i = 0; i < 4; i++) {
		mp_dest_begin("r.test", &st);
		mp_dest_end("r.test", 0, 1, &st);
	}
	CHECK("4 messages at 5/s take 0.6 s or more", now() - start >= 0.59);
	start = now();
	mp_dest_begin("other.test", &st);
	CHECK("another destination has its own turn", now() - start < 0.1);
	mp_dest_idle();
	mp_core.outbound.destination_interval = 0;
}

int
main(void)
{
	test_concurrency();
	test_host_concurrency();
	test_dead_destination();
	test_rate();
	TEST_EXIT();
}
