/*
 * modules/imap/imap_session.c - one IMAP4rev1 session (RFC 3501): reading
 * commands (lines, literals and their limits), the command table with
 * the states each command is allowed in, dispatch, replies, and the
 * commands that need no mailbox (CAPABILITY, NOOP, LOGOUT, ID,
 * NAMESPACE, ENABLE). The handlers live in imap_auth.c, imap_mailbox.c,
 * imap_message.c, imap_fetch.c and imap_search.c; the selected folder's
 * view in imap_view.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/util.h>

#include "imap.h"

/* Before authentication a literal may hold a user name, a password or
 * an ID value, never a message: anything bigger is refused unread, so
 * an anonymous client cannot make the server buffer megabytes. */
#define PREAUTH_LITERAL 8192

void
imap_untagged(struct imap *s, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->h->conn_printf(s->c, "* %s\r\n", buf);
}

void
imap_tagged(struct imap *s, const char *tag, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int bad;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	bad = strncmp(buf, "BAD", 3) == 0;
	if (s->sync != IMAP_SYNC_NONE && !bad) {
		enum imap_sync how = s->sync;
		s->sync = IMAP_SYNC_NONE;
		imap_view_sync(s, how == IMAP_SYNC_NO_EXPUNGE);
	}
	s->h->conn_printf(s->c, "%s %s\r\n", tag, buf);
	s->errors += bad;
	imap_count_reply(s, buf);
}

/* text after out[*o], as much as fits before the terminating NUL. */
static void
append_text(char *out, size_t size, size_t *o, const char *text)
{
	if (*o + 1 >= size)
		return;
	mp_strfit(out + *o, size - *o, text);
	*o += strlen(out + *o);
}

void
imap_flags_text(uint32_t flags, const char *keywords, char *out, size_t size)
{
	static const struct { uint32_t f; const char *name; } names[] = {
		{ MP_FLAG_SEEN, "\\Seen" }, { MP_FLAG_ANSWERED, "\\Answered" },
		{ MP_FLAG_FLAGGED, "\\Flagged" }, { MP_FLAG_DELETED, "\\Deleted" },
		{ MP_FLAG_DRAFT, "\\Draft" }, { MP_FLAG_RECENT, "\\Recent" },
	};
	size_t o = 0;

	/* appends, not snprintf: this runs for every message of FETCH 1:* */
	if (size == 0)
		return;
	out[0] = '\0';
	append_text(out, size, &o, "(");
	for (size_t i = 0; i < 6; i++)
		if (flags & names[i].f) {
			append_text(out, size, &o, o > 1 ? " " : "");
			append_text(out, size, &o, names[i].name);
		}
	if (keywords && keywords[0]) {
		append_text(out, size, &o, o > 1 ? " " : "");
		append_text(out, size, &o, keywords);
	}
	append_text(out, size, &o, ")");
}

const char *
imap_astring(const struct imap_cmd *cmd, size_t i)
{
	if (i >= cmd->nargs || cmd->args[i].type == IMAP_LIST)
		return NULL;
	return cmd->args[i].s;
}

const char *
imap_mailbox_name(const char *name)
{
	return strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
}

int
imap_need_args(struct imap *s, const struct imap_cmd *cmd, size_t n)
{
	if (cmd->nargs != n) {
		imap_tagged(s, cmd->tag, "BAD %s needs %zu argument(s)", cmd->name, n);
		return 0;
	}
	return 1;
}

int
imap_auth_allowed(struct imap *s)
{
	return s->h->auth_allowed(s->h->conn_info(s->c), s->m->set.plaintext_auth);
}

/* ---- commands valid in any state ---------------------------------------- */

static void
cmd_capability(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const struct mp_conn_info *i = s->h->conn_info(s->c);

	imap_untagged(s, "CAPABILITY " IMAP_CAPS "%s%s",
	    !s->authed && !i->tls && i->starttls ? " STARTTLS" : "",
	    s->authed ? "" : imap_auth_allowed(s) ? " AUTH=PLAIN" : " LOGINDISABLED");
	imap_tagged(s, cmd->tag, "OK CAPABILITY completed");
}

/* The folder's news is sent by imap_tagged (s->sync). */
static void
cmd_noop(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
}

