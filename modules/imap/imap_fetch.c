/*
 * modules/imap/imap_fetch.c - FETCH and UID FETCH (RFC 3501 6.4.5):
 * FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE,
 * BODY[section]<partial>, BODY.PEEK, RFC822, RFC822.HEADER, RFC822.TEXT
 * and the ALL / FAST / FULL macros.
 *
 * Each message is read only as far as its items need: nothing for
 * FLAGS/UID/..., the header for ENVELOPE and BODY[HEADER...], all of it
 * otherwise; its MIME tree is parsed once, and only for BODY,
 * BODYSTRUCTURE or a section with part numbers. A non-PEEK body fetch
 * sets \Seen with the store's atomic flags_change (an add on the flags
 * stored now, never a write-back of this session's copy) and reports
 * the flags that results in.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"

enum item_kind {
	IT_FLAGS, IT_UID, IT_INTERNALDATE, IT_RFC822_SIZE,
	IT_ENVELOPE, IT_BODY, IT_BODYSTRUCTURE, IT_BODY_SECTION,
	IT_RFC822, IT_RFC822_HEADER, IT_RFC822_TEXT, IT_UNKNOWN
};

struct item {
	char name[24];		/* FLAGS, BODY[], ... */
	enum item_kind kind;	/* from name, compared per message */
	char *section;		/* BODY[...]: the text between the brackets */
	int peek, partial;
	unsigned long origin, count;
};

/* "BODY.PEEK[1.HEADER]<0.100>" -> name BODY[], section, peek, partial.
 * 0, or -1 when malformed (then it->section is NULL). */
static int
parse_item(const char *text, struct item *it)
{
	const char *lb = strchr(text, '[');
	size_t nlen = lb ? (size_t)(lb - text) : strlen(text);
	struct imap_section sec;

	memset(it, 0, sizeof(*it));
	if (nlen >= sizeof(it->name) - 2)
		return -1;
	for (size_t i = 0; i < nlen; i++)
		it->name[i] = (char)toupper((unsigned char)text[i]);
	if (lb == NULL)
		return 0;
	const char *rb = strrchr(lb, ']');
	if (rb == NULL)
		return -1;
	if (strcmp(it->name, "BODY.PEEK") == 0) {
		it->peek = 1;
		strcpy(it->name, "BODY");
	}
	if (strcmp(it->name, "BODY") != 0)
		return -1;
	strcat(it->name, "[]");
	if (rb[1] == '<') {
		char *end;
		if (!isdigit((unsigned char)rb[2]))
			return -1;
		it->origin = strtoul(rb + 2, &end, 10);
		if (*end != '.' || !isdigit((unsigned char)end[1]))
			return -1;
		it->count = strtoul(end + 1, &end, 10);
		if (*end != '>' || end[1] != '\0' || it->count == 0)
			return -1;
		it->partial = 1;
	} else if (rb[1] != '\0')
		return -1;
	if ((it->section = strndup(lb + 1, (size_t)(rb - lb - 1))) == NULL ||
	    imap_section_parse(it->section, &sec) < 0) {
		free(it->section);
		it->section = NULL;
		return -1;
	}
	return 0;
}

static void
free_items(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i].section);
}

/* The kind an item's (upper-cased) name names; IT_UNKNOWN if none. */
static enum item_kind
kind_of(const char *name)
{
	static const char *const names[] = { "FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE",
	    "ENVELOPE", "BODY", "BODYSTRUCTURE", "BODY[]", "RFC822", "RFC822.HEADER",
	    "RFC822.TEXT" };	/* in enum item_kind's order */

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return (enum item_kind)i;
	return IT_UNKNOWN;
}

