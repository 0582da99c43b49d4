/*
 * tests/unit/test_modcall.c - the wrappers around every core call into
 * a module (core/modcall.c): the module's name is the log context
 * during the call and cleared after it; MP_ERROR, MP_DECLINED and
 * unknown returns become MP_TEMPFAIL; an empty status, or one of the
 * wrong class, is replaced by the kind's default while a fitting one is
 * kept; auth's 1/0/-1 contract is enforced, and its directory calls
 * (domain_exists, alias_expand, since 2.1) are skipped for a provider
 * whose table predates them. One fake module of every
 * kind returns whatever the test sets in `ret` and fills `give` (when
 * its reply is not 0) as its status. The generic DNS lookup's wrapper
 * checks the resolver's answer before passing it on. Log contexts nest:
 * a filter that calls the host's dns_lookup (a wrapper into the
 * resolver) keeps its own name for its later log lines.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "log.h"
#include "modcall.h"
#include "settings.h"
#include "test.h"

static int ret;
static struct mp_status give;
static char context[64];	/* the log context the module ran in */

static void
note_context(void)
{
	snprintf(context, sizeof(context), "%s", mp_log_module() ? mp_log_module() : "");
}

static int
answer(struct mp_status *st)
{
	note_context();
	if (give.reply)
		*st = give;
	return ret;
}

static int
fake_deliver(void *ctx, const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *msg, struct mp_status *st)
{
	return answer(st);
}

static int
fake_filter(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, int (*add)(struct mp_txn *, const char *, const char *),
    struct mp_status *st)
{
	return answer(st);
}

static int
fake_route(void *ctx, const char *sender, const char *rcpt,
    struct mp_route_decision *d, const char **error_r)
{
	note_context();
	return ret;
}

static int
fake_yes_no(void *ctx, const char *address, const char **error_r)
{
	note_context();
	return ret;
}

static int
fake_verify(void *ctx, const char *address, const char *password,
    const char **error_r)
{
	note_context();
	return ret;
}

static char asked[64];		/* what the directory was asked */
static size_t alias_n;		/* targets the fake alias_expand returns */
static int calls;

static int
fake_domain(void *ctx, const char *domain, const char **error_r)
{
	calls++;
	snprintf(asked, sizeof(asked), "%s", domain);
	return ret;
}

static int
fake_alias(void *ctx, const char *address, char ***targets_r, size_t *n_r,
    const char **error_r)
{
	calls++;
	*targets_r = mp_host_table.alloc((alias_n ? alias_n : 1) * sizeof(char *));
	for (size_t i = 0; i < alias_n; i++) {
		(*targets_r)[i] = mp_host_table.alloc(32);
		snprintf((*targets_r)[i], 32, "t%zu@x.test", i);
	}
	*n_r = alias_n;
	return ret;
}

static const struct mp_auth_ops dir_ops = { .struct_size = sizeof(dir_ops),
	.user_exists = fake_yes_no, .verify = fake_verify,
	.domain_exists = fake_domain, .alias_expand = fake_alias };
/* A 2.0 module's table: it ends before the directory calls. */
static const struct mp_auth_ops old_ops = {
	.struct_size = offsetof(struct mp_auth_ops, domain_exists),
	.user_exists = fake_yes_no, .verify = fake_verify,
	.domain_exists = fake_domain, .alias_expand = fake_alias };

static const struct mp_deliver_ops deliver_ops = { .struct_size = sizeof(deliver_ops),
	.deliver = fake_deliver };
static const struct mp_filter_ops filter_ops = { .struct_size = sizeof(filter_ops),
	.end_of_data = fake_filter };
static const struct mp_route_ops route_ops = { .struct_size = sizeof(route_ops),
	.route = fake_route };
static const struct mp_auth_ops auth_ops = { .struct_size = sizeof(auth_ops),
	.user_exists = fake_yes_no, .verify = fake_verify };
static const struct mp_module fake = {
	.abi_version = MP_ABI_VERSION, .struct_size = sizeof(fake), .name = "fake",
	.kinds = MP_KIND_DELIVER | MP_KIND_FILTER | MP_KIND_ROUTE | MP_KIND_AUTH,
	.deliver = &deliver_ops, .filter = &filter_ops, .route = &route_ops,
	.auth = &auth_ops,
};
static struct mp_loaded loaded = { .name = "fake_mod", .mod = &fake };

/* Run the deliver wrapper with the module returning rc and status g. */
static int
deliver(int rc, struct mp_status g, struct mp_status *st)
{
	ret = rc;
	give = g;
	context[0] = '\0';
	return mp_call_deliver(NULL, "a@example.test", NULL, st);
}

