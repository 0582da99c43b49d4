/*
 * dkim.c - the dkim module's descriptor (filter kind).
 *
 * For now it only registers: the engine (dkim_lib.h: signing, verifying,
 * key generation) is built and tested, but it is wired to nothing yet,
 * because signing needs the hook after filters and verifying needs the
 * resolver's TXT lookups, both of which issue 18 adds to the ABI. Until
 * then end_of_data accepts every message unchanged and the module takes
 * no settings, so loading it changes nothing.
 */
#include <stddef.h>

#include <merpati/merpati.h>

#include "dkim_lib.h"

struct dkim_module {
	const struct mp_host *host;
};

static const struct mp_option dkim_options[] = {
	MP_OPT_END
};

static int
dkim_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg,
    int (*add_header)(struct mp_txn *txn, const char *name, const char *value),
    struct mp_status *status_r)
{
	return MP_OK;
}

static int
dkim_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct dkim_module *m;
	char unused;

	if (host->conf_options(conf, dkim_options, &unused, error_r) != MP_OK)
		return MP_ERROR;
	if ((m = host->alloc(sizeof(*m))) == NULL) {
		*error_r = "dkim: out of memory";
		return MP_ERROR;
	}
	m->host = host;
	*ctx_r = m;
	return MP_OK;
}

static void
dkim_fini(void *ctx)
{
	struct dkim_module *m = ctx;

	m->host->free(m);
}

static const struct mp_filter_ops dkim_filter = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = dkim_end_of_data,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "dkim",
	.kinds = MP_KIND_FILTER,
	.init = dkim_init,
	.fini = dkim_fini,
	.filter = &dkim_filter,
};
