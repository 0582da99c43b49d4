/*
 * modules/retry/retry.c - the retry kind: when a deferred message is
 * tried again, when its sender hears it is late, when it is returned.
 * Pure policy over the message's history (the state is in the queue).
 *
 * Defaults are the classic sendmail schedule: every 15 minutes, one delay
 * warning after 4 hours, give up after 5 days. The decision itself is
 * mp_retry_policy() (merpati/retry.h), which the core also uses when no
 * retry module is loaded.
 */
#include <stddef.h>
#include <stdio.h>

#include <merpati/merpati.h>

struct retry {
	const struct mp_host *host;
	long long interval, warn_after, give_up_after;
};

#define R(f) offsetof(struct retry, f)
static const struct mp_option retry_options[] = {
	MP_OPT("interval", MP_OPT_DURATION, R(interval), "15m", 1, 86400 * 7),
	MP_OPT("warn_after", MP_OPT_DURATION, R(warn_after), "4h", 1, 86400 * 365),
	MP_OPT("give_up_after", MP_OPT_DURATION, R(give_up_after), "5d", 1, 86400 * 365),
	MP_OPT_END
};

static int
retry_schedule(void *ctx, const struct mp_retry_info *info,
    struct mp_retry_decision *d)
{
	const struct retry *r = ctx;

	mp_retry_policy(info, r->host->now(), r->interval, r->warn_after,
	    r->give_up_after, d);
	return MP_OK;
}

static int
retry_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	static _Thread_local char why[160];
	struct retry *r = host->alloc(sizeof(*r));

	if (r == NULL) {
		*error_r = "retry: out of memory";
		return MP_ERROR;
	}
	r->host = host;
	if (host->conf_options(conf, retry_options, r, error_r) != MP_OK) {
		host->free(r);
		return MP_ERROR;
	}
	if (r->warn_after >= r->give_up_after) {
		snprintf(why, sizeof(why), "modules.retry.warn_after (%llds) must be "
		    "shorter than give_up_after (%llds)", r->warn_after, r->give_up_after);
		*error_r = why;
		host->free(r);
		return MP_ERROR;
	}
	*ctx_r = r;
	return MP_OK;
}

static void
retry_fini(void *ctx)
{
	struct retry *r = ctx;

	r->host->free(r);
}

static const struct mp_retry_ops retry_ops = {
	.struct_size = sizeof(struct mp_retry_ops),
	.schedule = retry_schedule,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "retry",
	.kinds = MP_KIND_RETRY,
	.init = retry_init,
	.fini = retry_fini,
	.retry = &retry_ops,
};
