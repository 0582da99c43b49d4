/*
 * core/settings.h - the core's own settings (server, domains, listen,
 * limits, queue), read through the same declarative option tables that
 * modules use, and `mp_core`: the configuration in force for the
 * calling thread (a snapshot; a reload makes a new one, reload.h).
 */
#ifndef MERPATI_SETTINGS_H
#define MERPATI_SETTINGS_H

#include <stdatomic.h>
#include <merpati/merpati.h>

#include "config.h"
#include "loader.h"
#include "metrics.h"

enum mp_listen_auth { LISTEN_AUTH_NONE, LISTEN_AUTH_OPTIONAL, LISTEN_AUTH_REQUIRED };
enum mp_listen_tls { LISTEN_TLS_NONE, LISTEN_TLS_STARTTLS, LISTEN_TLS_IMPLICIT };

struct mp_listen {
	const char *name;	/* "smtp", "submission", "smtps" */
	const char *address;
	long long port;
	const char *auth_text;
	const char *tls_text;
	int plaintext_auth;	/* AUTH without TLS from loopback clients */
	int any_sender;		/* authenticated users may use any MAIL FROM */
	enum mp_listen_auth auth;
	enum mp_listen_tls tls;
	int fd;
	struct mp_loaded *proto;	/* protocol module; NULL for SMTP */
	char label[96];			/* "smtp", "pop3.plain" */
	size_t pool;			/* its mp_core.pools entry: 0 for SMTP */
};

/* Connection limits shared by the listeners of one protocol: every SMTP
 * listener counts against `limits`, each protocol module's against its
 * own `modules.<name>.limits`, so one protocol cannot starve another. */
struct mp_conn_limits {
	const char *name;		/* "smtp", "imap", "pop3" */
	long long connections;
	long long connections_per_ip;
};

struct mp_outbound_settings {
	long long port;			/* remote SMTP port (25) */
	const char *tls;		/* "none", "opportunistic" */
	const char *source;		/* local address to connect from, "" any */
	const char *helo;		/* name in EHLO, "" = server.hostname */
	long long connect_timeout;
	long long command_timeout;
	long long data_timeout;
	long long max_mx;		/* MX hosts tried per attempt */
	/* per destination (docs/queue.md): a domain, or a relay host */
	long long destination_concurrency;	/* connections at once (20) */
	long long host_concurrency;	/* per MX host, 0 = no limit */
	const char *destination_rate;	/* "N/s", "N/m", "" = no limit */
	double destination_interval;	/* seconds between messages, from the rate */
	long long destination_dead_after;	/* failed connections in a row, 0 = never */
	long long destination_backoff;	/* how long a dead one is left alone */
};

struct mp_tls_settings {
	const char *cert;	/* "" = <state_dir>/tls/cert.pem */
	const char *key;
};

struct mp_smtp_settings {
	const char *bare_eol;	/* "reject" or "normalize" */
	int reject_long_lines;	/* text lines over 1000 octets: 552 */
	long long auth_failures;/* failed AUTHs before disconnect */
	long long greeting_delay;	/* seconds; early talkers get 554 */
	int vrfy;		/* answer VRFY from the user database */
};

/* One relay_networks entry: address and prefix length. */
struct mp_cidr {
	int family;
	unsigned char addr[16];
	int bits;
};

struct mp_server_settings {
	const char *hostname;
	const char *state_dir;
	const char *module_dir;
	const char *user;
	const char *mailstore;
	const char *auth;	/* the auth provider when several are loaded */
	int landlock;		/* confine the daemon with Landlock */
};

struct mp_limits {
	long long message_size;
	long long recipients;
	long long connections;
	long long connections_per_ip;
	long long errors;
	long long command_timeout;
	long long data_timeout;
	long long data_deadline;	/* whole message, however it trickles */
	long long line_length;
	long long auth_failures_per_ip;	/* failed logins per address in the
					 * window, all protocols; 0 off */
	long long auth_failures_window;	/* seconds */
};

struct mp_queue_settings {
	long long workers;
	int direct_delivery;		/* deliver local mail before the 250 */
	const char *sync;		/* "group" (syncfs shared) or "file" */
	long long retry_interval;	/* used when no retry module is loaded */
	long long warn_after;
	long long give_up_after;
	long long tmp_max_age;		/* queue/tmp files older: a crash's */
};

/* One whole configuration: settings, providers, loaded modules. */
struct mp_core_config {
	struct mp_cfg *cfg;
	struct mp_tls_settings tls;
	struct mp_smtp_settings smtp;
	struct mp_cidr *relay_nets;
	size_t nrelay_nets;
	void *tls_ctx;			/* SSL_CTX *, NULL until set up */
	char tls_cert[4096], tls_key[4096];
	struct mp_server_settings server;
	struct mp_limits limits;
	struct mp_queue_settings queue;
	const char **domains;
	size_t ndomains;
	struct mp_listen listen[32];
	size_t nlisten;
	struct mp_conn_limits pools[33];	/* [0] SMTP, then one per protocol */
	size_t npools;
	char queue_dir[4096];
	struct mp_modules modules;
	struct mp_outbound_settings outbound;
	void *tls_client_ctx;		/* SSL_CTX * for outbound */
	struct mp_auth auth;		/* ops NULL when no auth module */
	struct mp_loaded *deliver;
	struct mp_loaded *route, *resolve, *retry;	/* NULL when absent */
	struct mp_store store;		/* ops NULL when no store module */
	struct mp_metrics_settings metrics;	/* enabled 0 when absent */
	int log_json;				/* log.format = "json" */
};

/*
 * The configuration in force for this thread (reload.h): the snapshot
 * its session, delivery attempt or turn of work holds, else (the main
 * thread only) the newest one. Every `mp_core.x` in the daemon reads
 * through it, so a reload publishes a whole new configuration at once
 * and work in flight keeps its own. Any other thread reads it only
 * while it holds (mp_core_hold): a replaced snapshot is freed once no
 * hold counts it.
 */
extern struct mp_core_config mp_core_boot;	/* the start-up configuration */
extern _Thread_local struct mp_core_config *mp_core_held;
extern struct mp_core_config *_Atomic mp_core_now;
static inline struct mp_core_config *
mp_core_get(void)
{
	return mp_core_held ? mp_core_held :
	    atomic_load_explicit(&mp_core_now, memory_order_acquire);
}
#define mp_core (*mp_core_get())

/*
 * Load the config file with overrides, then the core settings; every
 * problem is added to problems. Returns 0 when the core settings are
 * usable (modules are loaded separately by mp_core_load_modules).
 */
int mp_core_configure(const char *file, char *const *overrides,
    size_t noverrides, struct mp_problems *problems);

/* Load modules and pick the active providers; problems appended. */
int mp_core_load_modules(struct mp_problems *problems);

void mp_core_shutdown(void);

/* Parse "192.0.2.0/24" or "::1"; 0 or -1. */
int mp_cidr_parse(const char *text, struct mp_cidr *out);
/* 1 if the textual address addr falls in c. */
int mp_cidr_match(const struct mp_cidr *c, const char *addr);
/* 1 if addr is in relay_networks. */
int mp_core_relay_allowed(const char *addr);

/* Is domain (any case) local: in `domains`, or known to the auth
 * provider's directory (auth.h domain_exists)? 1 yes, 0 no, -1 the
 * directory failed (the caller tempfails; *error_r says why). */
int mp_core_local_domain(const char *domain, const char **error_r);
/* The same, where a failed lookup must count as "not local". */
int mp_core_is_local_domain(const char *domain);

/* The host table handed to modules. */
extern const struct mp_host mp_host_table;

#endif
