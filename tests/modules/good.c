/*
 * tests/modules/good.c - the smallest valid module: it loads, reads one
 * option through the host's option table, and claims no kind. Used by
 * the loader's unit test as the control case next to the broken ones.
 */
#include <stddef.h>
#include <merpati/merpati.h>

struct good_settings {
	const char *text;
};

static const struct mp_option good_options[] = {
	MP_OPT("text", MP_OPT_STRING, offsetof(struct good_settings, text), "hello", 0, 0),
	MP_OPT_END
};

static const struct mp_host *good_host;

static int
good_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct good_settings *s = host->alloc(sizeof(*s));

	if (s == NULL || host->conf_options(conf, good_options, s,
	    error_r) != MP_OK) {
		host->free(s);
		return MP_ERROR;
	}
	good_host = host;
	*ctx_r = s;
	return MP_OK;
}

static void
good_fini(void *ctx)
{
	good_host->free(ctx);
}

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "good",
	.kinds = 0,
	.init = good_init,
	.fini = good_fini,
};
