/*
 * dkim_crypto.h - what dkim_sign.c and dkim_verify.c share: the two
 * hashes of RFC 6376 3.7 and the signature primitives over OpenSSL 3.
 * Private to modules/dkim.
 */
#ifndef MERPATI_DKIM_CRYPTO_H
#define MERPATI_DKIM_CRYPTO_H

#include <openssl/evp.h>

#include "dkim_lib.h"

/* SHA-256 of the canonical body (l= applied when has_limit). Returns 0
 * or -1 (OpenSSL failed). *canon_len_r: canonical octets hashed. */
int dkim_hash_body(enum dkim_canon mode, const char *body, size_t len,
    int has_limit, uint64_t limit, unsigned char out[32],
    uint64_t *canon_len_r);

/*
 * SHA-256 of the header data: for each name of names (in order) the
 * last field of that name not used yet, bottom up (5.4.2; a name with
 * no field left adds nothing), then sig_field canonicalised without its
 * final CRLF. Returns 0 or -1.
 */
int dkim_hash_headers(enum dkim_canon mode, const char *const *names,
    size_t name_count, const struct dkim_field *fields, size_t field_count,
    const char *sig_field, size_t sig_len, unsigned char out[32]);

/* Sign or verify a header hash with alg's scheme (RSASSA-PKCS1-v1_5
 * SHA-256, or PureEdDSA Ed25519 over the hash: RFC 8463 3). */
int dkim_sign_digest(EVP_PKEY *key, enum dkim_alg alg,
    const unsigned char digest[32], unsigned char *sig, size_t *sig_len);
int dkim_verify_digest(EVP_PKEY *key, enum dkim_alg alg,
    const unsigned char digest[32], const unsigned char *sig, size_t sig_len);

/* The public key of a key record (SubjectPublicKeyInfo or PKCS#1 for
 * RSA, 32 raw octets for Ed25519), or NULL. */
EVP_PKEY *dkim_public_key(enum dkim_alg alg, const unsigned char *der,
    size_t len);

/* Base64 of data, NUL-terminated, malloc()ed; NULL when out of memory. */
char *dkim_base64_encode(const unsigned char *data, size_t len);

#endif
