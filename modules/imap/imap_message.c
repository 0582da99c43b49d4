/*
 * modules/imap/imap_message.c - commands on messages and the selected
 * folder: SELECT / EXAMINE, APPEND, CHECK, CLOSE, UNSELECT, EXPUNGE,
 * STORE, COPY, MOVE (RFC 6851) with UIDPLUS results (RFC 4315), and
 * IDLE (RFC 2177). Flag changes go to the store as add / remove /
 * replace (store.h contract 3); the view (imap_view.c) only records
 * what the store reports back. FETCH and SEARCH have their own files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <merpati/util.h>

#include "imap.h"

/* ---- SELECT / EXAMINE ------------------------------------------------------ */

static size_t
first_unseen(const struct imap *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!(s->msgs[i].flags & MP_FLAG_SEEN))
			return i + 1;
	return 0;
}

static void
select_folder(struct imap *s, const struct imap_cmd *cmd, int read_only)
{
	struct mp_folder_info info = { .struct_size = sizeof(info) };
	const char *err = NULL, *name = imap_astring(cmd, 0);

	imap_view_close(s);	/* RFC 3501 6.3.1: even if the new one fails */
	if (!imap_need_args(s, cmd, 1) || name == NULL)
		return;
	name = imap_mailbox_name(name);
	if (s->st->ops->folder_open(s->mb, name, read_only, &s->f, &err) != MP_OK) {
		s->f = NULL;
		imap_tagged(s, cmd->tag, "NO [NONEXISTENT] %s", err ? err : "no such mailbox");
		return;
	}
	s->read_only = read_only;
	int kl = snprintf(s->folder_key, sizeof(s->folder_key), "%s\n%s", s->user, name);
	if (kl < 0 || (size_t)kl >= sizeof(s->folder_key))
		s->folder_key[0] = '\0';	/* too long to name: not cached */
	if (imap_view_open(s) < 0 || s->st->ops->folder_info(s->f, &info, &err) != MP_OK) {
		imap_view_close(s);
		imap_tagged(s, cmd->tag, "NO [UNAVAILABLE] %s", err ? err : "cannot read mailbox");
		return;
	}
	s->uidvalidity = info.uidvalidity;
	s->uidnext = info.uidnext;
	if (first_unseen(s))
		imap_untagged(s, "OK [UNSEEN %zu] First unseen", first_unseen(s));
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", info.uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", info.uidnext);
	imap_tagged(s, cmd->tag, "OK [%s] %s completed", read_only ? "READ-ONLY" : "READ-WRITE",
	    read_only ? "EXAMINE" : "SELECT");
}

void
imap_cmd_select(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	select_folder(s, cmd, 0);
}

void
imap_cmd_examine(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	select_folder(s, cmd, 1);
}

/* ---- flags ------------------------------------------------------------------ */

/*
 * A flag list (or one flag) into system flags and keywords. Each item
 * must be an atom (NIL is the keyword "NIL"); keywords are kept once,
 * case-insensitively. \Recent and unknown system flags are ignored
 * (RFC 3501 2.3.2: \Recent cannot be set). 0, or -1 with *why_r.
 */
static int
parse_flags(const struct imap_arg *arg, uint32_t *flags_r, char *keywords, size_t ksize,
    const char **why_r)
{
	static const struct { const char *name; uint32_t f; } names[] = {
		{ "\\Seen", MP_FLAG_SEEN }, { "\\Answered", MP_FLAG_ANSWERED },
		{ "\\Flagged", MP_FLAG_FLAGGED }, { "\\Deleted", MP_FLAG_DELETED },
		{ "\\Draft", MP_FLAG_DRAFT },
	};
	const struct imap_arg *items = arg->type == IMAP_LIST ? arg->list : arg;
	size_t n = arg->type == IMAP_LIST ? arg->nlist : 1;
	char grown[1024];

	*flags_r = 0;
	keywords[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *f = items[i].s;
		if (items[i].type != IMAP_ATOM && items[i].type != IMAP_NIL) {
			*why_r = "flags must be atoms";
			return -1;
		}
		if (f[0] == '\\') {
			for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
				if (strcasecmp(f, names[k].name) == 0)
					*flags_r |= names[k].f;
			continue;
		}
		if (strlen(keywords) + strlen(f) + 2 > ksize) {
			*why_r = "too many keywords";
			return -1;
		}
		imap_keywords_apply(keywords, MP_FLAGS_ADD, f, grown, sizeof(grown));
		memcpy(keywords, grown, strlen(grown) + 1);	/* fits: checked above */
	}
	return 0;
}

