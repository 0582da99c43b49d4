/*
 * modules/dnsbl/dnsbl.c - the dnsbl filter: asks DNS blocklists about
 * each client at connect (its address, reversed) and about the sender's
 * domain at MAIL FROM (domain lists such as Spamhaus DBL), sums the
 * weights of the lists that list them, and at the threshold refuses with
 * 554 5.7.1 naming the lists, or only adds an X-DNSBL header.
 *
 *   modules.dnsbl = { threshold = 2; action = "reject";
 *     allow = [ "192.0.2.0/24" ]; auth_listeners = [ "submission", "smtps" ];
 *     lists = ( { zone = "zen.example"; weight = 2;
 *                 codes = [ "127.0.0.2", "127.0.0.3" ]; },
 *               { zone = "dbl.example"; type = "domain"; } ); }
 *
 * Authenticated users are exempt, and no connect-time refusal can know
 * who will authenticate: so on the listeners named in auth_listeners
 * (where clients log in) the verdict reached at connect waits for MAIL
 * FROM and an authenticated session passes; on every other listener a
 * listed client is refused at connect, as postscreen does. Allow-listed
 * clients (CIDR) are not looked up at all. Lists that do not answer
 * count for nothing. Lookups go through the host's dns_lookup (dns_mx),
 * which caches them for their TTL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <merpati/merpati.h>
#include <merpati/filter.h>

#include "dnsbl_check.h"

#define MAX_ALLOW 64
#define MAX_AUTH_LISTENERS 8
#define HEADER "X-DNSBL"

struct dnsbl {
	const struct mp_host *host;
	long long threshold;
	int header_only;		/* action = "header" */
	struct dnsbl_list lists[DNSBL_MAX_LISTS];
	size_t nlists;
	struct dnsbl_cidr allow[MAX_ALLOW];
	size_t nallow;
	char auth_listeners[MAX_AUTH_LISTENERS][64];
	size_t nauth_listeners;
};

/* A session's verdict (its txn_slot). */
struct verdict {
	int exempt;			/* allow-listed, or no connection */
	int wait_for_auth;		/* an auth listener: decide at MAIL FROM */
	struct dnsbl_score client;	/* the address lists, at connect */
	struct dnsbl_score txn;		/* client plus the sender's domain */
	int txn_listed;			/* txn reached the threshold */
};

/* ---- configuration ------------------------------------------------------- */

static char init_error[512];

static int
fail(const struct mp_host *h, const struct mp_conf *where, const char **error_r,
    const char *why)
{
	char path[200] = "modules.dnsbl";

	if (where)
		h->conf_where(where, path, sizeof(path));
	snprintf(init_error, sizeof(init_error), "%s: %s", path, why);
	*error_r = init_error;
	return MP_ERROR;
}

/* Each element of an array of strings, through add(); a missing array
 * is empty. */
static int
read_strings(const struct mp_host *h, const struct mp_conf *arr, size_t max,
    int (*add)(void *, const char *), void *target, const char **error_r)
{
	unsigned n = h->conf_length(arr);

	if (arr && n == 0 && h->conf_string(arr))
		return fail(h, arr, error_r, "want an array of strings: [ \"...\" ]");
	if (n > max)
		return fail(h, arr, error_r, "too many entries");
	for (unsigned i = 0; i < n; i++) {
		const struct mp_conf *e = h->conf_elem(arr, i);
		const char *s = h->conf_string(e);
		if (s == NULL || add(target, s) < 0)
			return fail(h, e, error_r, s ? "not valid here" : "want a string");
	}
	return MP_OK;
}

static int
add_allow(void *target, const char *s)
{
	struct dnsbl *d = target;

	return dnsbl_cidr_parse(s, &d->allow[d->nallow++]);
}

static int
add_auth_listener(void *target, const char *s)
{
	struct dnsbl *d = target;

	if (strlen(s) >= sizeof(d->auth_listeners[0]))
		return -1;
	snprintf(d->auth_listeners[d->nauth_listeners++], sizeof(d->auth_listeners[0]), "%s", s);
	return 0;
}

