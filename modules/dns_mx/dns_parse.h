/*
 * modules/dns_mx/dns_parse.h - a DNS response parser (RFC 1035 4.1):
 * pure, bounds-checked on every read, so it is unit-tested and fuzzed
 * on hostile packets.
 */
#ifndef MERPATI_DNS_PARSE_H
#define MERPATI_DNS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_RR 64

enum { DNS_T_A = 1, DNS_T_SOA = 6, DNS_T_MX = 15, DNS_T_AAAA = 28 };
enum { DNS_RCODE_OK = 0, DNS_RCODE_SERVFAIL = 2, DNS_RCODE_NXDOMAIN = 3 };

struct dns_rr {
	uint16_t type;
	uint32_t ttl;
	uint16_t preference;	/* MX */
	char name[256];		/* MX exchange ("" for the root: null MX) */
	unsigned char addr[16];	/* A (4 bytes) or AAAA (16) */
};

struct dns_answer {
	int rcode;
	int truncated;		/* TC: retry over TCP */
	uint32_t negative_ttl;	/* SOA minimum from the authority section */
	size_t n;
	struct dns_rr rr[DNS_MAX_RR];
};

/*
 * Parse msg, keeping answer records of type want (MX, A or AAAA) and
 * the SOA minimum. 0, or -1 when the packet is malformed.
 */
int dns_parse(const unsigned char *msg, size_t len, uint16_t want,
    struct dns_answer *out);

/*
 * Read a (possibly compressed) name at *pos into out as "a.b.c" ("" for
 * the root); *pos moves past it. 0, or -1 when malformed or too long.
 */
int dns_name(const unsigned char *msg, size_t len, size_t *pos, char *out,
    size_t size);

#endif
