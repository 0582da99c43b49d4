/*
 * core/settings.c - the core's settings (server, limits, queue, tls,
 * smtp, outbound, domains, listeners) and loading the modules; which
 * loaded module provides each kind is providers.c's choice.
 *
 * Defaults follow Postfix and RFC 5321 where they exist: 50 MB messages
 * (Postfix's message_size_limit is 10 MB; 50 MB is what users now
 * expect), 1000 recipients (RFC 5321 4.5.3.1.8 asks for at least 100),
 * 5 minute command timeout and 10 minute DATA timeout (RFC 5321
 * 4.5.3.2.7 and .8 for the server side).
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "modcall.h"
#include "providers.h"
#include "queue.h"
#include "settings.h"
#include "util.h"


struct mp_core_config mp_core_boot;
struct mp_core_config *_Atomic mp_core_now = &mp_core_boot;
_Thread_local struct mp_core_config *mp_core_held;

#define SRV(f) offsetof(struct mp_server_settings, f)
static const struct mp_option server_options[] = {
	MP_OPT("hostname", MP_OPT_STRING, SRV(hostname), "localhost", 0, 0),
	MP_OPT("state_dir", MP_OPT_PATH, SRV(state_dir), "../var", 0, 0),
	MP_OPT("module_dir", MP_OPT_PATH, SRV(module_dir), "../modules", 0, 0),
	MP_OPT("user", MP_OPT_STRING, SRV(user), "merpati", 0, 0),
	MP_OPT("mailstore", MP_OPT_STRING, SRV(mailstore), "", 0, 0),
	MP_OPT("auth", MP_OPT_STRING, SRV(auth), "", 0, 0),
	MP_OPT("landlock", MP_OPT_BOOL, SRV(landlock), "true", 0, 0),
	MP_OPT_END
};

#define LIM(f) offsetof(struct mp_limits, f)
static const struct mp_option limit_options[] = {
	MP_OPT("message_size", MP_OPT_INT, LIM(message_size), "52428800", 1024, 1LL << 34),
	MP_OPT("recipients", MP_OPT_INT, LIM(recipients), "1000", 1, 100000),
	MP_OPT("connections", MP_OPT_INT, LIM(connections), "1000", 1, 1000000),
	MP_OPT("connections_per_ip", MP_OPT_INT, LIM(connections_per_ip), "50", 1, 1000000),
	MP_OPT("errors", MP_OPT_INT, LIM(errors), "10", 1, 1000),
	MP_OPT("command_timeout", MP_OPT_DURATION, LIM(command_timeout), "5m", 1, 86400),
	MP_OPT("data_timeout", MP_OPT_DURATION, LIM(data_timeout), "10m", 1, 86400),
	MP_OPT("data_deadline", MP_OPT_DURATION, LIM(data_deadline), "1h", 1, 86400),
	MP_OPT("line_length", MP_OPT_INT, LIM(line_length), "512", 512, 65536),
	MP_OPT("auth_failures_per_ip", MP_OPT_INT, LIM(auth_failures_per_ip), "10", 0, 1000000),
	MP_OPT("auth_failures_window", MP_OPT_DURATION, LIM(auth_failures_window), "15m", 1, 86400 * 7),
	MP_OPT_END
};

/* A protocol module's own connection limits, modules.<name>.limits; a
 * number left out takes the value of limits.* (counted apart all the
 * same), so the table's defaults only stand for the documented ones. */
#define POOL(f) offsetof(struct mp_conn_limits, f)
static const struct mp_option pool_options[] = {
	MP_OPT("connections", MP_OPT_INT, POOL(connections), "1000", 1, 1000000),
	MP_OPT("connections_per_ip", MP_OPT_INT, POOL(connections_per_ip), "50", 1, 1000000),
	MP_OPT_END
};

