/*
 * merpati/module.h - the module ABI: descriptor, host table, shared types.
 *
 * This is the only contract between merpatid and a module. A module
 * exports exactly one symbol, `merpati_module` (see MP_MODULE_EXPORT),
 * and includes nothing from merpati but <merpati/...> headers.
 *
 * Compatibility rules (docs/modules.md): every struct that crosses the
 * boundary starts with its size; members are only ever appended; a
 * reader checks the size (MP_HAS) before touching a member added after
 * the first release. Changing or removing a member bumps MP_ABI_VERSION.
 */
#ifndef MERPATI_MODULE_H
#define MERPATI_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define MP_ABI_VERSION 1

/* True when a struct of the given size includes member m. */
#define MP_HAS(ptr, size_field, m) \
	((size_t)(size_field) >= offsetof(__typeof__(*(ptr)), m) + sizeof((ptr)->m))

#if defined(__GNUC__)
#define MP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MP_PRINTF(f, a)
#endif

/* One result code for the whole API. Lookups return 1 / 0 / -1 instead. */
enum mp_result {
	MP_OK = 0,
	MP_DECLINED = -1,	/* not mine: ask the next provider */
	MP_TEMPFAIL = -2,	/* try again later (4xx) */
	MP_PERMFAIL = -3,	/* will never work (5xx) */
	MP_ERROR = -4		/* internal error, logged; treated as TEMPFAIL */
};

/* Module kinds; one module may implement several. */
enum mp_kind {
	MP_KIND_AUTH = 1u << 0,
	MP_KIND_ROUTE = 1u << 1,
	MP_KIND_RESOLVE = 1u << 2,
	MP_KIND_RETRY = 1u << 3,
	MP_KIND_DELIVER = 1u << 4,
	MP_KIND_STORE = 1u << 5,
	MP_KIND_FILTER = 1u << 6,
	MP_KIND_PROTOCOL = 1u << 7
};

/* syslog(3) levels, so modules need not include <syslog.h>. */
enum mp_log_level {
	MP_LOG_ERR = 3, MP_LOG_WARNING = 4, MP_LOG_NOTICE = 5,
	MP_LOG_INFO = 6, MP_LOG_DEBUG = 7
};

/*
 * A delivery or policy outcome with its RFC 3463 enhanced code, carried
 * end to end so that replies, logs and bounces say the same thing.
 */
struct mp_status {
	int reply;		/* SMTP reply code, e.g. 250, 451, 550 */
	char enhanced[16];	/* "2.0.0" */
	char text[256];		/* human text, no CR/LF */
};

/*
 * A read-only byte stream (a queued message, a stored mail). read()
 * returns bytes read, 0 at end, -1 on error with errno set. size is the
 * total length when known, else -1. Borrowed for the call it is given in.
 */
struct mp_reader {
	ssize_t (*read)(struct mp_reader *r, void *buf, size_t len);
	off_t size;
	void *priv;
};

/* The envelope of one queued message; borrowed for the call. */
struct mp_envelope {
	uint32_t struct_size;
	const char *queue_id;
	const char *sender;		/* "" for the null sender <> */
	const char *const *rcpts;	/* all recipients */
	size_t nrcpt;
	time_t arrival;
	const char *helo;		/* may be NULL (local submission) */
	const char *client_addr;	/* may be NULL */
	const char *auth_user;		/* NULL unless authenticated */
};

/* ---- configuration ---------------------------------------------------- */

struct mp_conf;		/* opaque: the module's group under `modules` */

enum mp_opt_type {
	MP_OPT_STRING,		/* const char *: owned by the host */
	MP_OPT_PATH,		/* const char *: resolved against the config dir */
	MP_OPT_INT,		/* long long */
	MP_OPT_BOOL,		/* int, 0 or 1 */
	MP_OPT_DURATION		/* long long seconds; config says "15m", "4h" */
};

/*
 * One row of a module's declarative option table, ended by a row with
 * name == NULL. def is the default written as it would be in the config
 * (NULL: the option is required). min/max bound INT and DURATION when
 * max > min. The host rejects unknown keys, except `path` and
 * `listen`, which are its own (module file, protocol sockets).
 */
struct mp_option {
	const char *name;
	enum mp_opt_type type;
	size_t offset;		/* offsetof() into the module's settings struct */
	const char *def;
	long long min, max;
};

/* ---- the host table ---------------------------------------------------- */

struct mp_auth;		/* an active auth provider: ops + ctx (auth.h) */
struct mp_store;	/* the active mailstore: ops + ctx (store.h) */
struct mp_conn;		/* a protocol session's connection (protocol.h) */
struct mp_conn_info;
struct mp_txn;		/* an SMTP transaction being filtered (filter.h) */

/*
 * What the host offers a module. Appended to, never reordered; test
 * MP_HAS(host, host->struct_size, member) before using a member that
 * docs/modules.md marks as newer than ABI 1.0. All members may be called
 * from any thread.
 */
struct mp_host {
	uint32_t abi_version;
	uint32_t struct_size;

	/* Log one line; the host adds the module name and queue id. */
	void (*log)(int level, const char *fmt, ...) MP_PRINTF(2, 3);
	/* The same, with ": strerror(errno)" appended. */
	void (*log_errno)(int level, const char *fmt, ...) MP_PRINTF(2, 3);

	/*
	 * Fill settings from conf by table. Returns MP_OK, or MP_ERROR with
	 * *error_r naming the setting and the problem.
	 */
	int (*conf_options)(const struct mp_conf *conf,
	    const struct mp_option *table, void *settings,
	    const char **error_r);

	/* Allocator for what a module hands to the host and the host frees. */
	void *(*alloc)(size_t size);
	void (*free)(void *ptr);

