/*
 * dkim_lib.h - the DKIM engine (RFC 6376, RFC 8463 for Ed25519) behind the
 * dkim module: the tag=value parser, the two canonicalisations, signing,
 * verifying and key generation. Private to modules/dkim; the unit tests,
 * the fuzz target and tests/tools/dkim_tool.c include it too.
 *
 * It is not the module glue: it knows nothing of the host, of hooks or of
 * DNS. Keys are looked up through a caller's TXT callback, so the
 * resolver is plugged in by whoever calls dkim_verify().
 *
 * The files split into text-only code (dkim_tags.c, dkim_canon.c,
 * dkim_msg.c: no OpenSSL, fuzzable alone) and crypto code (dkim_crypto.c,
 * dkim_sign.c, dkim_verify.c: OpenSSL 3 EVP).
 */
#ifndef MERPATI_DKIM_LIB_H
#define MERPATI_DKIM_LIB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Results as RFC 8601 2.7.1 names them for method "dkim". */
enum dkim_result {
	DKIM_NONE = 0,
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_POLICY,	/* valid syntax, refused by local policy (l=, expired) */
	DKIM_NEUTRAL,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};
const char *dkim_result_name(enum dkim_result result);

enum dkim_alg { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };
enum dkim_canon { DKIM_SIMPLE, DKIM_RELAXED };
const char *dkim_alg_name(enum dkim_alg alg);

/* ---- tag=value lists (RFC 6376 3.2) ---- */

#define DKIM_MAX_TAGS 32

/* name and value point into the parsed text; value may contain FWS
 * between its words (b=, bh=, p=, h=), never at its ends. */
struct dkim_tag {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * Parse a tag-list (the value of a DKIM-Signature field, or a key
 * record). Folding may be CRLF or bare LF followed by WSP. Returns 0 and
 * the tags, or -1 with *error_r (syntax error, duplicate tag, more than
 * max tags).
 */
int dkim_tags_parse(const char *text, size_t len, struct dkim_tag *tags,
    size_t max, size_t *count_r, const char **error_r);

/* The tag named name (NUL-terminated), or NULL. */
const struct dkim_tag *dkim_tag_find(const struct dkim_tag *tags,
    size_t count, const char *name);

/*
 * Decode base64 that may carry FWS anywhere (RFC 6376 2.4). Returns
 * the decoded length, or -1 on a bad character, bad padding or more
 * than size output octets.
 */
long dkim_base64_decode(const char *text, size_t len, unsigned char *out,
    size_t size);

/* ---- DKIM-Signature (RFC 6376 3.5) ---- */

#define DKIM_MAX_SIGNED 64		/* names in h= */
#define DKIM_MAX_SIG_OCTETS 1024	/* b= of an 8192-bit RSA key */
#define DKIM_MAX_DOMAIN 254

struct dkim_sig {
	enum dkim_alg alg;
	enum dkim_canon header_canon, body_canon;
	char domain[DKIM_MAX_DOMAIN];	/* d=, lower case */
	char selector[DKIM_MAX_DOMAIN];	/* s= */
	char auid[DKIM_MAX_DOMAIN + 65];	/* i=, or "@" d= when absent */
	unsigned char b[DKIM_MAX_SIG_OCTETS];
	size_t b_len;
	unsigned char bh[32];
	/* h=: names, lower case, NUL-terminated inside names_buf */
	const char *signed_names[DKIM_MAX_SIGNED];
	size_t signed_count;
	char names_buf[1024];
	int has_length;
	uint64_t length;		/* l= */
	int has_timestamp, has_expiry;
	uint64_t timestamp, expiry;	/* t=, x= */
};

/*
 * Parse and validate the value of a DKIM-Signature field: required tags
 * (v=1 a b bh d h s), supported a= and c=, h= containing From, i= inside
 * d=, q= dns/txt, x= not before t=. Returns 0, or -1 with *error_r: the
 * signature is then a permerror.
 */
int dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig,
    const char **error_r);

/* ---- key records (RFC 6376 3.6.1, RFC 8463) ---- */

#define DKIM_MAX_KEY_OCTETS 2048

struct dkim_key_record {
	enum dkim_alg alg;	/* from k= (rsa by default) */
	unsigned char key[DKIM_MAX_KEY_OCTETS];
	size_t key_len;		/* 0: revoked (empty p=) */
	int testing;		/* t=y */
	int strict;		/* t=s: i= must be exactly d= */
};

/* Parse a key record. Returns 0, or -1 with *error_r (a permerror). */
int dkim_key_record_parse(const char *text, size_t len,
    struct dkim_key_record *key, const char **error_r);

/* ---- messages and canonicalisation (RFC 6376 3.4) ---- */

/* Where canonical octets go (a digest, or a buffer in tests). */
struct dkim_sink {
	void (*write)(void *arg, const char *data, size_t len);
	void *arg;
};

/* One header field of a message: start .. start+len, with its line
 * ends (CRLF or LF) and continuation lines; name_len octets of name. */
struct dkim_field {
	const char *start;
	size_t len;
	size_t name_len;
};

#define DKIM_MAX_FIELDS 1000

/*
 * Split msg into header fields and body. The header ends at the first
 * empty line; a message without one has an empty body. Returns 0, or -1
 * with *error_r (a line that is neither a field nor a continuation,
 * more than max fields).
 */
int dkim_msg_split(const char *msg, size_t len, struct dkim_field *fields,
    size_t max, size_t *count_r, const char **body_r, size_t *body_len_r,
    const char **error_r);

