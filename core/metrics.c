/*
 * core/metrics.c - the metrics registry and its HTTP responder (see
 * metrics.h).
 *
 * The registry is static arrays of atomic counters; series labelled by
 * a name (protocol, module) live in small slot tables filled on first
 * use and never emptied, so a reader needs no lock. Histograms keep
 * cumulative-at-render buckets and a sum in microseconds.
 *
 * The responder is one thread serving one request at a time: requests
 * are bounded in size (4 KiB) and time (2 s per connection), anything
 * but GET gets 405, any path but /metrics 404, a malformed request 400;
 * the connection is closed after each reply (Connection: close), so a
 * hostile client holds the responder for at most those 2 s.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libconfig.h>
#include <merpati/auth.h>
#include <merpati/store.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "util.h"

#define REQUEST_MAX 4096
#define REQUEST_MS 2000
#define SLOT_NAME 32

/* ---- labelled slots ---------------------------------------------------- */

enum { PROTO_ACCEPTED, PROTO_REFUSED, PROTO_CLOSED, PROTO_AUTH_OK,
	PROTO_AUTH_FAIL, PROTO_AUTH_ERROR, PROTO_COUNTERS };

struct slot {
	char name[SLOT_NAME];
	_Atomic uint64_t v[PROTO_COUNTERS];
};

struct slots {
	struct slot s[32];
	_Atomic size_t n;
	pthread_mutex_t add;
};

static struct slots protocols = { .add = PTHREAD_MUTEX_INITIALIZER };
static struct slots modules = { .add = PTHREAD_MUTEX_INITIALIZER };

/* The slot for name, added on first use; the last slot ("other") takes
 * the overflow, so a table never grows past its size. */
static struct slot *
slot_of(struct slots *t, const char *name)
{
	size_t n = atomic_load(&t->n);
	struct slot *found = NULL;

	for (size_t i = 0; i < n; i++)
		if (strcmp(t->s[i].name, name) == 0)
			return &t->s[i];
	pthread_mutex_lock(&t->add);
	n = atomic_load(&t->n);
	for (size_t i = 0; i < n && !found; i++)
		if (strcmp(t->s[i].name, name) == 0)
			found = &t->s[i];
	if (!found && n < sizeof(t->s) / sizeof(t->s[0])) {
		found = &t->s[n];
		mp_strlcpy(found->name, n + 1 == sizeof(t->s) / sizeof(t->s[0]) ?
		    "other" : name, sizeof(found->name));
		atomic_store(&t->n, n + 1);
	}
	if (!found)
		found = &t->s[n - 1];
	pthread_mutex_unlock(&t->add);
	return found;
}

/* ---- histograms -------------------------------------------------------- */

static const double delivery_bounds[] = { 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30,
	60, 300, 900, 3600, 14400, 86400 };
static const double store_bounds[] = { 0.0005, 0.001, 0.005, 0.01, 0.05,
	0.1, 0.5, 1, 5 };
#define NBOUNDS(a) (sizeof(a) / sizeof(a[0]))

struct histogram {
	const double *bounds;
	size_t nbounds;
	_Atomic uint64_t bucket[16];	/* per bound, then +Inf; not cumulative */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

static struct histogram delivery_hist[2] = {
	{ .bounds = delivery_bounds, .nbounds = NBOUNDS(delivery_bounds) },
	{ .bounds = delivery_bounds, .nbounds = NBOUNDS(delivery_bounds) },
};
static struct histogram store_hist[2] = {
	{ .bounds = store_bounds, .nbounds = NBOUNDS(store_bounds) },
	{ .bounds = store_bounds, .nbounds = NBOUNDS(store_bounds) },
};

static void
observe(struct histogram *h, double seconds)
{
	size_t i = 0;

	if (seconds < 0)
		seconds = 0;
	while (i < h->nbounds && seconds > h->bounds[i])
		i++;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_us, (uint64_t)(seconds * 1e6));
}

/* ---- plain counters ---------------------------------------------------- */

static const char *const smtp_verbs[] = { "HELO", "EHLO", "MAIL", "RCPT",
	"DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
	"STARTTLS", "AUTH", "other" };
