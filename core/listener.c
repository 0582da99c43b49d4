/*
 * core/listener.c - the listeners of SMTP and of every protocol module,
 * kept across reloads, and the connection limits (total and per client
 * address, counted apart for SMTP and for each protocol module, so idle
 * IMAP clients cannot lock out SMTP). Each connection is served by a
 * detached thread with a small stack; a connection over a limit gets
 * 421 4.7.0 (or its protocol's refusal) and is closed at once. Threads
 * whose session ended wait in accept() (up to SPARE_WORKERS of them per
 * listener) for the next connection: creating a thread and releasing
 * its stack (madvise, a TLB shootdown on every core) cost more than a
 * short SMTP session itself.
 *
 * A live listener is one bound socket, keyed by its address (as the
 * configuration spells it) and port. It outlives configuration
 * snapshots (reload.h), which may be freed once no session holds them:
 * the acceptor threads know only their live listener, never a
 * snapshot's struct mp_listen. On each connection the thread holds the
 * newest snapshot and looks its key up in that snapshot's listen[]; the
 * entry found (tls, auth, protocol module, pool) serves the session to
 * its end. A key that snapshot no longer has (a reload removed it a
 * moment ago) gets a polite refusal.
 *
 * A reload: mp_listener_prepare binds the keys that are new (any
 * failure refuses the reload) and hands the others' running sockets to
 * the new snapshot, whatever else changed; once the snapshot is
 * published, mp_listener_commit starts the new listeners' acceptors and
 * retires the removed ones: shutdown() wakes their threads from
 * accept(), the socket is closed when the last of them is out of it,
 * and their sessions in flight run to their end. mp_listener_abort
 * undoes a prepare. The live listeners list is the main thread's alone.
 *
 * The connection counters (pool_state) are keyed by pool name ("smtp",
 * or a protocol module's), not by a snapshot's pool index, so a session
 * leaves the numbers it entered whichever snapshot admitted it, and a
 * reload may bring pools that did not exist at start.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "protocol.h"
#include "smtp_session.h"
#include "tls.h"
#include "util.h"

#define SESSION_STACK (256 * 1024)
#define PER_IP_SLOTS 4096
#define SPARE_WORKERS 64
/* A session holds its socket and, at times, a file it reads or writes;
 * the reserve is for listeners, queue workers, outbound connections and
 * the modules' own files. */
#define FDS_PER_CONNECTION 2
#define FDS_RESERVED 1024
/* As many pools as one configuration can have (settings.h). */
#define MAX_POOLS (sizeof(((struct mp_core_config *)0)->pools) / \
	sizeof(struct mp_conn_limits))

static atomic_int stopping;

/* ---- connection counters, by pool name ------------------------------------ */

/* The live counts of one pool: SMTP, or one protocol module's. */
struct pool_state {
	char *name;
	atomic_int active;
	pthread_mutex_t lock;
	struct { char addr[48]; int count; } per_ip[PER_IP_SLOTS];
};

/* Added by the main thread only, never removed: readers scan the first
 * npool_states entries without a lock. */
static struct pool_state *pool_states[MAX_POOLS];
static atomic_size_t npool_states;

static struct pool_state *
pool_find(const char *name)
{
	size_t n = atomic_load_explicit(&npool_states, memory_order_acquire);

	for (size_t i = 0; i < n; i++)
		if (strcmp(pool_states[i]->name, name) == 0)
			return pool_states[i];
	return NULL;
}

/* The counters of pool name, made when new; NULL when every place was
 * taken by pools since the start. Main thread only. */
static struct pool_state *
pool_add(const char *name)
{
	struct pool_state *p = pool_find(name);
	size_t n = atomic_load(&npool_states);

	if (p != NULL || n == MAX_POOLS)
		return p;
	p = mp_xcalloc(1, sizeof(*p));
	p->name = mp_xstrdup(name);
	pthread_mutex_init(&p->lock, NULL);
	pool_states[n] = p;
	atomic_store_explicit(&npool_states, n + 1, memory_order_release);
	return p;
}

/* Count a connection from addr; 0 when it is over the per-IP limit. */
static int
per_ip_enter(struct pool_state *p, long long limit, const char *addr)
{
	int ok = 0, free_slot = -1;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < PER_IP_SLOTS; i++) {
		if (p->per_ip[i].count == 0) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (strcmp(p->per_ip[i].addr, addr) == 0) {
			ok = p->per_ip[i].count < limit;
			p->per_ip[i].count += ok;
			goto out;
		}
	}
	if (free_slot >= 0) {
		mp_strlcpy(p->per_ip[free_slot].addr, addr, sizeof(p->per_ip[0].addr));
		p->per_ip[free_slot].count = 1;
		ok = 1;
	}
