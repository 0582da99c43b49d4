/*
 * tests/fuzz/fuzz_smtp_bdat.c - libFuzzer target: BDAT's argument and
 * chunk scanner. The input's first line is the BDAT argument; the next
 * byte picks a chunk length, and the rest is the message, scanned in
 * chunks of that length as smtp_bdat.c scans reads. What must hold: the
 * output (closed as finish() closes it) has CR LF as its only line end,
 * the flags and the output are the same however the text is cut into
 * chunks, and a message with no bare CR/LF passes through unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_bdat_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Scan text in chunks of step octets into out (room for 2 * len + 2). */
static size_t
scan_all(const char *text, size_t len, size_t step, char *out,
    struct bdat_scan *st)
{
	size_t o = 0;

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		size_t w = smtp_bdat_scan(st, text + i, n, out + o);
		if (w < n || w > 2 * n)
			abort();
		o += w;
	}
	if (o > 0) {
		const char *close = smtp_bdat_scan_close(st);
		memcpy(out + o, close, strlen(close));
		o += strlen(close);
	}
	return o;
}

static void
check_crlf(const char *out, size_t o)
{
	for (size_t i = 0; i < o; i++) {
		if (out[i] == '\r' && (i + 1 == o || out[i + 1] != '\n'))
			abort();
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			abort();
	}
	if (o > 0 && (o < 2 || out[o - 1] != '\n'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t alen = nl ? (size_t)(nl - data) : size;
	char *arg = malloc(alen + 1);
	unsigned long long chunk;
	int last;

	if (arg == NULL)
		abort();
	memcpy(arg, data, alen);
	arg[alen] = '\0';
	if (smtp_bdat_parse(arg, &chunk, &last) == 0 && (last != 0 && last != 1))
		abort();
	free(arg);
	if (nl == NULL || (size_t)(nl - data) + 2 > size)
		return 0;

	size_t step = (size_t)nl[1] + 1;
	const char *text = (const char *)nl + 2;
	size_t len = size - alen - 2;
	char *a = malloc(2 * len + 2), *b = malloc(2 * len + 2);
	struct bdat_scan sa, sb;
	if (a == NULL || b == NULL)
		abort();
	size_t na = scan_all(text, len, step, a, &sa);
	size_t nb = scan_all(text, len, len ? len : 1, b, &sb);
	check_crlf(a, na);
	if (na != nb || memcmp(a, b, na) != 0 || sa.bare != sb.bare ||
	    sa.long_line != sb.long_line)
		abort();
	/* Nothing bare: the text itself, closed with CRLF if left open. */
	if (!sa.bare && (na < len || memcmp(a, text, len) != 0))
		abort();
	free(a);
	free(b);
	return 0;
}