#define NVERBS (sizeof(smtp_verbs) / sizeof(smtp_verbs[0]))

static _Atomic uint64_t smtp_commands[NVERBS];
static _Atomic uint64_t smtp_replies[6];		/* by first digit */
static _Atomic uint64_t accepted;
static _Atomic uint64_t deliveries[2][3];		/* [remote][status] */
static _Atomic uint64_t tls_handshakes[2][2];		/* [client][ok] */

void
mp_metric_conn(const char *protocol, enum mp_conn_event ev)
{
	int k = ev == MP_CONN_ACCEPTED ? PROTO_ACCEPTED :
	    ev == MP_CONN_REFUSED ? PROTO_REFUSED : PROTO_CLOSED;

	atomic_fetch_add(&slot_of(&protocols, protocol)->v[k], 1);
}

void
mp_metric_smtp_command(const char *line)
{
	size_t len = strcspn(line, " \t");
	size_t i;

	for (i = 0; i + 1 < NVERBS; i++)
		if (strlen(smtp_verbs[i]) == len &&
		    strncasecmp(smtp_verbs[i], line, len) == 0)
			break;
	atomic_fetch_add(&smtp_commands[i], 1);
}

void
mp_metric_smtp_reply(int code)
{
	int c = code / 100;

	atomic_fetch_add(&smtp_replies[c >= 2 && c <= 5 ? c : 0], 1);
}

void mp_metric_accepted(void) { atomic_fetch_add(&accepted, 1); }

/* ---- protocol modules' commands (host->count_command) ------------------- */

/* RFC 9051 section 6 and RFC 3501 (CHECK, LSUB), ID (RFC 2971), and the
 * UID forms merpati answers (UID EXPUNGE: RFC 4315). */
static const char *const imap_commands[] = { "APPEND", "AUTHENTICATE",
	"CAPABILITY", "CHECK", "CLOSE", "COPY", "CREATE", "DELETE", "ENABLE",
	"EXAMINE", "EXPUNGE", "FETCH", "ID", "IDLE", "LIST", "LOGIN",
	"LOGOUT", "LSUB", "MOVE", "NAMESPACE", "NOOP", "RENAME", "SEARCH",
	"SELECT", "STARTTLS", "STATUS", "STORE", "SUBSCRIBE", "UNSELECT",
	"UNSUBSCRIBE", "UID COPY", "UID EXPUNGE", "UID FETCH", "UID MOVE",
	"UID SEARCH", "UID STORE", "other" };
static const char *const imap_outcomes[] = { "ok", "no", "bad" };

/* RFC 1939, RFC 2449 (CAPA), RFC 2595 (STLS), RFC 5034 (AUTH). */
static const char *const pop3_commands[] = { "USER", "PASS", "APOP",
	"AUTH", "STLS", "CAPA", "STAT", "LIST", "RETR", "DELE", "NOOP",
	"RSET", "TOP", "UIDL", "QUIT", "other" };
static const char *const pop3_outcomes[] = { "ok", "err" };

#define NOF(a) (sizeof(a) / sizeof(a[0]))

static _Atomic uint64_t imap_command_n[NOF(imap_commands)];
static _Atomic uint64_t imap_outcome_n[NOF(imap_outcomes)];
static _Atomic uint64_t pop3_command_n[NOF(pop3_commands)];
static _Atomic uint64_t pop3_outcome_n[NOF(pop3_outcomes)];

/* A protocol module's fixed label sets; each command list ends with
 * "other". */
struct command_set {
	const char *protocol;
	const char *const *commands;
	size_t ncommands;
	_Atomic uint64_t *command_n;
	const char *const *outcomes;
	size_t noutcomes;
	_Atomic uint64_t *outcome_n;
};

static const struct command_set command_sets[] = {
	{ "imap", imap_commands, NOF(imap_commands), imap_command_n,
	    imap_outcomes, NOF(imap_outcomes), imap_outcome_n },
	{ "pop3", pop3_commands, NOF(pop3_commands), pop3_command_n,
	    pop3_outcomes, NOF(pop3_outcomes), pop3_outcome_n },
};

