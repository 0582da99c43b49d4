/*
 * tests/fuzz/fuzz_smtp_reply.c - libFuzzer target: the SMTP client's
 * reply parser and the SASL base64 decoder, on what a hostile server or
 * client may send.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_client.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), enh[16], out[512];
	const char *text;
	int code, more;

	memcpy(line, data, size);
	line[size] = '\0';
	if (smtp_client_parse_reply(line, &code, &more, enh, sizeof(enh), &text) == 0 &&
	    (code < 0 || code > 999 || text < line || text > line + size))
		abort();
	int n = mp_base64_decode(line, out, sizeof(out));
	if (n >= (int)sizeof(out))
		abort();
	free(line);
	return 0;
}
