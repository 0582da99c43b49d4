/*
 * modules/dns_mx/dns_mx.c - the resolve kind: MX and address lookups
 * with libresolv (res_nmkquery + res_nsend on a per-thread resolver
 * state, never the global one), answers parsed by dns_parse.c.
 *
 * `nameserver = "IP:PORT"` replaces the servers of /etc/resolv.conf
 * (tests point it at a dnsmasq on loopback). MX hosts come lowest
 * preference first, equal preferences shuffled (RFC 5321 5.1); a domain
 * with only A/AAAA records is its own MX (implicit MX); a null MX (RFC
 * 7505) and NXDOMAIN fail for good; SERVFAIL and timeouts are temporary.
 * Answers are cached for their TTL (negative ones for the SOA minimum,
 * at most 5 minutes).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <merpati/merpati.h>

#include "dns_parse.h"

#define MAX_NEGATIVE_TTL 300
#define MAX_RESULTS 32

struct dns_settings {
	const char *nameserver;
	long long timeout, attempts, cache_size;
};

struct result {
	int rc;
	struct mp_status status;
	size_t n;
	struct dns_rr rr[MAX_RESULTS];
};

struct cache_entry {
	char key[300];		/* "15 domain" */
	time_t expires;
	struct result r;
};

struct dns {
	const struct mp_host *host;
	struct dns_settings set;
	struct sockaddr_in server;	/* sin_family 0: use resolv.conf */
	pthread_mutex_t lock;
	struct cache_entry *cache;
	size_t ncache;
};

static void
status(struct mp_status *st, int reply, const char *enh, const char *fmt,
    const char *arg)
{
	st->reply = reply;
	snprintf(st->enhanced, sizeof(st->enhanced), "%s", enh);
	snprintf(st->text, sizeof(st->text), fmt, arg);
}

/* ---- queries -------------------------------------------------------------- */

static int
resolver(const struct dns *d, struct __res_state *st)
{
	memset(st, 0, sizeof(*st));
	if (res_ninit(st) != 0)
		return -1;
	st->retrans = (int)d->set.timeout;
	st->retry = (int)d->set.attempts;
	if (d->server.sin_family) {
		st->nsaddr_list[0] = d->server;
		st->nscount = 1;
	}
	return 0;
}

/* Send one query; the parsed answer in *a. MP_OK, or MP_TEMPFAIL when
 * no server answered. */
static int
query(const struct dns *d, const char *name, uint16_t type,
    struct dns_answer *a)
{
	unsigned char q[NS_PACKETSZ], ans[65536];
	struct __res_state st;
	int qlen, n, rc = MP_TEMPFAIL;

	if (resolver(d, &st) < 0)
		return MP_TEMPFAIL;
	qlen = res_nmkquery(&st, ns_o_query, name, ns_c_in, type, NULL, 0, NULL,
	    q, sizeof(q));
	if (qlen > 0) {
		n = res_nsend(&st, q, qlen, ans, sizeof(ans));
		if (n > 0 && dns_parse(ans, (size_t)n, type, a) == 0 && a->truncated) {
			st.options |= RES_USEVC;	/* too big for UDP: TCP */
			n = res_nsend(&st, q, qlen, ans, sizeof(ans));
		}
		if (n > 0 && dns_parse(ans, (size_t)n, type, a) == 0)
			rc = MP_OK;
	}
	res_nclose(&st);
	return rc;
}

/* ---- the cache --------------------------------------------------------------- */

static int
cache_get(struct dns *d, const char *key, struct result *r)
{
	time_t now = d->host->now();
	int hit = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->ncache && !hit; i++)
		if (d->cache[i].expires > now && strcmp(d->cache[i].key, key) == 0) {
			*r = d->cache[i].r;
			hit = 1;
		}
	pthread_mutex_unlock(&d->lock);
	return hit;
}

