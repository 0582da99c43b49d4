/*
 * core/tls.c - OpenSSL set-up (see tls.h).
 *
 * Policy: TLS 1.2 and 1.3 only; for 1.2, ECDHE with AEAD ciphers only
 * (Mozilla's "intermediate" profile); no renegotiation, no compression,
 * no session tickets across restarts (stateless tickets rotate with the
 * process). The self-signed certificate is an ECDSA P-256 key with the
 * hostname as CN and subjectAltName, valid for ten years: enough for
 * opportunistic TLS between MTAs and for tests; admins install a real one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "util.h"

#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

int
mp_tls_init(void)
{
	return OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL) == 1 ? 0 : -1;
}

static _Atomic int openssl_threads;	/* counted threads not yet done */

void mp_tls_thread_starting(void) { atomic_fetch_add(&openssl_threads, 1); }
void mp_tls_thread_not_started(void) { atomic_fetch_sub(&openssl_threads, 1); }

void
mp_tls_thread_done(void)
{
	OPENSSL_thread_stop();
	atomic_fetch_sub(&openssl_threads, 1);
}

int
mp_tls_cleanup(SSL_CTX *server_ctx, SSL_CTX *client_ctx, int timeout_ms)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };

	for (int waited = 0; atomic_load(&openssl_threads) > 0; waited += 10) {
		if (waited >= timeout_ms)
			return -1;
		nanosleep(&tick, NULL);
	}
	SSL_CTX_free(server_ctx);	/* NULL is fine */
	SSL_CTX_free(client_ctx);
	OPENSSL_cleanup();
	return 0;
}

static void
ssl_error(char *err, size_t errsize, const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errsize, "%s: %s", what, e ? buf : "unknown error");
	ERR_clear_error();
}

static int
add_san(X509 *x, const char *hostname)
{
	char san[300];
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	snprintf(san, sizeof(san), "DNS:%s", hostname);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
	if (ext == NULL)
		return -1;
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return 0;
}

static X509 *
make_cert(EVP_PKEY *pkey, const char *hostname)
{
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (x == NULL)
		return NULL;
	if (fd >= 0) {
		if (read(fd, serial, sizeof(serial)) != (ssize_t)sizeof(serial))
			memset(serial, 1, sizeof(serial));
		close(fd);
	}
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (add_san(x, hostname) < 0 || X509_sign(x, pkey, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int
write_pem(const char *path, mode_t mode, EVP_PKEY *pkey, X509 *x)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ok;

	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = pkey ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)
	    : PEM_write_X509(f, x);
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static void
parent_dir(const char *path, char *out, size_t size)
{
	char *slash;

	mp_strlcpy(out, path, size);
	slash = strrchr(out, '/');
	if (slash && slash != out)
		*slash = '\0';
	else
		mp_strlcpy(out, ".", size);
}

int
mp_tls_make_self_signed(const char *cert, const char *key,
    const char *hostname, char *err, size_t errsize)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = pkey ? make_cert(pkey, hostname) : NULL;
	char dir[4096];
	int rc = -1;

	if (x == NULL) {
		ssl_error(err, errsize, "cannot generate a self-signed certificate");
		goto out;
	}
	parent_dir(cert, dir, sizeof(dir));
	mp_mkdir_p(dir, 0700);
	parent_dir(key, dir, sizeof(dir));
	mp_mkdir_p(dir, 0700);
	if (write_pem(key, 0600, pkey, NULL) < 0 ||
	    write_pem(cert, 0644, NULL, x) < 0) {
		snprintf(err, errsize, "cannot write %s or %s: %s", cert, key,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

SSL_CTX *
mp_tls_server_ctx(const char *cert, const char *key, const char *hostname,
    char *err, size_t errsize)
{
	SSL_CTX *ctx;

	if (access(cert, F_OK) != 0 && errno == ENOENT &&
	    mp_tls_make_self_signed(cert, key, hostname, err, errsize) < 0)
		return NULL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ssl_error(err, errsize, "cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		char what[4200];
		snprintf(what, sizeof(what), "tls.cert %s", cert);
		ssl_error(err, errsize, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char what[4200];
		snprintf(what, sizeof(what), "tls.key %s", key);
		ssl_error(err, errsize, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *
mp_tls_client_ctx(char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		ssl_error(err, errsize, "cannot create TLS client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

void
mp_tls_describe(SSL *ssl, char *out, size_t size)
{
	int alg_bits = 0;
	int bits = SSL_get_cipher_bits(ssl, &alg_bits);

	snprintf(out, size, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl), bits, alg_bits);
}
