/*
 * core/requeue.c - route a requeued message again (see requeue.h).
 *
 * Only where a recipient goes can change: a relay host, or the default
 * (local or MX). A rule that now rejects or rewrites the recipient
 * cannot apply to mail already accepted (the sender was told 250 for
 * that address), so such a recipient keeps its route, and the log says
 * so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "modcall.h"
#include "requeue.h"
#include "settings.h"
#include "util.h"

/* The new route of rcpt into *relay_r ("" default); 0, or -1 to keep
 * the old one. */
static int
route_again(const struct mp_qmsg *m, const char *rcpt, char *relay_r,
    size_t size)
{
	struct mp_route_decision d = { 0 };	/* mp_call_route sizes it */
	const char *err = NULL;
	int rc = 0;

	relay_r[0] = '\0';
	if (mp_core.route == NULL)
		return 0;
	if (mp_call_route(m->sender, rcpt, &d, &err) != MP_OK) {
		mp_log(MP_LOG_WARNING, "requeue: routing <%s> failed: %s; route kept",
		    rcpt, err ? err : "?");
		return -1;
	}
	if (d.action == MP_ROUTE_RELAY && d.relay_host &&
	    strpbrk(d.relay_host, "\r\n") == NULL)
		snprintf(relay_r, size, "%s", d.relay_host);
	else if (d.action == MP_ROUTE_REJECT || d.action == MP_ROUTE_REWRITE ||
	    d.action == MP_ROUTE_RELAY) {
		mp_log(MP_LOG_NOTICE, "requeue: the rules now %s <%s>; an accepted "
		    "recipient keeps its route", d.action == MP_ROUTE_REJECT ?
		    "reject" : "rewrite", rcpt);
		rc = -1;
	}
	for (size_t i = 0; i < d.naddresses; i++)
		mp_host_table.free(d.addresses[i]);
	mp_host_table.free(d.addresses);
	return rc;
}

void
mp_requeue_route(struct mp_qmsg *m)
{
	char relay[300];

	if (m->relay == NULL)
		m->relay = mp_xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(char *));
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (m->done[i] || route_again(m, m->rcpts[i], relay, sizeof(relay)) < 0)
			continue;
		free(m->relay[i]);
		m->relay[i] = mp_xstrdup(relay);
		mp_log(MP_LOG_INFO, "requeued to=<%s> relay=%s", m->rcpts[i],
		    relay[0] ? relay : "(default route)");
	}
	m->rerouted = 1;
	m->reroute = 0;
	if (mp_queue_save_status(mp_core.queue_dir, m) < 0)
		mp_log_errno(MP_LOG_ERR, "cannot save queue status");
}
