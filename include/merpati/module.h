/*
 * merpati/module.h - the module ABI: descriptor, host table, shared types.
 *
 * This is the only contract between merpatid and a module. A module
 * exports exactly one symbol, `merpati_module` (see MP_MODULE_EXPORT),
 * and includes nothing from merpati but <merpati/...> headers.
 *
 * The ABI contract (docs/modules.md, "ABI 2"):
 *  1. Every struct that crosses the boundary starts with
 *     `uint32_t struct_size`, its writer's sizeof (struct mp_module has
 *     abi_version first, then struct_size). Who allocates a struct sets
 *     the size: the caller for an out-parameter (status_r, info_r, a
 *     reader to fill), the creator for everything else.
 *  2. An array of such structs carries its element size in every
 *     element (all alike); a receiver steps through it with MP_ELEM,
 *     never with v[i], so either side may have the longer struct.
 *  3. Members are only ever appended, at the end of a struct, after
 *     ABI 2.0 marked "since 2.x". Changing, reordering or removing one
 *     bumps MP_ABI_VERSION, which the loader refuses to mix.
 *  4. A writer writes only the members the other side's struct_size
 *     covers (MP_HAS); a reader of a struct that came from the other
 *     side takes members it lacks as defaults (MP_SIZED_READ).
 *  5. A host member marked "since 2.x" is tested with MP_HOST_HAS
 *     before use. Ops members that may be NULL say so ("may be NULL");
 *     the host checks those before calling and refuses a module whose
 *     other members are NULL. Every member appended after 2.0 may be
 *     NULL.
 * Members marked "since 2.1" came with the filter hook points and the
 * generic DNS lookup; "since 2.2" with the protocol modules' command
 * counts; every other member is ABI 2.0.
 */
#ifndef MERPATI_MODULE_H
#define MERPATI_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define MP_ABI_VERSION 2

/* True when a struct of the given size includes member m. */
#define MP_HAS(ptr, size_field, m) \
	((size_t)(size_field) >= offsetof(__typeof__(*(ptr)), m) + sizeof((ptr)->m))

/* True when the host table in scope as `host` has member m (rule 5). */
#define MP_HOST_HAS(m) \
	((size_t)host->struct_size >= offsetof(struct mp_host, m) + \
	    sizeof(((const struct mp_host *)0)->m))

/* Element i of an array of sized structs, stepping by the size its
 * writer put in the elements (rule 2). */
#define MP_ELEM(v, i) \
	((__typeof__(v))(const void *)((const char *)(v) + \
	    (size_t)(i) * (v)->struct_size))

/*
 * Rule 4's reader: dst, a struct variable holding the reader's defaults,
 * takes the members *src has (its struct_size bytes, never more than
 * dst's own); dst.struct_size becomes the reader's size, as dst now
 * holds every member the reader knows.
 */
#define MP_SIZED_READ(dst, src) \
	mp_sized_copy(&(dst), sizeof(dst), (src), (src)->struct_size, \
	    offsetof(__typeof__(dst), struct_size))

/*
 * Rule 4's writer: the other side's *dst (an out-parameter it sized)
 * takes the members of our *src that it has room for; dst->struct_size
 * stays as the other side set it.
 */
#define MP_SIZED_WRITE(dst, src) \
	mp_sized_copy((dst), (dst)->struct_size, (src), sizeof(*(src)), \
	    offsetof(__typeof__(*(dst)), struct_size))

/* Both of the above: the first min(src_size, dst_size) bytes of src
 * over dst, then dst_size as dst's size field (at size_at). */
static inline void
mp_sized_copy(void *dst, size_t dst_size, const void *src, size_t src_size,
    size_t size_at)
{
	uint32_t size = (uint32_t)dst_size;

	memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
	memcpy((char *)dst + size_at, &size, sizeof(size));
}

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
	uint32_t struct_size;
	int reply;		/* SMTP reply code, e.g. 250, 451, 550 */
	char enhanced[16];	/* "2.0.0" */
	char text[256];		/* human text, no CR/LF */
};

/* A status initialiser: struct mp_status st = MP_STATUS(250, "2.0.0", "OK"); */
#define MP_STATUS(reply, enhanced, text) \
	{ sizeof(struct mp_status), (reply), enhanced, text }

/* src into dst (size bytes), cut to fit and NUL-terminated. */
static inline void
mp_strfit(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; i + 1 < size && src[i]; i++)
		dst[i] = src[i];
	dst[i] = '\0';
}