static void
cache_put(struct dns *d, const char *key, const struct result *r, uint32_t ttl)
{
	time_t now = d->host->now();
	size_t victim = 0;

	if (ttl == 0 || d->set.cache_size == 0)
		return;
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->ncache; i++)	/* expired or soonest to expire */
		if (d->cache[i].expires < d->cache[victim].expires)
			victim = i;
	if (d->ncache < (size_t)d->set.cache_size)
		victim = d->ncache++;
	snprintf(d->cache[victim].key, sizeof(d->cache[victim].key), "%s", key);
	d->cache[victim].expires = now + (time_t)ttl;
	d->cache[victim].r = *r;
	pthread_mutex_unlock(&d->lock);
}

static uint32_t
min_ttl(const struct dns_answer *a)
{
	uint32_t ttl = 86400;

	for (size_t i = 0; i < a->n; i++)
		if (a->rr[i].ttl < ttl)
			ttl = a->rr[i].ttl;
	return ttl;
}

static uint32_t
negative_ttl(const struct dns_answer *a)
{
	return a->negative_ttl && a->negative_ttl < MAX_NEGATIVE_TTL ?
	    a->negative_ttl : MAX_NEGATIVE_TTL;
}

/* ---- MX -------------------------------------------------------------------- */

static int
cmp_pref(const void *x, const void *y)
{
	const struct dns_rr *a = x, *b = y;

	return (int)a->preference - (int)b->preference;
}

/* Lowest preference first; equal ones in random order (RFC 5321 5.1). */
static void
order_mx(struct dns_rr *rr, size_t n)
{
	if (n > 1)
		qsort(rr, n, sizeof(*rr), cmp_pref);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && rr[j].preference == rr[i].preference)
			j++;
		for (size_t k = j - 1; k > i; k--) {
			uint32_t r = 0;
			if (getrandom(&r, sizeof(r), 0) != sizeof(r))
				r = (uint32_t)k;
			size_t pick = i + r % (k - i + 1);
			struct dns_rr t = rr[k];
			rr[k] = rr[pick];
			rr[pick] = t;
		}
		i = j;
	}
}

static int
has_address(struct dns *d, const char *domain, struct mp_status *st)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA };
	struct dns_answer *a = malloc(sizeof(*a));
	int found = 0, temp = a == NULL;	/* out of memory: try again later */

	for (size_t t = 0; a && t < 2 && !found; t++) {
		if (query(d, domain, types[t], a) != MP_OK ||
		    a->rcode == DNS_RCODE_SERVFAIL)
			temp = 1;
		else
			found = a->rcode == DNS_RCODE_OK && a->n > 0;
	}
	free(a);
	if (!found && temp)
		status(st, 451, "4.4.3", "DNS lookup of %.200s failed (no answer or SERVFAIL)", domain);
	return found ? 1 : temp ? -1 : 0;
}

