/*
 * core/smtp_bdat_scan.h - the pure parts of BDAT (RFC 3030, core only):
 * the "size [LAST]" argument and the scanner that carries line state
 * across chunks. No I/O, so tests/fuzz/fuzz_smtp_bdat.c runs exactly
 * what smtp_bdat.c runs.
 */
#ifndef MERPATI_SMTP_BDAT_SCAN_H
#define MERPATI_SMTP_BDAT_SCAN_H

#include <stddef.h>

/* The longest text line RFC 5322 allows, without its CRLF. */
#define BDAT_MAX_TEXT_LINE 998

/* Line state carried from one chunk to the next; all zero at the start. */
struct bdat_scan {
	char prev;		/* the last octet scanned */
	size_t line;		/* octets in the current line so far */
	int bare;		/* a bare CR or LF was seen */
	int long_line;		/* a line over BDAT_MAX_TEXT_LINE */
};

/* "N" or "N LAST" (N at most 19 digits). 0, or -1 on bad syntax. */
int smtp_bdat_parse(const char *arg, unsigned long long *size, int *last);

/* Copy n octets of chunk into out (room for 2 * n) with every bare CR
 * or LF made CRLF, updating st; the number of octets written. */
size_t smtp_bdat_scan(struct bdat_scan *st, const char *in, size_t n, char *out);

/* What closes a message whose last line is left open: "", "\n" after a
 * CR (a bare CR, so st->bare is set) or "\r\n". */
const char *smtp_bdat_scan_close(struct bdat_scan *st);

#endif
