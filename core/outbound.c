/*
 * core/outbound.c - remote delivery (see outbound.h).
 *
 * Every name goes through the resolve module (DESIGN.md: nothing calls
 * getaddrinfo() on a remote name); only IP literals in a relay host are
 * used directly.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery_log.h"
#include "log.h"
#include "modcall.h"
#include "outbound.h"
#include "settings.h"
#include "smtp_client.h"
#include "util.h"

#define MAX_MX 32
#define MAX_ADDRS 16

struct hop {
	char host[256];		/* the domain, or the relay host */
	long long port;
	int is_relay;		/* host is a server, not a domain to MX-resolve */
};

static void
set_port(struct sockaddr_storage *a, long long port)
{
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
}

/* "host", "host:port", "[v6]:port", "1.2.3.4:port". */
static void
parse_relay(const char *relay, struct hop *h)
{
	const char *colon = strrchr(relay, ':');
	const char *start = relay;
	size_t len = strlen(relay);

	h->port = mp_core.outbound.port;
	h->is_relay = 1;
	if (relay[0] == '[') {
		const char *close = strchr(relay, ']');
		start = relay + 1;
		len = close ? (size_t)(close - start) : len - 1;
		colon = close && close[1] == ':' ? close + 1 : NULL;
	} else if (colon && strchr(relay, ':') != colon)
		colon = NULL;	/* bare IPv6 without a port */
	else if (colon)
		len = (size_t)(colon - relay);
	if (colon && atoi(colon + 1) > 0 && atoi(colon + 1) < 65536)
		h->port = atoi(colon + 1);
	snprintf(h->host, sizeof(h->host), "%.*s", (int)len, start);
}

static void
hop_of(const struct mp_rcpt *r, struct hop *h)
{
	const char *at;

	memset(h, 0, sizeof(*h));
	if (r->relay && r->relay[0]) {
		parse_relay(r->relay, h);
		return;
	}
	at = strrchr(r->address, '@');
	snprintf(h->host, sizeof(h->host), "%s", at ? at + 1 : "");
	h->port = mp_core.outbound.port;
}

static int
same_hop(const struct hop *a, const struct hop *b)
{
	return a->is_relay == b->is_relay && a->port == b->port &&
	    strcasecmp(a->host, b->host) == 0;
}

static int
literal_address(const char *host, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)out)->sin_addr) == 1) {
		out->ss_family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)out)->sin6_addr) == 1) {
		out->ss_family = AF_INET6;
		return 1;
	}
	return 0;
}

static int
resolve_addresses(const char *host, struct sockaddr_storage *out, size_t *n,
    struct mp_status *st)
{
	if (literal_address(host, out)) {
		*n = 1;
		return MP_OK;
	}
	return mp_call_resolve_addresses(host, out, MAX_ADDRS, n, st);
}

/* The servers of a hop, best first. */
static int
resolve_hop(const struct hop *h, struct mp_mx *mx, size_t *n,
    struct mp_status *st)
{
	int rc;

	if (h->is_relay) {
		snprintf(mx[0].host, sizeof(mx[0].host), "%s", h->host);
		mx[0].preference = 0;
		*n = 1;
		return MP_OK;
	}
	rc = mp_call_resolve_mx(h->host, mx, MAX_MX, n, st);
	if (rc == MP_OK && *n == 0) {
		st->reply = 451;
		snprintf(st->enhanced, sizeof(st->enhanced), "4.4.3");
		snprintf(st->text, sizeof(st->text), "no mail servers for %.200s",
		    h->host);
		return MP_TEMPFAIL;
	}
	return rc;
}

/* Every recipient of g still pending gets rc and st. */
static void
set_all(struct mp_rcpt **g, size_t n, int rc, const struct mp_status *st)
{
	for (size_t i = 0; i < n; i++)
		if (g[i]->rc == MP_TEMPFAIL) {
			g[i]->rc = rc;
			g[i]->status = *st;
		}
}

/* Recipients still to try go first (the rest keep their result in
 * their record); returns how many. */
static size_t
compact_pending(struct mp_rcpt **g, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (g[i]->rc == MP_TEMPFAIL)
			g[k++] = g[i];
	return k;
}

/* Try one server's addresses; returns recipients still pending. */
static size_t
try_server(const struct mp_qmsg *m, const struct hop *h, const char *server,
    struct mp_rcpt **g, size_t n, struct mp_status *last)
{
	struct sockaddr_storage addrs[MAX_ADDRS];
	size_t naddrs = 0;
	int rc = resolve_addresses(server, addrs, &naddrs, last);

	if (rc != MP_OK)
		return n;	/* this server has no address: next one */
	for (size_t a = 0; a < naddrs && n > 0; a++) {
		set_port(&addrs[a], h->port);
		mp_delivery_try_begin();
		rc = smtp_client_send(&addrs[a], server, m, g, n, last);
		mp_delivery_try_end(g, n, server, &addrs[a]);
		if (rc == MP_PERMFAIL)
			set_all(g, n, MP_PERMFAIL, last);
		else if (rc == MP_TEMPFAIL) {
			set_all(g, n, MP_TEMPFAIL, last);
			mp_log(MP_LOG_INFO, "%s; trying the next server", last->text);
		}
		if (rc != MP_TEMPFAIL)
			n = compact_pending(g, n);
		if (rc == MP_OK)
			break;	/* the server answered: 4xx recipients go to the next MX */
	}
	return n;
}

/* The recipients g of one hop, through its servers in order. */
static void
deliver_group(const struct mp_qmsg *m, const struct hop *h,
    struct mp_rcpt **g, size_t n)
{
	struct mp_mx mx[MAX_MX];
	struct mp_status st = { .struct_size = sizeof(st), .reply = 451, .enhanced = "4.4.1",
	    .text = "no server could be reached" };
	size_t nmx = 0, pending = n;
	int rc = resolve_hop(h, mx, &nmx, &st);

	for (size_t i = 0; i < n; i++)
		g[i]->rc = MP_TEMPFAIL;
	if (rc != MP_OK) {
		set_all(g, n, rc == MP_PERMFAIL ? MP_PERMFAIL : MP_TEMPFAIL, &st);
		return;
	}
	set_all(g, n, MP_TEMPFAIL, &st);
	for (size_t k = 0; k < nmx && k < (size_t)mp_core.outbound.max_mx &&
	    pending > 0; k++)
		pending = try_server(m, h, mx[k].host, g, pending, &st);
	/* The last server's trouble, unless it answered: then a recipient
	 * it deferred keeps its own 4xx (not the 250 that ended the DATA). */
	if (st.reply / 100 != 2)
		set_all(g, pending, MP_TEMPFAIL, &st);
}

void
mp_outbound_deliver(const struct mp_qmsg *m, struct mp_rcpt **r, size_t n)
{
	struct mp_rcpt **g = mp_xcalloc(n ? n : 1, sizeof(*g));
	unsigned char *taken = mp_xcalloc(n ? n : 1, 1);

	for (size_t i = 0; i < n; i++) {
		struct hop h, other;
		size_t k = 0;
		if (taken[i])
			continue;
		hop_of(r[i], &h);
		for (size_t j = i; j < n; j++) {
			hop_of(r[j], &other);
			if (!taken[j] && same_hop(&h, &other)) {
				taken[j] = 1;
				g[k++] = r[j];
			}
		}
		deliver_group(m, &h, g, k);
	}
	free(taken);
	free(g);
}
