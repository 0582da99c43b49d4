/*
 * modules/pop3/pop3_session.c - one POP3 session: RFC 1939 (states,
 * commands), RFC 2449 (CAPA, response codes), RFC 2595 (STLS), RFC 5034
 * (AUTH PLAIN). Deletions are applied only at QUIT in the UPDATE state;
 * a dropped connection deletes nothing. One session at a time per
 * maildrop (the store's lock: -ERR [IN-USE]).
 */
#include <ctype.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pop3.h"
#include "pop3_parse.h"

#define LINE_MAX_POP3 512	/* RFC 2449: 255 octets per command */
#define SASL_MAX 2048

struct msg {
	uint32_t uid;
	uint64_t size;
	int deleted;
};

struct pop3 {
	const struct pop3_module *m;
	const struct mp_host *h;
	struct mp_conn *c;
	const struct mp_store *store;
	int transaction, quit, errors, auth_failures;
	char user[320];
	struct mp_mailbox *mb;
	struct mp_folder *f;
	uint32_t uidvalidity;
	struct msg *msgs;
	size_t n;
	const char *command;	/* the verb not answered yet ("" when none
				 * could be read); NULL once answered */
};

static void
ok(struct pop3 *p, const char *fmt, ...) MP_PRINTF(2, 3);
static void
err(struct pop3 *p, const char *fmt, ...) MP_PRINTF(2, 3);

/* The final reply of the command being answered, counted once for the
 * metrics (host->count_command, ABI 2.2): the greeting and the closing
 * "Too many errors" answer no command and are not counted. */
static void
count_reply(struct pop3 *p, const char *outcome)
{
	const struct mp_host *host = p->h;

	if (p->command == NULL)
		return;
	if (MP_HOST_HAS(count_command) && host->count_command != NULL)
		host->count_command(p->command, outcome);
	p->command = NULL;
}

static void
ok(struct pop3 *p, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	p->h->conn_printf(p->c, "+OK %s\r\n", text);
	count_reply(p, "ok");
}

static void
err(struct pop3 *p, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	p->h->conn_printf(p->c, "-ERR %s\r\n", text);
	p->errors++;
	count_reply(p, "err");
}

/* RFC 2595 4: no cleartext passwords unless TLS, or loopback by config
 * (the host's rule, shared with SMTP and IMAP). */
static int
auth_allowed(struct pop3 *p)
{
	return p->h->auth_allowed(p->h->conn_info(p->c), p->m->set.plaintext_auth);
}

/* ---- maildrop ------------------------------------------------------------ */

static void
close_maildrop(struct pop3 *p)
{
	if (p->f)
		p->store->ops->folder_close(p->f);
	if (p->mb)
		p->store->ops->close(p->mb);
	free(p->msgs);
	p->f = NULL;
	p->mb = NULL;
	p->msgs = NULL;
	p->n = 0;
}

static int
snapshot(struct pop3 *p, const char **why)
{
	const struct mp_msg_info *v;
	struct mp_folder_info info = { .struct_size = sizeof(info) };
	size_t n;

	if (p->store->ops->folder_info(p->f, &info, why) != MP_OK ||
	    p->store->ops->messages(p->f, &v, &n, why) != MP_OK)
		return -1;
	p->uidvalidity = info.uidvalidity;
	p->msgs = calloc(n ? n : 1, sizeof(*p->msgs));
	if (p->msgs == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		p->msgs[i].uid = MP_ELEM(v, i)->uid;
		p->msgs[i].size = MP_ELEM(v, i)->size;
	}
	p->n = n;
	return 0;
}

/* Open and lock INBOX; replies on failure. 0 ok. */
static int
open_maildrop(struct pop3 *p)
{
	const struct mp_store_ops *s = p->store->ops;
	const char *why = NULL;
	int rc;

	if (s->open(p->store->ctx, p->user, &p->mb, &why) != MP_OK ||
	    s->folder_open(p->mb, "INBOX", 0, &p->f, &why) != MP_OK) {
		p->h->log(MP_LOG_ERR, "cannot open maildrop of %s: %s", p->user,
		    why ? why : "?");
		close_maildrop(p);
		err(p, "[SYS/TEMP] Cannot open your maildrop; try again later");
		return -1;
	}
	rc = s->lock(p->f, &why);
	if (rc == MP_DECLINED) {
		close_maildrop(p);
		err(p, "[IN-USE] Your maildrop is in use by another session");
		return -1;
	}
	if (rc != MP_OK || snapshot(p, &why) < 0) {
		close_maildrop(p);
		err(p, "[SYS/TEMP] Cannot read your maildrop: %s", why ? why : "?");
		return -1;
	}
	return 0;
}

