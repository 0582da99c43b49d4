/*
 * tests/unit/test_dnsbl.c - the dnsbl module: the names it asks (IPv4,
 * IPv6 and IPv4-mapped addresses reversed, sender domains), which
 * answer codes count, CIDR allow-lists, weighted scoring over a fake
 * DNS; then the module itself through a mock host that serves a
 * configuration tree, a session (txn_info, txn_slot) and that fake DNS:
 * refusal at connect, the weighted pair, allow-listing, the auth
 * listener's wait for MAIL FROM, the sender-domain list, header mode,
 * and init refusing bad settings with the setting named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <merpati/filter.h>

#include "../../modules/dnsbl/dnsbl_check.h"
#include "mock_host.h"
#include "test.h"

extern const struct mp_module merpati_module;

/* ---- a fake DNS: name -> one or more A records ----------------------------- */

struct fake_rr {
	const char *name;
	unsigned char a[4];
};

static const struct fake_rr zone[] = {
	{ "2.0.0.127.zen.example", { 127, 0, 0, 2 } },
	{ "2.0.0.127.zen.example", { 127, 0, 0, 3 } },	/* two codes, one listing */
	{ "5.0.0.127.zen.example", { 127, 0, 0, 10 } },	/* a code that does not count */
	{ "3.0.0.127.bl1.example", { 127, 0, 0, 2 } },
	{ "3.0.0.127.bl2.example", { 127, 0, 0, 4 } },
	{ "4.0.0.127.bl1.example", { 127, 0, 0, 2 } },
	{ "7.0.0.127.bl1.example", { 127, 255, 255, 254 } },	/* "query refused" */
	{ "spammy.test.dbl.example", { 127, 0, 1, 2 } },
	{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example",
	    { 127, 0, 0, 2 } },
};
static int fake_queries;
static const char *fake_down = "";	/* zone suffix whose lookups time out */

static int
fake_lookup(void *arg, const char *name, int type, unsigned char *buf, size_t size,
    struct mp_dns_answer *a)
{
	size_t nl = strlen(name), dl = strlen(fake_down);

	(void)arg;
	fake_queries++;
	a->status = MP_DNS_NXDOMAIN;
	a->count = 0;
	a->used = 0;
	if (type != MP_DNS_A)
		return MP_PERMFAIL;
	if (dl && nl >= dl && strcmp(name + nl - dl, fake_down) == 0) {
		a->status = MP_DNS_TEMPFAIL;
		return MP_TEMPFAIL;
	}
	for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++)
		if (strcmp(zone[i].name, name) == 0 && a->used + 6 <= size) {
			buf[a->used] = 0;
			buf[a->used + 1] = 4;
			memcpy(buf + a->used + 2, zone[i].a, 4);
			a->used += 6;
			a->count++;
			a->status = MP_DNS_FOUND;
		}
	return a->status == MP_DNS_FOUND ? MP_OK : MP_PERMFAIL;
}

static int
host_dns_lookup(const char *name, int type, unsigned char *buf, size_t size,
    struct mp_dns_answer *a)
{
	return fake_lookup(NULL, name, type, buf, size, a);
}

/* ---- pure parts ------------------------------------------------------------- */

static void
test_names(void)
{
	char n[300];

	CHECK("IPv4 reversed", dnsbl_reverse_name("192.0.2.99", "zen.example", n, sizeof(n)) == 0 &&
	    strcmp(n, "99.2.0.192.zen.example") == 0);
	CHECK("IPv6 reversed by nibble (RFC 5782 2.4)",
	    dnsbl_reverse_name("2001:DB8::1", "zen.example", n, sizeof(n)) == 0 &&
	    strcmp(n, zone[8].name) == 0);
	CHECK("IPv4-mapped IPv6 asked as IPv4",
	    dnsbl_reverse_name("::ffff:127.0.0.2", "zen.example", n, sizeof(n)) == 0 &&
	    strcmp(n, "2.0.0.127.zen.example") == 0);
	CHECK("not an address refused", dnsbl_reverse_name("mail.test", "z", n, sizeof(n)) < 0);
	CHECK("too small a buffer refused", dnsbl_reverse_name("192.0.2.1", "zen.example", n, 10) < 0);
	char longzone[260];
	memset(longzone, 'a', 250);
	longzone[250] = '\0';
	CHECK("a name over 253 octets refused",
	    dnsbl_reverse_name("192.0.2.1", longzone, n, sizeof(n)) < 0);
	CHECK("sender domain, lower case", dnsbl_domain_name("Bob@Spammy.TEST", "dbl.example",
	    n, sizeof(n)) == 0 && strcmp(n, "spammy.test.dbl.example") == 0);
	CHECK("a bare domain, trailing dot dropped", dnsbl_domain_name("spammy.test.", "dbl.example",
	    n, sizeof(n)) == 0 && strcmp(n, "spammy.test.dbl.example") == 0);
	CHECK("null sender: nothing to ask", dnsbl_domain_name("", "dbl.example", n, sizeof(n)) < 0);
	CHECK("address literal: nothing to ask",
	    dnsbl_domain_name("a@[192.0.2.1]", "dbl.example", n, sizeof(n)) < 0);
	CHECK("odd characters: nothing to ask",
	    dnsbl_domain_name("a@x y.test", "dbl.example", n, sizeof(n)) < 0);
}