static void
test_deliver(void)
{
	struct mp_status st, none = { 0 };
	struct mp_status full = { .reply = 452, .enhanced = "4.2.2", .text = "over quota" };
	struct mp_status wrong = { .reply = 250, .enhanced = "2.0.0", .text = "fine" };

	mp_core.deliver = NULL;
	CHECK("deliver: no module is a 451", deliver(MP_OK, none, &st) == MP_TEMPFAIL &&
	    st.reply == 451 && strcmp(st.enhanced, "4.3.5") == 0);
	mp_core.deliver = &loaded;
	CHECK("deliver: the module's name is the log context during the call",
	    deliver(MP_OK, none, &st) == MP_OK && strcmp(context, "fake_mod") == 0);
	CHECK("deliver: and cleared after it", mp_log_module() == NULL);
	CHECK("deliver: MP_OK without status gets 250", st.reply == 250 && st.text[0]);
	CHECK("deliver: MP_ERROR is a temporary failure with a default 451",
	    deliver(MP_ERROR, none, &st) == MP_TEMPFAIL && st.reply == 451 &&
	    strcmp(st.enhanced, "4.3.0") == 0);
	CHECK("deliver: MP_DECLINED is a temporary failure",
	    deliver(MP_DECLINED, none, &st) == MP_TEMPFAIL && st.reply == 451);
	CHECK("deliver: an unknown return is a temporary failure",
	    deliver(7, none, &st) == MP_TEMPFAIL && st.reply == 451);
	CHECK("deliver: a fitting status is kept",
	    deliver(MP_TEMPFAIL, full, &st) == MP_TEMPFAIL && st.reply == 452 &&
	    strcmp(st.text, "over quota") == 0);
	CHECK("deliver: a 2xx with MP_PERMFAIL is replaced by a 5xx",
	    deliver(MP_PERMFAIL, wrong, &st) == MP_PERMFAIL && st.reply == 550);
}

static void
test_filter(void)
{
	struct mp_status st, none = { 0 };
	struct mp_status five = { .reply = 554, .enhanced = "5.7.1", .text = "spam" };

	ret = MP_PERMFAIL;
	give = none;
	CHECK("filter: MP_PERMFAIL without status gets 550 5.7.1",
	    mp_call_filter(&loaded, NULL, NULL, NULL, NULL, &st) == MP_PERMFAIL &&
	    st.reply == 550 && strcmp(st.enhanced, "5.7.1") == 0 &&
	    strcmp(context, "fake_mod") == 0);
	ret = MP_TEMPFAIL;
	give = five;
	CHECK("filter: a 5xx with MP_TEMPFAIL becomes 451 4.7.1",
	    mp_call_filter(&loaded, NULL, NULL, NULL, NULL, &st) == MP_TEMPFAIL &&
	    st.reply == 451 && strcmp(st.enhanced, "4.7.1") == 0);
	ret = MP_ERROR;
	CHECK("filter: MP_ERROR defers", mp_call_filter(&loaded, NULL, NULL, NULL,
	    NULL, &st) == MP_TEMPFAIL);
}

static void
test_route(void)
{
	struct mp_route_decision d = { .struct_size = sizeof(d) };
	const char *err = NULL;

	mp_core.route = &loaded;
	ret = MP_ERROR;
	context[0] = '\0';
	CHECK("route: MP_ERROR is MP_TEMPFAIL with a reason",
	    mp_call_route("s@x.test", "a@x.test", &d, &err) == MP_TEMPFAIL && err != NULL);
	CHECK("route: in the module's log context", strcmp(context, "fake_mod") == 0 &&
	    mp_log_module() == NULL);
	ret = MP_OK;
	err = NULL;
	CHECK("route: MP_OK passes", mp_call_route("s@x.test", "a@x.test", &d, &err) == MP_OK);
	mp_core.route = NULL;
}

static void
test_auth(void)
{
	const char *err = NULL;

	mp_core.auth.ops = &auth_ops;
	mp_core.modules.v = &loaded;
	mp_core.modules.n = 1;
	ret = 1;
	context[0] = '\0';
	CHECK("auth verify: yes, in the auth module's log context",
	    mp_call_auth_verify("u@x.test", "pw", &err) == 1 &&
	    strcmp(context, "fake_mod") == 0 && mp_log_module() == NULL);
	ret = 0;
	context[0] = '\0';
	CHECK("auth user_exists: no, in the log context",
	    mp_call_auth_user_exists("u@x.test", &err) == 0 &&
	    strcmp(context, "fake_mod") == 0);
	ret = MP_ERROR;	/* -4: not 1, 0 or -1 */
	err = NULL;
	CHECK("auth: anything but 1 or 0 is an error with a reason",
	    mp_call_auth_verify("u@x.test", "pw", &err) == -1 && err != NULL);
	mp_core.modules.n = 0;
	mp_core.auth.ops = NULL;
}