static void
cmd_logout(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	imap_untagged(s, "BYE merpati IMAP server logging out");
	imap_tagged(s, cmd->tag, "OK LOGOUT completed");
	s->quit = 1;
}

/* RFC 2971: the client's fields are only information; ours is fixed. */
static void
cmd_id(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	if (cmd->nargs != 1 || (cmd->args[0].type != IMAP_LIST &&
	    cmd->args[0].type != IMAP_NIL)) {
		imap_tagged(s, cmd->tag, "BAD ID needs a list of fields or NIL");
		return;
	}
	imap_untagged(s, "ID (\"name\" \"merpati\")");
	imap_tagged(s, cmd->tag, "OK ID completed");
}

static void
cmd_namespace(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, cmd->tag, "OK NAMESPACE completed");
}

/* No ENABLE-able extension is supported: nothing gets enabled. */
static void
cmd_enable(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	imap_untagged(s, "ENABLED");
	imap_tagged(s, cmd->tag, "OK ENABLE completed");
}

static void
run_fetch(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	imap_fetch(s, cmd, uid);
}

static void
run_search(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	imap_search(s, cmd, uid);
}

/* ---- the command table -------------------------------------------------- */

enum cmd_state {
	IN_NOAUTH = 1,
	IN_AUTH = 2,		/* authenticated, no folder selected */
	IN_SELECTED = 4,
	IN_LOGGED_IN = IN_AUTH | IN_SELECTED,
	IN_ANY = IN_NOAUTH | IN_LOGGED_IN
};

enum cmd_flag {
	CMD_UID = 1 << 0,	/* has a "UID name" form */
	CMD_NO_EXPUNGE = 1 << 1,	/* RFC 3501 7.4.1: no EXPUNGE replies
					 * (the UID form may have them) */
	CMD_NO_SYNC = 1 << 2	/* reports the folder itself, or closes it */
};

struct imap_command {
	const char *name;
	imap_handler *run;
	unsigned states;	/* enum cmd_state */
	unsigned flags;		/* enum cmd_flag */
};

static const struct imap_command commands[] = {
	{ "CAPABILITY", cmd_capability, IN_ANY, 0 },
	{ "NOOP", cmd_noop, IN_ANY, 0 },
	{ "LOGOUT", cmd_logout, IN_ANY, CMD_NO_SYNC },
	{ "ID", cmd_id, IN_ANY, 0 },
	{ "LOGIN", imap_cmd_login, IN_NOAUTH, 0 },
	{ "AUTHENTICATE", imap_cmd_authenticate, IN_NOAUTH, 0 },
	{ "STARTTLS", imap_cmd_starttls, IN_NOAUTH, 0 },
	{ "SELECT", imap_cmd_select, IN_LOGGED_IN, CMD_NO_SYNC },
	{ "EXAMINE", imap_cmd_examine, IN_LOGGED_IN, CMD_NO_SYNC },
	{ "CREATE", imap_cmd_create, IN_LOGGED_IN, 0 },
	{ "DELETE", imap_cmd_delete, IN_LOGGED_IN, 0 },
	{ "RENAME", imap_cmd_rename, IN_LOGGED_IN, 0 },
	{ "SUBSCRIBE", imap_cmd_subscribe, IN_LOGGED_IN, 0 },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, IN_LOGGED_IN, 0 },
	{ "LIST", imap_cmd_list, IN_LOGGED_IN, 0 },
	{ "LSUB", imap_cmd_lsub, IN_LOGGED_IN, 0 },
	{ "STATUS", imap_cmd_status, IN_LOGGED_IN, 0 },
	{ "APPEND", imap_cmd_append, IN_LOGGED_IN, 0 },
	{ "NAMESPACE", cmd_namespace, IN_LOGGED_IN, 0 },
	{ "ENABLE", cmd_enable, IN_LOGGED_IN, 0 },
	{ "IDLE", imap_cmd_idle, IN_LOGGED_IN, 0 },
	{ "CHECK", imap_cmd_check, IN_SELECTED, 0 },
	{ "CLOSE", imap_cmd_close, IN_SELECTED, CMD_NO_SYNC },
	{ "UNSELECT", imap_cmd_unselect, IN_SELECTED, CMD_NO_SYNC },
	{ "EXPUNGE", imap_cmd_expunge, IN_SELECTED, CMD_UID },
	{ "FETCH", run_fetch, IN_SELECTED, CMD_UID | CMD_NO_EXPUNGE },
	{ "SEARCH", run_search, IN_SELECTED, CMD_UID | CMD_NO_EXPUNGE },
	{ "STORE", imap_cmd_store, IN_SELECTED, CMD_UID | CMD_NO_EXPUNGE },
	{ "COPY", imap_cmd_copy, IN_SELECTED, CMD_UID },
	{ "MOVE", imap_cmd_move, IN_SELECTED, CMD_UID },
};