#define QUE(f) offsetof(struct mp_queue_settings, f)
static const struct mp_option queue_options[] = {
	MP_OPT("workers", MP_OPT_INT, QUE(workers), "4", 1, 256),
	MP_OPT("direct_delivery", MP_OPT_BOOL, QUE(direct_delivery), "true", 0, 0),
	MP_OPT("sync", MP_OPT_STRING, QUE(sync), "group", 0, 0),
	MP_OPT("retry_interval", MP_OPT_DURATION, QUE(retry_interval), "15m", 1, 86400 * 7),
	MP_OPT("warn_after", MP_OPT_DURATION, QUE(warn_after), "4h", 1, 86400 * 365),
	MP_OPT("give_up_after", MP_OPT_DURATION, QUE(give_up_after), "5d", 1, 86400 * 365),
	MP_OPT("tmp_max_age", MP_OPT_DURATION, QUE(tmp_max_age), "36h", 1, 86400 * 365),
	MP_OPT_END
};

#define LSN(f) offsetof(struct mp_listen, f)
static const struct mp_option listen_options[] = {
	MP_OPT("address", MP_OPT_STRING, LSN(address), "127.0.0.1", 0, 0),
	MP_OPT("port", MP_OPT_INT, LSN(port), NULL, 1, 65535),
	MP_OPT("auth", MP_OPT_STRING, LSN(auth_text), "optional", 0, 0),
	MP_OPT("tls", MP_OPT_STRING, LSN(tls_text), "starttls", 0, 0),
	MP_OPT("plaintext_auth", MP_OPT_BOOL, LSN(plaintext_auth), "false", 0, 0),
	MP_OPT("any_sender", MP_OPT_BOOL, LSN(any_sender), "false", 0, 0),
	MP_OPT_END
};

#define OUT(f) offsetof(struct mp_outbound_settings, f)
static const struct mp_option outbound_options[] = {
	MP_OPT("port", MP_OPT_INT, OUT(port), "25", 1, 65535),
	MP_OPT("tls", MP_OPT_STRING, OUT(tls), "opportunistic", 0, 0),
	MP_OPT("source", MP_OPT_STRING, OUT(source), "", 0, 0),
	MP_OPT("helo", MP_OPT_STRING, OUT(helo), "", 0, 0),
	MP_OPT("connect_timeout", MP_OPT_DURATION, OUT(connect_timeout), "30s", 1, 3600),
	MP_OPT("command_timeout", MP_OPT_DURATION, OUT(command_timeout), "5m", 1, 3600),
	MP_OPT("data_timeout", MP_OPT_DURATION, OUT(data_timeout), "10m", 1, 7200),
	MP_OPT("max_mx", MP_OPT_INT, OUT(max_mx), "5", 1, 100),
	MP_OPT_END
};

#define TLS(f) offsetof(struct mp_tls_settings, f)
static const struct mp_option tls_options[] = {
	MP_OPT("cert", MP_OPT_STRING, TLS(cert), "", 0, 0),
	MP_OPT("key", MP_OPT_STRING, TLS(key), "", 0, 0),
	MP_OPT_END
};

#define SMT(f) offsetof(struct mp_smtp_settings, f)
static const struct mp_option smtp_options[] = {
	MP_OPT("bare_eol", MP_OPT_STRING, SMT(bare_eol), "reject", 0, 0),
	MP_OPT("reject_long_lines", MP_OPT_BOOL, SMT(reject_long_lines), "true", 0, 0),
	MP_OPT("auth_failures", MP_OPT_INT, SMT(auth_failures), "3", 1, 1000),
	MP_OPT("greeting_delay", MP_OPT_DURATION, SMT(greeting_delay), "0", 0, 300),
	MP_OPT("vrfy", MP_OPT_BOOL, SMT(vrfy), "false", 0, 0),
	MP_OPT_END
};

static const char *const top_level[] = {
	"server", "domains", "listen", "tls", "limits", "outbound", "queue",
	"modules", "relay_networks", "smtp", "metrics", "log", NULL
};

/* The group at name, created empty if absent, so defaults still apply. */
static config_setting_t *
group_of(const char *name, struct mp_problems *problems)
{
	config_setting_t *root = config_root_setting(&mp_core.cfg->lc);
	config_setting_t *g = config_setting_get_member(root, name);

	if (g == NULL)
		g = config_setting_add(root, name, CONFIG_TYPE_GROUP);
	if (!config_setting_is_group(g)) {
		mp_problem(problems, "%s: must be a group { ... }", name);
		return NULL;
	}
	return g;
}

static void
options(const char *group, const struct mp_option *table, void *out,
    struct mp_problems *problems)
{
	config_setting_t *g = group_of(group, problems);
	const char *err;

