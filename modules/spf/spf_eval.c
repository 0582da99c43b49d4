/*
 * modules/spf/spf_eval.c - check_host() (RFC 7208 4-6): record lookup
 * and selection, mechanism evaluation, include/redirect, the explanation
 * (exp=), and the processing limits of 4.6.4: at most 10 DNS-querying
 * terms (include a mx ptr exists redirect), at most 10 MX names per mx,
 * the first 10 PTR names per ptr, at most 2 void lookups.
 *
 * Void lookups are counted per term (the term's own query: the TXT of
 * nothing, a's or exists' address query, mx's MX query, ptr's PTR
 * query), as 4.6.4 words it ("terms for which DNS queries return...");
 * the address lookups of each MX host are not terms and are not counted,
 * so an IPv6 client checked against IPv4-only MX hosts is no permerror.
 * Recursion is bounded by the 10-term limit (each include and redirect
 * is one term).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "spf.h"

#define SPF_MAX_DNS_TERMS 10
#define SPF_MAX_VOID 2
#define SPF_MAX_MX 10
#define SPF_MAX_PTR 10
#define SPF_NAME_MAX 512	/* room for an expansion before the 253 rule */

/* A term's outcome: matched, did not, or the check ends with a result. */
enum match { MATCH_NO, MATCH_YES, MATCH_ERROR };

struct eval {
	const struct spf_dns *dns;
	const struct spf_request *req;
	struct spf_outcome *out;
	struct spf_ip ip;
	char sender[2 * SPF_NAME_MAX + 2], local[SPF_NAME_MAX], sender_domain[SPF_NAME_MAX];
	char validated_names[SPF_MAX_PTR][256];	/* for %{p} */
	size_t validated_count;
	int validated_state;		/* 0 not looked up yet, 1 found, -1 none */
	enum spf_result error;		/* set with MATCH_ERROR */
};

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {
		"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror",
	};
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "permerror";
}

int
spf_answer_add_text(struct spf_dns_answer *a, const char *text, size_t len)
{
	if (a->count == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4;
		struct spf_dns_rr *rr = realloc(a->rr, cap * sizeof(*rr));
		if (rr == NULL)
			return -1;
		a->rr = rr;
		a->cap = cap;
	}
	struct spf_dns_rr *r = &a->rr[a->count];
	memset(r, 0, sizeof(*r));
	if ((r->text = malloc(len + 1)) == NULL)
		return -1;
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	a->count++;
	return 0;
}

int
spf_answer_add_addr(struct spf_dns_answer *a, const void *addr, size_t len)
{
	if (len > 16 || spf_answer_add_text(a, "", 0) < 0)
		return -1;
	memcpy(a->rr[a->count - 1].addr, addr, len);
	return 0;
}

void
spf_answer_clear(struct spf_dns_answer *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->rr[i].text);
	free(a->rr);
	memset(a, 0, sizeof(*a));
}

int
spf_ip_parse(const char *text, struct spf_ip *ip_r)
{
	static const unsigned char mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

	memset(ip_r, 0, sizeof(*ip_r));
	if (inet_pton(AF_INET, text, ip_r->addr) == 1) {
		ip_r->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, ip_r->addr) != 1)
		return -1;
	ip_r->family = AF_INET6;
	if (memcmp(ip_r->addr, mapped, 12) == 0) {
		memmove(ip_r->addr, ip_r->addr + 12, 4);
		memset(ip_r->addr + 4, 0, 12);
		ip_r->family = AF_INET;
	}
	return 0;
}

static void
problem(struct eval *e, const char *fmt, ...)
{
	va_list ap;

	if (e->out->problem[0] != '\0')
		return;	/* the first problem is the cause */
	va_start(ap, fmt);
	vsnprintf(e->out->problem, sizeof(e->out->problem), fmt, ap);
	va_end(ap);
}

static enum match
fail_with(struct eval *e, enum spf_result r)
{
	e->error = r;
	return MATCH_ERROR;
}

