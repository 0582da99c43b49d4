/*
 * modules/milter/milter.h - what the milter module's files share: the
 * module (its configured milters), one SMTP session's state (a link per
 * milter, kept in the host's txn_slot), and the end-of-message
 * modifications (milter_mods.c).
 */
#ifndef MILTER_H
#define MILTER_H

#include <stdio.h>

#include <merpati/merpati.h>

#include "milter_link.h"

#define MILTER_MAX_MILTERS 16
/* Modifications one milter may make to one message (headers, recipients). */
#define MILTER_MAX_MODS 1000
/* The largest replacement body a milter may send. */
#define MILTER_MAX_BODY (64L * 1024 * 1024)

struct milter_module {
	const struct mp_host *host;
	size_t n;
	struct milter_conf *milters;	/* in config order */
};

struct milter_session {
	const struct milter_module *m;
	unsigned char *buf;	/* MILTER_MAX_PACKET: every packet in or out */
	char *chunk;		/* a body chunk being gathered */
	int connected;		/* the connect event ran */
	int failed;		/* a milter failed, default tempfail/reject: */
	struct mp_status fail_st;	/* every later command gets this */
	int discard_session;	/* DISCARD at connect/HELO: every message */
	int discard_msg;	/* DISCARD during this message */
	size_t n;
	struct milter_link links[MILTER_MAX_MILTERS];
	int body_skip[MILTER_MAX_MILTERS];
};

/* The applier of one milter's end-of-message modifications. */
struct milter_apply {
	const struct mp_host *host;
	struct mp_txn *txn;
	const char *milter;	/* its name, for logs */
	unsigned count;		/* modifications so far */
	FILE *body;		/* replacement body, when one came */
	long body_len;
};

/* milter_config.c: fill m from `modules.milter`. MP_OK or MP_ERROR. */
int milter_config(const struct mp_host *h, const struct mp_conf *conf,
    struct milter_module *m, const char **error_r);
/* "tempfail" / "accept" / "reject": 0, or -1. */
int milter_default_parse(const char *s, enum milter_default *d);

/* milter_mods.c: the milter_mods callback (arg: struct milter_apply). */
int milter_apply_mod(void *arg, const struct milter_reply *r,
    const char **error_r);
/* After the milter's verdict: hand a replacement body to the host and
 * drop it. MP_OK or MP_ERROR (logged). */
int milter_apply_finish(struct milter_apply *a, int keep);

/*
 * A header value as a milter sends it (folded with LF or CRLF) as the
 * host takes it: lines joined with CRLF, each continuation starting
 * with white space, no line end at the end. out has room for 2 *
 * strlen(in) + 1.
 */
void milter_header_value(const char *in, char *out);

#endif
