/*
 * modules/milter/milter_proto.c - the milter protocol codec (see
 * milter_proto.h): packet building, reply and option-negotiation
 * parsing, SMTP reply texts and socket specs. Pure functions over
 * caller memory; every length comes from the packet and is checked
 * against it before use.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"

/* s[0..n) into dst (size octets), cut to fit and NUL-terminated. */
static void
cut_copy(char *dst, size_t size, const char *s, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* ---- building ---------------------------------------------------------- */

void
milter_pkt_begin(struct milter_pkt *p, unsigned char *buf, size_t cap, char cmd)
{
	p->buf = buf;
	p->cap = cap;
	p->len = 4;		/* the length prefix, written by milter_pkt_end */
	p->overflow = cap < 5;
	if (!p->overflow)
		p->buf[p->len++] = (unsigned char)cmd;
}

void
milter_pkt_bytes(struct milter_pkt *p, const void *v, size_t n)
{
	if (p->overflow || n > p->cap - p->len) {
		p->overflow = 1;
		return;
	}
	if (n == 0)
		return;		/* v may be NULL: a command without data */
	memcpy(p->buf + p->len, v, n);
	p->len += n;
}

void
milter_pkt_byte(struct milter_pkt *p, unsigned char c)
{
	milter_pkt_bytes(p, &c, 1);
}

void
milter_pkt_u32(struct milter_pkt *p, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };

	milter_pkt_bytes(p, b, sizeof(b));
}

void
milter_pkt_u16(struct milter_pkt *p, uint16_t v)
{
	unsigned char b[2] = { v >> 8, v };

	milter_pkt_bytes(p, b, sizeof(b));
}

void
milter_pkt_str(struct milter_pkt *p, const char *s)
{
	milter_pkt_bytes(p, s, strlen(s) + 1);
}

size_t
milter_pkt_end(struct milter_pkt *p)
{
	uint32_t n;

	if (p->overflow)
		return 0;
	n = (uint32_t)(p->len - 4);
	p->buf[0] = n >> 24;
	p->buf[1] = n >> 16;
	p->buf[2] = n >> 8;
	p->buf[3] = n;
	return p->len;
}

/* ---- parsing ----------------------------------------------------------- */

static uint32_t
get_u32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
}

int
milter_frame_len(const unsigned char hdr[4], size_t *len_r)
{
	uint32_t n = get_u32(hdr);

	if (n == 0 || n > MILTER_MAX_PACKET)
		return -1;
	*len_r = n;
	return 0;
}

/* A cursor over a reply's data. */
struct cursor {
	const unsigned char *p;
	size_t left;
	const char **error_r;
};

static int
bad(struct cursor *c, const char *why)
{
	*c->error_r = why;
	return -1;
}

/* The next NUL-terminated string, or NULL (error set) when it has none. */
static const char *
take_str(struct cursor *c, const char *what)
{
	const unsigned char *nul = memchr(c->p, '\0', c->left);
	const char *s = (const char *)c->p;

	if (nul == NULL) {
		bad(c, what);
		return NULL;
	}
	c->left -= (size_t)(nul - c->p) + 1;
	c->p = nul + 1;
	return s;
}

static int
take_u32(struct cursor *c, uint32_t *v, const char *what)
{
	if (c->left < 4)
		return bad(c, what);
	*v = get_u32(c->p);
	c->p += 4;
	c->left -= 4;
	return 0;
}

/* RFC 5322 field name: printable ASCII other than ':' and space. */
static int
header_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 32 || (unsigned char)*s >= 127 || *s == ':')
			return 0;
	return 1;
}

static int
parse_header(struct cursor *c, struct milter_reply *r, int indexed)
{
	if (indexed && take_u32(c, &r->index, "header index missing") < 0)
		return -1;
	if ((r->name = take_str(c, "header name not terminated")) == NULL ||
	    (r->value = take_str(c, "header value not terminated")) == NULL)
		return -1;
	if (!header_name_ok(r->name))
		return bad(c, "malformed header name");
	return 0;
}

