/*
 * core/protocol.c - protocol module sessions (see protocol.h).
 *
 * The module gets an opaque struct mp_conn; everything that touches the
 * socket or TLS stays in the core (DESIGN.md: the core owns sockets and
 * TLS), so a protocol module is only a state machine over lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "log.h"
#include "protocol.h"
#include "tls.h"
#include "util.h"

/* Idle timeout of a protocol session until the module sets its own:
 * RFC 1939's 10 minutes for POP3; IMAP modules raise it to 30. */
#define DEFAULT_TIMEOUT_MS (10 * 60 * 1000)

struct mp_conn {
	struct conn c;
	struct mp_conn_info info;
	const struct mp_listen *l;
	char peer[64];
	char tls_desc[160];
	char label[96];
};

void
mp_address_text(const struct sockaddr_storage *ss, char *out, size_t size,
    int *loopback)
{
	mp_strlcpy(out, "unknown", size);
	*loopback = 0;
	if (ss->ss_family == AF_INET) {
		const struct in_addr *a = &((const struct sockaddr_in *)ss)->sin_addr;
		inet_ntop(AF_INET, a, out, (socklen_t)size);
		*loopback = (ntohl(a->s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		inet_ntop(AF_INET6, a, out, (socklen_t)size);
		*loopback = IN6_IS_ADDR_LOOPBACK(a);
	}
}

void
mp_peer_address(int fd, char *out, size_t size, int *loopback)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		ss.ss_family = AF_UNSPEC;
	mp_address_text(&ss, out, size, loopback);
}

int
mp_host_conn_read_line(struct mp_conn *c, char *buf, size_t size,
    size_t *len_r)
{
	return conn_read_line(&c->c, buf, size, len_r);
}

ssize_t
mp_host_conn_read(struct mp_conn *c, void *buf, size_t size)
{
	return conn_read_some(&c->c, buf, size);
}

int
mp_host_conn_write(struct mp_conn *c, const void *buf, size_t len)
{
	return conn_write(&c->c, buf, len);
}

int
mp_host_conn_printf(struct mp_conn *c, const char *fmt, ...)
{
	char stack[1024], *heap = NULL, *p = stack;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(stack, sizeof(stack), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(stack)) {
		p = heap = mp_xmalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(heap, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	rc = conn_write(&c->c, p, (size_t)n);
	free(heap);
	return rc;
}

int
mp_host_conn_flush(struct mp_conn *c)
{
	return conn_flush(&c->c);
}

size_t
mp_host_conn_pending(struct mp_conn *c)
{
	return conn_pending(&c->c);
}

static int
handshake(struct mp_conn *c)
{
	if (mp_core.tls_ctx == NULL || conn_start_tls(&c->c, mp_core.tls_ctx) < 0) {
		mp_log(MP_LOG_NOTICE, "TLS handshake failed with [%s] on %s",
		    c->peer, c->label);
		return -1;
	}
	mp_tls_describe(c->c.ssl, c->tls_desc, sizeof(c->tls_desc));
	c->info.tls = 1;
	c->info.starttls = 0;
	mp_log(MP_LOG_INFO, "TLS established with [%s] on %s: %s", c->peer,
	    c->label, c->tls_desc);
	return 0;
}

int
mp_host_conn_start_tls(struct mp_conn *c)
{
	if (c->info.tls || !c->info.starttls)
		return -1;
	return handshake(c);
}

const struct mp_conn_info *
mp_host_conn_info(struct mp_conn *c)
{
	return &c->info;
}

int
mp_host_conn_wait(struct mp_conn *c, int other_fd, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = c->c.fd, .events = POLLIN },
	    { .fd = other_fd, .events = POLLIN } };
	int n;

	if (conn_pending(&c->c) > 0 || (c->c.ssl && SSL_pending(c->c.ssl) > 0))
		return 1;
	do
		n = poll(p, other_fd >= 0 ? 2 : 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0)
		return 0;
	return p[0].revents ? 1 : 2;
}

void
mp_host_conn_set_timeout(struct mp_conn *c, long long seconds)
{
	if (seconds > 0 && seconds < 86400)
		conn_set_timeout(&c->c, (int)seconds * 1000);
}

void
mp_protocol_session_run(int fd, const struct mp_listen *l)
{
	struct mp_conn *c = mp_xcalloc(1, sizeof(*c));
	const struct mp_loaded *m = l->proto;

	conn_init(&c->c, fd, DEFAULT_TIMEOUT_MS);
	c->l = l;
	mp_peer_address(fd, c->peer, sizeof(c->peer), &c->info.loopback);
	mp_strlcpy(c->label, l->label, sizeof(c->label));
	c->info.struct_size = sizeof(c->info);
	c->info.peer = c->peer;
	c->info.tls_desc = c->tls_desc;
	c->info.listener = c->label;
	c->info.starttls = l->tls == LISTEN_TLS_STARTTLS && mp_core.tls_ctx;
	mp_log(MP_LOG_INFO, "connect from [%s] to %s", c->peer, c->label);
	if (l->tls != LISTEN_TLS_IMPLICIT || handshake(c) == 0) {
		mp_log_set_module(m->name);
		m->mod->protocol->session(m->ctx, c);
		mp_log_set_module(NULL);
		conn_flush(&c->c);
	}
	conn_end(&c->c);
	mp_log(MP_LOG_INFO, "disconnect from [%s] on %s", c->peer, c->label);
	free(c);
}