	if (g && mp_cfg_options((const struct mp_conf *)g, table, out,
	    &err) != MP_OK)
		mp_problem(problems, "%s", err);
}

static void
check_top_level(struct mp_problems *problems)
{
	config_setting_t *root = config_root_setting(&mp_core.cfg->lc);

	for (int i = 0; i < config_setting_length(root); i++) {
		const char *name = config_setting_name(
		    config_setting_get_elem(root, (unsigned)i));
		int known = 0;
		for (size_t k = 0; top_level[k]; k++)
			known |= strcmp(top_level[k], name) == 0;
		if (!known)
			mp_problem(problems, "%s: unknown setting", name);
	}
}

static void
read_domains(struct mp_problems *problems)
{
	const config_setting_t *d = config_lookup(&mp_core.cfg->lc, "domains");
	int n;

	if (d == NULL)
		return;
	if (!config_setting_is_array(d) && !config_setting_is_list(d)) {
		mp_problem(problems, "domains: must be a list [ \"a\", \"b\" ]");
		return;
	}
	n = config_setting_length(d);
	mp_core.domains = mp_xcalloc((size_t)n + 1, sizeof(char *));
	for (int i = 0; i < n; i++) {
		const char *s = config_setting_get_string_elem(d, i);
		if (s == NULL || s[0] == '\0' || strchr(s, '@')) {
			mp_problem(problems, "domains[%d]: must be a domain name", i);
			continue;
		}
		mp_core.domains[mp_core.ndomains++] = s;
	}
}

int
mp_cidr_parse(const char *text, struct mp_cidr *out)
{
	char addr[64];
	const char *slash = strchr(text, '/');
	size_t len = slash ? (size_t)(slash - text) : strlen(text);
	char *end;

	if (len >= sizeof(addr))
		return -1;
	memcpy(addr, text, len);
	addr[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, addr, out->addr) == 1)
		out->family = AF_INET, out->bits = 32;
	else if (inet_pton(AF_INET6, addr, out->addr) == 1)
		out->family = AF_INET6, out->bits = 128;
	else
		return -1;
	if (slash) {
		long bits = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || bits < 0 || bits > out->bits)
			return -1;
		out->bits = (int)bits;
	}
	return 0;
}