out:
	pthread_mutex_unlock(&p->lock);
	return ok;
}

static void
per_ip_leave(struct pool_state *p, const char *addr)
{
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < PER_IP_SLOTS; i++)
		if (p->per_ip[i].count > 0 && strcmp(p->per_ip[i].addr, addr) == 0) {
			p->per_ip[i].count--;
			break;
		}
	pthread_mutex_unlock(&p->lock);
}

/* ---- live listeners ---------------------------------------------------------- */

/* What a listener's log lines say about it, and what tells a changed
 * listener from an unchanged one. */
struct listen_desc {
	char label[96];		/* "smtp", "pop3.plain" */
	char protocol[32];	/* "smtp", "imap", "pop3" */
	enum mp_listen_tls tls;
	enum mp_listen_auth auth;
	int plaintext_auth, any_sender;
};

struct live {
	char *address;		/* the key: address as configured, and port */
	long long port;
	pthread_mutex_t lock;	/* fd, retired, threads, desc */
	int fd;			/* -1 once closed */
	int retired;		/* removed by a reload: accept no more */
	int threads;		/* acceptor threads alive (in accept() or a session) */
	atomic_int idle;	/* threads in accept(), or about to enter it */
	struct listen_desc desc;
	struct live *next;	/* main thread only */
};

static struct live *lives;	/* serving now */
static struct live *added;	/* bound by prepare, started by commit */
static const struct mp_core_config *planned;	/* prepare's snapshot */

static const char *const tls_names[] = { "none", "starttls", "implicit" };
static const char *const auth_names[] = { "none", "optional", "required" };

const char *
mp_listen_protocol(const struct mp_listen *l)
{
	return l->proto ? l->proto->mod->protocol->protocol : "smtp";
}

static void
describe(const struct mp_listen *l, struct listen_desc *d)
{
	memset(d, 0, sizeof(*d));
	mp_strlcpy(d->label, l->label, sizeof(d->label));
	mp_strlcpy(d->protocol, mp_listen_protocol(l), sizeof(d->protocol));
	d->tls = l->tls;
	d->auth = l->auth;
	d->plaintext_auth = l->plaintext_auth;
	d->any_sender = l->any_sender;
}

static const struct mp_listen *
entry_of(const struct mp_core_config *c, const char *address, long long port)
{
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i].port == port && strcmp(c->listen[i].address, address) == 0)
			return &c->listen[i];
	return NULL;
}

static struct live *
live_find(struct live *list, const char *address, long long port)
{
	for (; list; list = list->next)
		if (list->port == port && strcmp(list->address, address) == 0)
			return list;
	return NULL;
}

/* Lists keep the configuration's order, and so do the log lines. */
static void
append(struct live **list, struct live *lv)
{
	while (*list != NULL)
		list = &(*list)->next;
	lv->next = NULL;
	*list = lv;
}

/* The label and protocol as they are now (a reload may change them). */
static struct listen_desc
live_desc(struct live *lv)
{
	struct listen_desc d;

	pthread_mutex_lock(&lv->lock);
	d = lv->desc;
	pthread_mutex_unlock(&lv->lock);
	return d;
}

static void
live_free(struct live *lv)
{
	pthread_mutex_destroy(&lv->lock);
	free(lv->address);
	free(lv);
}

