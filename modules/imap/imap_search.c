/*
 * modules/imap/imap_search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4):
 * every search key of RFC 3501 over the selected folder, with AND of
 * keys, OR, NOT and parenthesised groups.
 *
 * The keys are compiled once per command into a tree (arguments checked,
 * search strings converted from the CHARSET to UTF-8 and case-folded,
 * sets and dates parsed), then evaluated per message. Nesting is capped
 * at MAX_NESTING, so neither step recurses deeper than that, whatever
 * the client sends (issue 15: 127 NOTs once overflowed the stack).
 *
 * Text keys compare decoded text, case-insensitively per RFC 5051
 * i;unicode-casemap (imap_decode.c): header fields with their RFC 2047
 * words decoded, bodies with their transfer encoding undone and their
 * charset converted to UTF-8. A plain message (no MIME encoding, ASCII
 * or UTF-8) is searched in place; the header alone is read when only
 * header keys are used.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <merpati/util.h>

#include "imap.h"
#include "imap_decode.h"

#define MAX_NESTING 32		/* NOT, OR and ( ) levels in one SEARCH */
#define MAX_RANGES 256		/* ranges in one sequence set */

/* ---- the compiled program ------------------------------------------------------- */

enum sk_type {
	SK_ALL, SK_FLAG, SK_NEW, SK_AND, SK_OR, SK_NOT, SK_SEQ, SK_UID,
	SK_KEYWORD, SK_UNKEYWORD, SK_LARGER, SK_SMALLER, SK_BEFORE, SK_ON,
	SK_SINCE, SK_HEADER, SK_ADDRESS, SK_BODY, SK_TEXT,
};

/* A search string, converted to UTF-8 and case-folded. */
struct needle {
	char *s;
	size_t len;
	int ascii;
};

struct skey {
	enum sk_type type;
	uint32_t flag;		/* SK_FLAG */
	int want;		/* SK_FLAG: set or clear; dates: SENT* */
	struct skey *kids;	/* SK_AND (nkids), SK_OR (2), SK_NOT (1) */
	size_t nkids;
	struct imap_range *ranges;	/* SK_SEQ, SK_UID */
	size_t nranges;
	uint64_t size;		/* SK_LARGER, SK_SMALLER */
	time_t day;		/* SK_BEFORE, SK_ON, SK_SINCE */
	char *field;		/* SK_HEADER, SK_ADDRESS: the field name; keywords */
	struct needle text;
};

enum need { NEED_NOTHING, NEED_HEADER, NEED_ALL };

struct prog {
	struct imap *s;
	const char *charset;	/* of the search strings; NULL: UTF-8 */
	enum need need;
	const char *why;	/* for the BAD */
	struct skey root;
};

static void
skey_free(struct skey *k)
{
	for (size_t i = 0; i < k->nkids; i++)
		skey_free(&k->kids[i]);
	free(k->kids);
	free(k->ranges);
	free(k->field);
	free(k->text.s);
}

static int
fail(struct prog *p, const char *why)
{
	if (p->why == NULL)
		p->why = why;
	return -1;
}

/*
 * An astring argument. NIL is accepted and read as the empty string, as
 * Dovecot does and imaptest's "nil" group expects (SUBJECT NIL matches
 * every message with a Subject), rather than the three letters.
 */
static const char *
arg_text(const struct imap_arg *a, size_t n, size_t at)
{
	if (at >= n)
		return NULL;
	if (a[at].type == IMAP_NIL || (a[at].type == IMAP_ATOM && strcasecmp(a[at].s, "NIL") == 0))
		return "";	/* whichever way the parser reports NIL */
	return a[at].type == IMAP_ATOM || a[at].type == IMAP_STRING ? a[at].s : NULL;
}

static int
needle_make(struct prog *p, const char *v, struct needle *nd)
{
	size_t len;
	char *u = imap_to_utf8(p->charset, v, strlen(v), &len);

	if (u == NULL)
		return fail(p, "out of memory");
	nd->len = imap_casefold(u, len, u);
	u[nd->len] = '\0';
	nd->s = u;
	nd->ascii = imap_is_ascii(u, nd->len);
	return 0;
}

static void
need(struct prog *p, enum need n)
{
	if (p->need < n)
		p->need = n;
}

/* "1-Feb-1994" as the start of that day (UTC); -1 when malformed. */
static time_t
day_of(const char *s)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%d-%b-%Y", &tm);

	return end == NULL || *end != '\0' ? -1 : timegm(&tm);
}