/* The MX answer for domain, from DNS (not the cache). */
static void
lookup_mx(struct dns *d, const char *domain, struct result *r, uint32_t *ttl)
{
	struct dns_answer *a = malloc(sizeof(*a));
	int rc = a ? query(d, domain, DNS_T_MX, a) : MP_TEMPFAIL;

	memset(r, 0, sizeof(*r));
	*ttl = 0;
	if (rc != MP_OK || a->rcode == DNS_RCODE_SERVFAIL || (a->rcode != DNS_RCODE_OK &&
	    a->rcode != DNS_RCODE_NXDOMAIN)) {
		r->rc = MP_TEMPFAIL;
		status(&r->status, 451, "4.4.3", "DNS lookup of %.200s failed (no answer or SERVFAIL)", domain);
	} else if (a->rcode == DNS_RCODE_NXDOMAIN) {
		r->rc = MP_PERMFAIL;
		status(&r->status, 550, "5.1.2", "domain %.200s does not exist (NXDOMAIN)", domain);
		*ttl = negative_ttl(a);
	} else if (a->n == 1 && a->rr[0].preference == 0 && a->rr[0].name[0] == '\0') {
		r->rc = MP_PERMFAIL;
		status(&r->status, 550, "5.1.10", "domain %.200s does not accept mail (null MX)", domain);
		*ttl = min_ttl(a);
	} else if (a->n > 0) {
		for (size_t i = 0; i < a->n && r->n < MAX_RESULTS; i++)
			if (a->rr[i].name[0])
				r->rr[r->n++] = a->rr[i];
		r->rc = MP_OK;
		*ttl = min_ttl(a);
	} else {
		int has = has_address(d, domain, &r->status);
		r->rc = has > 0 ? MP_OK : has < 0 ? MP_TEMPFAIL : MP_PERMFAIL;
		if (has > 0) {	/* implicit MX (RFC 5321 5.1) */
			snprintf(r->rr[0].name, sizeof(r->rr[0].name), "%s", domain);
			r->n = 1;
		} else if (has == 0)
			status(&r->status, 550, "5.1.2", "domain %.200s has no MX or address records", domain);
		*ttl = has >= 0 ? negative_ttl(a) : 0;
	}
	free(a);
}

/* The cached result for (kind, name), looked up when missing; the
 * caller frees it. NULL when out of memory. */
static struct result *
cached(struct dns *d, const char *kind, const char *name,
    void (*lookup)(struct dns *, const char *, struct result *, uint32_t *))
{
	struct result *r = malloc(sizeof(*r));
	char key[300];
	uint32_t ttl;

	if (r == NULL)
		return NULL;
	snprintf(key, sizeof(key), "%s %s", kind, name);
	if (!cache_get(d, key, r)) {
		lookup(d, name, r, &ttl);
		cache_put(d, key, r, ttl);
	}
	return r;
}

static int
dns_mx_lookup(void *ctx, const char *domain, struct mp_mx *out, size_t max,
    size_t *n_r, struct mp_status *status_r)
{
	struct result *r = cached(ctx, "MX", domain, lookup_mx);
	int rc;

	if (r == NULL)
		return MP_TEMPFAIL;
	order_mx(r->rr, r->n);
	*n_r = 0;
	for (size_t i = 0; i < r->n && *n_r < max; i++) {
		struct mp_mx *mx = MP_ELEM(out, *n_r);	/* the host's stride */
		mx->preference = r->rr[i].preference;
		snprintf(mx->host, sizeof(mx->host), "%s", r->rr[i].name);
		(*n_r)++;
	}
	MP_SIZED_WRITE(status_r, &r->status);
	rc = r->rc;
	free(r);
	return rc;
}

/* ---- addresses --------------------------------------------------------------- */

static void
lookup_addresses(struct dns *d, const char *host, struct result *r, uint32_t *ttl)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA };
	struct dns_answer *a = malloc(sizeof(*a));
	int temp = a == NULL, nx = 0;	/* out of memory: try again later */

	memset(r, 0, sizeof(*r));
	*ttl = 86400;
	for (size_t t = 0; a && t < 2; t++) {
		if (query(d, host, types[t], a) != MP_OK || a->rcode == DNS_RCODE_SERVFAIL) {
			temp = 1;
			continue;
		}
		nx += a->rcode == DNS_RCODE_NXDOMAIN;
		for (size_t i = 0; i < a->n && r->n < MAX_RESULTS; i++)
			r->rr[r->n++] = a->rr[i];
		if (a->n && min_ttl(a) < *ttl)
			*ttl = min_ttl(a);
		else if (!a->n && negative_ttl(a) < *ttl)
			*ttl = negative_ttl(a);
	}
	free(a);
	if (r->n > 0)
		r->rc = MP_OK;
	else if (temp) {
		r->rc = MP_TEMPFAIL;
		*ttl = 0;
		status(&r->status, 451, "4.4.3", "DNS lookup of %.200s failed", host);
	} else {
		r->rc = MP_PERMFAIL;
		status(&r->status, 550, nx ? "5.1.2" : "5.4.4",
		    "host %.200s has no address records", host);
	}
}