/* RFC 7208 4.3: a usable domain has labels of 1..63 octets, at least
 * two of them, 253 octets at most. */
static bool
domain_usable(const char *d)
{
	size_t len = strlen(d), label = 0, labels = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (d[i] == '.' || d[i] == '\0') {
			if (label == 0 || label > 63)
				return d[i] == '\0' && label == 0 && i == len && labels >= 2;
			labels++;
			label = 0;
		} else {
			label++;
		}
	}
	return labels >= 2;
}

static enum spf_dns_status
lookup(struct eval *e, enum spf_dns_status (*fn)(void *, const char *,
    struct spf_dns_answer *), const char *name, struct spf_dns_answer *a)
{
	memset(a, 0, sizeof(*a));
	if (fn == NULL)
		return SPF_DNS_TEMPFAIL;
	enum spf_dns_status st = fn(e->dns->ctx, name, a);
	if (st == SPF_DNS_FOUND && a->count == 0)
		st = SPF_DNS_NODATA;
	if (st != SPF_DNS_FOUND && a->count > 0)
		spf_answer_clear(a);
	return st;
}

static bool
dns_error(enum spf_dns_status st)
{
	return st == SPF_DNS_TEMPFAIL || st == SPF_DNS_PERMFAIL;
}

/* A void answer for a term: counted; the third one is a permerror. */
static bool
void_over_limit(struct eval *e, enum spf_dns_status st)
{
	if (st != SPF_DNS_NXDOMAIN && st != SPF_DNS_NODATA)
		return false;
	if (++e->out->void_lookups <= SPF_MAX_VOID)
		return false;
	problem(e, "more than %d void lookups", SPF_MAX_VOID);
	return true;
}

/* Each DNS-querying term counts; the eleventh is a permerror. */
static bool
term_over_limit(struct eval *e)
{
	if (++e->out->lookups <= SPF_MAX_DNS_TERMS)
		return false;
	problem(e, "more than %d DNS-querying terms", SPF_MAX_DNS_TERMS);
	return true;
}

static bool
cidr_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

static bool
ip_in(const struct eval *e, const unsigned char *net, int cidr4, int cidr6)
{
	return cidr_match(e->ip.addr, net, e->ip.family == AF_INET ? cidr4 : cidr6);
}

/* ---- the p macro and the ptr mechanism (5.5) ---------------------------- */

static void
reverse_name(const struct spf_ip *ip, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;

	if (ip->family == AF_INET) {
		snprintf(buf, size, "%u.%u.%u.%u.in-addr.arpa", ip->addr[3],
		    ip->addr[2], ip->addr[1], ip->addr[0]);
		return;
	}
	for (int i = 15; i >= 0 && k + 4 < size; i--) {
		buf[k++] = hex[ip->addr[i] & 15];
		buf[k++] = '.';
		buf[k++] = hex[ip->addr[i] >> 4];
		buf[k++] = '.';
	}
	snprintf(buf + k, size - k, "ip6.arpa");
}

/* Does name resolve back to the client's address? */
static bool
name_has_ip(struct eval *e, const char *name)
{
	struct spf_dns_answer a;
	bool v4 = e->ip.family == AF_INET;
	bool found = false;

	if (lookup(e, v4 ? e->dns->a : e->dns->aaaa, name, &a) != SPF_DNS_FOUND)
		return false;
	for (size_t i = 0; i < a.count && !found; i++)
		found = memcmp(a.rr[i].addr, e->ip.addr, v4 ? 4 : 16) == 0;
	spf_answer_clear(&a);
	return found;
}

static bool
is_subdomain(const char *name, const char *target)
{
	size_t n = strlen(name), t = strlen(target);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (t > 0 && target[t - 1] == '.')
		t--;
	if (n == t)
		return strncasecmp(name, target, n) == 0;
	return n > t && name[n - t - 1] == '.' &&
	    strncasecmp(name + n - t, target, t) == 0;
}