static int
set_key(struct prog *p, struct skey *k, const char *set, uint32_t max)
{
	k->ranges = malloc(MAX_RANGES * sizeof(*k->ranges));
	if (k->ranges == NULL)
		return fail(p, "out of memory");
	if (imap_seqset(set, max, k->ranges, MAX_RANGES, &k->nranges) < 0)
		return fail(p, "invalid message set");
	return 0;
}

static int
flag_key(const char *name, struct skey *k)
{
	static const struct { const char *name; enum sk_type type; uint32_t flag; int want; } keys[] = {
		{ "ALL", SK_ALL, 0, 0 }, { "NEW", SK_NEW, 0, 0 },
		{ "ANSWERED", SK_FLAG, MP_FLAG_ANSWERED, 1 }, { "DELETED", SK_FLAG, MP_FLAG_DELETED, 1 },
		{ "DRAFT", SK_FLAG, MP_FLAG_DRAFT, 1 }, { "FLAGGED", SK_FLAG, MP_FLAG_FLAGGED, 1 },
		{ "RECENT", SK_FLAG, MP_FLAG_RECENT, 1 }, { "SEEN", SK_FLAG, MP_FLAG_SEEN, 1 },
		{ "UNANSWERED", SK_FLAG, MP_FLAG_ANSWERED, 0 }, { "UNDELETED", SK_FLAG, MP_FLAG_DELETED, 0 },
		{ "UNDRAFT", SK_FLAG, MP_FLAG_DRAFT, 0 }, { "UNFLAGGED", SK_FLAG, MP_FLAG_FLAGGED, 0 },
		{ "UNSEEN", SK_FLAG, MP_FLAG_SEEN, 0 }, { "OLD", SK_FLAG, MP_FLAG_RECENT, 0 },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcasecmp(name, keys[i].name) == 0) {
			k->type = keys[i].type;
			k->flag = keys[i].flag;
			k->want = keys[i].want;
			return 1;
		}
	return 0;
}

static int
size_arg(struct prog *p, const char *v, uint64_t *out)
{
	char *end;

	if (!isdigit((unsigned char)v[0]))
		return fail(p, "LARGER and SMALLER need a number");
	*out = strtoull(v, &end, 10);
	return *end == '\0' ? 0 : fail(p, "LARGER and SMALLER need a number");
}

static int
date_key(struct prog *p, const char *name, const char *v, struct skey *k)
{
	static const struct { const char *name; enum sk_type type; } ops[] = {
		{ "BEFORE", SK_BEFORE }, { "ON", SK_ON }, { "SINCE", SK_SINCE },
	};
	int sent = strncasecmp(name, "SENT", 4) == 0;

	for (size_t i = 0; i < 3; i++)
		if (strcasecmp(name + (sent ? 4 : 0), ops[i].name) == 0) {
			k->type = ops[i].type;
			k->want = sent;
			if ((k->day = day_of(v)) < 0)
				return fail(p, "bad date");
			if (sent)
				need(p, NEED_HEADER);
			return 1;
		}
	return 0;
}

/* A key on header field with the text v: 1, or -1 (p->why says why). */
static int
header_key(struct prog *p, struct skey *k, const char *field, const char *v)
{
	if ((k->field = strdup(field)) == NULL)
		return fail(p, "out of memory");
	return needle_make(p, v, &k->text) == 0 ? 1 : -1;
}

