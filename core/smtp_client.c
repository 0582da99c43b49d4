/*
 * core/smtp_client.c - the outbound SMTP client (see smtp_client.h).
 *
 * Blocking I/O on the queue worker's thread, through the same buffered,
 * timed connection code as the server (core/conn.c). A server that
 * offers STARTTLS gets it (outbound.tls = "opportunistic"); if the
 * handshake fails the attempt falls back to plaintext once, as
 * opportunistic TLS must (RFC 3207 does not protect against active
 * attackers anyway).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "delivery_log.h"
#include "log.h"
#include "settings.h"
#include "smtp_client.h"
#include "tls.h"
#include "util.h"

struct peer_caps {
	int pipelining, starttls, size, dsn, eightbit, smtputf8;
};

struct client {
	struct conn c;
	struct peer_caps caps;
	char name[256];		/* for logs and SNI */
	int tls;
};

/* Read a whole (multi-line) reply; st gets the code and the last line's
 * text; each line is passed to each() (EHLO keywords). -1 on I/O. */
static int
read_reply(struct client *cl, struct mp_status *st,
    void (*each)(struct client *, const char *), int *code_r)
{
	char line[1024], enh[16];
	const char *text;
	size_t len;
	int code, more = 1, lines = 0;

	while (more) {
		int r = conn_read_line(&cl->c, line, sizeof(line), &len);
		if (r != CONN_OK || ++lines > 100 ||
		    smtp_client_parse_reply(line, &code, &more, enh, sizeof(enh),
		    &text) < 0) {
			*st = (struct mp_status)MP_STATUS(451, "4.4.2", "");
			snprintf(st->text, sizeof(st->text), "%.100s: %s", cl->name,
			    r == CONN_OK ? "bad reply from server" :
			    r == CONN_EOF ? "connection closed by server" :
			    "lost connection or timeout");
			return -1;
		}
		if (each)
			each(cl, text);
	}
	st->reply = code;
	snprintf(st->enhanced, sizeof(st->enhanced), "%s", enh[0] ? enh :
	    code < 300 ? "2.0.0" : code < 500 ? "4.0.0" : "5.0.0");
	snprintf(st->text, sizeof(st->text), "%.100s said: %d %.140s", cl->name, code,
	    text);
	*code_r = code;
	return 0;
}

static void
ehlo_keyword(struct client *cl, const char *kw)
{
	struct peer_caps *c = &cl->caps;

	if (strcasecmp(kw, "PIPELINING") == 0) c->pipelining = 1;
	else if (strcasecmp(kw, "STARTTLS") == 0) c->starttls = 1;
	else if (strncasecmp(kw, "SIZE", 4) == 0) c->size = 1;
	else if (strcasecmp(kw, "DSN") == 0) c->dsn = 1;
	else if (strcasecmp(kw, "8BITMIME") == 0) c->eightbit = 1;
	else if (strcasecmp(kw, "SMTPUTF8") == 0) c->smtputf8 = 1;
}

