/*
 * dkim_canon.c - splitting a message into header fields and body, and
 * the "simple" and "relaxed" canonicalisations of RFC 6376 3.4 for both.
 *
 * Line ends may be CRLF or a bare LF (messages read from files); both
 * count as one line end and come out as CRLF. A bare CR is content.
 * The body canonicaliser is a byte-level state machine with a fixed
 * output buffer, so a message of any size costs bounded memory; runs of
 * empty lines are only counted until content follows them, because
 * empty lines at the end of the body are not part of it (3.4.3, 3.4.4).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dkim_lib.h"

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* End of the line starting at p: just after its LF, or end. */
static const char *
line_end(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	return lf ? lf + 1 : end;
}

/* 1 if the line p..e is empty (just CRLF or LF). */
static int
line_is_empty(const char *p, const char *e)
{
	return (e - p == 1 && p[0] == '\n') ||
	    (e - p == 2 && p[0] == '\r' && p[1] == '\n');
}

/* Length of the field name at the start of a field line: ftext up to
 * the colon (RFC 5322 2.2), WSP before the colon allowed and not counted.
 * Returns 0 if the line is not a field. */
static size_t
field_name_len(const char *p, const char *e)
{
	const char *q = p;
	size_t len;

	while (q < e && (unsigned char)*q > 32 && (unsigned char)*q < 127 && *q != ':')
		q++;
	len = (size_t)(q - p);
	while (q < e && is_wsp(*q))
		q++;
	return len > 0 && q < e && *q == ':' ? len : 0;
}

int
dkim_msg_split(const char *msg, size_t len, struct dkim_field *fields,
    size_t max, size_t *count_r, const char **body_r, size_t *body_len_r,
    const char **error_r)
{
	const char *p = msg, *end = msg + len;
	size_t n = 0;

	*body_r = end;
	*body_len_r = 0;
	while (p < end) {
		const char *e = line_end(p, end);
		if (line_is_empty(p, e)) {
			*body_r = e;
			*body_len_r = (size_t)(end - e);
			break;
		}
		if (is_wsp(*p)) {
			if (n == 0) {
				*error_r = "the header starts with a continuation line";
				return -1;
			}
			fields[n - 1].len = (size_t)(e - fields[n - 1].start);
		} else {
			size_t name_len = field_name_len(p, e);
			if (name_len == 0) {
				*error_r = "a header line is not a field";
				return -1;
			}
			if (n == max) {
				*error_r = "too many header fields";
				return -1;
			}
			fields[n++] = (struct dkim_field){ p, (size_t)(e - p), name_len };
		}
		p = e;
	}
	*count_r = n;
	return 0;
}

int
dkim_field_is(const struct dkim_field *field, const char *name)
{
	return field->name_len == strlen(name) &&
	    strncasecmp(field->start, name, field->name_len) == 0;
}

/* simple: the field unchanged but for line ends, which become CRLF. */
static void
header_simple(const char *f, size_t len, const struct dkim_sink *sink)
{
	const char *p = f, *end = f + len;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *e = lf ? lf : end;
		if (lf && e > p && e[-1] == '\r')
			e--;
		sink->write(sink->arg, p, (size_t)(e - p));
		sink->write(sink->arg, "\r\n", 2);
		p = lf ? lf + 1 : end;
	}
}

/* relaxed (3.4.2): name lower case, no WSP around the colon, value
 * unfolded, WSP runs as one SP, no WSP at its ends. */
