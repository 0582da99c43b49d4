/*
 * tests/fuzz/fuzz_smtp_data.c - libFuzzer target: the DATA state machine
 * fed in chunks whose size comes from the first input byte. Checks the
 * invariants the session relies on: output bounded by 2 * input + 4,
 * the end is found only after CRLF "." CRLF, and chunking never changes
 * the result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
run(const char *in, size_t len, size_t step, char *out, int *done,
    struct smtp_data *d)
{
	size_t pos = 0, total = 0;

	smtp_data_init(d);
	*done = 0;
	while (pos < len && !*done) {
		size_t n = step < len - pos ? step : len - pos, outlen;
		size_t used = smtp_data_feed(d, in + pos, n, out + total, &outlen, done);
		if (outlen > 2 * n + 4 || used > n || used == 0)
			abort();
		total += outlen;
		pos += used;
	}
	return total;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data a, b;
	char *out1, *out2;
	size_t n1, n2, step;
	int done1, done2;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	out1 = malloc(2 * size + 8);
	out2 = malloc(2 * size + 8);
	n1 = run((const char *)data, size, size ? size : 1, out1, &done1, &a);
	n2 = run((const char *)data, size, step, out2, &done2, &b);
	if (n1 != n2 || done1 != done2 || memcmp(out1, out2, n1) != 0 ||
	    a.bare_eol != b.bare_eol || a.size != n1)
		abort();
	if (done1 && !a.bare_eol && n1 > 0 && (n1 < 2 || memcmp(out1 + n1 - 2, "\r\n", 2) != 0))
		abort();	/* a clean message always ends with CRLF */
	free(out1);
	free(out2);
	return 0;
}
