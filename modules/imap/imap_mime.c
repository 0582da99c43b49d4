/*
 * modules/imap/imap_mime.c - the MIME tree of a message held in memory
 * (RFC 2045/2046) and the bytes of BODY[section] (RFC 3501 6.4.5): header
 * field lookup with unfolding, the "value; attr=value" field parser,
 * one pass over the message that splits multiparts (a stack of open
 * boundaries, so a part also ends at an enclosing boundary) and descends
 * into message/rfc822 and multipart/digest parts, section numbering,
 * HEADER.FIELDS and the leaf walk SEARCH uses.
 *
 * Not here: BODYSTRUCTURE and ENVELOPE text (imap_bodystructure.c),
 * addresses (imap_address.c). Hostile nesting is bounded: entities
 * deeper than MIME_MAX_DEPTH or past MIME_MAX_PARTS stay leaves, so
 * time is linear in the message (times the depth for delimiter lines)
 * and memory linear in the part count.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/util.h>

#include "imap_mime.h"

/* ---- header fields ---------------------------------------------------------------- */

static int
blank_line(const char *m, size_t left)
{
	return (left >= 1 && m[0] == '\n') || (left >= 2 && m[0] == '\r' && m[1] == '\n');
}

/* Offset just past the line starting at p (past its \n), or len. */
static size_t
line_after(const char *m, size_t len, size_t p)
{
	const char *nl = memchr(m + p, '\n', len - p);

	return nl ? (size_t)(nl - m) + 1 : len;
}

size_t
mime_header_len(const char *m, size_t len)
{
	for (size_t p = 0; p < len; p = line_after(m, len, p))
		if (blank_line(m + p, len - p))
			return line_after(m, len, p);
	return len;
}

/* One field of a header: [start, stop) covers its continuation lines
 * and line ends; the name is [start, start + nlen). */
struct field {
	size_t start, stop, nlen, value;
};

/* The field at *pos of hdr..hlen, moving *pos past it; 0 at the end.
 * Lines without a colon are skipped, as is the empty line. */
static int
next_field(const char *h, size_t hlen, size_t *pos, struct field *f)
{
	while (*pos < hlen && !blank_line(h + *pos, hlen - *pos)) {
		size_t start = *pos, stop = line_after(h, hlen, start);
		while (stop < hlen && (h[stop] == ' ' || h[stop] == '\t'))
			stop = line_after(h, hlen, stop);
		*pos = stop;
		const char *colon = memchr(h + start, ':', stop - start);
		if (colon == NULL || colon == h + start || h[start] == ' ' || h[start] == '\t')
			continue;
		size_t nlen = (size_t)(colon - h) - start;
		while (nlen > 0 && (h[start + nlen - 1] == ' ' || h[start + nlen - 1] == '\t'))
			nlen--;	/* obsolete "Subject :" (RFC 5322 4.5) */
		*f = (struct field){ start, stop, nlen, (size_t)(colon - h) + 1 };
		return 1;
	}
	return 0;
}

int
mime_field_raw(const char *hdr, size_t hlen, const char *name, const char **v_r,
    size_t *vlen_r)
{
	size_t pos = 0, nlen = strlen(name);
	struct field f;

	while (next_field(hdr, hlen, &pos, &f))
		if (f.nlen == nlen && strncasecmp(hdr + f.start, name, nlen) == 0) {
			size_t stop = f.stop;
			if (stop > f.value && hdr[stop - 1] == '\n')
				stop--;
			if (stop > f.value && hdr[stop - 1] == '\r')
				stop--;
			*v_r = hdr + f.value;
			*vlen_r = stop - f.value;
			return 1;
		}
	return 0;
}

char *
mime_field(const char *hdr, size_t hlen, const char *name)
{
	const char *v;
	size_t vlen, o = 0;

	if (!mime_field_raw(hdr, hlen, name, &v, &vlen))
		return NULL;
	char *out = malloc(vlen + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < vlen; i++)
		if (v[i] != '\r' && v[i] != '\n')	/* unfolding keeps the WSP */
			out[o++] = v[i];
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	out[o] = '\0';
	size_t lead = strspn(out, " \t");
	memmove(out, out + lead, o - lead + 1);
	return out;
}

