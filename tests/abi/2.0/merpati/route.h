/*
 * merpati/route.h - the route kind: decide, at RCPT time, what happens
 * to a recipient: local delivery, relay to a host, rewrite, or reject.
 * May run concurrently. Strings in the decision point into memory the
 * module owns and keeps until fini.
 */
#ifndef MERPATI_ROUTE_H
#define MERPATI_ROUTE_H

#include <merpati/module.h>

enum mp_route_action {
	MP_ROUTE_DEFAULT = 0,	/* no rule matched: local domains local, rest remote */
	MP_ROUTE_LOCAL,
	MP_ROUTE_RELAY,		/* via relay_host (smarthost) */
	MP_ROUTE_REJECT,	/* with status */
	MP_ROUTE_REWRITE	/* replace the recipient by addresses[] */
};

struct mp_route_decision {
	uint32_t struct_size;
	enum mp_route_action action;
	const char *relay_host;		/* "host[:port]" for MP_ROUTE_RELAY */
	char **addresses;		/* host->alloc()ed, for MP_ROUTE_REWRITE */
	size_t naddresses;
	struct mp_status status;	/* for MP_ROUTE_REJECT */
};

struct mp_route_ops {
	uint32_t struct_size;
	/* MP_OK with d_r filled, or MP_TEMPFAIL / MP_ERROR. */
	int (*route)(void *ctx, const char *sender, const char *rcpt,
	    struct mp_route_decision *d_r, const char **error_r);
};

#endif
