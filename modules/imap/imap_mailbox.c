/*
 * modules/imap/imap_mailbox.c - the folder hierarchy as IMAP shows it:
 * LIST and LSUB with their wildcards, CREATE (with its missing parents,
 * RFC 3501 6.3.3), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE and STATUS.
 * A store keeps folders by full name only; levels that exist only as
 * the parent of another folder are synthesised here as \Noselect, and
 * \HasChildren is worked out here, so every store lists alike.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/util.h>

#include "imap.h"

struct folder {
	char *name;
	unsigned attrs;		/* enum mp_folder_attr */
	int parent_only;	/* not in the store: a level above a folder */
};

struct folder_list {
	struct folder *v;
	size_t n, cap;
};

static int
push(struct folder_list *l, const char *name, size_t len, unsigned attrs)
{
	struct folder *grown = mp_array_grow(l->v, &l->cap, l->n + 1, sizeof(*l->v));

	if (grown == NULL)
		return -1;
	l->v = grown;
	if ((l->v[l->n].name = strndup(name, len)) == NULL)
		return -1;
	l->v[l->n].attrs = attrs;
	l->v[l->n++].parent_only = 1;	/* push_each says otherwise */
	return 0;
}

static void
push_each(void *arg, const char *name, unsigned attrs)
{
	struct folder_list *l = arg;

	if (push(l, name, strlen(name), attrs & ~(unsigned)MP_FOLDER_HAS_CHILDREN) == 0)
		l->v[l->n - 1].parent_only = 0;
}

/* By name; a stored folder before a synthesised one of the same name. */
static int
by_name(const void *a, const void *b)
{
	const struct folder *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : x->parent_only - y->parent_only;
}