	const char *(*hostname)(void);	/* server.hostname */
	time_t (*now)(void);
	/* 1 if mail for this domain is delivered locally (domains list). */
	int (*is_local_domain)(const char *domain);

	/*
	 * Queue a new message (bounces, notifications). The message is on
	 * disk and fsync()ed when MP_OK is returned; id_r gets its queue id.
	 */
	int (*queue_inject)(const char *sender, const char *const *rcpts,
	    size_t nrcpt, struct mp_reader *msg, char *id_r, size_t id_size,
	    const char **error_r);

	/* The active auth provider, NULL when none is loaded. */
	const struct mp_auth *(*auth)(void);

	/*
	 * Config traversal, for settings an option table cannot express
	 * (lists of rules). Each returns NULL when the member or element is
	 * absent; a group found this way can be read with conf_options.
	 */
	const struct mp_conf *(*conf_member)(const struct mp_conf *group,
	    const char *name);
	const struct mp_conf *(*conf_elem)(const struct mp_conf *list,
	    unsigned index);
	/* Elements of a list, array or group; 0 for a scalar or NULL. */
	unsigned (*conf_length)(const struct mp_conf *c);
	/* The value if c is a string, else NULL. */
	const char *(*conf_string)(const struct mp_conf *c);
	/* "modules.route_regex.rules.[2]": for error messages. */
	void (*conf_where)(const struct mp_conf *c, char *buf, size_t size);

	/* The active mailstore (server.mailstore), NULL when none. */
	const struct mp_store *(*store)(void);

	/*
	 * Connection calls for protocol sessions (protocol.h). Reads wait
	 * at most the session timeout. conn_read_line strips CRLF or LF
	 * and returns an enum mp_conn_result; conn_read returns bytes read,
	 * 0 at EOF, -1 on error or timeout. Output is buffered and flushed
	 * by conn_flush or before any read that has to wait.
	 */
	int (*conn_read_line)(struct mp_conn *c, char *buf, size_t size,
	    size_t *len_r);
	ssize_t (*conn_read)(struct mp_conn *c, void *buf, size_t size);
	int (*conn_write)(struct mp_conn *c, const void *buf, size_t len);
	int (*conn_printf)(struct mp_conn *c, const char *fmt, ...)
	    MP_PRINTF(2, 3);
	int (*conn_flush)(struct mp_conn *c);
	/* Bytes received and not read yet (pipelined input). */
	size_t (*conn_pending)(struct mp_conn *c);
	/* STARTTLS: flush, discard buffered input, handshake. 0 or -1. */
	int (*conn_start_tls)(struct mp_conn *c);
	const struct mp_conn_info *(*conn_info)(struct mp_conn *c);
	void (*conn_set_timeout)(struct mp_conn *c, long long seconds);

	/* Base64 (RFC 4648) for SASL: the decoded length (the result may
	 * hold NULs; it is NUL-terminated), or -1 when bad or too big. */
	int (*base64_decode)(const char *in, char *out, size_t size);
	void (*base64_encode)(const void *in, size_t len, char *out,
	    size_t size);

	/* The name of a group member (NULL for a list element), and the
	 * value of an integer setting (0, or -1 if c is not an integer). */
	const char *(*conf_name)(const struct mp_conf *c);
	int (*conf_int)(const struct mp_conf *c, long long *value_r);

	/*
	 * Wait until the client sent something (1), other_fd is readable
	 * (2; -1 for none), or timeout_ms passed (0); -1 on error. For IMAP
	 * IDLE: wake on a mailbox change and on the client alike.
	 */
	int (*conn_wait)(struct mp_conn *c, int other_fd, int timeout_ms);

	/*
	 * Group commit: returns once a syncfs() of dir's file system that
	 * began after the call has completed, so everything written there
	 * before the call is on disk. Concurrent callers share one
	 * syncfs(). 0, or -1 with errno. For stores and deliverers that
	 * make many small files durable.
	 */
	int (*sync_group)(const char *dir);
};

/* ---- the descriptor ------------------------------------------------------ */

struct mp_auth_ops;
struct mp_route_ops;
struct mp_resolve_ops;
struct mp_retry_ops;
struct mp_deliver_ops;
struct mp_store_ops;
struct mp_filter_ops;
struct mp_protocol_ops;

struct mp_module {
	uint32_t abi_version;	/* MP_ABI_VERSION the module was built with */
	uint32_t struct_size;	/* sizeof(struct mp_module) at build time */
	const char *name;	/* must equal its group name under `modules` */
	uint32_t kinds;		/* enum mp_kind bits */

	/*
	 * Validate conf and set up. Runs once, before the daemon drops
	 * privileges, in the main thread. Returns MP_OK with *ctx_r set, or
	 * MP_ERROR with *error_r saying which setting is wrong and why.
	 */
	int (*init)(const struct mp_host *host, const struct mp_conf *conf,
	    void **ctx_r, const char **error_r);
	/* Release everything init made. May be NULL. */
	void (*fini)(void *ctx);

	/* One table per kind in `kinds`; NULL for the others. */
	const struct mp_auth_ops *auth;
	const struct mp_route_ops *route;
	const struct mp_resolve_ops *resolve;
	const struct mp_retry_ops *retry;
	const struct mp_deliver_ops *deliver;
	const struct mp_store_ops *store;
	const struct mp_filter_ops *filter;
	const struct mp_protocol_ops *protocol;
};

/* Define the module's single exported symbol. */
#define MP_MODULE_EXPORT \
	__attribute__((visibility("default"))) \
	extern const struct mp_module merpati_module; \
	__attribute__((visibility("default"))) \
	const struct mp_module merpati_module

#define MP_MODULE_SYMBOL "merpati_module"

#endif
