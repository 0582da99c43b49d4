/*
 * modules/route_regex/route_regex.c - the route kind with PCRE2 rules.
 *
 *   route_regex = {
 *     aliases = ( { from = "info@example.test"; to = [ "a@example.test", "b@example.test" ]; } );
 *     rules = (
 *       { match = "^(.+)\\+[^@]*@(.*)$"; action = "rewrite"; to = "$1@$2"; },
 *       { match = "@partner\\.test$"; action = "relay"; host = "10.0.0.5:25"; },
 *       { match = "^spam@"; sender = "@bad\\.test$"; action = "reject";
 *         code = 550; enhanced = "5.7.1"; text = "go away"; },
 *       { match = "^postmaster@"; action = "local"; }
 *     );
 *   };
 *
 * Aliases (exact address, case-insensitive) are checked first, then the
 * rules in order; the first whose `match` (on the lower-cased recipient)
 * and optional `sender` regex (on the envelope sender, "" for <>) match
 * decides. `to` may be one address or a list; $0..$9 are capture groups.
 * Patterns are compiled once at init; each call gets its own match data,
 * so route() runs concurrently. A bad rule fails init naming the rule.
 * Compiling, match limits and $n expansion live in route_expand.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/merpati.h>

#include "route_expand.h"

#define MAX_TO 64
#define ADDR_MAX ROUTE_ADDR_MAX

struct rule {
	pcre2_code *match, *sender;
	enum mp_route_action action;
	char *to[MAX_TO];
	size_t nto;
	char *host;
	struct mp_status status;
};

struct alias {
	char *from;
	char *to[MAX_TO];
	size_t nto;
};

struct router {
	const struct mp_host *host;
	pcre2_match_context *mctx;
	struct rule *rules;
	size_t nrules;
	struct alias *aliases;
	size_t naliases;
};

static _Thread_local char err_buf[512];

static int
fail(const struct mp_host *h, const struct mp_conf *where, const char **error_r,
    const char *fmt, const char *arg)
{
	char loc[256] = "modules.route_regex", why[256];

	if (where)
		h->conf_where(where, loc, sizeof(loc));
	snprintf(why, sizeof(why), fmt, arg);
	snprintf(err_buf, sizeof(err_buf), "%s: %s", loc, why);
	*error_r = err_buf;
	return MP_ERROR;
}

/* ---- config --------------------------------------------------------------- */

static pcre2_code *
compile(const struct mp_host *h, const struct mp_conf *c, const char **error_r)
{
	const char *pattern = h->conf_string(c);
	PCRE2_UCHAR msg[160];
	PCRE2_SIZE offset;
	int code;
	pcre2_code *re;

	if (pattern == NULL) {
		fail(h, c, error_r, "%s", "must be a string (a regular expression)");
		return NULL;
	}
	re = route_compile(pattern, &code, &offset);
	if (re == NULL) {
		char why[300];
		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(why, sizeof(why), "bad regex at offset %zu: %s", (size_t)offset,
		    (const char *)msg);
		fail(h, c, error_r, "%s", why);
	}
	return re;
}

/* `to` as one string or a list of strings. */
static int
read_targets(const struct mp_host *h, const struct mp_conf *c, char **to,
    size_t *n, const char **error_r)
{
	unsigned len = h->conf_length(c);
	const char *one = h->conf_string(c);

	*n = 0;
	if (one)
		to[(*n)++] = strdup(one);
	for (unsigned i = 0; !one && i < len && *n < MAX_TO; i++) {
		const char *s = h->conf_string(h->conf_elem(c, i));
		if (s == NULL)
			return fail(h, c, error_r, "%s", "must be an address or a list of addresses");
		to[(*n)++] = strdup(s);
	}
	if (*n == 0)
		return fail(h, c, error_r, "%s", "no target address");
	for (size_t i = 0; i < *n; i++)
		if (to[i] == NULL)
			return fail(h, c, error_r, "%s", "out of memory");
	for (size_t i = 0; i < *n; i++)
		if (strchr(to[i], '@') == NULL)
			return fail(h, c, error_r, "\"%s\" is not an address", to[i]);
	return MP_OK;
}

