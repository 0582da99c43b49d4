/*
 * tests/fuzz/fuzz_imap_decode.c - libFuzzer target: SEARCH's decoders
 * (modules/imap/imap_decode.c) on arbitrary input: base64,
 * quoted-printable in body and header mode, RFC 2047 words, charset
 * conversion (the charset named by the input's first line) and the
 * case fold, with their output bounds checked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The charset named by the first line of the input (at most 40 bytes). */
static void
charset_of(const char *text, size_t size, char *out, size_t cap)
{
	size_t n = 0;

	while (n < size && n + 1 < cap && text[n] != '\n' && text[n] != '\0')
		n++;
	memcpy(out, text, n);
	out[n] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char *out = malloc(size + 4), charset[41];
	size_t n;

	if (imap_base64_decode(in, size, out) > size * 3 / 4 + 3)
		abort();
	if (imap_qp_decode(in, size, out, 0) > size || imap_qp_decode(in, size, out, 1) > size)
		abort();
	memcpy(out, in, size);
	if (imap_casefold(out, size, out) > size)
		abort();
	char *w = imap_decode_words(in, size, &n);
	if (w == NULL || strlen(w) > n)
		abort();
	free(w);
	charset_of(in, size, charset, sizeof(charset));
	char *u = imap_to_utf8(charset, in, size, &n);
	if (u == NULL || u[n] != '\0')
		abort();
	free(u);
	free(out);
	return 0;
}