int
mp_cidr_match(const struct mp_cidr *c, const char *addr)
{
	unsigned char a[16];
	int full, rest;

	if (inet_pton(c->family, addr, a) != 1)
		return 0;
	full = c->bits / 8;
	rest = c->bits % 8;
	if (memcmp(a, c->addr, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (c->addr[full] & mask);
}

int
mp_core_relay_allowed(const char *addr)
{
	for (size_t i = 0; i < mp_core.nrelay_nets; i++)
		if (mp_cidr_match(&mp_core.relay_nets[i], addr))
			return 1;
	return 0;
}

static void
read_relay_networks(struct mp_problems *problems)
{
	const config_setting_t *r = config_lookup(&mp_core.cfg->lc,
	    "relay_networks");
	int n;

	if (r == NULL)
		return;
	if (!config_setting_is_array(r) && !config_setting_is_list(r)) {
		mp_problem(problems, "relay_networks: must be a list [ \"127.0.0.0/8\" ]");
		return;
	}
	n = config_setting_length(r);
	mp_core.relay_nets = mp_xcalloc((size_t)n + 1, sizeof(struct mp_cidr));
	for (int i = 0; i < n; i++) {
		const char *s = config_setting_get_string_elem(r, i);
		if (s == NULL || mp_cidr_parse(s, &mp_core.relay_nets[mp_core.nrelay_nets]) < 0)
			mp_problem(problems, "relay_networks[%d]: \"%s\" is not an address or CIDR",
			    i, s ? s : "(not a string)");
		else
			mp_core.nrelay_nets++;
	}
}

static void
tls_paths(void)
{
	const char *dir = mp_core.server.state_dir;
	const char *cert = mp_core.tls.cert, *key = mp_core.tls.key;

	if (cert[0])
		mp_path_join(mp_core.tls_cert, sizeof(mp_core.tls_cert),
		    mp_core.cfg->dir, cert);
	else
		snprintf(mp_core.tls_cert, sizeof(mp_core.tls_cert),
		    "%s/tls/cert.pem", dir);
	if (key[0])
		mp_path_join(mp_core.tls_key, sizeof(mp_core.tls_key),
		    mp_core.cfg->dir, key);
	else
		snprintf(mp_core.tls_key, sizeof(mp_core.tls_key),
		    "%s/tls/key.pem", dir);
}

static int
parse_listen_modes(struct mp_listen *l, struct mp_problems *problems)
{
	if (strcmp(l->auth_text, "none") == 0) l->auth = LISTEN_AUTH_NONE;
	else if (strcmp(l->auth_text, "optional") == 0) l->auth = LISTEN_AUTH_OPTIONAL;
	else if (strcmp(l->auth_text, "required") == 0) l->auth = LISTEN_AUTH_REQUIRED;
	else {
		mp_problem(problems, "listen.%s.auth: \"%s\" is not none, optional or required",
		    l->name, l->auth_text);
		return -1;
	}
	if (strcmp(l->tls_text, "none") == 0) l->tls = LISTEN_TLS_NONE;
	else if (strcmp(l->tls_text, "starttls") == 0) l->tls = LISTEN_TLS_STARTTLS;
	else if (strcmp(l->tls_text, "implicit") == 0) l->tls = LISTEN_TLS_IMPLICIT;
	else {
		mp_problem(problems, "listen.%s.tls: \"%s\" is not none, starttls or implicit",
		    l->name, l->tls_text);
		return -1;
	}
	return 0;
}

/* Listeners of group g (the SMTP `listen`, or a protocol module's). */
static void
read_listen_group(const config_setting_t *g, struct mp_loaded *proto,
    struct mp_problems *problems)
{
	const char *err;

	for (int i = 0; g && i < config_setting_length(g); i++) {
		config_setting_t *c = config_setting_get_elem(g, (unsigned)i);
		struct mp_listen *l = &mp_core.listen[mp_core.nlisten];
		if (mp_core.nlisten == sizeof(mp_core.listen) / sizeof(*l)) {
			mp_problem(problems, "listen: too many listeners");
			return;
		}
		memset(l, 0, sizeof(*l));
		l->name = config_setting_name(c);
		l->fd = -1;
		l->proto = proto;
		l->pool = proto ? mp_core.npools - 1 : 0;
		snprintf(l->label, sizeof(l->label), "%s%s%s", proto ? proto->name : "",
		    proto ? "." : "", l->name);
		if (mp_cfg_options((const struct mp_conf *)c, listen_options,
		    l, &err) != MP_OK) {
			mp_problem(problems, "%s", err);
			continue;
		}
		/* A protocol listener named "tls" is implicit TLS (995, 993). */
		if (proto && strcmp(l->name, "tls") == 0 &&
		    config_setting_get_member(c, "tls") == NULL)
			l->tls_text = "implicit";
		if (parse_listen_modes(l, problems) == 0)
			mp_core.nlisten++;
	}
}

static void
read_listeners(struct mp_problems *problems)
{
	mp_core.pools[0] = (struct mp_conn_limits){ .name = "smtp",
	    .connections = mp_core.limits.connections,
	    .connections_per_ip = mp_core.limits.connections_per_ip };
	mp_core.npools = 1;
	read_listen_group(group_of("listen", problems), NULL, problems);
}

/* A new limit pool for protocol module m; 0, or -1 (problem added). */
static int
read_protocol_limits(const struct mp_loaded *m, struct mp_problems *problems)
{
	struct mp_conn_limits *p = &mp_core.pools[mp_core.npools];
	const config_setting_t *g;
	char path[256];
	const char *err;

	if (mp_core.npools == sizeof(mp_core.pools) / sizeof(*p)) {
		mp_problem(problems, "modules: too many protocol modules");
		return -1;
	}
	snprintf(path, sizeof(path), "modules.%s.limits", m->name);
	g = config_lookup(&mp_core.cfg->lc, path);
	memset(p, 0, sizeof(*p));
	if (mp_cfg_options((const struct mp_conf *)g, pool_options, p,
	    &err) != MP_OK) {
		mp_problem(problems, "%s", err);
		return -1;
	}
	if (g == NULL || config_setting_get_member(g, "connections") == NULL)
		p->connections = mp_core.limits.connections;
	if (g == NULL || config_setting_get_member(g, "connections_per_ip") == NULL)
		p->connections_per_ip = mp_core.limits.connections_per_ip;
	p->name = m->name;
	mp_core.npools++;
	return 0;
}

static void
read_protocol_listeners(struct mp_problems *problems)
{
	char path[256];

	for (size_t i = 0; i < mp_core.modules.n; i++) {
		struct mp_loaded *m = &mp_core.modules.v[i];
		if (!(m->mod->kinds & MP_KIND_PROTOCOL))
			continue;
		snprintf(path, sizeof(path), "modules.%s.listen", m->name);
		const config_setting_t *g = config_lookup(&mp_core.cfg->lc, path);
		if (g == NULL || !config_setting_is_group(g)) {
			mp_problem(problems, "%s: a protocol module needs a listen group "
			    "{ plain = { address = ...; port = ...; }; }", path);
			continue;
		}
		if (read_protocol_limits(m, problems) == 0)
			read_listen_group(g, m, problems);
	}
}

/* A setting that takes one of two words. */
static void
check_choice(struct mp_problems *problems, const char *name, const char *value,
    const char *a, const char *b)
{
	if (value && strcmp(value, a) != 0 && strcmp(value, b) != 0)
		mp_problem(problems, "%s: \"%s\" is not %s or %s", name, value, a, b);
}

int
mp_core_configure(const char *file, char *const *overrides,
    size_t noverrides, struct mp_problems *problems)
{
	size_t before = problems->n;

	memset(&mp_core, 0, sizeof(mp_core));
	mp_core.cfg = mp_cfg_load(file, overrides, noverrides, problems);
	if (mp_core.cfg == NULL)
		return -1;
	check_top_level(problems);
	options("server", server_options, &mp_core.server, problems);
	options("limits", limit_options, &mp_core.limits, problems);
	options("queue", queue_options, &mp_core.queue, problems);
	options("tls", tls_options, &mp_core.tls, problems);
	options("smtp", smtp_options, &mp_core.smtp, problems);
	options("outbound", outbound_options, &mp_core.outbound, problems);
	check_choice(problems, "outbound.tls", mp_core.outbound.tls, "none", "opportunistic");
	check_choice(problems, "smtp.bare_eol", mp_core.smtp.bare_eol, "reject", "normalize");
	check_choice(problems, "queue.sync", mp_core.queue.sync, "group", "file");
	mp_queue_set_group_commit(mp_core.queue.sync == NULL ||
	    strcmp(mp_core.queue.sync, "group") == 0);
	read_domains(problems);
	read_listeners(problems);
	read_relay_networks(problems);
	mp_metrics_configure(&mp_core.cfg->lc, &mp_core.metrics, problems);
	mp_log_configure(&mp_core.cfg->lc, &mp_core.log_json, problems);
	if (mp_core.server.state_dir && mp_core.tls.cert)
		tls_paths();
	if (mp_core.server.state_dir)
		snprintf(mp_core.queue_dir, sizeof(mp_core.queue_dir),
		    "%s/queue", mp_core.server.state_dir);
	return problems->n == before ? 0 : -1;
}

int
mp_core_load_modules(struct mp_problems *problems)
{
	size_t before = problems->n;

	mp_modules_load(mp_core.cfg, mp_core.server.module_dir,
	    &mp_host_table, &mp_core.modules, problems);
	if (problems->n == before) {
		mp_providers_pick(problems);
		read_protocol_listeners(problems);
	}
	return problems->n == before ? 0 : -1;
}

void
mp_core_shutdown(void)
{
	mp_modules_unload(&mp_core.modules);
	free(mp_core.domains);
	free(mp_core.relay_nets);
	mp_cfg_free(mp_core.cfg);
	memset(&mp_core, 0, sizeof(mp_core));
}

int
mp_core_local_domain(const char *domain, const char **error_r)
{
	for (size_t i = 0; i < mp_core.ndomains; i++)
		if (strcasecmp(mp_core.domains[i], domain) == 0)
			return 1;
	/* Then the auth provider's directory, which several nodes may
	 * share: a domain added there is local at once, on every node. */
	return mp_call_auth_domain_exists(domain, error_r);
}

int
mp_core_is_local_domain(const char *domain)
{
	const char *err = NULL;

	return mp_core_local_domain(domain, &err) == 1;
}
