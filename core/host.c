/*
 * core/host.c - the host table handed to modules (struct mp_host).
 */
#include <errno.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_limit.h"
#include "config.h"
#include "filter_hooks.h"
#include "log.h"
#include "modcall.h"
#include "protocol.h"
#include "queue.h"
#include "runner.h"
#include "settings.h"
#include "smtp_auth_parse.h"
#include "sync.h"
#include "util.h"

static void *host_alloc(size_t size) { return malloc(size ? size : 1); }
static void host_free(void *p) { free(p); }
static const char *host_hostname(void) { return mp_core.server.hostname; }
static time_t host_now(void) { return time(NULL); }

static int
host_auth_allowed(const struct mp_conn_info *info, int plaintext_auth)
{
	return mp_auth_allowed(info->tls, info->loopback, plaintext_auth);
}

static const struct mp_auth *
host_auth(void)
{
	return mp_metrics_auth(mp_core.auth.ops ? &mp_core.auth : NULL);
}

static int
copy_reader(struct mp_qwriter *w, struct mp_reader *msg)
{
	char buf[16384];
	ssize_t n;

	while ((n = msg->read(msg, buf, sizeof(buf))) > 0)
		if (mp_queue_write(w, buf, (size_t)n) < 0)
			return -1;
	return n < 0 ? -1 : 0;
}

static int
host_queue_inject(const char *sender, const char *const *rcpts, size_t nrcpt,
    struct mp_reader *msg, char *id_r, size_t id_size, const char **error_r)
{
	struct mp_qmsg env = { 0 };
	struct mp_qwriter *w;
	char id[MP_QID_SIZE];

	env.sender = (char *)sender;
	env.rcpts = (char **)rcpts;
	env.nrcpt = nrcpt;
	env.arrival = time(NULL);
	env.helo = (char *)"";
	env.client = (char *)"";
	env.auth_user = (char *)"";
	w = mp_queue_begin(mp_core.queue_dir, &env, id);
	if (w == NULL) {
		*error_r = errno == EINVAL ? "bad envelope" :
		    "cannot create queue file";
		return MP_ERROR;
	}
	if (copy_reader(w, msg) < 0) {
		mp_queue_abort(w);
		*error_r = "cannot write queue file";
		return MP_TEMPFAIL;
	}
	if (mp_queue_commit(w) < 0) {
		*error_r = "cannot commit queue file";
		return MP_TEMPFAIL;
	}
	if (id_r && id_size)
		mp_strlcpy(id_r, id, id_size);
	mp_runner_notify(id);
	return MP_OK;
}

static const struct mp_conf *
host_conf_member(const struct mp_conf *group, const char *name)
{
	const config_setting_t *g = (const config_setting_t *)group;

	if (g == NULL || !config_setting_is_group(g))
		return NULL;
	return (const struct mp_conf *)config_setting_get_member(g, name);
}

static const struct mp_conf *
host_conf_elem(const struct mp_conf *list, unsigned index)
{
	const config_setting_t *l = (const config_setting_t *)list;

	if (l == NULL || !config_setting_is_aggregate(l))
		return NULL;
	return (const struct mp_conf *)config_setting_get_elem(l, index);
}

static unsigned
host_conf_length(const struct mp_conf *c)
{
	const config_setting_t *s = (const config_setting_t *)c;

	return s && config_setting_is_aggregate(s) ?
	    (unsigned)config_setting_length(s) : 0;
}

static const char *
host_conf_string(const struct mp_conf *c)
{
	const config_setting_t *s = (const config_setting_t *)c;

	return s && config_setting_type(s) == CONFIG_TYPE_STRING ?
	    config_setting_get_string(s) : NULL;
}

static const char *
host_conf_name(const struct mp_conf *c)
{
	return c ? config_setting_name((const config_setting_t *)c) : NULL;
}

static int
host_conf_int(const struct mp_conf *c, long long *value_r)
{
	const config_setting_t *s = (const config_setting_t *)c;

	if (s == NULL || (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64))
		return -1;
	*value_r = config_setting_get_int64(s);
	return 0;
}

static void
host_conf_where(const struct mp_conf *c, char *buf, size_t size)
{
	mp_cfg_setting_path((const config_setting_t *)c, buf, size);
}

static const struct mp_store *
host_store(void)
{
	return mp_metrics_store(mp_core.store.ops ? &mp_core.store : NULL);
}

/* The protocol is the one of the module whose session runs on this
 * thread (protocol.c sets it as the log module around the session), so
 * a module counts under its own protocol only; elsewhere, nothing. */
static void
host_count_command(const char *command, const char *outcome)
{
	const char *name = mp_log_module();
	const struct mp_loaded *m = name ?
	    mp_modules_named(&mp_core.modules, name) : NULL;

	if (m && m->mod->protocol)
		mp_metric_command(m->mod->protocol->protocol, command, outcome);
}

const struct mp_host mp_host_table = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_host),
	.log = mp_log,
	.log_errno = mp_log_errno,
	.conf_options = mp_cfg_options,
	.alloc = host_alloc,
	.free = host_free,
	.hostname = host_hostname,
	.now = host_now,
	.is_local_domain = mp_core_is_local_domain,
	.queue_inject = host_queue_inject,
	.auth = host_auth,
	.conf_member = host_conf_member,
	.conf_elem = host_conf_elem,
	.conf_length = host_conf_length,
	.conf_string = host_conf_string,
	.conf_where = host_conf_where,
	.store = host_store,
	.conn_read_line = mp_host_conn_read_line,
	.conn_read = mp_host_conn_read,
	.conn_write = mp_host_conn_write,
	.conn_printf = mp_host_conn_printf,
	.conn_flush = mp_host_conn_flush,
	.conn_pending = mp_host_conn_pending,
	.conn_start_tls = mp_host_conn_start_tls,
	.conn_info = mp_host_conn_info,
	.conn_set_timeout = mp_host_conn_set_timeout,
	.base64_decode = mp_base64_decode,
	.base64_encode = mp_base64_encode,
	.conf_name = host_conf_name,
	.conf_int = host_conf_int,
	.conn_wait = mp_host_conn_wait,
	.sync_group = mp_sync_group,
	.sasl_plain = smtp_auth_plain_fields,
	.auth_allowed = host_auth_allowed,
	.dns_lookup = mp_call_resolve_lookup,
	/* since 2.1: the filter hooks' calls (filter_hooks.c) */
	.txn_info = mp_txn_info_get,
	.txn_slot = mp_txn_slot,
	.txn_note_set = mp_txn_note_set,
	.txn_note = mp_txn_note,
	.txn_header_insert = mp_txn_header_insert,
	.txn_header_change = mp_txn_header_change,
	.txn_sender_set = mp_txn_sender_set,
	.txn_rcpt_add = mp_txn_rcpt_add,
	.txn_rcpt_delete = mp_txn_rcpt_delete,
	.txn_body_replace = mp_txn_body_replace,
	.txn_hold = mp_txn_hold,
	.txn_discard = mp_txn_discard,
	.auth_limit_enter = mp_auth_limit_enter,
	.auth_limit_leave = mp_auth_limit_leave,
	/* since 2.2: the protocol modules' command counts (metrics.c) */
	.count_command = host_count_command,
};