static const struct command_set *
command_set_of(const char *protocol)
{
	for (size_t i = 0; protocol && i < NOF(command_sets); i++)
		if (strcmp(command_sets[i].protocol, protocol) == 0)
			return &command_sets[i];
	return NULL;
}

/* Index of command in set's list, the last ("other") when absent. */
static size_t
command_index(const struct command_set *set, const char *command)
{
	size_t i;

	for (i = 0; command && i + 1 < set->ncommands; i++)
		if (strcasecmp(set->commands[i], command) == 0)
			break;
	return command ? i : set->ncommands - 1;
}

const char *
mp_metric_command_label(const char *protocol, const char *command)
{
	const struct command_set *set = command_set_of(protocol);

	return set ? set->commands[command_index(set, command)] : NULL;
}

int
mp_metric_command(const char *protocol, const char *command,
    const char *outcome)
{
	const struct command_set *set = command_set_of(protocol);
	size_t o;

	if (set == NULL || outcome == NULL)
		return -1;
	for (o = 0; o < set->noutcomes; o++)
		if (strcmp(set->outcomes[o], outcome) == 0)
			break;
	if (o == set->noutcomes)
		return -1;
	atomic_fetch_add(&set->command_n[command_index(set, command)], 1);
	atomic_fetch_add(&set->outcome_n[o], 1);
	return 0;
}

void
mp_metric_delivery(int remote, enum mp_delivery_status st, long long arrival)
{
	remote = remote != 0;
	atomic_fetch_add(&deliveries[remote][st], 1);
	if (st == MP_DELIVERY_SENT && arrival > 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		observe(&delivery_hist[remote], (double)now.tv_sec - (double)arrival +
		    now.tv_nsec / 1e9);
	}
}

void
mp_metric_tls(int client, int ok)
{
	atomic_fetch_add(&tls_handshakes[client != 0][ok != 0], 1);
}

void
mp_metric_auth(const char *protocol, int rc)
{
	int k = rc == 1 ? PROTO_AUTH_OK : rc == 0 ? PROTO_AUTH_FAIL : PROTO_AUTH_ERROR;

	if (protocol == NULL)
		protocol = mp_log_module() ? mp_log_module() : "smtp";
	atomic_fetch_add(&slot_of(&protocols, protocol)->v[k], 1);
}

static _Thread_local double last_store;

double mp_metric_last_store(void) { return last_store; }

void
mp_metric_store(enum mp_store_op op, double seconds)
{
	last_store = seconds;
	observe(&store_hist[op == MP_STORE_DELIVER], seconds);
}

void
mp_metric_module_error(const char *module)
{
	atomic_fetch_add(&slot_of(&modules, module ? module : "unknown")->v[0], 1);
}

void
mp_metric_module_rc(int rc)
{
	if (rc != MP_OK && rc != MP_DECLINED && rc != MP_TEMPFAIL &&
	    rc != MP_PERMFAIL)
		mp_metric_module_error(mp_log_last_module());
}