static int
add_code(void *target, const char *s)
{
	struct dnsbl_list *l = target;

	return dnsbl_code_parse(s, &l->codes[l->ncodes++]);
}

static int
check_members(const struct mp_host *h, const struct mp_conf *g,
    const char *const *known, const char **error_r)
{
	for (unsigned i = 0; i < h->conf_length(g); i++) {
		const struct mp_conf *m = h->conf_elem(g, i);
		const char *name = h->conf_name(m);
		size_t k = 0;
		while (known[k] && (name == NULL || strcmp(known[k], name) != 0))
			k++;
		if (known[k] == NULL)
			return fail(h, m, error_r, "unknown setting");
	}
	return MP_OK;
}

static int
read_list(struct dnsbl *d, const struct mp_conf *g, struct dnsbl_list *l,
    const char **error_r)
{
	static const char *const known[] = { "zone", "weight", "codes", "type", NULL };
	const struct mp_host *h = d->host;
	const char *zone = h->conf_string(h->conf_member(g, "zone"));
	const struct mp_conf *weight = h->conf_member(g, "weight");
	const char *type = h->conf_string(h->conf_member(g, "type"));

	if (check_members(h, g, known, error_r) != MP_OK)
		return MP_ERROR;
	if (zone == NULL || zone[0] == '\0' || strlen(zone) >= sizeof(l->zone) - 10)
		return fail(h, g, error_r, "zone: want the list's DNS zone, e.g. \"zen.spamhaus.org\"");
	snprintf(l->zone, sizeof(l->zone), "%s", zone);
	l->weight = 1;
	if (weight && (h->conf_int(weight, &l->weight) < 0 || l->weight < -1000 ||
	    l->weight > 1000))
		return fail(h, weight, error_r, "want an integer from -1000 to 1000");
	if (type && strcmp(type, "ip") != 0 && strcmp(type, "domain") != 0)
		return fail(h, h->conf_member(g, "type"), error_r, "want \"ip\" or \"domain\"");
	l->kind = type && strcmp(type, "domain") == 0 ? DNSBL_DOMAIN : DNSBL_IP;
	return read_strings(h, h->conf_member(g, "codes"), DNSBL_MAX_CODES, add_code, l,
	    error_r);
}

static int
read_settings(struct dnsbl *d, const struct mp_conf *conf, const char **error_r)
{
	static const char *const known[] = { "threshold", "action", "allow",
	    "auth_listeners", "lists", "path", NULL };
	const struct mp_host *h = d->host;
	const struct mp_conf *threshold = h->conf_member(conf, "threshold");
	const struct mp_conf *action = h->conf_member(conf, "action");
	const struct mp_conf *lists = h->conf_member(conf, "lists");
	const struct mp_conf *auth = h->conf_member(conf, "auth_listeners");
	const char *act = h->conf_string(action);

	if (check_members(h, conf, known, error_r) != MP_OK)
		return MP_ERROR;
	d->threshold = 1;
	if (threshold && (h->conf_int(threshold, &d->threshold) < 0 || d->threshold < 1))
		return fail(h, threshold, error_r, "want an integer of 1 or more");
	if (action && (act == NULL || (strcmp(act, "reject") && strcmp(act, "header"))))
		return fail(h, action, error_r, "want \"reject\" or \"header\"");
	d->header_only = act && strcmp(act, "header") == 0;
	if (read_strings(h, h->conf_member(conf, "allow"), MAX_ALLOW, add_allow, d,
	    error_r) != MP_OK)
		return MP_ERROR;
	if (auth == NULL) {
		add_auth_listener(d, "submission");
		add_auth_listener(d, "smtps");
	} else if (read_strings(h, auth, MAX_AUTH_LISTENERS, add_auth_listener, d,
	    error_r) != MP_OK)
		return MP_ERROR;
	if (lists == NULL || h->conf_length(lists) == 0)
		return fail(h, lists, error_r, "lists: want at least one ( { zone = \"...\"; } )");
	if (h->conf_length(lists) > DNSBL_MAX_LISTS)
		return fail(h, lists, error_r, "too many lists");
	for (unsigned i = 0; i < h->conf_length(lists); i++, d->nlists++)
		if (read_list(d, h->conf_elem(lists, i), &d->lists[i], error_r) != MP_OK)
			return MP_ERROR;
	return MP_OK;
}

