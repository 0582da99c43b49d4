/*
 * modules/imap/imap_auth.c - the not-authenticated state: LOGIN,
 * AUTHENTICATE PLAIN (with SASL-IR, RFC 4959) and STARTTLS, and what a
 * first login sets up (the special-use folders, RFC 6154).
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <merpati/util.h>

#include "imap.h"

static void
create_special_folders(struct imap *s)
{
	const char *err;

	for (size_t i = 0; i < MP_SPECIAL_USES; i++) {
		const char *name = mp_special_use(i)->name;
		if (s->st->ops->folder_create(s->mb, name, &err) == MP_OK)
			s->st->ops->folder_subscribe(s->mb, name, 1, &err);
	}
	s->st->ops->folder_subscribe(s->mb, "INBOX", 1, &err);
}

/* Check the password; 1 when it was wrong (a failure to count). */
static int
check_login(struct imap *s, const char *tag, const char *user,
    const char *pass)
{
	const struct mp_auth *a = s->h->auth();
	const char *err = NULL;
	int rc = a ? a->ops->verify(a->ctx, user, pass, &err) : -1;

	if (rc == 1 && s->st->ops->open(s->st->ctx, user, &s->mb, &err) == MP_OK) {
		snprintf(s->user, sizeof(s->user), "%s", user);
		s->authed = 1;
		create_special_folders(s);
		s->h->log(MP_LOG_INFO, "login user=%s client=[%s]", user,
		    s->h->conn_info(s->c)->peer);
		imap_tagged(s, tag, "OK [CAPABILITY " IMAP_CAPS "] Logged in");
		return 0;
	}
	if (rc == 1 || rc < 0) {
		imap_tagged(s, tag, "NO [UNAVAILABLE] Temporary failure, try again later");
		return 0;
	}
	s->auth_failures++;
	s->h->log(MP_LOG_NOTICE, "authentication failed user=%s client=[%s]", user,
	    s->h->conn_info(s->c)->peer);
	poll(NULL, 0, s->auth_failures * 1000 > 5000 ? 5000 : s->auth_failures * 1000);
	imap_tagged(s, tag, "NO [AUTHENTICATIONFAILED] Authentication failed");
	if (s->auth_failures >= s->m->set.auth_failures) {
		imap_untagged(s, "BYE Too many failed logins");
		s->quit = 1;
	}
	return 1;
}

/* A login under the host's limit of failed logins per client address
 * (all protocols together; module.h auth_limit_enter). */
static void
login(struct imap *s, const char *tag, const char *user, const char *pass)
{
	const struct mp_host *host = s->h;
	const char *peer = host->conn_info(s->c)->peer;
	int limited = MP_HOST_HAS(auth_limit_enter) &&
	    host->auth_limit_enter != NULL;

	if (limited && !host->auth_limit_enter(peer)) {
		host->log(MP_LOG_NOTICE, "login refused: too many failed logins "
		    "from client=[%s]", peer);
		poll(NULL, 0, 1000);	/* slow the guesser down */
		imap_tagged(s, tag, "NO [UNAVAILABLE] Too many failed logins "
		    "from your address, try again later");
		imap_untagged(s, "BYE Too many failed logins");
		s->quit = 1;
		return;
	}
	int failed = check_login(s, tag, user, pass);
	if (limited)
		host->auth_limit_leave(peer, failed);
}

void
imap_cmd_login(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	if (!imap_auth_allowed(s)) {
		imap_tagged(s, cmd->tag, "NO [PRIVACYREQUIRED] LOGIN is disabled without TLS; use STARTTLS");
		return;
	}
	if (!imap_need_args(s, cmd, 2) || !imap_astring(cmd, 0) || !imap_astring(cmd, 1)) {
		if (cmd->nargs == 2)
			imap_tagged(s, cmd->tag, "BAD LOGIN user password");
		return;
	}
	login(s, cmd->tag, imap_astring(cmd, 0), imap_astring(cmd, 1));
}

void
imap_cmd_authenticate(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	char line[4096], buf[4096], user[sizeof(s->user)], pass[sizeof(buf)];
	const char *resp = imap_astring(cmd, 1);
	size_t len;
	int n;

	if (cmd->nargs < 1 || strcasecmp(imap_astring(cmd, 0) ? imap_astring(cmd, 0) : "", "PLAIN") != 0) {
		imap_tagged(s, cmd->tag, "NO Unsupported authentication mechanism");
		return;
	}
	if (!imap_auth_allowed(s)) {
		imap_tagged(s, cmd->tag, "NO [PRIVACYREQUIRED] Use STARTTLS first");
		return;
	}
	if (resp == NULL) {
		s->h->conn_printf(s->c, "+ \r\n");
		if (s->h->conn_read_line(s->c, line, sizeof(line), &len) != MP_CONN_OK) {
			s->quit = 1;
			return;
		}
		resp = line;
	}
	if (strcmp(resp, "*") == 0) {
		imap_tagged(s, cmd->tag, "BAD Authentication cancelled");
		return;
	}
	n = s->h->base64_decode(strcmp(resp, "=") == 0 ? "" : resp, buf, sizeof(buf));
	/* the host's parser: SMTP's and POP3's rules (module.h sasl_plain) */
	if (n < 0 || s->h->sasl_plain(buf, (size_t)n, user, sizeof(user), pass,
	    sizeof(pass)) < 0) {
		imap_tagged(s, cmd->tag, "BAD Malformed PLAIN response");
		return;
	}
	login(s, cmd->tag, user, pass);
	memset(pass, 0, sizeof(pass));
}

void
imap_cmd_starttls(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const struct mp_conn_info *i = s->h->conn_info(s->c);

	if (i->tls || !i->starttls || s->authed) {
		imap_tagged(s, cmd->tag, "BAD STARTTLS not available");
		return;
	}
	imap_tagged(s, cmd->tag, "OK Begin TLS negotiation now");
	if (s->h->conn_start_tls(s->c) < 0)
		s->quit = 1;
}