/* 1 if the field's name equals name (NUL-terminated), any case. */
int dkim_field_is(const struct dkim_field *field, const char *name);

/* Write one header field in canonical form, ending in CRLF. */
void dkim_header_canon(enum dkim_canon mode, const char *field, size_t len,
    const struct dkim_sink *sink);

/*
 * The body canonicaliser, fed in pieces of any size (bounded memory):
 * line ends CRLF or LF become CRLF, trailing empty lines go, and with
 * l= only the first limit canonical octets reach the sink.
 */
struct dkim_body_canon {
	enum dkim_canon mode;
	struct dkim_sink sink;
	int has_limit;
	uint64_t limit;
	uint64_t written;	/* canonical octets passed to the sink */
	uint64_t empty_lines;	/* held back: they may be trailing */
	int pending_cr;		/* a CR that may start a CRLF */
	int pending_wsp;	/* relaxed: a WSP run not yet written */
	int line_open;		/* the current line has content */
	char buf[4096];
	size_t buf_len;
};

void dkim_body_init(struct dkim_body_canon *c, enum dkim_canon mode,
    const struct dkim_sink *sink, int has_limit, uint64_t limit);
void dkim_body_feed(struct dkim_body_canon *c, const char *data, size_t len);
void dkim_body_finish(struct dkim_body_canon *c);

/* ---- signing (dkim_sign.c) ---- */

struct dkim_signer {
	enum dkim_alg alg;		/* from the key's type */
	enum dkim_canon header_canon, body_canon;
	char domain[DKIM_MAX_DOMAIN];
	char selector[DKIM_MAX_DOMAIN];
	void *key;			/* EVP_PKEY * */
};

/*
 * Load a PEM private key (RSA of at least 1024 bits, or Ed25519) for
 * domain and selector; relaxed/relaxed. Returns 0, or -1 with *error_r.
 */
int dkim_signer_load(struct dkim_signer *signer, const char *domain,
    const char *selector, const char *key_path, const char **error_r);
void dkim_signer_free(struct dkim_signer *signer);

/*
 * Sign msg: returns 0 and *header_r (malloc()ed, "DKIM-Signature: ..."
 * folded, ending in CRLF, to put before the message), or -1 with
 * *error_r. now is the t= value. Signed headers: the default list
 * (dkim_sign.c) as present, with From, To and Subject over-signed.
 */
int dkim_sign(const struct dkim_signer *signer, const char *msg, size_t len,
    time_t now, char **header_r, const char **error_r);

/* ---- verifying (dkim_verify.c) ---- */

/*
 * The key lookup: name is "selector._domainkey.domain". Returns 1 with
 * the record (strings of a multi-string TXT joined) in out, 0 when there
 * is none (NXDOMAIN or no TXT), -1 on a temporary error (the result is
 * temperror), -2 on a permanent DNS error.
 */
typedef int (*dkim_txt_fn)(void *ctx, const char *name, char *out,
    size_t size);

struct dkim_verify_opts {
	int allow_length;	/* accept l= (default 0: DKIM_POLICY) */
	int min_rsa_bits;	/* 0: 1024 (RFC 8301) */
	time_t now;		/* 0: time(NULL) */
	size_t max_sigs;	/* 0: 8; later ones are not checked */
};

struct dkim_verdict {
	enum dkim_result result;
	char domain[DKIM_MAX_DOMAIN];
	char selector[DKIM_MAX_DOMAIN];
	char auid[DKIM_MAX_DOMAIN + 65];
	enum dkim_alg alg;
	int key_bits;
	int testing;		/* the key record says t=y */
	char reason[128];	/* why, when not pass */
	char b_prefix[9];	/* first 8 characters of b= (RFC 6008) */
};

/*
 * Verify every DKIM-Signature of msg (up to opts->max_sigs and max).
 * Returns the number of verdicts written (0: unsigned, result none).
 */
size_t dkim_verify(const char *msg, size_t len,
    const struct dkim_verify_opts *opts, dkim_txt_fn txt, void *txt_ctx,
    struct dkim_verdict *verdicts, size_t max);

/*
 * The "dkim=" results of RFC 8601 for an Authentication-Results field,
 * one per verdict ("dkim=none" for none), separated by ";" and a fold:
 *   dkim=pass (2048-bit rsa key) header.d=example.test header.s=s1
 *   header.a=rsa-sha256 header.b=AbCdEfGh
 * Returns the full length; out holds at most size - 1 of it.
 */
size_t dkim_auth_results(const struct dkim_verdict *verdicts, size_t n,
    char *out, size_t size);

/* ---- key generation (dkim_crypto.c) ---- */

/*
 * Make a key (RSA of bits, 0 = 2048; or Ed25519), write it as PKCS#8
 * PEM to path (created, mode 0600, never overwritten) and return the
 * TXT record text "v=DKIM1; k=...; p=..." in *txt_r (malloc()ed).
 * Returns 0, or -1 with *error_r.
 */
int dkim_keygen(enum dkim_alg alg, int bits, const char *path, char **txt_r,
    const char **error_r);

/*
 * The record as a zone-file line, its text cut into strings of at most
 * 250 octets (a TXT string holds 255):
 *   sel._domainkey.example.test. IN TXT ( "v=DKIM1; k=rsa; p=..." "..." )
 * malloc()ed; NULL when out of memory. The record text has no '"' or
 * '\\' (base64 and fixed tags), so nothing needs escaping.
 */
char *dkim_txt_zone_line(const char *selector, const char *domain,
    const char *txt);

#endif
