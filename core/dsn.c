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
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* Copy the original message: all of it, or its header section only. */
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
		char *end = strstr(b->p + start, "\r\n\r\n");
		if (end || b->len - start > MAX_QUOTED_HEADERS) {
			b->len = end ? (size_t)(end - b->p) + 2 : b->len;
			b->p[b->len] = '\0';
			break;
		}
	}
	mp_queue_reader_close(&r);
	if (b->len > start && b->p[b->len - 1] != '\n')
		mp_buf_put(b, "\r\n", 2);
}

static void
headers(struct mp_buf *b, const struct mp_qmsg *m, const char *boundary,
    enum dsn_kind kind)
{
	char date[64];

	mp_rfc5322_date(date, sizeof(date));
	putf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    mp_core.server.hostname);
	putf(b, "To: <%s>\r\n", m->sender);
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
    const char *boundary, enum dsn_kind kind)
{
	putf(b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
	    boundary);
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
		putf(b, "<%s>: %d %s %s\r\n", r[i].address, r[i].status.reply,
		    r[i].status.enhanced, r[i].status.text);
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
    size_t n, const char *boundary, enum dsn_kind kind)
{
	char date[64], arrival[64];
	struct tm tm;

	mp_rfc5322_date(date, sizeof(date));
	localtime_r(&m->arrival, &tm);
	strftime(arrival, sizeof(arrival), "%a, %d %b %Y %H:%M:%S %z", &tm);
	putf(b, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n",
	    boundary);
	putf(b, "Reporting-MTA: dns; %s\r\nX-Merpati-Queue-ID: %s\r\n",
	    mp_core.server.hostname, m->id);
	if (m->envid && m->envid[0])
		putf(b, "Original-Envelope-Id: %s\r\n", m->envid);
	putf(b, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < n; i++) {
		const char *orcpt = orcpt_of(m, r[i].address);
		putf(b, "\r\nFinal-Recipient: rfc822; %s\r\n", r[i].address);
		if (orcpt && orcpt[0])
			putf(b, "Original-Recipient: %s\r\n", orcpt);
		putf(b, "Action: %s\r\nStatus: %s\r\n",
		    kind == DSN_FAILED ? "failed" : "delayed",
		    r[i].status.enhanced[0] ? r[i].status.enhanced :
		    kind == DSN_FAILED ? "5.0.0" : "4.0.0");
		putf(b, "Diagnostic-Code: smtp; %d %s\r\nLast-Attempt-Date: %s\r\n",
		    r[i].status.reply, r[i].status.text, date);
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

size_t
mp_dsn_format(const struct mp_qmsg *m, const struct dsn_rcpt *r, size_t n,
    enum dsn_kind kind, char **out)
{
	struct mp_buf b = { 0 };
	char boundary[128];
	int full = m->ret && strcasecmp(m->ret, "FULL") == 0 && kind == DSN_FAILED;

	snprintf(boundary, sizeof(boundary), "%s/%s", m->id,
	    mp_core.server.hostname);
	headers(&b, m, boundary, kind);
	human_part(&b, r, n, boundary, kind);
	status_part(&b, m, r, n, boundary, kind);
	putf(&b, "--%s\r\nContent-Type: %s\r\n\r\n", boundary,
	    full ? "message/rfc822" : "text/rfc822-headers");
	quote_original(&b, m, full);
	putf(&b, "\r\n--%s--\r\n", boundary);
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
	struct mp_reader reader = { .read = text_read, .priv = &t };
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
