/*
 * core/delivery_log.c - delivery and acceptance log lines (see
 * delivery_log.h). Times: wall clock for arrival (the queue file keeps
 * it in seconds), the monotonic clock for the spans within an attempt.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "delivery_log.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "queue.h"
#include "rcpt.h"

#define HEADER_MAX 65536

static _Thread_local double attempt_wall;	/* this attempt's start */
static _Thread_local double try_start, try_connected;

static double
wall_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

void mp_delivery_attempt_begin(void) { attempt_wall = wall_now(); }

void
mp_delivery_try_begin(void)
{
	try_start = mp_metric_clock();
	try_connected = 0;
}

void mp_delivery_connected(void) { try_connected = mp_metric_clock(); }

void
mp_delivery_try_end(struct mp_rcpt **r, size_t n, const char *server,
    const struct sockaddr_storage *addr)
{
	double end = mp_metric_clock();
	double ready = try_connected >= try_start ? try_connected : end;
	char ip[64];
	unsigned port = 0;
	int loopback;

	mp_address_text(addr, ip, sizeof(ip), &loopback);
	if (addr->ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)addr)->sin_port);
	else if (addr->ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
	for (size_t i = 0; i < n; i++) {
		snprintf(r[i]->relay_used, sizeof(r[i]->relay_used), "%s[%s]:%u",
		    server, ip, port);
		r[i]->setup_s = ready - try_start;
		r[i]->xmit_s = end - ready;
	}
}

static const char *
status_word(int rc)
{
	return rc == MP_OK ? "sent" : rc == MP_PERMFAIL ? "bounced" : "deferred";
}

static enum mp_delivery_status
status_metric(int rc)
{
	return rc == MP_OK ? MP_DELIVERY_SENT : rc == MP_PERMFAIL ?
	    MP_DELIVERY_BOUNCED : MP_DELIVERY_DEFERRED;
}

struct line {
	const char *to, *orig_to, *relay, *dsn;
	int rc, remote;
	double arrival, start, setup, xmit;
	const struct mp_status *st;
};

/* Seconds with two decimals, as Postfix writes them; "0" below that. */
static const char *
span(double s, char out[24])
{
	if (s < 0.005)
		return "0";
	snprintf(out, 24, "%.2f", s);
	return out;
}

/* Every span is clamped at 0: the queue keeps arrival in whole
 * seconds, so "in queue" can come out a fraction below zero. */
static void
write_line(const struct line *l)
{
	char to[600], orig[600], delay[32], delays[96], reply[700];
	char sa[24], sb[24], sc[24], sd[24];
	double now = wall_now();
	double total = now - l->arrival > 0 ? now - l->arrival : 0;
	double a = l->start - l->arrival > 0 ? l->start - l->arrival : 0;
	double b = total - a - l->setup - l->xmit > 0 ?
	    total - a - l->setup - l->xmit : 0;

	snprintf(to, sizeof(to), "<%s>", l->to);
	if (l->orig_to)
		snprintf(orig, sizeof(orig), "<%s>", l->orig_to);
	snprintf(delay, sizeof(delay), "%.2f", total);
	snprintf(delays, sizeof(delays), "%s/%s/%s/%s", span(a, sa), span(b, sb),
	    span(l->setup, sc), span(l->xmit, sd));
	snprintf(reply, sizeof(reply), "%d %s%s%s", l->st->reply, l->st->enhanced,
	    l->st->enhanced[0] ? " " : "", l->st->text);
	struct mp_log_field f[] = {
		{ "to", to, 0, 0 },
		{ "orig_to", l->orig_to ? orig : NULL, 0, 0 },
		{ "relay", l->relay, 0, 0 },
		{ "delay", delay, 1, 0 },
		{ "delays", delays, 0, 0 },
		{ "dsn", l->dsn, 0, 0 },
		{ "status", status_word(l->rc), 0, 0 },
		{ "reply", reply, 0, 1 },
	};
	mp_log_event(l->rc == MP_OK ? MP_LOG_INFO : MP_LOG_NOTICE,
	    l->rc == MP_OK ? "delivered" : l->rc == MP_PERMFAIL ? "bounced" : "deferred", f,
	    sizeof(f) / sizeof(f[0]));
	mp_metric_delivery(l->remote, status_metric(l->rc), (long long)l->arrival);
}

static const char *
dsn_of(const struct mp_status *st, int rc)
{
	if (st->enhanced[0])
		return st->enhanced;
	return rc == MP_OK ? "2.0.0" : rc == MP_PERMFAIL ? "5.0.0" : "4.0.0";
}

