/*
 * tests/unit/queue_fixture.h - for core unit tests that need a queue: a
 * throw-away state directory with mp_core pointed at it as the daemon
 * would set it up, a message queued and loaded back in one call, and
 * the cleanup. Header-only (static functions), like test.h.
 */
#ifndef MERPATI_QUEUE_FIXTURE_H
#define MERPATI_QUEUE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "settings.h"

/* state is a mkdtemp() template, changed in place. 0 or -1. */
static int
fixture_start(char *state)
{
	if (mkdtemp(state) == NULL)
		return -1;
	mp_core.server.hostname = "mail.example.test";
	mp_core.server.state_dir = state;
	snprintf(mp_core.queue_dir, sizeof(mp_core.queue_dir), "%s/queue", state);
	return mp_queue_setup(state);
}

/* Queue body with envelope env and load it into *m; aborts on failure
 * (every later check would be meaningless). */
static void
fixture_queue(const struct mp_qmsg *env, const char *body, struct mp_qmsg *m)
{
	char id[MP_QID_SIZE], why[128];
	struct mp_qwriter *w = mp_queue_begin(mp_core.queue_dir, env, id);

	if (w == NULL || mp_queue_write(w, body, strlen(body)) < 0 ||
	    mp_queue_commit(w) < 0 ||
	    mp_queue_load(mp_core.queue_dir, id, m, why, sizeof(why)) != 0)
		abort();
}

/* Remove the state directory. 0 or -1. */
static int
fixture_end(const char *state)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
