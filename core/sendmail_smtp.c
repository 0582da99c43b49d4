/*
 * core/sendmail_smtp.c - the -bs dialogue (see sendmail_smtp.h). The
 * commands are parsed by the SMTP server's own pure parser
 * (smtp_parse.c); what is kept per transaction is small and every
 * input is bounded by limits.message_size and limits.recipients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail_headers.h"
#include "sendmail_smtp.h"
#include "smtp_parse.h"

struct txn {
	int have_mail;
	char sender[320];
	struct smtp_mail_params mp;
	char **rcpts, **notify;
	size_t nrcpt;
};

static void
reply(const struct sm_smtp *c, const char *text)
{
	fprintf(c->out, "%s\r\n", text);
	fflush(c->out);
}

static void
txn_reset(struct txn *t)
{
	for (size_t i = 0; i < t->nrcpt; i++) {
		free(t->rcpts[i]);
		free(t->notify[i]);
	}
	free(t->rcpts);
	free(t->notify);
	memset(t, 0, sizeof(*t));
}

/* A line without its CRLF or LF; NULL at end of input. Lines longer
 * than the message limit end the session (bounded memory). */
static char *
get_line(const struct sm_smtp *c, char **buf, size_t *cap, size_t *len_r)
{
	ssize_t n = getline(buf, cap, c->in);

	if (n < 0 || n > c->max_size + 2)
		return NULL;
	while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r'))
		n--;
	(*buf)[n] = '\0';
	*len_r = (size_t)n;
	return *buf;
}

