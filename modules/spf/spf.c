/*
 * modules/spf/spf.c - the spf module's descriptor: a filter that, for
 * now, only loads and validates its (empty) settings group. The engine
 * (spf.h) is complete; it is called from here once the ABI has the
 * MAIL FROM hook point and TXT/PTR resolver calls (issue 18), which this
 * module will then map onto struct spf_dns.
 */
#include <stddef.h>

#include <merpati/merpati.h>

#include "spf.h"

struct spf_module {
	const struct mp_host *host;
};

static const struct mp_option spf_options[] = {
	MP_OPT_END
};

static int
spf_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct spf_module *m = host->alloc(sizeof(*m));

	if (m == NULL) {
		*error_r = "spf: out of memory";
		return MP_ERROR;
	}
	m->host = host;
	if (host->conf_options(conf, spf_options, m, error_r) != MP_OK) {
		host->free(m);
		return MP_ERROR;
	}
	*ctx_r = m;
	return MP_OK;
}

static void
spf_fini(void *ctx)
{
	struct spf_module *m = ctx;

	m->host->free(m);
}

/* Accepts everything until the MAIL FROM hook exists (see above). */
static int
spf_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *status_r)
{
	(void)ctx; (void)txn; (void)env; (void)msg; (void)add_header; (void)status_r;
	return MP_OK;
}

static const struct mp_filter_ops spf_filter_ops = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = spf_end_of_data,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "spf",
	.kinds = MP_KIND_FILTER,
	.init = spf_init,
	.fini = spf_fini,
	.filter = &spf_filter_ops,
};
