/*
 * tests/unit/test_route_regex_rules.c - the route_regex module as the
 * core uses it: init from a configuration tree, then route() per
 * recipient. Aliases before rules, rules in order, the sender condition,
 * each action's decision (rewrite with $n, relay host, reject with its
 * own or the default status, local), case-insensitive matching, a
 * rewrite that yields no address skipped, and init refusing bad rules
 * with the setting named. The configuration tree is served by a copy of
 * the mock host whose conf_* calls walk the static nodes below (the
 * module sees struct mp_conf as opaque).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"
#include "test.h"

extern const struct mp_module merpati_module;

/* A setting: a string, a number, or a group/list of settings. */
struct node {
	const char *name;		/* NULL for a list element */
	const char *str;
	long long num;
	int is_num;
	const struct node *kids;
	unsigned nkids;
};

#define NKIDS(a) (unsigned)(sizeof(a) / sizeof((a)[0]))
#define STR(n, v) { n, v, 0, 0, NULL, 0 }
#define NUM(n, v) { n, NULL, v, 1, NULL, 0 }
#define GROUP(n, a) { n, NULL, 0, 0, a, NKIDS(a) }

static const struct node *
N(const struct mp_conf *c)
{
	return (const struct node *)(const void *)c;
}

static const struct mp_conf *
C(const struct node *n)
{
	return (const struct mp_conf *)(const void *)n;
}

static const struct mp_conf *
tree_member(const struct mp_conf *g, const char *name)
{
	for (unsigned i = 0; g && i < N(g)->nkids; i++)
		if (N(g)->kids[i].name && strcmp(N(g)->kids[i].name, name) == 0)
			return C(&N(g)->kids[i]);
	return NULL;
}

static const struct mp_conf *
tree_elem(const struct mp_conf *l, unsigned i)
{
	return l && i < N(l)->nkids ? C(&N(l)->kids[i]) : NULL;
}

static unsigned tree_length(const struct mp_conf *c) { return c ? N(c)->nkids : 0; }
static const char *tree_string(const struct mp_conf *c) { return c ? N(c)->str : NULL; }
static const char *tree_name(const struct mp_conf *c) { return c ? N(c)->name : NULL; }

static int
tree_int(const struct mp_conf *c, long long *v)
{
	if (c == NULL || !N(c)->is_num)
		return -1;
	*v = N(c)->num;
	return 0;
}

static void
tree_where(const struct mp_conf *c, char *buf, size_t size)
{
	snprintf(buf, size, "modules.route_regex.%s",
	    c && N(c)->name ? N(c)->name : "[]");
}

static struct mp_host host;

/* ---- the configuration under test ------------------------------------------- */

static const struct node alias_to[] = { STR(NULL, "a@example.test"),
	STR(NULL, "b@example.test") };
static const struct node alias0[] = { STR("from", "Info@Example.test"),
	GROUP("to", alias_to) };
static const struct node aliases[] = { GROUP(NULL, alias0) };
static const struct node r_plus[] = { STR("match", "^(.+)\\+[^@]*@(.*)$"),
	STR("action", "rewrite"), STR("to", "$1@$2") };
static const struct node r_relay[] = { STR("match", "@partner\\.test$"),
	STR("action", "relay"), STR("host", "10.0.0.5:25") };
static const struct node r_spam[] = { STR("match", "^spam@"),
	STR("sender", "@bad\\.test$"), STR("action", "reject"), NUM("code", 554),
	STR("enhanced", "5.7.1"), STR("text", "go away") };
static const struct node r_nocode[] = { STR("match", "^nocode@"),
	STR("action", "reject") };
static const struct node r_post[] = { STR("match", "^postmaster@"),
	STR("action", "local") };
static const struct node r_broken[] = { STR("match", "^(.*)@badrewrite\\.test$"),
	STR("action", "rewrite"), STR("to", "$1 x@y.test") };
static const struct node r_after[] = { STR("match", "@badrewrite\\.test$"),
	STR("action", "local") };
static const struct node rules[] = { GROUP(NULL, r_plus), GROUP(NULL, r_relay),
	GROUP(NULL, r_spam), GROUP(NULL, r_nocode), GROUP(NULL, r_post),
	GROUP(NULL, r_broken), GROUP(NULL, r_after) };
static const struct node top[] = { GROUP("aliases", aliases), GROUP("rules", rules) };
static const struct node conf = GROUP("route_regex", top);

/* Route rcpt from sender; the decision in *d (addresses freed by done()). */
static int
route(void *ctx, const char *sender, const char *rcpt, struct mp_route_decision *d)
{
	const char *err = NULL;

	memset(d, 0, sizeof(*d));
	d->struct_size = sizeof(*d);
	d->status.struct_size = sizeof(d->status);	/* the caller sizes it */
	return merpati_module.route->route(ctx, sender, rcpt, d, &err);
}

static void
done(struct mp_route_decision *d)
{
	for (size_t i = 0; i < d->naddresses; i++)
		host.free(d->addresses[i]);
	host.free(d->addresses);
}

