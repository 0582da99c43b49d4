/*
 * dkim_crypto.c - DKIM's use of OpenSSL 3: body and header hashes
 * (RFC 6376 3.7), RSA-SHA256 and Ed25519-SHA256 (RFC 8463) signatures
 * over the header hash, public keys from key records, private keys from
 * PEM files, and key generation for `merpati dkim keygen`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkim_crypto.h"

static void
digest_sink(void *arg, const char *data, size_t len)
{
	EVP_DigestUpdate(arg, data, len);
}

int
dkim_hash_body(enum dkim_canon mode, const char *body, size_t len,
    int has_limit, uint64_t limit, unsigned char out[32],
    uint64_t *canon_len_r)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct dkim_body_canon *c = malloc(sizeof(*c));
	int ok = md && c && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

	if (ok) {
		struct dkim_sink sink = { digest_sink, md };
		dkim_body_init(c, mode, &sink, has_limit, limit);
		dkim_body_feed(c, body, len);
		dkim_body_finish(c);
		*canon_len_r = c->written;
		ok = EVP_DigestFinal_ex(md, out, NULL) == 1;
	}
	free(c);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* Collects a short canonical field in memory (the signature field). */
struct membuf {
	char data[8192];
	size_t len;
	int overflow;
};

static void
membuf_sink(void *arg, const char *data, size_t len)
{
	struct membuf *m = arg;

	if (len > sizeof(m->data) - m->len) {
		m->overflow = 1;
		return;
	}
	memcpy(m->data + m->len, data, len);
	m->len += len;
}

int
dkim_hash_headers(enum dkim_canon mode, const char *const *names,
    size_t name_count, const struct dkim_field *fields, size_t field_count,
    const char *sig_field, size_t sig_len, unsigned char out[32])
{
	unsigned char used[DKIM_MAX_FIELDS] = { 0 };
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct dkim_sink sink = { digest_sink, md };
	struct membuf *sig = malloc(sizeof(*sig));
	int ok = md && sig && field_count <= DKIM_MAX_FIELDS &&
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

	for (size_t i = 0; ok && i < name_count; i++) {
		for (size_t j = field_count; j-- > 0;) {
			if (!used[j] && dkim_field_is(&fields[j], names[i])) {
				used[j] = 1;
				dkim_header_canon(mode, fields[j].start, fields[j].len, &sink);
				break;
			}
		}
	}
	if (ok) {
		struct dkim_sink msink = { membuf_sink, sig };
		sig->len = 0;
		sig->overflow = 0;
		dkim_header_canon(mode, sig_field, sig_len, &msink);
		ok = !sig->overflow && sig->len >= 2 &&
		    EVP_DigestUpdate(md, sig->data, sig->len - 2) == 1 &&
		    EVP_DigestFinal_ex(md, out, NULL) == 1;
	}
	free(sig);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

int
dkim_sign_digest(EVP_PKEY *key, enum dkim_alg alg,
    const unsigned char digest[32], unsigned char *sig, size_t *sig_len)
{
	int ok;

	if (alg == DKIM_ED25519_SHA256) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
		    EVP_DigestSign(md, sig, sig_len, digest, 32) == 1;
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
		ok = ctx && EVP_PKEY_sign_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(ctx, sig, sig_len, digest, 32) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	return ok ? 0 : -1;
}

int
dkim_verify_digest(EVP_PKEY *key, enum dkim_alg alg,
    const unsigned char digest[32], const unsigned char *sig, size_t sig_len)
{
	int ok;

	if (alg == DKIM_ED25519_SHA256) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
		    EVP_DigestVerify(md, sig, sig_len, digest, 32) == 1;
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
		ok = ctx && EVP_PKEY_verify_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		    EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	return ok ? 0 : -1;
}

EVP_PKEY *
dkim_public_key(enum dkim_alg alg, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *key;

	if (alg == DKIM_ED25519_SHA256)
		return len == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
		    NULL, der, len) : NULL;
	key = d2i_PUBKEY(NULL, &p, (long)len);
	if (key == NULL) {
		/* RFC 6376 3.6.1 names the PKCS#1 RSAPublicKey form too */
		p = der;
		key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	}
	if (key && EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

char *
dkim_base64_encode(const unsigned char *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* ---- private keys ---- */

int
dkim_signer_load(struct dkim_signer *signer, const char *domain,
    const char *selector, const char *key_path, const char **error_r)
{
	FILE *f;
	EVP_PKEY *key;

	memset(signer, 0, sizeof(*signer));
	if (strlen(domain) >= sizeof(signer->domain) ||
	    strlen(selector) >= sizeof(signer->selector)) {
		*error_r = "domain or selector too long";
		return -1;
	}
	if ((f = fopen(key_path, "r")) == NULL) {
		*error_r = "cannot open the key file";
		return -1;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL) {
		*error_r = "the key file holds no PEM private key";
		return -1;
	}
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
		signer->alg = DKIM_ED25519_SHA256;
	} else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bits(key) >= 1024) {
		signer->alg = DKIM_RSA_SHA256;
	} else {
		EVP_PKEY_free(key);
		*error_r = "the key is neither RSA of 1024 bits or more nor Ed25519";
		return -1;
	}
	snprintf(signer->domain, sizeof(signer->domain), "%s", domain);
	snprintf(signer->selector, sizeof(signer->selector), "%s", selector);
	signer->header_canon = DKIM_RELAXED;
	signer->body_canon = DKIM_RELAXED;
	signer->key = key;
	return 0;
}

void
dkim_signer_free(struct dkim_signer *signer)
{
	EVP_PKEY_free(signer->key);
	signer->key = NULL;
}

/* ---- key generation ---- */

/* The p= value: SubjectPublicKeyInfo for RSA, the raw key for Ed25519. */
static char *
public_key_b64(EVP_PKEY *key, enum dkim_alg alg)
{
	unsigned char raw[32], *der = NULL;
	size_t raw_len = sizeof(raw);
	char *out = NULL;
	int len;

	if (alg == DKIM_ED25519_SHA256) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &raw_len) == 1)
			out = dkim_base64_encode(raw, raw_len);
		return out;
	}
	len = i2d_PUBKEY(key, &der);
	if (len > 0)
		out = dkim_base64_encode(der, (size_t)len);
	OPENSSL_free(der);
	return out;
}