double
mp_metric_clock(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ---- wrappers for what protocol modules call directly -------------------- */

/* A module gets the provider through host->auth() / host->store() and
 * calls its ops itself; the host hands out a copy of the ops table with
 * one member replaced by a counting one and the provider's own ctx, so
 * every other op reaches the provider unchanged. Each configuration
 * snapshot (reload.h) may have its own provider instance, hence a small
 * table; the counting op finds its provider by ctx. An instance's entry
 * is forgotten when it ends (mp_metrics_forget), its slot reused, and
 * entries never move: a session keeps the pointer it was handed while
 * its snapshot, and so the instance, lives. Past the table's size a
 * provider passes through uncounted. */

#define MAX_WRAPPED 64

struct auth_wrap {
	int used;
	struct mp_auth real;	/* a copy: the snapshot may go first */
	struct mp_auth_ops ops;
	struct mp_auth counted;
};

struct store_wrap {
	int used;
	struct mp_store real;
	struct mp_store_ops ops;
	struct mp_store counted;
};

/* Under wrap_lock, readers included: forgetting rewrites entries. */
static struct auth_wrap auth_wraps[MAX_WRAPPED];
static struct store_wrap store_wraps[MAX_WRAPPED];
static pthread_mutex_t wrap_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct mp_auth_ops *
auth_real_ops(void *ctx)
{
	const struct mp_auth_ops *ops = NULL;

	pthread_mutex_lock(&wrap_lock);
	for (size_t i = 0; i < MAX_WRAPPED && !ops; i++)
		if (auth_wraps[i].used && auth_wraps[i].real.ctx == ctx)
			ops = auth_wraps[i].real.ops;
	pthread_mutex_unlock(&wrap_lock);
	return ops;
}

static const struct mp_store_ops *
store_real_ops(void *ctx)
{
	const struct mp_store_ops *ops = NULL;

	pthread_mutex_lock(&wrap_lock);
	for (size_t i = 0; i < MAX_WRAPPED && !ops; i++)
		if (store_wraps[i].used && store_wraps[i].real.ctx == ctx)
			ops = store_wraps[i].real.ops;
	pthread_mutex_unlock(&wrap_lock);
	return ops;
}

static int
counted_verify(void *ctx, const char *address, const char *password,
    const char **error_r)
{
	int rc = auth_real_ops(ctx)->verify(ctx, address, password, error_r);

	mp_metric_auth(NULL, rc);
	return rc;
}

static int
counted_open(void *ctx, const char *user, struct mp_mailbox **mb_r,
    const char **error_r)
{
	double t0 = mp_metric_clock();
	int rc = store_real_ops(ctx)->open(ctx, user, mb_r, error_r);

	mp_metric_store(MP_STORE_OPEN, mp_metric_clock() - t0);
	return rc;
}

const struct mp_auth *
mp_metrics_auth(const struct mp_auth *real)
{
	const struct mp_auth *out = real;
	struct auth_wrap *w = NULL, *unused = NULL;

	if (real == NULL)
		return NULL;
	pthread_mutex_lock(&wrap_lock);
	for (size_t i = 0; i < MAX_WRAPPED && !w; i++) {
		struct auth_wrap *e = &auth_wraps[i];
		if (e->used && e->real.ops == real->ops && e->real.ctx == real->ctx)
			w = e;
		else if (!e->used && !unused)
			unused = e;
	}
	if (w == NULL && (w = unused) != NULL) {
		size_t size = real->ops->struct_size < sizeof(w->ops) ?
		    real->ops->struct_size : sizeof(w->ops);
		memset(&w->ops, 0, sizeof(w->ops));
		memcpy(&w->ops, real->ops, size);
		w->ops.verify = counted_verify;
		w->real = *real;
		w->counted = *real;
		w->counted.ops = &w->ops;
		w->used = 1;
	}
	if (w)
		out = &w->counted;
	pthread_mutex_unlock(&wrap_lock);
	return out;
}

const struct mp_store *
mp_metrics_store(const struct mp_store *real)
{
	const struct mp_store *out = real;
	struct store_wrap *w = NULL, *unused = NULL;

	if (real == NULL)
		return NULL;
	pthread_mutex_lock(&wrap_lock);
	for (size_t i = 0; i < MAX_WRAPPED && !w; i++) {
		struct store_wrap *e = &store_wraps[i];
		if (e->used && e->real.ops == real->ops && e->real.ctx == real->ctx)
			w = e;
		else if (!e->used && !unused)
			unused = e;
	}
	if (w == NULL && (w = unused) != NULL) {
		size_t size = real->ops->struct_size < sizeof(w->ops) ?
		    real->ops->struct_size : sizeof(w->ops);
		memset(&w->ops, 0, sizeof(w->ops));
		memcpy(&w->ops, real->ops, size);
		w->ops.open = counted_open;
		w->real = *real;
		w->counted = *real;
		w->counted.ops = &w->ops;
		w->used = 1;
	}
	if (w)
		out = &w->counted;
	pthread_mutex_unlock(&wrap_lock);
	return out;
}

void
mp_metrics_forget(const void *ctx)
{
	pthread_mutex_lock(&wrap_lock);
	for (size_t i = 0; i < MAX_WRAPPED; i++) {
		if (auth_wraps[i].used && auth_wraps[i].real.ctx == ctx)
			auth_wraps[i].used = 0;
		if (store_wraps[i].used && store_wraps[i].real.ctx == ctx)
			store_wraps[i].used = 0;
	}
	pthread_mutex_unlock(&wrap_lock);
}

/* ---- rendering ----------------------------------------------------------- */

struct out {
	char *p;
	size_t n, cap;
};

static void MP_PRINTF(2, 3)
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int need;

	for (;;) {
		va_start(ap, fmt);
		need = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
		va_end(ap);
		if (need < 0)
			return;
		if ((size_t)need < o->cap - o->n) {
			o->n += (size_t)need;
			return;
		}
		o->cap = o->cap * 2 + (size_t)need;
		o->p = realloc(o->p, o->cap);
		if (o->p == NULL)
			abort();
	}
}

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
render_protocols(struct out *o)
{
	static const char *const events[] = { "accepted", "refused", "closed" };
	static const char *const auth[] = { "success", "failure", "error" };
	size_t n = atomic_load(&protocols.n);

	family(o, "merpati_connections_total", "counter",
	    "Client connections by protocol and state (accepted, refused by a limit, closed).");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 3; k++)
			put(o, "merpati_connections_total{protocol=\"%s\",state=\"%s\"} %llu\n",
			    protocols.s[i].name, events[k],
			    (unsigned long long)atomic_load(&protocols.s[i].v[k]));
	family(o, "merpati_sessions_active", "gauge",
	    "Sessions running now, by protocol.");
	for (size_t i = 0; i < n; i++) {
		uint64_t in = atomic_load(&protocols.s[i].v[PROTO_ACCEPTED]);
		uint64_t out = atomic_load(&protocols.s[i].v[PROTO_CLOSED]);
		put(o, "merpati_sessions_active{protocol=\"%s\"} %llu\n",
		    protocols.s[i].name, (unsigned long long)(in > out ? in - out : 0));
	}
	family(o, "merpati_auth_total", "counter",
	    "Password checks by protocol and result.");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 3; k++)
			put(o, "merpati_auth_total{protocol=\"%s\",result=\"%s\"} %llu\n",
			    protocols.s[i].name, auth[k],
			    (unsigned long long)atomic_load(&protocols.s[i].v[PROTO_AUTH_OK + k]));
}