static void
test_routing(void *ctx)
{
	struct mp_route_decision d;

	CHECK("alias: exact address, any case, to its list",
	    route(ctx, "s@x.test", "INFO@example.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_REWRITE && d.naddresses == 2 &&
	    strcmp(d.addresses[1], "b@example.test") == 0);
	done(&d);
	CHECK("rewrite with $n: plus addressing",
	    route(ctx, "s@x.test", "alice+tag@example.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_REWRITE && d.naddresses == 1 &&
	    strcmp(d.addresses[0], "alice@example.test") == 0);
	done(&d);
	CHECK("relay: the rule's host",
	    route(ctx, "s@x.test", "bob@partner.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_RELAY && strcmp(d.relay_host, "10.0.0.5:25") == 0);
	CHECK("reject: when the sender matches too, with the rule's status",
	    route(ctx, "evil@bad.test", "spam@example.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_REJECT && d.status.reply == 554 &&
	    strcmp(d.status.text, "go away") == 0);
	CHECK("reject: not when the sender does not match",
	    route(ctx, "nice@good.test", "spam@example.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_DEFAULT);
	CHECK("reject: the null sender does not match a sender rule",
	    route(ctx, "", "spam@example.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_DEFAULT);
	CHECK("reject without a status: 550 5.7.1 naming the rule",
	    route(ctx, "s@x.test", "nocode@example.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_REJECT && d.status.reply == 550 &&
	    strcmp(d.status.enhanced, "5.7.1") == 0 &&
	    strstr(d.status.text, "rule 3") != NULL);
	CHECK("local, matched on the lower-cased recipient",
	    route(ctx, "s@x.test", "PostMaster@Example.TEST", &d) == MP_OK &&
	    d.action == MP_ROUTE_LOCAL);
	CHECK("a rewrite giving no address is skipped: the next rule decides",
	    route(ctx, "s@x.test", "joe@badrewrite.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_LOCAL && d.naddresses == 0);
	CHECK("and says so in the log", strstr(mock_log_text(), "gave no valid address") != NULL);
	CHECK("no rule matches: the default",
	    route(ctx, "s@x.test", "carol@example.test", &d) == MP_OK &&
	    d.action == MP_ROUTE_DEFAULT);
}

/* Init with one rule; MP_OK or the error text in why. */
static int
init_one(const struct node *rule, unsigned n, const char **why)
{
	const struct node list[] = { { NULL, NULL, 0, 0, rule, n } };
	const struct node t[] = { { "rules", NULL, 0, 0, list, 1 } };
	const struct node c = { "route_regex", NULL, 0, 0, t, 1 };
	void *ctx;
	int rc;

	*why = "";
	rc = merpati_module.init(&host, C(&c), &ctx, why);
	if (rc == MP_OK)
		merpati_module.fini(ctx);
	return rc;
}

static void
test_bad_rules(void)
{
	static const struct node bad_re[] = { STR("match", "^(unclosed"), STR("action", "local") };
	static const struct node bad_action[] = { STR("match", "x"), STR("action", "drop") };
	static const struct node no_match[] = { STR("action", "local") };
	static const struct node no_host[] = { STR("match", "x"), STR("action", "relay") };
	static const struct node bad_code[] = { STR("match", "x"), STR("action", "reject"),
		NUM("code", 250) };
	static const struct node no_at[] = { STR("match", "x"), STR("action", "rewrite"),
		STR("to", "nobody") };
	static const struct node extra[] = { STR("match", "x"), STR("action", "local"),
		STR("colour", "red") };
	const char *why;

	CHECK("bad regex refused, saying where", init_one(bad_re, 2, &why) == MP_ERROR &&
	    strstr(why, "bad regex") && strstr(why, "match"));
	CHECK("unknown action refused", init_one(bad_action, 2, &why) == MP_ERROR &&
	    strstr(why, "unknown action \"drop\""));
	CHECK("missing match refused", init_one(no_match, 1, &why) == MP_ERROR &&
	    strstr(why, "missing match"));
	CHECK("relay without host refused", init_one(no_host, 2, &why) == MP_ERROR &&
	    strstr(why, "relay needs host"));
	CHECK("reply code outside 400-599 refused", init_one(bad_code, 3, &why) == MP_ERROR &&
	    strstr(why, "400 to 599"));
	CHECK("rewrite target without @ refused", init_one(no_at, 3, &why) == MP_ERROR &&
	    strstr(why, "not an address"));
	CHECK("unknown rule setting refused", init_one(extra, 3, &why) == MP_ERROR &&
	    strstr(why, "colour"));
	CHECK("a good rule is accepted", init_one(r_post, NKIDS(r_post), &why) == MP_OK);
}

int
main(void)
{
	const char *err = NULL;
	void *ctx;

	host = mock_host;
	host.conf_member = tree_member;
	host.conf_elem = tree_elem;
	host.conf_length = tree_length;
	host.conf_string = tree_string;
	host.conf_name = tree_name;
	host.conf_int = tree_int;
	host.conf_where = tree_where;
	CHECK("init with aliases and seven rules",
	    merpati_module.init(&host, C(&conf), &ctx, &err) == MP_OK);
	if (err)
		printf("# %s\n", err);
	test_routing(ctx);
	merpati_module.fini(ctx);
	test_bad_rules();
	TEST_EXIT();
}