/*
 * The ptr mechanism (5.5): among the first 10 PTR names of the client,
 * is one target or below it and resolves back to the client? Only such
 * names are asked for addresses. Returns the PTR query's status.
 */
static enum spf_dns_status
ptr_names_match(struct eval *e, const char *target, bool *matched_r)
{
	char rev[80];
	struct spf_dns_answer a;

	*matched_r = false;
	reverse_name(&e->ip, rev, sizeof(rev));
	enum spf_dns_status st = lookup(e, e->dns->ptr, rev, &a);
	if (st != SPF_DNS_FOUND)
		return st;
	for (size_t i = 0; i < a.count && i < SPF_MAX_PTR && !*matched_r; i++)
		if (is_subdomain(a.rr[i].text, target) && name_has_ip(e, a.rr[i].text))
			*matched_r = true;
	spf_answer_clear(&a);
	return st;
}

/*
 * %{p} (7.3): the client's validated names are found once per check
 * (one PTR query, at most 10 address queries) and kept, so a record
 * using the macro many times costs no more DNS than using it once.
 */
static void
find_validated(struct eval *e)
{
	char rev[80];
	struct spf_dns_answer a;

	e->validated_state = -1;
	reverse_name(&e->ip, rev, sizeof(rev));
	if (lookup(e, e->dns->ptr, rev, &a) != SPF_DNS_FOUND)
		return;
	for (size_t i = 0; i < a.count && i < SPF_MAX_PTR; i++) {
		size_t n = strlen(a.rr[i].text);
		if (n > 0 && a.rr[i].text[n - 1] == '.')
			a.rr[i].text[--n] = '\0';
		if (n == 0 || n >= sizeof(e->validated_names[0]) || !name_has_ip(e, a.rr[i].text))
			continue;
		memcpy(e->validated_names[e->validated_count++], a.rr[i].text, n + 1);
		e->validated_state = 1;
	}
	spf_answer_clear(&a);
}

struct p_ctx {
	struct eval *e;
	const char *domain;
};

/* The preference of 7.3: the domain itself, then a subdomain, then any. */
static const char *
p_macro(void *ctx)
{
	struct p_ctx *pc = ctx;
	struct eval *e = pc->e;
	const char *best = NULL;
	int best_rank = 0;

	if (e->validated_state == 0)
		find_validated(e);
	for (size_t i = 0; i < e->validated_count; i++) {
		const char *name = e->validated_names[i];
		int rank = strcasecmp(name, pc->domain) == 0 ? 3 :
		    is_subdomain(name, pc->domain) ? 2 : 1;
		if (rank > best_rank) {
			best = name;
			best_rank = rank;
		}
	}
	return best != NULL ? best : "unknown";
}

/* ---- expansion ----------------------------------------------------------- */

static bool
expand(struct eval *e, const char *spec, const char *domain, bool explain,
    char *out, size_t size)
{
	struct p_ctx pc = { e, domain };
	struct spf_macro_env env = {
		.sender = e->sender, .local = e->local,
		.sender_domain = e->sender_domain, .domain = domain,
		.helo = e->req->helo ? e->req->helo : "", .receiver = e->req->receiver,
		.ip = e->ip, .now = e->req->now, .validated_name = p_macro, .ctx = &pc,
	};
	const char *err;

	if (spf_macro_expand(spec, strlen(spec), &env, explain, !explain, out, size, &err) < 0) {
		problem(e, "%s in \"%.60s\"", err, spec);
		return false;
	}
	size_t n = strlen(out);
	if (!explain && n > 0 && out[n - 1] == '.')
		out[n - 1] = '\0';
	return true;
}

/* The target of a term: its domain-spec expanded, or the current domain. */
static bool
target_of(struct eval *e, const struct spf_term *t, const char *domain,
    char *out, size_t size)
{
	if (t->domain_spec == NULL) {
		snprintf(out, size, "%s", domain);
		return true;
	}
	return expand(e, t->domain_spec, domain, false, out, size);
}

