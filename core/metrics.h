/*
 * core/metrics.h - the daemon's counters, gauges and histograms, and a
 * small HTTP/1.1 responder that serves them in the Prometheus text
 * format at GET /metrics on a listener of its own (top-level `metrics`
 * group; off when absent). Every counting point is one call with no
 * lock: plain atomics, so hooks in hot paths cost a few nanoseconds.
 * Labels come from small fixed sets (protocol, command, class, path),
 * never from client input, so the number of series stays bounded.
 * docs/operations.md lists every metric and its meaning.
 */
#ifndef MERPATI_METRICS_H
#define MERPATI_METRICS_H

#include <stddef.h>

struct mp_problems;
struct mp_auth;
struct mp_store;

struct mp_metrics_settings {
	int enabled;		/* the group is present */
	char address[64];
	long long port;
	int allow_remote;	/* a non-loopback address was asked for */
};

/* Read the top-level `metrics` group of the loaded config into out;
 * problems appended (a non-loopback address without allow_remote is
 * one). config is the libconfig config_t. 0 or -1. */
int mp_metrics_configure(const void *config, struct mp_metrics_settings *out,
    struct mp_problems *problems);

/* Bind the listener (before the privilege drop); 0, or -1 with err. */
int mp_metrics_bind(const struct mp_metrics_settings *s, char *err, size_t errsize);
/* Start the responder thread when bound (queue_dir is scanned for the
 * queue gauges at each scrape); 0 or -1. */
int mp_metrics_start(const char *queue_dir);
void mp_metrics_stop(void);

/* ---- counting points ----------------------------------------------- */

enum mp_conn_event { MP_CONN_ACCEPTED, MP_CONN_REFUSED, MP_CONN_CLOSED };
/* A connection on a listener of protocol ("smtp", "imap", "pop3"). */
void mp_metric_conn(const char *protocol, enum mp_conn_event ev);
/* An SMTP command verb as the client sent it (any case). */
void mp_metric_smtp_command(const char *line);
/* An SMTP reply code sent to a client. */
void mp_metric_smtp_reply(int code);
/*
 * A protocol module's command and the outcome of its final reply
 * (host->count_command, module.h): command matched, any case, against
 * the protocol's fixed list ("other" when absent or NULL); outcome one
 * of the protocol's set (imap: ok, no, bad; pop3: ok, err). 0 counted,
 * -1 ignored (a protocol without a list, an outcome outside its set).
 */
int mp_metric_command(const char *protocol, const char *command,
    const char *outcome);
/* The label command is counted under for protocol: a name from the
 * fixed list, or "other"; NULL for a protocol without a list. */
const char *mp_metric_command_label(const char *protocol, const char *command);
/* A message committed to the queue. */
void mp_metric_accepted(void);

enum mp_delivery_status { MP_DELIVERY_SENT, MP_DELIVERY_DEFERRED, MP_DELIVERY_BOUNCED };
/* One recipient's delivery attempt outcome; arrival is the message's
 * arrival time (for the arrival-to-delivery histogram when sent). */
void mp_metric_delivery(int remote, enum mp_delivery_status st, long long arrival);
/* A TLS handshake, as server or client, that succeeded or failed. */
void mp_metric_tls(int client, int ok);
/* A password check: rc 1 success, 0 failure, -1 error. protocol NULL:
 * the module in the thread's log context ("imap", "pop3"), else "smtp". */
void mp_metric_auth(const char *protocol, int rc);
/* A store or deliver operation that took seconds. */
enum mp_store_op { MP_STORE_OPEN, MP_STORE_DELIVER };
void mp_metric_store(enum mp_store_op op, double seconds);
/* A module call that returned an error (MP_ERROR or an unknown code). */
void mp_metric_module_error(const char *module);

/* A module call's result: counted as a module error (for the module
 * last entered on this thread) unless OK, DECLINED, TEMPFAIL, PERMFAIL. */
void mp_metric_module_rc(int rc);

/* How long this thread's last store or deliver operation took. */
double mp_metric_last_store(void);

/* Monotonic seconds, for timing an operation around a call. */
double mp_metric_clock(void);

/* The auth and store providers handed to protocol modules
 * (host->auth(), host->store()), wrapped so their password checks and
 * mailbox opens are counted too; NULL stays NULL. */
const struct mp_auth *mp_metrics_auth(const struct mp_auth *real);
const struct mp_store *mp_metrics_store(const struct mp_store *real);
/* A module instance with this ctx ends (loader.c, before fini): its
 * wrappers go, so a later instance at the same address is not taken
 * for it. */
void mp_metrics_forget(const void *ctx);

/* The whole exposition into a malloc()ed string (the tests and the
 * responder use it); queue_dir is scanned for the queue gauges. */
char *mp_metrics_render(const char *queue_dir, size_t *len_r);

#endif
