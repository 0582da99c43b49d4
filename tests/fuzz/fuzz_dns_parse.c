/*
 * tests/fuzz/fuzz_dns_parse.c - libFuzzer target: the DNS answer parser
 * on arbitrary packets, for every record type it extracts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/dns_mx/dns_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { DNS_T_MX, DNS_T_A, DNS_T_AAAA };
	struct dns_answer *a = malloc(sizeof(*a));

	for (size_t t = 0; t < 3; t++)
		if (dns_parse(data, size, types[t], a) == 0) {
			if (a->n > DNS_MAX_RR)
				abort();
			for (size_t i = 0; i < a->n; i++)
				if (strlen(a->rr[i].name) > 253)
					abort();
		}
	free(a);
	return 0;
}
