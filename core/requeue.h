/*
 * core/requeue.h - the daemon's half of `merpati queue requeue`: a
 * message whose status asks for it (queue.h, "reroute") has its pending
 * recipients routed again with the routing rules the daemon runs now.
 */
#ifndef MERPATI_REQUEUE_H
#define MERPATI_REQUEUE_H

#include "queue.h"

/* Route m's pending recipients again and save the routes in its status
 * (which no longer asks for it). */
void mp_requeue_route(struct mp_qmsg *m);

#endif
