/*
 * core/listener.c - the listeners of SMTP and of every protocol module,
 * and the connection limits (total and per client address, counted
 * apart for SMTP and for each protocol module, so idle IMAP clients
 * cannot lock out SMTP). Each connection is served by a detached thread
 * with a small stack; a connection over a limit gets 421 4.7.0 and is
 * closed at once. Threads whose session ended wait in accept() (up to
 * SPARE_WORKERS of them per listener) for the next connection: creating
 * a thread and releasing its stack (madvise, a TLB shootdown on every
 * core) cost more than a short SMTP session itself.
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

static atomic_int stopping;

/* The live counts of one mp_core.pools entry (SMTP, or one protocol). */
struct pool_state {
	atomic_int active;
	pthread_mutex_t lock;
	struct { char addr[48]; int count; } per_ip[PER_IP_SLOTS];
};

static struct pool_state *pools;	/* mp_core.npools of them */

struct accepted {
	int fd;
	const struct mp_listen *l;
	char addr[48];
};

static int
bind_one(struct mp_listen *l, char *err, size_t errsize)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	char port[16];
	int one = 1, rc;

	snprintf(port, sizeof(port), "%lld", l->port);
	/* Numeric only: a listener never resolves a name. */
	rc = getaddrinfo(l->address, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errsize, "listen %s: address \"%s\" is not an IP address",
		    l->label, l->address);
		return -1;
	}
	l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0 ||
	    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(l->fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(l->fd, 1024) < 0) {
		snprintf(err, errsize, "listen %s: cannot listen on %s port %s: %s",
		    l->label, l->address, port, strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return 0;
}

int
mp_listener_bind(char *err, size_t errsize)
{
	for (size_t i = 0; i < mp_core.nlisten; i++)
		if (bind_one(&mp_core.listen[i], err, errsize) < 0)
			return -1;
	return 0;
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

static _Atomic int *idle_acceptors;
/* The listeners the acceptors serve: the start-up configuration's (a
 * reload keeps them; reload.h). */
static const struct mp_listen *started_listen;	/* per listener, waiting in accept() */

/* Runs while the acceptor holds the configuration (acceptor_thread):
 * the session runs on the one that was newest at accept to its end. */
static void
run_session(struct accepted *a)
{
	if (a->l->proto)
		mp_protocol_session_run(a->fd, a->l);
	else
		smtp_session_run(a->fd, a->l);
	close(a->fd);
	mp_metric_conn(mp_listen_protocol(a->l), MP_CONN_CLOSED);
	per_ip_leave(&pools[a->l->pool], a->addr);
	atomic_fetch_sub(&pools[a->l->pool].active, 1);
	free(a);
}

const char *
mp_listen_protocol(const struct mp_listen *l)
{
	return l->proto ? l->proto->mod->protocol->protocol : "smtp";
}

/* The refusal in the listener's own protocol: a client must understand
 * it (RFC 9051 7.1.5 BYE, RFC 1939 -ERR, RFC 5321 421). */
static void
refuse(const struct mp_listen *l, int fd, const char *why, const char *addr)
{
	const char *proto = mp_listen_protocol(l);
	char buf[256];
	int n;

	if (strcmp(proto, "imap") == 0)
		n = snprintf(buf, sizeof(buf), "* BYE [UNAVAILABLE] %s\r\n", why);
	else if (strcmp(proto, "pop3") == 0)
		n = snprintf(buf, sizeof(buf), "-ERR [SYS/TEMP] %s\r\n", why);
	else
		n = snprintf(buf, sizeof(buf), "421 4.7.0 %s %s\r\n",
		    mp_core.server.hostname, why);
	mp_log(MP_LOG_NOTICE, "refused [%s] on %s: %s", addr, l->label, why);
	(void)!send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* The connection, counted against the limits; NULL when refused. */
static struct accepted *
admit(const struct mp_listen *l, int fd, const struct sockaddr_storage *ss)
{
	struct accepted *a = mp_xcalloc(1, sizeof(*a));
	struct pool_state *p = &pools[l->pool];
	const struct mp_conn_limits *lim = &mp_core.pools[l->pool];
	const char *why = NULL;
	int loopback;

	a->fd = fd;
	a->l = l;
	mp_address_text(ss, a->addr, sizeof(a->addr), &loopback);
	if (atomic_fetch_add(&p->active, 1) >= lim->connections)
		why = "Too many connections, try again later";
	else if (!per_ip_enter(p, lim->connections_per_ip, a->addr))
		why = "Too many connections from your address";
	mp_metric_conn(mp_listen_protocol(l), why ? MP_CONN_REFUSED : MP_CONN_ACCEPTED);
	if (why == NULL)
		return a;
	atomic_fetch_sub(&p->active, 1);
	refuse(l, fd, why, a->addr);
	free(a);
	return NULL;
}

static void
describe_pools(char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < mp_core.npools && o < size; i++) {
		int n = snprintf(out + o, size - o, "%s%s%s%s.connections %lld",
		    i ? ", " : "", i ? "modules." : "", i ? mp_core.pools[i].name : "",
		    i ? ".limits" : "limits", mp_core.pools[i].connections);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

int
mp_listener_fit_fd_limit(char *err, size_t errsize)
{
	struct rlimit rl;
	rlim_t need = FDS_RESERVED;
	char pools_text[512];

	for (size_t i = 0; i < mp_core.npools; i++)
		need += (rlim_t)mp_core.pools[i].connections * FDS_PER_CONNECTION;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return 0;
	struct rlimit want = { need, rl.rlim_max < need ? need : rl.rlim_max };
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return 0;
	describe_pools(pools_text, sizeof(pools_text));
	snprintf(err, errsize, "the connection limits (%s) need %llu file "
	    "descriptors (%d per connection + %d) but RLIMIT_NOFILE allows %llu "
	    "(hard limit %llu) and cannot be raised: %s; raise it (ulimit -n, "
	    "systemd LimitNOFILE=) or lower the limits", pools_text,
	    (unsigned long long)need, FDS_PER_CONNECTION, FDS_RESERVED,
	    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
	    strerror(errno));
	return -1;
}

static int start_acceptor(const struct mp_listen *l);

/* Accept one connection; -1 (after a pause on resource exhaustion)
 * when none came. */
static int
accept_one(const struct mp_listen *l, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	int fd = accept4(l->fd, (struct sockaddr *)ss, &len, SOCK_CLOEXEC);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
	    errno == ENOMEM)) {
		mp_log_errno(MP_LOG_WARNING, "accept on %s", l->label);
		usleep(100000);
	}
	return fd;
}

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
	const struct mp_listen *l = arg;
	_Atomic int *idle = &idle_acceptors[l - started_listen];

	while (!atomic_load(&stopping)) {
		struct sockaddr_storage ss;
		struct accepted *a;

		atomic_fetch_add(idle, 1);
		int fd = accept_one(l, &ss);
		if (atomic_fetch_sub(idle, 1) == 1 && fd >= 0 && start_acceptor(l) != 0)
			mp_log_errno(MP_LOG_WARNING, "%s: no thread for the next connection "
			    "(accepted when this session ends)", l->label);
		if (fd < 0)
			continue;
		mp_core_hold();	/* admit reads the limits; never held in accept() */
		if ((a = admit(l, fd, &ss)) != NULL)
			run_session(a);
		mp_core_release();
		if (atomic_load(idle) >= SPARE_WORKERS)
			break;
	}
	mp_tls_thread_done();
	return NULL;
}

static int
start_acceptor(const struct mp_listen *l)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, SESSION_STACK);
	mp_tls_thread_starting();
	rc = pthread_create(&t, &attr, acceptor_thread, (void *)l);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		mp_tls_thread_not_started();
	errno = rc;
	return rc == 0 ? 0 : -1;
}

int
mp_listener_start(void)
{
	started_listen = mp_core.listen;
	idle_acceptors = mp_xcalloc(mp_core.nlisten ? mp_core.nlisten : 1,
	    sizeof(*idle_acceptors));
	pools = mp_xcalloc(mp_core.npools ? mp_core.npools : 1, sizeof(*pools));
	for (size_t i = 0; i < mp_core.npools; i++)
		pthread_mutex_init(&pools[i].lock, NULL);
	for (size_t i = 0; i < mp_core.nlisten; i++) {
		if (start_acceptor(&mp_core.listen[i]) != 0)
			return -1;
		mp_log(MP_LOG_INFO, "listening for %s on %s port %lld",
		    mp_core.listen[i].label, mp_core.listen[i].address,
		    mp_core.listen[i].port);
	}
	return 0;
}

void
mp_listener_stop(void)
{
	atomic_store(&stopping, 1);
	for (size_t i = 0; i < mp_core.nlisten; i++)
		if (mp_core.listen[i].fd >= 0)
			shutdown(mp_core.listen[i].fd, SHUT_RDWR);
}
