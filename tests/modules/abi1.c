/*
 * tests/modules/abi1.c - a module that says it was built for ABI 1,
 * whose structs lacked their sizes. The loader must refuse it, naming
 * the file and both versions.
 */
#include <merpati/merpati.h>

static int
abi1_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	*ctx_r = NULL;
	return MP_OK;
}

MP_MODULE_EXPORT = {
	.abi_version = 1,
	.struct_size = sizeof(struct mp_module),
	.name = "abi1",
	.kinds = 0,
	.init = abi1_init,
};