/* Keys with one argument; 0 when name is none of them. */
static int
one_arg_key(struct prog *p, const char *name, const char *v, struct skey *k)
{
	static const char *const addrs[] = { "FROM", "TO", "CC", "BCC" };
	int r;

	for (size_t i = 0; i < 4; i++)
		if (strcasecmp(name, addrs[i]) == 0) {
			k->type = SK_ADDRESS;
			need(p, NEED_HEADER);
			return header_key(p, k, addrs[i], v);
		}
	if (strcasecmp(name, "SUBJECT") == 0) {
		k->type = SK_HEADER;
		need(p, NEED_HEADER);
		return header_key(p, k, "Subject", v);
	}
	if (strcasecmp(name, "BODY") == 0 || strcasecmp(name, "TEXT") == 0) {
		k->type = toupper((unsigned char)name[0]) == 'B' ? SK_BODY : SK_TEXT;
		need(p, NEED_ALL);
		return needle_make(p, v, &k->text) == 0 ? 1 : -1;
	}
	if (strcasecmp(name, "KEYWORD") == 0 || strcasecmp(name, "UNKEYWORD") == 0) {
		k->type = toupper((unsigned char)name[0]) == 'K' ? SK_KEYWORD : SK_UNKEYWORD;
		return (k->field = strdup(v)) ? 1 : fail(p, "out of memory");
	}
	if (strcasecmp(name, "LARGER") == 0 || strcasecmp(name, "SMALLER") == 0) {
		k->type = toupper((unsigned char)name[0]) == 'L' ? SK_LARGER : SK_SMALLER;
		return size_arg(p, v, &k->size) == 0 ? 1 : -1;
	}
	if (strcasecmp(name, "UID") == 0) {
		struct imap *s = p->s;
		k->type = SK_UID;
		return set_key(p, k, v, s->n ? s->msgs[s->n - 1].uid : 0) == 0 ? 1 : -1;
	}
	if ((r = date_key(p, name, v, k)) != 0)
		return r;
	return 0;
}

static int compile(struct prog *p, const struct imap_arg *a, size_t n, size_t *used,
    struct skey *k, int depth);

/* Keys a[0..n) into an AND node. */
static int
compile_and(struct prog *p, const struct imap_arg *a, size_t n, struct skey *k, int depth)
{
	k->type = SK_AND;
	k->kids = calloc(n ? n : 1, sizeof(*k->kids));
	if (k->kids == NULL)
		return fail(p, "out of memory");
	for (size_t i = 0; i < n; k->nkids++) {
		size_t u;
		if (compile(p, a + i, n - i, &u, &k->kids[k->nkids], depth) < 0) {
			k->nkids++;	/* so skey_free sees what it holds */
			return -1;
		}
		i += u;
	}
	return k->nkids ? 0 : fail(p, "empty search key list");
}

/* NOT and OR: their operands follow in a[1..n). */
static int
compile_logic(struct prog *p, const struct imap_arg *a, size_t n, size_t *used,
    struct skey *k, int depth)
{
	size_t u1 = 0, u2 = 0;

	k->type = toupper((unsigned char)a[0].s[0]) == 'N' ? SK_NOT : SK_OR;
	k->kids = calloc(2, sizeof(*k->kids));
	if (k->kids == NULL)
		return fail(p, "out of memory");
	k->nkids = k->type == SK_NOT ? 1 : 2;
	if (compile(p, a + 1, n - 1, &u1, &k->kids[0], depth + 1) < 0)
		return -1;
	if (k->type == SK_OR && compile(p, a + 1 + u1, n - 1 - u1, &u2, &k->kids[1], depth + 1) < 0)
		return -1;
	*used = 1 + u1 + u2;
	return 0;
}

/* Compile the key at a[0]; *used gets how many arguments it took. */
static int
compile(struct prog *p, const struct imap_arg *a, size_t n, size_t *used,
    struct skey *k, int depth)
{
	const char *name = arg_text(a, n, 0), *v;
	int r;

	*used = 1;
	if (depth >= MAX_NESTING)
		return fail(p, "search nesting too deep");
	if (n == 0)
		return fail(p, "missing search key");
	if (a[0].type == IMAP_LIST)	/* (k1 k2 ...) is an AND */
		return compile_and(p, a[0].list, a[0].nlist, k, depth + 1);
	if (name == NULL || a[0].type != IMAP_ATOM)
		return fail(p, "bad search key");
	if (flag_key(name, k))
		return 0;
	if (strcasecmp(name, "NOT") == 0 || strcasecmp(name, "OR") == 0)
		return compile_logic(p, a, n, used, k, depth);
	if (isdigit((unsigned char)name[0]) || name[0] == '*') {
		k->type = SK_SEQ;
		return set_key(p, k, name, (uint32_t)p->s->n);
	}
	if (strcasecmp(name, "HEADER") == 0) {
		const char *field = arg_text(a, n, 1);
		v = arg_text(a, n, 2);
		*used = 3;
		if (field == NULL || v == NULL)
			return fail(p, "HEADER needs a field name and a string");
		k->type = SK_HEADER;
		need(p, NEED_HEADER);
		if ((k->field = strdup(field)) == NULL)
			return fail(p, "out of memory");
		return needle_make(p, v, &k->text);
	}
	if ((v = arg_text(a, n, 1)) == NULL)
		return fail(p, "bad search key");
	*used = 2;
	r = one_arg_key(p, name, v, k);
	return r == 0 ? fail(p, "bad search key") : r < 0 ? fail(p, "out of memory") : 0;
}