static void
do_mail(const struct sm_smtp *c, struct txn *t, const char *arg)
{
	const char *params;
	char bad[64];

	if (t->have_mail) {
		reply(c, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (smtp_parse_path(arg, "FROM", 1, t->sender, sizeof(t->sender), &params) !=
	    SMTP_PATH_OK) {
		reply(c, "501 5.1.7 Bad sender address syntax");
		return;
	}
	if (smtp_parse_mail_params(params, &t->mp, bad, sizeof(bad)) < 0) {
		reply(c, "555 5.5.4 Unsupported MAIL parameter");
		return;
	}
	if (t->mp.size > c->max_size) {
		reply(c, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	t->have_mail = 1;
	reply(c, "250 2.1.0 Ok");
}

static void
do_rcpt(const struct sm_smtp *c, struct txn *t, const char *arg)
{
	struct smtp_rcpt_params rp;
	const char *params;
	char addr[320], bad[64];

	if (!t->have_mail) {
		reply(c, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (smtp_parse_path(arg, "TO", 0, addr, sizeof(addr), &params) != SMTP_PATH_OK ||
	    smtp_parse_rcpt_params(params, &rp, bad, sizeof(bad)) < 0) {
		reply(c, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (t->nrcpt >= c->max_rcpts) {
		reply(c, "452 4.5.3 Too many recipients");
		return;
	}
	t->rcpts = realloc(t->rcpts, (t->nrcpt + 1) * sizeof(char *));
	t->notify = realloc(t->notify, (t->nrcpt + 1) * sizeof(char *));
	if (t->rcpts == NULL || t->notify == NULL)
		abort();
	t->rcpts[t->nrcpt] = sendmail_qualify(addr);
	t->notify[t->nrcpt++] = rp.notify[0] ? mp_xstrdup(rp.notify) : NULL;
	reply(c, "250 2.1.5 Ok");
}

/* Read the dot-terminated text (RFC 5321 4.5.2: one leading dot is
 * removed); -1 when the input ended first. *too_big when over max. */
static int
read_data(const struct sm_smtp *c, struct mp_buf *msg, int *too_big)
{
	char *buf = NULL, *line;
	size_t cap = 0, len;
	int rc = -1;

	while ((line = get_line(c, &buf, &cap, &len)) != NULL) {
		if (strcmp(line, ".") == 0) {
			rc = 0;
			break;
		}
		if (line[0] == '.')
			line++, len--;
		if (*too_big || (long long)(msg->len + len + 2) > c->max_size) {
			*too_big = 1;
			continue;
		}
		mp_buf_put(msg, line, len);
		mp_buf_put(msg, "\r\n", 2);
	}
	free(buf);
	return rc;
}

/* DATA; -1 when the input ended inside it. */
static int
do_data(const struct sm_smtp *c, struct txn *t)
{
	struct mp_buf msg = { 0 };
	int too_big = 0, rc = 0;

	if (!t->have_mail || t->nrcpt == 0) {
		reply(c, t->have_mail ? "554 5.5.1 Error: no valid recipients" :
		    "503 5.5.1 Error: need MAIL command");
		return 0;
	}
	reply(c, "354 End data with <CR><LF>.<CR><LF>");
	if (read_data(c, &msg, &too_big) < 0)
		rc = -1;
	else if (too_big)
		reply(c, "552 5.3.4 Message size exceeds fixed limit");
	else {
		struct sm_submission s = {
			.sender = t->sender,
			.rcpts = t->rcpts, .notify = t->notify, .nrcpt = t->nrcpt,
			.ret = t->mp.ret[0] ? t->mp.ret : NULL,
			.envid = t->mp.envid[0] ? t->mp.envid : NULL, .uid = c->uid,
		};
		reply(c, c->submit(c->arg, &s, msg.p ? msg.p : "", msg.len) == 0 ?
		    "250 2.0.0 Ok: queued" : "451 4.3.0 Error: cannot queue the message");
	}
	free(msg.p);
	txn_reset(t);
	return rc;
}

static void
do_ehlo(const struct sm_smtp *c, int extended)
{
	if (!extended) {
		fprintf(c->out, "250 %s\r\n", c->hostname);
		fflush(c->out);
		return;
	}
	fprintf(c->out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %lld\r\n250-8BITMIME\r\n"
	    "250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n", c->hostname, c->max_size);
	fflush(c->out);
}

int
sendmail_smtp(const struct sm_smtp *c)
{
	struct txn t = { 0 };
	struct smtp_cmd cmd;
	char *buf = NULL, *line;
	size_t cap = 0, len;

	fprintf(c->out, "220 %s ESMTP merpati sendmail\r\n", c->hostname);
	fflush(c->out);
	while ((line = get_line(c, &buf, &cap, &len)) != NULL) {
		smtp_parse_command(line, &cmd);
		switch (cmd.verb) {
		case SMTP_HELO: case SMTP_EHLO:
			txn_reset(&t);
			do_ehlo(c, cmd.verb == SMTP_EHLO);
			break;
		case SMTP_MAIL: do_mail(c, &t, cmd.arg); break;
		case SMTP_RCPT: do_rcpt(c, &t, cmd.arg); break;
		case SMTP_DATA:
			if (do_data(c, &t) < 0)
				goto out;
			break;
		case SMTP_RSET: txn_reset(&t); reply(c, "250 2.0.0 Ok"); break;
		case SMTP_NOOP: reply(c, "250 2.0.0 Ok"); break;
		case SMTP_VRFY: reply(c, "252 2.5.2 Send some mail, I'll try my best"); break;
		case SMTP_HELP: reply(c, "214 2.0.0 See RFC 5321"); break;
		case SMTP_QUIT:
			reply(c, "221 2.0.0 Bye");
			goto out;
		case SMTP_STARTTLS: case SMTP_AUTH: case SMTP_BDAT: case SMTP_EXPN:
			/* not offered on stdio (EHLO does not list them): the
			 * pipe needs no TLS, the kernel already named the user,
			 * and DATA carries everything BDAT would */
			reply(c, "502 5.5.1 Error: command not implemented");
			break;
		default:
			reply(c, "500 5.5.2 Error: command not recognized");
		}
	}
out:
	txn_reset(&t);
	free(buf);
	return 0;
}
