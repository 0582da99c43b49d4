/*
 * core/smtp_data.h - the DATA state machine: turns the bytes after
 * "354" into the message, undoing dot-stuffing (RFC 5321 4.5.2), and
 * finds the end. Only <CRLF>.<CRLF> ends the data: a bare LF or bare CR
 * never does (the SMTP smuggling class of bugs); they are flagged so
 * the session can reject the message, and written out as CRLF so a
 * normalising policy gets a clean message. Pure; no I/O.
 */
#ifndef MERPATI_SMTP_DATA_H
#define MERPATI_SMTP_DATA_H

#include <stddef.h>

struct smtp_data {
	int state;
	size_t line_len;	/* octets in the current line so far */
	int bare_eol;		/* saw a CR or LF not part of CRLF */
	int long_line;		/* a line exceeded 998 octets + CRLF */
	unsigned long long size;/* octets emitted */
};

void smtp_data_init(struct smtp_data *d);

/*
 * Consume bytes from in. Unstuffed message bytes go to out, which must
 * hold 2 * inlen + 4 bytes (a bare CR or LF is written as CRLF); *outlen
 * gets their count. Returns the number of input bytes consumed; when
 * the end marker is found, *done is set and the bytes after it are not
 * consumed (pipelined commands).
 */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen,
    char *out, size_t *outlen, int *done);

#endif