/* ---- APPEND ------------------------------------------------------------------ */

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

/* 1 if name is the selected folder. */
static int
is_selected(const struct imap *s, const char *name)
{
	const char *nl = strchr(s->folder_key, '\n');

	return s->f && nl && strcmp(nl + 1, name) == 0;
}

/* Add keywords to one message by UID (APPEND's store call takes none). */
static void
add_keywords(struct imap *s, struct mp_folder *f, uint32_t uid, uint32_t flags,
    const char *keywords)
{
	const struct mp_store_ops *o = s->st->ops;
	const char *err, *kw;
	uint32_t stored;

	if (MP_HAS(o, o->struct_size, flags_change) && o->flags_change)
		o->flags_change(f, uid, MP_FLAGS_ADD, 0, keywords, &stored, &kw, &err);
	else
		o->flags_set(f, uid, flags, keywords, &err);
}

/* The selected folder's handle when it is the target: a second
 * read-write handle would claim the new message's \Recent (store.h
 * contract 5) away from this session. */
static void
append_keywords(struct imap *s, const char *folder, uint32_t uid, uint32_t flags,
    const char *keywords)
{
	struct mp_folder *f;
	const char *err;

	if (is_selected(s, folder) && !s->read_only) {
		add_keywords(s, s->f, uid, flags, keywords);
	} else if (s->st->ops->folder_open(s->mb, folder, 0, &f, &err) == MP_OK) {
		add_keywords(s, f, uid, flags, keywords);
		s->st->ops->folder_close(f);
	}
}

void
imap_cmd_append(struct imap *s, const struct imap_cmd *cmd, int uid_form)
{
	const char *name = imap_astring(cmd, 0), *err = NULL;
	char keywords[512] = "";
	uint32_t flags = 0, uid = 0, uv = 0;
	time_t date = 0;
	size_t i = 1;

	if (name == NULL || cmd->nargs < 2) {
		imap_tagged(s, cmd->tag, "BAD APPEND mailbox [(flags)] [date] message");
		return;
	}
	if (cmd->args[i].type == IMAP_LIST &&
	    parse_flags(&cmd->args[i++], &flags, keywords, sizeof(keywords), &err) < 0) {
		imap_tagged(s, cmd->tag, "BAD %s", err);
		return;
	}
	if (i + 1 < cmd->nargs && cmd->args[i].type == IMAP_STRING &&
	    (date = parse_internal_date(cmd->args[i++].s)) < 0) {
		imap_tagged(s, cmd->tag, "BAD bad date-time");
		return;
	}
	if (i + 1 != cmd->nargs || cmd->args[i].type != IMAP_STRING) {
		imap_tagged(s, cmd->tag, "BAD APPEND needs the message as a literal");
		return;
	}
	name = imap_mailbox_name(name);
	struct mp_mem_reader m;
	struct mp_reader *r = mp_mem_reader_init(&m, cmd->args[i].s, cmd->args[i].len);
	int rc = s->st->ops->append(s->mb, name, r, flags, date, &uid, &uv, &err);
	if (rc == MP_OK && keywords[0])
		append_keywords(s, name, uid, flags, keywords);
	if (rc == MP_OK)	/* the EXISTS, if selected, comes with the OK */
		imap_tagged(s, cmd->tag, "OK [APPENDUID %u %u] APPEND completed", uv, uid);
	else
		imap_tagged(s, cmd->tag, "NO %s%s", rc == MP_DECLINED ? "[TRYCREATE] " : "",
		    err ? err : "APPEND failed");
}

/* ---- the selected folder ------------------------------------------------------ */

void
imap_cmd_check(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	imap_tagged(s, cmd->tag, "OK CHECK completed");	/* imap_tagged syncs */
}

/*
 * Expunge the \Deleted messages (of only, sorted, when not NULL). A
 * message another session expunged first is gone all the same: it is
 * reported too, as RFC 3501 expects every EXPUNGE to be seen.
 */
static void
expunge_deleted(struct imap *s, const size_t *only, size_t nonly, int announce)
{
	const char *err;
	size_t k = nonly;

	for (size_t i = s->n; i-- > 0;) {
		if (only) {
			while (k > 0 && only[k - 1] > i)
				k--;
			if (k == 0 || only[k - 1] != i)
				continue;
		}
		if (!(s->msgs[i].flags & MP_FLAG_DELETED))
			continue;
		int rc = s->st->ops->expunge(s->f, s->msgs[i].uid, &err);
		if (rc == MP_OK || rc == MP_DECLINED)
			imap_view_remove(s, i, announce);
	}
}

