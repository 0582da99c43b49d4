/*
 * modules/imap/imap.c - the IMAP protocol module: registration and
 * settings. The protocol lives in imap_session.c, imap_fetch.c,
 * imap_search.c and imap_mime.c; mail only through the mailstore API.
 */
#include <stddef.h>

#include "imap.h"

#define SET(f) offsetof(struct imap_settings, f)
static const struct mp_option imap_options[] = {
	MP_OPT("plaintext_auth", MP_OPT_BOOL, SET(plaintext_auth), "false", 0, 0),
	MP_OPT("timeout", MP_OPT_DURATION, SET(timeout), "30m", 1, 86400),
	MP_OPT("max_literal", MP_OPT_INT, SET(max_literal), "52428800", 1024, 1LL << 32),
	MP_OPT("max_line", MP_OPT_INT, SET(max_line), "65536", 1024, 1 << 20),
	MP_OPT("errors", MP_OPT_INT, SET(errors), "20", 1, 1000),
	MP_OPT("auth_failures", MP_OPT_INT, SET(auth_failures), "3", 1, 100),
	MP_OPT("envelope_cache", MP_OPT_INT, SET(envelope_cache), "67108864", 0, 1LL << 34),
	MP_OPT_END
};

static int
imap_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct imap_module *m;

	if ((m = host->alloc(sizeof(*m))) == NULL) {
		*error_r = "imap: out of memory";
		return MP_ERROR;
	}
	m->host = host;
	if (host->conf_options(conf, imap_options, &m->set, error_r) != MP_OK) {
		host->free(m);
		return MP_ERROR;
	}
	m->cache = NULL;
	if (m->set.envelope_cache > 0 &&
	    (m->cache = imap_cache_new((size_t)m->set.envelope_cache)) == NULL) {
		*error_r = "imap: out of memory";
		host->free(m);
		return MP_ERROR;
	}
	*ctx_r = m;
	return MP_OK;
}

static void
imap_fini(void *ctx)
{
	struct imap_module *m = ctx;

	imap_cache_free(m->cache);
	m->host->free(m);
}

static const struct mp_protocol_ops imap_ops = {
	.struct_size = sizeof(struct mp_protocol_ops),
	.protocol = "imap",
	.session = imap_session,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "imap",
	.kinds = MP_KIND_PROTOCOL,
	.init = imap_init,
	.fini = imap_fini,
	.protocol = &imap_ops,
};
