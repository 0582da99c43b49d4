/*
 * tests/fuzz/fuzz_dns_parse.c - libFuzzer target: the DNS answer parser
 * on arbitrary packets, for every record type it extracts: the fixed
 * records of MX and address lookups, and the packed records of the
 * generic lookup (A, AAAA, MX, PTR, TXT, TLSA) into a roomy buffer and
 * a small one, whose layout must walk exactly as mp_dns_next reads it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <merpati/util.h>

#include "../../modules/dns_mx/dns_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fixed(const uint8_t *data, size_t size, struct dns_answer *a)
{
	static const uint16_t types[] = { DNS_T_MX, DNS_T_A, DNS_T_AAAA };

	for (size_t t = 0; t < 3; t++)
		if (dns_parse(data, size, types[t], a) == 0) {
			if (a->n > DNS_MAX_RR)
				abort();
			for (size_t i = 0; i < a->n; i++)
				if (strlen(a->rr[i].name) > 253)
					abort();
		}
}

/* The packed records of one type into buf (room octets): within room,
 * and walking them finds exactly count records using every octet. */
static void
packed(const uint8_t *data, size_t size, uint16_t type, unsigned char *buf,
    size_t room)
{
	struct dns_packed pk;
	struct mp_dns_answer a = { .struct_size = sizeof(a) };
	const unsigned char *rec;
	size_t off = 0, len;
	uint32_t n = 0;

	if (dns_parse_packed(data, size, type, buf, room, &pk) < 0)
		return;
	if (pk.used > room || (pk.count == 0 && pk.used != 0))
		abort();
	a.used = pk.used;
	while (mp_dns_next(buf, &a, &off, &rec, &len)) {
		if ((type == DNS_T_A && len != 4) || (type == DNS_T_AAAA && len != 16) ||
		    (type == DNS_T_TLSA && len < 3) || (type == DNS_T_MX && len < 2) ||
		    ((type == DNS_T_PTR || type == DNS_T_MX) && len > 1020))
			abort();
		n++;
	}
	if (n != pk.count || off != pk.used)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX,
	    DNS_T_PTR, DNS_T_TXT, DNS_T_TLSA };
	struct dns_answer *a = malloc(sizeof(*a));
	unsigned char *buf = malloc(65536);

	if (a && buf) {
		fixed(data, size, a);
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			packed(data, size, types[t], buf, 65536);
			packed(data, size, types[t], buf, 40);
		}
	}
	free(a);
	free(buf);
	return 0;
}