static void
to_sockaddr(const struct dns_rr *rr, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (rr->type == DNS_T_A) {
		struct sockaddr_in *s = (struct sockaddr_in *)out;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, rr->addr, 4);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, rr->addr, 16);
	}
}

static int
dns_addresses(void *ctx, const char *host, struct sockaddr_storage *out,
    size_t max, size_t *n_r, struct mp_status *status_r)
{
	struct result *r = cached(ctx, "A", host, lookup_addresses);
	int rc;

	if (r == NULL)
		return MP_TEMPFAIL;
	*n_r = 0;
	for (size_t i = 0; i < r->n && *n_r < max; i++)
		to_sockaddr(&r->rr[i], &out[(*n_r)++]);
	MP_SIZED_WRITE(status_r, &r->status);
	rc = r->rc;
	free(r);
	return rc;
}

/* ---- module ------------------------------------------------------------------ */

#define S(f) offsetof(struct dns_settings, f)
static const struct mp_option dns_options[] = {
	MP_OPT("nameserver", MP_OPT_STRING, S(nameserver), "", 0, 0),
	MP_OPT("timeout", MP_OPT_DURATION, S(timeout), "5s", 1, 60),
	MP_OPT("attempts", MP_OPT_INT, S(attempts), "2", 1, 10),
	MP_OPT("cache_size", MP_OPT_INT, S(cache_size), "1024", 0, 1000000),
	MP_OPT_END
};

/* "IP" or "IP:PORT" (IPv4). */
static int
parse_server(const char *text, struct sockaddr_in *out)
{
	char ip[64];
	const char *colon = strrchr(text, ':');
	long port = 53;
	size_t len = colon ? (size_t)(colon - text) : strlen(text);

	if (len >= sizeof(ip))
		return -1;
	memcpy(ip, text, len);
	ip[len] = '\0';
	if (colon) {
		char *end;
		port = strtol(colon + 1, &end, 10);
		if (*end || port < 1 || port > 65535)
			return -1;
	}
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, ip, &out->sin_addr) == 1 ? 0 : -1;
}

static void
dns_fini(void *ctx)
{
	struct dns *d = ctx;

	pthread_mutex_destroy(&d->lock);
	free(d->cache);
	d->host->free(d);
}

static int
dns_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct dns *d = host->alloc(sizeof(*d));

	if (d == NULL) {
		*error_r = "dns_mx: out of memory";
		return MP_ERROR;
	}
	memset(d, 0, sizeof(*d));
	d->host = host;
	pthread_mutex_init(&d->lock, NULL);
	if (host->conf_options(conf, dns_options, &d->set, error_r) != MP_OK) {
		dns_fini(d);
		return MP_ERROR;
	}
	if (d->set.nameserver[0] && parse_server(d->set.nameserver, &d->server) < 0) {
		*error_r = "modules.dns_mx.nameserver: want \"IPv4\" or \"IPv4:PORT\"";
		dns_fini(d);
		return MP_ERROR;
	}
	d->cache = calloc(d->set.cache_size ? (size_t)d->set.cache_size : 1,
	    sizeof(*d->cache));
	if (d->cache == NULL) {
		*error_r = "dns_mx: cache_size too big";
		dns_fini(d);
		return MP_ERROR;
	}
	*ctx_r = d;
	return MP_OK;
}

static const struct mp_resolve_ops dns_ops = {
	.struct_size = sizeof(struct mp_resolve_ops),
	.mx = dns_mx_lookup,
	.addresses = dns_addresses,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "dns_mx",
	.kinds = MP_KIND_RESOLVE,
	.init = dns_init,
	.fini = dns_fini,
	.resolve = &dns_ops,
};
