/*
 * modules/imap/imap_search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4):
 * every search key of RFC 3501 over the selected folder, with AND of
 * keys, OR, NOT and parenthesised groups. Text keys are case-insensitive
 * substring matches over the header fields or the raw message.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"

struct ctx {
	struct imap *s;
	size_t i;		/* message index */
	char *msg;		/* loaded on demand */
	size_t len;
	int loaded;
	const char *why;
};

static const char *
message(struct ctx *c)
{
	if (!c->loaded) {
		c->msg = imap_load(c->s, c->i, MP_PART_ALL, &c->len);
		c->loaded = 1;
	}
	return c->msg ? c->msg : "";
}

/* The next byte in [p, end) equal to lo or up, or NULL. */
static const char *
next_either(const char *p, const char *end, int lo, int up)
{
	const char *a = memchr(p, lo, (size_t)(end - p));

	if (lo != up) {
		const char *b = memchr(p, up, (size_t)((a ? a : end) - p));
		if (b != NULL)
			a = b;
	}
	return a;
}

/* Case-insensitive substring test; memchr() finds the candidates. */
static int
contains(const char *hay, size_t hlen, const char *needle)
{
	size_t n = strlen(needle);
	int lo = tolower((unsigned char)needle[0]), up = toupper((unsigned char)needle[0]);
	const char *last;

	if (n == 0)
		return 1;
	if (n > hlen)
		return 0;
	last = hay + hlen - n + 1;	/* the last place a match can start, + 1 */
	for (const char *p = hay; p < last && (p = next_either(p, last, lo, up)) != NULL; p++)
		if (strncasecmp(p + 1, needle + 1, n - 1) == 0)
			return 1;
	return 0;
}

static int
header_has(struct ctx *c, const char *name, const char *value)
{
	const char *m = message(c);
	char *v = imap_header(m, c->len, name);
	int hit = v && contains(v, strlen(v), value);

	if (v && value[0] == '\0')
		hit = 1;
	free(v);
	return hit;
}

/* "1-Feb-1994" as the start of that day (UTC). */
static time_t
day_of(const char *s)
{
	struct tm tm = { 0 };

	if (s == NULL || strptime(s, "%d-%b-%Y", &tm) == NULL)
		return -1;
	return timegm(&tm);
}

static time_t
sent_date(struct ctx *c)
{
	const char *msg = message(c);	/* sets c->len */
	char *d = imap_header(msg, c->len, "Date");
	struct tm tm = { 0 };
	time_t t = c->s->msgs[c->i].date;

	if (d && (strptime(d, "%a, %d %b %Y", &tm) || strptime(d, "%d %b %Y", &tm)))
		t = timegm(&tm);
	free(d);
	return t;
}

static int key(struct ctx *c, const struct imap_arg *a, size_t n, size_t *used);

static int
flag_key(const char *k, uint32_t f, int *hit)
{
	static const struct { const char *name; uint32_t flag; int want; } keys[] = {
		{ "ANSWERED", MP_FLAG_ANSWERED, 1 }, { "DELETED", MP_FLAG_DELETED, 1 },
		{ "DRAFT", MP_FLAG_DRAFT, 1 }, { "FLAGGED", MP_FLAG_FLAGGED, 1 },
		{ "RECENT", MP_FLAG_RECENT, 1 }, { "SEEN", MP_FLAG_SEEN, 1 },
		{ "UNANSWERED", MP_FLAG_ANSWERED, 0 }, { "UNDELETED", MP_FLAG_DELETED, 0 },
		{ "UNDRAFT", MP_FLAG_DRAFT, 0 }, { "UNFLAGGED", MP_FLAG_FLAGGED, 0 },
		{ "UNSEEN", MP_FLAG_SEEN, 0 }, { "OLD", MP_FLAG_RECENT, 0 },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcasecmp(k, keys[i].name) == 0) {
			*hit = ((f & keys[i].flag) != 0) == keys[i].want;
			return 1;
		}
	if (strcasecmp(k, "NEW") == 0) {
		*hit = (f & MP_FLAG_RECENT) && !(f & MP_FLAG_SEEN);
		return 1;
	}
	if (strcasecmp(k, "ALL") == 0) {
		*hit = 1;
		return 1;
	}
	return 0;
}

static const char *
arg_text(const struct imap_arg *a, size_t n, size_t at)
{
	return at < n && (a[at].type == IMAP_ATOM || a[at].type == IMAP_STRING) ? a[at].s : NULL;
}

static int
has_keyword(const char *list, const char *kw)
{
	char copy[1024], *save = NULL;

	snprintf(copy, sizeof(copy), "%s", list ? list : "");
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
		if (strcasecmp(t, kw) == 0)
			return 1;
	return 0;
}