/* A string and optional ESMTP arguments (CHGFROM, ADDRCPT_PAR). */
static int
parse_addr_args(struct cursor *c, struct milter_reply *r)
{
	if ((r->value = take_str(c, "address not terminated")) == NULL)
		return -1;
	if (c->left > 0 && (r->args = take_str(c, "arguments not terminated")) == NULL)
		return -1;
	return 0;
}

int
milter_reply_parse(const unsigned char *pkt, size_t len,
    struct milter_reply *r, const char **error_r)
{
	struct cursor c = { pkt + 1, len ? len - 1 : 0, error_r };

	memset(r, 0, sizeof(*r));
	if (len == 0)
		return bad(&c, "empty reply");
	r->code = (char)pkt[0];
	switch (r->code) {
	case SMFIR_ACCEPT: case SMFIR_CONTINUE: case SMFIR_DISCARD:
	case SMFIR_REJECT: case SMFIR_TEMPFAIL: case SMFIR_SKIP:
	case SMFIR_PROGRESS: case SMFIR_SHUTDOWN: case SMFIR_CONN_FAIL:
		return 0;	/* trailing data is ignored, as libmilter sends none */
	case SMFIR_ADDHEADER:
		return parse_header(&c, r, 0);
	case SMFIR_INSHEADER: case SMFIR_CHGHEADER:
		return parse_header(&c, r, 1);
	case SMFIR_ADDRCPT: case SMFIR_DELRCPT: case SMFIR_QUARANTINE:
	case SMFIR_REPLYCODE:
		r->value = take_str(&c, "text not terminated");
		return r->value ? 0 : -1;
	case SMFIR_CHGFROM: case SMFIR_ADDRCPT_PAR:
		return parse_addr_args(&c, r);
	case SMFIR_REPLBODY:
		r->data = c.p;
		r->data_len = c.left;
		return 0;
	default:
		return bad(&c, "unknown reply");
	}
}

int
milter_optneg_parse(const unsigned char *pkt, size_t len,
    struct milter_optneg *o, const char **error_r)
{
	struct cursor c = { pkt + 1, len ? len - 1 : 0, error_r };

	memset(o, 0, sizeof(*o));
	if (len == 0 || pkt[0] != SMFIR_OPTNEG)
		return bad(&c, "expected the option negotiation reply");
	if (take_u32(&c, &o->version, "short option negotiation") < 0 ||
	    take_u32(&c, &o->actions, "short option negotiation") < 0 ||
	    take_u32(&c, &o->protocol, "short option negotiation") < 0)
		return -1;
	if (o->version < 2)
		return bad(&c, "milter protocol version below 2");
	while (c.left > 0) {
		uint32_t stage;
		const char *list;
		if (take_u32(&c, &stage, "short macro list") < 0 ||
		    (list = take_str(&c, "macro list not terminated")) == NULL)
			return -1;
		if (stage >= MILTER_STAGES)
			return bad(&c, "macro list for an unknown stage");
		o->symlist[stage] = list;
	}
	return 0;
}

int
milter_macro_wanted(const char *wanted, const char *name)
{
	size_t n;

	if (wanted == NULL)
		return 1;
	if (name[0] == '{')
		name++;
	n = strcspn(name, "}");
	while (*wanted) {
		size_t w;
		wanted += strspn(wanted, " ,");
		const char *word = wanted + (*wanted == '{');
		w = strcspn(word, "} ,");
		if (w == n && n > 0 && strncmp(word, name, n) == 0)
			return 1;
		wanted += strcspn(wanted, " ,");
	}
	return 0;
}

/* ---- SMTP replies ------------------------------------------------------ */

