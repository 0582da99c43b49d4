/*
 * core/dsn.c - delivery status notifications (RFC 3464 in an RFC 6522
 * multipart/report): bounces and delay warnings, from the null sender
 * so they are never bounced again.
 *
 * The report quotes the original headers (text/rfc822-headers) unless
 * the sender asked for RET=FULL (message/rfc822), as Postfix does, so a
 * bounce does not carry a big body back by default. NOTIFY (RFC 3461
 * 4.1) is honoured per recipient: NEVER, or a list without FAILURE or
 * DELAY, keeps that recipient out of that kind of report.
 *
 * The report must stay well-formed whatever it quotes: fields taken
 * from the envelope or a remote reply have control characters blanked
 * (no CR LF of theirs can start a header), and the MIME boundary is
 * chosen to occur nowhere in the parts (the quoted message is the
 * sender's text, and may try to close the report early).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "dsn.h"
#include "log.h"
#include "settings.h"
#include "util.h"

#define MAX_QUOTED_HEADERS (64 * 1024)


static void putf(struct mp_buf *b, const char *fmt, ...) MP_PRINTF(2, 3);

static void
putf(struct mp_buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		mp_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* How much of the first len octets of p to keep: through the last CRLF,
 * or all len when there is none. */
static size_t
whole_lines(const char *p, size_t len)
{
	for (size_t i = len; i >= 2; i--)
		if (p[i - 2] == '\r' && p[i - 1] == '\n')
			return i;
	return len;
}

/* A field from the envelope or a remote reply, with every control
 * character blanked: it must not end the line it is put on. */
static const char *
clean(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (; s && *s && o + 1 < size; s++)
		out[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
	out[o] = '\0';
	return out;
}

/* Copy the original message: all of it, or its header section only
 * (up to MAX_QUOTED_HEADERS, cut after a whole line). */
static void
quote_original(struct mp_buf *b, const struct mp_qmsg *m, int full)
{
	struct mp_reader r;
	char chunk[8192];
	size_t start = b->len;
	ssize_t n;

	if (mp_queue_reader_open(mp_core.queue_dir, m, &r) < 0)
		return;
	while ((n = r.read(&r, chunk, sizeof(chunk))) > 0) {
		mp_buf_put(b, chunk, (size_t)n);
		if (full)
			continue;
		/* A NUL in the text must not hide the blank line: memmem. */
		char *end = memmem(b->p + start, b->len - start, "\r\n\r\n", 4);
		if (end || b->len - start > MAX_QUOTED_HEADERS) {
			b->len = end ? (size_t)(end - b->p) + 2 :
			    start + whole_lines(b->p + start, MAX_QUOTED_HEADERS);
			b->p[b->len] = '\0';
			break;
		}
	}
	mp_queue_reader_close(&r);
	if (b->len > start && b->p[b->len - 1] != '\n')
		mp_buf_put(b, "\r\n", 2);
}

/* The longest field put on a line: every line stays under putf's 1024. */
#define FIELD_MAX 400

static void
headers(struct mp_buf *b, const struct mp_qmsg *m, const char *boundary,
    enum dsn_kind kind)
{
	char date[64], sender[FIELD_MAX];

	mp_rfc5322_date(date, sizeof(date));
	putf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    mp_core.server.hostname);
	putf(b, "To: <%s>\r\n", clean(m->sender, sender, sizeof(sender)));
	putf(b, "Subject: %s\r\n", kind == DSN_FAILED ?
	    "Undelivered Mail Returned to Sender" :
	    "Delayed Mail (still being retried)");
	putf(b, "Date: %s\r\n", date);
	putf(b, "Message-ID: <%s.dsn.%lld@%s>\r\n", m->id, (long long)time(NULL),
	    mp_core.server.hostname);
	putf(b, "Auto-Submitted: auto-replied\r\n");
	putf(b, "MIME-Version: 1.0\r\n");
	putf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n\r\n", boundary);
}