static void
render_smtp(struct out *o)
{
	family(o, "merpati_smtp_commands_total", "counter",
	    "SMTP commands received, by verb.");
	for (size_t i = 0; i < NVERBS; i++)
		put(o, "merpati_smtp_commands_total{command=\"%s\"} %llu\n",
		    smtp_verbs[i], (unsigned long long)atomic_load(&smtp_commands[i]));
	family(o, "merpati_smtp_replies_total", "counter",
	    "SMTP replies sent, by code class.");
	for (int c = 2; c <= 5; c++)
		put(o, "merpati_smtp_replies_total{class=\"%dxx\"} %llu\n", c,
		    (unsigned long long)atomic_load(&smtp_replies[c]));
	family(o, "merpati_messages_accepted_total", "counter",
	    "Messages committed to the queue (SMTP, submission, sendmail).");
	put(o, "merpati_messages_accepted_total %llu\n",
	    (unsigned long long)atomic_load(&accepted));
}

/* Every protocol's commands and replies in one family each: SMTP's
 * from its own counters (also under their first, SMTP-only names
 * above), the protocol modules' from host->count_command. */
static void
render_commands(struct out *o)
{
	family(o, "merpati_commands_total", "counter",
	    "Client commands by protocol and command; other is anything not on the protocol's list.");
	for (size_t i = 0; i < NVERBS; i++)
		put(o, "merpati_commands_total{protocol=\"smtp\",command=\"%s\"} %llu\n",
		    smtp_verbs[i], (unsigned long long)atomic_load(&smtp_commands[i]));
	for (size_t s = 0; s < NOF(command_sets); s++)
		for (size_t i = 0; i < command_sets[s].ncommands; i++)
			put(o, "merpati_commands_total{protocol=\"%s\",command=\"%s\"} %llu\n",
			    command_sets[s].protocol, command_sets[s].commands[i],
			    (unsigned long long)atomic_load(&command_sets[s].command_n[i]));
	family(o, "merpati_replies_total", "counter",
	    "Replies by protocol and class: SMTP's code class (every reply), IMAP's tagged OK/NO/BAD and POP3's +OK/-ERR (one per command).");
	for (int c = 2; c <= 5; c++)
		put(o, "merpati_replies_total{protocol=\"smtp\",class=\"%dxx\"} %llu\n",
		    c, (unsigned long long)atomic_load(&smtp_replies[c]));
	for (size_t s = 0; s < NOF(command_sets); s++)
		for (size_t i = 0; i < command_sets[s].noutcomes; i++)
			put(o, "merpati_replies_total{protocol=\"%s\",class=\"%s\"} %llu\n",
			    command_sets[s].protocol, command_sets[s].outcomes[i],
			    (unsigned long long)atomic_load(&command_sets[s].outcome_n[i]));
}