static int
connect_to(const struct sockaddr_storage *addr, char *why, size_t size)
{
	socklen_t len = addr->ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t elen = sizeof(err);

	if (fd < 0)
		goto fail;
	if (mp_core.outbound.source[0]) {
		struct sockaddr_storage src = { 0 };
		struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, mp_core.outbound.source, &s4->sin_addr) == 1 &&
		    addr->ss_family == AF_INET &&
		    bind(fd, (struct sockaddr *)&src, sizeof(*s4)) < 0)
			goto fail;
	}
	if (connect(fd, (const struct sockaddr *)addr, len) < 0 &&
	    errno != EINPROGRESS)
		goto fail;
	if (poll(&p, 1, (int)mp_core.outbound.connect_timeout * 1000) != 1) {
		errno = ETIMEDOUT;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
		errno = err ? err : errno;
		goto fail;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
fail:
	snprintf(why, size, "%s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
send_ehlo(struct client *cl, struct mp_status *st)
{
	const char *helo = mp_core.outbound.helo[0] ? mp_core.outbound.helo :
	    mp_core.server.hostname;
	int code;

	memset(&cl->caps, 0, sizeof(cl->caps));
	conn_printf(&cl->c, "EHLO %s\r\n", helo);
	if (read_reply(cl, st, ehlo_keyword, &code) < 0)
		return MP_TEMPFAIL;
	if (code / 100 == 2)
		return MP_OK;
	memset(&cl->caps, 0, sizeof(cl->caps));
	conn_printf(&cl->c, "HELO %s\r\n", helo);
	if (read_reply(cl, st, NULL, &code) < 0)
		return MP_TEMPFAIL;
	return code / 100 == 2 ? MP_OK : code / 100 == 5 ? MP_PERMFAIL : MP_TEMPFAIL;
}

static int
try_starttls(struct client *cl, struct mp_status *st)
{
	int code;

	if (!cl->caps.starttls || strcmp(mp_core.outbound.tls, "none") == 0 ||
	    mp_core.tls_client_ctx == NULL)
		return MP_OK;
	conn_printf(&cl->c, "STARTTLS\r\n");
	if (read_reply(cl, st, NULL, &code) < 0)
		return MP_TEMPFAIL;
	if (code != 220)
		return MP_OK;	/* offered but refused: go on in plaintext */
	if (conn_start_tls_client(&cl->c, mp_core.tls_client_ctx, cl->name) < 0) {
		snprintf(st->text, sizeof(st->text), "%.100s: TLS handshake failed",
		    cl->name);
		st->reply = 451;
		snprintf(st->enhanced, sizeof(st->enhanced), "4.7.5");
		return MP_DECLINED;
	}
	cl->tls = 1;
	return send_ehlo(cl, st);
}

/* Connect, greeting, EHLO, STARTTLS. */
static int
open_session(struct client *cl, const struct sockaddr_storage *addr,
    int allow_tls, struct mp_status *st)
{
	char why[128];
	int fd = connect_to(addr, why, sizeof(why)), code, rc;

	if (fd < 0) {
		*st = (struct mp_status)MP_STATUS(451, "4.4.1", "");
		snprintf(st->text, sizeof(st->text), "connect to %.100s: %.120s",
		    cl->name, why);
		return MP_TEMPFAIL;
	}
	conn_init(&cl->c, fd, (int)mp_core.outbound.command_timeout * 1000);
	if (read_reply(cl, st, NULL, &code) < 0)
		return MP_TEMPFAIL;
	if (code != 220)
		return code / 100 == 5 ? MP_PERMFAIL : MP_TEMPFAIL;
	rc = send_ehlo(cl, st);
	if (rc == MP_OK && allow_tls)
		rc = try_starttls(cl, st);
	return rc;
}

static void
close_session(struct client *cl, int polite)
{
	struct mp_status st;
	int code;

	if (polite) {
		conn_printf(&cl->c, "QUIT\r\n");
		read_reply(cl, &st, NULL, &code);
	}
	conn_flush(&cl->c);
	conn_end(&cl->c);
	close(cl->c.fd);
}

static void
mail_command(struct client *cl, const struct mp_qmsg *m)
{
	conn_printf(&cl->c, "MAIL FROM:<%s>", m->sender);
	if (cl->caps.size)
		conn_printf(&cl->c, " SIZE=%lld", (long long)m->size);
	if (cl->caps.dsn && m->ret && m->ret[0])
		conn_printf(&cl->c, " RET=%s", m->ret);
	if (cl->caps.dsn && m->envid && m->envid[0])
		conn_printf(&cl->c, " ENVID=%s", m->envid);
	conn_printf(&cl->c, "\r\n");
}

static void
rcpt_command(struct client *cl, const struct mp_rcpt *r)
{
	conn_printf(&cl->c, "RCPT TO:<%s>", r->address);
	if (cl->caps.dsn && r->notify && r->notify[0])
		conn_printf(&cl->c, " NOTIFY=%s", r->notify);
	if (cl->caps.dsn && r->orcpt && r->orcpt[0])
		conn_printf(&cl->c, " ORCPT=%s", r->orcpt);
	conn_printf(&cl->c, "\r\n");
}

static int
result_of(int code)
{
	return code / 100 == 2 ? MP_OK : code / 100 == 5 ? MP_PERMFAIL : MP_TEMPFAIL;
}

/* Send the message body dot-stuffed, then ".". 0 or -1. */
static int
send_body(struct client *cl, const struct mp_qmsg *m)
{
	struct mp_reader r;
	char buf[8192];
	int bol = 1;
	ssize_t n;

	if (mp_queue_reader_open(mp_core.queue_dir, m, &r) < 0)
		return -1;
	while ((n = r.read(&r, buf, sizeof(buf))) > 0) {
		size_t start = 0;
		for (size_t i = 0; i < (size_t)n; i++) {
			if (bol && buf[i] == '.') {
				conn_write(&cl->c, buf + start, i - start);
				conn_write(&cl->c, ".", 1);
				start = i;
			}
			bol = buf[i] == '\n';
		}
		if (conn_write(&cl->c, buf + start, (size_t)n - start) < 0)
			break;
	}
	mp_queue_reader_close(&r);
	if (n < 0)
		return -1;
	return conn_write(&cl->c, bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5);
}

/* MAIL, RCPTs, DATA; pipelined when the server offers PIPELINING. */
static int
envelope(struct client *cl, const struct mp_qmsg *m, struct mp_rcpt **r,
    size_t n, struct mp_status *st, size_t *accepted)
{
	int code, mail_rc;

	mail_command(cl, m);
	if (!cl->caps.pipelining) {
		if (read_reply(cl, st, NULL, &code) < 0)
			return MP_TEMPFAIL;
		if (code / 100 != 2)
			return result_of(code);
	}
	for (size_t i = 0; i < n; i++) {
		rcpt_command(cl, r[i]);
		if (!cl->caps.pipelining) {
			if (read_reply(cl, &r[i]->status, NULL, &code) < 0)
				return MP_TEMPFAIL;
			r[i]->rc = result_of(code);
			*accepted += r[i]->rc == MP_OK;
		}
	}
	if (!cl->caps.pipelining)
		return MP_OK;
	conn_printf(&cl->c, "DATA\r\n");
	if (read_reply(cl, st, NULL, &code) < 0)
		return MP_TEMPFAIL;
	mail_rc = result_of(code);
	for (size_t i = 0; i < n; i++) {
		if (read_reply(cl, &r[i]->status, NULL, &code) < 0)
			return MP_TEMPFAIL;
		r[i]->rc = result_of(code);
		*accepted += r[i]->rc == MP_OK;
	}
	return mail_rc;
}

static void
all(struct mp_rcpt **r, size_t n, int rc, const struct mp_status *st)
{
	for (size_t i = 0; i < n; i++)
		if (rc != MP_OK || r[i]->rc == MP_OK) {
			r[i]->rc = rc;
			r[i]->status = *st;
		}
}

static int
transaction(struct client *cl, const struct mp_qmsg *m, struct mp_rcpt **r,
    size_t n, struct mp_status *st)
{
	size_t accepted = 0;
	mp_delivery_connected();
	int code, rc = envelope(cl, m, r, n, st, &accepted);

	if (rc != MP_OK)
		return rc;
	if (cl->caps.pipelining) {
		/* The DATA reply came after the RCPT replies. */
		if (accepted == 0) {
			if (read_reply(cl, st, NULL, &code) == 0 && code == 354)
				conn_printf(&cl->c, ".\r\n");
			return MP_OK;
		}
	} else {
		if (accepted == 0)
			return MP_OK;
		conn_printf(&cl->c, "DATA\r\n");
	}
	if (read_reply(cl, st, NULL, &code) < 0)
		return MP_TEMPFAIL;
	if (code != 354) {
		all(r, n, result_of(code), st);
		return MP_OK;
	}
	conn_set_timeout(&cl->c, (int)mp_core.outbound.data_timeout * 1000);
	if (send_body(cl, m) < 0 || read_reply(cl, st, NULL, &code) < 0)
		return MP_TEMPFAIL;
	all(r, n, result_of(code), st);
	return MP_OK;
}

/*
 * Connection reuse: after a successful transaction the connection is
 * kept (per worker thread) and the next message for the same server
 * address starts with RSET instead of a new connect, EHLO and TLS
 * handshake. The runner releases it when the worker runs out of due
 * messages, so idle connections never linger.
 */
static _Thread_local struct client *kept;
static _Thread_local struct sockaddr_storage kept_addr;

static int
same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

void
smtp_client_release(void)
{
	if (kept == NULL)
		return;
	close_session(kept, 1);
	free(kept);
	kept = NULL;
}

/* The kept connection to addr, ready after RSET; NULL if none works. */
static struct client *
reuse(const struct sockaddr_storage *addr)
{
	struct client *cl = kept;
	struct mp_status st;
	int code;

	if (cl == NULL || !same_address(addr, &kept_addr)) {
		smtp_client_release();
		return NULL;
	}
	kept = NULL;
	conn_printf(&cl->c, "RSET\r\n");
	if (read_reply(cl, &st, NULL, &code) == 0 && code == 250)
		return cl;
	close_session(cl, 0);
	free(cl);
	return NULL;
}

static void
keep(struct client *cl, const struct sockaddr_storage *addr)
{
	smtp_client_release();
	kept = cl;
	kept_addr = *addr;
}

int
smtp_client_send(const struct sockaddr_storage *addr, const char *mx_name,
    const struct mp_qmsg *m, struct mp_rcpt **r, size_t n,
    struct mp_status *st)
{
	struct client *cl = reuse(addr);
	int rc;

	for (size_t i = 0; i < n; i++)
		r[i]->rc = MP_TEMPFAIL;
	if (cl) {
		rc = transaction(cl, m, r, n, st);
		if (rc == MP_OK) {
			keep(cl, addr);
			return rc;
		}
		close_session(cl, 0);
		free(cl);	/* a broken kept connection: start afresh below */
		for (size_t i = 0; i < n; i++)
			r[i]->rc = MP_TEMPFAIL;
	}
	for (int allow_tls = 1; allow_tls >= 0; allow_tls--) {
		cl = mp_xcalloc(1, sizeof(*cl));
		cl->c.fd = -1;
		snprintf(cl->name, sizeof(cl->name), "%s", mx_name);
		rc = open_session(cl, addr, allow_tls, st);
		if (rc == MP_DECLINED) {	/* TLS failed: once more in plaintext */
			if (cl->c.fd >= 0)
				close(cl->c.fd);
			free(cl);
			continue;
		}
		if (rc == MP_OK)
			rc = transaction(cl, m, r, n, st);
		if (rc == MP_OK && cl->tls)
			mp_log(MP_LOG_DEBUG, "sent to %s over TLS", mx_name);
		if (rc == MP_OK) {
			keep(cl, addr);
			return rc;
		}
		if (cl->c.fd >= 0)
			close_session(cl, rc == MP_PERMFAIL);
		free(cl);
		return rc;
	}
	return MP_TEMPFAIL;
}
