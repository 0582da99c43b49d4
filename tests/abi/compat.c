/*
 * tests/abi/compat.c - a module built against the ABI 2.0 fixture
 * headers (tests/abi/2.0/merpati/, never include/), so that
 * tests/unit/test_abi can load it into a host whose tables have grown
 * since 2.0 and check it still works. A resolve module: mx() fills the
 * host's array stepping by the host's element size, the status member
 * by member, and uses its option table and a host call on the way.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <merpati/merpati.h>

struct compat_settings {
	const char *greeting;
	long long preference;
};

static const struct mp_option compat_options[] = {
	MP_OPT("greeting", MP_OPT_STRING, offsetof(struct compat_settings, greeting), "hello", 0, 0),
	MP_OPT("preference", MP_OPT_INT, offsetof(struct compat_settings, preference), "7", 0, 65535),
	MP_OPT_END
};

static const struct mp_host *compat_host;

static int
compat_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct compat_settings *s;

	/* The last 2.0 member stands in for one a newer module would need. */
	if (!MP_HOST_HAS(auth_allowed)) {
		*error_r = "the host table has no auth_allowed";
		return MP_ERROR;
	}
	if ((s = host->alloc(sizeof(*s))) == NULL)
		return MP_ERROR;
	if (host->conf_options(conf, compat_options, s, error_r) != MP_OK) {
		host->free(s);
		return MP_ERROR;
	}
	compat_host = host;
	*ctx_r = s;
	return MP_OK;
}

static void
compat_fini(void *ctx)
{
	compat_host->free(ctx);
}

/* Two exchangers: "mx1.<domain>" at 10, and the user name that the
 * host's sasl_plain finds in a fixed response at the configured
 * preference. */
static int
compat_mx(void *ctx, const char *domain, struct mp_mx *out, size_t max,
    size_t *n_r, struct mp_status *status_r)
{
	const struct compat_settings *s = ctx;
	static const char response[] = "\0postmaster\0pw";
	char user[64], pass[16];

	if (max < 2 || compat_host->sasl_plain(response, sizeof(response) - 1,
	    user, sizeof(user), pass, sizeof(pass)) < 0) {
		mp_status_set(status_r, 451, "4.3.0", "compat: cannot answer");
		return MP_TEMPFAIL;
	}
	MP_ELEM(out, 0)->preference = 10;
	snprintf(MP_ELEM(out, 0)->host, sizeof(out->host), "mx1.%s", domain);
	MP_ELEM(out, 1)->preference = (uint16_t)s->preference;
	snprintf(MP_ELEM(out, 1)->host, sizeof(out->host), "%s.%s", user, domain);
	*n_r = 2;
	mp_status_set(status_r, 250, "2.0.0", s->greeting);
	return MP_OK;
}

static int
compat_addresses(void *ctx, const char *host, struct sockaddr_storage *out,
    size_t max, size_t *n_r, struct mp_status *status_r)
{
	*n_r = 0;
	mp_status_set(status_r, 550, "5.1.2", "compat resolves no addresses");
	return MP_PERMFAIL;
}

static const struct mp_resolve_ops compat_resolve = {
	.struct_size = sizeof(struct mp_resolve_ops),
	.mx = compat_mx,
	.addresses = compat_addresses,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "compat",
	.kinds = MP_KIND_RESOLVE,
	.init = compat_init,
	.fini = compat_fini,
	.resolve = &compat_resolve,
};
