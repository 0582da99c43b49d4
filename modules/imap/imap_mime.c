/*
 * modules/imap/imap_mime.c - just enough MIME (RFC 2045/2046) for IMAP:
 * header lookup with unfolding, ENVELOPE, BODYSTRUCTURE from a real
 * parse of nested multiparts, and the bytes of a body section. Works on
 * a message held in memory in wire form (CRLF). Depth is bounded.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

#define MAX_DEPTH 10
#define MAX_PARTS 100

struct buf {
	char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2 + 256;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* An IMAP string or NIL. */
static void
put_string(struct buf *b, const char *s)
{
	if (s == NULL) {
		puts_(b, "NIL");
		return;
	}
	size_t len = strlen(s);
	char *q = malloc(len * 2 + 32);
	imap_quote(s, q, len * 2 + 32);
	puts_(b, q);
	free(q);
}

/* ---- headers ------------------------------------------------------------------ */

/* Length of the header section (through the empty line). */
static size_t
header_len(const char *m, size_t len)
{
	if (len >= 2 && m[0] == '\r' && m[1] == '\n')
		return 2;
	for (size_t i = 0; i + 3 < len; i++)
		if (m[i] == '\r' && m[i + 1] == '\n' && m[i + 2] == '\r' && m[i + 3] == '\n')
			return i + 4;
	return len;
}

char *
imap_header(const char *msg, size_t len, const char *name)
{
	size_t hl = header_len(msg, len), nlen = strlen(name);

	for (size_t i = 0; i < hl;) {
		const char *line = msg + i;
		const char *eol = memchr(line, '\n', hl - i);
		size_t ll = eol ? (size_t)(eol - line) + 1 : hl - i;
		if (ll > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			struct buf b = { 0 };
			size_t j = i + nlen + 1;
			for (;;) {	/* the value and its continuation lines */
				const char *e = memchr(msg + j, '\n', hl - j);
				size_t end = e ? (size_t)(e - msg) : hl;
				size_t stop = end > j && msg[end - 1] == '\r' ? end - 1 : end;
				put(&b, msg + j, stop - j);
				j = end + 1;
				if (j >= hl || (msg[j] != ' ' && msg[j] != '\t'))
					break;
			}
			char *v = b.p ? b.p : strdup("");
			while (*v == ' ' || *v == '\t')
				memmove(v, v + 1, strlen(v));
			return v;
		}
		i += ll;
	}
	return NULL;
}

/* ---- addresses (ENVELOPE) ------------------------------------------------------ */

static void
put_address(struct buf *b, const char *one)
{
	char name[512] = "", addr[512] = "";
	const char *lt = strchr(one, '<'), *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt) {
		snprintf(addr, sizeof(addr), "%.*s", (int)(gt - lt - 1), lt + 1);
		snprintf(name, sizeof(name), "%.*s", (int)(lt - one), one);
	} else
		snprintf(addr, sizeof(addr), "%.500s", one);
	for (char *p = name + strlen(name); p > name && (p[-1] == ' ' || p[-1] == '"'); p--)
		p[-1] = '\0';
	char *n = name;
	while (*n == ' ' || *n == '"')
		n++;
	char *a = addr;
	while (*a == ' ')
		a++;
	char *at = strrchr(a, '@');
	puts_(b, "(");
	put_string(b, *n ? n : NULL);
	puts_(b, " NIL ");
	if (at) {
		*at = '\0';
		put_string(b, a);
		puts_(b, " ");
		put_string(b, at + 1);
	} else {
		put_string(b, a);
		puts_(b, " NIL");
	}
	puts_(b, ")");
}

/* "A <a@x>, \"B, b\" <b@x>" -> ((...)(...)) or NIL. */
static void
put_address_list(struct buf *b, const char *value)
{
	char one[1024];
	size_t o = 0;
	int quoted = 0, angle = 0, any = 0;

	if (value == NULL || value[0] == '\0') {
		puts_(b, "NIL");
		return;
	}
	puts_(b, "(");
	for (const char *p = value;; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '<')
			angle = 1;
		else if (*p == '>')
			angle = 0;
		if (*p == '\0' || (*p == ',' && !quoted && !angle)) {
			one[o] = '\0';
			if (strchr(one, '@') || strchr(one, '<')) {
				put_address(b, one);
				any = 1;
			}
			o = 0;
			if (*p == '\0')
				break;
			continue;
		}
		if (o + 1 < sizeof(one))
			one[o++] = *p;
	}
	if (!any)
		b->len--, puts_(b, "NIL");
	else
		puts_(b, ")");
}