/* ---- the checks ---------------------------------------------------------- */

static int
host_lookup(void *arg, const char *name, int type, unsigned char *buf,
    size_t size, struct mp_dns_answer *answer_r)
{
	const struct mp_host *host = arg;

	if (!MP_HOST_HAS(dns_lookup) || host->dns_lookup == NULL) {
		answer_r->status = MP_DNS_TEMPFAIL;
		return MP_TEMPFAIL;
	}
	return host->dns_lookup(name, type, buf, size, answer_r);
}

static int
allowed(const struct dnsbl *d, const char *ip)
{
	for (size_t i = 0; i < d->nallow; i++)
		if (dnsbl_cidr_match(&d->allow[i], ip))
			return 1;
	return 0;
}

/* listener is "submission" or "smtp.submission"-like: its last part. */
static int
auth_listener(const struct dnsbl *d, const char *listener)
{
	const char *dot = listener ? strrchr(listener, '.') : NULL;
	const char *name = dot ? dot + 1 : listener;

	for (size_t i = 0; name && i < d->nauth_listeners; i++)
		if (strcmp(d->auth_listeners[i], listener) == 0 ||
		    strcmp(d->auth_listeners[i], name) == 0)
			return 1;
	return 0;
}

static void
refuse(struct mp_status *st, const char *who, const struct dnsbl_score *s)
{
	char text[sizeof(st->text)];

	snprintf(text, sizeof(text), "Service unavailable; %.80s listed by %.140s", who, s->listed);
	mp_status_set(st, 554, "5.7.1", text);
}

static struct verdict *
verdict_of(const struct dnsbl *d, struct mp_txn *txn)
{
	const struct mp_host *host = d->host;
	void **slot = host->txn_slot(txn);

	return slot ? *slot : NULL;
}

static int
dnsbl_connect(void *ctx, struct mp_txn *txn, struct mp_status *status_r)
{
	struct dnsbl *d = ctx;
	const struct mp_host *host = d->host;
	const struct mp_txn_info *info = host->txn_info(txn);
	void **slot = host->txn_slot(txn);
	struct verdict *v = calloc(1, sizeof(*v));
	char who[80];

	if (v == NULL || slot == NULL || info == NULL) {
		free(v);
		return MP_OK;	/* fail open: a blocklist is advice */
	}
	*slot = v;
	if (info->conn == NULL || info->conn->peer == NULL || allowed(d, info->conn->peer)) {
		v->exempt = 1;
		return MP_OK;
	}
	dnsbl_check(d->lists, d->nlists, DNSBL_IP, info->conn->peer, host_lookup,
	    (void *)host, &v->client);
	v->wait_for_auth = auth_listener(d, info->conn->listener);
	if (v->client.failed)
		host->log(MP_LOG_WARNING, "[%s]: %u list(s) did not answer",
		    info->conn->peer, v->client.failed);
	if (v->client.score < d->threshold)
		return MP_OK;
	host->log(MP_LOG_NOTICE, "[%s] listed by %s (score %lld, threshold %lld)%s",
	    info->conn->peer, v->client.listed, v->client.score, d->threshold,
	    d->header_only ? ": header only" : v->wait_for_auth ?
	    ": refused at MAIL FROM unless authenticated" : ": refused");
	if (d->header_only || v->wait_for_auth)
		return MP_OK;
	snprintf(who, sizeof(who), "client [%.60s]", info->conn->peer);
	refuse(status_r, who, &v->client);
	return MP_PERMFAIL;
}