char *
imap_header(const char *msg, size_t len, const char *name)
{
	return mime_field(msg, mime_header_len(msg, len), name);
}

/* ---- "value/subtype; attr=value" (RFC 2045 5.1, RFC 2183 2) ---------------------- */

/* RFC 2045 token characters; 8-bit octets are let through, as mailers
 * put raw UTF-8 in file names. */
static int
token_char(unsigned char c)
{
	return c > ' ' && c != 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

const char *
mime_skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		int depth = 0;
		do {	/* iterative: nesting costs no stack */
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
			p++;
		} while (*p && depth > 0);
	}
}

const char *
mime_read_word(const char *p, char **o, int quoted_ok)
{
	if (quoted_ok && *p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			*(*o)++ = *p;
		}
		*(*o)++ = '\0';
		return *p ? p + 1 : p;
	}
	if (!token_char((unsigned char)*p))
		return NULL;
	while (token_char((unsigned char)*p))
		*(*o)++ = *p++;
	*(*o)++ = '\0';
	return p;
}

void
mime_value_parse(const char *s, int with_subtype, struct mime_value *v)
{
	size_t len = strlen(s), semis = 0;
	char *o;
	const char *p = mime_skip_cfws(s);

	memset(v, 0, sizeof(*v));
	for (const char *q = s; *q; q++)
		semis += *q == ';';
	if (semis > MIME_MAX_PARAMS)
		semis = MIME_MAX_PARAMS;
	/* strings never outgrow the input plus one NUL each */
	v->buf = malloc(semis * sizeof(struct mime_param) + 2 * len + 4);
	if (v->buf == NULL)
		return;
	v->param = (struct mime_param *)(void *)v->buf;
	o = v->buf + semis * sizeof(struct mime_param);
	const char *value = o;
	if ((p = mime_read_word(p, &o, 0)) == NULL)
		return;
	v->value = value;
	p = mime_skip_cfws(p);
	if (with_subtype && *p == '/') {
		const char *sub = o;
		if ((p = mime_read_word(mime_skip_cfws(p + 1), &o, 0)) == NULL)
			return;
		v->subtype = sub;
		p = mime_skip_cfws(p);
	}
	while (*p == ';' && v->nparams < semis) {
		const char *attr = o, *val;
		if ((p = mime_read_word(mime_skip_cfws(p + 1), &o, 0)) == NULL)
			return;
		p = mime_skip_cfws(p);
		if (*p != '=')
			return;
		val = o;
		if ((p = mime_read_word(mime_skip_cfws(p + 1), &o, 1)) == NULL)
			return;
		v->param[v->nparams++] = (struct mime_param){ attr, val };
		p = mime_skip_cfws(p);
	}
}

void
mime_value_free(struct mime_value *v)
{
	free(v->buf);
	v->buf = NULL;
}

const char *
mime_param(const struct mime_value *v, const char *attr)
{
	for (size_t i = 0; i < v->nparams; i++)
		if (strcasecmp(v->param[i].attr, attr) == 0)
			return v->param[i].val;
	return NULL;
}

void
mime_content_type(const struct imap_mime *t, size_t p, struct mime_value *v,
    const char **type, const char **subtype)
{
	const struct mime_part *part = &t->parts[p];
	char *ct = mime_field(t->msg + part->hdr, part->hdr_len, "Content-Type");
	int absent = ct == NULL;

	mime_value_parse(ct ? ct : "", 1, v);
	free(ct);
	if (v->value && v->subtype) {
		*type = v->value;
		*subtype = v->subtype;
	} else if (absent && part->digest_child) {	/* RFC 2046 5.1.5 */
		*type = "message";
		*subtype = "rfc822";
	} else {	/* absent or invalid: RFC 2045 5.2 */
		*type = "text";
		*subtype = "plain";
		v->nparams = v->value ? v->nparams : 0;
	}
}

/* ---- the tree ----------------------------------------------------------------------- */

struct parser {
	struct imap_mime *t;
	const char *bnd[MIME_MAX_DEPTH];	/* boundaries of the open multiparts */
	size_t blen[MIME_MAX_DEPTH];
	size_t nbnd;
};

