/*
 * tests/modules/bad_abi.c - a module built for ABI version 1, whose
 * structs lacked their sizes. The loader must refuse it, naming the
 * file and the ABI each side speaks (test_loader, test_abi).
 */
#include <merpati/merpati.h>

static int
bad_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	(void)host; (void)conf; (void)error_r;
	*ctx_r = NULL;
	return MP_OK;
}

MP_MODULE_EXPORT = {
	.abi_version = 1,
	.struct_size = sizeof(struct mp_module),
	.name = "bad_abi",
	.kinds = 0,
	.init = bad_init,
};
