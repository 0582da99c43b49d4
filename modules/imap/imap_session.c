/*
 * modules/imap/imap_session.c - one IMAP4rev1 session (RFC 3501): the
 * states, authentication (LOGIN, AUTHENTICATE PLAIN with SASL-IR),
 * mailbox commands, the selected-state view of the folder with its
 * untagged EXISTS / EXPUNGE / FETCH FLAGS updates, IDLE, and the
 * extensions UIDPLUS, MOVE, NAMESPACE, ENABLE, UNSELECT, CHILDREN, ID,
 * SPECIAL-USE and LITERAL+. FETCH and SEARCH are in their own files.
 */
#include <ctype.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap.h"

#define CAPS_BASE "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS MOVE IDLE NAMESPACE ENABLE " \
	"UNSELECT CHILDREN ID SPECIAL-USE"

static const char *const special_folders[] = { "Sent", "Drafts", "Trash", "Junk" };

void
imap_untagged(struct imap *s, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->h->conn_printf(s->c, "* %s\r\n", buf);
}

void
imap_tagged(struct imap *s, const char *tag, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->h->conn_printf(s->c, "%s %s\r\n", tag, buf);
	if (strncmp(buf, "BAD", 3) == 0)
		s->errors++;
}

void
imap_flags_text(uint32_t flags, const char *keywords, char *out, size_t size)
{
	static const struct { uint32_t f; const char *name; } names[] = {
		{ MP_FLAG_SEEN, "\\Seen" }, { MP_FLAG_ANSWERED, "\\Answered" },
		{ MP_FLAG_FLAGGED, "\\Flagged" }, { MP_FLAG_DELETED, "\\Deleted" },
		{ MP_FLAG_DRAFT, "\\Draft" }, { MP_FLAG_RECENT, "\\Recent" },
	};
	size_t o = (size_t)snprintf(out, size, "(");

	for (size_t i = 0; i < 6 && o < size; i++)
		if (flags & names[i].f)
			o += (size_t)snprintf(out + o, size - o, "%s%s", o > 1 ? " " : "",
			    names[i].name);
	if (keywords && keywords[0] && o < size)
		o += (size_t)snprintf(out + o, size - o, "%s%s", o > 1 ? " " : "", keywords);
	if (o < size)
		snprintf(out + o, size - o, ")");
}

static int
auth_allowed(struct imap *s)
{
	const struct mp_conn_info *i = s->h->conn_info(s->c);

	return i->tls || (s->m->set.plaintext_auth && i->loopback);
}

static void
capability(struct imap *s)
{
	const struct mp_conn_info *i = s->h->conn_info(s->c);

	imap_untagged(s, "CAPABILITY " CAPS_BASE "%s%s",
	    !s->authed && !i->tls && i->starttls ? " STARTTLS" : "",
	    s->authed ? "" : auth_allowed(s) ? " AUTH=PLAIN" : " LOGINDISABLED");
}

/* ---- the selected folder's view ---------------------------------------- */

static void
free_view(struct imap *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->msgs[i].keywords);
	free(s->msgs);
	s->msgs = NULL;
	s->n = 0;
}

static void
close_folder(struct imap *s)
{
	if (s->f)
		s->st->ops->folder_close(s->f);
	s->f = NULL;
	free_view(s);
}