/* The open multipart (its index in the boundary stack) whose delimiter
 * line starts at p, or -1; *close for "--boundary--". RFC 2046 5.1.1:
 * the boundary must follow "--" in full; the rest of the line is not
 * compared. The longest matching boundary wins. */
static int
delimiter_at(const struct parser *ps, size_t p, int *close)
{
	const char *m = ps->t->msg + p;
	size_t left = ps->t->len - p;
	int best = -1;

	if (left < 3 || m[0] != '-' || m[1] != '-')
		return -1;
	for (size_t i = 0; i < ps->nbnd; i++)
		if (left >= 2 + ps->blen[i] && memcmp(m + 2, ps->bnd[i], ps->blen[i]) == 0 &&
		    (best < 0 || ps->blen[i] > ps->blen[best]))
			best = (int)i;
	if (best >= 0) {
		size_t after = 2 + ps->blen[best];
		*close = left >= after + 2 && m[after] == '-' && m[after + 1] == '-';
	}
	return best;
}

/* The first delimiter line of an open multipart at or after the line
 * start p, or the message's end (*which = -1). */
static size_t
next_delimiter(const struct parser *ps, size_t p, int *which, int *close)
{
	const struct imap_mime *t = ps->t;

	*which = -1;
	if (ps->nbnd == 0)
		return t->len;
	for (; p < t->len; p = line_after(t->msg, t->len, p))
		if ((*which = delimiter_at(ps, p, close)) >= 0)
			return p;
	return t->len;
}

/* Where content ending at delimiter d stops: the CRLF before a
 * delimiter belongs to it (RFC 2046 5.1.1). */
static size_t
content_end(const struct imap_mime *t, size_t from, size_t d)
{
	if (d < t->len && d > from && t->msg[d - 1] == '\n')
		d--;
	if (d < t->len && d > from && t->msg[d - 1] == '\r')
		d--;
	return d;
}

/* Room for one more part: 1, or 0 at the budget or out of memory. */
static int
room(struct imap_mime *t)
{
	if (t->n >= MIME_MAX_PARTS)
		return 0;
	struct mime_part *np = mp_array_grow(t->parts, &t->cap, t->n + 1, sizeof(*np));

	if (np == NULL)
		return 0;
	t->parts = np;
	return 1;
}

static void
add_child(struct imap_mime *t, uint32_t parent, uint32_t *last, uint32_t child)
{
	if (*last)
		t->parts[*last].next = child;
	else
		t->parts[parent].first_child = child;
	*last = child;
	t->parts[parent].nchildren++;
}

/* The header of the entity at start: up to its empty line, or up to a
 * delimiter line when a broken part has no empty line. */
static void
scan_header(const struct parser *ps, uint32_t me, size_t start)
{
	const struct imap_mime *t = ps->t;
	size_t p = start;
	int close;

	for (; p < t->len; p = line_after(t->msg, t->len, p)) {
		if (blank_line(t->msg + p, t->len - p)) {
			p = line_after(t->msg, t->len, p);
			break;
		}
		if (ps->nbnd && delimiter_at(ps, p, &close) >= 0)
			break;
	}
	ps->t->parts[me].hdr_len = p - start;
	ps->t->parts[me].body = p;
}

static uint32_t parse_entity(struct parser *ps, size_t start, int depth, int digest_child,
    size_t *stop_r);

/* The body parts of multipart me; returns where its body ends. Parts
 * over the budget are skipped (they stay inside the parent's body). */
static size_t
parse_multipart(struct parser *ps, uint32_t me, const char *boundary, int depth, int digest)
{
	struct imap_mime *t = ps->t;
	size_t pos = t->parts[me].body, d, stop;
	int which, close;
	uint32_t last = 0;

	t->parts[me].kind = MIME_MULTIPART;
	if (boundary == NULL || *boundary == '\0')
		return next_delimiter(ps, pos, &which, &close);
	size_t mine = ps->nbnd++;
	ps->bnd[mine] = boundary;
	ps->blen[mine] = strlen(boundary);
	for (;;) {
		d = next_delimiter(ps, pos, &which, &close);
		if (which != (int)mine)
			break;	/* an enclosing delimiter, or the end: not closed */
		pos = line_after(t->msg, t->len, d);
		if (close) {	/* the epilogue runs to the enclosing delimiter */
			ps->nbnd--;
			return next_delimiter(ps, pos, &which, &close);
		}
		if (!room(t))
			continue;
		add_child(t, me, &last, parse_entity(ps, pos, depth + 1, digest, &stop));
		pos = stop;
	}
	ps->nbnd--;
	return d;
}

