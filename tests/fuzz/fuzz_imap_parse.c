/*
 * tests/fuzz/fuzz_imap_parse.c - libFuzzer target: the IMAP command
 * parser (every argument, lists included, must carry readable text:
 * issue 15's crash came from a list's uninitialised .s), the reply tag
 * of a refused line, sequence sets, and the MIME code (headers,
 * ENVELOPE, BODYSTRUCTURE, sections) on arbitrary input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read every argument's text: a stray pointer shows up under ASan. */
static size_t
walk(const struct imap_arg *a, size_t n)
{
	size_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		if (a[i].s == NULL)
			abort();
		sum += strlen(a[i].s);
		if (a[i].type == IMAP_LIST)
			sum += walk(a[i].list, a[i].nlist);
	}
	return sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_cmd *cmd = calloc(1, sizeof(*cmd));
	char *text = malloc(size + 1), *out, *owned;
	const char *why, *start;
	struct imap_range r[64];
	size_t n, len;
	int plus;

	memcpy(text, data, size);
	text[size] = '\0';
	if (imap_parse(text, size, cmd, &why) == 0 && (cmd->nargs > IMAP_MAX_ARGS ||
	    walk(cmd->args, cmd->nargs) > 2 * size + 16))
		abort();
	imap_cmd_free(cmd);
	char tag[64];
	imap_tag_of(text, size, tag, sizeof(tag));
	imap_literal_size(text, size, &plus);
	imap_seqset(text, 1000, r, 64, &n);
	imap_bodystructure(text, size, 1, &out, &len);
	free(out);
	imap_envelope(text, size, &out, &len);
	free(out);
	static const char *const sections[] = { "", "1", "2.1", "1.MIME", "TEXT", "HEADER",
	    "HEADER.FIELDS (SUBJECT)", "HEADER.FIELDS.NOT (FROM)" };
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (imap_section(text, size, sections[i], &start, &len, &owned) == 0) {
			if (!owned && (start < text || start + len > text + size))
				abort();
			free(owned);
		}
	free(text);
	free(cmd);
	return 0;
}