static void
test_codes_and_cidr(void)
{
	struct dnsbl_list ip = { .kind = DNSBL_IP }, dom = { .kind = DNSBL_DOMAIN };
	struct dnsbl_list some = { .kind = DNSBL_IP, .ncodes = 1 };
	struct dnsbl_cidr c;
	uint32_t code;

	CHECK("code parses", dnsbl_code_parse("127.0.0.3", &code) == 0 && code == 0x7f000003u);
	CHECK("bad code refused", dnsbl_code_parse("127.0.0", &code) < 0);
	CHECK("default: 127.0.0.x counts on an address list", dnsbl_code_counts(&ip, 0x7f000002u) &&
	    dnsbl_code_counts(&ip, 0x7f0000ffu) && !dnsbl_code_counts(&ip, 0x7f000102u));
	CHECK("default: 127.0.1.x counts on a domain list", dnsbl_code_counts(&dom, 0x7f000102u) &&
	    !dnsbl_code_counts(&dom, 0x7f000002u));
	CHECK("127.255.255.254 never counts by default", !dnsbl_code_counts(&ip, 0x7ffffffeu) &&
	    !dnsbl_code_counts(&dom, 0x7ffffffeu));
	some.codes[0] = 0x7f000004u;
	CHECK("listed codes only", dnsbl_code_counts(&some, 0x7f000004u) &&
	    !dnsbl_code_counts(&some, 0x7f000002u));
	CHECK("CIDR /24 matches inside", dnsbl_cidr_parse("192.0.2.0/24", &c) == 0 &&
	    dnsbl_cidr_match(&c, "192.0.2.200") && !dnsbl_cidr_match(&c, "192.0.3.1"));
	CHECK("CIDR matches an IPv4-mapped client", dnsbl_cidr_match(&c, "::ffff:192.0.2.7"));
	CHECK("CIDR /13 (a partial octet)", dnsbl_cidr_parse("10.8.0.0/13", &c) == 0 &&
	    dnsbl_cidr_match(&c, "10.15.255.255") && !dnsbl_cidr_match(&c, "10.16.0.0"));
	CHECK("IPv6 CIDR", dnsbl_cidr_parse("2001:db8::/32", &c) == 0 &&
	    dnsbl_cidr_match(&c, "2001:db8:1::5") && !dnsbl_cidr_match(&c, "2001:db9::1") &&
	    !dnsbl_cidr_match(&c, "192.0.2.1"));
	CHECK("a single address", dnsbl_cidr_parse("127.0.0.6", &c) == 0 && c.bits == 32 &&
	    dnsbl_cidr_match(&c, "127.0.0.6") && !dnsbl_cidr_match(&c, "127.0.0.7"));
	CHECK("/0 matches every address of its family", dnsbl_cidr_parse("0.0.0.0/0", &c) == 0 &&
	    dnsbl_cidr_match(&c, "203.0.113.9"));
	CHECK("bad prefixes refused", dnsbl_cidr_parse("10.0.0.0/33", &c) < 0 &&
	    dnsbl_cidr_parse("10.0.0.0/", &c) < 0 && dnsbl_cidr_parse("x/8", &c) < 0 &&
	    dnsbl_cidr_parse("::/129", &c) < 0 && dnsbl_cidr_parse("1.2.3.4/-1", &c) < 0);
}

