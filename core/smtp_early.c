/*
 * core/smtp_early.c - the pregreet test, as Postfix's postscreen does
 * it: an SMTP client must wait for the server's 220 (RFC 5321 3.1,
 * 4.3.1); spam engines often send EHLO, or a whole pipelined
 * transaction, at once. With smtp.greeting_delay set, the greeting waits
 * that long, and a client whose bytes arrive in the meantime gets
 * 554 5.5.1 and is closed. Without a delay there is nothing to see:
 * the greeting goes out at once, so the test is off by default.
 * Implicit-TLS listeners are left out: their client rightly speaks first
 * (the TLS handshake), and the greeting follows it.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "smtp_early.h"

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 once fd is readable (data or EOF) within ms, 0 when it stayed
 * quiet, -1 on a poll error. */
static int
readable_within(int fd, long long ms)
{
	long long end = now_ms() + ms;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		long long left = end - now_ms();
		if (left <= 0)
			return 0;
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* 1 when the client sent bytes, 0 when it closed (or reset). */
static int
client_sent(int fd)
{
	char byte;

	return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/*
 * Close gently after the 554: closing a socket with unread input sends
 * a reset, which can destroy the reply before the client reads it. So
 * end our side, then read and drop what the client sends, at most
 * 64 KiB for at most half a second.
 */
static void
linger_after_reject(int fd)
{
	char buf[4096];
	size_t total = 0;
	long long end = now_ms() + 500;

	shutdown(fd, SHUT_WR);
	while (total < 65536 && readable_within(fd, end - now_ms()) == 1) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

int
smtp_greeting_wait(struct session *s)
{
	long long delay = mp_core.smtp.greeting_delay;

	if (delay <= 0 || s->l->tls == LISTEN_TLS_IMPLICIT)
		return 1;
	int r = readable_within(s->c.fd, delay * 1000);
	if (r == 0 && conn_pending(&s->c) == 0)
		return 1;
	if (r < 0 || !client_sent(s->c.fd)) {
		mp_log(MP_LOG_INFO, "client [%s] left before the greeting",
		    s->client);
		return 0;
	}
	mp_log(MP_LOG_NOTICE, "pregreet: client [%s] talked before the "
	    "greeting (greeting_delay %llds); rejected", s->client, delay);
	smtp_reply(s, 554, "5.5.1", "%s Protocol error: you talked before "
	    "the greeting", mp_core.server.hostname);
	conn_flush(&s->c);
	linger_after_reject(s->c.fd);
	return 0;
}