static int
read_action(const struct mp_host *h, const struct mp_conf *c, struct rule *r,
    const char **error_r)
{
	static const struct { const char *name; enum mp_route_action a; } actions[] = {
		{ "local", MP_ROUTE_LOCAL }, { "relay", MP_ROUTE_RELAY },
		{ "reject", MP_ROUTE_REJECT }, { "rewrite", MP_ROUTE_REWRITE },
	};
	const char *s = h->conf_string(c);

	for (size_t i = 0; s && i < 4; i++)
		if (strcmp(s, actions[i].name) == 0) {
			r->action = actions[i].a;
			return MP_OK;
		}
	return fail(h, c, error_r, "unknown action \"%s\" (local, relay, reject, rewrite)",
	    s ? s : "?");
}

static int
rule_member(const struct mp_host *h, const struct mp_conf *m, struct rule *r,
    const char **error_r)
{
	const char *name = h->conf_name(m);
	long long code;

	if (strcmp(name, "match") == 0)
		return (r->match = compile(h, m, error_r)) ? MP_OK : MP_ERROR;
	if (strcmp(name, "sender") == 0)
		return (r->sender = compile(h, m, error_r)) ? MP_OK : MP_ERROR;
	if (strcmp(name, "action") == 0)
		return read_action(h, m, r, error_r);
	if (strcmp(name, "to") == 0)
		return read_targets(h, m, r->to, &r->nto, error_r);
	if (strcmp(name, "host") == 0 && h->conf_string(m)) {
		r->host = strdup(h->conf_string(m));
		return r->host ? MP_OK : fail(h, m, error_r, "%s", "out of memory");
	}
	if (strcmp(name, "code") == 0) {
		if (h->conf_int(m, &code) < 0 || code < 400 || code > 599)
			return fail(h, m, error_r, "%s", "must be a reply code from 400 to 599");
		r->status.reply = (int)code;
		return MP_OK;
	}
	if (strcmp(name, "enhanced") == 0 && h->conf_string(m)) {
		snprintf(r->status.enhanced, sizeof(r->status.enhanced), "%s", h->conf_string(m));
		return MP_OK;
	}
	if (strcmp(name, "text") == 0 && h->conf_string(m)) {
		snprintf(r->status.text, sizeof(r->status.text), "%s", h->conf_string(m));
		return MP_OK;
	}
	return fail(h, m, error_r, "%s", "unknown or mistyped setting");
}

static int
read_rule(const struct mp_host *h, const struct mp_conf *g, struct rule *r,
    size_t index, const char **error_r)
{
	unsigned n = h->conf_length(g);

	r->action = MP_ROUTE_DEFAULT;
	for (unsigned i = 0; i < n; i++)
		if (rule_member(h, h->conf_elem(g, i), r, error_r) != MP_OK)
			return MP_ERROR;
	if (r->match == NULL)
		return fail(h, g, error_r, "%s", "missing match");
	if (r->action == MP_ROUTE_DEFAULT)
		return fail(h, g, error_r, "%s", "missing action");
	if (r->action == MP_ROUTE_REWRITE && r->nto == 0)
		return fail(h, g, error_r, "%s", "rewrite needs to");
	if (r->action == MP_ROUTE_RELAY && r->host == NULL)
		return fail(h, g, error_r, "%s", "relay needs host");
	if (r->action == MP_ROUTE_REJECT) {
		if (r->status.reply == 0)
			r->status.reply = 550;
		if (r->status.enhanced[0] == '\0')
			snprintf(r->status.enhanced, sizeof(r->status.enhanced), "%d.7.1",
			    r->status.reply / 100);
		if (r->status.text[0] == '\0')
			snprintf(r->status.text, sizeof(r->status.text),
			    "rejected by routing rule %zu", index);
	}
	return MP_OK;
}

