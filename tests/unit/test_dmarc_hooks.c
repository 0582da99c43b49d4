/*
 * tests/unit/test_dmarc_hooks.c - the dmarc module's glue
 * (modules/dmarc/dmarc.c) on a mock host (mock_txn.h): inputs from the
 * spf and dkim notes, policy records through dns_lookup, the note and
 * Authentication-Results clause it leaves, and what enforce does (550
 * 5.7.1 for p=reject, a hold for p=quarantine, nothing by default).
 */
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "mock_txn.h"

extern const struct mp_module merpati_module;

static const struct mock_rr zone[] = {
	{ "_dmarc.rej.test", MP_DNS_TXT, "v=DMARC1; p=reject", 0, 0 },
	{ "_dmarc.quar.test", MP_DNS_TXT, "v=DMARC1; p=quarantine; adkim=s", 0, 0 },
	{ "_dmarc.sub.test", MP_DNS_TXT, "v=DMARC1; p=none; sp=reject", 0, 0 },
	{ "_dmarc.slow.test", MP_DNS_TXT, "", MP_DNS_TEMPFAIL, 0 },
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

/* end_of_data for a message From: from, with the notes spf/dkim left. */
static int
check(void *ctx, struct mp_txn *t, const char *from, const char *spf,
    const char *spf_domain, const char *dkim_domains, struct mp_status *st)
{
	char text[512];

	mock_txn_clear(t);
	mock_txn_init(t, "192.0.2.1", "h.test", 0);
	if (spf != NULL) {
		mock_note_set(t, "spf", spf);
		mock_note_set(t, "spf.domain", spf_domain);
	}
	if (dkim_domains != NULL)
		mock_note_set(t, "dkim.domains", dkim_domains);
	snprintf(text, sizeof(text), "From: Someone <x@%s>\r\nSubject: s\r\n\r\nbody\r\n",
	    from);
	MOCK_MSG(msg, text);
	*st = (struct mp_status){ .struct_size = sizeof(*st) };
	return merpati_module.filter->end_of_data(ctx, t, NULL, &msg, NULL, st);
}

static void
test_record_only(void)
{
	void *ctx = load((const char *const[]){ "public_suffix_list", "/nonexistent", NULL });
	struct mp_status st;
	struct mp_txn t = { 0 };

	CHECK("dmarc loads with no settings", ctx != NULL);
	CHECK("dmarc aligned spf accepted", check(ctx, &t, "rej.test", "pass",
	    "rej.test", NULL, &st) == MP_OK);
	CHECK_STR("dmarc aligned spf passes", mock_note(&t, "dmarc"), "pass");
	CHECK_STR("dmarc clause", mock_note(&t, "authres.dmarc"),
	    "dmarc=pass (p=reject dis=none) header.from=rej.test");
	check(ctx, &t, "rej.test", "pass", "other.test", "rej.test", &st);
	CHECK_STR("dmarc aligned dkim passes", mock_note(&t, "dmarc"), "pass");
	CHECK("dmarc unaligned not refused by default", check(ctx, &t,
	    "rej.test", "pass", "other.test", "other.test", &st) == MP_OK);
	CHECK_STR("dmarc unaligned fails", mock_note(&t, "dmarc"), "fail");
	CHECK_STR("dmarc unaligned clause", mock_note(&t, "authres.dmarc"),
	    "dmarc=fail (p=reject dis=reject) header.from=rej.test");
	check(ctx, &t, "rej.test", "fail", "rej.test", NULL, &st);
	CHECK_STR("dmarc spf fail is no pass", mock_note(&t, "dmarc"), "fail");
	check(ctx, &t, "none.test", "pass", "none.test", NULL, &st);
	CHECK_STR("dmarc none without a record", mock_note(&t, "dmarc"), "none");
	check(ctx, &t, "slow.test", "pass", "slow.test", NULL, &st);
	CHECK_STR("dmarc temperror on a DNS timeout", mock_note(&t, "dmarc"), "temperror");
	CHECK("dmarc no hold without enforce", t.held[0] == '\0');
	mock_txn_clear(&t);
	merpati_module.fini(ctx);
}

static void
test_enforce(void)
{
	void *ctx = load((const char *const[]){ "enforce", "true",
	    "public_suffix_list", "/nonexistent", NULL });
	struct mp_status st;
	struct mp_txn t = { 0 };

	CHECK("dmarc enforce rejects p=reject", check(ctx, &t, "rej.test",
	    "pass", "other.test", NULL, &st) == MP_PERMFAIL);
	CHECK("dmarc reject is 550 5.7.1", st.reply == 550 &&
	    strcmp(st.enhanced, "5.7.1") == 0 && strstr(st.text, "rej.test"));
	CHECK("dmarc enforce passes aligned", check(ctx, &t, "rej.test",
	    "pass", "rej.test", NULL, &st) == MP_OK);
	CHECK("dmarc quarantine accepted", check(ctx, &t, "quar.test", "none",
	    "quar.test", "other.test", &st) == MP_OK);
	CHECK("dmarc quarantine held", strstr(t.held, "quar.test") != NULL);
	CHECK("dmarc sp=reject for a subdomain", check(ctx, &t, "a.sub.test",
	    "pass", "other.test", NULL, &st) == MP_PERMFAIL);
	CHECK("dmarc p=none for the domain itself", check(ctx, &t, "sub.test",
	    "pass", "other.test", NULL, &st) == MP_OK && t.held[0] == '\0');
	mock_txn_clear(&t);
	mock_txn_init(&t, "192.0.2.1", "h.test", 1);
	{
		MOCK_MSG(msg, "From: x@rej.test\r\n\r\nb\r\n");
		CHECK("dmarc skips submissions", merpati_module.filter->end_of_data(
		    ctx, &t, NULL, &msg, NULL, &st) == MP_OK &&
		    mock_note(&t, "dmarc") == NULL);
	}
	check(ctx, &t, "rej.test", "pass", "other.test", NULL, &st);
	mock_txn_clear(&t);
	mock_txn_init(&t, "192.0.2.1", "h.test", 0);
	{
		MOCK_MSG(msg, "From: x@rej.test, y@other.test\r\n\r\nb\r\n");
		CHECK("dmarc two From addresses are a permerror, not refused",
		    merpati_module.filter->end_of_data(ctx, &t, NULL, &msg, NULL,
		    &st) == MP_OK);
		CHECK_STR("dmarc two From addresses noted", mock_note(&t, "dmarc"),
		    "permerror");
	}
	mock_txn_clear(&t);
	merpati_module.fini(ctx);
}

static void
test_bad_setting(void)
{
	CHECK("dmarc quarantine must be hold or accept", load((const char *const[]){
	    "quarantine", "junk", NULL }) == NULL);
}

int
main(void)
{
	mock_zone = zone;
	mock_txn_host(&host, 1);
	test_record_only();
	test_enforce();
	test_bad_setting();
	TEST_EXIT();
}
