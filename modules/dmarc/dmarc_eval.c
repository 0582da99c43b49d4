/*
 * modules/dmarc/dmarc_eval.c - DMARC evaluation (RFC 7489): policy
 * discovery at _dmarc.<From domain> then _dmarc.<organisational domain>
 * (6.6.3), identifier alignment for SPF and DKIM (3.1), and the
 * disposition with p/sp and pct (6.6.4, 6.3).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmarc.h"

const char *
dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = { "none", "pass", "fail", "temperror", "permerror" };

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "permerror";
}

int
dmarc_answer_add(struct dmarc_txt_answer *a, const char *text, size_t len)
{
	if (a->count == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4;
		char **t = realloc(a->texts, cap * sizeof(*t));
		if (t == NULL)
			return -1;
		a->texts = t;
		a->cap = cap;
	}
	char *s = malloc(len + 1);
	if (s == NULL)
		return -1;
	memcpy(s, text, len);
	s[len] = '\0';
	a->texts[a->count++] = s;
	return 0;
}

void
dmarc_answer_clear(struct dmarc_txt_answer *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->texts[i]);
	free(a->texts);
	memset(a, 0, sizeof(*a));
}

static void
problem(struct dmarc_outcome *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->problem, sizeof(out->problem), fmt, ap);
	va_end(ap);
}

static bool
same_domain(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

bool
dmarc_aligned(const struct dmarc_psl *psl, const char *a, const char *b, bool strict)
{
	char oa[256], ob[256];

	if (a == NULL || b == NULL || *a == '\0' || *b == '\0')
		return false;
	if (strict)
		return same_domain(a, b);
	return dmarc_org_domain(psl, a, oa, sizeof(oa)) == 0 &&
	    dmarc_org_domain(psl, b, ob, sizeof(ob)) == 0 && strcmp(oa, ob) == 0;
}

/* Outcome of looking at one _dmarc name. */
enum lookup_end { FOUND_RECORD, NO_RECORD, STOP_NONE, STOP_TEMPERROR };

static enum lookup_end
fetch_policy(const struct dmarc_dns *dns, const char *domain, struct dmarc_outcome *out)
{
	char name[300];
	struct dmarc_txt_answer a = { 0 };
	const char *err;

	if ((size_t)snprintf(name, sizeof(name), "_dmarc.%s", domain) >= sizeof(name))
		return NO_RECORD;
	enum dmarc_dns_status st = dns->txt ? dns->txt(dns->ctx, name, &a) : DMARC_DNS_TEMPFAIL;
	if (st == DMARC_DNS_TEMPFAIL || st == DMARC_DNS_PERMFAIL) {
		dmarc_answer_clear(&a);
		problem(out, "DNS error looking up %s", name);
		return STOP_TEMPERROR;
	}
	const char *found = NULL;
	size_t n = 0;
	for (size_t i = 0; st == DMARC_DNS_FOUND && i < a.count; i++)
		if (dmarc_is_v1(a.texts[i])) {
			found = a.texts[i];
			n++;
		}
	enum lookup_end end = NO_RECORD;
	if (n > 1) {
		problem(out, "%s has %zu DMARC records", name, n);
		end = STOP_NONE;
	} else if (n == 1 && dmarc_record_parse(found, &out->record, &err) < 0) {
		problem(out, "%s: %s", name, err);
		end = STOP_NONE;
	} else if (n == 1) {
		snprintf(out->policy_domain, sizeof(out->policy_domain), "%s", domain);
		end = FOUND_RECORD;
	}
	dmarc_answer_clear(&a);
	return end;
}

/* 6.6.3: the From domain's record, else the organisational domain's. */
static enum lookup_end
discover(const struct dmarc_dns *dns, const char *from, struct dmarc_outcome *out)
{
	enum lookup_end end = fetch_policy(dns, from, out);

	if (end != NO_RECORD || same_domain(from, out->org_domain))
		return end;
	return fetch_policy(dns, out->org_domain, out);
}

static enum dmarc_policy
milder(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

enum dmarc_result
dmarc_check(const struct dmarc_dns *dns, const struct dmarc_psl *psl,
    const struct dmarc_input *in, unsigned (*random)(void *rctx), void *rctx,
    struct dmarc_outcome *out)
{
	memset(out, 0, sizeof(*out));
	if (in->from_domain == NULL ||
	    dmarc_org_domain(psl, in->from_domain, out->org_domain, sizeof(out->org_domain)) < 0) {
		problem(out, "no usable From domain");
		return out->result = DMARC_RESULT_PERMERROR;
	}
	switch (discover(dns, in->from_domain, out)) {
	case STOP_TEMPERROR:
		return out->result = DMARC_RESULT_TEMPERROR;
	case NO_RECORD:
		if (out->problem[0] == '\0')
			problem(out, "no DMARC record for %s", in->from_domain);
		return out->result = DMARC_RESULT_NONE;
	case STOP_NONE:
		return out->result = DMARC_RESULT_NONE;
	case FOUND_RECORD:
		break;
	}
	const struct dmarc_record *rec = &out->record;
	out->spf_aligned = in->spf.pass &&
	    dmarc_aligned(psl, in->spf.domain, in->from_domain, rec->aspf_strict);
	for (size_t i = 0; i < in->dkim_count && !out->dkim_aligned; i++)
		out->dkim_aligned = in->dkim[i].pass &&
		    dmarc_aligned(psl, in->dkim[i].domain, in->from_domain, rec->adkim_strict);
	/* sp= governs subdomains when the record came from the org domain */
	bool subdomain = !same_domain(out->policy_domain, in->from_domain);
	out->policy = subdomain ? rec->sp : rec->p;
	if (out->spf_aligned || out->dkim_aligned) {
		out->disposition = DMARC_POLICY_NONE;
		return out->result = DMARC_RESULT_PASS;
	}
	out->disposition = out->policy;
	if (out->policy != DMARC_POLICY_NONE && rec->pct < 100 &&
	    (random == NULL || (int)(random(rctx) % 100) >= rec->pct)) {
		out->sampled_out = true;
		out->disposition = milder(out->policy);
	}
	return out->result = DMARC_RESULT_FAIL;
}
