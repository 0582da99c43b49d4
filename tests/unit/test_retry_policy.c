/*
 * tests/unit/test_retry_policy.c - mp_retry_policy() (merpati/retry.h),
 * the one retry policy of the retry module and the core's fallback, at
 * its boundaries with a fixed clock: the delay warning at exactly 4 h
 * and only once, the bounce at exactly 5 days and not a second before,
 * the last attempt scheduled on the give-up time rather than after it;
 * and the module deciding exactly as the function does.
 */
#include <stdio.h>
#include <time.h>

#include "mock_host.h"
#include "test.h"

extern const struct mp_module merpati_module;

#define HOUR 3600
#define DAY (24 * HOUR)
#define NOW ((time_t)1800000000)

static struct mp_retry_decision
decide(time_t age, int warned)
{
	struct mp_retry_info info = { .struct_size = sizeof(info),
	    .arrival = NOW - age, .last_attempt = NOW, .attempts = 1,
	    .warned = warned };
	struct mp_retry_decision d = { .struct_size = sizeof(d) };

	mp_retry_policy(&info, NOW, 15 * 60, 4 * HOUR, 5 * DAY, &d);
	return d;
}

static void
test_boundaries(void)
{
	struct mp_retry_decision d;

	d = decide(0, 0);
	CHECK("fresh: next in 15 min, no warning, no bounce",
	    d.next_attempt == NOW + 900 && !d.send_warning && !d.give_up);
	d = decide(4 * HOUR - 1, 0);
	CHECK("1 s before 4 h: no warning", !d.send_warning);
	d = decide(4 * HOUR, 0);
	CHECK("exactly 4 h: the warning", d.send_warning && !d.give_up);
	d = decide(4 * HOUR, 1);
	CHECK("4 h, already warned: only once", !d.send_warning);
	d = decide(5 * DAY - 900, 1);
	CHECK("15 min before 5 days: the last attempt is on the give-up time",
	    !d.give_up && d.next_attempt == NOW + 900);
	d = decide(5 * DAY - 600, 1);
	CHECK("10 min before 5 days: next attempt clamped to the give-up time",
	    !d.give_up && d.next_attempt == NOW + 600);
	d = decide(5 * DAY - 1, 1);
	CHECK("1 s before 5 days: not yet given up, next in 1 s",
	    !d.give_up && d.next_attempt == NOW + 1);
	d = decide(5 * DAY, 1);
	CHECK("exactly 5 days: give up", d.give_up);
	d = decide(5 * DAY, 0);
	CHECK("5 days never warned: bounce, no warning with it",
	    d.give_up && !d.send_warning);
	d = decide(6 * DAY, 0);
	CHECK("past 5 days: give up, next attempt still in the future",
	    d.give_up && d.next_attempt > NOW);
}

/* The module's schedule is the same function with its settings. */
static void
test_module_agrees(void)
{
	const char *none[] = { NULL };
	struct mp_conf c = { none, NULL };
	const char *err = NULL;
	void *ctx;
	static const time_t ages[] = { 0, 4 * HOUR - 1, 4 * HOUR, 5 * DAY - 600,
	    5 * DAY - 1, 5 * DAY, 7 * DAY };
	int same = 1;

	if (merpati_module.init(&mock_host, &c, &ctx, &err) != MP_OK) {
		CHECK("retry module init", 0);
		return;
	}
	for (size_t i = 0; i < sizeof(ages) / sizeof(ages[0]); i++) {
		for (int warned = 0; warned <= 1; warned++) {
			time_t now;
			struct mp_retry_info info = { .struct_size = sizeof(info),
			    .attempts = 1, .warned = warned };
			struct mp_retry_decision m = { .struct_size = sizeof(m) }, f = m;
			do {	/* the module reads the clock: same second for both */
				now = time(NULL);
				info.arrival = now - ages[i];
				info.last_attempt = now;
				merpati_module.retry->schedule(ctx, &info, &m);
				mp_retry_policy(&info, now, 900, 4 * HOUR, 5 * DAY, &f);
			} while (time(NULL) != now);
			same &= m.give_up == f.give_up && m.send_warning == f.send_warning &&
			    m.next_attempt == f.next_attempt;
		}
	}
	CHECK("the retry module decides as mp_retry_policy() with the defaults", same);
	merpati_module.fini(ctx);
}

int
main(void)
{
	test_boundaries();
	test_module_agrees();
	TEST_EXIT();
}
