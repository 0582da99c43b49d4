/*
 * core/conn.h - buffered, timed I/O on one client connection, shared by
 * every protocol engine. Reads are bounded (line limit) and timed
 * (poll before read), so no client can hold a thread forever or make it
 * allocate without bound. TLS (OpenSSL) sits below the buffers: ssl
 * is NULL until STARTTLS or an implicit-TLS listener starts it.
 */
#ifndef MERPATI_CONN_H
#define MERPATI_CONN_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/ssl.h>
#include <merpati/module.h>

#define CONN_IN_SIZE 16384
#define CONN_OUT_SIZE 8192

struct conn {
	int fd;
	SSL *ssl;		/* NULL until TLS is up */
	int eof;
	size_t ipos, iend;
	size_t olen;
	char in[CONN_IN_SIZE];
	char out[CONN_OUT_SIZE];
};

enum conn_result {
	CONN_OK = 1,
	CONN_EOF = 0,
	CONN_ERROR = -1,	/* I/O error or timeout (errno ETIMEDOUT) */
	CONN_TOO_LONG = -2	/* line over the limit, skipped to its end */
};

void conn_init(struct conn *c, int fd, int timeout_ms);

/* Change the read/write timeout (e.g. longer inside DATA). */
void conn_set_timeout(struct conn *c, int timeout_ms);

/*
 * Start TLS as the server. Input buffered before the handshake is
 * thrown away first (the STARTTLS command-injection class of bugs).
 * 0, or -1 (handshake failed or timed out; the connection is unusable).
 */
int conn_start_tls(struct conn *c, SSL_CTX *ctx);

/* Start TLS as the client (outbound), with SNI name. 0 or -1. */
int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *sni);

/* Free the TLS state (after a final flush), not the socket. */
void conn_end(struct conn *c);

/*
 * Read one line ending in LF; the CRLF or LF is removed. max may exceed
 * the input buffer. A line longer than max - 1 is discarded up to its
 * LF and CONN_TOO_LONG returned, with its first max - 1 bytes left in
 * line (NUL-terminated) so a protocol can still quote its tag.
 * *len_r gets the length, which tells a caller about embedded NULs.
 */
int conn_read_line(struct conn *c, char *line, size_t max, size_t *len_r);

/* Bytes from the buffer, or one read(); 0 at EOF, -1 error/timeout. */
ssize_t conn_read_some(struct conn *c, char *buf, size_t max);

/* Input already buffered (pipelined commands waiting). */
size_t conn_pending(const struct conn *c);

/* Queue output; flushed when the buffer fills or by conn_flush. */
int conn_write(struct conn *c, const char *buf, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...) MP_PRINTF(2, 3);
int conn_flush(struct conn *c);

#endif
