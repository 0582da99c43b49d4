/*
 * tests/modules/init_fails.c - a module whose init refuses to start.
 * The loader must pass its reason on, naming the module.
 */
#include <merpati/merpati.h>

static int
failing_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	(void)host; (void)conf; (void)ctx_r;
	*error_r = "init_fails: refusing on purpose";
	return MP_ERROR;
}

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "init_fails",
	.kinds = 0,
	.init = failing_init,
};