/* ---- one message ---------------------------------------------------------------- */

struct ctx {
	struct imap *s;
	const struct prog *p;
	size_t i;		/* message index */
	int loaded;
	char *msg;		/* the header, or the whole message (p->need) */
	size_t len, hlen;	/* hlen: the header and its blank line */
	char *hdr;		/* the header with its RFC 2047 words decoded */
	size_t hdr_len;
	int hdr_done;
	const char *body;	/* the decoded body text, maybe inside msg */
	char *body_owned;
	size_t body_len;
	int body_done;
	char *folded[2];	/* the header and body text, case-folded */
	size_t folded_len[2];
};

static size_t
header_length(const char *m, size_t len)
{
	const char *e;

	if (len >= 2 && m[0] == '\r' && m[1] == '\n')
		return 2;
	e = memmem(m, len, "\r\n\r\n", 4);
	return e ? (size_t)(e - m) + 4 : len;
}

static void
load(struct ctx *c)
{
	if (c->loaded)
		return;
	c->loaded = 1;
	c->msg = imap_load(c->s, c->i, c->p->need == NEED_ALL ? MP_PART_ALL : MP_PART_HEADER,
	    &c->len);
	if (c->msg == NULL)
		c->len = 0;
	c->hlen = c->msg ? header_length(c->msg, c->len) : 0;
}

static void
ctx_free(struct ctx *c)
{
	free(c->msg);
	free(c->hdr);
	free(c->body_owned);
	free(c->folded[0]);
	free(c->folded[1]);
}

/* ---- matching text -------------------------------------------------------------- */

/* The next byte c in [p, end), remembered in *at so a byte that is rare
 * in the text is not looked for again at every candidate. */
static const char *
next_byte(const char *p, const char *end, int c, const char **at)
{
	if (*at != end && (*at == NULL || *at < p)) {
		const char *f = memchr(p, c, (size_t)(end - p));
		*at = f ? f : end;
	}
	return *at == end ? NULL : *at;
}

/* Case-insensitive ASCII substring test, needle already lower-case;
 * memchr() finds the candidates for its first byte in either case. */
static int
ascii_contains(const char *hay, size_t hlen, const struct needle *nd)
{
	int lo = (unsigned char)nd->s[0], up = toupper(lo);
	const char *last, *at_lo = NULL, *at_up = NULL;

	if (nd->len > hlen)
		return 0;
	last = hay + hlen - nd->len + 1;	/* the last place a match can start, + 1 */
	for (const char *p = hay; p < last;) {
		const char *a = next_byte(p, last, lo, &at_lo);
		const char *b = lo == up ? NULL : next_byte(p, last, up, &at_up);
		const char *cand = a && b ? (a < b ? a : b) : a ? a : b;
		if (cand == NULL)
			return 0;
		if (strncasecmp(cand + 1, nd->s + 1, nd->len - 1) == 0)
			return 1;
		p = cand + 1;
	}
	return 0;
}

/* The Kelvin sign, E2 84 AA: memchr() for its first byte, as glibc's
 * memmem() cost 14% of a SEARCH TEXT session's CPU on plain text. */
static int
has_kelvin_sign(const char *s, size_t len)
{
	const char *end = s + len;

	for (const char *p = s; (p = memchr(p, 0xe2, (size_t)(end - p))) != NULL; p++)
		if (end - p >= 3 && (unsigned char)p[1] == 0x84 && (unsigned char)p[2] == 0xaa)
			return 1;
	return 0;
}

/* Non-ASCII characters whose fold is ASCII: dotted and dotless i and long
 * s start with these bytes, and the Kelvin sign. */
static int
may_fold_to_ascii(const char *s, size_t len)
{
	return memchr(s, 0xc4, len) || memchr(s, 0xc5, len) || has_kelvin_sign(s, len);
}