/* The listening socket for l; -1 with the reason in err. */
static int
bind_socket(const struct mp_listen *l, char *err, size_t errsize)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	char port[16];
	int one = 1, fd;

	snprintf(port, sizeof(port), "%lld", l->port);
	/* Numeric only: a listener never resolves a name. */
	if (getaddrinfo(l->address, port, &hints, &ai) != 0) {
		snprintf(err, errsize, "listen %s: address \"%s\" is not an IP address",
		    l->label, l->address);
		errno = EINVAL;
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, 1024) < 0) {
		int e = errno;
		snprintf(err, errsize, "listen %s: cannot listen on %s port %s: %s",
		    l->label, l->address, port, strerror(e));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		errno = e;
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* A running listener on port at another address, if any. */
static const struct live *
live_on_port(const struct live *list, long long port)
{
	for (; list; list = list->next)
		if (list->port == port)
			return list;
	return NULL;
}

/* What the admin can do about a bind failure during a reload, in out. */
static void
reload_bind_hint(int e, long long port, char *out, size_t size)
{
	const struct live *other = live_on_port(lives, port);

	out[0] = '\0';
	if (e == EACCES || e == EPERM)
		snprintf(out, size, " (merpatid runs as server.user now and gave "
		    "up the right to bind ports below 1024: restart merpatid to "
		    "add this listener, or pick a port from 1024 up)");
	else if (e == EADDRINUSE && other != NULL)
		/* Both cannot listen at once, and closing the running one
		 * first could not be undone if the reload failed after. */
		snprintf(out, size, " (running listener %s holds port %lld on "
		    "%s: to move it, remove it in one reload and add the new "
		    "address in the next)", other->desc.label, port,
		    other->address);
	else if (e == EADDRINUSE)
		snprintf(out, size, " (another program, or a listener of this "
		    "configuration, uses it: free the port or pick another, then "
		    "reload again)");
	else if (e == EADDRNOTAVAIL)
		snprintf(out, size, " (no interface of this host has that address)");
}

/* ---- sessions ------------------------------------------------------------------ */

struct accepted {
	int fd;
	const struct mp_listen *l;	/* the held snapshot's entry */
	struct pool_state *p;
	char addr[48];
};

static void
run_session(struct accepted *a)
{
	if (a->l->proto)
		mp_protocol_session_run(a->fd, a->l);
	else
		smtp_session_run(a->fd, a->l);
	close(a->fd);
	mp_metric_conn(mp_listen_protocol(a->l), MP_CONN_CLOSED);
	per_ip_leave(a->p, a->addr);
	atomic_fetch_sub(&a->p->active, 1);
	free(a);
}

/* The refusal in the listener's own protocol: a client must understand
 * it (RFC 9051 7.1.5 BYE, RFC 1939 -ERR, RFC 5321 421). */
static void
refuse(const char *proto, const char *label, int fd, const char *why,
    const char *addr)
{
	char buf[256];
	int n;

	if (strcmp(proto, "imap") == 0)
		n = snprintf(buf, sizeof(buf), "* BYE [UNAVAILABLE] %s\r\n", why);
	else if (strcmp(proto, "pop3") == 0)
		n = snprintf(buf, sizeof(buf), "-ERR [SYS/TEMP] %s\r\n", why);
	else
		n = snprintf(buf, sizeof(buf), "421 4.7.0 %s %s\r\n",
		    mp_core.server.hostname, why);
	mp_log(MP_LOG_NOTICE, "refused [%s] on %s: %s", addr, label, why);
	(void)!send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* The connection, counted against the limits; NULL when refused. */
static struct accepted *
admit(const struct mp_listen *l, int fd, const char *addr)
{
	const struct mp_conn_limits *lim = &mp_core.pools[l->pool];
	struct pool_state *p = pool_find(lim->name);
	struct accepted *a;
	const char *why = NULL;

	if (p == NULL)	/* prepare made every published snapshot's pools */
		why = "Service not available, try again later";
	else if (atomic_fetch_add(&p->active, 1) >= lim->connections)
		why = "Too many connections, try again later";
	else if (!per_ip_enter(p, lim->connections_per_ip, addr))
		why = "Too many connections from your address";
	mp_metric_conn(mp_listen_protocol(l), why ? MP_CONN_REFUSED : MP_CONN_ACCEPTED);
	if (why != NULL) {
		if (p != NULL)
			atomic_fetch_sub(&p->active, 1);
		refuse(mp_listen_protocol(l), l->label, fd, why, addr);
		return NULL;
	}
	a = mp_xcalloc(1, sizeof(*a));
	a->fd = fd;
	a->l = l;
	a->p = p;
	mp_strlcpy(a->addr, addr, sizeof(a->addr));
	return a;
}

/* One accepted connection, on the configuration newest now. */
static void
serve(struct live *lv, int fd, const struct sockaddr_storage *ss)
{
	const struct mp_listen *l;
	struct accepted *a;
	char addr[48];
	int loopback;

	mp_address_text(ss, addr, sizeof(addr), &loopback);
	mp_core_hold();	/* the session runs on today's configuration to its end */
	l = entry_of(&mp_core, lv->address, lv->port);
	if (l == NULL) {	/* removed by a reload since accept() */
		struct listen_desc d = live_desc(lv);
		mp_metric_conn(d.protocol, MP_CONN_REFUSED);
		refuse(d.protocol, d.label, fd, "Service no longer offered on "
		    "this port, try again later", addr);
	} else if ((a = admit(l, fd, addr)) != NULL)
		run_session(a);
	mp_core_release();
}

/* ---- acceptor threads ------------------------------------------------------ */

/* The listening socket, counted as waited on; -1 when the listener
 * was retired or the daemon stops. */
static int
enter_accept(struct live *lv)
{
	int fd = -1;

	pthread_mutex_lock(&lv->lock);
	if (!lv->retired && !atomic_load(&stopping) && lv->fd >= 0) {
		atomic_fetch_add(&lv->idle, 1);
		fd = lv->fd;
	}
	pthread_mutex_unlock(&lv->lock);
	return fd;
}

/* Out of accept(); 1 when no thread waits there any more on a listener
 * still accepting (another must). The last thread out of a retired
 * listener closes its socket: before, a closed descriptor could be
 * reused under a thread still in accept(). */
static int
leave_accept(struct live *lv)
{
	int left, need_another;

	pthread_mutex_lock(&lv->lock);
	left = atomic_fetch_sub(&lv->idle, 1) - 1;
	need_another = left == 0 && !lv->retired && !atomic_load(&stopping);
	if (left == 0 && lv->retired && lv->fd >= 0) {
		close(lv->fd);
		lv->fd = -1;
	}
	pthread_mutex_unlock(&lv->lock);
	return need_another;
}

static void
acceptor_exit(struct live *lv)
{
	int last;

	pthread_mutex_lock(&lv->lock);
	last = --lv->threads == 0 && lv->retired;
	pthread_mutex_unlock(&lv->lock);
	if (last)
		live_free(lv);
}

/* Accept one connection; -1 (after a pause on resource exhaustion)
 * when none came. */
static int
accept_one(struct live *lv, int lfd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	int fd = accept4(lfd, (struct sockaddr *)ss, &len, SOCK_CLOEXEC);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
	    errno == ENOMEM)) {
		int e = errno;
		struct listen_desc d = live_desc(lv);
		errno = e;
		mp_log_errno(MP_LOG_WARNING, "accept on %s", d.label);
		usleep(100000);
	}
	return fd;
}

