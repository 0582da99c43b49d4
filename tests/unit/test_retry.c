/*
 * tests/unit/test_retry.c - the retry schedule's decisions, table-driven
 * across a message's life, with the default schedule and a shrunk one.
 */
#include <stdio.h>
#include <time.h>

#include "mock_host.h"
#include "test.h"

extern const struct mp_module merpati_module;

struct row {
	const char *name;
	long age;		/* seconds since arrival */
	int warned;
	int warn, give_up;
	long next_min, next_max;	/* next attempt, seconds from now */
};

static void
run(void *ctx, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		time_t now = time(NULL);
		struct mp_retry_info info = { sizeof(info), now - rows[i].age, now,
		    3, rows[i].warned, NULL };
		struct mp_retry_decision d = { sizeof(d), 0, 0, 0 };
		char name[128];
		merpati_module.retry->schedule(ctx, &info, &d);
		snprintf(name, sizeof(name), "%s: warning", rows[i].name);
		CHECK(name, d.send_warning == rows[i].warn);
		snprintf(name, sizeof(name), "%s: give up", rows[i].name);
		CHECK(name, d.give_up == rows[i].give_up);
		snprintf(name, sizeof(name), "%s: next attempt", rows[i].name);
		CHECK(name, d.next_attempt - now >= rows[i].next_min &&
		    d.next_attempt - now <= rows[i].next_max + 1);
	}
}

int
main(void)
{
	static const struct row classic[] = {
		{ "fresh", 0, 0, 0, 0, 900, 900 },
		{ "3h59m", 4 * 3600 - 60, 0, 0, 0, 900, 900 },
		{ "4h", 4 * 3600, 0, 1, 0, 900, 900 },
		{ "4h, already warned", 4 * 3600 + 5, 1, 0, 0, 900, 900 },
		{ "just before 5d", 5 * 86400 - 300, 1, 0, 0, 300, 300 },
		{ "5d", 5 * 86400, 1, 0, 1, 1, 1 },
		{ "5d, never warned", 5 * 86400 + 10, 0, 0, 1, 1, 1 },
	};
	static const struct row shrunk[] = {
		{ "shrunk fresh", 0, 0, 0, 0, 1, 1 },
		{ "shrunk 3s", 3, 0, 1, 0, 1, 1 },
		{ "shrunk 6s", 6, 1, 0, 1, 1, 1 },
	};
	const char *none[] = { NULL };
	const char *fast[] = { "interval", "1s", "warn_after", "3s", "give_up_after", "6s", NULL };
	const char *bad[] = { "warn_after", "5d", "give_up_after", "4h", NULL };
	const char *junk[] = { "interval", "soon", NULL };
	struct mp_conf c1 = { none, NULL }, c2 = { fast, NULL }, c3 = { bad, NULL },
	    c4 = { junk, NULL };
	const char *err = NULL;
	void *ctx;

	CHECK("init with defaults", merpati_module.init(&mock_host, &c1, &ctx, &err) == MP_OK);
	run(ctx, classic, sizeof(classic) / sizeof(classic[0]));
	merpati_module.fini(ctx);
	CHECK("init shrunk", merpati_module.init(&mock_host, &c2, &ctx, &err) == MP_OK);
	run(ctx, shrunk, sizeof(shrunk) / sizeof(shrunk[0]));
	merpati_module.fini(ctx);
	CHECK("warn_after >= give_up_after refused",
	    merpati_module.init(&mock_host, &c3, &ctx, &err) == MP_ERROR &&
	    strstr(err, "warn_after") != NULL);
	CHECK("bad duration refused", merpati_module.init(&mock_host, &c4, &ctx, &err) == MP_ERROR &&
	    strstr(err, "interval") != NULL);
	TEST_EXIT();
}
