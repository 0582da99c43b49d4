/*
 * merpati/resolve.h - the resolve kind: every remote name lookup (MX, A,
 * AAAA) goes through it; nothing else in merpati resolves remote names.
 * May run concurrently.
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
};

#endif
