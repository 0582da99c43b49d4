/*
 * core/dsn.c - failure DSNs (RFC 3464, RFC 3462 multipart/report).
 *
 * The report quotes the original headers only (text/rfc822-headers),
 * as Postfix does by default, so a bounce never carries a big body back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "log.h"
#include "runner.h"
#include "settings.h"
#include "util.h"

#define MAX_QUOTED_HEADERS (64 * 1024)

struct buf {
	char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
putf(struct buf *b, const char *fmt, ...) MP_PRINTF(2, 3);

static void
putf(struct buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Copy the original header section (up to the first empty line). */
static void
quote_headers(struct buf *b, const struct mp_qmsg *m)
{
	struct mp_reader r;
	char chunk[4096];
	size_t total = 0;
	ssize_t n;

	if (mp_queue_reader_open(mp_core.queue_dir, m, &r) < 0)
		return;
	while (total < MAX_QUOTED_HEADERS &&
	    (n = r.read(&r, chunk, sizeof(chunk))) > 0) {
		size_t before = b->len;
		put(b, chunk, (size_t)n);
		total += (size_t)n;
		char *end = strstr(b->p + (before > 3 ? before - 3 : 0), "\r\n\r\n");
		if (end) {
			b->len = (size_t)(end - b->p) + 2;
			b->p[b->len] = '\0';
			break;
		}
	}
	mp_queue_reader_close(&r);
}

static void
headers(struct buf *b, const struct mp_qmsg *m, const char *boundary)
{
	char date[64];

	mp_rfc5322_date(date, sizeof(date));
	putf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    mp_core.server.hostname);
	putf(b, "To: <%s>\r\n", m->sender);
	putf(b, "Subject: Undelivered Mail Returned to Sender\r\n");
	putf(b, "Date: %s\r\n", date);
	putf(b, "Auto-Submitted: auto-replied\r\n");
	putf(b, "MIME-Version: 1.0\r\n");
	putf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n\r\n", boundary);
}

static void
human_part(struct buf *b, const struct dsn_rcpt *r, size_t n,
    const char *boundary)
{
	putf(b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
	    boundary);
	putf(b, "This is the mail system at host %s.\r\n\r\n"
	    "Your message could not be delivered to one or more recipients.\r\n\r\n",
	    mp_core.server.hostname);
	for (size_t i = 0; i < n; i++)
		putf(b, "<%s>: %d %s %s\r\n", r[i].address, r[i].status.reply,
		    r[i].status.enhanced, r[i].status.text);
	put(b, "\r\n", 2);
}

static void
status_part(struct buf *b, const struct mp_qmsg *m, const struct dsn_rcpt *r,
    size_t n, const char *boundary)
{
	char date[64];

	mp_rfc5322_date(date, sizeof(date));
	putf(b, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n",
	    boundary);
	putf(b, "Reporting-MTA: dns; %s\r\nX-Merpati-Queue-ID: %s\r\n",
	    mp_core.server.hostname, m->id);
	for (size_t i = 0; i < n; i++) {
		putf(b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\n",
		    r[i].address);
		putf(b, "Status: %s\r\nDiagnostic-Code: smtp; %d %s\r\n"
		    "Last-Attempt-Date: %s\r\n", r[i].status.enhanced,
		    r[i].status.reply, r[i].status.text, date);
	}
	put(b, "\r\n", 2);
}

static ssize_t
buf_read(struct mp_reader *r, void *out, size_t len)
{
	struct buf *b = r->priv;
	size_t left = b->cap;	/* cap reused as the read offset */

	if (left >= b->len)
		return 0;
	if (len > b->len - left)
		len = b->len - left;
	memcpy(out, b->p + left, len);
	b->cap += len;
	return (ssize_t)len;
}

int
mp_dsn_bounce(const struct mp_qmsg *m, const struct dsn_rcpt *r, size_t n)
{
	struct buf b = { 0 };
	char boundary[64], id[MP_QID_SIZE];
	const char *rcpt = m->sender, *err = NULL;
	struct mp_reader reader = { .read = buf_read };
	int rc;

	snprintf(boundary, sizeof(boundary), "%s/%s", m->id,
	    mp_core.server.hostname);
	headers(&b, m, boundary);
	human_part(&b, r, n, boundary);
	status_part(&b, m, r, n, boundary);
	putf(&b, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
	quote_headers(&b, m);
	putf(&b, "\r\n--%s--\r\n", boundary);
	reader.priv = &b;
	reader.size = (off_t)b.len;
	b.cap = 0;
	rc = mp_host_table.queue_inject("", &rcpt, 1, &reader, id, sizeof(id),
	    &err);
	if (rc == MP_OK)
		mp_log(MP_LOG_INFO, "sender non-delivery notification: %s", id);
	free(b.p);
	return rc == MP_OK ? 0 : -1;
}
