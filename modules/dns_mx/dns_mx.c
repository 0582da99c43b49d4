/*
 * modules/dns_mx/dns_mx.c - the resolve kind: MX and address lookups,
 * and since 2.1 the generic typed lookup (A, AAAA, MX, PTR, TXT, TLSA)
 * every module reaches through the host's dns_lookup; libresolv
 * (res_nmkquery + res_nsend on a per-thread resolver state, never the
 * global one), answers parsed by dns_parse.c.
 *
 * `nameserver = "IP:PORT"` replaces the servers of /etc/resolv.conf
 * (tests point it at a dnsmasq on loopback). MX hosts come lowest
 * preference first, equal preferences shuffled (RFC 5321 5.1); a domain
 * with only A/AAAA records is its own MX (implicit MX); a null MX (RFC
 * 7505) and NXDOMAIN fail for good; SERVFAIL and timeouts are temporary.
 * Generic lookups ask for the resolver's DNSSEC verdict (the AD bit) and
 * report it: it is only as trustworthy as the path to that resolver.
 * Every answer shares one cache, keyed by kind or type and name, for its
 * TTL (negative ones for the SOA minimum, at most 5 minutes; failures
 * are not cached).
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
#include <merpati/util.h>

#include "dns_parse.h"

#define MAX_NEGATIVE_TTL 300
#define MAX_RESULTS 32
/* Bigger answers are looked up again each time: the cache's memory stays
 * under cache_size times this. */
#define MAX_CACHED 16384

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

/* One cached answer: a struct result (MX, addresses) or a struct
 * packed (lookups), as a heap copy of len bytes. */
struct cache_entry {
	char key[300];		/* "MX domain", "A host", "T16 name" */
	time_t expires;
	size_t len;
	void *data;
};

/* A lookup's answer as the cache keeps it: every record, whatever
 * buffer the caller brings. */
struct packed {
	struct mp_dns_answer a;
	unsigned char data[];
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

/*
 * For the generic lookup: ask for DNSSEC status. The AD bit in a query
 * asks the resolver to report whether it validated the answer (RFC 6840
 * 5.7); an EDNS0 OPT record (RFC 6891) with DO set (RFC 3225) does the
 * same for resolvers that only answer AD to DO queries, and lets the
 * answer be 1232 octets over UDP before TCP is needed.
 */
static int
ask_authenticated(unsigned char *q, int qlen, size_t size)
{
	static const unsigned char opt[11] = {
		0,			/* the root */
		0, 41,			/* type OPT */
		1232 >> 8, 1232 & 0xff,	/* our UDP payload size */
		0, 0, 0x80, 0,		/* extended RCODE, version 0, DO */
		0, 0			/* no options */
	};

	q[3] |= 0x20;	/* AD */
	if ((size_t)qlen + sizeof(opt) > size)
		return qlen;
	memcpy(q + qlen, opt, sizeof(opt));
	q[11] = 1;	/* ARCOUNT: res_nmkquery left it 0 */
	return qlen + (int)sizeof(opt);
}

/* Send one query for (name, type) and put the answer in ans; its
 * length, 0 when name cannot be queried (malformed), -1 when no server
 * answered. */
static int
exchange(const struct dns *d, const char *name, uint16_t type, int ad,
    unsigned char *ans, size_t size)
{
	unsigned char q[NS_PACKETSZ];
	struct __res_state st;
	int qlen, n = -1;

	if (resolver(d, &st) < 0)
		return -1;
	if (ad)	/* glibc clears AD in answers without it (trust-ad) */
		st.options |= RES_TRUSTAD;
	qlen = res_nmkquery(&st, ns_o_query, name, ns_c_in, type, NULL, 0, NULL,
	    q, sizeof(q));
	if (qlen > 0 && ad)
		qlen = ask_authenticated(q, qlen, sizeof(q));
	if (qlen <= 0)
		n = 0;
	else {
		n = res_nsend(&st, q, qlen, ans, (int)size);
		if (n >= 12 && (ans[2] & 0x02)) {
			st.options |= RES_USEVC;	/* TC, too big for UDP: TCP */
			n = res_nsend(&st, q, qlen, ans, (int)size);
		}
		if (n <= 0)
			n = -1;
	}
	res_nclose(&st);
	return n;
}

/* Send one query; the parsed answer in *a. MP_OK, or MP_TEMPFAIL when
 * no server answered. */
static int
query(const struct dns *d, const char *name, uint16_t type,
    struct dns_answer *a)
{
	unsigned char *ans = malloc(65536);
	int n = ans ? exchange(d, name, type, 0, ans, 65536) : -1;
	int rc = n > 0 && dns_parse(ans, (size_t)n, type, a) == 0 ? MP_OK : MP_TEMPFAIL;

	free(ans);
	return rc;
}

/* ---- the cache --------------------------------------------------------------- */

/* A copy of the live entry for key (the caller frees it), its
 * remaining TTL in *ttl_r; NULL when there is none. */
static void *
cache_get(struct dns *d, const char *key, uint32_t *ttl_r)
{
	time_t now = d->host->now();
	void *copy = NULL;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->ncache; i++)
		if (d->cache[i].expires > now && strcmp(d->cache[i].key, key) == 0) {
			copy = malloc(d->cache[i].len);
			if (copy)
				memcpy(copy, d->cache[i].data, d->cache[i].len);
			if (ttl_r)
				*ttl_r = (uint32_t)(d->cache[i].expires - now);
			break;
		}
	pthread_mutex_unlock(&d->lock);
	return copy;
}