/* Items from the argument: a macro, one item, or a list. */
static int
collect_items(const struct imap_arg *a, struct item *items, size_t *n, size_t max)
{
	static const char *const all[] = { "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY" };
	size_t k = 0;

	*n = 0;
	if (a->type == IMAP_ATOM && (strcasecmp(a->s, "ALL") == 0 || strcasecmp(a->s, "FAST") == 0 ||
	    strcasecmp(a->s, "FULL") == 0)) {
		size_t count = strcasecmp(a->s, "FAST") == 0 ? 3 : strcasecmp(a->s, "ALL") == 0 ? 4 : 5;
		for (size_t i = 0; i < count; i++) {
			parse_item(all[i], &items[*n]);
			items[*n].kind = kind_of(items[*n].name);
			(*n)++;
		}
		return 0;
	}
	const struct imap_arg *list = a->type == IMAP_LIST ? a->list : a;
	size_t len = a->type == IMAP_LIST ? a->nlist : 1;
	for (k = 0; k < len && *n < max; k++) {
		if (list[k].type != IMAP_ATOM)
			return -1;
		int bad = parse_item(list[k].s, &items[*n]) < 0;
		(*n)++;	/* counted either way, so that its section is freed */
		if (bad || (items[*n - 1].kind = kind_of(items[*n - 1].name)) == IT_UNKNOWN)
			return -1;
	}
	return len ? 0 : -1;
}

/* A FETCH reply goes to the connection as it is produced: the core's
 * fixed output buffer is all that is held, so a reply of many bodies to
 * a client that does not read costs one message in memory, not the
 * reply (issue 15 item 8). After a failed write nothing more is sent. */
struct out {
	struct imap *s;
	int failed;
};

static void
emit(struct out *o, const char *s, size_t n)
{
	if (!o->failed && n > 0 && o->s->h->conn_write(o->s->c, s, n) < 0)
		o->failed = 1;
}

static void
emitf(struct out *o, const char *fmt, ...) MP_PRINTF(2, 3);