static void
human_part(struct mp_buf *b, const struct dsn_rcpt *r, size_t n,
    enum dsn_kind kind)
{
	char addr[FIELD_MAX], enh[32], text[FIELD_MAX];

	putf(b, "This is the mail system at host %s.\r\n\r\n",
	    mp_core.server.hostname);
	if (kind == DSN_FAILED)
		putf(b, "Your message could not be delivered to one or more "
		    "recipients.\r\nIt is attached below.\r\n\r\n");
	else
		putf(b, "Your message could not be delivered yet. It is still "
		    "in the queue\r\nand will be retried; you do not need to "
		    "send it again.\r\n\r\n");
	for (size_t i = 0; i < n; i++)
		putf(b, "<%s>: %d %s %s\r\n", clean(r[i].address, addr, sizeof(addr)),
		    r[i].status.reply, clean(r[i].status.enhanced, enh, sizeof(enh)),
		    clean(r[i].status.text, text, sizeof(text)));
	mp_buf_put(b, "\r\n", 2);
}

static const char *
orcpt_of(const struct mp_qmsg *m, const char *address)
{
	for (size_t i = 0; m->orcpt && i < m->nrcpt; i++)
		if (m->rcpts[i] == address || strcmp(m->rcpts[i], address) == 0)
			return m->orcpt[i];
	return NULL;
}

static void
status_part(struct mp_buf *b, const struct mp_qmsg *m, const struct dsn_rcpt *r,
    size_t n, enum dsn_kind kind)
{
	char date[64], arrival[64], field[FIELD_MAX], enh[32];
	struct tm tm;

	mp_rfc5322_date(date, sizeof(date));
	localtime_r(&m->arrival, &tm);
	strftime(arrival, sizeof(arrival), "%a, %d %b %Y %H:%M:%S %z", &tm);
	putf(b, "Reporting-MTA: dns; %s\r\nX-Merpati-Queue-ID: %s\r\n",
	    mp_core.server.hostname, m->id);
	if (m->envid && m->envid[0])
		putf(b, "Original-Envelope-Id: %s\r\n", clean(m->envid, field, sizeof(field)));
	putf(b, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < n; i++) {
		const char *orcpt = orcpt_of(m, r[i].address);
		putf(b, "\r\nFinal-Recipient: rfc822; %s\r\n",
		    clean(r[i].address, field, sizeof(field)));
		if (orcpt && orcpt[0])
			putf(b, "Original-Recipient: %s\r\n", clean(orcpt, field, sizeof(field)));
		putf(b, "Action: %s\r\nStatus: %s\r\n",
		    kind == DSN_FAILED ? "failed" : "delayed",
		    r[i].status.enhanced[0] ? clean(r[i].status.enhanced, enh, sizeof(enh)) :
		    kind == DSN_FAILED ? "5.0.0" : "4.0.0");
		putf(b, "Diagnostic-Code: smtp; %d %s\r\nLast-Attempt-Date: %s\r\n",
		    r[i].status.reply, clean(r[i].status.text, field, sizeof(field)), date);
	}
	mp_buf_put(b, "\r\n", 2);
}

static int
notify_allows(const struct mp_qmsg *m, const char *address, enum dsn_kind kind)
{
	for (size_t i = 0; m->notify && i < m->nrcpt; i++) {
		if (m->rcpts[i] != address && strcmp(m->rcpts[i], address) != 0)
			continue;
		const char *n = m->notify[i];
		if (n == NULL || n[0] == '\0')
			return 1;	/* default: FAILURE,DELAY */
		return strcasestr(n, kind == DSN_FAILED ? "FAILURE" : "DELAY") != NULL;
	}
	return 1;
}

/* Whether "--" boundary occurs in one of the n parts. */
static int
boundary_used(const struct mp_buf *parts, size_t n, const char *boundary)
{
	char delim[192];
	int len = snprintf(delim, sizeof(delim), "--%s", boundary);

	for (size_t i = 0; i < n; i++)
		if (parts[i].len && memmem(parts[i].p, parts[i].len, delim, (size_t)len))
			return 1;
	return 0;
}