/* Entity me's body (from its header's end) and its children; returns
 * where its content ends. */
static size_t
parse_body(struct parser *ps, uint32_t me, int depth)
{
	struct imap_mime *t = ps->t;
	struct mime_value ct;
	const char *type, *sub;
	size_t end, stop;
	int which, close;

	mime_content_type(t, me, &ct, &type, &sub);
	int multi = strcasecmp(type, "multipart") == 0;
	int message = strcasecmp(type, "message") == 0 && strcasecmp(sub, "rfc822") == 0;
	if ((multi || message) && (depth >= MIME_MAX_DEPTH || !room(t))) {
		t->parts[me].degraded = 1;
		multi = message = 0;
	}
	if (multi)
		end = parse_multipart(ps, me, mime_param(&ct, "boundary"), depth,
		    strcasecmp(sub, "digest") == 0);
	else if (message) {
		t->parts[me].kind = MIME_MESSAGE;
		uint32_t last = 0;
		add_child(t, me, &last, parse_entity(ps, t->parts[me].body, depth + 1, 0, &stop));
		end = stop;
	} else
		end = next_delimiter(ps, t->parts[me].body, &which, &close);
	mime_value_free(&ct);
	return end;
}

/* The entity (header and body) starting at start; room() was checked.
 * *stop_r: where it ends (a delimiter line or the message end). */
static uint32_t
parse_entity(struct parser *ps, size_t start, int depth, int digest_child, size_t *stop_r)
{
	struct imap_mime *t = ps->t;
	uint32_t me = (uint32_t)t->n++;

	memset(&t->parts[me], 0, sizeof(t->parts[me]));
	t->parts[me].hdr = start;
	t->parts[me].digest_child = (uint8_t)digest_child;
	scan_header(ps, me, start);
	size_t end = parse_body(ps, me, depth);
	size_t body = t->parts[me].body;
	t->parts[me].body_len = content_end(t, body, end) - body;
	*stop_r = end;
	return me;
}

struct imap_mime *
imap_mime_parse(const char *msg, size_t len)
{
	struct imap_mime *t = calloc(1, sizeof(*t));
	struct parser ps = { .t = t };
	size_t stop;

	if (t == NULL)
		return NULL;
	t->msg = msg;
	t->len = len;
	if (!room(t)) {
		free(t);
		return NULL;
	}
	parse_entity(&ps, 0, 0, 0, &stop);
	return t;
}

void
imap_mime_free(struct imap_mime *t)
{
	if (t == NULL)
		return;
	free(t->parts);
	free(t);
}

long
mime_child(const struct imap_mime *t, size_t p, unsigned long n)
{
	uint32_t c = t->parts[p].first_child;

	if (n == 0 || n > t->parts[p].nchildren)
		return -1;
	while (--n)
		c = t->parts[c].next;
	return c;
}

/* ---- sections ---------------------------------------------------------------------- */

/* The header-list "(name name ...)" at p: astrings separated by spaces
 * (quoted strings allowed, literals are not). Sets the list and returns
 * the position after ")", or NULL. */
static const char *
parse_field_list(const char *p, struct imap_section *sec)
{
	size_t count = 0;

	if (*p++ != '(')
		return NULL;
	sec->fields = p;
	for (;;) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p++ != '"')
				return NULL;
		} else {
			const char *w = p;
			while (*p && *p != ' ' && *p != ')' && *p != '(' && *p != '"' &&
			    (unsigned char)*p > ' ' && *p != 0x7f)
				p++;
			if (p == w)
				return NULL;
		}
		if (++count > IMAP_SECTION_MAX_FIELDS)
			return NULL;
		if (*p == ')')
			break;
		if (*p++ != ' ')
			return NULL;
	}
	sec->fields_len = (size_t)(p - sec->fields);
	return p + 1;
}