static int start_acceptor(struct live *lv);

/*
 * Session threads wait in accept() themselves (the kernel wakes one per
 * connection), so a connection costs one wake-up and no hand-over from
 * an accepting thread. The thread that takes the last waiting place
 * starts another, so one always waits; a thread whose session ended
 * goes back to accept() unless SPARE_WORKERS already wait there.
 */
static void *
acceptor_thread(void *arg)
{
	struct live *lv = arg;
	int lfd;

	while ((lfd = enter_accept(lv)) >= 0) {
		struct sockaddr_storage ss;
		int fd = accept_one(lv, lfd, &ss);

		if (leave_accept(lv) && fd >= 0 && start_acceptor(lv) != 0)
			mp_log_errno(MP_LOG_WARNING, "%s: no thread for the next "
			    "connection (accepted when this session ends)",
			    live_desc(lv).label);
		if (fd < 0)
			continue;
		serve(lv, fd, &ss);
		if (atomic_load(&lv->idle) >= SPARE_WORKERS)
			break;
	}
	acceptor_exit(lv);
	mp_tls_thread_done();
	return NULL;
}

static int
start_acceptor(struct live *lv)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_mutex_lock(&lv->lock);
	lv->threads++;	/* the caller's hold keeps lv alive until here */
	pthread_mutex_unlock(&lv->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, SESSION_STACK);
	mp_tls_thread_starting();
	rc = pthread_create(&t, &attr, acceptor_thread, lv);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		mp_tls_thread_not_started();
		acceptor_exit(lv);
	}
	errno = rc;
	return rc == 0 ? 0 : -1;
}

/* Stop accepting on lv: threads in accept() wake (shutdown), the last
 * one out closes the socket; sessions run on. Main thread. */
static void
retire(struct live *lv)
{
	int unused;

	pthread_mutex_lock(&lv->lock);
	lv->retired = 1;
	if (lv->fd >= 0 && atomic_load(&lv->idle) == 0) {
		close(lv->fd);
		lv->fd = -1;
	} else if (lv->fd >= 0)
		shutdown(lv->fd, SHUT_RDWR);
	unused = lv->threads == 0;
	pthread_mutex_unlock(&lv->lock);
	if (unused)
		live_free(lv);
}

/* ---- preparing, committing and undoing a set of listeners ------------------ */