void
imap_cmd_close(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	if (!s->read_only)
		expunge_deleted(s, NULL, 0, 0);	/* RFC 3501 6.4.2: silently */
	imap_view_close(s);
	imap_tagged(s, cmd->tag, "OK CLOSE completed");
}

void
imap_cmd_unselect(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	imap_view_close(s);
	imap_tagged(s, cmd->tag, "OK UNSELECT completed");
}

void
imap_cmd_expunge(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	size_t *idx = NULL, n = 0;

	if (s->read_only) {
		imap_tagged(s, cmd->tag, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	if (uid && (cmd->nargs != 1 || !imap_astring(cmd, 0) ||
	    imap_resolve_set(s, imap_astring(cmd, 0), 1, &idx, &n) < 0)) {
		imap_tagged(s, cmd->tag, "BAD UID EXPUNGE needs a UID set");
		return;
	}
	if (!uid && cmd->nargs != 0) {
		imap_tagged(s, cmd->tag, "BAD EXPUNGE takes no arguments");
		return;
	}
	expunge_deleted(s, uid ? idx : NULL, n, 1);
	free(idx);
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
}

/* "+FLAGS.SILENT" and the like: how, and whether FETCH replies go. */
static int
store_item(const char *item, enum mp_flags_how *how_r, int *silent_r)
{
	*how_r = item[0] == '+' ? MP_FLAGS_ADD : item[0] == '-' ? MP_FLAGS_REMOVE :
	    MP_FLAGS_REPLACE;
	item += *how_r != MP_FLAGS_REPLACE;
	*silent_r = strcasecmp(item, "FLAGS.SILENT") == 0;
	return *silent_r || strcasecmp(item, "FLAGS") == 0 ? 0 : -1;
}

void
imap_cmd_store(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const char *set = imap_astring(cmd, 0), *item = imap_astring(cmd, 1), *why = NULL;
	char keywords[512];
	size_t *idx, n;
	uint32_t flags;
	enum mp_flags_how how;
	int silent;

	if (cmd->nargs != 3 || !set || !item || store_item(item, &how, &silent) < 0) {
		imap_tagged(s, cmd->tag, "BAD STORE set [+-]FLAGS[.SILENT] (flags)");
		return;
	}
	if (parse_flags(&cmd->args[2], &flags, keywords, sizeof(keywords), &why) < 0) {
		imap_tagged(s, cmd->tag, "BAD %s", why);
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
	for (size_t k = 0; k < n; k++)	/* the reply shows the flags as stored */
		if (imap_view_change(s, idx[k], how, flags, keywords) == MP_OK && !silent)
			imap_view_fetch_flags(s, idx[k], uid);
	free(idx);
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
}

/* ---- COPY / MOVE ------------------------------------------------------------------- */

struct uid_map {
	char src[3000], dst[3000];
	size_t so, dso;
};

static void
map_add(struct uid_map *m, uint32_t from, uint32_t to)
{
	if (m->so < sizeof(m->src))
		m->so += (size_t)snprintf(m->src + m->so, sizeof(m->src) - m->so, "%s%u",
		    m->so ? "," : "", from);
	if (m->dso < sizeof(m->dst))
		m->dso += (size_t)snprintf(m->dst + m->dso, sizeof(m->dst) - m->dso, "%s%u",
		    m->dso ? "," : "", to);
}

/* COPYUID (RFC 4315) only when both UID lists fit in the reply. */
static int
map_fits(const struct uid_map *m)
{
	return m->so && m->so < sizeof(m->src) && m->dso < sizeof(m->dst);
}

/* TRYCREATE (RFC 3501 6.4.7) only when the destination is missing:
 * a store reports that as an error like any other. */
static int
folder_exists(struct imap *s, const char *name)
{
	struct mp_folder *f;
	const char *err;

	if (s->st->ops->folder_open(s->mb, name, 1, &f, &err) != MP_OK)
		return 0;
	s->st->ops->folder_close(f);
	return 1;
}

/* Copy the messages at idx; 0, or -1 after a NO. One another session
 * expunged meanwhile (MP_DECLINED) is left out. */
static int
copy_all(struct imap *s, const struct imap_cmd *cmd, const size_t *idx, size_t n,
    const char *dest, struct uid_map *map, uint32_t *uv_r)
{
	const char *err = NULL;

	for (size_t k = 0; k < n; k++) {
		uint32_t nuid = 0;
		int rc = s->st->ops->copy(s->f, s->msgs[idx[k]].uid, dest, 0, &nuid, uv_r, &err);
		if (rc == MP_DECLINED)
			continue;
		if (rc != MP_OK) {
			imap_tagged(s, cmd->tag, "NO %s%s", folder_exists(s, dest) ? "" :
			    "[TRYCREATE] ", err ? err : "copy failed");
			return -1;
		}
		map_add(map, s->msgs[idx[k]].uid, nuid);
	}
	return 0;
}

static void
copy_or_move(struct imap *s, const struct imap_cmd *cmd, int uid, int move)
{
	const char *set = imap_astring(cmd, 0), *dest = imap_astring(cmd, 1);
	struct uid_map *map = calloc(1, sizeof(*map));
	size_t *idx = NULL, n;
	uint32_t uv = 0;

	if (map == NULL || cmd->nargs != 2 || !set || !dest)
		imap_tagged(s, cmd->tag, "BAD %s set mailbox", cmd->name);
	else if (move && s->read_only)
		imap_tagged(s, cmd->tag, "NO [READ-ONLY] Mailbox is read-only");
	else if (imap_resolve_set(s, set, uid, &idx, &n) < 0)
		imap_tagged(s, cmd->tag, "BAD invalid message set");
	else if (copy_all(s, cmd, idx, n, imap_mailbox_name(dest), map, &uv) == 0) {
		if (move && map_fits(map))	/* RFC 6851: COPYUID, EXPUNGEs, OK */
			imap_untagged(s, "OK [COPYUID %u %s %s] Moved", uv, map->src, map->dst);
		for (size_t k = n; move && k-- > 0;) {
			const char *err;
			int rc = s->st->ops->expunge(s->f, s->msgs[idx[k]].uid, &err);
			if (rc == MP_OK || rc == MP_DECLINED)
				imap_view_remove(s, idx[k], 1);
		}
		if (!move && map_fits(map))
			imap_tagged(s, cmd->tag, "OK [COPYUID %u %s %s] COPY completed", uv,
			    map->src, map->dst);
		else
			imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
	}
	free(idx);
	free(map);
}

void
imap_cmd_copy(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	copy_or_move(s, cmd, uid, 0);
}

void
imap_cmd_move(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	copy_or_move(s, cmd, uid, 1);
}

/* ---- IDLE ------------------------------------------------------------------------- */

/*
 * How long IDLE waits before looking at the folder again. With the
 * store's change descriptor (inotify with Maildir, an eventfd with
 * SQLite) the folder is read only when it signals, plus once a minute
 * in case an event was lost (a folder recreated under the watch), so a
 * thousand idle sessions cost nothing; without one it is polled every
 * second. Never past the session timeout.
 */
#define IDLE_POLL_MS 1000
#define IDLE_FALLBACK_MS 60000

static int
idle_wait_ms(const struct imap *s, int fd, time_t until)
{
	long long left = ((long long)(until - time(NULL)) + 1) * 1000;
	int ms = fd >= 0 || s->f == NULL ? IDLE_FALLBACK_MS : IDLE_POLL_MS;

	if (left < 0)
		return 0;
	return left < ms ? (int)left : ms;
}

/* IDLE (RFC 2177): report changes until the client says DONE. Wakes on
 * the client's line and on the store's change descriptor at once. */
void
imap_cmd_idle(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	char line[64] = "";
	size_t len;
	int fd = s->f && s->st->ops->change_fd ? s->st->ops->change_fd(s->f) : -1;
	time_t until = time(NULL) + s->m->set.timeout;

	s->h->conn_printf(s->c, "+ idling\r\n");
	s->h->conn_flush(s->c);
	for (;;) {
		int w = s->h->conn_wait(s->c, fd, idle_wait_ms(s, fd, until));
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
		imap_view_sync(s, 0);
		s->h->conn_flush(s->c);
	}
	if (!s->quit && strcasecmp(line, "DONE") != 0)
		imap_tagged(s, cmd->tag, "BAD expected DONE");
	else if (!s->quit)
		imap_tagged(s, cmd->tag, "OK IDLE terminated");
}
