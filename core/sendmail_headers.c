/*
 * core/sendmail_headers.c - `merpati sendmail`'s header work: the end
 * of the header section, field lookup, -t recipients (an RFC 5322
 * address-list reader: display names, quotes, comments, groups, folded
 * lines; Resent- fields first) and Bcc removal.
 * Lines are found with memmem() within t->len, never strstr(): a NUL in
 * the text must not hide the lines after it (a Bcc there would be sent).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sendmail_headers.h"

/* Where -t's addresses go, and how many at most. */
struct rcpt_sink {
	char ***v;
	size_t *n, max;
};

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
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp((*v)[i], addr) == 0)
			return;	/* one delivery per address */
	*v = realloc(*v, (*n + 1) * sizeof(char *));
	if (*v == NULL)
		abort();
	(*v)[(*n)++] = mp_xstrdup(addr);
}

/* What an address may hold once comments and spaces are gone: visible
 * ASCII or UTF-8, none of the list's own punctuation. */
static int
addr_char_ok(unsigned char c)
{
	return c > 0x20 && c != 0x7f && !strchr("<>,;:()\\", c);
}

/* One address of a list, built while walking it (RFC 5322 3.4). */
struct addr_acc {
	char out[320];
	size_t n;
	int bad, angle, closed;
};

static void
acc_put(struct addr_acc *a, char c)
{
	if (a->closed)
		return;	/* text after "<...>" is a comment-like tail */
	if (!addr_char_ok((unsigned char)c) && c != ' ')
		a->bad = 1;
	if (a->n + 1 >= sizeof(a->out))
		a->bad = 1;
	else
		a->out[a->n++] = c;
}

static void
acc_emit(struct addr_acc *a, struct rcpt_sink *sink)
{
	a->out[a->n] = '\0';
	if (a->n > 0 && !a->bad && a->out[0] != '@' && !strchr(a->out, ' ') &&
	    *sink->n < sink->max)
		sendmail_add_rcpt(sink->v, sink->n, a->out);
	memset(a, 0, sizeof(*a));
}

/*
 * The addresses of one field value [p, end) (folds included): elements
 * split at top-level ',' and ';'; in each, "<...>" wins over the
 * display name before it, a group's "name:" and a route's "@a,@b:" are
 * dropped, comments (nested) and spaces outside quotes are skipped.
 * One pass, no recursion: nesting is a counter.
 */
static void
address_list(const char *p, const char *end, struct rcpt_sink *sink)
{
	struct addr_acc a = { 0 };
	size_t depth = 0;
	int quote = 0;

	for (; p < end; p++) {
		char c = *p;
		if (quote) {
			if (c == '"')
				quote = 0;
			else if (c == '\\' && p + 1 < end)
				acc_put(&a, *p++), c = *p;
			acc_put(&a, c == '\r' || c == '\n' ? ' ' : c);
		} else if (depth) {
			if (c == '\\' && p + 1 < end)
				p++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '(')
			depth = 1;
		else if (c == '"') {
			quote = 1;
			acc_put(&a, c);
		} else if (c == '<') {
			a.n = 0, a.bad = 0, a.angle = 1, a.closed = 0;
		} else if (c == '>' && a.angle)
			a.angle = 0, a.closed = 1;
		else if ((c == ',' && !a.angle) || c == ';')
			acc_emit(&a, sink);
		else if (c == ':')
			a.n = 0, a.bad = 0;	/* a group's name or a route */
		else if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			acc_put(&a, c);
	}
	acc_emit(&a, sink);
}

static const char *const plain_fields[] = { "To", "Cc", "Bcc", NULL };
static const char *const resent_fields[] = { "Resent-To", "Resent-Cc",
	"Resent-Bcc", NULL };

static int
field_in(const char *p, const char *end, const char *const *names)
{
	for (size_t i = 0; names[i]; i++)
		if (field_is(p, end, names[i]))
			return (int)strlen(names[i]);
	return 0;
}

/* Just past the field starting at p: its line and the folded ones. */
static const char *
field_end(const char *p, const char *end)
{
	do {
		const char *eol = line_end(p, end);
		p = eol ? eol + 2 : end;
	} while (p < end && (*p == ' ' || *p == '\t'));
	return p;
}

static int
has_field_in(const struct mp_buf *t, const char *const *names)
{
	const char *end = sendmail_header_end(t);

	for (const char *p = t->p; p && p < end; p = field_end(p, end))
		if (field_in(p, end, names))
			return 1;
	return 0;
}

void
sendmail_recipients_from_headers(const struct mp_buf *t, char ***v,
    size_t *n, size_t max)
{
	const char *end = sendmail_header_end(t);
	const char *const *names = has_field_in(t, resent_fields) ?
	    resent_fields : plain_fields;
	struct rcpt_sink sink = { v, n, max };

	for (const char *p = t->p; p && p < end;) {
		const char *next = field_end(p, end);
		int len = field_in(p, end, names);
		if (len)
			address_list(p + len + 1, next, &sink);
		p = next;
	}
}

void
sendmail_remove_bcc(struct mp_buf *t)
{
	static const char *const bcc[] = { "Bcc", "Resent-Bcc", NULL };
	char *end = (char *)sendmail_header_end(t), *p = t->p;

	while (p && p < end) {
		char *next = (char *)field_end(p, end);
		if (!field_in(p, end, bcc)) {
			p = next;
			continue;
		}
		size_t cut = (size_t)(next - p);
		memmove(p, next, t->len - (size_t)(next - t->p) + 1);
		t->len -= cut;
		end -= cut;
	}
}