static void
test_scoring(void)
{
	struct dnsbl_list lists[4] = {
		{ .zone = "zen.example", .kind = DNSBL_IP, .weight = 2, .ncodes = 2,
		  .codes = { 0x7f000002u, 0x7f000003u } },
		{ .zone = "bl1.example", .kind = DNSBL_IP, .weight = 1 },
		{ .zone = "bl2.example", .kind = DNSBL_IP, .weight = 1 },
		{ .zone = "dbl.example", .kind = DNSBL_DOMAIN, .weight = 3 },
	};
	struct dnsbl_score s;

	memset(&s, 0, sizeof(s));
	fake_queries = 0;
	dnsbl_check(lists, 4, DNSBL_IP, "127.0.0.2", fake_lookup, NULL, &s);
	CHECK("two matching codes count once", s.score == 2 &&
	    strcmp(s.listed, "zen.example (127.0.0.2)") == 0);
	CHECK("only the address lists are asked", fake_queries == 3);
	memset(&s, 0, sizeof(s));
	dnsbl_check(lists, 4, DNSBL_IP, "127.0.0.3", fake_lookup, NULL, &s);
	CHECK("weights summed over lists", s.score == 2 &&
	    strcmp(s.listed, "bl1.example (127.0.0.2), bl2.example (127.0.0.4)") == 0);
	memset(&s, 0, sizeof(s));
	dnsbl_check(lists, 4, DNSBL_IP, "127.0.0.5", fake_lookup, NULL, &s);
	CHECK("a code outside the list's codes counts nothing", s.score == 0 && s.listed[0] == 0);
	memset(&s, 0, sizeof(s));
	dnsbl_check(lists, 4, DNSBL_IP, "127.0.0.7", fake_lookup, NULL, &s);
	CHECK("127.255.255.254 counts nothing", s.score == 0);
	memset(&s, 0, sizeof(s));
	dnsbl_check(lists, 4, DNSBL_IP, "2001:db8::1", fake_lookup, NULL, &s);
	CHECK("an IPv6 client listed", s.score == 2);
	fake_down = "bl2.example";
	memset(&s, 0, sizeof(s));
	dnsbl_check(lists, 4, DNSBL_IP, "127.0.0.3", fake_lookup, NULL, &s);
	CHECK("a list that does not answer counts nothing, and is counted as failed",
	    s.score == 1 && s.failed == 1);
	fake_down = "";
	dnsbl_check(lists, 4, DNSBL_DOMAIN, "x@spammy.test", fake_lookup, NULL, &s);
	CHECK("a domain list adds to the score so far", s.score == 4 &&
	    strstr(s.listed, "dbl.example (127.0.1.2)") != NULL);
}

/* ---- the module through a mock host ------------------------------------------ */

struct node {
	const char *name;
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

static const struct node *N(const struct mp_conf *c) { return (const void *)c; }
static const struct mp_conf *C(const struct node *n) { return (const void *)n; }

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
	snprintf(buf, size, "modules.dnsbl.%s", c && N(c)->name ? N(c)->name : "[]");
}

/* One session: what txn_info says and the module's slot. */
static struct mp_conn_info conn = { .struct_size = sizeof(conn) };
static struct mp_txn_info info = { .struct_size = sizeof(info), .conn = &conn };
static void *slot;
static char added[800];

static const struct mp_txn_info *fake_info(struct mp_txn *t) { (void)t; return &info; }
static void **fake_slot(struct mp_txn *t) { (void)t; return &slot; }

static int
fake_add_header(struct mp_txn *t, const char *name, const char *value)
{
	(void)t;
	snprintf(added, sizeof(added), "%s: %s", name, value);
	return MP_OK;
}

static struct mp_host host;

static const struct node codes[] = { STR(NULL, "127.0.0.2"), STR(NULL, "127.0.0.3") };
static const struct node l_zen[] = { STR("zone", "zen.example"), NUM("weight", 2),
	GROUP("codes", codes) };
static const struct node l_bl1[] = { STR("zone", "bl1.example") };
static const struct node l_bl2[] = { STR("zone", "bl2.example"), NUM("weight", 1) };
static const struct node l_dbl[] = { STR("zone", "dbl.example"), STR("type", "domain"),
	NUM("weight", 2) };
static const struct node lists[] = { GROUP(NULL, l_zen), GROUP(NULL, l_bl1),
	GROUP(NULL, l_bl2), GROUP(NULL, l_dbl) };
static const struct node allow[] = { STR(NULL, "127.0.0.6/32") };
static const struct node top_reject[] = { NUM("threshold", 2), GROUP("allow", allow),
	GROUP("lists", lists) };
