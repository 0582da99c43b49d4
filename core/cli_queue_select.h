/*
 * core/cli_queue_select.h - which queued messages a `merpati queue`
 * command acts on (list filters, delete patterns) and the --json form
 * of a message (fields in docs/queue.md).
 */
#ifndef MERPATI_CLI_QUEUE_SELECT_H
#define MERPATI_CLI_QUEUE_SELECT_H

#include <stdio.h>
#include <time.h>

#include "queue.h"

struct qfilter {
	const char *domain;	/* a pending recipient's domain */
	long long older_than;	/* seconds since arrival, 0 = any */
	int deferred;		/* tried at least once and not held */
	int held;
	const char *sender;	/* shell glob (fnmatch), case-insensitive */
	const char *recipient;	/* glob on any pending recipient */
};

/* Parse the option at argv[*i] (and its value) into f; 1 taken, 0 not
 * an option of allowed, -1 a bad or missing value (message printed).
 * allowed is a string
 * of option letters: d domain, o older-than, D deferred, H held, s
 * sender, r recipient, j json (*json set). */
int qfilter_option(struct qfilter *f, const char *allowed, int argc,
    char **argv, int *i, int *json);

int qfilter_match(const struct qfilter *f, const struct mp_qmsg *m,
    time_t now);

/* m as one JSON object. */
void qmsg_json(FILE *out, const struct mp_qmsg *m, time_t now);

#endif
