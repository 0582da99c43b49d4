/*
 * modules/dmarc/dmarc.c - the dmarc module's descriptor: a filter that,
 * for now, loads and validates its settings (the Public Suffix List
 * path) and accepts every message. The engine (dmarc.h) is complete; it
 * is called from the end-of-data hook once the ABI carries TXT lookups
 * and the spf/dkim results (issue 18).
 */
#include <stddef.h>

#include <merpati/merpati.h>

#include "dmarc.h"

struct dmarc_module {
	const struct mp_host *host;
	const char *public_suffix_list;
	struct dmarc_psl *psl;
};

#define D(f) offsetof(struct dmarc_module, f)
static const struct mp_option dmarc_options[] = {
	MP_OPT("public_suffix_list", MP_OPT_STRING, D(public_suffix_list),
	    "/usr/share/publicsuffix/public_suffix_list.dat", 0, 0),
	MP_OPT_END
};

static int
dmarc_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct dmarc_module *m = host->alloc(sizeof(*m));

	if (m == NULL) {
		*error_r = "dmarc: out of memory";
		return MP_ERROR;
	}
	m->host = host;
	m->psl = NULL;
	if (host->conf_options(conf, dmarc_options, m, error_r) != MP_OK) {
		host->free(m);
		return MP_ERROR;
	}
	/* Without the list every domain is its own organisational domain
	 * (the "*" rule): relaxed alignment degrades to strict, so say so. */
	if (dmarc_psl_load_file(m->public_suffix_list, &m->psl, error_r) < 0) {
		host->log(MP_LOG_WARNING, "dmarc: %s (%s): relaxed alignment "
		    "becomes strict", *error_r, m->public_suffix_list);
		m->psl = NULL;
	}
	*ctx_r = m;
	return MP_OK;
}

static void
dmarc_fini(void *ctx)
{
	struct dmarc_module *m = ctx;

	dmarc_psl_free(m->psl);
	m->host->free(m);
}

/* Accepts everything until the hooks exist (see above). */
static int
dmarc_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *status_r)
{
	(void)ctx; (void)txn; (void)env; (void)msg; (void)add_header; (void)status_r;
	return MP_OK;
}

static const struct mp_filter_ops dmarc_filter_ops = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = dmarc_end_of_data,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "dmarc",
	.kinds = MP_KIND_FILTER,
	.init = dmarc_init,
	.fini = dmarc_fini,
	.filter = &dmarc_filter_ops,
};