void
mp_delivery_log(const struct mp_qmsg *m, const struct mp_rcpt *r,
    const char *relay)
{
	int remote = relay == NULL;
	int expired = relay && strcmp(relay, "expired") == 0;
	struct line l = {
		.to = r->address, .orig_to = r->orcpt, .rc = r->rc,
		.remote = remote || (expired && r->path == MP_RCPT_REMOTE),
		.relay = remote ? (r->relay_used[0] ? r->relay_used : "none") :
		    expired ? "none" : relay,
		.dsn = dsn_of(&r->status, r->rc), .st = &r->status,
		.arrival = (double)m->arrival,
		.start = attempt_wall > 0 ? attempt_wall : (double)m->arrival,
		.setup = remote ? r->setup_s : 0,
		.xmit = remote ? r->xmit_s : expired ? 0 : mp_metric_last_store(),
	};
	write_line(&l);
}

void
mp_delivery_log_direct(const char *rcpt, int rc, const struct mp_status *st,
    const char *relay)
{
	double now = wall_now();
	struct line l = {
		.to = rcpt, .rc = rc, .remote = 0, .relay = relay,
		.dsn = dsn_of(st, rc), .st = st, .arrival = now, .start = now,
		.xmit = mp_metric_last_store(),
	};
	l.arrival -= l.xmit;
	l.start = l.arrival;
	write_line(&l);
}

/* ---- accepted messages ----------------------------------------------------- */

/* The value of the first Message-ID field (RFC 5322 3.6.4) in the header
 * section hdr: unfolded, trimmed, control characters dropped. */
static void
find_message_id(const char *hdr, size_t len, char *out, size_t size)
{
	const char *p = hdr, *end = hdr + len;
	size_t n = 0;

	out[0] = '\0';
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t linelen = eol ? (size_t)(eol - p) : (size_t)(end - p);
		if (linelen == 0 || (linelen == 1 && p[0] == '\r'))
			return;	/* the end of the header section */
		if (linelen > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
			const char *v = p + 11;
			for (;;) {
				for (; v < p + linelen && n + 1 < size; v++)
					if ((unsigned char)*v > ' ' || (*v == ' ' && n > 0))
						out[n++] = *v;
				p += linelen + 1;
				if (eol == NULL || p >= end || (*p != ' ' && *p != '\t'))
					break;
				eol = memchr(p, '\n', (size_t)(end - p));
				linelen = eol ? (size_t)(eol - p) : (size_t)(end - p);
				v = p;
			}
			while (n > 0 && out[n - 1] == ' ')
				n--;
			out[n] = '\0';
			return;
		}
		if (eol == NULL)
			return;
		p = eol + 1;
	}
}

void
mp_delivery_message_id(struct mp_reader *msg, char *out, size_t size)
{
	char *buf = malloc(HEADER_MAX);
	size_t have = 0;
	ssize_t got;

	out[0] = '\0';
	if (buf == NULL)
		return;
	while (have < HEADER_MAX &&
	    (got = msg->read(msg, buf + have, HEADER_MAX - have)) > 0) {
		have += (size_t)got;
		if (memmem(buf, have, "\n\r\n", 3) || memmem(buf, have, "\n\n", 2))
			break;
	}
	find_message_id(buf, have, out, size);
	free(buf);
}

void
mp_delivery_writer_message_id(struct mp_qwriter *w, char *out, size_t size)
{
	struct mp_reader r;

	out[0] = '\0';
	if (mp_queue_writer_reader(w, &r) < 0)
		return;
	mp_delivery_message_id(&r, out, size);
	mp_queue_writer_reader_close(&r);
}

void
mp_delivery_log_accepted(const char *id, const char *sender, size_t nrcpt,
    unsigned long long size, const char *client, const char *user,
    const char *tls, const char *message_id)
{
	char from[600], nr[24], sz[24], cl[80];

	snprintf(from, sizeof(from), "<%s>", sender);
	snprintf(nr, sizeof(nr), "%zu", nrcpt);
	snprintf(sz, sizeof(sz), "%llu", size);
	snprintf(cl, sizeof(cl), "[%s]", client);
	struct mp_log_field f[] = {
		{ "from", from, 0, 0 },
		{ "size", sz, 1, 0 },
		{ "nrcpt", nr, 1, 0 },
		{ "client", cl, 0, 0 },
		{ "user", user && user[0] ? user : NULL, 0, 0 },
		{ "tls", tls, 0, 0 },
		{ "message_id", message_id && message_id[0] ? message_id : NULL, 0, 0 },
	};
	mp_log_set_queue_id(id);	/* the session has none: a message each */
	mp_log_event(MP_LOG_INFO, "accepted", f, sizeof(f) / sizeof(f[0]));
	mp_log_set_queue_id(NULL);
	mp_metric_accepted();
}