static void
test_directory(void)
{
	const char *err = NULL;
	char **t = NULL;
	size_t n = 9;

	mp_core.auth.ops = &auth_ops;
	calls = 0;
	CHECK("directory: a provider without it knows no domain or alias",
	    mp_call_auth_domain_exists("x.test", &err) == 0 &&
	    mp_call_auth_alias_expand("a@x.test", &t, &n, &err) == 0 && t == NULL &&
	    n == 0 && calls == 0);
	mp_core.auth.ops = &old_ops;
	ret = 1;
	CHECK("directory: a 2.0-sized table is not read past its end",
	    mp_call_auth_domain_exists("x.test", &err) == 0 &&
	    mp_call_auth_alias_expand("a@x.test", &t, &n, &err) == 0 && calls == 0);
	mp_core.auth.ops = &dir_ops;
	CHECK("directory: domain asked in lower case",
	    mp_call_auth_domain_exists("Dyn.TEST", &err) == 1 &&
	    strcmp(asked, "dyn.test") == 0);
	ret = -1;
	CHECK("directory: a failed domain lookup is -1",
	    mp_call_auth_domain_exists("dyn.test", &err) == -1 && err != NULL);
	ret = 1;
	alias_n = 2;
	CHECK("directory: an alias's targets come back",
	    mp_call_auth_alias_expand("a@x.test", &t, &n, &err) == 1 && n == 2 &&
	    strcmp(t[1], "t1@x.test") == 0);
	mp_call_auth_alias_free(t, n);
	alias_n = 0;
	err = NULL;
	CHECK("directory: an alias without targets is an error",
	    mp_call_auth_alias_expand("a@x.test", &t, &n, &err) == -1 && t == NULL &&
	    n == 0 && err != NULL);
	ret = 7;
	alias_n = 3;
	err = NULL;
	CHECK("directory: an undefined answer is an error, its targets freed",
	    mp_call_auth_alias_expand("a@x.test", &t, &n, &err) == -1 && t == NULL &&
	    n == 0 && err != NULL);
	alias_n = 0;
	mp_core.auth.ops = NULL;
}

static void
test_retry(void)
{
	struct mp_retry_info info = { .struct_size = sizeof(info) };
	struct mp_retry_decision d = { .struct_size = sizeof(d) };

	mp_core.retry = NULL;
	CHECK("retry: no module is MP_TEMPFAIL (the core decides)",
	    mp_call_retry(&info, &d) == MP_TEMPFAIL);
}

/* ---- the generic DNS lookup (dns_lookup) -------------------------------- */

static struct mp_dns_answer lookup_gives;

static int
fake_lookup(void *ctx, const char *name, int type, unsigned char *buf,
    size_t size, struct mp_dns_answer *answer_r)
{
	note_context();
	if (size >= 3)
		memcpy(buf, "\0\1x", 3);
	MP_SIZED_WRITE(answer_r, &lookup_gives);
	return ret;
}

static const struct mp_resolve_ops lookup_ops = { .struct_size = sizeof(lookup_ops),
	.lookup = fake_lookup };
static const struct mp_resolve_ops no_lookup_ops = { .struct_size = sizeof(no_lookup_ops) };
static const struct mp_module fake_resolver = {
	.abi_version = MP_ABI_VERSION, .struct_size = sizeof(fake_resolver),
	.name = "fake", .kinds = MP_KIND_RESOLVE, .resolve = &lookup_ops,
};
static const struct mp_module old_resolver = {
	.abi_version = MP_ABI_VERSION, .struct_size = sizeof(old_resolver),
	.name = "old", .kinds = MP_KIND_RESOLVE, .resolve = &no_lookup_ops,
};

