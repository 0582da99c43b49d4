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

/*
 * Initialise OpenSSL without its exit handler: the daemon's first
 * OpenSSL call, before modules load. By default OpenSSL frees its
 * globals and per-thread state from an atexit() handler, which runs
 * while the daemon's detached session, queue and pickup threads may
 * still be using OpenSSL or exiting (their thread-exit destructor then
 * frees state the handler already freed: a double free at shutdown).
 * OpenSSL forbids OPENSSL_cleanup() while other threads use it, so the
 * daemon calls mp_tls_cleanup() only once they have all stopped.
 * Returns 0, or -1 when OpenSSL was already initialised another way.
 */
int mp_tls_init(void);

/*
 * The daemon's threads that may use OpenSSL (session, queue and pickup
 * threads; modules such as dkim use libcrypto in them too). They are
 * detached, so they are counted instead of joined: the creator calls
 * mp_tls_thread_starting() before pthread_create() (and
 * mp_tls_thread_not_started() if that fails); the thread calls
 * mp_tls_thread_done() as its last act, which frees its OpenSSL
 * thread state at once (OPENSSL_thread_stop) rather than in the
 * thread-exit destructor, so nothing of OpenSSL's runs in it afterwards.
 */
void mp_tls_thread_starting(void);
void mp_tls_thread_not_started(void);
void mp_tls_thread_done(void);

/*
 * At shutdown, once the threads were told to stop: wait up to
 * timeout_ms for every counted thread to be done, then free the
 * contexts and OpenSSL's globals. A thread still busy (a client that
 * keeps its session open) makes it skip the clean-up: the process is
 * exiting and freeing under a running thread is the bug this avoids.
 * Returns 0 when cleaned up, -1 when skipped.
 */
int mp_tls_cleanup(SSL_CTX *server_ctx, SSL_CTX *client_ctx, int timeout_ms);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
void mp_tls_describe(SSL *ssl, char *out, size_t size);

#endif