/* The row for name ("FETCH" or "UID FETCH"); *uid_r tells which. */
static const struct imap_command *
find_command(const char *name, int *uid_r)
{
	*uid_r = strncmp(name, "UID ", 4) == 0;
	if (*uid_r)
		name += 4;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return !*uid_r || (commands[i].flags & CMD_UID) ? &commands[i] : NULL;
	return NULL;
}

static unsigned
current_state(const struct imap *s)
{
	return !s->authed ? IN_NOAUTH : s->f ? IN_SELECTED : IN_AUTH;
}

/* Why a known command is refused in this state. */
static const char *
state_refusal(unsigned state, unsigned allowed)
{
	if (state == IN_NOAUTH)
		return "not allowed now (log in first)";
	if (allowed == IN_NOAUTH)
		return "not allowed now (already authenticated)";
	return "not allowed now (no mailbox selected)";
}

static void
dispatch(struct imap *s, const struct imap_cmd *cmd)
{
	int uid;
	const struct imap_command *c = find_command(cmd->name, &uid);
	unsigned state = current_state(s);

	if (c == NULL) {
		imap_tagged(s, cmd->tag, "BAD %s unknown command", cmd->name);
		return;
	}
	if (!(c->states & state)) {
		imap_tagged(s, cmd->tag, "BAD %s %s", cmd->name, state_refusal(state, c->states));
		return;
	}
	s->sync = s->f == NULL || (c->flags & CMD_NO_SYNC) ? IMAP_SYNC_NONE :
	    (c->flags & CMD_NO_EXPUNGE) && !uid ? IMAP_SYNC_NO_EXPUNGE : IMAP_SYNC_FULL;
	c->run(s, cmd, uid);
	s->sync = IMAP_SYNC_NONE;
}

/* ---- reading commands ---------------------------------------------------- */

/* A refusal, tagged with the command's tag (RFC 3501 7.1: a client
 * waits for its tag; an untagged BAD would leave it hanging). */
static void
refuse(struct imap *s, const char *start, size_t len, const char *text)
{
	char tag[64];

	imap_tag_of(start, len, tag, sizeof(tag));
	imap_tagged(s, tag, "BAD %s", text);
}

/* After a refusal, bytes a non-synchronising literal announced are on
 * their way, and would run as commands (issue 15 item 6): the only
 * safe way on is to close. */
static void
close_after_refusal(struct imap *s, const char *why)
{
	imap_untagged(s, "BYE %s", why);
	s->quit = 1;
}

/* The most a whole command may hold: before login a line and a few
 * small literals; after it a message of max_literal. */
static size_t
command_limit(const struct imap *s)
{
	size_t line = (size_t)s->m->set.max_line;

	return s->authed ? line + (size_t)s->m->set.max_literal : line + 4 * PREAUTH_LITERAL;
}

/*
 * A literal announced at the end of the line read so far: refused when
 * too big (a synchronising one is then simply not sent; for {n+} the
 * bytes are on their way and the connection closes, RFC 7888 4), else
 * read into b. 0 read, 1 refused, -1 connection lost.
 */
