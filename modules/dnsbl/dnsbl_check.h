/*
 * modules/dnsbl/dnsbl_check.h - the dnsbl module's decisions, apart from
 * the host: the names a blocklist is asked for (reversed IPv4 and IPv6
 * addresses, sender domains), which answers count for a list, allow-list
 * CIDR matching, and the weighted score over every list (as Postfix's
 * postscreen_dnsbl_sites sums them). Pure but for the lookup function it
 * is given, so unit tests hand it a fake DNS.
 */
#ifndef MERPATI_DNSBL_CHECK_H
#define MERPATI_DNSBL_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <merpati/resolve.h>

#define DNSBL_MAX_LISTS 32
#define DNSBL_MAX_CODES 32

enum dnsbl_kind {
	DNSBL_IP,	/* the client's address, reversed (zen, b.barracudacentral) */
	DNSBL_DOMAIN	/* the sender's domain (Spamhaus DBL, URIBL-style lists) */
};

struct dnsbl_list {
	char zone[254];
	int kind;		/* enum dnsbl_kind */
	long long weight;
	size_t ncodes;		/* 0: the kind's default range counts */
	uint32_t codes[DNSBL_MAX_CODES];	/* IPv4, host byte order */
};

struct dnsbl_cidr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
};

/* The host's dns_lookup, or a test's fake. */
typedef int dnsbl_lookup_fn(void *arg, const char *name, int type,
    unsigned char *buf, size_t size, struct mp_dns_answer *answer_r);

/*
 * The name to ask zone about ip: "4.3.2.1.zone" for 1.2.3.4 (also when
 * written as ::ffff:1.2.3.4), the 32 reversed nibbles for IPv6 (RFC 5782
 * 2.1, 2.4). 0, or -1 when ip does not parse or the name is too long.
 */
int dnsbl_reverse_name(const char *ip, const char *zone, char *out,
    size_t size);

/*
 * The name to ask a domain list about a sender address or domain:
 * "domain.zone", lower case (RFC 5782 2.2). -1 for the null sender, an
 * address literal, or a name that does not fit.
 */
int dnsbl_domain_name(const char *sender, const char *zone, char *out,
    size_t size);

/* "a.b.c.d" into host byte order. 0 or -1. */
int dnsbl_code_parse(const char *text, uint32_t *code_r);

/* 1 when answer code counts as a listing on l: one of its codes, or by
 * default 127.0.0.x for address lists and 127.0.1.x for domain lists
 * (Spamhaus DBL's range); 127.255.255.x (a list's "you may not query")
 * is in neither. */
int dnsbl_code_counts(const struct dnsbl_list *l, uint32_t code);

/* "10.0.0.0/8", "2001:db8::/32", or one address. 0 or -1. */
int dnsbl_cidr_parse(const char *text, struct dnsbl_cidr *out);
/* 1 when ip (text; ::ffff:a.b.c.d counts as IPv4) is inside c. */
int dnsbl_cidr_match(const struct dnsbl_cidr *c, const char *ip);

struct dnsbl_score {
	long long score;
	char listed[512];	/* "zen.example (127.0.0.2), ..." */
	unsigned failed;	/* lists that did not answer (counted as not listing) */
};

/*
 * Ask every list of the kind about key (an address or a sender) and add
 * the weight of each that lists it, once per list, to *s (which may
 * already hold a score). Lists that fail count for nothing: a blocklist
 * outage must not refuse mail.
 */
void dnsbl_check(const struct dnsbl_list *lists, size_t n, int kind,
    const char *key, dnsbl_lookup_fn *lookup, void *arg,
    struct dnsbl_score *s);

#endif