static const struct node top_header[] = { NUM("threshold", 2), STR("action", "header"),
	GROUP("lists", lists) };

/* A session from peer on listener to its MAIL FROM: the hook results,
 * connect's reply text in *text. */
static int
session(void *ctx, const char *peer, const char *listener, const char *auth_user,
    const char *sender, int *mail_rc, char *text, size_t size)
{
	const struct mp_filter_ops *f = merpati_module.filter;
	struct mp_status st = { .struct_size = sizeof(st) };
	struct mp_txn *txn = (struct mp_txn *)(void *)&info;	/* opaque to the module */
	int rc;

	conn.peer = peer;
	conn.listener = listener;
	info.auth_user = NULL;
	added[0] = '\0';
	text[0] = '\0';
	*mail_rc = -1;
	rc = f->connect(ctx, txn, &st);
	snprintf(text, size, "%d %s %s", st.reply, st.enhanced, st.text);
	if (rc == MP_OK && sender) {
		info.auth_user = auth_user;
		memset(&st, 0, sizeof(st));
		st.struct_size = sizeof(st);
		*mail_rc = f->mail_from(ctx, txn, sender, &st);
		if (*mail_rc != MP_OK)
			snprintf(text, size, "%d %s %s", st.reply, st.enhanced, st.text);
		else
			f->end_of_data(ctx, txn, NULL, NULL, fake_add_header, &st);
		f->txn_end(ctx, txn);
	}
	f->session_end(ctx, txn);
	return rc;
}

static void
test_module_reject(void)
{
	const struct node conf = GROUP("dnsbl", top_reject);
	const char *err = NULL;
	char text[400];
	void *ctx;
	int mail;

	CHECK("module up", merpati_module.init(&host, C(&conf), &ctx, &err) == MP_OK);
	if (err)
		printf("# %s\n", err);
	CHECK("listed client refused at connect with 554 5.7.1 naming the list",
	    session(ctx, "127.0.0.2", "smtp", NULL, NULL, &mail, text, sizeof(text)) == MP_PERMFAIL &&
	    strstr(text, "554 5.7.1") == text && strstr(text, "zen.example (127.0.0.2)") &&
	    strstr(text, "[127.0.0.2]"));
	CHECK("the session's slot is freed at its end", slot == NULL);
	CHECK("the weighted pair crosses the threshold",
	    session(ctx, "127.0.0.3", "smtp", NULL, NULL, &mail, text, sizeof(text)) == MP_PERMFAIL &&
	    strstr(text, "bl1.example") && strstr(text, "bl2.example"));
	CHECK("one weight-1 list stays below it",
	    session(ctx, "127.0.0.4", "smtp", NULL, "a@clean.test", &mail, text, sizeof(text)) ==
	    MP_OK && mail == MP_OK);
	fake_queries = 0;
	CHECK("an allow-listed client passes, nothing asked",
	    session(ctx, "127.0.0.6", "smtp", NULL, "a@spammy.test", &mail, text, sizeof(text)) ==
	    MP_OK && mail == MP_OK && fake_queries == 0);
	CHECK("sender domain listed: refused at MAIL FROM",
	    session(ctx, "127.0.0.9", "smtp", NULL, "a@spammy.test", &mail, text, sizeof(text)) ==
	    MP_OK && mail == MP_PERMFAIL && strstr(text, "554 5.7.1") &&
	    strstr(text, "dbl.example (127.0.1.2)"));
	CHECK("null sender: no domain asked",
	    session(ctx, "127.0.0.9", "smtp", NULL, "", &mail, text, sizeof(text)) == MP_OK &&
	    mail == MP_OK);
	CHECK("submission: a listed client is let in to authenticate",
	    session(ctx, "127.0.0.2", "submission", NULL, NULL, &mail, text, sizeof(text)) == MP_OK);
	CHECK("submission: refused at MAIL FROM unauthenticated",
	    session(ctx, "127.0.0.2", "submission", NULL, "a@clean.test", &mail, text,
	    sizeof(text)) == MP_OK && mail == MP_PERMFAIL && strstr(text, "zen.example"));
	CHECK("submission: an authenticated user passes",
	    session(ctx, "127.0.0.2", "submission", "alice@example.test", "alice@example.test",
	    &mail, text, sizeof(text)) == MP_OK && mail == MP_OK && added[0] == '\0');
	fake_down = "zen.example";
	CHECK("the lists not answering: the client passes",
	    session(ctx, "127.0.0.2", "smtp", NULL, "a@clean.test", &mail, text, sizeof(text)) ==
	    MP_OK && mail == MP_OK && strstr(mock_log_text(), "did not answer"));
	fake_down = "";
	merpati_module.fini(ctx);
}