/* Every pool of c has its counters; -1 when the places ran out. */
static int
make_pools(const struct mp_core_config *c, struct mp_problems *problems)
{
	for (size_t i = 0; i < c->npools; i++)
		if (pool_add(c->pools[i].name) == NULL) {
			mp_problem(problems, "modules.%s: more than %zu connection "
			    "pools since merpatid started (SMTP and each protocol "
			    "module that ever listened): restart merpatid to add "
			    "another", c->pools[i].name, MAX_POOLS);
			return -1;
		}
	return 0;
}

/* Two listeners on one address and port: the second could only share
 * the first one's socket. */
static int
check_unique(const struct mp_core_config *c, struct mp_problems *problems)
{
	size_t before = problems->n;

	for (size_t i = 0; i < c->nlisten; i++)
		for (size_t j = i + 1; j < c->nlisten; j++)
			if (c->listen[i].port == c->listen[j].port &&
			    strcmp(c->listen[i].address, c->listen[j].address) == 0)
				mp_problem(problems, "listen %s and %s: both on %s "
				    "port %lld; give each its own port",
				    c->listen[i].label, c->listen[j].label,
				    c->listen[i].address, c->listen[i].port);
	return problems->n == before ? 0 : -1;
}

/* Bind the listeners of c that no live listener has; give the others
 * the running socket. */
static int
bind_new(struct mp_core_config *c, int reloading, struct mp_problems *problems)
{
	size_t before = problems->n;
	char err[1024];

	planned = c;
	if (make_pools(c, problems) < 0 || check_unique(c, problems) < 0)
		return -1;
	for (size_t i = 0; i < c->nlisten; i++) {
		struct mp_listen *l = &c->listen[i];
		struct live *lv = live_find(lives, l->address, l->port);
		if (lv != NULL) {
			l->fd = lv->fd;
			continue;
		}
		if ((l->fd = bind_socket(l, err, sizeof(err))) < 0) {
			char hint[512] = "";
			if (reloading)
				reload_bind_hint(errno, l->port, hint, sizeof(hint));
			mp_problem(problems, "%s%s", err, hint);
			continue;
		}
		lv = mp_xcalloc(1, sizeof(*lv));
		lv->address = mp_xstrdup(l->address);
		lv->port = l->port;
		lv->fd = l->fd;
		pthread_mutex_init(&lv->lock, NULL);
		describe(l, &lv->desc);
		append(&added, lv);
	}
	return problems->n == before ? 0 : -1;
}

int
mp_listener_bind(char *err, size_t errsize)
{
	struct mp_problems problems = { 0 };
	int rc = bind_new(&mp_core, 0, &problems);

	if (rc < 0)
		mp_strlcpy(err, problems.lines[0], errsize);
	mp_problems_free(&problems);
	return rc;
}

static void
describe_pools(const struct mp_core_config *c, char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < c->npools && o < size; i++) {
		int n = snprintf(out + o, size - o, "%s%s%s%s.connections %lld",
		    i ? ", " : "", i ? "modules." : "", i ? c->pools[i].name : "",
		    i ? ".limits" : "limits", c->pools[i].connections);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

static int
fit_fd_limit(const struct mp_core_config *c, int reloading, char *err,
    size_t errsize)
{
	struct rlimit rl;
	rlim_t need = FDS_RESERVED;
	char pools_text[512];

	for (size_t i = 0; i < c->npools; i++)
		need += (rlim_t)c->pools[i].connections * FDS_PER_CONNECTION;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return 0;
	struct rlimit want = { need, rl.rlim_max < need ? need : rl.rlim_max };
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return 0;
	describe_pools(c, pools_text, sizeof(pools_text));
	snprintf(err, errsize, "the connection limits (%s) need %llu file "
	    "descriptors (%d per connection + %d) but RLIMIT_NOFILE allows %llu "
	    "(hard limit %llu) and cannot be raised: %s; raise it (ulimit -n, "
	    "systemd LimitNOFILE=%s) or lower the limits", pools_text,
	    (unsigned long long)need, FDS_PER_CONNECTION, FDS_RESERVED,
	    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
	    strerror(errno), reloading ? ", then restart merpatid: running as "
	    "server.user it cannot pass the hard limit" : "");
	return -1;
}

int
mp_listener_fit_fd_limit(char *err, size_t errsize)
{
	return fit_fd_limit(&mp_core, 0, err, errsize);
}

int
mp_listener_prepare(struct mp_core_config *c, struct mp_problems *problems)
{
	char err[1024];
	int rc = bind_new(c, 1, problems);

	if (fit_fd_limit(c, 1, err, sizeof(err)) < 0) {
		mp_problem(problems, "%s", err);
		rc = -1;
	}
	return rc;
}

void
mp_listener_abort(void)
{
	while (added != NULL) {
		struct live *lv = added;
		added = lv->next;
		close(lv->fd);
		live_free(lv);
	}
	planned = NULL;
}

static void
describe_change(const struct listen_desc *o, const struct listen_desc *n,
    char *out, size_t size)
{
	size_t used = 0;

#define CHANGE(cond, ...) do { if ((cond) && used < size) { \
	int k = snprintf(out + used, size - used, __VA_ARGS__); \
	used += k > 0 ? (size_t)k : 0; } } while (0)
	out[0] = '\0';
	CHANGE(strcmp(o->label, n->label) != 0, ", name %s -> %s", o->label, n->label);
	CHANGE(strcmp(o->protocol, n->protocol) != 0, ", protocol %s -> %s",
	    o->protocol, n->protocol);
	CHANGE(o->tls != n->tls, ", tls %s -> %s", tls_names[o->tls], tls_names[n->tls]);
	CHANGE(o->auth != n->auth, ", auth %s -> %s", auth_names[o->auth],
	    auth_names[n->auth]);
	CHANGE(o->plaintext_auth != n->plaintext_auth, ", plaintext_auth %s",
	    n->plaintext_auth ? "on" : "off");
	CHANGE(o->any_sender != n->any_sender, ", any_sender %s",
	    n->any_sender ? "on" : "off");