/* Index of the first folder whose name is >= key. */
static size_t
lower_bound(const struct folder_list *l, const char *key, size_t len)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strncmp(l->v[mid].name, key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* 1 if some folder lies below l->v[i] ("a" -> "a/b"). */
static int
has_children(const struct folder_list *l, size_t i)
{
	char key[1024];
	int len = snprintf(key, sizeof(key), "%s/", l->v[i].name);

	if (len < 0 || (size_t)len >= sizeof(key))
		return 0;
	size_t k = lower_bound(l, key, (size_t)len);
	return k < l->n && strncmp(l->v[k].name, key, (size_t)len) == 0;
}

/* Add each level above a folder ("a" for "a/b") as \Noselect, then
 * keep one entry per name, the stored folder's when there is one. */
static void
add_parents(struct folder_list *l)
{
	size_t stored = l->n, kept = 0;

	for (size_t i = 0; i < stored; i++)
		for (const char *p = strchr(l->v[i].name, '/'); p; p = strchr(p + 1, '/'))
			if (p > l->v[i].name && push(l, l->v[i].name,
			    (size_t)(p - l->v[i].name), MP_FOLDER_NOSELECT) < 0)
				return;
	qsort(l->v, l->n, sizeof(*l->v), by_name);
	for (size_t i = 0; i < l->n; i++) {
		if (kept && strcmp(l->v[kept - 1].name, l->v[i].name) == 0)
			free(l->v[i].name);
		else
			l->v[kept++] = l->v[i];
	}
	l->n = kept;
}

static void
free_list(struct folder_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

/* Every folder and synthesised parent, sorted, \HasChildren set. */
static int
load_folders(struct imap *s, struct folder_list *l)
{
	const char *err;

	*l = (struct folder_list){ NULL, 0, 0 };
	if (s->st->ops->folders(s->mb, push_each, l, &err) != MP_OK) {
		free_list(l);
		return -1;
	}
	add_parents(l);
	for (size_t i = 0; i < l->n; i++)
		if (has_children(l, i))
			l->v[i].attrs |= MP_FOLDER_HAS_CHILDREN;
	return 0;
}

/*
 * IMAP LIST wildcards: '*' matches anything, '%' anything but the
 * separator '/'. Dynamic programming over the pattern, one row per
 * pattern character, so a hostile pattern costs at most
 * strlen(pattern) * strlen(name) steps (backtracking is exponential).
 */
static int
wildmatch(const char *pat, const char *name)
{
	size_t n = strlen(name);
	char *row = calloc(n + 1, 1), *next = calloc(n + 1, 1);
	int hit = 0;

	if (row && next) {
		row[0] = 1;
		for (const char *p = pat; *p; p++) {
			next[0] = (*p == '*' || *p == '%') && row[0];
			for (size_t j = 1; j <= n; j++)
				next[j] = *p == '*' ? row[j] || next[j - 1] :
				    *p == '%' ? row[j] || (next[j - 1] && name[j - 1] != '/') :
				    row[j - 1] && *p == name[j - 1];
			char *t = row;
			row = next;
			next = t;
		}
		hit = row[n];
	}
	free(row);
	free(next);
	return hit;
}

/* ref and pattern as one pattern; a leading INBOX in any case means
 * INBOX (RFC 3501 5.1). */
static void
full_pattern(const char *ref, const char *pat, char *out, size_t size)
{
	snprintf(out, size, "%s%s", ref, pat);
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
}

static void
list_reply(struct imap *s, const char *verb, const char *attrs, const char *name)
{
	char quoted[1100];

	imap_quote(name, quoted, sizeof(quoted));
	imap_untagged(s, "%s (%s) \"/\" %s", verb, attrs, quoted);
}

/* LIST attributes; \Subscribed only belongs to LIST-EXTENDED (RFC
 * 5258), which is not offered. */
static void
list_attrs(unsigned a, char *out, size_t size)
{
	size_t o = (size_t)snprintf(out, size, "%s%s", a & MP_FOLDER_NOSELECT ? "\\Noselect " : "",
	    a & MP_FOLDER_HAS_CHILDREN ? "\\HasChildren" : "\\HasNoChildren");

	for (size_t i = 0; i < MP_SPECIAL_USES && o < size; i++)
		if (a & mp_special_use(i)->flag)
			o += (size_t)snprintf(out + o, size - o, " %s", mp_special_use(i)->attribute);
}

/* 1 if a subscribed folder lies below l->v[i]. */
static int
subscribed_below(const struct folder_list *l, size_t i)
{
	size_t len = strlen(l->v[i].name);

	for (size_t k = i + 1; k < l->n; k++) {
		if (strncmp(l->v[k].name, l->v[i].name, len) != 0)
			break;
		if (l->v[k].name[len] == '/' && (l->v[k].attrs & MP_FOLDER_SUBSCRIBED))
			return 1;
	}
	return 0;
}

/*
 * LSUB: subscribed matches; and with '%', a level that is not
 * subscribed itself but has a subscribed folder below it is returned
 * as \Noselect (RFC 3501 6.3.9).
 */
static void
lsub_folders(struct imap *s, const struct folder_list *l, const char *pat)
{
	int percent = strchr(pat, '%') != NULL;

	for (size_t i = 0; i < l->n; i++) {
		const struct folder *f = &l->v[i];
		if (!wildmatch(pat, f->name))
			continue;
		if (f->attrs & MP_FOLDER_SUBSCRIBED)
			list_reply(s, "LSUB", f->attrs & MP_FOLDER_NOSELECT ? "\\Noselect" : "",
			    f->name);
		else if (percent && subscribed_below(l, i))
			list_reply(s, "LSUB", "\\Noselect", f->name);
	}
}

static void
list_folders(struct imap *s, const struct folder_list *l, const char *pat)
{
	char attrs[128];

	for (size_t i = 0; i < l->n; i++)
		if (wildmatch(pat, l->v[i].name)) {
			list_attrs(l->v[i].attrs, attrs, sizeof(attrs));
			list_reply(s, "LIST", attrs, l->v[i].name);
		}
}

static void
list_or_lsub(struct imap *s, const struct imap_cmd *cmd, int lsub)
{
	const char *ref = imap_astring(cmd, 0), *pat = imap_astring(cmd, 1);
	struct folder_list l;
	char full[1024];

	if (cmd->nargs != 2 || !ref || !pat) {
		imap_tagged(s, cmd->tag, "BAD %s reference pattern", cmd->name);
		return;
	}
	if (pat[0] == '\0') {	/* RFC 3501 6.3.8: the separator and root */
		if (!lsub)
			imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
		return;
	}
	if (load_folders(s, &l) < 0) {
		imap_tagged(s, cmd->tag, "NO [UNAVAILABLE] cannot list folders");
		return;
	}
	full_pattern(ref, pat, full, sizeof(full));
	if (lsub)
		lsub_folders(s, &l, full);
	else
		list_folders(s, &l, full);
	free_list(&l);
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
}

void
imap_cmd_list(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	list_or_lsub(s, cmd, 0);
}

void
imap_cmd_lsub(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	list_or_lsub(s, cmd, 1);
}

/* ---- changing folders ---------------------------------------------------- */

static const char *
one_name(struct imap *s, const struct imap_cmd *cmd)
{
	const char *name = imap_astring(cmd, 0);

	if (cmd->nargs != 1 || name == NULL) {
		imap_tagged(s, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
		return NULL;
	}
	return imap_mailbox_name(name);
}

static void
folder_result(struct imap *s, const struct imap_cmd *cmd, int rc, const char *err,
    const char *declined)
{
	if (rc == MP_OK)
		imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
	else
		imap_tagged(s, cmd->tag, "NO %s%s", rc == MP_DECLINED ? declined : "",
		    err ? err : "failed");
}

/* A name a folder can have: no empty level, no wildcard. */
static int
valid_name(const char *name)
{
	return name[0] && name[0] != '/' && !strstr(name, "//") &&
	    name[strlen(name) - 1] != '/' && !strpbrk(name, "*%");
}

void
imap_cmd_create(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const char *arg = one_name(s, cmd), *err = NULL;
	char name[512];

	if (arg == NULL)
		return;
	int len = snprintf(name, sizeof(name), "%s", arg);
	if (len > 0 && (size_t)len < sizeof(name) && name[len - 1] == '/')
		name[len - 1] = '\0';	/* a trailing separator is a hint */
	if (len < 0 || (size_t)len >= sizeof(name) || !valid_name(name)) {
		imap_tagged(s, cmd->tag, "NO [CANNOT] invalid mailbox name");
		return;
	}
	for (char *p = strchr(name, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';	/* RFC 3501 6.3.3: create the levels above */
		s->st->ops->folder_create(s->mb, imap_mailbox_name(name), &err);
		*p = '/';
	}
	int rc = s->st->ops->folder_create(s->mb, imap_mailbox_name(name), &err);
	folder_result(s, cmd, rc, err, "[ALREADYEXISTS] ");
}

/* The store deletes that folder only; its children stay, and LIST
 * shows it as a \Noselect level from then on (RFC 3501 6.3.4). */
void
imap_cmd_delete(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const char *name = one_name(s, cmd), *err = NULL;

	if (name == NULL)
		return;
	folder_result(s, cmd, s->st->ops->folder_delete(s->mb, name, &err), err,
	    "[NONEXISTENT] ");
}

void
imap_cmd_rename(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const char *from = imap_astring(cmd, 0), *to = imap_astring(cmd, 1), *err = NULL;

	if (cmd->nargs != 2 || !from || !to) {
		imap_tagged(s, cmd->tag, "BAD RENAME from to");
		return;
	}
	if (!valid_name(to)) {
		imap_tagged(s, cmd->tag, "NO [CANNOT] invalid mailbox name");
		return;
	}
	folder_result(s, cmd, s->st->ops->folder_rename(s->mb, imap_mailbox_name(from),
	    imap_mailbox_name(to), &err), err, "[NONEXISTENT] ");
}

static void
subscribe(struct imap *s, const struct imap_cmd *cmd, int on)
{
	const char *name = one_name(s, cmd), *err = NULL;

	if (name)
		folder_result(s, cmd, s->st->ops->folder_subscribe(s->mb, name, on, &err), err,
		    "[NONEXISTENT] ");
}

void
imap_cmd_subscribe(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	subscribe(s, cmd, 1);
}

void
imap_cmd_unsubscribe(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	subscribe(s, cmd, 0);
}

/* ---- STATUS ---------------------------------------------------------------- */

static int
status_value(const struct mp_folder_info *info, const char *item, unsigned long *v)
{
	static const struct { const char *name; size_t off; } items[] = {
		{ "MESSAGES", offsetof(struct mp_folder_info, messages) },
		{ "RECENT", offsetof(struct mp_folder_info, recent) },
		{ "UIDNEXT", offsetof(struct mp_folder_info, uidnext) },
		{ "UIDVALIDITY", offsetof(struct mp_folder_info, uidvalidity) },
		{ "UNSEEN", offsetof(struct mp_folder_info, unseen) },
	};

	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++)
		if (strcasecmp(item, items[i].name) == 0) {
			*v = *(const uint32_t *)(const void *)((const char *)info + items[i].off);
			return 0;
		}
	return -1;
}

/* "MESSAGES 3 UNSEEN 1" for the requested items; -1 (with the bad item
 * in *bad_r) when one is not a status attribute. Repeats are answered
 * once each time asked, within the buffer: the list is bounded by the
 * command, the output by size. */
static int
status_items(const struct imap_arg *list, const struct mp_folder_info *info, char *out,
    size_t size, const char **bad_r)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < list->nlist; i++) {
		const struct imap_arg *a = &list->list[i];
		unsigned long v;
		if (a->type != IMAP_ATOM || status_value(info, a->s, &v) < 0) {
			*bad_r = a->type == IMAP_ATOM ? a->s : "(not an atom)";
			return -1;
		}
		int w = snprintf(out + o, size - o, "%s%s %lu", o ? " " : "", a->s, v);
		if (w < 0 || (size_t)w >= size - o) {
			*bad_r = "(too many items)";
			return -1;
		}
		o += (size_t)w;
	}
	return 0;
}

void
imap_cmd_status(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const char *name = imap_astring(cmd, 0), *err = NULL, *bad = NULL;
	struct mp_folder *f;
	struct mp_folder_info info = { .struct_size = sizeof(info) };
	char items[512], quoted[1100];

	if (cmd->nargs != 2 || !name || cmd->args[1].type != IMAP_LIST) {
		imap_tagged(s, cmd->tag, "BAD STATUS mailbox (items)");
		return;
	}
	name = imap_mailbox_name(name);
	if (s->st->ops->folder_open(s->mb, name, 1, &f, &err) != MP_OK) {
		imap_tagged(s, cmd->tag, "NO [NONEXISTENT] %s", err ? err : "no such mailbox");
		return;
	}
	int rc = s->st->ops->folder_info(f, &info, &err);
	s->st->ops->folder_close(f);
	if (rc != MP_OK) {
		imap_tagged(s, cmd->tag, "NO [UNAVAILABLE] %s", err ? err : "STATUS failed");
		return;
	}
	if (status_items(&cmd->args[1], &info, items, sizeof(items), &bad) < 0) {
		imap_tagged(s, cmd->tag, "BAD unknown STATUS item %.64s", bad);
		return;
	}
	imap_quote(name, quoted, sizeof(quoted));
	imap_untagged(s, "STATUS %s (%s)", quoted, items);
	imap_tagged(s, cmd->tag, "OK STATUS completed");
}
