/*
 * core/smtp_data.c - the DATA state machine (see smtp_data.h).
 */
#include <string.h>

#include "smtp_data.h"

enum {
	ST_BOL,		/* at the start of a line */
	ST_DOT,		/* a '.' at the start of a line */
	ST_DOT_CR,	/* ".\r" at the start of a line */
	ST_MID,		/* inside a line */
	ST_CR		/* a CR inside a line */
};

#define MAX_LINE 998	/* RFC 5321 4.5.3.1.6: 1000 with CRLF */

void
smtp_data_init(struct smtp_data *d)
{
	d->state = ST_BOL;
	d->line_len = 0;
	d->bare_eol = 0;
	d->long_line = 0;
	d->size = 0;
}

static void
emit(struct smtp_data *d, char *out, size_t *o, char c)
{
	out[(*o)++] = c;
	d->size++;
}

static void
end_line(struct smtp_data *d, char *out, size_t *o)
{
	emit(d, out, o, '\r');
	emit(d, out, o, '\n');
	d->line_len = 0;
}

/* A bare CR or LF: flag it and write a line end, but never enter
 * ST_BOL, so what follows cannot end the data. */
static void
bare(struct smtp_data *d, char *out, size_t *o)
{
	d->bare_eol = 1;
	end_line(d, out, o);
	d->state = ST_MID;
}

static void
text(struct smtp_data *d, char *out, size_t *o, char c)
{
	if (c == '\r') {
		d->state = ST_CR;
		return;
	}
	if (c == '\n') {
		bare(d, out, o);
		return;
	}
	if (++d->line_len > MAX_LINE)
		d->long_line = 1;
	emit(d, out, o, c);
	d->state = ST_MID;
}

/* Inside a line: the run up to the next CR or LF is copied at once. */
static size_t
text_run(struct smtp_data *d, const char *in, size_t n, char *out, size_t *o)
{
	const char *lf = memchr(in, '\n', n);
	size_t k = lf ? (size_t)(lf - in) : n;
	const char *cr = memchr(in, '\r', k);

	if (cr)
		k = (size_t)(cr - in);
	memcpy(out + *o, in, k);
	*o += k;
	d->size += k;
	d->line_len += k;
	if (d->line_len > MAX_LINE)
		d->long_line = 1;
	return k;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen,
    char *out, size_t *outlen, int *done)
{
	size_t i, o = 0;

	*done = 0;
	for (i = 0; i < inlen && !*done; i++) {
		char c = in[i];
		switch (d->state) {
		case ST_BOL:
			if (c == '.')
				d->state = ST_DOT;
			else
				text(d, out, &o, c);
			break;
		case ST_DOT:
			if (c == '\r')
				d->state = ST_DOT_CR;
			else if (c == '\n') {
				emit(d, out, &o, '.');
				bare(d, out, &o);
			} else
				text(d, out, &o, c);	/* the stuffed dot goes */
			break;
		case ST_DOT_CR:
			if (c == '\n')
				*done = 1;
			else {
				emit(d, out, &o, '.');
				bare(d, out, &o);
				text(d, out, &o, c);
			}
			break;
		case ST_MID:
			if (c != '\r' && c != '\n')
				i += text_run(d, in + i, inlen - i, out, &o) - 1;
			else
				text(d, out, &o, c);
			break;
		case ST_CR:
			if (c == '\n') {
				end_line(d, out, &o);
				d->state = ST_BOL;
			} else {
				bare(d, out, &o);
				text(d, out, &o, c);
			}
			break;
		}
	}
	*outlen = o;
	return i;
}