/* Does hay contain nd? *folded caches hay's fold across keys. */
static int
match(const char *hay, size_t hlen, const struct needle *nd, char **folded, size_t *flen)
{
	if (nd->len == 0)
		return 1;
	if (nd->ascii) {
		if (ascii_contains(hay, hlen, nd))
			return 1;
		if (!may_fold_to_ascii(hay, hlen))
			return 0;	/* the fold cannot make a match appear */
	}
	if (*folded == NULL) {
		if ((*folded = malloc(hlen + 1)) == NULL)
			return 0;
		*flen = imap_casefold(hay, hlen, *folded);
	}
	return memmem(*folded, *flen, nd->s, nd->len) != NULL;
}

static int
match_once(const char *hay, size_t hlen, const struct needle *nd)
{
	char *folded = NULL;
	size_t flen = 0;
	int hit = match(hay, hlen, nd, &folded, &flen);

	free(folded);
	return hit;
}

/* ---- header fields -------------------------------------------------------------- */

/*
 * The next field called name in h[*pos..hlen), unfolded (CRLF before
 * white space removed, leading white space skipped) and malloc'ed into
 * *value; 0 when there is none left.
 */
static int
next_field(const char *h, size_t hlen, size_t *pos, const char *name, char **value,
    size_t *vlen)
{
	size_t nlen = strlen(name);

	while (*pos < hlen) {
		const char *line = h + *pos, *eol;
		size_t start = *pos;
		do {	/* the field and its continuation lines */
			eol = memchr(h + *pos, '\n', hlen - *pos);
			*pos = eol ? (size_t)(eol - h) + 1 : hlen;
		} while (*pos < hlen && (h[*pos] == ' ' || h[*pos] == '\t'));
		if (*pos - start <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
			continue;
		size_t i = start + nlen + 1, o = 0;
		char *v = malloc(*pos - i + 1);
		if (v == NULL)
			return 0;
		while (i < *pos && (h[i] == ' ' || h[i] == '\t'))
			i++;
		for (; i < *pos; i++)
			if (h[i] != '\r' && h[i] != '\n')
				v[o++] = h[i];
		v[o] = '\0';
		*value = v;
		*vlen = o;
		return 1;
	}
	return 0;
}

/* The field value with its RFC 2047 words decoded (in place of v). */
static void
decode_value(char **v, size_t *vlen)
{
	size_t n;
	char *d;

	if (memmem(*v, *vlen, "=?", 2) == NULL || (d = imap_decode_words(*v, *vlen, &n)) == NULL)
		return;
	free(*v);
	*v = d;
	*vlen = n;
}

struct address_search {
	const struct needle *nd;
	int hit;
};

/* imap_addresses() callback: "name <mailbox@host>" of one address, so a
 * key finds an address however it was written, comments and CFWS
 * around '@' included (RFC 5322 3.4). */
static void
address_each(void *arg, const struct imap_addr *a)
{
	struct address_search *as = arg;
	char text[2048];
	int n;

	if (as->hit || a->kind != IMAP_ADDR_MAILBOX)
		return;
	n = snprintf(text, sizeof(text), "%s%s<%s@%s>", a->name ? a->name : "",
	    a->name ? " " : "", a->mailbox ? a->mailbox : "", a->host ? a->host : "");
	if (n > 0)
		as->hit = match_once(text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1,
		    as->nd);
}

/* The decoded field as written, or any one address in it, contains nd. */
static int
address_match(const char *v, size_t vlen, const struct needle *nd)
{
	struct address_search as = { nd, 0 };

	if (match_once(v, vlen, nd))
		return 1;
	imap_addresses(v, vlen, address_each, &as);
	return as.hit;
}

/* HEADER, SUBJECT, FROM...: any field of that name matches (RFC 3501 6.4.4). */
static int
field_key(struct ctx *c, const struct skey *k)
{
	size_t pos = 0, vlen;
	char *v;
	int hit = 0;

	load(c);
	while (!hit && next_field(c->msg, c->hlen, &pos, k->field, &v, &vlen)) {
		decode_value(&v, &vlen);
		hit = k->type == SK_ADDRESS ? address_match(v, vlen, &k->text) :
		    match_once(v, vlen, &k->text);
		free(v);
	}
	return hit;
}

/* ---- body text ------------------------------------------------------------------ */

/* The value of parameter name in a Content-Type value, into out. */
static void
ct_param(const char *ct, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);

	out[0] = '\0';
	for (const char *p = ct ? strchr(ct, ';') : NULL; p; p = strchr(p, ';')) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, name, nlen) != 0 || p[nlen] != '=')
			continue;
		p += nlen + 1;
		int q = *p == '"';
		size_t n = 0;
		for (p += q; *p && n + 1 < size && (q ? *p != '"' : (*p != ';' && *p > ' ')); p++)
			out[n++] = *p;
		out[n] = '\0';
		return;
	}
}