static int
write_private_key(EVP_PKEY *key, const char *path, const char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f;
	int ok;

	if (fd < 0) {
		*error_r = errno == EEXIST ? "the key file exists already" :
		    "cannot create the key file";
		return -1;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(path);
		*error_r = "cannot create the key file";
		return -1;
	}
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	ok = fclose(f) == 0 && ok;
	if (!ok) {
		unlink(path);
		*error_r = "cannot write the key file";
		return -1;
	}
	return 0;
}

int
dkim_keygen(enum dkim_alg alg, int bits, const char *path, char **txt_r,
    const char **error_r)
{
	EVP_PKEY *key;
	char *p64;
	size_t size;

	if (alg == DKIM_RSA_SHA256 && bits == 0)
		bits = 2048;
	if (alg == DKIM_RSA_SHA256 && (bits < 1024 || bits > 8192)) {
		*error_r = "RSA keys are 1024 to 8192 bits";
		return -1;
	}
	key = alg == DKIM_ED25519_SHA256 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (key == NULL) {
		*error_r = "key generation failed";
		return -1;
	}
	if (write_private_key(key, path, error_r) < 0) {
		EVP_PKEY_free(key);
		return -1;
	}
	p64 = public_key_b64(key, alg);
	EVP_PKEY_free(key);
	size = p64 ? strlen(p64) + 40 : 0;
	if (p64 == NULL || (*txt_r = malloc(size)) == NULL) {
		free(p64);
		*error_r = "out of memory";
		return -1;
	}
	snprintf(*txt_r, size, "v=DKIM1; k=%s; p=%s",
	    alg == DKIM_ED25519_SHA256 ? "ed25519" : "rsa", p64);
	free(p64);
	return 0;
}

char *
dkim_txt_zone_line(const char *selector, const char *domain, const char *txt)
{
	size_t len = strlen(txt), chunks = (len + 249) / 250;
	size_t size = strlen(selector) + strlen(domain) + len + 5 * chunks + 64;
	char *out = malloc(size);
	size_t n;

	if (out == NULL)
		return NULL;
	n = (size_t)snprintf(out, size, "%s._domainkey.%s. IN TXT (", selector, domain);
	/* RFC 1035 3.3.14: one character-string holds at most 255 octets;
	 * the strings of a record are joined when read (RFC 6376 3.6.2.2) */
	for (size_t i = 0; i < len; i += 250)
		n += (size_t)snprintf(out + n, size - n, " \"%.250s\"", txt + i);
	snprintf(out + n, size - n, " )");
	return out;
}