static void
cache_put(struct dns *d, const char *key, const void *data, size_t len,
    uint32_t ttl)
{
	time_t now = d->host->now();
	size_t victim = 0;
	void *copy;

	if (ttl == 0 || d->set.cache_size == 0 || len > MAX_CACHED ||
	    (copy = malloc(len)) == NULL)
		return;
	memcpy(copy, data, len);
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->ncache; i++)	/* expired or soonest to expire */
		if (d->cache[i].expires < d->cache[victim].expires)
			victim = i;
	if (d->ncache < (size_t)d->set.cache_size)
		victim = d->ncache++;
	free(d->cache[victim].data);
	snprintf(d->cache[victim].key, sizeof(d->cache[victim].key), "%s", key);
	d->cache[victim].expires = now + (time_t)ttl;
	d->cache[victim].data = copy;
	d->cache[victim].len = len;
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
	struct result *r;
	char key[300];
	uint32_t ttl;

	snprintf(key, sizeof(key), "%s %s", kind, name);
	if ((r = cache_get(d, key, NULL)) != NULL)
		return r;
	if ((r = malloc(sizeof(*r))) == NULL)
		return NULL;
	lookup(d, name, r, &ttl);
	cache_put(d, key, r, sizeof(*r), ttl);
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

/* ---- generic lookups (resolve.h, since 2.1) ------------------------------ */

static int
supported_type(int type)
{
	return type == DNS_T_A || type == DNS_T_AAAA || type == DNS_T_MX ||
	    type == DNS_T_PTR || type == DNS_T_TXT || type == DNS_T_TLSA;
}

/* The TTL to cache an answer of this status for (0: not cached). */
static uint32_t
answer_ttl(uint32_t status, const struct dns_packed *pk)
{
	if (status == MP_DNS_FOUND)
		return pk->ttl < 86400 ? pk->ttl : 86400;
	if (status == MP_DNS_NXDOMAIN || status == MP_DNS_NODATA)
		return pk->negative_ttl && pk->negative_ttl < MAX_NEGATIVE_TTL ?
		    pk->negative_ttl : MAX_NEGATIVE_TTL;
	return 0;	/* failures are asked again */
}

/* Records of type at name, from DNS (not the cache); the caller frees
 * it. NULL when out of memory. */
static struct packed *
lookup_packed(struct dns *d, const char *name, int type)
{
	unsigned char *ans = malloc(65536), *recs = malloc(65536);
	struct dns_packed pk = { 0 };
	struct packed *p = NULL;
	uint32_t status = MP_DNS_PERMFAIL;
	int n = 0;

	if (ans && recs && supported_type(type) && name[0] && strlen(name) < 254)
		n = exchange(d, name, (uint16_t)type, 1, ans, 65536);
	if (n < 0)
		status = MP_DNS_TEMPFAIL;	/* no answer */
	else if (n > 0) {
		int parsed = dns_parse_packed(ans, (size_t)n, (uint16_t)type, recs,
		    65536, &pk);
		status = (uint32_t)dns_status_of(parsed, pk.rcode,
		    pk.count + (uint32_t)pk.cut);
	}
	if (status != MP_DNS_FOUND)
		pk.used = pk.count = 0;
	if (ans && recs && (p = malloc(sizeof(*p) + pk.used)) != NULL) {
		memset(&p->a, 0, sizeof(p->a));
		p->a.struct_size = sizeof(p->a);
		p->a.status = status;
		p->a.authenticated = status == MP_DNS_PERMFAIL ? 0 : (uint32_t)pk.authenticated;
		p->a.ttl = answer_ttl(status, &pk);
		p->a.count = pk.count;
		p->a.truncated = (uint32_t)pk.cut;
		p->a.used = pk.used;
		memcpy(p->data, recs, pk.used);
	}
	free(ans);
	free(recs);
	return p;
}

/* The records of *p that fit in buf, whole and in order, with the
 * answer's remaining TTL. */
static void
answer_out(const struct packed *p, uint32_t ttl, unsigned char *buf,
    size_t size, struct mp_dns_answer *answer_r)
{
	struct mp_dns_answer a = p->a;
	const unsigned char *rec;
	size_t off = 0, len;

	a.ttl = ttl;
	a.count = 0;
	a.used = 0;
	while (mp_dns_next(p->data, &p->a, &off, &rec, &len)) {
		if (a.used + 2 + len > size) {
			a.truncated = 1;
			break;
		}
		memcpy(buf + a.used, rec - 2, 2 + len);
		a.used += 2 + len;
		a.count++;
	}
	MP_SIZED_WRITE(answer_r, &a);
}

static int
dns_lookup(void *ctx, const char *name, int type, unsigned char *buf,
    size_t size, struct mp_dns_answer *answer_r)
{
	struct dns *d = ctx;
	struct packed *p;
	char key[300];
	uint32_t ttl;

	snprintf(key, sizeof(key), "T%d %s", type, name);
	p = cache_get(d, key, &ttl);
	if (p == NULL && (p = lookup_packed(d, name, type)) != NULL) {
		ttl = p->a.ttl;
		cache_put(d, key, p, sizeof(*p) + p->a.used, ttl);
	}
	if (p == NULL) {	/* out of memory: try again later */
		struct packed none = { .a = { .struct_size = sizeof(none.a),
		    .status = MP_DNS_TEMPFAIL } };
		answer_out(&none, 0, buf, size, answer_r);
		return MP_TEMPFAIL;
	}
	answer_out(p, ttl, buf, size, answer_r);
	uint32_t status = p->a.status;
	free(p);
	return status == MP_DNS_FOUND ? MP_OK :
	    status == MP_DNS_TEMPFAIL ? MP_TEMPFAIL : MP_PERMFAIL;
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
	for (size_t i = 0; d->cache && i < d->ncache; i++)
		free(d->cache[i].data);
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
	.lookup = dns_lookup,
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
