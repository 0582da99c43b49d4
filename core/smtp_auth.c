/*
 * core/smtp_auth.c - SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and
 * LOGIN mechanisms, checked against the active auth module. Offered
 * only under TLS, unless the listener allows plaintext AUTH and the
 * client is on loopback. Each failure costs the client a growing delay,
 * and smtp.auth_failures failures end the session; across connections
 * (and IMAP and POP3 logins), limits.auth_failures_per_ip failures
 * within limits.auth_failures_window get every AUTH from that address
 * refused without its password being checked (auth_limit.c).
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth_limit.h"
#include "log.h"
#include "modcall.h"
#include "smtp_auth_parse.h"
#include "smtp_session.h"
#include "util.h"

#define SASL_LINE 2048

int
smtp_auth_offered(const struct session *s)
{
	return mp_core.auth.ops != NULL && s->l->auth != LISTEN_AUTH_NONE &&
	    mp_auth_allowed(s->tls_info[0] != '\0', s->loopback,
	    s->l->plaintext_auth);
}

/* "334 challenge" and read the client's base64 answer into out. */
static int
challenge(struct session *s, const char *b64, char *out, size_t size)
{
	char line[SASL_LINE];
	size_t len;
	int r;

	conn_printf(&s->c, "334 %s\r\n", b64);
	r = conn_read_line(&s->c, line, sizeof(line), &len);
	if (r == CONN_TOO_LONG) {
		smtp_reply(s, 500, "5.5.6", "Authentication exchange line too long");
		return -1;
	}
	if (r != CONN_OK) {
		s->quit = 1;
		return -1;
	}
	if (strcmp(line, "*") == 0) {
		smtp_reply(s, 501, "5.7.0", "Authentication cancelled");
		return -1;
	}
	int n = mp_base64_decode(line, out, size);
	if (n < 0)
		smtp_reply(s, 501, "5.5.2", "Cannot decode base64 response");
	return n;
}

/* Initial response, or a challenge; "=" is an empty initial response.
 * Returns the decoded length (the text may hold NULs), or -1. */
static int
response(struct session *s, const char *initial, const char *prompt,
    char *out, size_t size)
{
	int n;

	if (initial == NULL || initial[0] == '\0')
		return challenge(s, prompt, out, size);
	if (strcmp(initial, "=") == 0) {
		out[0] = '\0';
		return 0;
	}
	n = mp_base64_decode(initial, out, size);
	if (n < 0)
		smtp_reply(s, 501, "5.5.2", "Cannot decode base64 response");
	return n;
}

/* PLAIN: [authzid] NUL authcid NUL passwd. */
static int
mech_plain(struct session *s, const char *initial, char *user, size_t usize,
    char *pass, size_t psize)
{
	char buf[SASL_LINE];
	int len = response(s, initial, "", buf, sizeof(buf));

	if (len < 0)
		return -1;
	if (smtp_auth_plain_fields(buf, (size_t)len, user, usize, pass, psize) < 0) {
		smtp_reply(s, 501, "5.5.2", "Malformed PLAIN response");
		return -1;
	}
	return 0;
}

static int
mech_login(struct session *s, const char *initial, char *user, size_t usize,
    char *pass, size_t psize)
{
	/* "Username:" and "Password:" in base64, as clients expect. */
	int ulen = response(s, initial, "VXNlcm5hbWU6", user, usize);

	if (ulen < 0)
		return -1;
	int plen = challenge(s, "UGFzc3dvcmQ6", pass, psize);
	if (plen < 0)
		return -1;
	if (smtp_auth_login_fields(user, (size_t)ulen, pass, (size_t)plen) < 0) {
		smtp_reply(s, 501, "5.5.2", "Malformed LOGIN response");
		return -1;
	}
	return 0;
}

static void
pause_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* Check the password; 1 when it was wrong (a failure to count). */
static int
verify(struct session *s, const char *user, const char *pass)
{
	const char *err = NULL;
	int ok = mp_call_auth_verify(user, pass, &err);

	if (ok == 1) {
		mp_strlcpy(s->auth_user, user, sizeof(s->auth_user));
		mp_lowercase(s->auth_user);
		mp_log(MP_LOG_INFO, "authenticated user=%s client=[%s]", user,
		    s->client);
		smtp_reply(s, 235, "2.7.0", "Authentication successful");
		return 0;
	}
	if (ok < 0) {
		mp_log(MP_LOG_WARNING, "auth lookup failed: %s", err ? err : "?");
		smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
		return 0;
	}
	s->auth_failures++;
	mp_log(MP_LOG_NOTICE, "authentication failed user=%s client=[%s] (%d)",
	    user, s->client, s->auth_failures);
	pause_ms(s->auth_failures * 1000 > 5000 ? 5000 : s->auth_failures * 1000);
	smtp_reply(s, 535, "5.7.8", "Authentication credentials invalid");
	if (s->auth_failures >= mp_core.smtp.auth_failures) {
		smtp_reply(s, 421, "4.7.0", "%s Too many failed authentications",
		    mp_core.server.hostname);
		s->quit = 1;
	}
	return 1;
}

/* The client's address is over limits.auth_failures_per_ip: the
 * password is not checked; a pause slows a guesser down, and the
 * session ends. */
static void
refuse_guesser(struct session *s)
{
	mp_log(MP_LOG_NOTICE, "AUTH refused: too many failed logins from "
	    "client=[%s] (%lld in %llds)", s->client,
	    mp_core.limits.auth_failures_per_ip, mp_core.limits.auth_failures_window);
	pause_ms(1000);
	smtp_reply(s, 421, "4.7.0", "%s Too many failed authentications from "
	    "your address; try again later", mp_core.server.hostname);
	s->quit = 1;
}

static int
auth_allowed(struct session *s)
{
	if (mp_core.auth.ops == NULL || s->l->auth == LISTEN_AUTH_NONE)
		smtp_reply(s, 502, "5.5.1", "AUTH not available");
	else if (!s->esmtp)
		smtp_reply(s, 503, "5.5.1", "Send EHLO first");
	else if (s->auth_user[0])
		smtp_reply(s, 503, "5.5.1", "Already authenticated");
	else if (s->in_mail)
		smtp_reply(s, 503, "5.5.1", "AUTH not allowed during a mail transaction");
	else if (!smtp_auth_offered(s))
		smtp_reply(s, 538, "5.7.11", "Encryption required for requested "
		    "authentication mechanism");
	else
		return 1;
	return 0;
}

void
smtp_do_auth(struct session *s, const char *arg)
{
	char mech[32], user[ADDR_MAX], pass[512];
	const char *initial;
	int plain, rc, failed = 0;

	if (!auth_allowed(s))
		return;
	if (smtp_auth_split(arg, mech, sizeof(mech), &initial) < 0) {
		smtp_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	plain = strcasecmp(mech, "PLAIN") == 0;
	if (!plain && strcasecmp(mech, "LOGIN") != 0) {
		smtp_reply(s, 504, "5.5.4", "Unrecognized authentication type");
		return;
	}
	if (plain)
		rc = mech_plain(s, initial, user, sizeof(user), pass, sizeof(pass));
	else
		rc = mech_login(s, initial, user, sizeof(user), pass, sizeof(pass));
	/* reserved only around the check: a client dawdling in the SASL
	 * exchange holds no share of its address's limit */
	if (rc == 0 && !mp_auth_limit_enter(s->client)) {
		refuse_guesser(s);
	} else if (rc == 0) {
		failed = verify(s, user, pass);
		mp_auth_limit_leave(s->client, failed);
	}
	memset(pass, 0, sizeof(pass));
}