enum cte { CTE_IDENTITY, CTE_BASE64, CTE_QP };

struct part_info {
	enum cte cte;
	char charset[64];
	int text;		/* text/ or no Content-Type: searched */
	int multipart;
};

static void
part_info(const char *hdr, size_t hlen, struct part_info *pi)
{
	char *ct = imap_header(hdr, hlen, "Content-Type");
	char *cte = imap_header(hdr, hlen, "Content-Transfer-Encoding");

	pi->cte = cte == NULL ? CTE_IDENTITY : strncasecmp(cte, "base64", 6) == 0 ? CTE_BASE64 :
	    strncasecmp(cte, "quoted-printable", 16) == 0 ? CTE_QP : CTE_IDENTITY;
	ct_param(ct, "charset", pi->charset, sizeof(pi->charset));
	pi->text = ct == NULL || strncasecmp(ct, "text/", 5) == 0 || strncasecmp(ct, "message/", 8) == 0;
	pi->multipart = ct != NULL && strncasecmp(ct, "multipart/", 10) == 0;
	free(ct);
	free(cte);
}

/* One leaf's text and a newline: parts never run into each other. */
static void
acc_put(struct mp_str *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	mp_str_put(b, s, n);
	mp_str_putc(b, '\n');
}

/* imap_mime_leaves() callback: one leaf's text, decoded, into the body. */
static void
add_leaf(void *arg, const char *hdr, size_t hlen, const char *body, size_t blen)
{
	struct mp_str *b = arg;
	struct part_info pi;
	char *raw = NULL, *u;
	size_t n = blen;

	part_info(hdr, hlen, &pi);
	if (!pi.text)
		return;	/* images and other binaries hold no words */
	if (pi.cte != CTE_IDENTITY) {
		if ((raw = malloc(blen + 4)) == NULL) {
			b->failed = 1;
			return;
		}
		n = pi.cte == CTE_BASE64 ? imap_base64_decode(body, blen, raw) :
		    imap_qp_decode(body, blen, raw, 0);
	}
	u = imap_to_utf8(pi.charset, raw ? raw : body, n, &n);
	if (u == NULL)
		b->failed = 1;
	else
		acc_put(b, u, n);
	free(u);
	free(raw);
}

static int
is_plain_charset(const char *cs)
{
	return cs[0] == '\0' || strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "utf-8") == 0;
}

/* The body as text: in place for a plain message, else decoded leaves. */
static void
body_text(struct ctx *c)
{
	struct part_info pi;
	struct mp_str b = { 0 };

	if (c->body_done)
		return;
	c->body_done = 1;
	load(c);
	c->body = c->msg ? c->msg + c->hlen : "";
	c->body_len = c->len - c->hlen;
	if (c->msg == NULL)
		return;
	part_info(c->msg, c->hlen, &pi);
	if (!pi.multipart && pi.cte == CTE_IDENTITY && is_plain_charset(pi.charset))
		return;
	imap_mime_leaves(c->msg, c->len, add_leaf, &b);
	if (b.failed) {
		free(b.p);
		return;	/* out of memory: search the raw bytes */
	}
	c->body = c->body_owned = b.p;
	c->body_len = b.len;
	if (c->body == NULL)
		c->body = "";
}

/* The header section as text, RFC 2047 words decoded when there are any. */
static void
header_text(struct ctx *c)
{
	if (c->hdr_done)
		return;
	c->hdr_done = 1;
	load(c);
	if (c->msg && memmem(c->msg, c->hlen, "=?", 2))
		c->hdr = imap_decode_words(c->msg, c->hlen, &c->hdr_len);
}

static int
body_has(struct ctx *c, const struct needle *nd)
{
	body_text(c);
	return match(c->body, c->body_len, nd, &c->folded[1], &c->folded_len[1]);
}

static int
text_has(struct ctx *c, const struct needle *nd)
{
	header_text(c);
	if (match(c->hdr ? c->hdr : c->msg ? c->msg : "", c->hdr ? c->hdr_len : c->hlen, nd,
	    &c->folded[0], &c->folded_len[0]))
		return 1;
	return body_has(c, nd);
}

/* ---- evaluation ----------------------------------------------------------------- */