/* ---- mechanisms ---------------------------------------------------------- */

static enum spf_result check_host(struct eval *e, const char *domain,
    bool want_exp, unsigned depth);

/* Any address of name in the client's family within the CIDR? */
static enum match
addresses_match(struct eval *e, const char *name, const struct spf_term *t,
    bool term_query)
{
	struct spf_dns_answer a;
	bool v4 = e->ip.family == AF_INET;
	enum spf_dns_status st = lookup(e, v4 ? e->dns->a : e->dns->aaaa, name, &a);

	if (dns_error(st)) {
		problem(e, "DNS error looking up %s", name);
		return fail_with(e, SPF_RESULT_TEMPERROR);
	}
	if (term_query && void_over_limit(e, st))
		return fail_with(e, SPF_RESULT_PERMERROR);
	bool hit = false;
	for (size_t i = 0; i < a.count && !hit; i++)
		hit = ip_in(e, a.rr[i].addr, t->cidr4, t->cidr6);
	spf_answer_clear(&a);
	return hit ? MATCH_YES : MATCH_NO;
}

static enum match
mech_mx(struct eval *e, const char *target, const struct spf_term *t)
{
	struct spf_dns_answer mx;
	enum spf_dns_status st = lookup(e, e->dns->mx, target, &mx);

	if (dns_error(st)) {
		problem(e, "DNS error looking up MX %s", target);
		return fail_with(e, SPF_RESULT_TEMPERROR);
	}
	if (void_over_limit(e, st))
		return fail_with(e, SPF_RESULT_PERMERROR);
	if (mx.count > SPF_MAX_MX) {
		spf_answer_clear(&mx);
		problem(e, "more than %d MX names for %s", SPF_MAX_MX, target);
		return fail_with(e, SPF_RESULT_PERMERROR);
	}
	enum match m = MATCH_NO;
	for (size_t i = 0; i < mx.count && m == MATCH_NO; i++)
		m = addresses_match(e, mx.rr[i].text, t, false);
	spf_answer_clear(&mx);
	return m;
}

static enum match
mech_ptr(struct eval *e, const char *target)
{
	bool matched;
	enum spf_dns_status st = ptr_names_match(e, target, &matched);

	/* 5.5: a DNS error on the PTR query is no match, not an error. */
	if (void_over_limit(e, st))
		return fail_with(e, SPF_RESULT_PERMERROR);
	return matched ? MATCH_YES : MATCH_NO;
}

static enum match
mech_exists(struct eval *e, const char *target)
{
	struct spf_dns_answer a;
	enum spf_dns_status st = lookup(e, e->dns->a, target, &a);

	spf_answer_clear(&a);
	if (dns_error(st)) {
		problem(e, "DNS error looking up %s", target);
		return fail_with(e, SPF_RESULT_TEMPERROR);
	}
	if (void_over_limit(e, st))
		return fail_with(e, SPF_RESULT_PERMERROR);
	return st == SPF_DNS_FOUND ? MATCH_YES : MATCH_NO;
}

static enum match
mech_include(struct eval *e, const char *target, unsigned depth)
{
	switch (check_host(e, target, false, depth + 1)) {
	case SPF_RESULT_PASS:
		return MATCH_YES;
	case SPF_RESULT_FAIL:
	case SPF_RESULT_SOFTFAIL:
	case SPF_RESULT_NEUTRAL:
		return MATCH_NO;
	case SPF_RESULT_TEMPERROR:
		return fail_with(e, SPF_RESULT_TEMPERROR);
	case SPF_RESULT_NONE:
		problem(e, "include:%s has no SPF record", target);
		return fail_with(e, SPF_RESULT_PERMERROR);
	default:
		return fail_with(e, SPF_RESULT_PERMERROR);
	}
}