/* ---- AUTHORIZATION -------------------------------------------------------- */

static void
pause_after_failure(struct pop3 *p)
{
	int ms = p->auth_failures * 1000;

	poll(NULL, 0, ms > 5000 ? 5000 : ms);
}

/* Check the password; 1 when it was wrong (a failure to count). */
static int
check_login(struct pop3 *p, const char *user, const char *pass)
{
	const struct mp_auth *a = p->h->auth();
	const char *why = NULL;
	int rc = a ? a->ops->verify(a->ctx, user, pass, &why) : -1;

	if (rc == 1) {
		snprintf(p->user, sizeof(p->user), "%s", user);
		for (char *c = p->user; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (open_maildrop(p) == 0) {
			p->transaction = 1;
			p->h->log(MP_LOG_INFO, "login user=%s client=[%s] messages=%zu",
			    p->user, p->h->conn_info(p->c)->peer, p->n);
			ok(p, "Logged in, %zu messages", p->n);
		}
		return 0;
	}
	if (rc < 0) {
		err(p, "[SYS/TEMP] Authentication service unavailable");
		return 0;
	}
	p->auth_failures++;
	p->h->log(MP_LOG_NOTICE, "authentication failed user=%s client=[%s]",
	    user, p->h->conn_info(p->c)->peer);
	pause_after_failure(p);
	err(p, "[AUTH] Authentication failed");
	if (p->auth_failures >= p->m->set.auth_failures)
		p->quit = 1;
	return 1;
}

/* A login under the host's limit of failed logins per client address
 * (all protocols together; module.h auth_limit_enter). */
static void
login(struct pop3 *p, const char *user, const char *pass)
{
	const struct mp_host *host = p->h;
	const char *peer = host->conn_info(p->c)->peer;
	int limited = MP_HOST_HAS(auth_limit_enter) &&
	    host->auth_limit_enter != NULL;

	if (limited && !host->auth_limit_enter(peer)) {
		host->log(MP_LOG_NOTICE, "login refused: too many failed logins "
		    "from client=[%s]", peer);
		poll(NULL, 0, 1000);	/* slow the guesser down */
		err(p, "[AUTH] Too many failed logins from your address, try "
		    "again later");
		p->quit = 1;
		return;
	}
	int failed = check_login(p, user, pass);
	if (limited)
		host->auth_limit_leave(peer, failed);
}

static void
cmd_user(struct pop3 *p, const char *arg)
{
	if (!auth_allowed(p)) {
		err(p, "[AUTH] Plaintext authentication disallowed without TLS; use STLS");
		return;
	}
	if (arg[0] == '\0' || strlen(arg) >= sizeof(p->user)) {
		err(p, "Syntax: USER name");
		return;
	}
	snprintf(p->user, sizeof(p->user), "%s", arg);
	ok(p, "Send PASS");
}

static void
cmd_pass(struct pop3 *p, const char *arg)
{
	char user[320];

	if (p->user[0] == '\0') {
		err(p, "Send USER first");
		return;
	}
	snprintf(user, sizeof(user), "%s", p->user);
	p->user[0] = '\0';
	login(p, user, arg);
}

/* The SASL PLAIN response: from the command line or a "+ " round. */
static int
plain_response(struct pop3 *p, const char *initial, char *buf, size_t size)
{
	char line[SASL_MAX];
	size_t len;

	if (initial == NULL || initial[0] == '\0') {
		p->h->conn_printf(p->c, "+ \r\n");
		int r = p->h->conn_read_line(p->c, line, sizeof(line), &len);
		if (r != MP_CONN_OK) {
			p->quit = r != MP_CONN_TOO_LONG;
			if (!p->quit)
				err(p, "Line too long");
			return -1;
		}
		initial = line;
	}
	if (strcmp(initial, "*") == 0) {
		err(p, "Authentication cancelled");
		return -1;
	}
	int n = p->h->base64_decode(initial, buf, size);
	if (n < 0)
		err(p, "Bad base64 response");
	return n;
}

static void
cmd_auth(struct pop3 *p, const char *arg)
{
	char mech[32], buf[SASL_MAX], user[sizeof(p->user)], pass[SASL_MAX];
	const char *initial = strchr(arg, ' ');
	size_t mlen = initial ? (size_t)(initial - arg) : strlen(arg);

	if (arg[0] == '\0') {	/* RFC 5034 4: list the mechanisms */
		ok(p, "Mechanisms follow");
		p->h->conn_printf(p->c, "%s.\r\n", auth_allowed(p) ? "PLAIN\r\n" : "");
		return;
	}
	if (!auth_allowed(p)) {
		err(p, "[AUTH] Plaintext authentication disallowed without TLS; use STLS");
		return;
	}
	if (mlen >= sizeof(mech) || (memcpy(mech, arg, mlen), mech[mlen] = '\0',
	    strcasecmp(mech, "PLAIN") != 0)) {
		err(p, "Unsupported mechanism");
		return;
	}
	int n = plain_response(p, initial ? initial + 1 : NULL, buf, sizeof(buf));
	if (n < 0)
		return;
	/* the host's parser: SMTP's and IMAP's rules (module.h sasl_plain) */
	if (p->h->sasl_plain(buf, (size_t)n, user, sizeof(user), pass,
	    sizeof(pass)) < 0) {
		err(p, "Malformed PLAIN response");
		return;
	}
	login(p, user, pass);
	memset(pass, 0, sizeof(pass));
}

static void
cmd_stls(struct pop3 *p)
{
	const struct mp_conn_info *i = p->h->conn_info(p->c);

	if (i->tls || !i->starttls) {
		err(p, "STLS not available");
		return;
	}
	ok(p, "Begin TLS negotiation");
	if (p->h->conn_start_tls(p->c) < 0)
		p->quit = 1;
}

static void
cmd_capa(struct pop3 *p)
{
	const struct mp_conn_info *i = p->h->conn_info(p->c);

	ok(p, "Capability list follows");
	p->h->conn_printf(p->c, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
	    "PIPELINING\r\nIMPLEMENTATION merpati\r\n");
	if (!p->transaction && auth_allowed(p))
		p->h->conn_printf(p->c, "USER\r\nSASL PLAIN\r\n");
	if (!p->transaction && !i->tls && i->starttls)
		p->h->conn_printf(p->c, "STLS\r\n");
	p->h->conn_printf(p->c, ".\r\n");
}

/* ---- TRANSACTION ------------------------------------------------------------ */

/* A message number argument; NULL (and a reply) when invalid. */
static struct msg *
message_arg(struct pop3 *p, const char *arg, const char **rest)
{
	size_t n;
	int rc = pop3_number(arg, p->n, &n, rest);

	if (rc == -1) {
		err(p, "Syntax: message number expected");
		return NULL;
	}
	if (rc == -2) {
		err(p, "No such message");
		return NULL;
	}
	if (p->msgs[n - 1].deleted) {
		err(p, "Message %zu is deleted", n);
		return NULL;
	}
	return &p->msgs[n - 1];
}

static void
cmd_stat(struct pop3 *p)
{
	size_t count = 0;
	uint64_t octets = 0;

	for (size_t i = 0; i < p->n; i++)
		if (!p->msgs[i].deleted) {
			count++;
			octets += p->msgs[i].size;
		}
	ok(p, "%zu %llu", count, (unsigned long long)octets);
}

static void
cmd_list(struct pop3 *p, const char *arg, int uidl)
{
	if (arg[0]) {
		struct msg *m = message_arg(p, arg, NULL);
		if (m && uidl)
			ok(p, "%zu %u.%u", (size_t)(m - p->msgs) + 1, p->uidvalidity, m->uid);
		else if (m)
			ok(p, "%zu %llu", (size_t)(m - p->msgs) + 1,
			    (unsigned long long)m->size);
		return;
	}
	ok(p, uidl ? "Unique-ID listing follows" : "Scan listing follows");
	for (size_t i = 0; i < p->n; i++) {
		if (p->msgs[i].deleted)
			continue;
		if (uidl)
			p->h->conn_printf(p->c, "%zu %u.%u\r\n", i + 1, p->uidvalidity,
			    p->msgs[i].uid);
		else
			p->h->conn_printf(p->c, "%zu %llu\r\n", i + 1,
			    (unsigned long long)p->msgs[i].size);
	}
	p->h->conn_printf(p->c, ".\r\n");
}

/* Byte-stuff and send; stop after body_lines body lines (-1: all). */
static int
send_message(struct pop3 *p, struct mp_reader *r, long body_lines)
{
	char buf[8192];
	int bol = 1, blank = 1, in_body = 0;
	long lines = 0;
	ssize_t n;

	while ((n = r->read(r, buf, sizeof(buf))) > 0) {
		ssize_t start = 0;
		for (ssize_t i = 0; i < n; i++) {
			char c = buf[i];
			if (bol && in_body && body_lines >= 0 && lines >= body_lines) {
				p->h->conn_write(p->c, buf + start, (size_t)(i - start));
				goto done;
			}
			if (bol && c == '.') {	/* RFC 1939 3: byte-stuffing */
				p->h->conn_write(p->c, buf + start, (size_t)(i - start));
				p->h->conn_write(p->c, ".", 1);
				start = i;
			}
			if (c == '\n') {
				if (!in_body && blank)
					in_body = 1;	/* the empty line ends the header */
				else if (in_body)
					lines++;
				bol = blank = 1;
			} else {
				bol = 0;
				blank &= c == '\r';
			}
		}
		p->h->conn_write(p->c, buf + start, (size_t)(n - start));
	}
done:
	if (n < 0)
		return -1;
	if (!bol)
		p->h->conn_write(p->c, "\r\n", 2);
	p->h->conn_printf(p->c, ".\r\n");
	return 0;
}

static void
cmd_retr(struct pop3 *p, const char *arg, int top)
{
	const char *rest = NULL, *why = NULL;
	struct mp_reader r = { .struct_size = sizeof(r) };
	struct msg *m = message_arg(p, arg, top ? &rest : NULL);
	long lines = -1;

	if (m == NULL)
		return;
	if (top) {
		char *end;
		if (!isdigit((unsigned char)rest[0]) ||
		    (lines = strtol(rest, &end, 10), *end != '\0') || lines < 0) {
			err(p, "Syntax: TOP msg n");
			return;
		}
	}
	if (p->store->ops->message_open(p->f, m->uid, MP_PART_ALL, &r, &why) != MP_OK) {
		err(p, "[SYS/TEMP] Cannot read message: %s", why ? why : "gone");
		return;
	}
	ok(p, "%llu octets", (unsigned long long)m->size);
	if (send_message(p, &r, lines) < 0)
		p->quit = 1;	/* the reply is broken mid-way: end cleanly */
	p->store->ops->message_close(&r);
}

static void
cmd_dele(struct pop3 *p, const char *arg)
{
	struct msg *m = message_arg(p, arg, NULL);

	if (m) {
		m->deleted = 1;
		ok(p, "Message %zu deleted", (size_t)(m - p->msgs) + 1);
	}
}

static void
cmd_rset(struct pop3 *p)
{
	for (size_t i = 0; i < p->n; i++)
		p->msgs[i].deleted = 0;
	cmd_stat(p);
}

/* UPDATE state (RFC 1939 6). */
static void
cmd_quit(struct pop3 *p)
{
	size_t removed = 0, failed = 0;
	const char *why = NULL;

	for (size_t i = 0; p->transaction && i < p->n; i++) {
		if (!p->msgs[i].deleted)
			continue;
		if (p->store->ops->expunge(p->f, p->msgs[i].uid, &why) == MP_OK)
			removed++;
		else
			failed++;
	}
	if (failed)
		err(p, "[SYS/TEMP] %zu message(s) could not be deleted", failed);
	else
		ok(p, "Bye (%zu message(s) deleted)", removed);
	p->quit = 1;
}

/* ---- dispatch ---------------------------------------------------------------- */

static void
authorization(struct pop3 *p, const char *verb, const char *arg)
{
	if (strcasecmp(verb, "USER") == 0) cmd_user(p, arg);
	else if (strcasecmp(verb, "PASS") == 0) cmd_pass(p, arg);
	else if (strcasecmp(verb, "AUTH") == 0) cmd_auth(p, arg);
	else if (strcasecmp(verb, "STLS") == 0) cmd_stls(p);
	else if (strcasecmp(verb, "CAPA") == 0) cmd_capa(p);
	else if (strcasecmp(verb, "QUIT") == 0) cmd_quit(p);
	else if (strcasecmp(verb, "NOOP") == 0 || strcasecmp(verb, "STAT") == 0 ||
	    strcasecmp(verb, "LIST") == 0 || strcasecmp(verb, "RETR") == 0)
		err(p, "Not logged in");
	else
		err(p, "Unknown command");
}

static void
transaction(struct pop3 *p, const char *verb, const char *arg)
{
	if (strcasecmp(verb, "STAT") == 0) cmd_stat(p);
	else if (strcasecmp(verb, "LIST") == 0) cmd_list(p, arg, 0);
	else if (strcasecmp(verb, "UIDL") == 0) cmd_list(p, arg, 1);
	else if (strcasecmp(verb, "RETR") == 0) cmd_retr(p, arg, 0);
	else if (strcasecmp(verb, "TOP") == 0) cmd_retr(p, arg, 1);
	else if (strcasecmp(verb, "DELE") == 0) cmd_dele(p, arg);
	else if (strcasecmp(verb, "RSET") == 0) cmd_rset(p);
	else if (strcasecmp(verb, "NOOP") == 0) ok(p, "Nothing to do");
	else if (strcasecmp(verb, "CAPA") == 0) cmd_capa(p);
	else if (strcasecmp(verb, "QUIT") == 0) cmd_quit(p);
	else if (strcasecmp(verb, "USER") == 0 || strcasecmp(verb, "PASS") == 0 ||
	    strcasecmp(verb, "AUTH") == 0 || strcasecmp(verb, "STLS") == 0)
		err(p, "Already logged in");
	else
		err(p, "Unknown command");
}

static int
one_command(struct pop3 *p)
{
	char line[LINE_MAX_POP3], verb[16];
	size_t len;
	int r = p->h->conn_read_line(p->c, line, sizeof(line), &len);

	p->command = "";	/* until the verb is known */
	if (r == MP_CONN_TOO_LONG) {
		err(p, "Line too long");
	} else if (r != MP_CONN_OK) {
		return -1;	/* EOF or timeout: UPDATE is never entered */
	} else if (memchr(line, '\0', len)) {
		err(p, "NUL in command");
	} else {
		const char *arg;
		if (pop3_split(line, verb, sizeof(verb), &arg) < 0) {
			err(p, "Unknown command");
		} else {
			p->command = verb;
			if (p->transaction)
				transaction(p, verb, arg);
			else
				authorization(p, verb, arg);
		}
	}
	p->command = NULL;	/* verb's buffer ends here */
	if (p->errors >= p->m->set.errors && !p->quit) {
		err(p, "Too many errors; closing connection");
		return -1;
	}
	return p->quit ? -1 : 0;
}

void
pop3_session(void *ctx, struct mp_conn *conn)
{
	struct pop3 p = { .m = ctx, .c = conn };

	p.h = p.m->host;
	p.store = p.h->store();
	p.h->conn_set_timeout(conn, p.m->set.timeout);
	if (p.store == NULL) {
		p.h->conn_printf(conn, "-ERR [SYS/PERM] No mailstore configured\r\n");
		return;
	}
	ok(&p, "merpati POP3 server ready");
	while (one_command(&p) == 0)
		if (p.h->conn_pending(conn) == 0 && p.h->conn_flush(conn) < 0)
			break;
	close_maildrop(&p);
}