static int
read_aliases(struct router *rt, const struct mp_conf *list, const char **error_r)
{
	const struct mp_host *h = rt->host;
	unsigned n = h->conf_length(list);

	rt->aliases = calloc(n ? n : 1, sizeof(*rt->aliases));
	if (rt->aliases == NULL)
		return fail(h, list, error_r, "%s", "out of memory");
	for (unsigned i = 0; i < n; i++) {
		const struct mp_conf *g = h->conf_elem(list, i);
		const char *from = h->conf_string(h->conf_member(g, "from"));
		const struct mp_conf *to = h->conf_member(g, "to");
		struct alias *a = &rt->aliases[rt->naliases];
		if (from == NULL || to == NULL || h->conf_length(g) != 2)
			return fail(h, g, error_r, "%s", "an alias is { from = \"a@b\"; to = ...; }");
		if (read_targets(h, to, a->to, &a->nto, error_r) != MP_OK)
			return MP_ERROR;
		if ((a->from = strdup(from)) == NULL)
			return fail(h, g, error_r, "%s", "out of memory");
		for (char *p = a->from; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		rt->naliases++;
	}
	return MP_OK;
}

/* ---- routing ------------------------------------------------------------------ */

static int
matches(const struct router *rt, pcre2_code *re, const char *subject,
    pcre2_match_data **md)
{
	*md = pcre2_match_data_create_from_pattern(re, NULL);
	if (*md == NULL)
		return 0;
	return pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, *md,
	    rt->mctx) > 0;
}

/* Expand $0..$9 in tmpl from the match; NULL if the result is no address. */
static char *
expand(const struct router *rt, const char *tmpl, const char *subject,
    pcre2_match_data *md)
{
	char out[ADDR_MAX + 1];
	int len = route_expand(tmpl, subject, pcre2_get_ovector_pointer(md),
	    pcre2_get_ovector_count(md), out);
	char *copy = len < 0 ? NULL : rt->host->alloc((size_t)len + 1);

	if (copy)
		memcpy(copy, out, (size_t)len + 1);
	return copy;
}

static int
rewrite(const struct router *rt, char *const *to, size_t nto, const char *subject,
    pcre2_match_data *md, struct mp_route_decision *d)
{
	d->addresses = rt->host->alloc(nto * sizeof(char *));
	if (d->addresses == NULL)
		return MP_TEMPFAIL;
	d->naddresses = 0;
	for (size_t i = 0; i < nto; i++) {
		char *a = md ? expand(rt, to[i], subject, md) : NULL;
		if (md == NULL && (a = rt->host->alloc(strlen(to[i]) + 1)) != NULL)
			strcpy(a, to[i]);
		if (a == NULL) {
			rt->host->log(MP_LOG_WARNING, "rewrite of <%s> gave no valid address; rule skipped",
			    subject);
			for (size_t k = 0; k < d->naddresses; k++)
				rt->host->free(d->addresses[k]);
			rt->host->free(d->addresses);
			d->addresses = NULL;
			d->naddresses = 0;
			return MP_DECLINED;
		}
		d->addresses[d->naddresses++] = a;
	}
	d->action = MP_ROUTE_REWRITE;
	return MP_OK;
}

static int
apply(const struct router *rt, const struct rule *r, const char *rcpt,
    pcre2_match_data *md, struct mp_route_decision *d)
{
	d->action = r->action;
	switch (r->action) {
	case MP_ROUTE_RELAY:
		d->relay_host = r->host;
		return MP_OK;
	case MP_ROUTE_REJECT:
		MP_SIZED_WRITE(&d->status, &r->status);
		return MP_OK;
	case MP_ROUTE_REWRITE:
		return rewrite(rt, r->to, r->nto, rcpt, md, d);
	default:
		return MP_OK;
	}
}

static int
route(void *ctx, const char *sender, const char *rcpt,
    struct mp_route_decision *d, const char **error_r)
{
	const struct router *rt = ctx;
	char addr[ADDR_MAX + 1];

