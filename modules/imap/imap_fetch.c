/*
 * modules/imap/imap_fetch.c - FETCH and UID FETCH (RFC 3501 6.4.5):
 * FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE,
 * BODY[section]<partial>, BODY.PEEK, RFC822, RFC822.HEADER, RFC822.TEXT
 * and the ALL / FAST / FULL macros. A non-PEEK body fetch sets \Seen.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"

struct item {
	char name[24];		/* FLAGS, BODY[], ... */
	char section[256];
	int peek, partial;
	unsigned long origin, count;
};

/* "BODY.PEEK[1.HEADER]<0.100>" -> name BODY, section, peek, partial. */
static int
parse_item(const char *text, struct item *it)
{
	const char *lb = strchr(text, '[');
	size_t nlen = lb ? (size_t)(lb - text) : strlen(text);

	memset(it, 0, sizeof(*it));
	if (nlen >= sizeof(it->name))
		return -1;
	for (size_t i = 0; i < nlen; i++)
		it->name[i] = (char)toupper((unsigned char)text[i]);
	if (lb == NULL)
		return 0;
	const char *rb = strrchr(lb, ']');
	if (rb == NULL || (size_t)(rb - lb - 1) >= sizeof(it->section))
		return -1;
	memcpy(it->section, lb + 1, (size_t)(rb - lb - 1));
	if (strcmp(it->name, "BODY.PEEK") == 0) {
		it->peek = 1;
		strcpy(it->name, "BODY");
	}
	if (strcmp(it->name, "BODY") != 0 && strcmp(it->name, "BINARY") != 0)
		return -1;
	strcat(it->name, "[]");
	if (rb[1] == '<') {
		char *end;
		it->origin = strtoul(rb + 2, &end, 10);
		if (*end != '.')
			return -1;
		it->count = strtoul(end + 1, &end, 10);
		if (*end != '>' || end[1] != '\0' || it->count == 0)
			return -1;
		it->partial = 1;
	} else if (rb[1] != '\0')
		return -1;
	return 0;
}

static int
known(const char *name)
{
	static const char *const names[] = { "FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE",
	    "ENVELOPE", "BODY", "BODYSTRUCTURE", "BODY[]", "RFC822", "RFC822.HEADER",
	    "RFC822.TEXT" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
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
		for (size_t i = 0; i < count; i++)
			parse_item(all[i], &items[(*n)++]);
		return 0;
	}
	const struct imap_arg *list = a->type == IMAP_LIST ? a->list : a;
	size_t len = a->type == IMAP_LIST ? a->nlist : 1;
	for (k = 0; k < len && *n < max; k++) {
		if (list[k].type != IMAP_ATOM || parse_item(list[k].s, &items[*n]) < 0 ||
		    !known(items[*n].name))
			return -1;
		(*n)++;
	}
	return len ? 0 : -1;
}

struct out {
	char *p;
	size_t len, cap;
};

static void
emit(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
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

static void
literal(struct out *o, const char *data, size_t len)
{
	emitf(o, "{%zu}\r\n", len);
	emit(o, data, len);
}

static void
body_item(struct out *o, const struct item *it, const char *msg, size_t len, const char *label)
{
	const char *start;
	size_t slen;
	char *owned = NULL;

	if (imap_section(msg, len, it->section, &start, &slen, &owned) < 0) {
		start = "";
		slen = 0;
	}
	if (it->partial) {
		size_t from = it->origin < slen ? it->origin : slen;
		size_t n = slen - from < it->count ? slen - from : it->count;
		emitf(o, "%s[%s]<%lu> ", label, it->section, it->origin);
		literal(o, start + from, n);
	} else {
		emitf(o, "%s[%s] ", label, it->section);
		literal(o, start, slen);
	}
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
	return strcmp(it->name, "FLAGS") == 0 || strcmp(it->name, "UID") == 0 ||
	    strcmp(it->name, "INTERNALDATE") == 0 || strcmp(it->name, "RFC822.SIZE") == 0;
}

/* ENVELOPE, RFC822.HEADER and BODY[HEADER...] read only the header. */
static int
from_header(const struct item *it)
{
	return strcmp(it->name, "ENVELOPE") == 0 || strcmp(it->name, "RFC822.HEADER") == 0 ||
	    (strcmp(it->name, "BODY[]") == 0 && strncmp(it->section, "HEADER", 6) == 0);
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
		    (have_envelope && strcmp(items[i].name, "ENVELOPE") == 0))
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
	return (strcmp(it->name, "BODY[]") == 0 && !it->peek) || strcmp(it->name, "RFC822") == 0 ||
	    strcmp(it->name, "RFC822.TEXT") == 0;
}

/* What fetch_one has read for message i. */
struct loaded {
	char *msg;
	size_t len;
	char *env;		/* the ENVELOPE text, if asked for */
	size_t envlen;
};