/* The part numbers "1.2." at *p; 0 or -1. */
static int
parse_part_numbers(const char **pp, struct imap_section *sec)
{
	const char *p = *pp;

	while (isdigit((unsigned char)*p)) {
		unsigned long long n = 0;
		if (*p == '0' || sec->nparts == IMAP_SECTION_MAX_PARTS)
			return -1;	/* nz-number */
		for (; isdigit((unsigned char)*p); p++)
			if ((n = n * 10 + (unsigned)(*p - '0')) > 0xffffffffull)
				return -1;
		sec->part[sec->nparts++] = (uint32_t)n;
		if (*p != '.')
			break;
		if (!isdigit((unsigned char)p[1])) {
			p++;	/* "1.HEADER" */
			break;
		}
		p++;
	}
	*pp = p;
	return 0;
}

int
imap_section_parse(const char *text, struct imap_section *sec)
{
	static const struct {
		const char *word;
		enum imap_section_text text;
	} words[] = {
		{ "HEADER.FIELDS.NOT ", IMAP_SECTION_FIELDS_NOT },
		{ "HEADER.FIELDS ", IMAP_SECTION_FIELDS },
		{ "HEADER", IMAP_SECTION_HEADER },
		{ "TEXT", IMAP_SECTION_TEXT },
		{ "MIME", IMAP_SECTION_MIME },
	};
	const char *p = text;

	memset(sec, 0, sizeof(*sec));
	if (parse_part_numbers(&p, sec) < 0)
		return -1;
	if (*p == '\0')
		return sec->nparts && p[-1] == '.' ? -1 : 0;	/* "1." is no section */
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t wl = strlen(words[i].word);
		if (strncasecmp(p, words[i].word, wl) != 0)
			continue;
		sec->text = words[i].text;
		p += wl;
		if (sec->text == IMAP_SECTION_FIELDS || sec->text == IMAP_SECTION_FIELDS_NOT)
			p = parse_field_list(p, sec);
		if (p == NULL || *p != '\0')
			return -1;
		/* MIME only after a part number (RFC 3501 9, section-spec) */
		return sec->text == IMAP_SECTION_MIME && sec->nparts == 0 ? -1 : 0;
	}
	return -1;
}

/*
 * The entity the part numbers name, or -1. Part 1 of a message that is
 * not multipart is the message itself; below a message/rfc822 part,
 * numbers count the parts of the enclosed message, whose own part 1 is
 * itself when it is not multipart (RFC 3501 6.4.5's example).
 */
static long
find_part(const struct imap_mime *t, const struct imap_section *sec)
{
	long p = t->parts[0].kind == MIME_MULTIPART ? mime_child(t, 0, sec->part[0]) :
	    sec->part[0] == 1 ? 0 : -1;

	for (size_t i = 1; i < sec->nparts && p >= 0; i++) {
		const struct mime_part *cur = &t->parts[p];
		uint32_t n = sec->part[i];
		if (cur->kind == MIME_MESSAGE) {
			long c = (long)cur->first_child;
			p = t->parts[c].kind == MIME_MULTIPART ? mime_child(t, (size_t)c, n) :
			    n == 1 ? c : -1;
		} else if (cur->kind == MIME_MULTIPART)
			p = mime_child(t, (size_t)p, n);
		else
			p = -1;
	}
	return p;
}

/* Does the header-list (from a parsed section) name the field? */
static int
list_has(const struct imap_section *sec, const char *name, size_t nlen)
{
	const char *p = sec->fields, *end = p + sec->fields_len;

	while (p < end) {
		const char *w;
		size_t wl;
		if (*p == '"') {	/* quoted names hold no quotes worth keeping */
			w = ++p;
			while (p < end && *p != '"')
				p += *p == '\\' ? 2 : 1;
			wl = (size_t)(p - w);
			p++;
		} else {
			w = p;
			while (p < end && *p != ' ')
				p++;
			wl = (size_t)(p - w);
		}
		if (wl == nlen && strncasecmp(w, name, nlen) == 0)
			return 1;
		p++;	/* the space */
	}
	return 0;
}

/* HEADER.FIELDS [.NOT] of the header h..hlen: the chosen fields whole,
 * then an empty line. */
