/*
 * tests/fuzz/fuzz_imap_mime.c - libFuzzer target: the MIME tree,
 * BODY[section] and BODYSTRUCTURE (modules/imap/imap_mime.c,
 * imap_bodystructure.c). The input's first line is a section, the rest
 * the message. Sections must stay inside the message, part counts
 * within their limits, the leaf walk inside the message too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct span {
	const char *msg;
	size_t len;
};

static void
inside(const struct span *s, const char *p, size_t n)
{
	if (p < s->msg || p > s->msg + s->len || n > (size_t)(s->msg + s->len - p))
		abort();
}

static void
leaf(void *arg, const char *hdr, size_t hlen, const char *body, size_t blen)
{
	inside(arg, hdr, hlen);
	inside(arg, body, blen);
}

static void
try_section(const char *sec_text, const char *msg, size_t len, const struct imap_mime *t)
{
	struct imap_section sec;
	const char *start;
	size_t slen;
	char *owned;
	struct span s = { msg, len };

	if (imap_section_parse(sec_text, &sec) < 0)
		return;
	if (imap_mime_section(msg, len, t, &sec, &start, &slen, &owned) && owned == NULL)
		inside(&s, start, slen);
	free(owned);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size < 256 ? size : 256);
	size_t slen = nl ? (size_t)(nl - data) : 0;
	char section[257];
	size_t len = nl ? size - slen - 1 : size;
	char *msg = malloc(len ? len : 1), *out;
	struct span s = { msg, len };

	memcpy(section, data, slen);
	section[slen] = '\0';
	if (len)
		memcpy(msg, nl ? nl + 1 : data, len);
	struct imap_mime *t = imap_mime_parse(msg, len);
	if (t == NULL || t->n > MIME_MAX_PARTS)
		abort();
	for (size_t i = 0; i < t->n; i++) {
		inside(&s, msg + t->parts[i].hdr, t->parts[i].hdr_len);
		inside(&s, msg + t->parts[i].body, t->parts[i].body_len);
	}
	try_section(section, msg, len, t);
	static const char *const fixed[] = { "1", "2.1", "1.1.1", "1.MIME", "2.HEADER",
	    "1.2.TEXT", "HEADER.FIELDS (SUBJECT \"from\")", "1.HEADER.FIELDS.NOT (X)" };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		try_section(fixed[i], msg, len, t);
	for (int ext = 0; ext < 2; ext++) {
		imap_mime_bodystructure(t, ext, &out, &slen);
		if (out == NULL || strlen(out) > slen)
			abort();
		free(out);
	}
	imap_mime_leaves(msg, len, leaf, &s);
	imap_mime_free(t);
	free(msg);
	return 0;
}
