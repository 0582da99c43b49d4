/*
 * modules/common/store_message.h - message bodies as the SQL stores
 * keep them (store_message.c): stored in wire form (CRLF), served
 * whole or header only, and delivered with the trace headers local
 * delivery adds.
 */
#ifndef MERPATI_COMMON_STORE_MESSAGE_H
#define MERPATI_COMMON_STORE_MESSAGE_H

#include <stddef.h>

#include <merpati/merpati.h>

/* The header section's length read from r: up to and including the
 * empty line, or size when there is none. */
long long store_header_length(struct mp_reader *r, long long size);

/* in[0..n) with every bare LF made CRLF, into out (room for 2 * n);
 * *prev is the octet before in[0] and becomes the last one. The length
 * written. */
size_t store_crlf(const char *in, size_t n, char *out, char *prev);

/* A delivery's message: Return-Path and Delivered-To, then the queued
 * message, read through reader. */
struct store_delivery {
	struct mp_reader reader;
	struct mp_reader *inner;
	char head[1024];
	size_t hlen, hpos;
};
void store_delivery_init(struct store_delivery *d, const struct mp_envelope *env,
    const char *rcpt, struct mp_reader *msg);
/* status from a delivery's result (rc, err may be NULL) by the store
 * named module: 250, or 451 naming module and err; MP_OK, or
 * MP_TEMPFAIL (a store failure is never permanent). */
int store_delivery_status(struct mp_status *status, const char *module, int rc,
    const char *err);

#endif