static enum match
evaluate_term(struct eval *e, const struct spf_term *t, const char *domain,
    unsigned depth)
{
	char target[SPF_NAME_MAX];

	switch (t->mech) {
	case SPF_MECH_ALL:
		return MATCH_YES;
	case SPF_MECH_IP4:
		return e->ip.family == AF_INET && cidr_match(e->ip.addr, t->net, t->cidr4);
	case SPF_MECH_IP6:
		return e->ip.family == AF_INET6 && cidr_match(e->ip.addr, t->net, t->cidr6);
	default:
		break;
	}
	if (term_over_limit(e))
		return fail_with(e, SPF_RESULT_PERMERROR);
	if (!target_of(e, t, domain, target, sizeof(target)))
		return fail_with(e, SPF_RESULT_PERMERROR);
	if (t->mech == SPF_MECH_INCLUDE)
		return mech_include(e, target, depth);
	/* A name DNS cannot hold (a label over 63 octets, an empty label)
	 * is asked nothing and matches nothing. */
	if (!domain_usable(target)) {
		problem(e, "unusable name \"%.60s\"", target);
		return MATCH_NO;
	}
	switch (t->mech) {
	case SPF_MECH_A:
		return addresses_match(e, target, t, true);
	case SPF_MECH_MX:
		return mech_mx(e, target, t);
	case SPF_MECH_PTR:
		return mech_ptr(e, target);
	default:
		return mech_exists(e, target);
	}
}

/* ---- records ------------------------------------------------------------- */

/* 4.4 and 4.5: the one "v=spf1" TXT record of domain. */
static enum spf_result
fetch_record(struct eval *e, const char *domain, struct spf_record **rec_r)
{
	struct spf_dns_answer a;
	enum spf_dns_status st = lookup(e, e->dns->txt, domain, &a);
	const char *found = NULL;
	size_t n = 0;

	*rec_r = NULL;
	if (dns_error(st)) {
		problem(e, "DNS error looking up TXT %s", domain);
		return SPF_RESULT_TEMPERROR;
	}
	for (size_t i = 0; i < a.count; i++)
		if (spf_is_v1(a.rr[i].text)) {
			found = a.rr[i].text;
			n++;
		}
	enum spf_result r = SPF_RESULT_NONE;
	const char *err;
	if (n > 1) {
		problem(e, "%s has %zu SPF records", domain, n);
		r = SPF_RESULT_PERMERROR;
	} else if (n == 1 && spf_record_parse(found, rec_r, &err) < 0) {
		problem(e, "%s: %s", domain, err);
		r = SPF_RESULT_PERMERROR;
	} else if (n == 0) {
		problem(e, "no SPF record at %s", domain);
	}
	spf_answer_clear(&a);
	return r;
}

static enum spf_result
qualifier_result(char q)
{
	switch (q) {
	case '-': return SPF_RESULT_FAIL;
	case '~': return SPF_RESULT_SOFTFAIL;
	case '?': return SPF_RESULT_NEUTRAL;
	default: return SPF_RESULT_PASS;
	}
}

/* 6.2: exp= is looked up (not counted as a term) and expanded; any
 * problem leaves the explanation empty, for the caller's default. */
static void
explain(struct eval *e, const struct spf_record *rec, const char *domain)
{
	char target[SPF_NAME_MAX];
	struct spf_dns_answer a;
	char problem_saved[SPF_PROBLEM_MAX];

	memcpy(problem_saved, e->out->problem, sizeof(problem_saved));
	if (rec->exp == NULL || !expand(e, rec->exp, domain, false, target, sizeof(target)))
		goto out;
	if (lookup(e, e->dns->txt, target, &a) == SPF_DNS_FOUND && a.count == 1)
		expand(e, a.rr[0].text, domain, true, e->out->explanation,
		    sizeof(e->out->explanation));
	spf_answer_clear(&a);
out:
	/* A broken exp= does not change the result, nor its reason. */
	memcpy(e->out->problem, problem_saved, sizeof(problem_saved));
}

