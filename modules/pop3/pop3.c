/*
 * modules/pop3/pop3.c - the POP3 protocol module: registration and
 * settings. The protocol itself is in pop3_session.c. Mail is read and
 * changed only through the mailstore API (host->store()), so any store
 * module serves it.
 */
#include <stddef.h>

#include "pop3.h"

#define SET(f) offsetof(struct pop3_settings, f)
static const struct mp_option pop3_options[] = {
	MP_OPT("plaintext_auth", MP_OPT_BOOL, SET(plaintext_auth), "false", 0, 0),
	MP_OPT("timeout", MP_OPT_DURATION, SET(timeout), "10m", 1, 86400),
	MP_OPT("auth_failures", MP_OPT_INT, SET(auth_failures), "3", 1, 100),
	MP_OPT("errors", MP_OPT_INT, SET(errors), "10", 1, 1000),
	MP_OPT_END
};

static int
pop3_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct pop3_module *m;

	m = host->alloc(sizeof(*m));
	if (m == NULL) {
		*error_r = "pop3: out of memory";
		return MP_ERROR;
	}
	m->host = host;
	if (host->conf_options(conf, pop3_options, &m->set, error_r) != MP_OK) {
		host->free(m);
		return MP_ERROR;
	}
	*ctx_r = m;
	return MP_OK;
}

static void
pop3_fini(void *ctx)
{
	struct pop3_module *m = ctx;

	m->host->free(m);
}

static const struct mp_protocol_ops pop3_ops = {
	.struct_size = sizeof(struct mp_protocol_ops),
	.protocol = "pop3",
	.session = pop3_session,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "pop3",
	.kinds = MP_KIND_PROTOCOL,
	.init = pop3_init,
	.fini = pop3_fini,
	.protocol = &pop3_ops,
};
