/*
 * tests/fuzz/fuzz_dkim_canon.c - libFuzzer target: the DKIM body and
 * header canonicalisers (modules/dkim/dkim_canon.c) alone. The first two
 * input octets choose a piece size and an l= limit; the rest is a body
 * fed in pieces of that size (pieces must give what the whole gives),
 * canonicalised again with the limit (the output must be the first
 * limit octets of the whole, RFC 6376 3.4.5), and, as one header field,
 * canonicalised relaxed twice (relaxed is idempotent: a second pass
 * changes nothing). It aborts on any difference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/dkim/dkim_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	char *p;
	size_t len, cap;
};

static void
out_write(void *arg, const char *data, size_t len)
{
	struct out *o = arg;

	if (o->len + len > o->cap) {
		o->cap = 2 * (o->len + len) + 64;
		if ((o->p = realloc(o->p, o->cap)) == NULL)
			abort();
	}
	memcpy(o->p + o->len, data, len);
	o->len += len;
}

static void
body(enum dkim_canon mode, const char *b, size_t len, size_t piece,
    int has_limit, uint64_t limit, struct out *o)
{
	static struct dkim_body_canon c;
	struct dkim_sink sink = { out_write, o };

	dkim_body_init(&c, mode, &sink, has_limit, limit);
	for (size_t at = 0; at < len; at += piece)
		dkim_body_feed(&c, b + at, len - at < piece ? len - at : piece);
	dkim_body_finish(&c);
}

static void
check_body(const char *b, size_t len, size_t piece, uint64_t limit)
{
	for (int mode = DKIM_SIMPLE; mode <= DKIM_RELAXED; mode++) {
		struct out whole = { 0 }, pieces = { 0 }, limited = { 0 };

		body(mode, b, len, len ? len : 1, 0, 0, &whole);
		body(mode, b, len, piece, 0, 0, &pieces);
		body(mode, b, len, piece, 1, limit, &limited);
		if (whole.len != pieces.len ||
		    memcmp(whole.p ? whole.p : "", pieces.p ? pieces.p : "", whole.len) != 0)
			abort();
		if (limited.len != (whole.len < limit ? whole.len : limit) ||
		    memcmp(whole.p ? whole.p : "", limited.p ? limited.p : "", limited.len) != 0)
			abort();
		free(whole.p);
		free(pieces.p);
		free(limited.p);
	}
}

static void
check_header(const char *h, size_t len)
{
	struct out once = { 0 }, twice = { 0 };
	struct dkim_sink s1 = { out_write, &once }, s2 = { out_write, &twice };

	/* only a field: a name, a colon, no empty line */
	if (len == 0 || memchr(h, ':', len) == NULL || h[0] == ':' ||
	    h[0] == ' ' || h[0] == '\t' || h[0] == '\r' || h[0] == '\n')
		return;
	for (size_t i = 0; i + 1 < len; i++)
		if (h[i] == '\n' && h[i + 1] != ' ' && h[i + 1] != '\t')
			return;
	dkim_header_canon(DKIM_RELAXED, h, len, &s1);
	dkim_header_canon(DKIM_RELAXED, once.p, once.len, &s2);
	if (once.len != twice.len || memcmp(once.p, twice.p, once.len) != 0)
		abort();
	free(once.p);
	free(twice.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t piece;
	uint64_t limit;

	if (size < 2)
		return 0;
	piece = (size_t)data[0] % 17 + 1;
	limit = data[1];
	check_body((const char *)data + 2, size - 2, piece, limit);
	check_header((const char *)data + 2, size - 2);
	return 0;
}
