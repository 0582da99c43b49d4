/*
 * core/settings.h - the core's own settings (server, domains, listen,
 * limits, queue), read through the same declarative option tables that
 * modules use, and the one process-wide `mp_core` state.
 */
#ifndef MERPATI_SETTINGS_H
#define MERPATI_SETTINGS_H

#include <merpati/merpati.h>

#include "config.h"
#include "loader.h"

enum mp_listen_auth { LISTEN_AUTH_NONE, LISTEN_AUTH_OPTIONAL, LISTEN_AUTH_REQUIRED };
enum mp_listen_tls { LISTEN_TLS_NONE, LISTEN_TLS_STARTTLS, LISTEN_TLS_IMPLICIT };

struct mp_listen {
	const char *name;	/* "smtp", "submission", "smtps" */
	const char *address;
	long long port;
	const char *auth_text;
	const char *tls_text;
	enum mp_listen_auth auth;
	enum mp_listen_tls tls;
	int fd;
};

struct mp_server_settings {
	const char *hostname;
	const char *state_dir;
	const char *module_dir;
	const char *user;
	const char *mailstore;
};

struct mp_limits {
	long long message_size;
	long long recipients;
	long long connections;
	long long connections_per_ip;
	long long errors;
	long long command_timeout;
	long long data_timeout;
	long long line_length;
};

struct mp_queue_settings {
	long long workers;
	long long retry_interval;	/* used when no retry module is loaded */
	long long give_up_after;
};

struct mp_core {
	struct mp_cfg *cfg;
	struct mp_server_settings server;
	struct mp_limits limits;
	struct mp_queue_settings queue;
	const char **domains;
	size_t ndomains;
	struct mp_listen listen[8];
	size_t nlisten;
	char queue_dir[4096];
	struct mp_modules modules;
	struct mp_auth auth;		/* ops NULL when no auth module */
	struct mp_loaded *deliver;
};

extern struct mp_core mp_core;

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

/* 1 if domain (any case) is in `domains`. */
int mp_core_is_local_domain(const char *domain);

/* The host table handed to modules. */
extern const struct mp_host mp_host_table;

#endif
