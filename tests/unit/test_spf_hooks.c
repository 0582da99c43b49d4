/*
 * tests/unit/test_spf_hooks.c - the spf module's glue (modules/spf/spf.c)
 * on a mock host (mock_txn.h): the MAIL FROM and null-sender HELO
 * identities through dns_lookup, the notes left for DMARC, the refusals
 * the settings ask for, skipped submissions, and the one
 * Authentication-Results header with forged ones removed.
 */
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "mock_txn.h"

extern const struct mp_module merpati_module;

static const struct mock_rr zone[] = {
	{ "example.test", MP_DNS_TXT, "v=spf1 ip4:192.0.2.1 ~all", 0, 0 },
	{ "strict.test", MP_DNS_TXT, "v=spf1 a -all", 0, 0 },
	{ "strict.test", MP_DNS_A, "192.0.2.7", 0, 0 },
	{ "mx.test", MP_DNS_TXT, "v=spf1 mx -all", 0, 0 },
	{ "mx.test", MP_DNS_MX, "in.mx.test", 0, 10 },
	{ "in.mx.test", MP_DNS_AAAA, "2001:db8::25", 0, 0 },
	{ "helo.test", MP_DNS_TXT, "v=spf1 ip4:198.51.100.0/24 -all", 0, 0 },
	{ "broken.test", MP_DNS_TXT, "v=spf1 ip4:300.1.1.1 -all", 0, 0 },
	{ "slow.test", MP_DNS_TXT, "", MP_DNS_TEMPFAIL, 0 },
	{ NULL, 0, NULL, 0, 0 },
};

static struct mp_host host;

static void *
load(const char *const *kv)
{
	struct mp_conf conf = { kv, "/tmp" };
	const char *error = NULL;
	void *ctx = NULL;

	if (merpati_module.init(&host, &conf, &ctx, &error) != MP_OK) {
		printf("# init: %s\n", error);
		return NULL;
	}
	return ctx;
}

/* MAIL FROM sender from peer: the hook's return, status in st. */
static int
mail(void *ctx, struct mp_txn *t, const char *peer, const char *helo,
    const char *sender, struct mp_status *st)
{
	mock_txn_clear(t);
	mock_txn_init(t, peer, helo, 0);
	*st = (struct mp_status){ .struct_size = sizeof(*st) };
	return merpati_module.filter->mail_from(ctx, t, sender, st);
}

static void
test_results(void)
{
	void *ctx = load((const char *const[]){ NULL });
	struct mp_status st;
	struct mp_txn t = { 0 };

	CHECK("spf loads with no settings", ctx != NULL);
	CHECK("spf pass accepted", mail(ctx, &t, "192.0.2.1", "h.test",
	    "a@example.test", &st) == MP_OK);
	CHECK_STR("spf pass noted", mock_note(&t, "spf"), "pass");
	CHECK_STR("spf domain noted", mock_note(&t, "spf.domain"), "example.test");
	CHECK_STR("spf clause", mock_note(&t, "authres.spf"),
	    "spf=pass smtp.mailfrom=a@example.test");
	CHECK("spf softfail recorded only", mail(ctx, &t, "192.0.2.9", "h.test",
	    "a@example.test", &st) == MP_OK);
	CHECK_STR("spf softfail noted", mock_note(&t, "spf"), "softfail");
	CHECK("spf fail recorded only by default", mail(ctx, &t, "192.0.2.9",
	    "h.test", "a@strict.test", &st) == MP_OK);
	CHECK_STR("spf fail noted", mock_note(&t, "spf"), "fail");
	mail(ctx, &t, "192.0.2.7", "h.test", "a@strict.test", &st);
	CHECK_STR("spf a mechanism through A lookup", mock_note(&t, "spf"), "pass");
	mail(ctx, &t, "2001:db8::25", "h.test", "b@mx.test", &st);
	CHECK_STR("spf mx mechanism through MX and AAAA", mock_note(&t, "spf"), "pass");
	mail(ctx, &t, "192.0.2.1", "h.test", "a@nowhere.test", &st);
	CHECK_STR("spf none for NXDOMAIN", mock_note(&t, "spf"), "none");
	mail(ctx, &t, "192.0.2.1", "h.test", "a@slow.test", &st);
	CHECK_STR("spf temperror for a DNS timeout", mock_note(&t, "spf"), "temperror");
	mail(ctx, &t, "192.0.2.1", "h.test", "a@broken.test", &st);
	CHECK_STR("spf permerror for a bad record", mock_note(&t, "spf"), "permerror");

	mail(ctx, &t, "198.51.100.3", "helo.test", "", &st);
	CHECK_STR("spf null sender checks HELO", mock_note(&t, "spf"), "pass");
	CHECK_STR("spf null sender domain is HELO", mock_note(&t, "spf.domain"), "helo.test");
	CHECK_STR("spf null sender clause", mock_note(&t, "authres.spf"),
	    "spf=pass smtp.helo=helo.test");

	mock_txn_clear(&t);
	mock_txn_init(&t, "192.0.2.9", "h.test", 1);
	CHECK("spf skips submissions", merpati_module.filter->mail_from(ctx,
	    &t, "a@strict.test", &st) == MP_OK && mock_note(&t, "spf") == NULL);
	mock_txn_clear(&t);
	merpati_module.fini(ctx);
}

