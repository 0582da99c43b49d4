/*
 * tests/modules/filter20.c - a filter built against the ABI 2.0 headers
 * (tests/abi/2.0, first on its include path: see Makefile.in): its
 * mp_filter_ops has end_of_data only, and it adds its header through
 * the add_header argument. tests/e2e/test_filter_hooks.py loads it
 * beside the 2.1 test filter: the host must skip the hooks its table
 * lacks and keep add_header working.
 */
#include <stddef.h>
#include <merpati/merpati.h>

static const struct mp_host *host;

static int
f20_init(const struct mp_host *h, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	host = h;
	*ctx_r = NULL;
	return MP_OK;
}

static int
f20_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg,
    int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *status_r)
{
	if (add_header(txn, "X-Filter-2-0", env->sender[0] ? env->sender : "null")
	    != MP_OK) {
		mp_status_set(status_r, 451, "4.3.0", "add_header failed");
		return MP_TEMPFAIL;
	}
	return MP_OK;
}

static const struct mp_filter_ops f20_filter = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = f20_end_of_data,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "filter20",
	.kinds = MP_KIND_FILTER,
	.init = f20_init,
	.filter = &f20_filter,
};
