/*
 * core/smtp_bdat_scan.c - BDAT's argument and chunk scanner: CR LF is
 * the only line end (a bare CR or LF is flagged and normalised), line
 * lengths are counted across chunk boundaries, since a chunk may end in
 * the middle of a line or between a CR and its LF.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_bdat_scan.h"

int
smtp_bdat_parse(const char *arg, unsigned long long *size, int *last)
{
	char *end;

	if (!isdigit((unsigned char)arg[0]) || strspn(arg, "0123456789") > 19)
		return -1;
	*size = strtoull(arg, &end, 10);
	while (*end == ' ')
		end++;
	*last = strcasecmp(end, "LAST") == 0;
	return (*end == '\0' || *last) ? 0 : -1;
}

size_t
smtp_bdat_scan(struct bdat_scan *st, const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (st->prev == '\r' && c != '\n') {
			st->bare = 1;
			out[o++] = '\n';
			st->line = 0;
		}
		if (c == '\n' && st->prev != '\r') {
			st->bare = 1;
			out[o++] = '\r';
		}
		if (c == '\n')
			st->line = 0;
		else if (c != '\r' && ++st->line > BDAT_MAX_TEXT_LINE)
			st->long_line = 1;
		out[o++] = c;
		st->prev = c;
	}
	return o;
}

const char *
smtp_bdat_scan_close(struct bdat_scan *st)
{
	if (st->prev == '\n')
		return "";
	if (st->prev == '\r') {
		st->bare = 1;
		return "\n";
	}
	return "\r\n";
}
