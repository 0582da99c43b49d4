/*
 * core/smtp_session.c - one SMTP server session: the RFC 5321 command
 * state machine, replies with RFC 3463 enhanced codes, and DATA
 * streamed straight into the queue. Not here: sockets and limits per
 * client (smtp_server.c), parsing (smtp_parse.c, smtp_data.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "queue.h"
#include "runner.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "smtp_server.h"
#include "util.h"

#define ADDR_MAX 320

struct session {
	struct conn c;
	const struct mp_listen *l;
	char client[64];	/* the peer's IP address */
	char helo[256];
	int greeted, esmtp, quit;
	int errors;
	int in_mail;
	char sender[ADDR_MAX];
	struct smtp_mail_params params;
	char **rcpts;
	size_t nrcpt;
};

static void
reply(struct session *s, int code, const char *enh, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conn_printf(&s->c, "%d %s%s%s\r\n", code, enh ? enh : "",
	    enh ? " " : "", text);
	if (code >= 500 && code != 552)
		s->errors++;
}

static void
reset_transaction(struct session *s)
{
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = 0;
	s->in_mail = 0;
	s->sender[0] = '\0';
}

static void
do_helo(struct session *s, const char *arg, int esmtp)
{
	if (arg[0] == '\0' || strlen(arg) >= sizeof(s->helo) ||
	    strpbrk(arg, " \t") != NULL) {
		reply(s, 501, "5.5.4", "Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	reset_transaction(s);
	mp_strlcpy(s->helo, arg, sizeof(s->helo));
	s->greeted = 1;
	s->esmtp = esmtp;
	if (!esmtp) {
		reply(s, 250, NULL, "%s", mp_core.server.hostname);
		return;
	}
	conn_printf(&s->c, "250-%s\r\n", mp_core.server.hostname);
	conn_printf(&s->c, "250-PIPELINING\r\n");
	conn_printf(&s->c, "250-SIZE %lld\r\n", mp_core.limits.message_size);
	conn_printf(&s->c, "250-8BITMIME\r\n");
	conn_printf(&s->c, "250-SMTPUTF8\r\n");
	conn_printf(&s->c, "250 ENHANCEDSTATUSCODES\r\n");
}

static int
path_error(struct session *s, enum smtp_path_result r, const char *what)
{
	if (r == SMTP_PATH_TOO_LONG)
		reply(s, 501, "5.1.3", "%s address too long", what);
	else
		reply(s, 501, "5.5.4", "Syntax: %s", what[0] == 'S' ?
		    "MAIL FROM:<address>" : "RCPT TO:<address>");
	return -1;
}

static void
do_mail(struct session *s, const char *arg)
{
	const char *params;
	char bad[64];
	enum smtp_path_result r;

	if (!s->greeted) {
		reply(s, 503, "5.5.1", "Send EHLO or HELO first");
		return;
	}
	if (s->in_mail) {
		reply(s, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	r = smtp_parse_path(arg, "FROM", 1, s->sender, sizeof(s->sender),
	    &params);
	if (r != SMTP_PATH_OK) {
		path_error(s, r, "Sender");
		return;
	}
	if (smtp_parse_mail_params(params, &s->params, bad, sizeof(bad)) < 0) {
		reply(s, 555, "5.5.4", "Unsupported or bad parameter %s", bad);
		return;
	}
	if (s->params.size > mp_core.limits.message_size) {
		reply(s, 552, "5.3.4", "Message too big: limit is %lld bytes",
		    mp_core.limits.message_size);
		return;
	}
	s->in_mail = 1;
	reply(s, 250, "2.1.0", "Sender <%s> ok", s->sender);
}

/* 1 accept, 0 refused (reply sent). */
static int
check_recipient(struct session *s, const char *addr)
{
	char local[ADDR_MAX], domain[ADDR_MAX];
	const char *err = NULL;
	int found;

	if (smtp_split_address(addr, local, sizeof(local), domain,
	    sizeof(domain)) < 0 || !mp_core_is_local_domain(domain)) {
		reply(s, 554, "5.7.1", "<%s>: Relay access denied", addr);
		return 0;
	}
	if (mp_core.auth.ops == NULL) {
		reply(s, 451, "4.3.0", "<%s>: no user database configured", addr);
		return 0;
	}
	found = mp_core.auth.ops->user_exists(mp_core.auth.ctx, addr, &err);
	if (found < 0) {
		mp_log(MP_LOG_WARNING, "user lookup for <%s> failed: %s", addr,
		    err ? err : "unknown error");
		reply(s, 451, "4.3.0", "<%s>: temporary lookup failure", addr);
		return 0;
	}
	if (found == 0) {
		reply(s, 550, "5.1.1", "<%s>: Recipient address rejected: "
		    "User unknown", addr);
		return 0;
	}
	return 1;
}

static void
do_rcpt(struct session *s, const char *arg)
{
	char addr[ADDR_MAX];
	const char *params;
	enum smtp_path_result r;

	if (!s->in_mail) {
		reply(s, 503, "5.5.1", "Need MAIL before RCPT");
		return;
	}
	r = smtp_parse_path(arg, "TO", 0, addr, sizeof(addr), &params);
	if (r != SMTP_PATH_OK) {
		path_error(s, r, "Recipient");
		return;
	}
	if (params[0] != '\0') {
		reply(s, 555, "5.5.4", "RCPT parameters not supported");
		return;
	}
	if ((long long)s->nrcpt >= mp_core.limits.recipients) {
		reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	mp_lowercase(strchr(addr, '@'));
	if (!check_recipient(s, addr))
		return;
	s->rcpts = realloc(s->rcpts, (s->nrcpt + 1) * sizeof(char *));
	if (s->rcpts == NULL)
		abort();
	s->rcpts[s->nrcpt++] = mp_xstrdup(addr);
	reply(s, 250, "2.1.5", "Recipient <%s> ok", addr);
}

static int
write_received(struct session *s, struct mp_qwriter *w, const char *id)
{
	char buf[1024], date[64];
	int n;

	mp_rfc5322_date(date, sizeof(date));
	n = snprintf(buf, sizeof(buf),
	    "Received: from %s ([%s])\r\n\tby %s (merpati) with %s id %s%s%s%s;\r\n\t%s\r\n",
	    s->helo, s->client, mp_core.server.hostname,
	    s->esmtp ? "ESMTP" : "SMTP", id,
	    s->nrcpt == 1 ? "\r\n\tfor <" : "",
	    s->nrcpt == 1 ? s->rcpts[0] : "", s->nrcpt == 1 ? ">" : "", date);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = snprintf(buf, sizeof(buf),
		    "Received: by %s (merpati) id %s;\r\n\t%s\r\n",
		    mp_core.server.hostname, id, date);
	return mp_queue_write(w, buf, (size_t)n);
}

struct data_outcome {
	int io_error;		/* connection lost: no reply possible */
	int disk_errno;		/* writing the queue failed */
	struct smtp_data sm;
};

/* Stream the data into w until the end marker; keeps reading to the end
 * even after a limit is hit, so the client stays in sync. */
static void
receive_data(struct session *s, struct mp_qwriter *w, struct data_outcome *o)
{
	char in[8192], out[2 * sizeof(in) + 4];
	int done = 0;

	smtp_data_init(&o->sm);
	conn_set_timeout(&s->c, (int)mp_core.limits.data_timeout * 1000);
	while (!done) {
		ssize_t n = conn_read_some(&s->c, in, sizeof(in));
		if (n <= 0) {
			o->io_error = 1;
			return;
		}
		size_t outlen, used = smtp_data_feed(&o->sm, in, (size_t)n,
		    out, &outlen, &done);
		/* Give back pipelined bytes after the end marker. */
		s->c.ipos -= (size_t)n - used;
		if (o->disk_errno == 0 && !o->sm.bare_eol &&
		    o->sm.size <= (unsigned long long)mp_core.limits.message_size &&
		    mp_queue_write(w, out, outlen) < 0)
			o->disk_errno = errno;
	}
	conn_set_timeout(&s->c, (int)mp_core.limits.command_timeout * 1000);
}

static void
data_reply(struct session *s, struct mp_qwriter *w, const char *id,
    const struct data_outcome *o)
{
	if (o->sm.size > (unsigned long long)mp_core.limits.message_size) {
		mp_queue_abort(w);
		reply(s, 552, "5.3.4", "Message too big: limit is %lld bytes",
		    mp_core.limits.message_size);
	} else if (o->sm.bare_eol) {
		mp_queue_abort(w);
		reply(s, 550, "5.6.0", "Message contains bare CR or LF "
		    "line endings; use CRLF");
	} else if (o->disk_errno || mp_queue_commit(w) < 0) {
		int e = o->disk_errno ? o->disk_errno : errno;
		if (o->disk_errno)
			mp_queue_abort(w);
		mp_log(MP_LOG_ERR, "%s: cannot queue message: %s", id,
		    strerror(e));
		reply(s, 452, "4.3.1", "Insufficient system storage");
	} else {
		mp_log(MP_LOG_INFO, "%s: accepted from=<%s> nrcpt=%zu size=%llu client=[%s]",
		    id, s->sender, s->nrcpt, o->sm.size, s->client);
		reply(s, 250, "2.0.0", "Ok: queued as %s", id);
		mp_runner_notify(id);
	}
}

static void
do_data(struct session *s, const char *arg)
{
	struct mp_qmsg env = { 0 };
	struct data_outcome o = { 0 };
	struct mp_qwriter *w;
	char id[MP_QID_SIZE];

	if (arg[0] != '\0') {
		reply(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (!s->in_mail || s->nrcpt == 0) {
		reply(s, 503, "5.5.1", s->in_mail ? "No valid recipients" :
		    "Need MAIL and RCPT before DATA");
		return;
	}
	env.sender = s->sender;
	env.rcpts = s->rcpts;
	env.nrcpt = s->nrcpt;
	env.helo = s->helo;
	env.client = s->client;
	env.arrival = time(NULL);
	w = mp_queue_begin(mp_core.queue_dir, &env, id);
	if (w == NULL || write_received(s, w, id) < 0) {
		mp_log_errno(MP_LOG_ERR, "cannot create queue file");
		mp_queue_abort(w);
		reply(s, 452, "4.3.1", "Insufficient system storage");
		return;
	}
	reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	receive_data(s, w, &o);
	if (o.io_error) {
		mp_queue_abort(w);
		mp_log(MP_LOG_INFO, "%s: lost connection during DATA from [%s]",
		    id, s->client);
		s->quit = 1;
		return;
	}
	data_reply(s, w, id, &o);
	reset_transaction(s);
}

static void
dispatch(struct session *s, const struct smtp_cmd *cmd)
{
	switch (cmd->verb) {
	case SMTP_EHLO: do_helo(s, cmd->arg, 1); break;
	case SMTP_HELO: do_helo(s, cmd->arg, 0); break;
	case SMTP_MAIL: do_mail(s, cmd->arg); break;
	case SMTP_RCPT: do_rcpt(s, cmd->arg); break;
	case SMTP_DATA: do_data(s, cmd->arg); break;
	case SMTP_RSET:
		reset_transaction(s);
		reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_NOOP: reply(s, 250, "2.0.0", "Ok"); break;
	case SMTP_QUIT:
		reply(s, 221, "2.0.0", "Bye");
		s->quit = 1;
		break;
	case SMTP_VRFY:
		reply(s, 252, "2.5.0", "Cannot VRFY user; send mail and see");
		break;
	case SMTP_EXPN: reply(s, 502, "5.5.1", "EXPN not available"); break;
	case SMTP_HELP:
		reply(s, 214, "2.0.0", "See RFC 5321; merpati " "commands: "
		    "HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY");
		break;
	default:
		reply(s, 500, "5.5.2", "Command not recognized");
		break;
	}
}

static void
peer_address(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	mp_strlcpy(out, "unknown", size);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    out, (socklen_t)size);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    out, (socklen_t)size);
}

/* Read and act on one command; 0 to go on, -1 to end the session. */
static int
one_command(struct session *s)
{
	char line[65536 + 2];
	struct smtp_cmd cmd;
	size_t len;
	int r = conn_read_line(&s->c, line,
	    (size_t)mp_core.limits.line_length + 1, &len);

	if (r == CONN_TOO_LONG) {
		reply(s, 500, "5.5.2", "Line too long (limit %lld octets)",
		    mp_core.limits.line_length);
	} else if (r == CONN_EOF || r == CONN_ERROR) {
		if (r == CONN_ERROR && errno == ETIMEDOUT) {
			reply(s, 421, "4.4.2", "%s Timeout; closing connection",
			    mp_core.server.hostname);
			mp_log(MP_LOG_INFO, "timeout from [%s]", s->client);
		}
		return -1;
	} else if (memchr(line, '\0', len) != NULL) {
		reply(s, 500, "5.5.2", "NUL character in command");
	} else {
		smtp_parse_command(line, &cmd);
		dispatch(s, &cmd);
	}
	if (s->errors >= mp_core.limits.errors) {
		reply(s, 421, "4.7.0", "%s Too many errors; closing connection",
		    mp_core.server.hostname);
		mp_log(MP_LOG_NOTICE, "too many errors from [%s]", s->client);
		return -1;
	}
	return s->quit ? -1 : 0;
}

void
smtp_session_run(int fd, const struct mp_listen *l)
{
	struct session *s = mp_xcalloc(1, sizeof(*s));

	conn_init(&s->c, fd, (int)mp_core.limits.command_timeout * 1000);
	s->l = l;
	peer_address(fd, s->client, sizeof(s->client));
	mp_log(MP_LOG_INFO, "connect from [%s] to %s", s->client, l->name);
	reply(s, 220, NULL, "%s ESMTP merpati", mp_core.server.hostname);
	while (one_command(s) == 0)
		if (conn_pending(&s->c) == 0 && conn_flush(&s->c) < 0)
			break;
	conn_flush(&s->c);
	reset_transaction(s);
	mp_log(MP_LOG_INFO, "disconnect from [%s]", s->client);
	free(s);
}