static enum spf_result
evaluate_record(struct eval *e, const struct spf_record *rec, const char *domain,
    bool want_exp, unsigned depth)
{
	for (size_t i = 0; i < rec->count; i++) {
		enum match m = evaluate_term(e, &rec->terms[i], domain, depth);
		if (m == MATCH_ERROR)
			return e->error;
		if (m == MATCH_NO)
			continue;
		enum spf_result r = qualifier_result(rec->terms[i].qualifier);
		if (r == SPF_RESULT_FAIL && want_exp)
			explain(e, rec, domain);
		return r;
	}
	if (rec->redirect == NULL)
		return SPF_RESULT_NEUTRAL;
	char target[SPF_NAME_MAX];
	if (term_over_limit(e) || !expand(e, rec->redirect, domain, false, target, sizeof(target)))
		return SPF_RESULT_PERMERROR;
	enum spf_result r = check_host(e, target, want_exp, depth + 1);
	if (r == SPF_RESULT_NONE) {
		problem(e, "redirect=%s has no SPF record", target);
		return SPF_RESULT_PERMERROR;
	}
	return r;
}

static enum spf_result
check_host(struct eval *e, const char *domain, bool want_exp, unsigned depth)
{
	struct spf_record *rec;

	if (!domain_usable(domain)) {
		problem(e, "malformed domain \"%.60s\"", domain);
		return SPF_RESULT_NONE;
	}
	enum spf_result r = fetch_record(e, domain, &rec);
	if (rec == NULL)
		return r;
	r = evaluate_record(e, rec, domain, want_exp, depth);
	spf_record_free(rec);
	return r;
}

/* Split sender into local-part and domain; 4.3's "postmaster" default. */
static void
split_sender(struct eval *e, const char *sender, const char *domain)
{
	const char *at = strrchr(sender, '@');

	if (at == NULL || at == sender) {
		snprintf(e->local, sizeof(e->local), "postmaster");
		snprintf(e->sender_domain, sizeof(e->sender_domain), "%s",
		    at ? at + 1 : (*sender ? sender : domain));
	} else {
		snprintf(e->local, sizeof(e->local), "%.*s", (int)(at - sender), sender);
		snprintf(e->sender_domain, sizeof(e->sender_domain), "%s", at + 1);
	}
	snprintf(e->sender, sizeof(e->sender), "%s@%s", e->local, e->sender_domain);
}

enum spf_result
spf_check_host(const struct spf_dns *dns, const struct spf_request *req,
    const char *domain, struct spf_outcome *out)
{
	struct eval *e = calloc(1, sizeof(*e));

	memset(out, 0, sizeof(*out));
	if (e == NULL) {
		snprintf(out->problem, sizeof(out->problem), "out of memory");
		return out->result = SPF_RESULT_TEMPERROR;
	}
	e->dns = dns;
	e->req = req;
	e->out = out;
	e->ip = req->ip;
	split_sender(e, req->sender ? req->sender : "", domain);
	char d[SPF_NAME_MAX];
	snprintf(d, sizeof(d), "%s", domain);
	size_t n = strlen(d);
	if (n > 0 && d[n - 1] == '.')
		d[n - 1] = '\0';
	out->result = check_host(e, d, true, 0);
	if (out->result != SPF_RESULT_NONE && out->result != SPF_RESULT_TEMPERROR &&
	    out->result != SPF_RESULT_PERMERROR)
		out->problem[0] = '\0';
	free(e);
	return out->result;
}

enum spf_result
spf_check_mailfrom(const struct spf_dns *dns, const struct spf_request *req,
    struct spf_outcome *out)
{
	const char *sender = req->sender ? req->sender : "";
	const char *at = strrchr(sender, '@');
	char null_sender[SPF_NAME_MAX];
	struct spf_request r = *req;

	if (*sender == '\0') {
		snprintf(null_sender, sizeof(null_sender), "postmaster@%s",
		    req->helo ? req->helo : "");
		r.sender = null_sender;
		return spf_check_host(dns, &r, req->helo ? req->helo : "", out);
	}
	return spf_check_host(dns, &r, at ? at + 1 : sender, out);
}