/* The enhanced code at *s ("5.7.1 "), copied; returns its length or 0. */
static size_t
enhanced_code(const char *s, char *out, size_t size)
{
	size_t i = 0;
	int dots = 0;

	if (s[0] != '4' && s[0] != '5' && s[0] != '2')
		return 0;
	for (i = 1; s[i] && s[i] != ' '; i++) {
		if (s[i] == '.')
			dots++;
		else if (!isdigit((unsigned char)s[i]))
			return 0;
	}
	if (dots != 2 || s[i - 1] == '.' || i >= size)
		return 0;
	memcpy(out, s, i);
	out[i] = '\0';
	return i;
}

/* Append one reply line's text to text, a space between lines. */
static void
append_text(char *text, size_t size, const char *s, size_t n)
{
	size_t used = strlen(text);

	if (used > 0 && used + 1 < size)
		text[used++] = ' ';
	for (size_t i = 0; i < n && used + 1 < size; i++)
		text[used++] = s[i] == '\t' ? ' ' : s[i];
	text[used] = '\0';
}

int
milter_replycode_parse(const char *reply, int *code_r, char *enhanced,
    size_t enhanced_size, char *text, size_t text_size)
{
	const char *line = reply;
	int code = 0;

	enhanced[0] = '\0';
	text[0] = '\0';
	for (;;) {
		size_t n = strcspn(line, "\r\n");
		int this;
		if (n < 3 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2]))
			return -1;
		this = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if ((this < 400 || this > 599) || (code && this != code))
			return -1;
		code = this;
		int last = n == 3 || line[3] == ' ';
		if (!last && line[3] != '-')
			return -1;
		const char *t = line + (n > 3 ? 4 : 3);
		size_t tn = n > 3 ? n - 4 : 0;
		size_t en = enhanced_code(t, enhanced, enhanced_size);
		if (en && en < tn && t[en] == ' ')
			en++;
		else if (en && en != tn)
			en = 0, enhanced[0] = '\0';
		if (en && enhanced[0] != line[0])
			return -1;	/* 550 with 4.x.x: contradictory */
		append_text(text, text_size, t + en, tn - en);
		line += n;
		line += strspn(line, "\r\n");
		if (last)
			break;
		if (*line == '\0')
			return -1;
	}
	*code_r = code;
	return 0;
}

int
milter_addr_unwrap(const char *in, char *out, size_t size)
{
	size_t n = strlen(in);

	while (n > 0 && isspace((unsigned char)*in))
		in++, n--;
	while (n > 0 && isspace((unsigned char)in[n - 1]))
		n--;
	if (n >= 2 && in[0] == '<' && in[n - 1] == '>')
		in++, n -= 2;
	if (n >= size || memchr(in, '\r', n) || memchr(in, '\n', n) ||
	    memchr(in, '<', n) || memchr(in, '>', n))
		return -1;
	memcpy(out, in, n);
	out[n] = '\0';
	return 0;
}

/* ---- the message ------------------------------------------------------- */

size_t
milter_body_cut(struct milter_body_cut *c, const char *in, size_t n, char *out)
{
	size_t k = 0;

	if (!c->started) {
		c->started = 1;
		c->at_blank = 1;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = in[i];
		if (!c->in_body) {
			if (ch == '\n') {
				c->in_body = c->at_blank;
				c->at_blank = 1;
			} else if (ch != '\r') {
				c->at_blank = 0;
			}
			continue;
		}
		if (ch == '\n' && !c->prev_cr)
			out[k++] = '\r';
		out[k++] = ch;
		c->prev_cr = ch == '\r';
	}
	return k;
}

/* The length of the line at s (up to end), its LF included. */
static size_t
line_len(const char *s, const char *end)
{
	const char *lf = memchr(s, '\n', (size_t)(end - s));

	return lf ? (size_t)(lf - s) + 1 : (size_t)(end - s);
}

/* Append s[0..n) minus CRs to out at *used (bounded by size). */
static void
put_value(char *out, size_t size, size_t *used, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *used + 1 < size; i++)
		if (s[i] != '\r')
			out[(*used)++] = s[i];
	out[*used] = '\0';
}

