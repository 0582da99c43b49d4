/*
 * modules/dns_mx/dns_parse.h - a DNS response parser (RFC 1035 4.1):
 * pure, bounds-checked on every read, so it is unit-tested and fuzzed
 * on hostile packets. dns_parse() fills fixed records for MX and address
 * lookups; dns_parse_packed() packs any supported type the way
 * resolve.h's struct mp_dns_answer describes, for the generic lookup.
 */
#ifndef MERPATI_DNS_PARSE_H
#define MERPATI_DNS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_RR 64

enum {
	DNS_T_A = 1, DNS_T_SOA = 6, DNS_T_PTR = 12, DNS_T_MX = 15,
	DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_TLSA = 52
};
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

/* What dns_parse_packed() found besides the records. */
struct dns_packed {
	int rcode;
	int truncated;		/* TC: retry over TCP */
	int authenticated;	/* AD: the resolver validated it (RFC 4035 3.2.3) */
	uint32_t ttl;		/* lowest TTL of the kept records */
	uint32_t negative_ttl;	/* SOA minimum from the authority section */
	uint32_t count;		/* records packed */
	int cut;		/* 1: records that did not fit were left out */
	size_t used;		/* bytes of buf used */
};

/*
 * Parse msg, packing the answer records of type want (A, AAAA, MX, PTR,
 * TXT or TLSA) into buf (size bytes) as resolve.h describes: each a
 * 2-byte length and its data, names lower case with '.', '\\' and
 * unprintable octets escaped (RFC 1035 5.1). Records that do not fit are
 * left out (cut). 0, or -1 when the packet or one of those records is
 * malformed. Work is bounded by len: every record read consumes octets.
 */
int dns_parse_packed(const unsigned char *msg, size_t len, uint16_t want,
    unsigned char *buf, size_t size, struct dns_packed *out);

/*
 * The enum mp_dns_status of a lookup: parsed is dns_parse_packed()'s
 * result (or -1 when no answer came), then the packet's RCODE and count.
 */
int dns_status_of(int parsed, int rcode, uint32_t count);

#endif
