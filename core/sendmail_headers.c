/*
 * core/sendmail_headers.c - `merpati sendmail`'s header work: the end
 * of the header section, field lookup, -t recipients and Bcc removal.
 * Lines are found with memmem() within t->len, never strstr(): a NUL in
 * the text must not hide the lines after it (a Bcc there would be sent).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sendmail_headers.h"

/* The CRLF ending the line at p (before end), or NULL. */
static const char *
line_end(const char *p, const char *end)
{
	return memmem(p, (size_t)(end - p), "\r\n", 2);
}

/* A field name at line start p (before end), any case. */
static int
field_is(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);

	return (size_t)(end - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':';
}

const char *
sendmail_header_end(const struct mp_buf *t)
{
	const char *e;

	if (t->p == NULL)
		return NULL;
	if (t->len >= 2 && memcmp(t->p, "\r\n", 2) == 0)
		return t->p;	/* a blank first line: no header section */
	e = memmem(t->p, t->len, "\r\n\r\n", 4);
	return e ? e + 2 : t->p + t->len;
}

int
sendmail_has_header(const struct mp_buf *t, const char *name)
{
	const char *end = sendmail_header_end(t);

	for (const char *p = t->p; p && p < end;) {
		if (field_is(p, end, name))
			return 1;
		const char *eol = line_end(p, end);
		p = eol ? eol + 2 : NULL;
	}
	return 0;
}

void
sendmail_add_rcpt(char ***v, size_t *n, const char *addr)
{
	*v = realloc(*v, (*n + 1) * sizeof(char *));
	if (*v == NULL)
		abort();
	(*v)[(*n)++] = mp_xstrdup(addr);
}

/* An address word stops at a space or control character, a comma or an
 * angle bracket ("<a@b>" is the word after '<', never "<a@b" itself). */
static int
ends_word(char c)
{
	return (unsigned char)c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',';
}

/* Each address-looking word of the line [p, eol) into *v. */
static void
collect(const char *p, const char *eol, char ***v, size_t *n)
{
	static const char delims[] = "<, \t:";

	for (const char *q = p; q < eol;) {
		while (q < eol && !memchr(delims, *q, sizeof(delims) - 1))
			q++;
		if (q >= eol)
			break;
		q++;
		size_t len = 0;
		while (q + len < eol && !ends_word(q[len]))
			len++;
		char addr[320];
		if (len && len < sizeof(addr) && memchr(q, '@', len)) {
			memcpy(addr, q, len);
			addr[len] = '\0';
			sendmail_add_rcpt(v, n, addr);
		}
	}
}

void
sendmail_recipients_from_headers(const struct mp_buf *t, char ***v,
    size_t *n)
{
	const char *end = sendmail_header_end(t);
	int want = 0;

	for (const char *p = t->p; p && p < end;) {
		const char *eol = line_end(p, end);
		if (eol == NULL)
			eol = end;	/* a last line without CRLF */
		/* A folded line belongs to the field above it. */
		if (*p != ' ' && *p != '\t')
			want = field_is(p, end, "To") || field_is(p, end, "Cc") ||
			    field_is(p, end, "Bcc");
		if (want)
			collect(p, eol, v, n);
		p = eol < end ? eol + 2 : end;
	}
}

void
sendmail_remove_bcc(struct mp_buf *t)
{
	char *end = (char *)sendmail_header_end(t), *p = t->p;

	while (p && p < end) {
		char *eol = (char *)line_end(p, end);
		char *next = eol ? eol + 2 : end;	/* a last line without CRLF */
		if (!field_is(p, end, "Bcc")) {
			p = next;
			continue;
		}
		while (next < end && (*next == ' ' || *next == '\t')) {
			char *e2 = (char *)line_end(next, end);
			next = e2 ? e2 + 2 : end;
		}
		size_t cut = (size_t)(next - p);
		memmove(p, next, t->len - (size_t)(next - t->p) + 1);
		t->len -= cut;
		end -= cut;
	}
}