static time_t
sent_date(struct ctx *c)
{
	char *d;
	struct tm tm = { 0 };
	time_t t = c->s->msgs[c->i].date;

	load(c);
	d = c->msg ? imap_header(c->msg, c->hlen, "Date") : NULL;
	if (d && (strptime(d, "%a, %d %b %Y", &tm) || strptime(d, "%d %b %Y", &tm)))
		t = timegm(&tm);
	free(d);
	return t;
}

static int
date_match(struct ctx *c, const struct skey *k)
{
	time_t t = k->want ? sent_date(c) : c->s->msgs[c->i].date;

	if (k->type == SK_BEFORE)
		return t < k->day;
	if (k->type == SK_ON)
		return t >= k->day && t < k->day + 86400;
	return t >= k->day;
}

/* Depth bounded by compile(): at most MAX_NESTING levels. */
static int
eval(struct ctx *c, const struct skey *k)
{
	const struct imap_msg *m = &c->s->msgs[c->i];

	switch (k->type) {
	case SK_ALL: return 1;
	case SK_FLAG: return ((m->flags & k->flag) != 0) == k->want;
	case SK_NEW: return (m->flags & MP_FLAG_RECENT) && !(m->flags & MP_FLAG_SEEN);
	case SK_AND:
		for (size_t i = 0; i < k->nkids; i++)
			if (!eval(c, &k->kids[i]))
				return 0;
		return 1;
	case SK_OR: return eval(c, &k->kids[0]) || eval(c, &k->kids[1]);
	case SK_NOT: return !eval(c, &k->kids[0]);
	case SK_SEQ: return imap_in_set(k->ranges, k->nranges, (uint32_t)(c->i + 1));
	case SK_UID: return imap_in_set(k->ranges, k->nranges, m->uid);
	case SK_KEYWORD: return mp_words_find(m->keywords, k->field, strlen(k->field)) != NULL;
	case SK_UNKEYWORD: return mp_words_find(m->keywords, k->field, strlen(k->field)) == NULL;
	case SK_LARGER: return m->size > k->size;
	case SK_SMALLER: return m->size < k->size;
	case SK_BEFORE: case SK_ON: case SK_SINCE: return date_match(c, k);
	case SK_HEADER: case SK_ADDRESS: return field_key(c, k);
	case SK_BODY: return body_has(c, &k->text);
	case SK_TEXT: return text_has(c, &k->text);
	}
	return 0;
}

/* ---- the command ---------------------------------------------------------------- */

/* CHARSET x in front of the keys: 0, or -1 after the tagged NO / BAD. */
static int
charset(struct imap *s, const struct imap_cmd *cmd, const struct imap_arg **a, size_t *n,
    struct prog *p)
{
	const char *cs;

	if (*n == 0 || (*a)[0].type != IMAP_ATOM || strcasecmp((*a)[0].s, "CHARSET") != 0)
		return 0;
	if ((cs = arg_text(*a, *n, 1)) == NULL) {
		imap_tagged(s, cmd->tag, "BAD CHARSET needs a name");
		return -1;
	}
	if (!imap_charset_known(cs)) {
		imap_tagged(s, cmd->tag, "NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset %.64s", cs);
		return -1;
	}
	p->charset = cs;
	*a += 2;
	*n -= 2;
	return 0;
}

int
imap_search(struct imap *s, const struct imap_cmd *cmd, int uid)
{
	const struct imap_arg *a = cmd->args;
	size_t n = cmd->nargs;
	struct prog p = { .s = s };

	if (charset(s, cmd, &a, &n, &p) < 0)
		return -1;
	if (n == 0 || compile_and(&p, a, n, &p.root, 0) < 0) {
		imap_tagged(s, cmd->tag, "BAD %s", p.why ? p.why : "SEARCH needs a key");
		skey_free(&p.root);
		return -1;
	}
	s->h->conn_printf(s->c, "* SEARCH");
	for (size_t i = 0; i < s->n; i++) {
		struct ctx c = { .s = s, .p = &p, .i = i };
		if (eval(&c, &p.root))
			s->h->conn_printf(s->c, " %u", uid ? s->msgs[i].uid : (uint32_t)(i + 1));
		ctx_free(&c);
	}
	s->h->conn_printf(s->c, "\r\n");
	skey_free(&p.root);
	imap_tagged(s, cmd->tag, "OK %s completed", cmd->name);
	return 0;
}