static void
test_resolve_lookup(void)
{
	struct mp_loaded with = { .name = "resolver", .mod = &fake_resolver };
	struct mp_loaded without = { .name = "old", .mod = &old_resolver };
	struct mp_dns_answer a = { .struct_size = sizeof(a), .status = 99 };
	unsigned char buf[16];

	mp_core.resolve = NULL;
	CHECK("lookup: no resolver is TEMPFAIL", mp_call_resolve_lookup("x.test", 16, buf,
	    sizeof(buf), &a) == MP_TEMPFAIL && a.status == MP_DNS_TEMPFAIL && a.count == 0);
	mp_core.resolve = &without;
	a.status = 99;
	CHECK("lookup: a resolver without lookup is TEMPFAIL", mp_call_resolve_lookup("x.test",
	    16, buf, sizeof(buf), &a) == MP_TEMPFAIL && a.status == MP_DNS_TEMPFAIL);
	mp_core.resolve = &with;
	lookup_gives = (struct mp_dns_answer){ .struct_size = sizeof(a),
	    .status = MP_DNS_FOUND, .count = 1, .used = 3, .ttl = 60 };
	ret = MP_OK;
	context[0] = '\0';
	CHECK("lookup: FOUND is MP_OK, answer passed on, in the module's log context",
	    mp_call_resolve_lookup("x.test", 16, buf, sizeof(buf), &a) == MP_OK &&
	    a.count == 1 && a.used == 3 && a.ttl == 60 && buf[2] == 'x' &&
	    strcmp(context, "resolver") == 0 && mp_log_module() == NULL);
	lookup_gives.status = MP_DNS_NXDOMAIN;
	lookup_gives.count = 0;
	lookup_gives.used = 0;
	CHECK("lookup: NXDOMAIN is MP_PERMFAIL", mp_call_resolve_lookup("x.test", 16, buf,
	    sizeof(buf), &a) == MP_PERMFAIL && a.status == MP_DNS_NXDOMAIN);
	lookup_gives.status = MP_DNS_FOUND;
	lookup_gives.used = 64;
	CHECK("lookup: a module claiming more than the buffer is TEMPFAIL",
	    mp_call_resolve_lookup("x.test", 16, buf, sizeof(buf), &a) == MP_TEMPFAIL &&
	    a.status == MP_DNS_TEMPFAIL && a.used == 0);
	lookup_gives.used = 0;
	lookup_gives.status = 42;
	CHECK("lookup: an unknown status is TEMPFAIL", mp_call_resolve_lookup("x.test", 16,
	    buf, sizeof(buf), &a) == MP_TEMPFAIL && a.status == MP_DNS_TEMPFAIL);
	mp_core.resolve = NULL;
}

/* ---- nested calls: a module calling a host service ----------------------- */

static char after_lookup[64];	/* the filter's log context after dns_lookup */

/* A filter that, like dkim or spf, asks the host for a DNS record and
 * then goes on logging. */
static int
filter_calling_dns(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, int (*add)(struct mp_txn *, const char *, const char *),
    struct mp_status *st)
{
	unsigned char buf[64];
	struct mp_dns_answer a;

	(void)mp_call_resolve_lookup("x.test", 16, buf, sizeof(buf), &a);
	snprintf(after_lookup, sizeof(after_lookup), "%s",
	    mp_log_module() ? mp_log_module() : "");
	return MP_OK;
}

static const struct mp_filter_ops nesting_ops = { .struct_size = sizeof(nesting_ops),
	.end_of_data = filter_calling_dns };
static const struct mp_module nesting_filter = {
	.abi_version = MP_ABI_VERSION, .struct_size = sizeof(nesting_filter),
	.name = "nester", .kinds = MP_KIND_FILTER, .filter = &nesting_ops,
};

static void
test_nested_context(void)
{
	struct mp_loaded resolver = { .name = "resolver", .mod = &fake_resolver };
	struct mp_loaded filter = { .name = "dkim_like", .mod = &nesting_filter };
	struct mp_status st;

	mp_core.resolve = &resolver;
	lookup_gives = (struct mp_dns_answer){ .struct_size = sizeof(lookup_gives),
	    .status = MP_DNS_NXDOMAIN };
	context[0] = after_lookup[0] = '\0';
	(void)mp_call_filter(&filter, NULL, NULL, NULL, NULL, &st);
	CHECK("nesting: the resolver ran in its own log context",
	    strcmp(context, "resolver") == 0);
	CHECK("nesting: the filter keeps its name after calling dns_lookup",
	    strcmp(after_lookup, "dkim_like") == 0);
	CHECK("nesting: no context is left once the outer call returns",
	    mp_log_module() == NULL);
	mp_log_set_module("protocol_mod");
	(void)mp_call_filter(&filter, NULL, NULL, NULL, NULL, &st);
	CHECK("nesting: a context set before the call is restored after it",
	    mp_log_module() != NULL && strcmp(mp_log_module(), "protocol_mod") == 0);
	mp_log_set_module(NULL);
	mp_core.resolve = NULL;
}

int
main(void)
{
	test_deliver();
	test_filter();
	test_route();
	test_auth();
	test_directory();
	test_retry();
	test_resolve_lookup();
	test_nested_context();
	TEST_EXIT();
}
