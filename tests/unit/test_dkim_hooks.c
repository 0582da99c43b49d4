/*
 * tests/unit/test_dkim_hooks.c - the dkim module's glue (modules/dkim/
 * dkim.c) on a mock host (mock_txn.h): the `sign` list loaded from the
 * config, a submission signed at before_queue, that signature verified
 * at end_of_data of an inbound message with the key served by
 * dns_lookup, the notes for DMARC, a tampered copy failing, and
 * submissions neither verified nor inbound mail signed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "mock_txn.h"
#include "modules/dkim/dkim_lib.h"

extern const struct mp_module merpati_module;

static struct mp_host host;
static char key_dir[64], key_path[128], *key_record;
static struct mock_rr zone[3];

/* The module's group: { sign = ( entry ); verify = { } } */
static const char *const no_kv[] = { NULL };
static const char *entry_kv[7];
static struct mp_conf top = { no_kv, "/tmp" }, verify = { no_kv, "/tmp" };
static struct mp_conf sign_list = { no_kv, "/tmp" }, entry = { entry_kv, "/tmp" };

static const struct mp_conf *
conf_member(const struct mp_conf *g, const char *name)
{
	if (g == &top && strcmp(name, "sign") == 0)
		return &sign_list;
	if (g == &top && strcmp(name, "verify") == 0)
		return &verify;
	return NULL;
}

static const struct mp_conf *
conf_elem(const struct mp_conf *l, unsigned i)
{
	if (l == &top)
		return i == 0 ? &sign_list : i == 1 ? &verify : NULL;
	return l == &sign_list && i == 0 ? &entry : NULL;
}

static unsigned
conf_length(const struct mp_conf *c)
{
	return c == &top ? 2 : c == &sign_list ? 1 : 0;
}

static const char *
conf_name(const struct mp_conf *c)
{
	return c == &sign_list ? "sign" : c == &verify ? "verify" : NULL;
}

static const char *
conf_string(const struct mp_conf *c)
{
	(void)c;
	return NULL;
}

static void
conf_where(const struct mp_conf *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s", c == &entry ? "modules.dkim.sign.[0]" : "modules.dkim");
}

static const char message[] =
    "From: Joe <joe@example.test>\r\n"
    "To: ann@example.org\r\n"
    "Subject: signed\r\n"
    "\r\n"
    "hello\r\n";

/* The DKIM-Signature value the module inserted, from the call log. */
static char *
inserted_signature(const struct mp_txn *t)
{
	const char *p = strstr(t->calls, "insert DKIM-Signature #0: ");
	const char *end;

	if (p == NULL)
		return NULL;
	p += strlen("insert DKIM-Signature #0: ");
	end = strchr(p, '\n');
	while (end != NULL && end[-1] == '\r')
		end = strchr(end + 1, '\n');
	return end ? strndup(p, (size_t)(end - p)) : NULL;
}

static void *
load(void)
{
	const char *error = NULL;
	void *ctx = NULL;

	if (merpati_module.init(&host, &top, &ctx, &error) != MP_OK) {
		printf("# init: %s\n", error);
		return NULL;
	}
	return ctx;
}

static void
verify_text(void *ctx, struct mp_txn *t, const char *text)
{
	struct mp_status st = { .struct_size = sizeof(st) };
	MOCK_MSG(msg, text);

	mock_txn_clear(t);
	mock_txn_init(t, "192.0.2.1", "h.test", 0);
	merpati_module.filter->end_of_data(ctx, t, NULL, &msg, NULL, &st);
}