static void
render_deliveries(struct out *o)
{
	static const char *const names[] = { "merpati_messages_delivered_total",
	    "merpati_messages_deferred_total", "merpati_messages_bounced_total" };
	static const char *const helps[] = {
	    "Recipients delivered, by path (local, remote).",
	    "Recipient delivery attempts deferred, by path.",
	    "Recipients bounced (permanent failure or expired), by path." };

	for (int st = 0; st < 3; st++) {
		family(o, names[st], "counter", helps[st]);
		for (int r = 0; r < 2; r++)
			put(o, "%s{path=\"%s\"} %llu\n", names[st], r ? "remote" : "local",
			    (unsigned long long)atomic_load(&deliveries[r][st]));
	}
	family(o, "merpati_tls_handshakes_total", "counter",
	    "TLS handshakes by side (server, client) and result.");
	for (int c = 0; c < 2; c++)
		for (int ok = 1; ok >= 0; ok--)
			put(o, "merpati_tls_handshakes_total{side=\"%s\",result=\"%s\"} %llu\n",
			    c ? "client" : "server", ok ? "ok" : "failed",
			    (unsigned long long)atomic_load(&tls_handshakes[c][ok]));
}

static void
render_histogram(struct out *o, const char *name, const char *label,
    struct histogram *h)
{
	uint64_t cum = 0;

	for (size_t i = 0; i <= h->nbounds; i++) {
		cum += atomic_load(&h->bucket[i]);
		if (i < h->nbounds)
			put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, label,
			    h->bounds[i], (unsigned long long)cum);
		else
			put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, label,
			    (unsigned long long)cum);
	}
	put(o, "%s_sum{%s} %.6f\n", name, label,
	    (double)atomic_load(&h->sum_us) / 1e6);
	put(o, "%s_count{%s} %llu\n", name, label,
	    (unsigned long long)atomic_load(&h->count));
}

static void
render_histograms(struct out *o)
{
	family(o, "merpati_delivery_latency_seconds", "histogram",
	    "Time from arrival in the queue to successful delivery, by path.");
	render_histogram(o, "merpati_delivery_latency_seconds", "path=\"local\"",
	    &delivery_hist[0]);
	render_histogram(o, "merpati_delivery_latency_seconds", "path=\"remote\"",
	    &delivery_hist[1]);
	family(o, "merpati_store_operation_seconds", "histogram",
	    "Duration of mailbox store operations: open (IMAP/POP3) and deliver (local delivery).");
	render_histogram(o, "merpati_store_operation_seconds", "op=\"open\"",
	    &store_hist[0]);
	render_histogram(o, "merpati_store_operation_seconds", "op=\"deliver\"",
	    &store_hist[1]);
}

static void
render_modules(struct out *o)
{
	size_t n = atomic_load(&modules.n);

	family(o, "merpati_module_errors_total", "counter",
	    "Module calls that returned an error, by module.");
	for (size_t i = 0; i < n; i++)
		put(o, "merpati_module_errors_total{module=\"%s\"} %llu\n",
		    modules.s[i].name,
		    (unsigned long long)atomic_load(&modules.s[i].v[0]));
}

