/*
 * core/filter_headers.c - the header section as a field list (see
 * filter_headers.h). A field runs from a line that does not start with
 * a space or tab to the next such line (RFC 5322 2.2.3 unfolding);
 * fields are kept byte for byte, so what no filter touched is written
 * back unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter_headers.h"
#include "util.h"

/* The length of the line at p (through its LF, or to end). */
static size_t
line_len(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
}

static int
is_blank_line(const char *p, size_t n)
{
	return (n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n');
}

static void
push(struct mp_hdrs *h, const char *p, size_t n)
{
	h->v = mp_xresize(h->v, h->n + 1, sizeof(char *));
	h->v[h->n] = mp_xmalloc(n + 1);
	memcpy(h->v[h->n], p, n);
	h->v[h->n][n] = '\0';
	h->n++;
	h->bytes += n;
}

int
mp_hdrs_parse(struct mp_hdrs *h, const char *buf, size_t len,
    size_t *used_r, int *blank_r)
{
	const char *p = buf, *end = buf + len, *field = NULL, *fend = NULL;

	memset(h, 0, sizeof(*h));
	*blank_r = 0;
	while (p < end) {
		size_t n = line_len(p, end);
		if (is_blank_line(p, n)) {
			*blank_r = 1;
			fend = p;
			p += n;
			break;
		}
		if (field && p[0] != ' ' && p[0] != '\t') {
			push(h, field, (size_t)(p - field));
			field = NULL;
		}
		if (field == NULL)
			field = p;
		p += n;
		/* fields are C strings; RFC 5322 has no NUL in a header */
		if ((size_t)(p - buf) > MP_HDRS_MAX_BYTES || h->n >= MP_HDRS_MAX_FIELDS ||
		    memchr(p - n, '\0', n) != NULL) {
			mp_hdrs_free(h);
			return -1;
		}
	}
	if (field)
		push(h, field, (size_t)((fend ? fend : p) - field));
	*used_r = (size_t)(p - buf);
	return 0;
}

int
mp_hdr_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 200)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (name[i] < 33 || name[i] > 126 || name[i] == ':')
			return 0;
	return 1;
}

int
mp_hdr_value_valid(const char *value)
{
	size_t n = strlen(value);

	if (n > 65536)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (value[i] == '\r' && value[i + 1] == '\n' &&
		    (value[i + 2] == ' ' || value[i + 2] == '\t'))
			i++;	/* a fold: CRLF WSP */
		else if (value[i] == '\r' || value[i] == '\n')
			return 0;
	}
	return 1;
}

static char *
make_field(const char *name, const char *value, size_t *len_r)
{
	size_t len = strlen(name) + strlen(value) + 5;
	char *f = mp_xmalloc(len);

	*len_r = (size_t)snprintf(f, len, "%s: %s\r\n", name, value);
	return f;
}

int
mp_hdrs_insert(struct mp_hdrs *h, size_t index, const char *name,
    const char *value)
{
	size_t len;
	char *f;

	if (h->n >= MP_HDRS_MAX_FIELDS ||
	    h->bytes + strlen(name) + strlen(value) + 4 > MP_HDRS_MAX_BYTES)
		return -1;
	if (index > h->n)
		index = h->n;
	f = make_field(name, value, &len);
	h->v = mp_xresize(h->v, h->n + 1, sizeof(char *));
	memmove(h->v + index + 1, h->v + index, (h->n - index) * sizeof(char *));
	h->v[index] = f;
	h->n++;
	h->bytes += len;
	return 0;
}

/* 1 when field f is called name (any case; RFC 5322 allows WSP before
 * the colon in obsolete syntax). */
static int
field_is(const char *f, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(f, name, n) != 0)
		return 0;
	f += n;
	while (*f == ' ' || *f == '\t')
		f++;
	return *f == ':';
}

int
mp_hdrs_change(struct mp_hdrs *h, const char *name, unsigned nth,
    const char *value)
{
	size_t len;

	for (size_t i = 0; i < h->n; i++) {
		if (!field_is(h->v[i], name) || --nth != 0)
			continue;
		if (value && h->bytes + strlen(name) + strlen(value) + 4 >
		    MP_HDRS_MAX_BYTES)
			return -1;
		h->bytes -= strlen(h->v[i]);
		if (value == NULL) {
			free(h->v[i]);
			memmove(h->v + i, h->v + i + 1, (h->n - i - 1) * sizeof(char *));
			h->n--;
			return 1;
		}
		/* the name keeps the message's spelling (field_is matched it) */
		char *old = h->v[i];
		old[strlen(name)] = '\0';
		h->v[i] = make_field(old, value, &len);
		free(old);
		h->bytes += len;
		return 1;
	}
	return 0;
}

char *
mp_hdrs_format(const struct mp_hdrs *h, size_t *len_r)
{
	char *out = mp_xmalloc(h->bytes + 1), *p = out;

	for (size_t i = 0; i < h->n; i++) {
		size_t n = strlen(h->v[i]);
		memcpy(p, h->v[i], n);
		p += n;
	}
	*p = '\0';
	*len_r = (size_t)(p - out);
	return out;
}

void
mp_hdrs_free(struct mp_hdrs *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i]);
	free(h->v);
	memset(h, 0, sizeof(*h));
}