static int
read_literal(struct imap *s, struct mp_str *b, long long lit, int plus)
{
	long long limit = s->authed ? s->m->set.max_literal : PREAUTH_LITERAL;

	if (lit > limit || b->len + (size_t)lit > command_limit(s)) {
		refuse(s, b->p, b->len, s->authed ? "[TOOBIG] Literal too big" :
		    "Literal too big before authentication");
		if (plus)
			close_after_refusal(s, "Literal too big");
		return 1;
	}
	if (mp_str_reserve(b, 2 + (size_t)lit) < 0)
		return -1;
	memcpy(b->p + b->len, "\r\n", 2);
	b->len += 2;
	if (!plus) {
		s->h->conn_printf(s->c, "+ Ready for literal data\r\n");
		s->h->conn_flush(s->c);
	}
	for (size_t got = 0; got < (size_t)lit;) {
		ssize_t r = s->h->conn_read(s->c, b->p + b->len + got, (size_t)lit - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	b->len += (size_t)lit;
	return 0;
}

/* Read one command into b: 0 complete, 1 refused (reply sent), -1 the
 * connection is gone. */
static int
read_command(struct imap *s, struct mp_str *b)
{
	size_t max_line = (size_t)s->m->set.max_line;

	for (;;) {
		size_t n;
		int plus, rc = s->h->conn_read_line(s->c, s->line, max_line + 1, &n);
		if (rc == MP_CONN_TOO_LONG) {
			if (b->len)
				refuse(s, b->p, b->len, "Command line too long");
			else
				refuse(s, s->line, strlen(s->line), "Command line too long");
			/* Its end was skipped unread: it may have announced
			 * a literal, so what follows cannot be told from
			 * commands. */
			close_after_refusal(s, "Command line too long");
			return 1;
		}
		if (rc != MP_CONN_OK)
			return -1;
		if (b->len + n > command_limit(s)) {
			refuse(s, b->p, b->len, "Command too long");
			if (imap_literal_size(s->line, n, &plus) >= 0 && plus)
				close_after_refusal(s, "Command too long");
			return 1;
		}
		if (mp_str_reserve(b, n) < 0)
			return -1;
		memcpy(b->p + b->len, s->line, n);
		b->len += n;
		b->p[b->len] = '\0';
		long long lit = imap_literal_size(s->line, n, &plus);
		if (lit < 0)
			return 0;
		if ((rc = read_literal(s, b, lit, plus)) != 0)
			return rc;
	}
}

static int
one_command(struct imap *s, struct imap_cmd *cmd)
{
	struct mp_str b = { 0 };	/* the command: lines with CRLF, literals */
	const char *why = NULL;
	int rc;

	cmd->name[0] = '\0';	/* imap_parse fills it in place */
	s->command = cmd->name;
	rc = mp_str_reserve(&b, 256) < 0 ? -1 : read_command(s, &b);

	if (rc == 0) {
		b.p[b.len] = '\0';
		if (imap_parse(b.p, b.len, cmd, &why) < 0) {
			if (cmd->tag[0])
				imap_tagged(s, cmd->tag, "BAD %s", why);
			else
				refuse(s, b.p, b.len, why);
		} else
			dispatch(s, cmd);
		imap_cmd_free(cmd);
	}
	free(b.p);
	if (rc < 0)
		return -1;
	if (s->errors >= s->m->set.errors && !s->quit) {
		imap_untagged(s, "BYE Too many errors");
		return -1;
	}
	return s->quit ? -1 : 0;
}

static void
serve(struct imap *s)
{
	struct imap_cmd *cmd = calloc(1, sizeof(*cmd));

	s->line = malloc((size_t)s->m->set.max_line + 2);
	if (cmd && s->line)
		while (one_command(s, cmd) == 0)
			if (s->h->conn_pending(s->c) == 0 && s->h->conn_flush(s->c) < 0)
				break;
	if (cmd == NULL || s->line == NULL) {
		s->h->log(MP_LOG_ERR, "out of memory for a session");
		imap_untagged(s, "BYE [UNAVAILABLE] Out of memory");
	}
	free(s->line);
	free(cmd);
}

void
imap_session(void *ctx, struct mp_conn *conn)
{
	struct imap s = { .m = ctx, .c = conn };

	s.h = s.m->host;
	s.st = s.h->store();
	s.h->conn_set_timeout(conn, s.m->set.timeout);
	if (s.st == NULL) {
		s.h->conn_printf(conn, "* BYE No mailstore configured\r\n");
		return;
	}
	s.h->conn_printf(conn, "* OK [CAPABILITY " IMAP_CAPS "%s%s] merpati IMAP ready\r\n",
	    !s.h->conn_info(conn)->tls && s.h->conn_info(conn)->starttls ? " STARTTLS" : "",
	    imap_auth_allowed(&s) ? " AUTH=PLAIN" : " LOGINDISABLED");
	serve(&s);
	imap_view_close(&s);
	if (s.mb)
		s.st->ops->close(s.mb);
}