int
milter_header_next(const char *sec, size_t len, size_t *pos, char *name,
    size_t name_size, char *value, size_t value_size)
{
	const char *end = sec + len;

	while (*pos < len) {
		const char *line = sec + *pos;
		size_t n = line_len(line, end);
		const char *colon = memchr(line, ':', n);
		if (line[0] == '\r' || line[0] == '\n')
			return 0;	/* the empty line ends the section */
		*pos += n;
		if (colon == NULL || line[0] == ' ' || line[0] == '\t')
			continue;	/* not a field: skip the line */
		size_t nl = (size_t)(colon - line);
		while (nl > 0 && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
			nl--;	/* "Subject :" (obsolete syntax) */
		cut_copy(name, name_size, line, nl);
		const char *v = colon + 1;
		while (v < line + n && (*v == ' ' || *v == '\t'))
			v++;
		size_t used = 0;
		value[0] = '\0';
		put_value(value, value_size, &used, v, (size_t)(line + n - v));
		while (*pos < len && (sec[*pos] == ' ' || sec[*pos] == '\t')) {
			size_t cn = line_len(sec + *pos, end);
			put_value(value, value_size, &used, sec + *pos, cn);
			*pos += cn;
		}
		if (used > 0 && value[used - 1] == '\n')
			value[--used] = '\0';	/* the field's own line end */
		return 1;
	}
	return 0;
}

/* ---- socket specs ------------------------------------------------------ */

static int
set_port(struct milter_addr *a, const char *s, size_t n, const char **error_r)
{
	unsigned long port = 0;

	if (n == 0 || n > 5) {
		*error_r = "socket: bad port";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i])) {
			*error_r = "socket: bad port";
			return -1;
		}
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	if (port == 0 || port > 65535) {
		*error_r = "socket: port out of range";
		return -1;
	}
	a->port = (unsigned)port;
	return 0;
}

static int
set_host(struct milter_addr *a, const char *s, size_t n, const char **error_r)
{
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
		s++, n -= 2;
	if (n == 0 || n >= sizeof(a->host) || memchr(s, '/', n)) {
		*error_r = "socket: bad host";
		return -1;
	}
	memcpy(a->host, s, n);
	a->host[n] = '\0';
	return 0;
}

/* "host:port" (the last ':' splits, for IPv6) or Sendmail's "port@host". */
static int
parse_inet(const char *s, struct milter_addr *a, const char **error_r)
{
	const char *at = strchr(s, '@'), *colon = strrchr(s, ':');

	if (at != NULL)
		return set_port(a, s, (size_t)(at - s), error_r) < 0 ? -1 :
		    set_host(a, at + 1, strlen(at + 1), error_r);
	if (colon == NULL) {
		*error_r = "socket: inet wants host:port or port@host";
		return -1;
	}
	return set_host(a, s, (size_t)(colon - s), error_r) < 0 ? -1 :
	    set_port(a, colon + 1, strlen(colon + 1), error_r);
}

int
milter_addr_parse(const char *spec, struct milter_addr *a, const char **error_r)
{
	const char *path = NULL;

	memset(a, 0, sizeof(*a));
	if (strncmp(spec, "inet:", 5) == 0)
		return parse_inet(spec + 5, a, error_r);
	if (strncmp(spec, "inet6:", 6) == 0)
		return parse_inet(spec + 6, a, error_r);
	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	else if (spec[0] == '/')
		path = spec;
	if (path == NULL) {
		*error_r = "socket: want unix:/path or inet:host:port";
		return -1;
	}
	if (path[0] != '/' || strlen(path) >= sizeof(a->path)) {
		*error_r = "socket: unix path must be absolute and short";
		return -1;
	}
	a->unix_socket = 1;
	strcpy(a->path, path);
	return 0;
}