struct queue_count {
	int dir;
	long long n;
	time_t oldest;
};

static void
count_one(void *arg, const char *id)
{
	struct queue_count *q = arg;
	struct stat st;

	if (fstatat(q->dir, id, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;	/* delivered meanwhile */
	q->n++;
	if (q->oldest == 0 || st.st_mtime < q->oldest)
		q->oldest = st.st_mtime;
}

/* The queue's message files: each is written once at arrival, so its
 * modification time is the arrival time. */
static void
render_queue(struct out *o, const char *queue_dir)
{
	struct queue_count q = { .dir = -1 };
	int scanned = -1;

	if (queue_dir && (q.dir = open(queue_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) >= 0) {
		scanned = mp_queue_scan(queue_dir, count_one, &q);
		close(q.dir);
	}
	family(o, "merpati_queue_messages", "gauge", "Messages in the queue.");
	put(o, "merpati_queue_messages %lld\n", scanned < 0 ? 0 : q.n);
	family(o, "merpati_queue_oldest_message_age_seconds", "gauge",
	    "Age of the oldest queued message; 0 when the queue is empty.");
	put(o, "merpati_queue_oldest_message_age_seconds %lld\n",
	    q.oldest ? (long long)(time(NULL) - q.oldest) : 0LL);
}

char *
mp_metrics_render(const char *queue_dir, size_t *len_r)
{
	struct out o = { .p = mp_xcalloc(1, 8192), .cap = 8192 };

	render_protocols(&o);
	render_smtp(&o);
	render_commands(&o);
	render_deliveries(&o);
	render_histograms(&o);
	render_modules(&o);
	render_queue(&o, queue_dir);
	*len_r = o.n;
	return o.p;
}

/* ---- configuration --------------------------------------------------------- */

struct metrics_opts {
	const char *address;
	long long port;
	int allow_remote;
};

#define MO(f) offsetof(struct metrics_opts, f)
static const struct mp_option metrics_options[] = {
	MP_OPT("address", MP_OPT_STRING, MO(address), "127.0.0.1", 0, 0),
	MP_OPT("port", MP_OPT_INT, MO(port), "9310", 1, 65535),
	MP_OPT("allow_remote", MP_OPT_BOOL, MO(allow_remote), "false", 0, 0),
	MP_OPT_END
};

/* Loopback: 127.0.0.0/8 or ::1. Metrics name every protocol's traffic
 * and the queue's size, which is for the admin, not the Internet. */
static int
is_loopback(const char *address)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, address, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, address, &a6) == 1 &&
	    IN6_IS_ADDR_LOOPBACK(&a6);
}

int
mp_metrics_configure(const void *config, struct mp_metrics_settings *out,
    struct mp_problems *problems)
{
	const config_setting_t *g = config_lookup((const config_t *)config, "metrics");
	struct metrics_opts o;
	struct in6_addr any;
	const char *err;

	memset(out, 0, sizeof(*out));
	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g)) {
		mp_problem(problems, "metrics: must be a group { ... }");
		return -1;
	}
	if (mp_cfg_options((const struct mp_conf *)g, metrics_options, &o,
	    &err) != MP_OK) {
		mp_problem(problems, "%s", err);
		return -1;
	}
	if (inet_pton(AF_INET, o.address, &any) != 1 &&
	    inet_pton(AF_INET6, o.address, &any) != 1) {
		mp_problem(problems, "metrics.address: \"%s\" is not an IP address",
		    o.address);
		return -1;
	}
	if (!is_loopback(o.address) && !o.allow_remote) {
		mp_problem(problems, "metrics.address: %s is not a loopback address; "
		    "set metrics.allow_remote = true to expose metrics beyond this host",
		    o.address);
		return -1;
	}
	out->enabled = 1;
	mp_strlcpy(out->address, o.address, sizeof(out->address));
	out->port = o.port;
	out->allow_remote = o.allow_remote;
	return 0;
}

/* ---- the responder ------------------------------------------------------- */

static int listen_fd = -1;
static char served_queue_dir[4096];
static atomic_int stopping;