static char *
header_fields(const char *h, size_t hlen, const struct imap_section *sec, size_t *len_r)
{
	/* only the last field can lack a line end: two CRLFs at most added,
	 * and a NUL for callers that read it as a string */
	char *out = malloc(hlen + 5);
	size_t pos = 0, o = 0;
	struct field f;

	if (out == NULL)
		return NULL;
	int not = sec->text == IMAP_SECTION_FIELDS_NOT;
	while (next_field(h, hlen, &pos, &f))
		if (list_has(sec, h + f.start, f.nlen) != not) {
			memcpy(out + o, h + f.start, f.stop - f.start);
			o += f.stop - f.start;
			if (h[f.stop - 1] != '\n') {	/* a header cut off without a line end */
				memcpy(out + o, "\r\n", 2);
				o += 2;
			}
		}
	memcpy(out + o, "\r\n\0", 3);
	*len_r = o + 2;
	return out;
}

int
imap_mime_section(const char *msg, size_t len, const struct imap_mime *t,
    const struct imap_section *sec, const char **start_r, size_t *len_r, char **owned_r)
{
	size_t hdr = 0, hlen = mime_header_len(msg, len), body = hlen, blen = len - hlen;

	*owned_r = NULL;
	if (sec->nparts) {
		long p = t ? find_part(t, sec) : -1;
		if (p < 0)
			return 0;
		const struct mime_part *part = &t->parts[p];
		if (sec->text == IMAP_SECTION_ALL || sec->text == IMAP_SECTION_MIME) {
			*start_r = msg + (sec->text == IMAP_SECTION_MIME ? part->hdr : part->body);
			*len_r = sec->text == IMAP_SECTION_MIME ? part->hdr_len : part->body_len;
			return 1;
		}
		if (part->kind == MIME_MESSAGE)	/* HEADER, TEXT: of the enclosed message */
			part = &t->parts[part->first_child];
		hdr = part->hdr;
		hlen = part->hdr_len;
		body = part->body;
		blen = part->body_len;
	}
	switch (sec->text) {
	case IMAP_SECTION_ALL:
		*start_r = msg;
		*len_r = len;
		break;
	case IMAP_SECTION_HEADER:
		*start_r = msg + hdr;
		*len_r = hlen;
		break;
	case IMAP_SECTION_TEXT:
		*start_r = msg + body;
		*len_r = blen;
		break;
	case IMAP_SECTION_FIELDS:
	case IMAP_SECTION_FIELDS_NOT:
		if ((*owned_r = header_fields(msg + hdr, hlen, sec, len_r)) == NULL)
			return 0;
		*start_r = *owned_r;
		break;
	case IMAP_SECTION_MIME:
		return 0;
	}
	return 1;
}

int
imap_section(const char *msg, size_t len, const char *section, const char **start,
    size_t *slen, char **owned)
{
	struct imap_section sec;
	struct imap_mime *t = NULL;
	int found;

	*owned = NULL;
	if (imap_section_parse(section, &sec) < 0)
		return -1;
	if (sec.nparts && (t = imap_mime_parse(msg, len)) == NULL)
		return -1;
	found = imap_mime_section(msg, len, t, &sec, start, slen, owned);
	imap_mime_free(t);
	return found ? 0 : -1;
}

/* ---- leaves (for SEARCH) -------------------------------------------------------------- */

void
imap_mime_leaves(const char *msg, size_t len,
    void (*each)(void *arg, const char *hdr, size_t hlen, const char *body, size_t blen),
    void *arg)
{
	struct imap_mime *t = imap_mime_parse(msg, len);

	if (t == NULL) {	/* out of memory: the message as one leaf */
		size_t hl = mime_header_len(msg, len);
		each(arg, msg, hl, msg + hl, len - hl);
		return;
	}
	/* parts are stored in document order, which is depth first; a
	 * multipart without parts (no boundary found) counts as a leaf */
	for (size_t i = 0; i < t->n; i++) {
		const struct mime_part *p = &t->parts[i];
		if (p->kind == MIME_LEAF || (p->kind == MIME_MULTIPART && p->nchildren == 0))
			each(arg, msg + p->hdr, p->hdr_len, msg + p->body, p->body_len);
	}
	imap_mime_free(t);
}