	(void)error_r;
	snprintf(addr, sizeof(addr), "%s", rcpt);
	for (char *p = addr; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	d->action = MP_ROUTE_DEFAULT;
	for (size_t i = 0; i < rt->naliases; i++)
		if (strcmp(rt->aliases[i].from, addr) == 0)
			return rewrite(rt, rt->aliases[i].to, rt->aliases[i].nto, addr, NULL, d);
	for (size_t i = 0; i < rt->nrules; i++) {
		const struct rule *r = &rt->rules[i];
		pcre2_match_data *md = NULL, *smd = NULL;
		int hit = matches(rt, r->match, addr, &md) &&
		    (r->sender == NULL || matches(rt, r->sender, sender, &smd));
		int rc = hit ? apply(rt, r, addr, md, d) : MP_DECLINED;
		pcre2_match_data_free(md);
		pcre2_match_data_free(smd);
		if (rc != MP_DECLINED)
			return rc;
		d->action = MP_ROUTE_DEFAULT;
	}
	return MP_OK;
}

/* ---- module ------------------------------------------------------------------- */

static void
free_targets(char **to, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(to[i]);
}

static void
router_fini(void *ctx)
{
	struct router *rt = ctx;

	for (size_t i = 0; rt->rules && i < rt->nrules; i++) {
		pcre2_code_free(rt->rules[i].match);
		pcre2_code_free(rt->rules[i].sender);
		free_targets(rt->rules[i].to, rt->rules[i].nto);
		free(rt->rules[i].host);
	}
	for (size_t i = 0; i < rt->naliases; i++) {
		free(rt->aliases[i].from);
		free_targets(rt->aliases[i].to, rt->aliases[i].nto);
	}
	free(rt->rules);
	free(rt->aliases);
	pcre2_match_context_free(rt->mctx);
	rt->host->free(rt);
}

static int
check_keys(const struct mp_host *h, const struct mp_conf *conf, const char **error_r)
{
	for (unsigned i = 0; i < h->conf_length(conf); i++) {
		const struct mp_conf *m = h->conf_elem(conf, i);
		const char *name = h->conf_name(m);
		if (strcmp(name, "rules") && strcmp(name, "aliases") && strcmp(name, "path"))
			return fail(h, m, error_r, "%s", "unknown setting");
	}
	return MP_OK;
}

static int
router_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct router *rt;
	const struct mp_conf *rules, *aliases;
	unsigned n;

	if ((rt = host->alloc(sizeof(*rt))) == NULL)
		return fail(host, NULL, error_r, "%s", "out of memory");
	memset(rt, 0, sizeof(*rt));
	rt->host = host;
	if ((rt->mctx = route_match_context()) == NULL) {
		host->free(rt);
		return fail(host, NULL, error_r, "%s", "out of memory");
	}
	rules = host->conf_member(conf, "rules");
	aliases = host->conf_member(conf, "aliases");
	n = host->conf_length(rules);
	rt->rules = calloc(n ? n : 1, sizeof(*rt->rules));
	int rc = rt->rules == NULL ? fail(host, rules, error_r, "%s", "out of memory") :
	    check_keys(host, conf, error_r);
	for (unsigned i = 0; rc == MP_OK && i < n; i++, rt->nrules++)
		rc = read_rule(host, host->conf_elem(rules, i), &rt->rules[i], i, error_r);
	if (rc == MP_OK && aliases)
		rc = read_aliases(rt, aliases, error_r);
	if (rc != MP_OK) {
		router_fini(rt);
		return MP_ERROR;
	}
	*ctx_r = rt;
	return MP_OK;
}

static const struct mp_route_ops route_ops = {
	.struct_size = sizeof(struct mp_route_ops),
	.route = route,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "route_regex",
	.kinds = MP_KIND_ROUTE,
	.init = router_init,
	.fini = router_fini,
	.route = &route_ops,
};