/* Fill a status the caller sized (status_r), member by member. */
static inline void
mp_status_set(struct mp_status *st, int reply, const char *enhanced,
    const char *text)
{
	st->reply = reply;
	mp_strfit(st->enhanced, sizeof(st->enhanced), enhanced);
	mp_strfit(st->text, sizeof(st->text), text);
}

/*
 * A read-only byte stream (a queued message, a stored mail). read()
 * returns bytes read, 0 at end, -1 on error with errno set. size is the
 * total length when known, else -1. Borrowed for the call it is given in.
 */
struct mp_reader {
	uint32_t struct_size;
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
 * Write rows with MP_OPT and end the table with MP_OPT_END, so that
 * every row carries its size (rule 2).
 */
struct mp_option {
	uint32_t struct_size;
	const char *name;
	enum mp_opt_type type;
	size_t offset;		/* offsetof() into the module's settings struct */
	const char *def;
	long long min, max;
};

#define MP_OPT(name, type, offset, def, min, max) \
	{ sizeof(struct mp_option), (name), (type), (offset), (def), (min), (max) }
#define MP_OPT_END { .struct_size = sizeof(struct mp_option) }

/* ---- the host table ---------------------------------------------------- */

struct mp_auth;		/* an active auth provider: ops + ctx (auth.h) */
struct mp_store;	/* the active mailstore: ops + ctx (store.h) */
struct mp_conn;		/* a protocol session's connection (protocol.h) */
struct mp_conn_info;
struct mp_txn;		/* an SMTP transaction being filtered (filter.h) */
struct mp_txn_info;	/* what a filter hook knows of it (filter.h) */
struct mp_dns_answer;	/* a DNS lookup's outcome (resolve.h) */

/*
 * What the host offers a module. Appended to, never reordered. Every
 * member below is ABI 2.0 and present in any host that loads the
 * module; a member appended later is marked "since 2.x" and tested with
 * MP_HOST_HAS(member) before use. None is NULL. All members may be
 * called from any thread.
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

	/*
	 * SASL PLAIN (RFC 4616), parsed one way for SMTP, IMAP and POP3:
	 * buf is the decoded response (len bytes, NULs included),
	 * [authzid] NUL authcid NUL passwd. The authcid goes to user and
	 * the password to pass, both NUL-terminated. Refused (-1): a
	 * missing field, an empty authcid, a NUL in the password (so a
	 * trailing NUL), an authzid other than the authcid (no proxy
	 * logins), a field that does not fit. 0 when parsed.
	 */
	int (*sasl_plain)(const char *buf, size_t len, char *user,
	    size_t usize, char *pass, size_t psize);
	/*
	 * The one rule for whether a session may send a password: under
	 * TLS, or on loopback when the listener's plaintext_auth setting
	 * allows it (RFC 2595 3.1, RFC 4954 4). 1 may, 0 may not.
	 */
	int (*auth_allowed)(const struct mp_conn_info *info,
	    int plaintext_auth);

	/* ---- since 2.1 -------------------------------------------------- */

	/*
	 * A DNS lookup through the active resolver's lookup (resolve.h):
	 * same results and answer layout. MP_TEMPFAIL with status TEMPFAIL
	 * when no loaded resolver offers lookups.
	 */
	int (*dns_lookup)(const char *name, int type, unsigned char *buf,
	    size_t size, struct mp_dns_answer *answer_r);

	/*
	 * Calls on the SMTP transaction a filter hook was given (filter.h).
	 * Valid only during that hook call, from its thread. Each returns
	 * MP_OK, or MP_ERROR when the call is not allowed at this hook or
	 * an argument is malformed (a header name with ':' or space, a
	 * value with bare CR/LF, an address that does not parse).
	 */
	const struct mp_txn_info *(*txn_info)(struct mp_txn *txn);
	/* This module's own pointer for the session (NULL at first), e.g.
	 * a milter connection; the module frees it in session_end. */
	void **(*txn_slot)(struct mp_txn *txn);
	/*
	 * Named results one filter leaves for later ones in the same
	 * transaction ("spf", "dkim"; docs/modules.md lists them). A note
	 * set at connect or HELO lasts the session; others the transaction.
	 * txn_note returns NULL when unset.
	 */
	int (*txn_note_set)(struct mp_txn *txn, const char *name,
	    const char *value);
	const char *(*txn_note)(struct mp_txn *txn, const char *name);
	/* Headers, at end_of_headers, end_of_data and before_queue: insert
	 * before the index-th header (0: at the top; SIZE_MAX: after the
	 * last); change the nth (1-based) header called name (any case),
	 * value NULL deleting it, a missing one being MP_DECLINED. */
	int (*txn_header_insert)(struct mp_txn *txn, size_t index,
	    const char *name, const char *value);
	int (*txn_header_change)(struct mp_txn *txn, const char *name,
	    unsigned nth, const char *value);
	/* Envelope and body, at end_of_data only. */
	int (*txn_sender_set)(struct mp_txn *txn, const char *sender);
	int (*txn_rcpt_add)(struct mp_txn *txn, const char *rcpt);
	int (*txn_rcpt_delete)(struct mp_txn *txn, const char *rcpt);
	int (*txn_body_replace)(struct mp_txn *txn, struct mp_reader *body);
	/* The message is accepted (250) and then put on hold in the queue
	 * (never tried or expired until `merpati queue release`), or
	 * dropped; from end_of_headers on. */
	int (*txn_hold)(struct mp_txn *txn, const char *reason);
	int (*txn_discard)(struct mp_txn *txn);

