/*
 * tests/fuzz/fuzz_dkim_header.c - libFuzzer target: the DKIM text code
 * (modules/dkim/dkim_tags.c, dkim_canon.c) on arbitrary messages. The
 * input is split into fields; each DKIM-Signature value goes through the
 * signature parser, the whole input through the tag-list and key record
 * parsers, every field through both header canonicalisations and the
 * body through both body canonicalisations, whole and in two pieces.
 * It aborts when an output breaks what the RFC promises (relaxed forms
 * have no WSP before CRLF, no folded lines, no WSP runs) or when the
 * pieces give another body than the whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/dkim/dkim_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Running summary of canonical output, and the last two octets. */
struct summary {
	uint64_t hash, len;
	char prev, last;
	int bad;	/* an invariant of relaxed output broke */
	int relaxed;
};

static void
summary_write(void *arg, const char *p, size_t n)
{
	struct summary *s = arg;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (s->relaxed && c == ' ' && (s->last == ' ' || s->last == '\t'))
			s->bad = 1;	/* a WSP run survived */
		if (s->relaxed && c == '\t')
			s->bad = 1;	/* WSP becomes SP */
		if (s->relaxed && c == '\r' && i + 1 < n && p[i + 1] == '\n' &&
		    s->last == ' ')
			s->bad = 1;	/* WSP before a line end */
		s->hash = (s->hash ^ (unsigned char)c) * 1099511628211ull;
		s->prev = s->last;
		s->last = c;
	}
	s->len += n;
}

static void
check_header(const struct dkim_field *f)
{
	for (int mode = DKIM_SIMPLE; mode <= DKIM_RELAXED; mode++) {
		struct summary s = { .relaxed = mode == DKIM_RELAXED };
		struct dkim_sink sink = { summary_write, &s };
		dkim_header_canon(mode, f->start, f->len, &sink);
		if (s.bad || s.len < 2 || s.prev != '\r' || s.last != '\n')
			abort();
	}
}

static void
body_summary(enum dkim_canon mode, const char *b, size_t len, size_t cut,
    struct summary *s)
{
	static struct dkim_body_canon c;
	struct dkim_sink sink = { summary_write, s };

	memset(s, 0, sizeof(*s));
	s->relaxed = mode == DKIM_RELAXED;
	dkim_body_init(&c, mode, &sink, 0, 0);
	dkim_body_feed(&c, b, cut);
	dkim_body_feed(&c, b + cut, len - cut);
	dkim_body_finish(&c);
}

static void
check_body(const char *b, size_t len, size_t cut)
{
	for (int mode = DKIM_SIMPLE; mode <= DKIM_RELAXED; mode++) {
		struct summary whole, pieces;
		body_summary(mode, b, len, 0, &whole);
		body_summary(mode, b, len, cut, &pieces);
		if (whole.hash != pieces.hash || whole.len != pieces.len || whole.bad)
			abort();
		/* non-empty output ends in CRLF; simple output is never empty */
		if ((whole.len > 0 && (whole.prev != '\r' || whole.last != '\n')) ||
		    (mode == DKIM_SIMPLE && whole.len == 0))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *body, *error;
	struct dkim_field *fields = malloc(64 * sizeof(*fields));
	struct dkim_tag tags[DKIM_MAX_TAGS];
	static struct dkim_sig sig;
	static struct dkim_key_record key;
	size_t n, body_len;

	if (dkim_tags_parse(text, size, tags, DKIM_MAX_TAGS, &n, &error) == 0) {
		for (size_t i = 0; i < n; i++)
			if (tags[i].value + tags[i].value_len > text + size)
				abort();
	}
	(void)dkim_key_record_parse(text, size, &key, &error);
	if (key.key_len > sizeof(key.key))
		abort();
	if (dkim_msg_split(text, size, fields, 64, &n, &body, &body_len, &error) == 0) {
		for (size_t i = 0; i < n; i++) {
			check_header(&fields[i]);
			if (dkim_field_is(&fields[i], "dkim-signature")) {
				const char *colon = memchr(fields[i].start, ':', fields[i].len);
				size_t vlen = fields[i].len - (size_t)(colon + 1 - fields[i].start);
				if (dkim_sig_parse(colon + 1, vlen, &sig, &error) == 0 &&
				    (sig.signed_count == 0 || sig.b_len == 0))
					abort();
			}
		}
		check_body(body, body_len, body_len / 2);
	}
	free(fields);
	return 0;
}