void
imap_envelope(const char *msg, size_t len, char **out, size_t *outlen)
{
	static const char *const fields[] = { "Date", "Subject" };
	struct buf b = { 0 };
	char *from = imap_header(msg, len, "From");

	puts_(&b, "(");
	for (size_t i = 0; i < 2; i++) {
		char *v = imap_header(msg, len, fields[i]);
		put_string(&b, v);
		puts_(&b, " ");
		free(v);
	}
	static const char *const addrs[] = { "Sender", "Reply-To", "To", "Cc", "Bcc" };
	put_address_list(&b, from);
	for (size_t i = 0; i < 5; i++) {
		char *v = imap_header(msg, len, addrs[i]);
		puts_(&b, " ");
		put_address_list(&b, (i < 2 && v == NULL) ? from : v);	/* default: From */
		free(v);
	}
	char *irt = imap_header(msg, len, "In-Reply-To"), *mid = imap_header(msg, len, "Message-ID");
	puts_(&b, " ");
	put_string(&b, irt);
	puts_(&b, " ");
	put_string(&b, mid);
	puts_(&b, ")");
	free(irt);
	free(mid);
	free(from);
	*out = b.p;
	*outlen = b.len;
}

/* ---- Content-Type ---------------------------------------------------------------- */

struct ctype {
	char type[64], subtype[64];
	char params[16][2][128];
	size_t nparams;
};

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void
parse_ctype(const char *value, struct ctype *ct)
{
	const char *p = value;

	memset(ct, 0, sizeof(*ct));
	snprintf(ct->type, sizeof(ct->type), "text");
	snprintf(ct->subtype, sizeof(ct->subtype), "plain");
	if (value == NULL)
		return;
	sscanf(p, " %63[^/; \t] / %63[^; \t]", ct->type, ct->subtype);
	while ((p = strchr(p, ';')) != NULL && ct->nparams < 16) {
		char name[128] = "", val[128] = "";
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (sscanf(p, "%127[^= \t]", name) != 1)
			break;
		const char *eq = strchr(p, '=');
		if (eq == NULL)
			break;
		eq++;
		if (*eq == '"') {
			const char *close = strchr(eq + 1, '"');
			snprintf(val, sizeof(val), "%.*s", close ? (int)(close - eq - 1) : 0, eq + 1);
		} else
			sscanf(eq, "%127[^; \t]", val);
		lower(name);
		snprintf(ct->params[ct->nparams][0], 128, "%s", name);
		snprintf(ct->params[ct->nparams][1], 128, "%s", val);
		ct->nparams++;
	}
}

static const char *
param(const struct ctype *ct, const char *name)
{
	for (size_t i = 0; i < ct->nparams; i++)
		if (strcmp(ct->params[i][0], name) == 0)
			return ct->params[i][1];
	return NULL;
}

/* ---- multipart -------------------------------------------------------------------- */

struct part {
	const char *start;	/* its headers */
	size_t len;		/* headers + body */
};

/* Split a multipart body at the boundary; returns the count. */
static size_t
split_parts(const char *body, size_t blen, const char *boundary, struct part *parts,
    size_t max)
{
	char delim[200];
	size_t dlen = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary), n = 0;
	const char *p = body, *end = body + blen, *cur = NULL;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		if ((size_t)(end - p) >= dlen && memcmp(p, delim, dlen) == 0) {
			if (cur && n < max) {
				size_t l = (size_t)(p - cur);
				if (l >= 2 && cur[l - 2] == '\r')
					l -= 2;	/* the CRLF before the delimiter belongs to it */
				parts[n++] = (struct part){ cur, l };
			}
			if ((size_t)(end - p) >= dlen + 2 && p[dlen] == '-' && p[dlen + 1] == '-')
				return n;
			cur = next;
		}
		p = next;
	}
	return n;
}

