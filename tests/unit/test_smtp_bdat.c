/*
 * tests/unit/test_smtp_bdat.c - BDAT's pure parts (core/smtp_bdat_scan.c):
 * the "size [LAST]" argument and the chunk scanner, whose line state
 * must carry across chunk boundaries (a CR at the end of one chunk and
 * its LF at the start of the next is one line end, not two bare ones).
 */
#include <string.h>

#include "smtp_bdat_scan.h"
#include "test.h"

static size_t
scan_in_chunks(const char *text, size_t step, char *out, struct bdat_scan *st)
{
	size_t len = strlen(text), o = 0;

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < len; i += step)
		o += smtp_bdat_scan(st, text + i, len - i < step ? len - i : step, out + o);
	out[o] = '\0';
	return o;
}

int
main(void)
{
	unsigned long long size;
	int last;
	char out[4096], line[1200];
	struct bdat_scan st;

	CHECK("size", smtp_bdat_parse("20", &size, &last) == 0 && size == 20 && !last);
	CHECK("size LAST (any case)", smtp_bdat_parse("0 last", &size, &last) == 0 &&
	    size == 0 && last);
	CHECK("19 digits accepted", smtp_bdat_parse("1234567890123456789", &size, &last) == 0);
	CHECK("20 digits refused", smtp_bdat_parse("12345678901234567890", &size, &last) < 0);
	CHECK("no size refused", smtp_bdat_parse("LAST", &size, &last) < 0);
	CHECK("junk after the size refused", smtp_bdat_parse("5 MORE", &size, &last) < 0);

	scan_in_chunks("a\r\nb\r\n", 2, out, &st);
	CHECK("CR LF cut between chunks is one line end", !st.bare &&
	    strcmp(out, "a\r\nb\r\n") == 0);
	scan_in_chunks("a\nb\rc", 1, out, &st);
	CHECK("bare LF and CR made CRLF and flagged", st.bare &&
	    strcmp(out, "a\r\nb\r\nc") == 0);
	CHECK("an open last line is closed with CRLF", strcmp(smtp_bdat_scan_close(&st), "\r\n") == 0);
	scan_in_chunks("a\r", 1, out, &st);
	CHECK("a last CR is closed with LF, and is bare", strcmp(smtp_bdat_scan_close(&st), "\n") == 0 && st.bare);
	memset(line, 'x', 999);
	strcpy(line + 999, "\r\n");
	scan_in_chunks(line, 7, out, &st);
	CHECK("a 999-octet line is long, across chunks", st.long_line);
	strcpy(line + 998, "\r\n");
	scan_in_chunks(line, 7, out, &st);
	CHECK("998 octets is not", !st.long_line);
	TEST_EXIT();
}
