/*
 * core/smtp_bdat.c - BDAT (RFC 3030 CHUNKING): exactly N octets follow
 * the command, no dot-stuffing, no end marker. The chunk is always read
 * in full, even when the command is refused, so the client stays in
 * step. The same rules as DATA apply to the content: bare CR or LF is
 * refused (or normalised when smtp.bare_eol = "normalize"), lines over
 * 1000 octets and messages over the size limit are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "smtp_bdat_scan.h"
#include "smtp_session.h"

void
smtp_bdat_abort(struct session *s)
{
	if (s->bdat)
		mp_queue_abort(s->bdat);
	s->bdat = NULL;
	s->bdat_size = 0;
	s->bdat_disk_errno = 0;
	memset(&s->bdat_scan, 0, sizeof(s->bdat_scan));
}

/* Read exactly size octets; store them when store. 0, or -1 (I/O). */
static int
read_chunk(struct session *s, unsigned long long size, int store)
{
	char in[8192], out[2 * sizeof(in)];

	while (size > 0) {
		size_t want = size < sizeof(in) ? (size_t)size : sizeof(in);
		ssize_t n = smtp_data_read(s, in, want);
		if (n <= 0) {
			if (n == 0)
				errno = 0;	/* EOF, not a timeout */
			return -1;
		}
		size -= (unsigned long long)n;
		if (!store)
			continue;
		size_t o = smtp_bdat_scan(&s->bdat_scan, in, (size_t)n, out);
		s->bdat_size += o;
		if (s->bdat_disk_errno == 0 &&
		    s->bdat_size <= (unsigned long long)mp_core.limits.message_size &&
		    mp_queue_write(s->bdat, out, o) < 0)
			s->bdat_disk_errno = errno;
	}
	return 0;
}

static void
finish(struct session *s)
{
	struct mp_qwriter *w = s->bdat;

	/* A message must end with CRLF; close a last line left open. */
	if (s->bdat_size > 0 && !s->bdat_disk_errno) {
		const char *close = smtp_bdat_scan_close(&s->bdat_scan);
		if (close[0] && mp_queue_write(w, close, strlen(close)) < 0)
			s->bdat_disk_errno = errno;
	}
	s->bdat = NULL;
	smtp_finish_message(s, w, s->bdat_id, s->bdat_size, s->bdat_scan.bare,
	    s->bdat_scan.long_line, s->bdat_disk_errno);
}

void
smtp_do_bdat(struct session *s, const char *arg)
{
	unsigned long long size;
	int last, ok;

	if (smtp_bdat_parse(arg, &size, &last) < 0) {
		/* Without a size the chunk cannot be skipped: give up. */
		smtp_reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		s->quit = 1;
		return;
	}
	ok = s->in_mail && s->nrcpt > 0;
	/* limits.data_deadline runs from a message's first chunk to its
	 * last (each refused chunk on its own). */
	if (s->bdat == NULL)
		smtp_data_start_clock(s);
	if (ok && s->bdat == NULL &&
	    (s->bdat = smtp_open_message(s, s->bdat_id)) == NULL) {
		if (read_chunk(s, size, 0) < 0)
			smtp_data_lost(s, "BDAT");
		smtp_data_stop_clock(s);
		return;
	}
	if (read_chunk(s, size, ok) < 0) {
		int e = errno;
		smtp_bdat_abort(s);
		errno = e;
		smtp_data_lost(s, "BDAT");
		return;
	}
	smtp_data_stop_clock(s);
	if (!ok)
		smtp_reply(s, 503, "5.5.1", s->in_mail ? "No valid recipients" :
		    "Need MAIL and RCPT before BDAT");
	else if (last)
		finish(s);
	else
		smtp_reply(s, 250, "2.0.0", "%llu octets received", size);
}