int
mp_metrics_bind(const struct mp_metrics_settings *s, char *err, size_t errsize)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (!s->enabled)
		return 0;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, s->address,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)s->port);
		len = sizeof(struct sockaddr_in);
	} else {
		ss.ss_family = AF_INET6;
		inet_pton(AF_INET6, s->address, &((struct sockaddr_in6 *)&ss)->sin6_addr);
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)s->port);
		len = sizeof(struct sockaddr_in6);
	}
	listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 ||
	    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(listen_fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(listen_fd, 16) < 0) {
		snprintf(err, errsize, "metrics: cannot listen on %s port %lld: %s",
		    s->address, s->port, strerror(errno));
		if (listen_fd >= 0)
			close(listen_fd);
		listen_fd = -1;
		return -1;
	}
	return 0;
}

/* Read the request head (up to the blank line) within the deadline.
 * Returns its length, or -1 (timeout, EOF, too big). */
static ssize_t
read_head(int fd, char *buf, size_t size)
{
	double deadline = mp_metric_clock() + REQUEST_MS / 1000.0;
	size_t n = 0;

	while (n + 1 < size) {
		int left = (int)((deadline - mp_metric_clock()) * 1000);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		ssize_t r = recv(fd, buf + n, size - 1 - n, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return (ssize_t)n;
	}
	return -2;
}

static void
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void
reply(int fd, const char *status, const char *extra, const char *type,
    const char *body, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n%sContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, extra,
	    type, len);

	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

static void
error_reply(int fd, const char *status, const char *extra)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%s\n", status);

	reply(fd, status, extra, "text/plain; charset=utf-8", body, (size_t)n);
}

/* "GET /metrics HTTP/1.1": the method, the path (a query string is
 * ignored, as Prometheus may add one) and the version are checked. */
static void
serve_one(int fd)
{
	char req[REQUEST_MAX], method[16], target[256], version[16];
	ssize_t n = read_head(fd, req, sizeof(req));

	if (n == -2) {
		error_reply(fd, "431 Request Header Fields Too Large", "");
		return;
	}
	if (n < 0)
		return;
	if (sscanf(req, "%15[A-Z] %255[^ \r\n] %15[^\r\n]", method, target,
	    version) != 3 || strncmp(version, "HTTP/1.", 7) != 0 ||
	    target[0] != '/') {
		error_reply(fd, "400 Bad Request", "");
		return;
	}
	target[strcspn(target, "?")] = '\0';
	if (strcmp(target, "/metrics") != 0) {
		error_reply(fd, "404 Not Found", "");
		return;
	}
	if (strcmp(method, "GET") != 0) {
		error_reply(fd, "405 Method Not Allowed", "Allow: GET\r\n");
		return;
	}
	size_t len;
	char *body = mp_metrics_render(served_queue_dir, &len);
	reply(fd, "200 OK", "", "text/plain; version=0.0.4; charset=utf-8",
	    body, len);
	free(body);
}

/* Close after the reply without losing it: unread input (a refused,
 * oversized request) would make close() send a reset that can overtake
 * the reply, so read what is left first, bounded in bytes and time. */
static void
drain_and_close(int fd)
{
	char sink[4096];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 16 && poll(&p, 1, 200) > 0; i++)
		if (recv(fd, sink, sizeof(sink), 0) <= 0)
			break;
	close(fd);
}

static void *
responder(void *arg)
{
	(void)arg;
	while (!atomic_load(&stopping)) {
		struct pollfd p = { .fd = listen_fd, .events = POLLIN };
		if (poll(&p, 1, 500) <= 0)
			continue;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(fd);
		drain_and_close(fd);
	}
	return NULL;
}

int
mp_metrics_start(const char *queue_dir)
{
	pthread_t t;

	if (listen_fd < 0)
		return 0;
	mp_strlcpy(served_queue_dir, queue_dir, sizeof(served_queue_dir));
	if (pthread_create(&t, NULL, responder, NULL) != 0)
		return -1;
	pthread_detach(t);
	return 0;
}

void
mp_metrics_stop(void)
{
	atomic_store(&stopping, 1);
}
