/*
 * core/tls.h - OpenSSL set-up: the server context (TLS 1.2+, sane
 * ciphers), a self-signed certificate made at first start when the
 * configured one does not exist, and the client context for outbound.
 */
#ifndef MERPATI_TLS_H
#define MERPATI_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/*
 * Load cert and key (PEM) into a new server context, generating a
 * self-signed pair for hostname first if cert does not exist. Returns
 * NULL with the reason in err.
 */
SSL_CTX *mp_tls_server_ctx(const char *cert, const char *key,
    const char *hostname, char *err, size_t errsize);

/* Write a new self-signed certificate and key; 0 or -1 with err. */
int mp_tls_make_self_signed(const char *cert, const char *key,
    const char *hostname, char *err, size_t errsize);

/*
 * The outbound context: TLS 1.2+, no certificate verification (the
 * opportunistic TLS of RFC 3207 protects against passive listeners only;
 * DANE/MTA-STS would add verification).
 */
SSL_CTX *mp_tls_client_ctx(char *err, size_t errsize);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
void mp_tls_describe(SSL *ssl, char *out, size_t size);

#endif
