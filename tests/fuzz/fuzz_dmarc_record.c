/*
 * tests/fuzz/fuzz_dmarc_record.c - libFuzzer target: the DMARC record
 * parser (modules/dmarc/dmarc_record.c) on "v=DMARC1;" + input and on
 * the raw input, and the organisational domain of the input read as a
 * domain against a small Public Suffix List. A parsed record has pct in
 * 0..100 and known policies; an org domain is a suffix of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "modules/dmarc/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
parse(const char *text)
{
	struct dmarc_record r;
	const char *err = NULL;

	if (dmarc_record_parse(text, &r, &err) < 0) {
		if (err == NULL)
			abort();
		return;
	}
	if (r.pct < 0 || r.pct > 100 || r.p > DMARC_POLICY_REJECT || r.sp > DMARC_POLICY_REJECT)
		abort();
	dmarc_record_clear(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dmarc_psl *psl;
	const char *err;

	if (psl == NULL && dmarc_psl_load_text("com\nco.uk\nuk\n*.ck\n!www.ck\n", &psl, &err) < 0)
		abort();
	char *text = malloc(size + 10);
	if (text == NULL)
		return 0;
	memcpy(text, "v=DMARC1;", 9);
	memcpy(text + 9, data, size);
	text[size + 9] = '\0';
	parse(text);
	parse(text + 9);

	char org[256];
	const char *d = text + 9;
	size_t dlen = strlen(d);
	if (dmarc_org_domain(psl, d, org, sizeof(org)) == 0) {
		size_t olen = strlen(org);
		if (dlen > 0 && d[dlen - 1] == '.')
			dlen--;
		if (olen == 0 || olen > dlen || strncasecmp(d + dlen - olen, org, olen) != 0)
			abort();
	}
	free(text);
	return 0;
}
