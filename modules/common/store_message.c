/*
 * modules/common/store_message.c - message bodies in wire form and the
 * local delivery reader, one copy for store_sqlite and store_pgsql.
 * See store_message.h.
 */
#include <stdio.h>
#include <string.h>

#include "store_message.h"

long long
store_header_length(struct mp_reader *r, long long size)
{
	static const char end[] = "\r\n\r\n";
	char buf[4096];
	long long off = 0;
	int state = 0;	/* counts "\r\n\r\n" progress */
	ssize_t n;

	while ((n = r->read(r, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++, off++) {
			state = buf[i] == end[state] ? state + 1 : buf[i] == '\r' ? 1 : 0;
			if (state == 4)
				return off + 1;
		}
	}
	return size;
}

size_t
store_crlf(const char *in, size_t n, char *out, char *prev)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\n' && *prev != '\r')
			out[o++] = '\r';
		out[o++] = in[i];
		*prev = in[i];
	}
	return o;
}

static ssize_t
delivery_read(struct mp_reader *r, void *buf, size_t len)
{
	struct store_delivery *d = r->priv;

	if (d->hpos < d->hlen) {
		size_t k = d->hlen - d->hpos < len ? d->hlen - d->hpos : len;
		memcpy(buf, d->head + d->hpos, k);
		d->hpos += k;
		return (ssize_t)k;
	}
	return d->inner->read(d->inner, buf, len);
}

void
store_delivery_init(struct store_delivery *d, const struct mp_envelope *env,
    const char *rcpt, struct mp_reader *msg)
{
	int n = snprintf(d->head, sizeof(d->head), "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
	    env->sender, rcpt);

	/* cut short (very long addresses): what fits, never past the buffer */
	d->hlen = n < 0 ? 0 : n < (int)sizeof(d->head) ? (size_t)n : sizeof(d->head) - 1;
	d->hpos = 0;
	d->inner = msg;
	d->reader = (struct mp_reader){ .struct_size = sizeof(d->reader), .read = delivery_read,
	    .size = -1, .priv = d };
}

int
store_delivery_status(struct mp_status *status, const char *module, int rc, const char *err)
{
	char text[64];

	if (rc == MP_OK) {
		snprintf(text, sizeof(text), "delivered to %s", module);
		mp_status_set(status, 250, "2.0.0", text);
		return MP_OK;
	}
	mp_status_set(status, 451, "4.3.0", "");
	snprintf(status->text, sizeof(status->text), "%s: %s", module, err ? err : "failed");
	return MP_TEMPFAIL;
}
