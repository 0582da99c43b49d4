/*
 * modules/ratelimit/ratelimit.c - the ratelimit module: its settings and
 * its filter hooks. MAIL FROM counts a message and each accepted RCPT TO
 * a recipient, per client address (an IPv6 client by its /64), per
 * authenticated user and per sender domain; over a limit the command
 * gets 451 4.7.1 naming the limit (ratelimit_engine.c). Every limit is
 * optional: one left out is unlimited.
 *
 *   modules.ratelimit = {
 *     messages_per_ip = { count = 100; window = "1h"; };
 *     recipients_per_ip = { count = 500; window = "1h"; };
 *     messages_per_user = { count = 200; window = "1d"; };
 *     table_size = 100000;	# keys per limit, then LRU eviction
 *   };
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <merpati/filter.h>

#include "ratelimit.h"

struct limit_setting {
	long long count, window;
};

#define LS(f) offsetof(struct limit_setting, f)
static const struct mp_option limit_options[] = {
	MP_OPT("count", MP_OPT_INT, LS(count), NULL, 1, 1000000000),
	MP_OPT("window", MP_OPT_DURATION, LS(window), NULL, 1, 86400 * 7),
	MP_OPT_END
};

/* The limit named name, or -1 in *what_r when it is none. */
static void
limit_by_name(const char *name, int *what_r, int *scope_r)
{
	*what_r = -1;
	for (int w = 0; w < RL_NWHAT; w++)
		for (int s = 0; s < RL_NSCOPES; s++)
			if (strcmp(name, ratelimit_setting(w, s)) == 0) {
				*what_r = w;
				*scope_r = s;
			}
}

/* init's error text must outlive the failed init (and its memory);
 * init runs once, in the main thread. */
static char config_error[256];

static int
config_fail(struct ratelimit *rl, const char **error_r, const char *name,
    const char *why)
{
	(void)rl;
	snprintf(config_error, sizeof(config_error),
	    "modules.ratelimit.%s: %s", name, why);
	*error_r = config_error;
	return MP_ERROR;
}

static int
read_table_size(struct ratelimit *rl, const struct mp_conf *conf,
    const char **error_r)
{
	const struct mp_conf *c = rl->host->conf_member(conf, "table_size");

	rl->table_size = 100000;
	if (c == NULL)
		return MP_OK;
	if (rl->host->conf_int(c, &rl->table_size) < 0 ||
	    rl->table_size < 1 || rl->table_size > 10000000)
		return config_fail(rl, error_r, "table_size",
		    "want a number of keys, 1..10000000");
	return MP_OK;
}

static int
read_limit(struct ratelimit *rl, const struct mp_conf *c, const char *name,
    const char **error_r)
{
	struct limit_setting ls;
	int what, scope;

	limit_by_name(name, &what, &scope);
	if (what < 0)
		return config_fail(rl, error_r, name, "unknown setting");
	if (rl->host->conf_options(c, limit_options, &ls, error_r) != MP_OK)
		return MP_ERROR;
	if (ratelimit_set(rl, what, scope, ls.count, ls.window) < 0)
		return config_fail(rl, error_r, name, "out of memory");
	return MP_OK;
}

int
ratelimit_configure(struct ratelimit *rl, const struct mp_conf *conf,
    const char **error_r)
{
	const struct mp_host *host = rl->host;

	if (read_table_size(rl, conf, error_r) != MP_OK)
		return MP_ERROR;
	for (unsigned i = 0; i < host->conf_length(conf); i++) {
		const struct mp_conf *c = host->conf_elem(conf, i);
		const char *name = host->conf_name(c);
		if (name == NULL || strcmp(name, "table_size") == 0 ||
		    strcmp(name, "path") == 0)
			continue;
		if (read_limit(rl, c, name, error_r) != MP_OK)
			return MP_ERROR;
	}
	return MP_OK;
}

static int
ratelimit_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct ratelimit *rl = host->alloc(sizeof(*rl));

	if (rl == NULL) {
		*error_r = "ratelimit: out of memory";
		return MP_ERROR;
	}
	memset(rl, 0, sizeof(*rl));
	rl->host = host;
	if (!MP_HOST_HAS(txn_info) || host->txn_info == NULL) {
		*error_r = "ratelimit: the daemon lacks the filter hooks "
		    "(ABI 2.1)";
		host->free(rl);
		return MP_ERROR;
	}
	if (ratelimit_configure(rl, conf, error_r) != MP_OK) {
		ratelimit_free_tables(rl);
		host->free(rl);
		return MP_ERROR;
	}
	*ctx_r = rl;
	return MP_OK;
}

static void
ratelimit_fini(void *ctx)
{
	struct ratelimit *rl = ctx;

	ratelimit_free_tables(rl);
	rl->host->free(rl);
}

/* The keys of this transaction's event; buffers hold the copies. */
struct event_keys {
	const char *keys[RL_NSCOPES];
	char ip[64];
	char domain[256];
};

static void
sender_domain(const char *sender, char *buf, size_t size)
{
	const char *at = sender ? strrchr(sender, '@') : NULL;
	size_t i = 0;

	buf[0] = '\0';
	if (at == NULL)
		return;
	for (at++; *at && i + 1 < size; at++)
		buf[i++] = (char)tolower((unsigned char)*at);
	buf[i] = '\0';
}

static void
event_keys(struct ratelimit *rl, struct mp_txn *txn, const char *sender,
    struct event_keys *k)
{
	const struct mp_txn_info *info = rl->host->txn_info(txn);

	memset(k, 0, sizeof(*k));
	if (info == NULL)
		return;
	if (info->conn != NULL && info->conn->peer != NULL)
		k->keys[RL_IP] = mp_ratewin_ip_key(info->conn->peer, k->ip,
		    sizeof(k->ip));
	if (info->auth_user != NULL && info->auth_user[0] != '\0')
		k->keys[RL_USER] = info->auth_user;
	sender_domain(sender ? sender : info->sender, k->domain,
	    sizeof(k->domain));
	if (k->domain[0] != '\0')	/* <> has no domain to count */
		k->keys[RL_SENDER_DOMAIN] = k->domain;
}

static int
ratelimit_mail_from(void *ctx, struct mp_txn *txn, const char *sender,
    struct mp_status *status_r)
{
	struct event_keys k;

	event_keys(ctx, txn, sender, &k);
	return ratelimit_check(ctx, RL_MESSAGES, k.keys, status_r);
}

static int
ratelimit_rcpt_to(void *ctx, struct mp_txn *txn, const char *rcpt,
    struct mp_status *status_r)
{
	struct event_keys k;

	(void)rcpt;
	event_keys(ctx, txn, NULL, &k);
	return ratelimit_check(ctx, RL_RECIPIENTS, k.keys, status_r);
}

/* Required by ABI 2.0; the limits are all decided before DATA. */
static int
ratelimit_end_of_data(void *ctx, struct mp_txn *txn,
    const struct mp_envelope *env, struct mp_reader *msg,
    int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *status_r)
{
	(void)ctx; (void)txn; (void)env; (void)msg; (void)add_header;
	(void)status_r;
	return MP_OK;
}

static const struct mp_filter_ops ratelimit_filter_ops = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = ratelimit_end_of_data,
	.mail_from = ratelimit_mail_from,
	.rcpt_to = ratelimit_rcpt_to,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "ratelimit",
	.kinds = MP_KIND_FILTER,
	.init = ratelimit_init,
	.fini = ratelimit_fini,
	.filter = &ratelimit_filter_ops,
};