static void
one_item(struct imap *s, struct out *o, const struct item *it, size_t i,
    const struct loaded *l)
{
	const char *msg = l->msg;
	size_t len = l->len;
	struct imap_msg *m = &s->msgs[i];
	char flags[600], *text = NULL;
	size_t tlen;

	if (strcmp(it->name, "FLAGS") == 0) {
		imap_flags_text(m->flags, m->keywords, flags, sizeof(flags));
		emitf(o, "FLAGS %s", flags);
	} else if (strcmp(it->name, "UID") == 0)
		emitf(o, "UID %u", m->uid);
	else if (strcmp(it->name, "INTERNALDATE") == 0) {
		emit(o, "INTERNALDATE ", 13);
		internaldate(o, m->date);
	} else if (strcmp(it->name, "RFC822.SIZE") == 0)
		emitf(o, "RFC822.SIZE %llu", (unsigned long long)m->size);
	else if (strcmp(it->name, "ENVELOPE") == 0) {
		emit(o, "ENVELOPE ", 9);
		emit(o, l->env, l->envlen);
	} else if (strcmp(it->name, "BODYSTRUCTURE") == 0 || strcmp(it->name, "BODY") == 0) {
		int ext = strcmp(it->name, "BODYSTRUCTURE") == 0;
		imap_bodystructure(msg, len, ext, &text, &tlen);
		emitf(o, "%s ", it->name);
		emit(o, text, tlen);
	} else if (strcmp(it->name, "BODY[]") == 0)
		body_item(o, it, msg, len, "BODY");
	else {	/* RFC822, RFC822.HEADER, RFC822.TEXT */
		struct item sub = { .name = "BODY[]" };
		snprintf(sub.section, sizeof(sub.section), "%s", strcmp(it->name, "RFC822") == 0 ?
		    "" : it->name + 7);
		const char *start;
		size_t slen;
		char *owned = NULL;
		imap_section(msg, len, sub.section, &start, &slen, &owned);
		emitf(o, "%s ", it->name);
		literal(o, start, slen);
		free(owned);
	}
	free(text);
}

static int
wants(const struct item *items, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(items[k].name, name) == 0)
			return 1;
	return 0;
}

/* The message (or its header) and its ENVELOPE, as far as the items
 * need them; the envelope from the cache when it is there. -1: the
 * message was expunged by another session meanwhile. */
static int
load_for(struct imap *s, size_t i, const struct item *items, size_t n, struct loaded *l)
{
	struct imap_cache *cache = s->folder_key[0] ? s->m->cache : NULL;
	int want_env = wants(items, n, "ENVELOPE");
	enum mp_msg_part part;

	if (want_env)
		l->env = imap_cache_get(cache, s->folder_key, s->uidvalidity, s->msgs[i].uid,
		    &l->envlen);
	if (part_needed(items, n, l->env != NULL, &part) &&
	    (l->msg = imap_load(s, i, part, &l->len)) == NULL)
		return -1;
	if (want_env && l->env == NULL) {
		imap_envelope(l->msg, l->len, &l->env, &l->envlen);
		imap_cache_put(cache, s->folder_key, s->uidvalidity, s->msgs[i].uid, l->env,
		    l->envlen);
	}
	return 0;
}

static void
fetch_one(struct imap *s, size_t i, const struct item *items, size_t n, int uid)
{
	struct out o = { 0 };
	struct loaded l = { 0 };
	int seen = 0, has_uid = 0, has_flags = 0;
	const char *err;

	if (load_for(s, i, items, n, &l) < 0) {
		free(l.env);
		return;
	}
	for (size_t k = 0; k < n; k++)
		seen |= sets_seen(&items[k]);
	has_uid = wants(items, n, "UID");
	has_flags = wants(items, n, "FLAGS");
	if (seen && !s->read_only && !(s->msgs[i].flags & MP_FLAG_SEEN) &&
	    s->st->ops->flags_set(s->f, s->msgs[i].uid, s->msgs[i].flags | MP_FLAG_SEEN,
	    s->msgs[i].keywords, &err) == MP_OK)
		s->msgs[i].flags |= MP_FLAG_SEEN;
	else
		seen = 0;
	emitf(&o, "* %zu FETCH (", i + 1);
	if (uid && !has_uid)
		emitf(&o, "UID %u ", s->msgs[i].uid);
	for (size_t k = 0; k < n; k++) {
		if (k)
			emit(&o, " ", 1);
		one_item(s, &o, &items[k], i, &l);
	}
	if (seen && !has_flags) {
		char flags[600];
		imap_flags_text(s->msgs[i].flags, s->msgs[i].keywords, flags, sizeof(flags));
		emitf(&o, " FLAGS %s", flags);
	}
	emit(&o, ")\r\n", 3);
	s->h->conn_write(s->c, o.p, o.len);
	free(o.p);
	free(l.msg);
	free(l.env);
}

int
imap_fetch(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	struct item items[64];
	size_t n, *idx, nidx;

	if (cmd->nargs != 2 || cmd->args[0].type != IMAP_ATOM ||
	    collect_items(&cmd->args[1], items, &n, 64) < 0) {
		imap_tagged(s, cmd->tag, "BAD FETCH set items");
		return -1;
	}
	if (imap_resolve_set(s, cmd->args[0].s, uid, &idx, &nidx) < 0) {
		imap_tagged(s, cmd->tag, "BAD invalid message set");
		return -1;
	}
	for (size_t k = 0; k < nidx; k++)
		fetch_one(s, idx[k], items, n, uid);
	free(idx);
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
	return 0;
}