static void
emitf(struct out *o, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	emit(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* before, v in decimal, after: no printf per message of FETCH 1:*. */
static void
emit_num(struct out *o, const char *before, unsigned long long v, const char *after)
{
	char digits[24];
	size_t n = sizeof(digits);

	do
		digits[--n] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	emit(o, before, strlen(before));
	emit(o, digits + n, sizeof(digits) - n);
	emit(o, after, strlen(after));
}

static void
literal(struct out *o, const char *data, size_t len)
{
	emitf(o, "{%zu}\r\n", len);
	emit(o, data, len);
}

/* What fetch_one has read for message i. */
struct loaded {
	char *msg;
	size_t len;
	struct imap_mime *tree;	/* parsed when an item needs it */
	char *env;		/* the ENVELOPE text, if asked for */
	size_t envlen;
};

/* BODY[section]<partial> of a loaded message (RFC 3501 6.4.5); a part
 * that does not exist is an empty string. */
static void
body_item(struct out *o, const struct item *it, const struct loaded *l, const char *label,
    const char *section)
{
	const char *start = "";
	size_t slen = 0;
	char *owned = NULL;
	struct imap_section sec;

	if (imap_section_parse(section, &sec) < 0 ||
	    !imap_mime_section(l->msg, l->len, l->tree, &sec, &start, &slen, &owned)) {
		start = "";
		slen = 0;
	}
	emitf(o, "%s[", label);
	emit(o, section, strlen(section));
	emit(o, "]", 1);
	if (it->partial) {
		size_t from = it->origin < slen ? it->origin : slen;
		size_t n = slen - from < it->count ? slen - from : it->count;
		emitf(o, "<%lu>", it->origin);
		start += from;
		slen = n;
	}
	emit(o, " ", 1);
	literal(o, start, slen);
	free(owned);
}

static void
internaldate(struct out *o, time_t t)
{
	struct tm tm;
	char buf[64];

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "\"%d-%b-%Y %H:%M:%S %z\"", &tm);
	emit(o, buf, strlen(buf));
}

static int
from_index(const struct item *it)
{
	return it->kind == IT_FLAGS || it->kind == IT_UID ||
	    it->kind == IT_INTERNALDATE || it->kind == IT_RFC822_SIZE;
}

/* ENVELOPE, RFC822.HEADER and BODY[HEADER...] read only the header. */
static int
from_header(const struct item *it)
{
	struct imap_section sec;

	if (it->kind == IT_ENVELOPE || it->kind == IT_RFC822_HEADER)
		return 1;
	return it->kind == IT_BODY_SECTION && imap_section_parse(it->section, &sec) == 0 &&
	    sec.nparts == 0 && (sec.text == IMAP_SECTION_HEADER ||
	    sec.text == IMAP_SECTION_FIELDS || sec.text == IMAP_SECTION_FIELDS_NOT);
}

/* Does the item need the MIME tree? */
static int
needs_tree(const struct item *it)
{
	struct imap_section sec;

	if (it->kind == IT_BODY || it->kind == IT_BODYSTRUCTURE)
		return 1;
	return it->kind == IT_BODY_SECTION && imap_section_parse(it->section, &sec) == 0 &&
	    sec.nparts > 0;
}

/* What of the message the items need: 0 (nothing), header or all. An
 * ENVELOPE already at hand needs nothing. */
static int
part_needed(const struct item *items, size_t n, int have_envelope, enum mp_msg_part *part_r)
{
	int need = 0;

	*part_r = MP_PART_HEADER;
	for (size_t i = 0; i < n; i++) {
		if (from_index(&items[i]) ||
		    (have_envelope && items[i].kind == IT_ENVELOPE))
			continue;
		need = 1;
		if (!from_header(&items[i]))
			*part_r = MP_PART_ALL;
	}
	return need;
}

static int
sets_seen(const struct item *it)
{
	return (it->kind == IT_BODY_SECTION && !it->peek) || it->kind == IT_RFC822 ||
	    it->kind == IT_RFC822_TEXT;
}

static void
one_item(struct imap *s, struct out *o, const struct item *it, size_t i,
    const struct loaded *l)
{
	struct imap_msg *m = &s->msgs[i];
	char flags[600], *text = NULL;
	size_t tlen = 0;

	if (it->kind == IT_FLAGS) {
		imap_flags_text(m->flags, m->keywords, flags, sizeof(flags));
		emit(o, "FLAGS ", 6);
		emit(o, flags, strlen(flags));
	} else if (it->kind == IT_UID)
		emit_num(o, "UID ", m->uid, "");
	else if (it->kind == IT_INTERNALDATE) {
		emit(o, "INTERNALDATE ", 13);
		internaldate(o, m->date);
	} else if (it->kind == IT_RFC822_SIZE)
		emit_num(o, "RFC822.SIZE ", m->size, "");
	else if (it->kind == IT_ENVELOPE) {
		emit(o, "ENVELOPE ", 9);
		emit(o, l->env, l->envlen);
	} else if (it->kind == IT_BODYSTRUCTURE || it->kind == IT_BODY) {
		int ext = it->kind == IT_BODYSTRUCTURE;
		if (l->tree)
			imap_mime_bodystructure(l->tree, ext, &text, &tlen);
		emitf(o, "%s ", it->name);
		emit(o, text ? text : "NIL", text ? tlen : 3);
	} else if (it->kind == IT_BODY_SECTION)
		body_item(o, it, l, "BODY", it->section);
	else if (it->kind == IT_RFC822) {
		emit(o, "RFC822 ", 7);
		literal(o, l->msg, l->len);
	} else {	/* RFC822.HEADER, RFC822.TEXT: BODY[HEADER], BODY[TEXT] */
		struct imap_section sec = { .text = it->kind == IT_RFC822_HEADER ?
		    IMAP_SECTION_HEADER : IMAP_SECTION_TEXT };
		const char *start;
		size_t slen;
		char *owned;
		imap_mime_section(l->msg, l->len, NULL, &sec, &start, &slen, &owned);
		emitf(o, "%s ", it->name);
		literal(o, start, slen);
	}
	free(text);
}

static int
wants(const struct item *items, size_t n, enum item_kind kind)
{
	for (size_t k = 0; k < n; k++)
		if (items[k].kind == kind)
			return 1;
	return 0;
}

/* The message (or its header), its tree and its ENVELOPE, as far as the
 * items need them; the envelope from the cache when it is there. -1:
 * the message was expunged by another session meanwhile. */
static int
load_for(struct imap *s, size_t i, const struct item *items, size_t n, struct loaded *l)
{
	struct imap_cache *cache = s->folder_key[0] ? s->m->cache : NULL;
	int want_env = wants(items, n, IT_ENVELOPE);
	enum mp_msg_part part;

	if (want_env)
		l->env = imap_cache_get(cache, s->folder_key, s->uidvalidity, s->msgs[i].uid,
		    &l->envlen);
	if (part_needed(items, n, l->env != NULL, &part) &&
	    (l->msg = imap_load(s, i, part, &l->len)) == NULL)
		return -1;
	for (size_t k = 0; k < n && l->tree == NULL; k++)
		if (needs_tree(&items[k]))
			l->tree = imap_mime_parse(l->msg, l->len);
	if (want_env && l->env == NULL) {
		imap_envelope(l->msg, l->len, &l->env, &l->envlen);
		if (l->env == NULL)
			return -1;
		imap_cache_put(cache, s->folder_key, s->uidvalidity, s->msgs[i].uid, l->env,
		    l->envlen);
	}
	return 0;
}

static void
unload(struct loaded *l)
{
	imap_mime_free(l->tree);
	free(l->msg);
	free(l->env);
}

/* Set \Seen on message i for a non-PEEK body fetch (RFC 3501 6.4.5):
 * an atomic add in the store, whose resulting flags and keywords become
 * the session's. 1 when the flags changed and are to be reported. */
static int
mark_seen(struct imap *s, size_t i)
{
	const struct mp_store_ops *ops = s->st->ops;
	struct imap_msg *m = &s->msgs[i];
	uint32_t flags;
	const char *kw = NULL, *err;

	if (s->read_only || (m->flags & MP_FLAG_SEEN))
		return 0;
	if (MP_HAS(ops, ops->struct_size, flags_change) && ops->flags_change) {
		if (ops->flags_change(s->f, m->uid, MP_FLAGS_ADD, MP_FLAG_SEEN, NULL, &flags, &kw,
		    &err) != MP_OK)
			return 0;
		if (imap_msg_set_keywords(m, kw) < 0)
			return 0;
		/* \Recent is this session's to report, whatever the store says */
		m->flags = (flags & ~(uint32_t)MP_FLAG_RECENT) | (m->flags & MP_FLAG_RECENT);
		return 1;
	}
	if (ops->flags_set(s->f, m->uid, m->flags | MP_FLAG_SEEN, m->keywords, &err) != MP_OK)
		return 0;
	m->flags |= MP_FLAG_SEEN;
	return 1;
}

/* -1 when the connection failed while writing the reply. */
static int
fetch_one(struct imap *s, size_t i, const struct item *items, size_t n, int uid)
{
	struct out o = { .s = s };
	struct loaded l = { 0 };
	int seen = 0;

	if (load_for(s, i, items, n, &l) < 0) {
		unload(&l);
		return 0;
	}
	for (size_t k = 0; k < n; k++)
		seen |= sets_seen(&items[k]);
	seen = seen && mark_seen(s, i);
	emit_num(&o, "* ", i + 1, " FETCH (");
	if (uid && !wants(items, n, IT_UID))
		emit_num(&o, "UID ", s->msgs[i].uid, " ");
	for (size_t k = 0; k < n; k++) {
		if (k)
			emit(&o, " ", 1);
		one_item(s, &o, &items[k], i, &l);
	}
	if (seen && !wants(items, n, IT_FLAGS)) {
		char flags[600];
		imap_flags_text(s->msgs[i].flags, s->msgs[i].keywords, flags, sizeof(flags));
		emitf(&o, " FLAGS %s", flags);
	}
	emit(&o, ")\r\n", 3);
	unload(&l);
	return o.failed ? -1 : 0;
}

int
imap_fetch(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	struct item items[64];
	size_t n = 0, *idx, nidx;

	if (cmd->nargs != 2 || cmd->args[0].type != IMAP_ATOM ||
	    collect_items(&cmd->args[1], items, &n, 64) < 0) {
		free_items(items, n);
		imap_tagged(s, cmd->tag, "BAD FETCH set items");
		return -1;
	}
	if (imap_resolve_set(s, cmd->args[0].s, uid, &idx, &nidx) < 0) {
		free_items(items, n);
		imap_tagged(s, cmd->tag, "BAD invalid message set");
		return -1;
	}
	for (size_t k = 0; k < nidx; k++)
		if (fetch_one(s, idx[k], items, n, uid) < 0) {
			s->quit = 1;	/* the client is gone or timed out */
			break;
		}
	free(idx);
	free_items(items, n);
	if (s->quit)
		return -1;
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
	return 0;
}