static void
test_sign_and_verify(void)
{
	struct mp_status st = { .struct_size = sizeof(st) };
	struct mp_envelope env = { .struct_size = sizeof(env), .sender = "joe@example.test" };
	struct mp_txn t = { 0 };
	void *ctx = load();
	char *sig, *signed_text, *tampered;

	CHECK("dkim loads a sign entry", ctx != NULL);
	if (ctx == NULL)
		return;
	mock_txn_init(&t, NULL, NULL, 1);
	{
		MOCK_MSG(msg, message);
		merpati_module.filter->before_queue(ctx, &t, &env, &msg, &st);
	}
	sig = inserted_signature(&t);
	CHECK("dkim signs a submission at before_queue", sig != NULL);
	CHECK("dkim signature names d= and s=", sig && strstr(sig, "d=example.test") &&
	    strstr(sig, "s=s1"));
	CHECK("dkim writes no Authentication-Results for a submission",
	    strstr(t.calls, "Authentication-Results") == NULL);
	if (sig == NULL)
		return;
	signed_text = malloc(strlen(sig) + sizeof(message) + 32);
	sprintf(signed_text, "DKIM-Signature: %s\r\n%s", sig, message);
	verify_text(ctx, &t, signed_text);
	CHECK_STR("dkim verifies its own signature", mock_note(&t, "dkim"), "pass");
	CHECK_STR("dkim notes the passing domain", mock_note(&t, "dkim.domains"),
	    "example.test");
	CHECK("dkim clause says pass", strncmp(mock_note(&t, "authres.dkim"),
	    "dkim=pass (2048-bit rsa key) header.d=example.test header.s=s1", 62) == 0);

	tampered = strdup(signed_text);
	strstr(tampered, "hello")[0] = 'j';
	verify_text(ctx, &t, tampered);
	CHECK_STR("dkim tampered body fails", mock_note(&t, "dkim"), "fail");
	CHECK_STR("dkim tampered leaves no passing domain", mock_note(&t, "dkim.domains"), "");

	verify_text(ctx, &t, message);
	CHECK_STR("dkim unsigned is none", mock_note(&t, "dkim"), "none");
	CHECK_STR("dkim unsigned clause", mock_note(&t, "authres.dkim"), "dkim=none");

	/* inbound mail is not signed; a submission is not verified */
	t.calls[0] = '\0';
	{
		MOCK_MSG(msg, message);
		merpati_module.filter->before_queue(ctx, &t, &env, &msg, &st);
	}
	CHECK("dkim does not sign inbound mail", strstr(t.calls, "DKIM-Signature") == NULL);
	mock_txn_clear(&t);
	mock_txn_init(&t, NULL, NULL, 1);
	{
		MOCK_MSG(msg, signed_text);
		merpati_module.filter->end_of_data(ctx, &t, NULL, &msg, NULL, &st);
	}
	CHECK("dkim does not verify submissions", mock_note(&t, "dkim") == NULL);

	/* a From domain not in the list: the envelope domain decides */
	mock_txn_clear(&t);
	mock_txn_init(&t, NULL, NULL, 1);
	env.sender = "joe@elsewhere.test";
	{
		MOCK_MSG(msg, "From: x@other.test\r\n\r\nb\r\n");
		merpati_module.filter->before_queue(ctx, &t, &env, &msg, &st);
	}
	CHECK("dkim signs nothing for other domains", strstr(t.calls, "DKIM-Signature") == NULL);

	mock_txn_clear(&t);
	free(tampered);
	free(signed_text);
	free(sig);
	merpati_module.fini(ctx);
}

static void
test_bad_key(void)
{
	entry_kv[5] = "/nonexistent/key";
	CHECK("dkim refuses a missing key file", load() == NULL);
}

int
main(void)
{
	const char *error;

	snprintf(key_dir, sizeof(key_dir), "/tmp/test_dkim_hooks.XXXXXX");
	if (mkdtemp(key_dir) == NULL)
		return 1;
	snprintf(key_path, sizeof(key_path), "%s/k.key", key_dir);
	if (dkim_keygen(DKIM_RSA_SHA256, 2048, key_path, &key_record, &error) < 0) {
		printf("not ok - keygen: %s\n", error);
		return 1;
	}
	entry_kv[0] = "domain"; entry_kv[1] = "example.test";
	entry_kv[2] = "selector"; entry_kv[3] = "s1";
	entry_kv[4] = "key"; entry_kv[5] = key_path; entry_kv[6] = NULL;
	zone[0] = (struct mock_rr){ "s1._domainkey.example.test", MP_DNS_TXT, key_record, 0, 0 };
	mock_zone = zone;
	mock_txn_host(&host, 1);
	host.conf_member = conf_member;
	host.conf_elem = conf_elem;
	host.conf_length = conf_length;
	host.conf_name = conf_name;
	host.conf_string = conf_string;
	host.conf_where = conf_where;
	test_sign_and_verify();
	test_bad_key();
	unlink(key_path);
	rmdir(key_dir);
	free(key_record);
	TEST_EXIT();
}
