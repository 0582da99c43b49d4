/*
 * tests/fuzz/fuzz_imap_address.c - libFuzzer target: the RFC 5322
 * address parser (modules/imap/imap_address.c) on arbitrary field
 * values, and ENVELOPE over an arbitrary header. Every reported string
 * must fit in the input, and the count must respect IMAP_ADDR_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(void *arg, const struct imap_addr *a)
{
	size_t size = *(const size_t *)arg;
	const char *parts[] = { a->name, a->route, a->mailbox, a->host };

	for (size_t i = 0; i < 4; i++)
		if (parts[i] && strlen(parts[i]) > size)
			abort();
	if (a->kind == IMAP_ADDR_GROUP && a->name == NULL)
		abort();
	if (a->kind == IMAP_ADDR_GROUP_END && (a->name || a->mailbox || a->host))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1), *out;
	size_t len;

	if (size)
		memcpy(copy, data, size);	/* not NUL-terminated on purpose */
	if (imap_addresses(copy, size, check, &size) > IMAP_ADDR_MAX)
		abort();
	imap_envelope(copy, size, &out, &len);
	if (out == NULL || strlen(out) != len)
		abort();
	free(out);
	free(copy);
	return 0;
}