static int
dnsbl_mail_from(void *ctx, struct mp_txn *txn, const char *sender,
    struct mp_status *status_r)
{
	struct dnsbl *d = ctx;
	const struct mp_host *host = d->host;
	const struct mp_txn_info *info = host->txn_info(txn);
	struct verdict *v = verdict_of(d, txn);

	if (v == NULL || v->exempt || (info && info->auth_user))
		return MP_OK;	/* local, allow-listed or authenticated */
	v->txn = v->client;
	dnsbl_check(d->lists, d->nlists, DNSBL_DOMAIN, sender, host_lookup,
	    (void *)host, &v->txn);
	v->txn_listed = v->txn.score >= d->threshold;
	if (!v->txn_listed || d->header_only)
		return MP_OK;
	host->log(MP_LOG_NOTICE, "<%s> from [%s] listed by %s (score %lld, threshold %lld): refused",
	    sender, info && info->conn ? info->conn->peer : "", v->txn.listed,
	    v->txn.score, d->threshold);
	refuse(status_r, v->client.score >= d->threshold ? "client" : "sender domain",
	    &v->txn);
	return MP_PERMFAIL;
}

static int
dnsbl_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg,
    int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *status_r)
{
	struct dnsbl *d = ctx;
	const struct mp_host *host = d->host;
	struct verdict *v = MP_HOST_HAS(txn_slot) ? verdict_of(d, txn) : NULL;
	char value[700];

	if (v == NULL || !v->txn_listed || !d->header_only)
		return MP_OK;
	snprintf(value, sizeof(value), "listed by %s; score=%lld; threshold=%lld",
	    v->txn.listed, v->txn.score, d->threshold);
	add_header(txn, HEADER, value);
	return MP_OK;
}

static void
dnsbl_txn_end(void *ctx, struct mp_txn *txn)
{
	struct verdict *v = verdict_of(ctx, txn);

	if (v) {
		memset(&v->txn, 0, sizeof(v->txn));
		v->txn_listed = 0;
	}
}

static void
dnsbl_session_end(void *ctx, struct mp_txn *txn)
{
	const struct dnsbl *d = ctx;
	void **slot = d->host->txn_slot(txn);

	if (slot) {
		free(*slot);
		*slot = NULL;
	}
}

/* ---- module -------------------------------------------------------------- */

static void
dnsbl_fini(void *ctx)
{
	struct dnsbl *d = ctx;

	d->host->free(d);
}

static int
dnsbl_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct dnsbl *d;

	if (!MP_HOST_HAS(txn_slot) || host->txn_slot == NULL || host->txn_info == NULL) {
		*error_r = "dnsbl: this merpati has no filter hook points (ABI 2.1 needed)";
		return MP_ERROR;
	}
	if ((d = host->alloc(sizeof(*d))) == NULL) {
		*error_r = "dnsbl: out of memory";
		return MP_ERROR;
	}
	memset(d, 0, sizeof(*d));
	d->host = host;
	if (read_settings(d, conf, error_r) != MP_OK) {
		dnsbl_fini(d);
		return MP_ERROR;
	}
	if (!MP_HOST_HAS(dns_lookup) || host->dns_lookup == NULL)
		host->log(MP_LOG_WARNING, "no DNS lookups in this merpati: no client will be listed");
	*ctx_r = d;
	return MP_OK;
}

static const struct mp_filter_ops dnsbl_ops = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = dnsbl_end_of_data,
	.connect = dnsbl_connect,
	.mail_from = dnsbl_mail_from,
	.txn_end = dnsbl_txn_end,
	.session_end = dnsbl_session_end,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "dnsbl",
	.kinds = MP_KIND_FILTER,
	.init = dnsbl_init,
	.fini = dnsbl_fini,
	.filter = &dnsbl_ops,
};