#undef CHANGE
}

/* Keep, change or retire each running listener by the new snapshot. */
static void
update_running(const struct mp_core_config *c)
{
	for (struct live **pp = &lives; *pp != NULL; ) {
		struct live *lv = *pp;
		const struct mp_listen *l = entry_of(c, lv->address, lv->port);
		struct listen_desc d;
		char what[512];

		if (l == NULL) {
			*pp = lv->next;
			mp_log(MP_LOG_NOTICE, "reload: listener %s removed (%s port "
			    "%lld): no new connections; its sessions in flight "
			    "finish", lv->desc.label, lv->address, lv->port);
			retire(lv);
			continue;
		}
		describe(l, &d);
		describe_change(&lv->desc, &d, what, sizeof(what));
		if (what[0]) {
			mp_log(MP_LOG_NOTICE, "reload: listener %s changed (%s port "
			    "%lld): %s; for new connections, sessions in flight "
			    "keep theirs", d.label, lv->address, lv->port, what + 2);
			pthread_mutex_lock(&lv->lock);
			lv->desc = d;
			pthread_mutex_unlock(&lv->lock);
		}
		pp = &lv->next;
	}
}

/* Start the listeners prepare bound; -1 when one got no thread. */
static int
start_added(int reloading)
{
	int rc = 0;

	while (added != NULL) {
		struct live *lv = added;
		added = lv->next;
		if (start_acceptor(lv) != 0) {
			mp_log_errno(MP_LOG_ERR, "%slistener %s on %s port %lld: "
			    "no thread to accept connections%s", reloading ?
			    "reload: " : "", lv->desc.label, lv->address, lv->port,
			    reloading ? "; not listening (reload again to retry)" : "");
			retire(lv);
			rc = -1;
			continue;
		}
		append(&lives, lv);
		if (reloading)
			mp_log(MP_LOG_NOTICE, "reload: listener %s added: %s port "
			    "%lld (%s, tls %s, auth %s)", lv->desc.label, lv->address,
			    lv->port, lv->desc.protocol, tls_names[lv->desc.tls],
			    auth_names[lv->desc.auth]);
		else
			mp_log(MP_LOG_INFO, "listening for %s on %s port %lld",
			    lv->desc.label, lv->address, lv->port);
	}
	return rc;
}

void
mp_listener_commit(void)
{
	if (planned != NULL)
		update_running(planned);
	start_added(1);
	planned = NULL;
}

int
mp_listener_start(void)
{
	planned = NULL;
	return start_added(0);
}

void
mp_listener_stop(void)
{
	atomic_store(&stopping, 1);
	for (struct live *lv = lives; lv != NULL; lv = lv->next) {
		pthread_mutex_lock(&lv->lock);
		if (lv->fd >= 0)
			shutdown(lv->fd, SHUT_RDWR);
		pthread_mutex_unlock(&lv->lock);
	}
}