static void
test_module_header(void)
{
	const struct node conf = GROUP("dnsbl", top_header);
	const char *err = NULL;
	char text[400];
	void *ctx;
	int mail;

	CHECK("header mode up", merpati_module.init(&host, C(&conf), &ctx, &err) == MP_OK);
	CHECK("header mode: a listed client is not refused, the message gets X-DNSBL",
	    session(ctx, "127.0.0.2", "smtp", NULL, "a@clean.test", &mail, text, sizeof(text)) ==
	    MP_OK && mail == MP_OK && strstr(added, "X-DNSBL: listed by zen.example (127.0.0.2)") &&
	    strstr(added, "score=2; threshold=2"));
	CHECK("header mode: a clean client gets none",
	    session(ctx, "127.0.0.4", "smtp", NULL, "a@clean.test", &mail, text, sizeof(text)) ==
	    MP_OK && added[0] == '\0');
	merpati_module.fini(ctx);
}

static const struct node bad_zone[] = { STR("zone", "") };
static const struct node bad_lists_zone[] = { GROUP(NULL, bad_zone) };
static const struct node bad_code_list[] = { STR(NULL, "127.0.0") };
static const struct node bad_code[] = { STR("zone", "z.example"), GROUP("codes", bad_code_list) };
static const struct node bad_lists_code[] = { GROUP(NULL, bad_code) };
static const struct node bad_type[] = { STR("zone", "z.example"), STR("type", "asn") };
static const struct node bad_lists_type[] = { GROUP(NULL, bad_type) };
static const struct node bad_allow_list[] = { STR(NULL, "10.0.0.0/40") };

static int
init_fails(const struct node *top, unsigned n, const char *want)
{
	struct node conf = { "dnsbl", NULL, 0, 0, top, n };
	const char *err = NULL;
	void *ctx = NULL;

	if (merpati_module.init(&host, C(&conf), &ctx, &err) == MP_OK) {
		merpati_module.fini(ctx);
		return 0;
	}
	return err && strstr(err, want) != NULL;
}

static void
test_bad_settings(void)
{
	const struct node no_lists[] = { NUM("threshold", 2) };
	const struct node zero[] = { NUM("threshold", 0), GROUP("lists", lists) };
	const struct node action[] = { STR("action", "drop"), GROUP("lists", lists) };
	const struct node unknown[] = { NUM("treshold", 2), GROUP("lists", lists) };
	const struct node zone_empty[] = { GROUP("lists", bad_lists_zone) };
	const struct node code[] = { GROUP("lists", bad_lists_code) };
	const struct node type[] = { GROUP("lists", bad_lists_type) };
	const struct node allow_bad[] = { GROUP("allow", bad_allow_list), GROUP("lists", lists) };

	CHECK("no lists refused", init_fails(no_lists, NKIDS(no_lists), "lists"));
	CHECK("threshold 0 refused", init_fails(zero, NKIDS(zero), "threshold"));
	CHECK("unknown action refused", init_fails(action, NKIDS(action), "action"));
	CHECK("misspelt setting refused", init_fails(unknown, NKIDS(unknown), "treshold"));
	CHECK("empty zone refused", init_fails(zone_empty, NKIDS(zone_empty), "zone"));
	CHECK("malformed code refused", init_fails(code, NKIDS(code), "not valid"));
	CHECK("unknown list type refused", init_fails(type, NKIDS(type), "type"));
	CHECK("bad CIDR refused", init_fails(allow_bad, NKIDS(allow_bad), "not valid"));
}

int
main(void)
{
	test_names();
	test_codes_and_cidr();
	test_scoring();
	host = mock_host;
	host.conf_member = tree_member;
	host.conf_elem = tree_elem;
	host.conf_length = tree_length;
	host.conf_string = tree_string;
	host.conf_name = tree_name;
	host.conf_int = tree_int;
	host.conf_where = tree_where;
	host.txn_info = fake_info;
	host.txn_slot = fake_slot;
	host.dns_lookup = host_dns_lookup;
	test_module_reject();
	test_module_header();
	test_bad_settings();
	TEST_EXIT();
}