static size_t
count_lines(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

static void structure(struct buf *b, const char *m, size_t len, int depth, int ext);

static void
put_params(struct buf *b, const struct ctype *ct, const char *skip)
{
	int any = 0;

	for (size_t i = 0; i < ct->nparams; i++) {
		if (skip && strcmp(ct->params[i][0], skip) == 0)
			continue;
		puts_(b, any ? " " : "(");
		put_string(b, ct->params[i][0]);
		puts_(b, " ");
		put_string(b, ct->params[i][1]);
		any = 1;
	}
	puts_(b, any ? ")" : "NIL");
}

static void
multipart(struct buf *b, const char *m, size_t len, const struct ctype *ct, int depth,
    int ext)
{
	struct part parts[MAX_PARTS];
	size_t hl = header_len(m, len);
	const char *boundary = param(ct, "boundary");
	size_t n = boundary ? split_parts(m + hl, len - hl, boundary, parts, MAX_PARTS) : 0;

	puts_(b, "(");
	for (size_t i = 0; i < n; i++)
		structure(b, parts[i].start, parts[i].len, depth + 1, ext);
	if (n == 0)	/* a broken multipart: show it as one empty text part */
		puts_(b, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
	puts_(b, " ");
	char sub[64];
	snprintf(sub, sizeof(sub), "%s", ct->subtype);
	put_string(b, sub);
	if (ext) {
		puts_(b, " ");
		put_params(b, ct, NULL);
		puts_(b, " NIL NIL");
	}
	puts_(b, ")");
}

static void
single(struct buf *b, const char *m, size_t len, const struct ctype *ct, int ext)
{
	size_t hl = header_len(m, len);
	char *enc = imap_header(m, len, "Content-Transfer-Encoding");
	char *id = imap_header(m, len, "Content-ID");
	char *desc = imap_header(m, len, "Content-Description");
	char num[64];

	if (enc)
		lower(enc);
	puts_(b, "(");
	put_string(b, ct->type);
	puts_(b, " ");
	put_string(b, ct->subtype);
	puts_(b, " ");
	put_params(b, ct, NULL);
	puts_(b, " ");
	put_string(b, id);
	puts_(b, " ");
	put_string(b, desc);
	puts_(b, " ");
	put_string(b, enc ? enc : "7bit");
	snprintf(num, sizeof(num), " %zu", len - hl);
	puts_(b, num);
	if (strcasecmp(ct->type, "text") == 0) {
		snprintf(num, sizeof(num), " %zu", count_lines(m + hl, len - hl));
		puts_(b, num);
	}
	if (ext)
		puts_(b, " NIL NIL NIL NIL");
	puts_(b, ")");
	free(enc);
	free(id);
	free(desc);
}

static void
structure(struct buf *b, const char *m, size_t len, int depth, int ext)
{
	char *ctv = imap_header(m, len, "Content-Type");
	struct ctype ct;

	parse_ctype(ctv, &ct);
	free(ctv);
	lower(ct.type);
	lower(ct.subtype);
	if (strcmp(ct.type, "multipart") == 0 && depth < MAX_DEPTH)
		multipart(b, m, len, &ct, depth, ext);
	else
		single(b, m, len, &ct, ext);
}

void
imap_bodystructure(const char *msg, size_t len, int extended, char **out, size_t *outlen)
{
	struct buf b = { 0 };

	structure(&b, msg, len, 0, extended);
	*out = b.p;
	*outlen = b.len;
}

/* ---- sections ------------------------------------------------------------------------ */

/* Part n (1-based) of entity m; for a non-multipart, part 1 is its body
 * (then *with_headers is 0: there is no MIME header to skip). */
static int
subpart(const char *m, size_t len, unsigned n, const char **pm, size_t *plen,
    int *with_headers)
{
	char *ctv = imap_header(m, len, "Content-Type");
	struct ctype ct;
	struct part parts[MAX_PARTS];
	size_t hl = header_len(m, len);

	parse_ctype(ctv, &ct);
	free(ctv);
	*with_headers = 0;
	if (strcasecmp(ct.type, "multipart") != 0) {
		if (n != 1)
			return -1;
		*pm = m + hl;	/* its body (for message/rfc822: the enclosed message) */
		*plen = len - hl;
		return 0;
	}
	*with_headers = 1;
	const char *boundary = param(&ct, "boundary");
	size_t np = boundary ? split_parts(m + hl, len - hl, boundary, parts, MAX_PARTS) : 0;
	if (n == 0 || n > np)
		return -1;
	*pm = parts[n - 1].start;
	*plen = parts[n - 1].len;
	return 0;
}

/* HEADER.FIELDS (A B) / HEADER.FIELDS.NOT (A B) of entity m. */
static char *
header_fields(const char *m, size_t len, const char *list, int not, size_t *outlen)
{
	size_t hl = header_len(m, len);
	struct buf b = { 0 };
	char names[1024];

	snprintf(names, sizeof(names), " %s ", list);
	for (char *p = names; *p; p++)
		*p = *p == '(' || *p == ')' ? ' ' : (char)toupper((unsigned char)*p);
	for (size_t i = 0; i < hl;) {
		const char *line = m + i;
		size_t j = i;
		do {	/* a field and its continuation lines */
			const char *e = memchr(m + j, '\n', hl - j);
			j = e ? (size_t)(e - m) + 1 : hl;
		} while (j < hl && (m[j] == ' ' || m[j] == '\t'));
		const char *colon = memchr(line, ':', j - i);
		if (colon) {
			char key[256];
			snprintf(key, sizeof(key), " %.*s ", (int)(colon - line), line);
			for (char *p = key; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			if ((strstr(names, key) != NULL) != not)
				put(&b, line, j - i);
		}
		i = j;
	}
	put(&b, "\r\n", 2);
	*outlen = b.len;
	return b.p;
}

int
imap_section(const char *msg, size_t len, const char *section, const char **start,
    size_t *slen, char **owned)
{
	const char *m = msg, *p = section;
	size_t ml = len;

	*owned = NULL;
	while (isdigit((unsigned char)*p)) {	/* part numbers "1.2." */
		char *end;
		int with_headers;
		unsigned long n = strtoul(p, &end, 10);
		if (subpart(m, ml, (unsigned)n, &m, &ml, &with_headers) < 0)
			return -1;
		p = end;
		if (*p == '.') {
			p++;
			continue;
		}
		if (*p)
			return -1;
		/* A bare part number means its content, without MIME headers;
		 * a multipart's content is all of it (RFC 3501 6.4.5). */
		*start = m;
		*slen = ml;
		char *ct = with_headers ? imap_header(m, ml, "Content-Type") : NULL;
		int multi = ct && strncasecmp(ct, "multipart", 9) == 0;
		free(ct);
		if (with_headers && !multi) {
			size_t hl = header_len(m, ml);
			*start = m + hl;
			*slen = ml - hl;
		}
		return 0;
	}
	if (*p == '\0') {
		*start = m;
		*slen = ml;
	} else if (strcasecmp(p, "HEADER") == 0 || strcasecmp(p, "MIME") == 0) {
		*start = m;
		*slen = header_len(m, ml);
	} else if (strcasecmp(p, "TEXT") == 0) {
		size_t hl = header_len(m, ml);
		*start = m + hl;
		*slen = ml - hl;
	} else if (strncasecmp(p, "HEADER.FIELDS.NOT ", 18) == 0) {
		*owned = header_fields(m, ml, p + 18, 1, slen);
		*start = *owned;
	} else if (strncasecmp(p, "HEADER.FIELDS ", 14) == 0) {
		*owned = header_fields(m, ml, p + 14, 0, slen);
		*start = *owned;
	} else
		return -1;
	return 0;
}

/* ---- leaves (for SEARCH) ---------------------------------------------------------- */

static void
leaves(const char *m, size_t len, int depth,
    void (*each)(void *, const char *, size_t, const char *, size_t), void *arg)
{
	size_t hl = header_len(m, len);
	char *ctv = imap_header(m, len, "Content-Type");
	struct ctype ct;

	parse_ctype(ctv, &ct);
	free(ctv);
	if (depth < MAX_DEPTH && strcasecmp(ct.type, "multipart") == 0 && param(&ct, "boundary")) {
		struct part parts[MAX_PARTS];
		size_t n = split_parts(m + hl, len - hl, param(&ct, "boundary"), parts, MAX_PARTS);
		for (size_t i = 0; i < n; i++)
			leaves(parts[i].start, parts[i].len, depth + 1, each, arg);
		if (n > 0)
			return;
	} else if (depth < MAX_DEPTH && strcasecmp(ct.type, "message") == 0 &&
	    strcasecmp(ct.subtype, "rfc822") == 0) {
		leaves(m + hl, len - hl, depth + 1, each, arg);
		return;
	}
	each(arg, m, hl, m + hl, len - hl);
}

void
imap_mime_leaves(const char *msg, size_t len,
    void (*each)(void *arg, const char *hdr, size_t hlen, const char *body, size_t blen),
    void *arg)
{
	leaves(msg, len, 0, each, arg);
}