static int
keyword_equal(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/*
 * Bring the client's view up to date: EXPUNGE for what vanished (highest
 * first, so sequence numbers stay right), FETCH FLAGS for changes, EXISTS
 * (and RECENT) for what arrived. Not during FETCH/STORE/SEARCH (RFC 3501
 * 7.4.1 forbids EXPUNGE then), which pass quiet_expunge.
 */
static void
sync_view(struct imap *s, int quiet_expunge)
{
	const struct mp_msg_info *v;
	const char *err;
	size_t n, k = 0, recent = 0;
	char flags[512];

	if (s->f == NULL || s->st->ops->messages(s->f, &v, &n, &err) != MP_OK)
		return;
	if (quiet_expunge) {
		for (size_t i = 0, j = 0; i < s->n; i++) {	/* flags only */
			while (j < n && v[j].uid < s->msgs[i].uid)
				j++;
			if (j < n && v[j].uid == s->msgs[i].uid && (v[j].flags != s->msgs[i].flags ||
			    !keyword_equal(v[j].keywords, s->msgs[i].keywords))) {
				s->msgs[i].flags = v[j].flags;
				free(s->msgs[i].keywords);
				s->msgs[i].keywords = strdup(v[j].keywords);
				imap_flags_text(v[j].flags, v[j].keywords, flags, sizeof(flags));
				imap_untagged(s, "%zu FETCH (FLAGS %s)", i + 1, flags);
			}
		}
		return;
	}
	for (size_t i = s->n; i-- > 0;) {
		size_t j = 0;
		while (j < n && v[j].uid != s->msgs[i].uid)
			j++;
		if (j == n) {
			imap_untagged(s, "%zu EXPUNGE", i + 1);
			free(s->msgs[i].keywords);
			memmove(&s->msgs[i], &s->msgs[i + 1], (s->n - i - 1) * sizeof(*s->msgs));
			s->n--;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		while (k < n && v[k].uid < s->msgs[i].uid)
			k++;
		if (k < n && (v[k].flags != s->msgs[i].flags ||
		    !keyword_equal(v[k].keywords, s->msgs[i].keywords))) {
			s->msgs[i].flags = v[k].flags;
			free(s->msgs[i].keywords);
			s->msgs[i].keywords = strdup(v[k].keywords);
			imap_flags_text(v[k].flags, v[k].keywords, flags, sizeof(flags));
			imap_untagged(s, "%zu FETCH (FLAGS %s)", i + 1, flags);
		}
	}
	uint32_t last = s->n ? s->msgs[s->n - 1].uid : 0;
	size_t before = s->n;
	for (size_t j = 0; j < n; j++) {
		if (v[j].uid <= last)
			continue;
		s->msgs = realloc(s->msgs, (s->n + 1) * sizeof(*s->msgs));
		s->msgs[s->n++] = (struct imap_msg){ v[j].uid, v[j].flags, v[j].size,
		    v[j].internal_date, strdup(v[j].keywords) };
		recent += (v[j].flags & MP_FLAG_RECENT) != 0;
	}
	if (s->n != before || before == 0) {
		imap_untagged(s, "%zu EXISTS", s->n);
		if (recent || before == 0) {
			size_t r = 0;
			for (size_t i = 0; i < s->n; i++)
				r += (s->msgs[i].flags & MP_FLAG_RECENT) != 0;
			imap_untagged(s, "%zu RECENT", r);
		}
	}
}

int
imap_resolve_set(struct imap *s, const char *set, int uid, size_t **idx_r, size_t *n_r)
{
	struct imap_range r[256];
	size_t nr, k = 0;
	uint32_t max = uid ? (s->n ? s->msgs[s->n - 1].uid : 0) : (uint32_t)s->n;

	*idx_r = NULL;
	*n_r = 0;
	if (imap_seqset(set, max ? max : (uid ? 0xffffffffu : 0), r, 256, &nr) < 0)
		return -1;
	if (!uid)
		for (size_t i = 0; i < nr; i++)
			if (r[i].hi > s->n && !(s->n == 0))
				return -1;	/* RFC 3501 6.4.8: invalid sequence number */
	*idx_r = calloc(s->n ? s->n : 1, sizeof(size_t));
	for (size_t i = 0; i < s->n; i++)
		if (imap_in_set(r, nr, uid ? s->msgs[i].uid : (uint32_t)(i + 1)))
			(*idx_r)[k++] = i;
	*n_r = k;
	return 0;
}

char *
imap_load(struct imap *s, size_t i, enum mp_msg_part part, size_t *len_r)
{
	struct mp_reader r;
	const char *err;
	size_t cap = s->msgs[i].size + 1, len = 0;
	char *buf;
	ssize_t n;

	if (s->st->ops->message_open(s->f, s->msgs[i].uid, part, &r, &err) != MP_OK)
		return NULL;
	buf = malloc(cap + 1);
	while (buf && (n = r.read(&r, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	s->st->ops->message_close(&r);
	if (buf)
		buf[len] = '\0';
	*len_r = len;
	return buf;
}

/* ---- helpers for arguments ----------------------------------------------- */

static const char *
astring(const struct imap_cmd *cmd, size_t i)
{
	if (i >= cmd->nargs || (cmd->args[i].type != IMAP_ATOM &&
	    cmd->args[i].type != IMAP_STRING))
		return NULL;
	return cmd->args[i].s;
}

/* RFC 3501 5.1: INBOX is case-insensitive; names use '/' between levels. */
static const char *
mailbox_name(const char *name)
{
	return strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
}

static int
need_args(struct imap *s, const struct imap_cmd *cmd, size_t n)
{
	if (cmd->nargs != n) {
		imap_tagged(s, cmd->tag, "BAD %s needs %zu argument(s)", cmd->name, n);
		return 0;
	}
	return 1;
}

/* ---- not authenticated ------------------------------------------------------ */

static void
create_special_folders(struct imap *s)
{
	const char *err;

	for (size_t i = 0; i < 4; i++)
		if (s->st->ops->folder_create(s->mb, special_folders[i], &err) == MP_OK)
			s->st->ops->folder_subscribe(s->mb, special_folders[i], 1, &err);
	s->st->ops->folder_subscribe(s->mb, "INBOX", 1, &err);
}

static void
login(struct imap *s, const char *tag, const char *user, const char *pass)
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
		imap_tagged(s, tag, "OK [CAPABILITY " CAPS_BASE "] Logged in");
		return;
	}
	if (rc == 1 || rc < 0) {
		imap_tagged(s, tag, "NO [UNAVAILABLE] Temporary failure, try again later");
		return;
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
}

static void
cmd_login(struct imap *s, const struct imap_cmd *cmd)
{
	if (!auth_allowed(s)) {
		imap_tagged(s, cmd->tag, "NO [PRIVACYREQUIRED] LOGIN is disabled without TLS; use STARTTLS");
		return;
	}
	if (!need_args(s, cmd, 2) || !astring(cmd, 0) || !astring(cmd, 1)) {
		if (cmd->nargs == 2)
			imap_tagged(s, cmd->tag, "BAD LOGIN user password");
		return;
	}
	login(s, cmd->tag, astring(cmd, 0), astring(cmd, 1));
}

static void
cmd_authenticate(struct imap *s, const struct imap_cmd *cmd)
{
	char line[4096], buf[4096];
	const char *resp = astring(cmd, 1);
	size_t len;
	int n;

	if (cmd->nargs < 1 || strcasecmp(astring(cmd, 0) ? astring(cmd, 0) : "", "PLAIN") != 0) {
		imap_tagged(s, cmd->tag, "NO Unsupported authentication mechanism");
		return;
	}
	if (!auth_allowed(s)) {
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
	const char *authc = n > 0 ? memchr(buf, '\0', (size_t)n) : NULL;
	const char *pass = authc ? memchr(authc + 1, '\0', (size_t)(buf + n - authc - 1)) : NULL;
	if (pass == NULL || (buf[0] && strcasecmp(buf, authc + 1) != 0)) {
		imap_tagged(s, cmd->tag, "BAD Malformed PLAIN response");
		return;
	}
	login(s, cmd->tag, authc + 1, pass + 1);
}

static void
cmd_starttls(struct imap *s, const struct imap_cmd *cmd)
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

/* ---- authenticated ------------------------------------------------------------- */

static void
select_folder(struct imap *s, const struct imap_cmd *cmd, int read_only)
{
	struct mp_folder_info info;
	const char *err = NULL, *name = astring(cmd, 0);
	size_t unseen = 0;

	close_folder(s);
	if (!need_args(s, cmd, 1) || name == NULL)
		return;
	if (s->st->ops->folder_open(s->mb, mailbox_name(name), read_only, &s->f, &err) != MP_OK) {
		imap_tagged(s, cmd->tag, "NO [NONEXISTENT] %s", err ? err : "no such mailbox");
		return;
	}
	s->read_only = read_only;
	int kl = snprintf(s->folder_key, sizeof(s->folder_key), "%s\n%s", s->user,
	    mailbox_name(name));
	if (kl < 0 || (size_t)kl >= sizeof(s->folder_key))
		s->folder_key[0] = '\0';	/* too long to name: not cached */
	imap_untagged(s, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
	sync_view(s, 0);
	s->st->ops->folder_info(s->f, &info, &err);
	s->uidvalidity = info.uidvalidity;
	s->uidnext = info.uidnext;
	for (size_t i = 0; i < s->n && !unseen; i++)
		if (!(s->msgs[i].flags & MP_FLAG_SEEN))
			unseen = i + 1;
	if (unseen)
		imap_untagged(s, "OK [UNSEEN %zu] First unseen", unseen);
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", info.uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", info.uidnext);
	imap_untagged(s, "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags");
	imap_tagged(s, cmd->tag, "OK [%s] %s completed", read_only ? "READ-ONLY" : "READ-WRITE",
	    read_only ? "EXAMINE" : "SELECT");
}

struct list_ctx {
	struct imap *s;
	const char *pattern;
	int lsub;
};

/* IMAP LIST wildcards: '*' matches anything, '%' anything but '/'. */
static int
wildmatch(const char *p, const char *n)
{
	if (*p == '\0')
		return *n == '\0';
	if (*p == '*' || *p == '%') {
		for (const char *t = n;; t++) {
			if (wildmatch(p + 1, t))
				return 1;
			if (*t == '\0' || (*p == '%' && *t == '/'))
				return 0;
		}
	}
	if (strncasecmp(p, "INBOX", 5) == 0 && strncmp(n, "INBOX", 5) == 0 &&
	    (p[5] == '\0' || p[5] == '/'))
		return wildmatch(p + 5, n + 5);
	return *p == *n && wildmatch(p + 1, n + 1);
}

static void
list_one(void *arg, const char *name, unsigned attrs)
{
	struct list_ctx *l = arg;
	char attr[128] = "", quoted[512];

	if (!wildmatch(l->pattern, name) || (l->lsub && !(attrs & MP_FOLDER_SUBSCRIBED)))
		return;
	snprintf(attr, sizeof(attr), "%s%s%s%s%s%s",
	    attrs & MP_FOLDER_HAS_CHILDREN ? "\\HasChildren" : "\\HasNoChildren",
	    attrs & MP_FOLDER_SENT ? " \\Sent" : "", attrs & MP_FOLDER_DRAFTS ? " \\Drafts" : "",
	    attrs & MP_FOLDER_TRASH ? " \\Trash" : "", attrs & MP_FOLDER_JUNK ? " \\Junk" : "",
	    !l->lsub && (attrs & MP_FOLDER_SUBSCRIBED) ? " \\Subscribed" : "");
	imap_quote(name, quoted, sizeof(quoted));
	imap_untagged(l->s, "%s (%s) \"/\" %s", l->lsub ? "LSUB" : "LIST", attr, quoted);
}

static void
cmd_list(struct imap *s, const struct imap_cmd *cmd, int lsub)
{
	const char *ref = astring(cmd, 0), *pat = astring(cmd, 1), *err;
	char full[512];
	struct list_ctx l = { s, full, lsub };

	if (!need_args(s, cmd, 2) || !ref || !pat) {
		if (cmd->nargs == 2)
			imap_tagged(s, cmd->tag, "BAD %s reference pattern", cmd->name);
		return;
	}
	if (pat[0] == '\0') {
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_tagged(s, cmd->tag, "OK LIST completed");
		return;
	}
	snprintf(full, sizeof(full), "%s%s", ref, pat);
	s->st->ops->folders(s->mb, list_one, &l, &err);
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
}

static void
folder_op(struct imap *s, const struct imap_cmd *cmd)
{
	const char *a = astring(cmd, 0), *b = astring(cmd, 1), *err = NULL;
	int rc;

	if (a == NULL || (strcmp(cmd->name, "RENAME") == 0 ? !need_args(s, cmd, 2) || !b :
	    !need_args(s, cmd, 1))) {
		if (a == NULL)
			imap_tagged(s, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
		return;
	}
	if (strcmp(cmd->name, "CREATE") == 0) {
		char name[256];
		snprintf(name, sizeof(name), "%s", a);
		size_t len = strlen(name);
		if (len && name[len - 1] == '/')	/* a trailing separator is a hint */
			name[len - 1] = '\0';
		rc = s->st->ops->folder_create(s->mb, mailbox_name(name), &err);
	} else if (strcmp(cmd->name, "DELETE") == 0)
		rc = s->st->ops->folder_delete(s->mb, mailbox_name(a), &err);
	else if (strcmp(cmd->name, "RENAME") == 0)
		rc = s->st->ops->folder_rename(s->mb, mailbox_name(a), b, &err);
	else
		rc = s->st->ops->folder_subscribe(s->mb, mailbox_name(a),
		    strcmp(cmd->name, "SUBSCRIBE") == 0, &err);
	if (rc == MP_OK)
		imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
	else
		imap_tagged(s, cmd->tag, "NO %s%s", rc == MP_DECLINED &&
		    strcmp(cmd->name, "CREATE") == 0 ? "[ALREADYEXISTS] " :
		    rc == MP_DECLINED ? "[NONEXISTENT] " : "", err ? err : "failed");
}

static void
cmd_status(struct imap *s, const struct imap_cmd *cmd)
{
	const char *name = astring(cmd, 0), *err = NULL;
	struct mp_folder *f;
	struct mp_folder_info info;
	char items[256] = "", quoted[512];
	size_t o = 0;

	if (!need_args(s, cmd, 2) || !name || cmd->args[1].type != IMAP_LIST) {
		if (cmd->nargs == 2)
			imap_tagged(s, cmd->tag, "BAD STATUS mailbox (items)");
		return;
	}
	if (s->st->ops->folder_open(s->mb, mailbox_name(name), 1, &f, &err) != MP_OK) {
		imap_tagged(s, cmd->tag, "NO [NONEXISTENT] %s", err ? err : "no such mailbox");
		return;
	}
	s->st->ops->folder_info(f, &info, &err);
	s->st->ops->folder_close(f);
	for (size_t i = 0; i < cmd->args[1].nlist; i++) {
		const char *it = cmd->args[1].list[i].s;
		unsigned long v;
		if (strcasecmp(it, "MESSAGES") == 0) v = info.messages;
		else if (strcasecmp(it, "RECENT") == 0) v = info.recent;
		else if (strcasecmp(it, "UIDNEXT") == 0) v = info.uidnext;
		else if (strcasecmp(it, "UIDVALIDITY") == 0) v = info.uidvalidity;
		else if (strcasecmp(it, "UNSEEN") == 0) v = info.unseen;
		else {
			imap_tagged(s, cmd->tag, "BAD unknown STATUS item %s", it);
			return;
		}
		o += (size_t)snprintf(items + o, sizeof(items) - o, "%s%s %lu", o ? " " : "",
		    it, v);
	}
	imap_quote(mailbox_name(name), quoted, sizeof(quoted));
	imap_untagged(s, "STATUS %s (%s)", quoted, items);
	imap_tagged(s, cmd->tag, "OK STATUS completed");
}

static uint32_t
parse_flags(const struct imap_arg *list, char *keywords, size_t ksize)
{
	static const struct { const char *name; uint32_t f; } names[] = {
		{ "\\Seen", MP_FLAG_SEEN }, { "\\Answered", MP_FLAG_ANSWERED },
		{ "\\Flagged", MP_FLAG_FLAGGED }, { "\\Deleted", MP_FLAG_DELETED },
		{ "\\Draft", MP_FLAG_DRAFT },
	};
	uint32_t flags = 0;
	size_t o = 0;

	keywords[0] = '\0';
	for (size_t i = 0; i < list->nlist; i++) {
		const char *f = list->list[i].s;
		int sys = 0;
		for (size_t k = 0; k < 5; k++)
			if (f && strcasecmp(f, names[k].name) == 0) {
				flags |= names[k].f;
				sys = 1;
			}
		if (!sys && f && f[0] != '\\' && o + strlen(f) + 2 < ksize)
			o += (size_t)snprintf(keywords + o, ksize - o, "%s%s", o ? " " : "", f);
	}
	return flags;
}

struct mem_reader {
	const char *p;
	size_t len, pos;
};

static ssize_t
mem_read(struct mp_reader *r, void *buf, size_t len)
{
	struct mem_reader *m = r->priv;

	if (len > m->len - m->pos)
		len = m->len - m->pos;
	memcpy(buf, m->p + m->pos, len);
	m->pos += len;
	return (ssize_t)len;
}

static time_t
parse_internal_date(const char *s)
{
	struct tm tm = { 0 };
	int tz = 0;
	char sign = '+';
	const char *end = strptime(s, "%d-%b-%Y %H:%M:%S", &tm);

	if (end == NULL)
		return -1;
	if (sscanf(end, " %c%04d", &sign, &tz) == 2) {
		time_t t = timegm(&tm);
		int off = (tz / 100) * 3600 + (tz % 100) * 60;
		return sign == '-' ? t + off : t - off;
	}
	return timegm(&tm);
}

static void
cmd_append(struct imap *s, const struct imap_cmd *cmd)
{
	const char *name = astring(cmd, 0), *err = NULL;
	char keywords[512] = "";
	uint32_t flags = 0, uid = 0, uv = 0;
	time_t date = 0;
	size_t i = 1;

	if (name == NULL || cmd->nargs < 2) {
		imap_tagged(s, cmd->tag, "BAD APPEND mailbox [(flags)] [date] message");
		return;
	}
	if (i < cmd->nargs && cmd->args[i].type == IMAP_LIST)
		flags = parse_flags(&cmd->args[i++], keywords, sizeof(keywords));
	if (i + 1 < cmd->nargs && cmd->args[i].type == IMAP_STRING &&
	    (date = parse_internal_date(cmd->args[i++].s)) < 0) {
		imap_tagged(s, cmd->tag, "BAD bad date-time");
		return;
	}
	if (i + 1 != cmd->nargs || cmd->args[i].type != IMAP_STRING) {
		imap_tagged(s, cmd->tag, "BAD APPEND needs the message as a literal");
		return;
	}
	struct mem_reader m = { cmd->args[i].s, cmd->args[i].len, 0 };
	struct mp_reader r = { mem_read, (off_t)m.len, &m };
	int rc = s->st->ops->append(s->mb, mailbox_name(name), &r, flags, date, &uid, &uv, &err);
	if (rc == MP_OK && keywords[0]) {
		struct mp_folder *f;
		if (s->st->ops->folder_open(s->mb, mailbox_name(name), 0, &f, &err) == MP_OK) {
			s->st->ops->flags_set(f, uid, flags, keywords, &err);
			s->st->ops->folder_close(f);
		}
	}
	if (rc == MP_OK)
		imap_tagged(s, cmd->tag, "OK [APPENDUID %u %u] APPEND completed", uv, uid);
	else
		imap_tagged(s, cmd->tag, "NO %s%s", rc == MP_DECLINED ? "[TRYCREATE] " : "",
		    err ? err : "APPEND failed");
}

/* ---- selected ---------------------------------------------------------------------- */

/* Expunge \Deleted messages (those in only, when only != NULL). */
static void
expunge(struct imap *s, const size_t *only, size_t nonly, int silent)
{
	const char *err;

	for (size_t i = s->n; i-- > 0;) {
		int pick = only == NULL;
		for (size_t k = 0; !pick && k < nonly; k++)
			pick = only[k] == i;
		if (!pick || !(s->msgs[i].flags & MP_FLAG_DELETED))
			continue;
		if (s->st->ops->expunge(s->f, s->msgs[i].uid, &err) != MP_OK)
			continue;
		if (!silent)
			imap_untagged(s, "%zu EXPUNGE", i + 1);
		free(s->msgs[i].keywords);
		memmove(&s->msgs[i], &s->msgs[i + 1], (s->n - i - 1) * sizeof(*s->msgs));
		s->n--;
	}
}

static void
cmd_expunge(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	size_t *idx = NULL, n = 0;

	if (s->read_only) {
		imap_tagged(s, cmd->tag, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	if (uid && (cmd->nargs != 1 || !astring(cmd, 0) ||
	    imap_resolve_set(s, astring(cmd, 0), 1, &idx, &n) < 0)) {
		imap_tagged(s, cmd->tag, "BAD UID EXPUNGE needs a UID set");
		return;
	}
	expunge(s, uid ? idx : NULL, n, 0);
	free(idx);
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
}

static void
cmd_store(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const char *set = astring(cmd, 0), *item = astring(cmd, 1), *err;
	char keywords[512], text[600];
	size_t *idx, n;
	int mode, silent;

	if (cmd->nargs != 3 || !set || !item || (cmd->args[2].type != IMAP_LIST &&
	    cmd->args[2].type != IMAP_ATOM)) {
		imap_tagged(s, cmd->tag, "BAD STORE set [+-]FLAGS[.SILENT] (flags)");
		return;
	}
	mode = item[0] == '+' ? 1 : item[0] == '-' ? -1 : 0;
	const char *base = item + (mode != 0);
	silent = strcasecmp(base, "FLAGS.SILENT") == 0;
	if (!silent && strcasecmp(base, "FLAGS") != 0) {
		imap_tagged(s, cmd->tag, "BAD unknown STORE item %s", item);
		return;
	}
	if (s->read_only) {
		imap_tagged(s, cmd->tag, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_resolve_set(s, set, uid, &idx, &n) < 0) {
		imap_tagged(s, cmd->tag, "BAD invalid message set");
		return;
	}
	struct imap_arg single = { IMAP_LIST, NULL, 0, &cmd->args[2], 1 };
	uint32_t f = parse_flags(cmd->args[2].type == IMAP_LIST ? &cmd->args[2] : &single,
	    keywords, sizeof(keywords));
	for (size_t k = 0; k < n; k++) {
		struct imap_msg *m = &s->msgs[idx[k]];
		uint32_t nf = mode > 0 ? m->flags | f : mode < 0 ? m->flags & ~f :
		    (m->flags & MP_FLAG_RECENT) | f;
		char kw[1024];
		if (mode == 0)
			snprintf(kw, sizeof(kw), "%s", keywords);
		else if (mode > 0)
			snprintf(kw, sizeof(kw), "%s%s%s", m->keywords, m->keywords[0] && keywords[0] ? " " : "", keywords);
		else {
			kw[0] = '\0';
			char copy[1024], *save = NULL;
			snprintf(copy, sizeof(copy), "%s", m->keywords);
			for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
				if (!strstr(keywords, t))
					snprintf(kw + strlen(kw), sizeof(kw) - strlen(kw), "%s%s", kw[0] ? " " : "", t);
		}
		if (s->st->ops->flags_set(s->f, m->uid, nf, kw, &err) != MP_OK)
			continue;
		m->flags = nf;
		free(m->keywords);
		m->keywords = strdup(kw);
		if (!silent) {
			imap_flags_text(nf, kw, text, sizeof(text));
			if (uid)
				imap_untagged(s, "%zu FETCH (UID %u FLAGS %s)", idx[k] + 1, m->uid, text);
			else
				imap_untagged(s, "%zu FETCH (FLAGS %s)", idx[k] + 1, text);
		}
	}
	free(idx);
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
}

static void
cmd_copy(struct imap *s, const struct imap_cmd *cmd, int uid, int move)
{
	const char *set = astring(cmd, 0), *dest = astring(cmd, 1), *err = NULL;
	char srcs[4096] = "", dsts[4096] = "";
	size_t *idx, n, so = 0, dso = 0;
	uint32_t uv = 0;

	if (!need_args(s, cmd, 2) || !set || !dest)
		return;
	if (move && s->read_only) {
		imap_tagged(s, cmd->tag, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_resolve_set(s, set, uid, &idx, &n) < 0) {
		imap_tagged(s, cmd->tag, "BAD invalid message set");
		return;
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t nuid = 0;
		if (s->st->ops->copy(s->f, s->msgs[idx[k]].uid, mailbox_name(dest), 0, &nuid, &uv,
		    &err) != MP_OK) {
			free(idx);
			imap_tagged(s, cmd->tag, "NO [TRYCREATE] %s", err ? err : "copy failed");
			return;
		}
		so += (size_t)snprintf(srcs + so, so < sizeof(srcs) ? sizeof(srcs) - so : 0,
		    "%s%u", k ? "," : "", s->msgs[idx[k]].uid);
		dso += (size_t)snprintf(dsts + dso, dso < sizeof(dsts) ? sizeof(dsts) - dso : 0,
		    "%s%u", k ? "," : "", nuid);
	}
	if (move) {	/* RFC 6851: COPYUID untagged, then EXPUNGEs, then OK */
		if (n)
			imap_untagged(s, "OK [COPYUID %u %s %s] Moved", uv, srcs, dsts);
		for (size_t k = 0; k < n; k++)
			s->msgs[idx[k]].flags |= MP_FLAG_DELETED;
		expunge(s, idx, n, 0);
		imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
	} else if (n && so < sizeof(srcs) && dso < sizeof(dsts))
		imap_tagged(s, cmd->tag, "OK [COPYUID %u %s %s] COPY completed", uv, srcs, dsts);
	else
		imap_tagged(s, cmd->tag, "OK COPY completed");
	free(idx);
}

/* IDLE (RFC 2177): report changes until the client says DONE. Wakes on
 * the client's line and on the store's change descriptor (inotify with
 * Maildir) at once; without one, the folder is looked at every second. */
static void
cmd_idle(struct imap *s, const struct imap_cmd *cmd)
{
	char line[64] = "";
	size_t len;
	int fd = s->f ? s->st->ops->change_fd(s->f) : -1;
	time_t until = time(NULL) + s->m->set.timeout;

	s->h->conn_printf(s->c, "+ idling\r\n");
	s->h->conn_flush(s->c);
	for (;;) {
		int w = s->h->conn_wait(s->c, fd, 1000);
		if (w == 1) {
			if (s->h->conn_read_line(s->c, line, sizeof(line), &len) != MP_CONN_OK)
				s->quit = 1;
			break;
		}
		if (w < 0 || time(NULL) > until) {
			s->quit = 1;
			break;
		}
		if (w == 2) {	/* drain the events, then look */
			char ev[4096];
			while (read(fd, ev, sizeof(ev)) > 0)
				;
		}
		sync_view(s, 0);
		s->h->conn_flush(s->c);
	}
	if (!s->quit && strcasecmp(line, "DONE") != 0)
		imap_tagged(s, cmd->tag, "BAD expected DONE");
	else if (!s->quit)
		imap_tagged(s, cmd->tag, "OK IDLE terminated");
}

/* ---- dispatch ------------------------------------------------------------------------- */

static int
any_state(struct imap *s, const struct imap_cmd *cmd)
{
	if (strcmp(cmd->name, "CAPABILITY") == 0) {
		capability(s);
		imap_tagged(s, cmd->tag, "OK CAPABILITY completed");
	} else if (strcmp(cmd->name, "NOOP") == 0) {
		sync_view(s, 0);
		imap_tagged(s, cmd->tag, "OK NOOP completed");
	} else if (strcmp(cmd->name, "LOGOUT") == 0) {
		imap_untagged(s, "BYE merpati IMAP server logging out");
		imap_tagged(s, cmd->tag, "OK LOGOUT completed");
		s->quit = 1;
	} else if (strcmp(cmd->name, "ID") == 0) {
		imap_untagged(s, "ID (\"name\" \"merpati\")");
		imap_tagged(s, cmd->tag, "OK ID completed");
	} else
		return 0;
	return 1;
}

static int
not_authenticated(struct imap *s, const struct imap_cmd *cmd)
{
	if (strcmp(cmd->name, "LOGIN") == 0) cmd_login(s, cmd);
	else if (strcmp(cmd->name, "AUTHENTICATE") == 0) cmd_authenticate(s, cmd);
	else if (strcmp(cmd->name, "STARTTLS") == 0) cmd_starttls(s, cmd);
	else return 0;
	return 1;
}

static int
authenticated(struct imap *s, const struct imap_cmd *cmd)
{
	const char *n = cmd->name;

	if (strcmp(n, "SELECT") == 0) select_folder(s, cmd, 0);
	else if (strcmp(n, "EXAMINE") == 0) select_folder(s, cmd, 1);
	else if (strcmp(n, "LIST") == 0) cmd_list(s, cmd, 0);
	else if (strcmp(n, "LSUB") == 0) cmd_list(s, cmd, 1);
	else if (strcmp(n, "CREATE") == 0 || strcmp(n, "DELETE") == 0 ||
	    strcmp(n, "RENAME") == 0 || strcmp(n, "SUBSCRIBE") == 0 ||
	    strcmp(n, "UNSUBSCRIBE") == 0) folder_op(s, cmd);
	else if (strcmp(n, "STATUS") == 0) cmd_status(s, cmd);
	else if (strcmp(n, "APPEND") == 0) cmd_append(s, cmd);
	else if (strcmp(n, "NAMESPACE") == 0) {
		imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
		imap_tagged(s, cmd->tag, "OK NAMESPACE completed");
	} else if (strcmp(n, "ENABLE") == 0) {
		imap_untagged(s, "ENABLED");
		imap_tagged(s, cmd->tag, "OK ENABLE completed");
	} else if (strcmp(n, "IDLE") == 0) cmd_idle(s, cmd);
	else return 0;
	return 1;
}

static int
selected(struct imap *s, const struct imap_cmd *cmd)
{
	const char *n = cmd->name;

	if (strcmp(n, "CHECK") == 0) {
		sync_view(s, 0);
		imap_tagged(s, cmd->tag, "OK CHECK completed");
	} else if (strcmp(n, "CLOSE") == 0 || strcmp(n, "UNSELECT") == 0) {
		if (strcmp(n, "CLOSE") == 0 && !s->read_only)
			expunge(s, NULL, 0, 1);
		close_folder(s);
		imap_tagged(s, cmd->tag, "OK %s completed", n);
	} else if (strcmp(n, "EXPUNGE") == 0) cmd_expunge(s, cmd, 0);
	else if (strcmp(n, "UID EXPUNGE") == 0) cmd_expunge(s, cmd, 1);
	else if (strcmp(n, "FETCH") == 0 || strcmp(n, "UID FETCH") == 0)
		imap_fetch(s, cmd, n[0] == 'U');
	else if (strcmp(n, "SEARCH") == 0 || strcmp(n, "UID SEARCH") == 0)
		imap_search(s, cmd, n[0] == 'U');
	else if (strcmp(n, "STORE") == 0 || strcmp(n, "UID STORE") == 0)
		cmd_store(s, cmd, n[0] == 'U');
	else if (strcmp(n, "COPY") == 0 || strcmp(n, "UID COPY") == 0)
		cmd_copy(s, cmd, n[0] == 'U', 0);
	else if (strcmp(n, "MOVE") == 0 || strcmp(n, "UID MOVE") == 0)
		cmd_copy(s, cmd, n[0] == 'U', 1);
	else return 0;
	return 1;
}

static void
dispatch(struct imap *s, const struct imap_cmd *cmd)
{
	if (any_state(s, cmd))
		return;
	if (!s->authed) {
		if (!not_authenticated(s, cmd))
			imap_tagged(s, cmd->tag, "BAD %s not allowed now (log in first)", cmd->name);
		return;
	}
	if (strcmp(cmd->name, "LOGIN") == 0 || strcmp(cmd->name, "AUTHENTICATE") == 0 ||
	    strcmp(cmd->name, "STARTTLS") == 0) {
		imap_tagged(s, cmd->tag, "BAD Already authenticated");
		return;
	}
	if (authenticated(s, cmd) || (s->f && selected(s, cmd)))
		return;
	imap_tagged(s, cmd->tag, "BAD %s %s", cmd->name, s->f ? "unknown command" :
	    "unknown command or no mailbox selected");
}

/* ---- reading commands --------------------------------------------------------------- */

/* Read one command, literals included, into a growing buffer. */
static int
read_command(struct imap *s, char **buf_r, size_t *len_r, int *too_big)
{
	size_t cap = 4096, len = 0, max_line = (size_t)s->m->set.max_line;
	char *buf = malloc(cap), *line = malloc(max_line + 2);
	int rc = MP_CONN_OK;

	*too_big = 0;
	for (;;) {
		size_t n;
		int plus;
		rc = s->h->conn_read_line(s->c, line, max_line + 1, &n);
		if (rc == MP_CONN_TOO_LONG) {
			*too_big = 1;
			rc = MP_CONN_OK;
			break;
		}
		if (rc != MP_CONN_OK)
			break;
		long long lit = imap_literal_size(line, n, &plus);
		if (len + n + 2 + (lit > 0 ? (size_t)lit : 0) + 1 > cap) {
			if (lit > s->m->set.max_literal || len + n > (size_t)s->m->set.max_literal) {
				*too_big = 1;
				break;
			}
			cap = len + n + 3 + (lit > 0 ? (size_t)lit : 0);
			buf = realloc(buf, cap);
		}
		memcpy(buf + len, line, n);
		len += n;
		if (lit < 0)
			break;
		memcpy(buf + len, "\r\n", 2);
		len += 2;
		if (!plus) {
			s->h->conn_printf(s->c, "+ Ready for literal data\r\n");
			s->h->conn_flush(s->c);
		}
		for (size_t got = 0; got < (size_t)lit;) {
			ssize_t r = s->h->conn_read(s->c, buf + len + got, (size_t)lit - got);
			if (r <= 0) {
				rc = MP_CONN_ERROR;
				goto out;
			}
			got += (size_t)r;
		}
		len += (size_t)lit;
	}
out:
	free(line);
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return rc;
}

static int
one_command(struct imap *s)
{
	struct imap_cmd *cmd = calloc(1, sizeof(*cmd));
	const char *why = NULL;
	char *buf;
	size_t len;
	int too_big, rc = read_command(s, &buf, &len, &too_big);

	if (rc != MP_CONN_OK) {
		free(buf);
		free(cmd);
		return -1;
	}
	if (too_big) {
		imap_untagged(s, "BAD Command line or literal too long");
		s->errors++;
	} else if (imap_parse(buf, len, cmd, &why) < 0)
		imap_tagged(s, cmd->tag[0] ? cmd->tag : "*", "BAD %s", why);
	else
		dispatch(s, cmd);
	imap_cmd_free(cmd);
	free(cmd);
	free(buf);
	if (s->errors >= s->m->set.errors && !s->quit) {
		imap_untagged(s, "BYE Too many errors");
		return -1;
	}
	return s->quit ? -1 : 0;
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
	s.h->conn_printf(conn, "* OK [CAPABILITY " CAPS_BASE "%s%s] merpati IMAP ready\r\n",
	    !s.h->conn_info(conn)->tls && s.h->conn_info(conn)->starttls ? " STARTTLS" : "",
	    auth_allowed(&s) ? " AUTH=PLAIN" : " LOGINDISABLED");
	while (one_command(&s) == 0)
		if (s.h->conn_pending(conn) == 0 && s.h->conn_flush(conn) < 0)
			break;
	close_folder(&s);
	if (s.mb)
		s.st->ops->close(s.mb);
}
