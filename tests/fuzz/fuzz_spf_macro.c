/*
 * tests/fuzz/fuzz_spf_macro.c - libFuzzer target: SPF macro expansion
 * (modules/spf/spf_macro.c). The first byte picks the mode (explanation
 * or domain, IPv4 or IPv6) and the output size; the rest is the
 * macro-string. Expansion must either be refused or give a NUL-ended
 * string within the buffer, no longer than 253 octets for a domain, and
 * agree with the syntax-only mode the parser uses.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/spf/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *
validated(void *ctx)
{
	(void)ctx;
	return "mx.Example.test";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool explain = data[0] & 1, v6 = data[0] & 2;
	size_t out_size = 16 + (size_t)(data[0] >> 2) * 16;
	struct spf_macro_env env = {
		.sender = "strong-bad+x@email.example.com", .local = "strong-bad+x",
		.sender_domain = "email.example.com", .domain = "a.b.c.d.e.example.com",
		.helo = "mx.example.org", .receiver = "rx.example.net", .now = 1700000000,
		.validated_name = validated,
	};
	spf_ip_parse(v6 ? "2001:db8::cb01" : "192.0.2.3", &env.ip);
	char *out = malloc(out_size);
	const char *err = NULL;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	if (out == NULL)
		return 0;
	int r = spf_macro_expand(in, len, &env, explain, !explain, out, out_size, &err);
	if (r == 0 && (strlen(out) >= out_size || (!explain && strlen(out) > 253)))
		abort();
	if (r < 0 && err == NULL)
		abort();
	/* syntax-only mode (the parser's) refuses only what expansion refuses */
	int syntax = spf_macro_expand(in, len, NULL, false, false, NULL, 0, &err);
	if (!explain && syntax < 0 && r == 0)
		abort();
	free(out);
	return 0;
}
