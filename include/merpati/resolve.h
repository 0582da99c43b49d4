/*
 * merpati/resolve.h - the resolve kind: every remote name lookup (MX, A,
 * AAAA, and since 2.1 TXT, PTR and TLSA for any module through the
 * host's dns_lookup) goes through it; nothing else in merpati resolves
 * remote names. May run concurrently.
 */
#ifndef MERPATI_RESOLVE_H
#define MERPATI_RESOLVE_H

#include <sys/socket.h>
#include <merpati/module.h>

/* One mail exchanger. mx() gets an array whose elements the host has
 * sized: step through it with MP_ELEM and write members only. */
struct mp_mx {
	uint32_t struct_size;
	uint16_t preference;
	char host[256];
};

/* ---- generic lookups (since 2.1) ----------------------------------------- */

/* Record types lookup() answers (their DNS type numbers). */
enum mp_dns_type {
	MP_DNS_A = 1,
	MP_DNS_PTR = 12,
	MP_DNS_MX = 15,
	MP_DNS_TXT = 16,
	MP_DNS_AAAA = 28,
	MP_DNS_TLSA = 52
};

/* What a lookup found, as SPF (RFC 7208 4.3, 4.6.4, 5) and DMARC need
 * it told apart. */
enum mp_dns_status {
	MP_DNS_FOUND = 0,	/* one or more records of the type */
	MP_DNS_NXDOMAIN,	/* the name does not exist (RCODE 3) */
	MP_DNS_NODATA,		/* the name exists, no record of the type */
	MP_DNS_TEMPFAIL,	/* timeout, SERVFAIL, no resolver */
	MP_DNS_PERMFAIL		/* any other RCODE; a malformed answer */
};

/*
 * The answer to one lookup, an out-parameter the caller sizes. Records
 * are packed into the caller's buffer one after the other, each as a
 * 2-byte big-endian length and then its data (step with mp_dns_next in
 * util.h):
 *   A      4 bytes            AAAA  16 bytes
 *   MX     2-byte big-endian preference, then the exchange name
 *   PTR    the name
 *   TXT    the record's strings joined without separator (RFC 7208 3.3)
 *   TLSA   usage, selector, matching type (1 byte each), then the data
 * Names are in presentation form, lower case, without the trailing dot
 * and without a NUL.
 */
struct mp_dns_answer {
	uint32_t struct_size;
	uint32_t status;	/* enum mp_dns_status */
	uint32_t authenticated;	/* 1: the resolver set AD (DNSSEC validated) */
	uint32_t ttl;		/* lowest TTL, or the negative-caching TTL */
	uint32_t count;		/* records in the buffer */
	uint32_t truncated;	/* 1: records that did not fit were left out */
	size_t used;		/* bytes of the buffer used */
};

struct mp_resolve_ops {
	uint32_t struct_size;
	/*
	 * Mail exchangers for domain, best first. MP_OK with *n_r entries
	 * (the implicit MX when the domain has only addresses),
	 * MP_PERMFAIL for NXDOMAIN or a null MX (status_r says which),
	 * MP_TEMPFAIL for SERVFAIL or timeouts.
	 */
	int (*mx)(void *ctx, const char *domain, struct mp_mx *out,
	    size_t max, size_t *n_r, struct mp_status *status_r);
	/* Addresses (A and AAAA) of a host; same results as mx(). */
	int (*addresses)(void *ctx, const char *host,
	    struct sockaddr_storage *out, size_t max, size_t *n_r,
	    struct mp_status *status_r);

	/*
	 * Since 2.1; may be NULL. Records of one type (enum mp_dns_type)
	 * at name, packed into buf (size bytes) as struct mp_dns_answer
	 * describes, cached for their TTL as mx() answers are. MP_OK when
	 * status is FOUND, MP_TEMPFAIL for TEMPFAIL, MP_PERMFAIL for the
	 * others; answer_r is filled in every case.
	 */
	int (*lookup)(void *ctx, const char *name, int type,
	    unsigned char *buf, size_t size, struct mp_dns_answer *answer_r);
};

#endif
