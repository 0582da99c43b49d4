/*
 * core/conn.c - connection I/O (see conn.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "conn.h"
#include "metrics.h"

static void set_socket_timeouts(int fd, int ms);

void
conn_set_timeout(struct conn *c, int timeout_ms)
{
	set_socket_timeouts(c->fd, timeout_ms);
}

void
conn_init(struct conn *c, int fd, int timeout_ms)
{
	int one = 1;

	/* Replies are buffered and sent whole, so Nagle has nothing to
	 * merge; it would only hold the tail of a long reply (UIDL, FETCH)
	 * until the peer's delayed ACK, 40 ms later. Not TCP: ignored. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->ssl = NULL;
	set_socket_timeouts(fd, timeout_ms);
	c->eof = 0;
	c->ipos = c->iend = 0;
	c->olen = 0;
}

/* read() bounded by SO_RCVTIMEO, whose expiry reads as EAGAIN. */
static ssize_t
plain_read(int fd, char *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		errno = ETIMEDOUT;
	return n;
}

/* SSL_read with the socket's receive timeout; 0 on a clean close. */
static ssize_t
tls_read(struct conn *c, char *buf, size_t len)
{
	int n = SSL_read(c->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));

	if (n > 0)
		return n;
	int e = SSL_get_error(c->ssl, n);
	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		errno = ETIMEDOUT;
	else if (e != SSL_ERROR_SYSCALL || errno == 0)
		errno = EPROTO;
	return -1;
}

static ssize_t
tls_write(struct conn *c, const char *buf, size_t len)
{
	int n = SSL_write(c->ssl, buf, (int)len);

	if (n > 0)
		return n;
	ERR_clear_error();
	if (errno == 0)
		errno = EPIPE;
	return -1;
}

/* The socket's timeouts bound every blocking call on it: read(),
 * send(), and TLS's handshake, SSL_read and SSL_write. */
static void
set_socket_timeouts(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The handshake, as server or (with sni) as client. Buffered input is
 * dropped first: nothing sent before TLS may be read as if after it. */
static int
start_tls(struct conn *c, SSL_CTX *ctx, int client, const char *sni)
{
	if (conn_flush(c) < 0)
		return -1;
	c->ipos = c->iend = 0;
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (client && sni && sni[0] && SSL_set_tlsext_host_name(c->ssl, sni) != 1) ||
	    (client ? SSL_connect(c->ssl) : SSL_accept(c->ssl)) != 1) {
		ERR_clear_error();
		if (c->ssl)
			SSL_free(c->ssl);
		c->ssl = NULL;
		mp_metric_tls(client, 0);
		return -1;
	}
	mp_metric_tls(client, 1);
	return 0;
}

int
conn_start_tls(struct conn *c, SSL_CTX *ctx)
{
	return start_tls(c, ctx, 0, NULL);
}

int
conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *sni)
{
	return start_tls(c, ctx, 1, sni);
}

void
conn_end(struct conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
}

/* Refill the input buffer; 1 got data, 0 EOF, -1 error or timeout. */
static int
fill(struct conn *c)
{
	ssize_t n;

	if (c->ipos == c->iend)
		c->ipos = c->iend = 0;
	else if (c->iend == sizeof(c->in)) {
		memmove(c->in, c->in + c->ipos, c->iend - c->ipos);
		c->iend -= c->ipos;
		c->ipos = 0;
	}
	if (conn_flush(c) < 0)
		return -1;
	/* No poll() first: the socket's SO_RCVTIMEO bounds the wait, and
	 * one syscall per read instead of two is measurable per message. */
	if (c->ssl)
		n = tls_read(c, c->in + c->iend, sizeof(c->in) - c->iend);
	else
		n = plain_read(c->fd, c->in + c->iend, sizeof(c->in) - c->iend);
	if (n == 0)
		c->eof = 1;
	if (n <= 0)
		return n == 0 ? 0 : -1;
	c->iend += (size_t)n;
	return 1;
}

/* Skip input up to and including the next LF. */
static int
skip_line(struct conn *c)
{
	for (;;) {
		char *nl = memchr(c->in + c->ipos, '\n', c->iend - c->ipos);
		if (nl) {
			c->ipos = (size_t)(nl - c->in) + 1;
			return CONN_TOO_LONG;
		}
		c->ipos = c->iend;
		int r = fill(c);
		if (r <= 0)
			return r == 0 ? CONN_EOF : CONN_ERROR;
	}
}

/* Move n buffered bytes into line at *have, keeping it NUL-terminated
 * and at most max - 1 bytes long (the rest is dropped). */
static void
take(struct conn *c, char *line, size_t max, size_t *have, size_t n)
{
	size_t room = max - 1 - *have;
	size_t k = n < room ? n : room;

	memcpy(line + *have, c->in + c->ipos, k);
	*have += k;
	line[*have] = '\0';
	c->ipos += n;
}

/*
 * A line may be longer than the input buffer: a full buffer without LF
 * is moved into line and reading goes on. Over max, the start of the
 * line stays in line (a protocol can still read its tag) and the rest
 * is skipped.
 */
int
conn_read_line(struct conn *c, char *line, size_t max, size_t *len_r)
{
	size_t scanned = 0, have = 0;

	line[0] = '\0';
	for (;;) {
		size_t avail = c->iend - c->ipos;
		char *nl = memchr(c->in + c->ipos + scanned, '\n',
		    avail - scanned);
		if (nl) {
			size_t len = (size_t)(nl - (c->in + c->ipos));
			if (have + len >= max) {
				take(c, line, max, &have, len + 1);
				return CONN_TOO_LONG;
			}
			take(c, line, max, &have, len);
			c->ipos++;
			if (have > 0 && line[have - 1] == '\r')
				line[--have] = '\0';
			*len_r = have;
			return CONN_OK;
		}
		scanned = avail;
		if (have + avail >= max) {
			take(c, line, max, &have, avail);
			return skip_line(c);
		}
		if (avail == sizeof(c->in)) {	/* full: make room */
			take(c, line, max, &have, avail);
			scanned = 0;
		}
		int r = fill(c);
		if (r <= 0)
			return r == 0 ? CONN_EOF : CONN_ERROR;
	}
}

ssize_t
conn_read_some(struct conn *c, char *buf, size_t max)
{
	size_t n;

	if (c->ipos == c->iend) {
		int r = fill(c);
		if (r <= 0)
			return r;
	}
	n = c->iend - c->ipos;
	if (n > max)
		n = max;
	memcpy(buf, c->in + c->ipos, n);
	c->ipos += n;
	return (ssize_t)n;
}

size_t
conn_pending(const struct conn *c)
{
	return c->iend - c->ipos;
}

int
conn_flush(struct conn *c)
{
	size_t off = 0;

	while (off < c->olen) {
		ssize_t n = c->ssl ? tls_write(c, c->out + off, c->olen - off) :
		    send(c->fd, c->out + off, c->olen - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			c->olen = 0;
			return -1;
		}
		off += (size_t)n;
	}
	c->olen = 0;
	return 0;
}

int
conn_write(struct conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		size_t room = sizeof(c->out) - c->olen;
		if (room == 0) {
			if (conn_flush(c) < 0)
				return -1;
			continue;
		}
		size_t n = len < room ? len : room;
		memcpy(c->out + c->olen, buf, n);
		c->olen += n;
		buf += n;
		len -= n;
	}
	return 0;
}

int
conn_printf(struct conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	return conn_write(c, buf, (size_t)n < sizeof(buf) ? (size_t)n :
	    sizeof(buf) - 1);
}
