/*
 * core/sendmail_drop.c - the drop file format of sendmail_submit.h:
 * written by an unprivileged sendmail (through merpati-postdrop), read
 * by the daemon. The reader trusts nothing after the U line, which only
 * merpati-postdrop writes: every field is checked, the counts bounded,
 * and a file that is not exactly this format is refused with a reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail_submit.h"
#include "smtp_parse.h"

#define DROP_MAGIC "MERPATI-DROP 1"

static void
put_field(struct mp_buf *out, char tag, const char *value)
{
	mp_buf_put(out, &tag, 1);
	mp_buf_put(out, " ", 1);
	mp_buf_put(out, value, strlen(value));
	mp_buf_put(out, "\n", 1);
}

void
sendmail_drop_encode(const struct sm_submission *s, const char *msg,
    size_t len, struct mp_buf *out)
{
	mp_buf_put(out, DROP_MAGIC "\n", sizeof(DROP_MAGIC));
	put_field(out, 'S', s->sender);
	if (s->fullname)
		put_field(out, 'F', s->fullname);
	if (s->ret)
		put_field(out, 'T', s->ret);
	if (s->envid)
		put_field(out, 'V', s->envid);
	for (size_t i = 0; i < s->nrcpt; i++) {
		put_field(out, 'R', s->rcpts[i]);
		if (s->notify && s->notify[i])
			put_field(out, 'N', s->notify[i]);
	}
	mp_buf_put(out, "\n", 1);
	mp_buf_put(out, msg, len);
}

static int
refuse(char *err, size_t errsize, const char *why)
{
	snprintf(err, errsize, "%s", why);
	return -1;
}

/* The next line of [*p, end) as a C string (its LF made NUL); NULL
 * when there is no LF or the line holds a control character. */
static char *
next_line(char **p, char *end)
{
	char *line = *p, *lf = memchr(line, '\n', (size_t)(end - line));

	if (lf == NULL)
		return NULL;
	for (char *c = line; c < lf; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return NULL;
	*lf = '\0';
	*p = lf + 1;
	return line;
}

/* "U 1000": the uid merpati-postdrop read from the kernel. */
static int
read_uid(const char *line, long *uid_r)
{
	char *e;

	if (line == NULL || strncmp(line, "U ", 2) != 0 || line[2] < '0' ||
	    line[2] > '9')
		return -1;
	errno = 0;
	*uid_r = strtol(line + 2, &e, 10);
	return *e || errno || *uid_r < 0 ? -1 : 0;
}

static void
add_rcpt(struct sm_drop *d, char *addr)
{
	d->s.rcpts = realloc(d->s.rcpts, (d->s.nrcpt + 1) * sizeof(char *));
	d->s.notify = realloc(d->s.notify, (d->s.nrcpt + 1) * sizeof(char *));
	if (d->s.rcpts == NULL || d->s.notify == NULL)
		abort();
	d->s.rcpts[d->s.nrcpt] = addr;
	d->s.notify[d->s.nrcpt++] = NULL;
}

/* One envelope line "X value"; -1 with the reason in err. */
static int
envelope_field(struct sm_drop *d, char *line, size_t max_rcpts, char *err,
    size_t errsize)
{
	char *v = line + 2;

	if (line[0] == '\0' || line[1] != ' ')
		return refuse(err, errsize, "malformed envelope line");
	if (strlen(v) > 319 || (line[0] != 'F' && line[0] != 'S' && (v[0] == '\0' ||
	    strchr(v, ' '))))
		return refuse(err, errsize, "bad envelope value");
	switch (line[0]) {
	case 'S': d->s.sender = v; break;
	case 'F': d->s.fullname = v; break;
	case 'T':
		if (strcmp(v, "FULL") != 0 && strcmp(v, "HDRS") != 0)
			return refuse(err, errsize, "bad RET");
		d->s.ret = v;
		break;
	case 'V':
		if (strlen(v) > 100 || !smtp_xtext_valid(v))
			return refuse(err, errsize, "bad ENVID");
		d->s.envid = v;
		break;
	case 'R':
		if (d->s.nrcpt >= max_rcpts)
			return refuse(err, errsize, "too many recipients");
		add_rcpt(d, v);
		break;
	case 'N':
		if (d->s.nrcpt == 0 || d->s.notify[d->s.nrcpt - 1])
			return refuse(err, errsize, "N without its R");
		if (strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ,") != strlen(v))
			return refuse(err, errsize, "bad NOTIFY");
		d->s.notify[d->s.nrcpt - 1] = v;
		break;
	default:
		return refuse(err, errsize, "unknown envelope line");
	}
	return 0;
}

/* The message: every LF ends a CRLF (what sendmail hands over). */
static int
crlf_only(const char *p, size_t len)
{
	for (const char *lf = p; (lf = memchr(lf, '\n', len - (size_t)(lf - p)));
	    lf++)
		if (lf == p || lf[-1] != '\r')
			return 0;
	return 1;
}

int
sendmail_drop_decode(char *text, size_t size, size_t max_rcpts,
    struct sm_drop *d, char *err, size_t errsize)
{
	char *p = text, *end = text + size, *line;

	memset(d, 0, sizeof(*d));
	if (read_uid(next_line(&p, end), &d->s.uid) < 0)
		return refuse(err, errsize, "no U line (not written by merpati-postdrop)");
	line = next_line(&p, end);
	if (line == NULL || strcmp(line, DROP_MAGIC) != 0)
		return refuse(err, errsize, "not a merpati drop file");
	while ((line = next_line(&p, end)) != NULL && line[0] != '\0')
		if (envelope_field(d, line, max_rcpts, err, errsize) < 0) {
			sendmail_drop_free(d);
			return -1;
		}
	if (line == NULL || d->s.sender == NULL || d->s.nrcpt == 0) {
		sendmail_drop_free(d);
		return refuse(err, errsize, line == NULL ? "envelope not ended" :
		    "no sender or no recipient");
	}
	d->msg = p;
	d->len = (size_t)(end - p);
	if (!crlf_only(d->msg, d->len)) {
		sendmail_drop_free(d);
		return refuse(err, errsize, "message has a bare LF");
	}
	return 0;
}

void
sendmail_drop_free(struct sm_drop *d)
{
	free(d->s.rcpts);
	free(d->s.notify);
	d->s.rcpts = d->s.notify = NULL;
	d->s.nrcpt = 0;
}