/* Keys that take one argument. -1 when the key is not one of them. */
static int
one_arg_key(struct ctx *c, const char *k, const char *v)
{
	struct imap_msg *m = &c->s->msgs[c->i];
	static const char *const hdrs[] = { "FROM", "TO", "CC", "BCC", "SUBJECT" };

	for (size_t i = 0; i < 5; i++)
		if (strcasecmp(k, hdrs[i]) == 0)
			return header_has(c, hdrs[i], v);
	if (strcasecmp(k, "BODY") == 0) {
		const char *msg = message(c), *b = strstr(msg, "\r\n\r\n");
		return b ? contains(b + 4, c->len - (size_t)(b + 4 - msg), v) : 0;
	}
	if (strcasecmp(k, "TEXT") == 0) {
		const char *msg = message(c);	/* sets c->len */
		return contains(msg, c->len, v);
	}
	if (strcasecmp(k, "KEYWORD") == 0)
		return has_keyword(m->keywords, v);
	if (strcasecmp(k, "UNKEYWORD") == 0)
		return !has_keyword(m->keywords, v);
	if (strcasecmp(k, "LARGER") == 0)
		return m->size > strtoull(v, NULL, 10);
	if (strcasecmp(k, "SMALLER") == 0)
		return m->size < strtoull(v, NULL, 10);
	time_t d = day_of(v);
	if (d >= 0) {
		time_t t = strncasecmp(k, "SENT", 4) == 0 ? sent_date(c) : m->date;
		const char *op = strncasecmp(k, "SENT", 4) == 0 ? k + 4 : k;
		if (strcasecmp(op, "BEFORE") == 0) return t < d;
		if (strcasecmp(op, "ON") == 0) return t >= d && t < d + 86400;
		if (strcasecmp(op, "SINCE") == 0) return t >= d;
	}
	if (strcasecmp(k, "UID") == 0) {
		struct imap_range r[256];
		size_t nr;
		if (imap_seqset(v, c->s->n ? c->s->msgs[c->s->n - 1].uid : 0, r, 256, &nr) < 0)
			return -2;
		return imap_in_set(r, nr, m->uid);
	}
	return -1;
}

/* Match key at a[0..]; *used gets how many args it took. 1/0, -2 bad. */
static int
key(struct ctx *c, const struct imap_arg *a, size_t n, size_t *used)
{
	const char *k = arg_text(a, n, 0);
	int hit;

	*used = 1;
	if (n == 0)
		return -2;
	if (a[0].type == IMAP_LIST) {	/* (k1 k2 ...) is an AND */
		int all = 1;
		for (size_t i = 0; i < a[0].nlist;) {
			size_t u;
			int r = key(c, a[0].list + i, a[0].nlist - i, &u);
			if (r < 0)
				return r;
			all &= r;
			i += u;
		}
		return all;
	}
	if (k == NULL)
		return -2;
	if (flag_key(k, c->s->msgs[c->i].flags, &hit))
		return hit;
	if (strcasecmp(k, "NOT") == 0) {
		size_t u;
		int r = key(c, a + 1, n - 1, &u);
		*used = 1 + u;
		return r < 0 ? r : !r;
	}
	if (strcasecmp(k, "OR") == 0) {
		size_t u1, u2;
		int r1 = key(c, a + 1, n - 1, &u1);
		int r2 = r1 < 0 ? r1 : key(c, a + 1 + u1, n - 1 - u1, &u2);
		*used = 1 + u1 + (r1 < 0 ? 0 : u2);
		return r1 < 0 ? r1 : r2 < 0 ? r2 : (r1 || r2);
	}
	if (strcasecmp(k, "HEADER") == 0) {
		const char *name = arg_text(a, n, 1), *v = arg_text(a, n, 2);
		*used = 3;
		return name && v ? header_has(c, name, v) : -2;
	}
	if (isdigit((unsigned char)k[0]) || k[0] == '*') {	/* a sequence set */
		struct imap_range r[256];
		size_t nr;
		if (imap_seqset(k, (uint32_t)c->s->n, r, 256, &nr) < 0)
			return -2;
		return imap_in_set(r, nr, (uint32_t)(c->i + 1));
	}
	const char *v = arg_text(a, n, 1);
	if (v == NULL)
		return -2;
	*used = 2;
	int r = one_arg_key(c, k, v);
	return r == -1 ? -2 : r;
}

int
imap_search(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const struct imap_arg *a = cmd->args;
	size_t n = cmd->nargs;
	char num[16];

	if (n >= 2 && a[0].type == IMAP_ATOM && strcasecmp(a[0].s, "CHARSET") == 0) {
		if (strcasecmp(a[1].s, "UTF-8") != 0 && strcasecmp(a[1].s, "US-ASCII") != 0) {
			imap_tagged(s, cmd->tag, "NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset");
			return -1;
		}
		a += 2;
		n -= 2;
	}
	if (n == 0) {
		imap_tagged(s, cmd->tag, "BAD SEARCH needs a key");
		return -1;
	}
	s->h->conn_printf(s->c, "* SEARCH");
	for (size_t i = 0; i < s->n; i++) {
		struct ctx c = { s, i, NULL, 0, 0, NULL };
		int all = 1;
		for (size_t k = 0; k < n && all;) {
			size_t used;
			int r = key(&c, a + k, n - k, &used);
			if (r < 0) {
				free(c.msg);
				s->h->conn_printf(s->c, "\r\n");
				imap_tagged(s, cmd->tag, "BAD bad search key");
				return -1;
			}
			all &= r;
			k += used;
		}
		free(c.msg);
		if (all) {
			snprintf(num, sizeof(num), " %u", uid ? s->msgs[i].uid : (uint32_t)(i + 1));
			s->h->conn_printf(s->c, "%s", num);
		}
	}
	s->h->conn_printf(s->c, "\r\n");
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
	return 0;
}