	/*
	 * The daemon's limit on failed logins per client address, counted
	 * across connections and protocols (limits.auth_failures_per_ip in
	 * limits.auth_failures_window; docs/antispam.md), for protocol
	 * modules that check passwords. Before checking one from peer (the
	 * conn_info peer): 1 when it may be checked, a place being held
	 * for the check so parallel guesses cannot overshoot the limit (it
	 * may wait up to 10 s for a place while other checks from peer are
	 * in progress); 0 when the address is over the limit: refuse
	 * without checking and end the session. After the check, auth_limit_leave with
	 * failed 1 for a wrong password, 0 for anything else (success, a
	 * temporary failure). May run concurrently from any session.
	 */
	int (*auth_limit_enter)(const char *peer);
	void (*auth_limit_leave)(const char *peer, int failed);

	/* ---- since 2.2 -------------------------------------------------- */

	/*
	 * For protocol modules, from their session thread: one client
	 * command and the outcome of its final reply (IMAP: the tagged
	 * one; POP3: the +OK/-ERR line), counted once per command, pre-
	 * authentication commands and LOGOUT/QUIT included, for the
	 * metrics (docs/operations.md). The protocol is the calling
	 * module's. command is the name as the client sent it, any case,
	 * "UID FETCH" style for IMAP's UID forms, NULL or "" when none
	 * could be read; the host matches it against a fixed list per
	 * protocol and counts anything else as "other", so client input
	 * never becomes a label. outcome is one of the protocol's fixed
	 * set: "ok", "no", "bad" (IMAP), "ok", "err" (POP3). A call with
	 * an outcome outside the set, from a protocol the host keeps no
	 * list for, or from outside a protocol session is ignored.
	 */
	void (*count_command)(const char *command, const char *outcome);
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
	/* Release everything init made. May be NULL (the only member here
	 * that may; kinds not in `kinds` have NULL tables, see below). */
	void (*fini)(void *ctx);

	/*
	 * One table per kind in `kinds`; NULL for the others. Which members
	 * of a table may be NULL is said at each ops struct: auth.h
	 * (user_add, user_del, user_passwd, user_list) and store.h
	 * (change_fd, import, flags_change, folder_keywords, storage_init).
	 * No other ops member may be NULL; the loader refuses a module
	 * where one is.
	 */
	const struct mp_auth_ops *auth;
	const struct mp_route_ops *route;
	const struct mp_resolve_ops *resolve;
	const struct mp_retry_ops *retry;
	const struct mp_deliver_ops *deliver;
	const struct mp_store_ops *store;
	const struct mp_filter_ops *filter;
	const struct mp_protocol_ops *protocol;

	/* ---- since 2.1 -------------------------------------------------- */
	/*
	 * May be NULL. A configuration reload (SIGHUP, `merpati reload`)
	 * changed this module's settings: validate conf and apply it to
	 * the running instance. Runs in the main thread, after the
	 * privilege drop, while other threads may be inside this module's
	 * ops, and only once every other check of the new configuration
	 * passed. MP_OK: ctx now serves with conf, for every caller (a
	 * session in flight included); conf and the strings conf_options
	 * gives from it stay valid while the daemon runs. Anything else, with *error_r: ctx is
	 * unchanged and the reload is refused with that reason. Without it
	 * the host initialises a new instance with init (the running one
	 * serves the sessions already in flight), and refuses the reload
	 * when that init fails.
	 */
	int (*reload)(void *ctx, const struct mp_conf *conf, const char **error_r);
};

/* Define the module's single exported symbol. */
#define MP_MODULE_EXPORT \
	__attribute__((visibility("default"))) \
	extern const struct mp_module merpati_module; \
	__attribute__((visibility("default"))) \
	const struct mp_module merpati_module

#define MP_MODULE_SYMBOL "merpati_module"

#endif