static void
test_policy(void)
{
	void *ctx = load((const char *const[]){ "reject_fail", "true",
	    "defer_temperror", "true", NULL });
	struct mp_status st;
	struct mp_txn t = { 0 };

	CHECK("spf reject_fail refuses -all", mail(ctx, &t, "192.0.2.9",
	    "h.test", "a@strict.test", &st) == MP_PERMFAIL);
	CHECK("spf reject_fail is 550 5.7.23", st.reply == 550 &&
	    strcmp(st.enhanced, "5.7.23") == 0 && strstr(st.text, "strict.test"));
	CHECK("spf reject_fail leaves ~all", mail(ctx, &t, "192.0.2.9",
	    "h.test", "a@example.test", &st) == MP_OK);
	CHECK("spf defer_temperror is 451 4.7.24", mail(ctx, &t, "192.0.2.1",
	    "h.test", "a@slow.test", &st) == MP_TEMPFAIL && st.reply == 451 &&
	    strcmp(st.enhanced, "4.7.24") == 0);
	CHECK("spf pass still accepted", mail(ctx, &t, "192.0.2.7", "h.test",
	    "a@strict.test", &st) == MP_OK);
	mock_txn_clear(&t);
	merpati_module.fini(ctx);
}

static void
test_no_resolver(void)
{
	struct mp_status st;
	struct mp_txn t = { 0 };
	void *ctx;

	mock_txn_host(&host, 0);
	ctx = load((const char *const[]){ NULL });
	mail(ctx, &t, "192.0.2.1", "h.test", "a@example.test", &st);
	CHECK_STR("spf without dns_lookup is temperror", mock_note(&t, "spf"),
	    "temperror");
	mock_txn_clear(&t);
	merpati_module.fini(ctx);
	mock_txn_host(&host, 1);
}

static void
test_authentication_results(void)
{
	void *ctx = load((const char *const[]){ NULL });
	struct mp_status st;
	struct mp_txn t = { 0 };
	MOCK_MSG(msg, "Received: x\r\n"
	    "Authentication-Results: other.test; spf=pass\r\n"
	    "Authentication-Results:  MAIL.example.test;\r\n\tspf=pass\r\n"
	    "authentication-results: (c) mail.example.test; dkim=pass\r\n"
	    "Authentication-Results: mail.example.test.evil; spf=pass\r\n"
	    "Subject: hi\r\n\r\n"
	    "Authentication-Results: mail.example.test; in the body\r\n");

	mail(ctx, &t, "192.0.2.1", "h.test", "a@example.test", &st);
	CHECK("spf end_of_data accepts", merpati_module.filter->end_of_data(ctx,
	    &t, NULL, &msg, NULL, &st) == MP_OK);
	CHECK_STR("forged Authentication-Results removed, others kept", t.calls,
	    "delete Authentication-Results #2\n"
	    "delete Authentication-Results #2\n");
	t.calls[0] = '\0';
	merpati_module.filter->before_queue(ctx, &t, NULL, &msg, &st);
	CHECK_STR("one Authentication-Results header written", t.calls,
	    "insert Authentication-Results #0: mail.example.test;\r\n"
	    "\tspf=pass smtp.mailfrom=a@example.test\n");
	t.calls[0] = '\0';
	merpati_module.filter->before_queue(ctx, &t, NULL, &msg, &st);
	CHECK_STR("a second before_queue writes none", t.calls, "");
	mock_txn_clear(&t);
	merpati_module.fini(ctx);
}

int
main(void)
{
	mock_zone = zone;
	mock_txn_host(&host, 1);
	test_results();
	test_policy();
	test_no_resolver();
	test_authentication_results();
	TEST_EXIT();
}