static void
header_relaxed(const char *f, size_t len, const struct dkim_sink *sink)
{
	const char *colon = memchr(f, ':', len), *end = f + len;
	char buf[256];
	size_t n = 0;
	int space = 0, started = 0;

	if (colon == NULL)
		colon = end;	/* not from dkim_msg_split; canonicalise all */
	for (const char *p = f; p < colon; p++) {
		if (is_wsp(*p))
			continue;
		buf[n++] = (char)tolower((unsigned char)*p);
		if (n == sizeof(buf)) {
			sink->write(sink->arg, buf, n);
			n = 0;
		}
	}
	buf[n++] = ':';
	for (const char *p = colon + 1; p < end; p++) {
		char c = *p;
		if (c == '\n' || (c == '\r' && p + 1 < end && p[1] == '\n'))
			continue;	/* unfold */
		if (c == '\r' && p + 1 == end)
			continue;
		if (is_wsp(c)) {
			space = started;
			continue;
		}
		if (n + 2 > sizeof(buf)) {
			sink->write(sink->arg, buf, n);
			n = 0;
		}
		if (space)
			buf[n++] = ' ';
		buf[n++] = c;
		space = 0;
		started = 1;
	}
	sink->write(sink->arg, buf, n);
	sink->write(sink->arg, "\r\n", 2);
}

void
dkim_header_canon(enum dkim_canon mode, const char *field, size_t len,
    const struct dkim_sink *sink)
{
	if (mode == DKIM_RELAXED)
		header_relaxed(field, len, sink);
	else
		header_simple(field, len, sink);
}

/* ---- body ---- */

void
dkim_body_init(struct dkim_body_canon *c, enum dkim_canon mode,
    const struct dkim_sink *sink, int has_limit, uint64_t limit)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->sink = *sink;
	c->has_limit = has_limit;
	c->limit = limit;
}

static void
body_flush(struct dkim_body_canon *c)
{
	size_t n = c->buf_len;

	if (c->has_limit && c->written + n > c->limit)
		n = (size_t)(c->limit - c->written);
	if (n > 0)
		c->sink.write(c->sink.arg, c->buf, n);
	c->written += n;
	c->buf_len = 0;
}

static void
body_put(struct dkim_body_canon *c, const char *data, size_t len)
{
	while (len > 0) {
		size_t room = sizeof(c->buf) - c->buf_len;
		size_t n = len < room ? len : room;
		memcpy(c->buf + c->buf_len, data, n);
		c->buf_len += n;
		data += n;
		len -= n;
		if (c->buf_len == sizeof(c->buf))
			body_flush(c);
		if (c->has_limit && c->written >= c->limit)
			return;	/* the rest is outside l= */
	}
}

/* A content octet of the current line (not a line end). */
static void
body_content(struct dkim_body_canon *c, char ch)
{
	if (c->mode == DKIM_RELAXED && is_wsp(ch)) {
		c->pending_wsp = 1;	/* written only if content follows */
		return;
	}
	if (!c->line_open) {
		/* empty lines before content are part of the body */
		for (; c->empty_lines > 0; c->empty_lines--)
			body_put(c, "\r\n", 2);
		c->line_open = 1;
	}
	if (c->pending_wsp) {
		body_put(c, " ", 1);
		c->pending_wsp = 0;
	}
	body_put(c, &ch, 1);
}

static void
body_line_end(struct dkim_body_canon *c)
{
	c->pending_wsp = 0;	/* relaxed: WSP at the end of a line goes */
	if (c->line_open)
		body_put(c, "\r\n", 2);
	else
		c->empty_lines++;
	c->line_open = 0;
}

void
dkim_body_feed(struct dkim_body_canon *c, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		if (ch == '\n') {
			c->pending_cr = 0;
			body_line_end(c);
			continue;
		}
		if (c->pending_cr) {
			c->pending_cr = 0;
			body_content(c, '\r');	/* a bare CR */
		}
		if (ch == '\r')
			c->pending_cr = 1;
		else
			body_content(c, ch);
	}
}

void
dkim_body_finish(struct dkim_body_canon *c)
{
	if (c->pending_cr) {
		c->pending_cr = 0;
		body_content(c, '\r');
	}
	/* a last line without its line end gets one (3.4.3, 3.4.4) */
	if (c->line_open)
		body_line_end(c);
	/* simple: an empty body is one CRLF; relaxed: it stays empty */
	if (c->mode == DKIM_SIMPLE && c->written == 0 && c->buf_len == 0)
		body_put(c, "\r\n", 2);
	body_flush(c);
}
