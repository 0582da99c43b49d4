/*
 * core/conn.c - connection I/O (see conn.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

void
conn_init(struct conn *c, int fd, int timeout_ms)
{
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->eof = 0;
	c->ipos = c->iend = 0;
	c->olen = 0;
}

static int
wait_readable(struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, c->timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		errno = ETIMEDOUT;
	return n > 0 ? 0 : -1;
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
	if (conn_flush(c) < 0 || wait_readable(c) < 0)
		return -1;
	do
		n = read(c->fd, c->in + c->iend, sizeof(c->in) - c->iend);
	while (n < 0 && errno == EINTR);
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

int
conn_read_line(struct conn *c, char *line, size_t max, size_t *len_r)
{
	size_t scanned = 0;

	if (max > sizeof(c->in))
		max = sizeof(c->in);
	for (;;) {
		size_t avail = c->iend - c->ipos;
		char *nl = memchr(c->in + c->ipos + scanned, '\n',
		    avail - scanned);
		if (nl) {
			size_t len = (size_t)(nl - (c->in + c->ipos));
			if (len >= max) {
				c->ipos += len + 1;
				return CONN_TOO_LONG;
			}
			memcpy(line, c->in + c->ipos, len);
			c->ipos += len + 1;
			if (len > 0 && line[len - 1] == '\r')
				len--;
			line[len] = '\0';
			*len_r = len;
			return CONN_OK;
		}
		scanned = avail;
		if (avail >= max)
			return skip_line(c);
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
		ssize_t n = send(c->fd, c->out + off, c->olen - off,
		    MSG_NOSIGNAL);
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