/* "<id>/<host>", or when a part holds that, "<id>/<random>" until none
 * does: each try is a new string, and the parts are finite. */
static void
pick_boundary(char *out, size_t size, const struct mp_qmsg *m,
    const struct mp_buf *parts, size_t n)
{
	static _Atomic uint64_t counter;
	uint64_t r = 0;

	snprintf(out, size, "%s/%s", m->id, mp_core.server.hostname);
	while (boundary_used(parts, n, out)) {
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = (uint64_t)time(NULL);
		snprintf(out, size, "%s/%016llx%llx", m->id, (unsigned long long)r,
		    (unsigned long long)counter++);
	}
}

static void
put_part(struct mp_buf *b, const char *boundary, const char *type,
    const struct mp_buf *part)
{
	putf(b, "--%s\r\nContent-Type: %s\r\n\r\n", boundary, type);
	if (part->len)
		mp_buf_put(b, part->p, part->len);
}

size_t
mp_dsn_format(const struct mp_qmsg *m, const struct dsn_rcpt *r, size_t n,
    enum dsn_kind kind, char **out)
{
	struct mp_buf b = { 0 }, parts[3] = { { 0 } };
	char boundary[160];
	int full = m->ret && strcasecmp(m->ret, "FULL") == 0 && kind == DSN_FAILED;

	human_part(&parts[0], r, n, kind);
	status_part(&parts[1], m, r, n, kind);
	quote_original(&parts[2], m, full);
	pick_boundary(boundary, sizeof(boundary), m, parts, 3);
	headers(&b, m, boundary, kind);
	put_part(&b, boundary, "text/plain; charset=us-ascii", &parts[0]);
	put_part(&b, boundary, "message/delivery-status", &parts[1]);
	put_part(&b, boundary, full ? "message/rfc822" : "text/rfc822-headers",
	    &parts[2]);
	putf(&b, "\r\n--%s--\r\n", boundary);
	for (size_t i = 0; i < 3; i++)
		free(parts[i].p);
	*out = b.p;
	return b.len;
}

struct text_reader {
	const char *p;
	size_t len, pos;
};

static ssize_t
text_read(struct mp_reader *r, void *out, size_t len)
{
	struct text_reader *t = r->priv;

	if (len > t->len - t->pos)
		len = t->len - t->pos;
	memcpy(out, t->p + t->pos, len);
	t->pos += len;
	return (ssize_t)len;
}

int
mp_dsn_send(const struct mp_qmsg *m, const struct dsn_rcpt *r, size_t n,
    enum dsn_kind kind)
{
	struct dsn_rcpt *keep = mp_xcalloc(n ? n : 1, sizeof(*keep));
	struct text_reader t = { 0 };
	struct mp_reader reader = { .struct_size = sizeof(reader), .read = text_read,
	    .priv = &t };
	const char *rcpt = m->sender, *err = NULL;
	char id[MP_QID_SIZE], *text = NULL;
	size_t k = 0;
	int rc = MP_OK;

	for (size_t i = 0; i < n; i++)
		if (notify_allows(m, r[i].address, kind))
			keep[k++] = r[i];
	if (m->sender[0] == '\0' || k == 0) {
		mp_log(MP_LOG_INFO, "no %s notification (%s)",
		    kind == DSN_FAILED ? "non-delivery" : "delay",
		    k ? "null sender" : "NOTIFY says no");
		free(keep);
		return 0;
	}
	t.len = mp_dsn_format(m, keep, k, kind, &text);
	t.p = text;
	reader.size = (off_t)t.len;
	rc = mp_host_table.queue_inject("", &rcpt, 1, &reader, id, sizeof(id),
	    &err);
	if (rc == MP_OK)
		mp_log(MP_LOG_INFO, "sender %s notification: %s",
		    kind == DSN_FAILED ? "non-delivery" : "delay", id);
	else
		mp_log(MP_LOG_ERR, "cannot queue notification: %s", err ? err : "?");
	free(text);
	free(keep);
	return rc == MP_OK ? 0 : -1;
}
