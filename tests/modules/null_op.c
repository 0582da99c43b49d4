/*
 * tests/modules/null_op.c - a resolve module whose table lacks mx(),
 * which may not be NULL. The loader must refuse it, naming the member.
 */
#include <merpati/merpati.h>

static int
null_op_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	*ctx_r = NULL;
	return MP_OK;
}

static const struct mp_resolve_ops null_op_resolve = {
	.struct_size = sizeof(struct mp_resolve_ops),
	.mx = NULL,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "null_op",
	.kinds = MP_KIND_RESOLVE,
	.init = null_op_init,
	.resolve = &null_op_resolve,
};
