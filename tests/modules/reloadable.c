/*
 * tests/modules/reloadable.c - a module with the reload op (ABI 2.1):
 * one option, greeting, logged at init and at each reload, so the
 * reload test (tests/e2e/test_reload.py) sees which of the two the host
 * called; greeting = "refuse" makes reload fail, as a module does when
 * new settings cannot be applied.
 */
#include <stddef.h>
#include <string.h>
#include <merpati/merpati.h>

struct reloadable {
	const struct mp_host *host;
	const char *greeting;
};

static const struct mp_option options[] = {
	MP_OPT("greeting", MP_OPT_STRING, offsetof(struct reloadable, greeting), "hello", 0, 0),
	MP_OPT_END
};

static int
r_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct reloadable *r = host->alloc(sizeof(*r));

	if (r == NULL || host->conf_options(conf, options, r, error_r) != MP_OK) {
		host->free(r);
		return MP_ERROR;
	}
	r->host = host;
	host->log(MP_LOG_INFO, "init greeting=%s", r->greeting);
	*ctx_r = r;
	return MP_OK;
}

static int
r_reload(void *ctx, const struct mp_conf *conf, const char **error_r)
{
	struct reloadable *r = ctx, next = *r;

	if (r->host->conf_options(conf, options, &next, error_r) != MP_OK)
		return MP_ERROR;
	if (strcmp(next.greeting, "refuse") == 0) {
		*error_r = "greeting \"refuse\" cannot be applied while running";
		return MP_ERROR;
	}
	r->greeting = next.greeting;	/* the host keeps the new config's strings */
	r->host->log(MP_LOG_INFO, "reload greeting=%s", r->greeting);
	return MP_OK;
}

static void
r_fini(void *ctx)
{
	struct reloadable *r = ctx;

	r->host->free(r);
}

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "reloadable",
	.kinds = 0,
	.init = r_init,
	.fini = r_fini,
	.reload = r_reload,
};
