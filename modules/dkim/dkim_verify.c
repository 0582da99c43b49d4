/*
 * dkim_verify.c - checking every DKIM-Signature field of a message (RFC
 * 6376 6): parse and validate it, fetch and parse the key record through
 * the caller's TXT callback, compare the body hash, then verify the
 * header hash. Each signature gets its own verdict with a reason; one
 * bad signature never hides a good one.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_crypto.h"

static enum dkim_result
verdict(struct dkim_verdict *v, enum dkim_result result, const char *reason)
{
	v->result = result;
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	return result;
}

/* The field's value (after the colon) without its final line end. */
static void
field_value(const struct dkim_field *f, const char **value_r, size_t *len_r)
{
	const char *colon = memchr(f->start, ':', f->len);
	size_t len = f->len - (size_t)(colon + 1 - f->start);

	if (len > 0 && colon[1 + len - 1] == '\n')
		len--;
	if (len > 0 && colon[1 + len - 1] == '\r')
		len--;
	*value_r = colon + 1;
	*len_r = len;
}

/*
 * The signature field with the b= value and the whitespace around it
 * removed (3.7), into out (the field is at most 8 KiB: DKIM_MAX_TAGS
 * bounded tags). Returns its length, or 0 when it does not fit.
 */
static size_t
strip_b_value(const struct dkim_field *f, char *out, size_t size)
{
	const char *value, *end = f->start + f->len, *from = NULL, *to;
	struct dkim_tag tags[DKIM_MAX_TAGS];
	const struct dkim_tag *b;
	const char *error;
	size_t vlen, n;

	field_value(f, &value, &vlen);
	if (dkim_tags_parse(value, vlen, tags, DKIM_MAX_TAGS, &n, &error) < 0 ||
	    (b = dkim_tag_find(tags, n, "b")) == NULL)
		return 0;
	from = memchr(b->name, '=', (size_t)(b->value - b->name) + 1);
	if (from == NULL)
		return 0;
	from++;
	to = b->value + b->value_len;
	while (to < value + vlen && *to != ';')
		to++;	/* only FWS can be between the value and ';' */
	if ((size_t)(from - f->start) + (size_t)(end - to) > size)
		return 0;
	memcpy(out, f->start, (size_t)(from - f->start));
	memcpy(out + (from - f->start), to, (size_t)(end - to));
	return (size_t)(from - f->start) + (size_t)(end - to);
}

/* The first 8 base64 characters of the b= value as written, for
 * header.b (RFC 6008); "" when the tag list does not parse. */
static void
b64_start(const char *value, size_t len, char out[9])
{
	struct dkim_tag tags[DKIM_MAX_TAGS];
	const struct dkim_tag *b;
	const char *error;
	size_t n, i = 0;

	if (dkim_tags_parse(value, len, tags, DKIM_MAX_TAGS, &n, &error) == 0 &&
	    (b = dkim_tag_find(tags, n, "b")) != NULL) {
		for (size_t j = 0; j < b->value_len && i < 8; j++)
			if (isalnum((unsigned char)b->value[j]) ||
			    b->value[j] == '+' || b->value[j] == '/')
				out[i++] = b->value[j];
	}
	out[i] = '\0';
}

/* Fetch and parse the key; on failure the verdict says why. */
static EVP_PKEY *
fetch_key(const struct dkim_sig *sig, dkim_txt_fn txt, void *ctx,
    const struct dkim_verify_opts *opts, struct dkim_verdict *v)
{
	char name[2 * DKIM_MAX_DOMAIN + 16], *record;
	struct dkim_key_record *key;
	const char *error;
	EVP_PKEY *pkey = NULL;
	int got;

	if (strlen(sig->selector) + strlen(sig->domain) + 13 > 255) {
		verdict(v, DKIM_PERMERROR, "key name longer than 255 octets");
		return NULL;
	}
	snprintf(name, sizeof(name), "%s._domainkey.%s", sig->selector, sig->domain);
	record = malloc(4096);
	key = malloc(sizeof(*key));
	if (record == NULL || key == NULL) {
		verdict(v, DKIM_TEMPERROR, "out of memory");
		goto out;
	}
	record[0] = '\0';
	got = txt(ctx, name, record, 4096);
	if (got < 0) {
		verdict(v, got == -1 ? DKIM_TEMPERROR : DKIM_PERMERROR,
		    got == -1 ? "key lookup failed temporarily" : "key lookup failed");
		goto out;
	}
	if (got == 0) {
		verdict(v, DKIM_PERMERROR, "no key record");
		goto out;
	}
	record[4095] = '\0';
	if (dkim_key_record_parse(record, strlen(record), key, &error) < 0) {
		verdict(v, DKIM_PERMERROR, error);
		goto out;
	}
	v->testing = key->testing;
	if (key->key_len == 0) {
		verdict(v, DKIM_PERMERROR, "key revoked");
		goto out;
	}
	if (key->alg != sig->alg) {
		verdict(v, DKIM_PERMERROR, "key type does not match a=");
		goto out;
	}
	if (key->strict && strcmp(strchr(sig->auid, '@') + 1, sig->domain) != 0) {
		verdict(v, DKIM_PERMERROR, "key t=s forbids an i= subdomain");
		goto out;
	}
	if ((pkey = dkim_public_key(key->alg, key->key, key->key_len)) == NULL) {
		verdict(v, DKIM_PERMERROR, "key record p= is not a public key");
		goto out;
	}
	v->key_bits = EVP_PKEY_get_bits(pkey);
	if (key->alg == DKIM_RSA_SHA256 && v->key_bits <
	    (opts->min_rsa_bits > 0 ? opts->min_rsa_bits : 1024)) {
		verdict(v, DKIM_PERMERROR, "RSA key too short");
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	free(record);
	free(key);
	return pkey;
}

/* Checks that need no DNS: l= policy, expiry. */
static int
local_policy(const struct dkim_sig *sig, const struct dkim_verify_opts *opts,
    struct dkim_verdict *v)
{
	time_t now = opts->now ? opts->now : time(NULL);

	if (sig->has_length && !opts->allow_length) {
		verdict(v, DKIM_POLICY, "l= (partial body) not accepted");
		return -1;
	}
	if (sig->has_expiry && (uint64_t)now > sig->expiry) {
		verdict(v, DKIM_POLICY, "signature expired (x=)");
		return -1;
	}
	return 0;
}

/* 1 if value has only the octets of a domain name (safe unquoted in a
 * report and in Authentication-Results). */
static int
plain(const char *value, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)value[i]) && !strchr(".-_", value[i]))
			return 0;
	return 1;
}

/* For the report of a signature that did not parse: d= and s= as
 * written, when the tag list itself is sound and they are plain text. */
static void
name_broken_signature(const char *value, size_t len, struct dkim_verdict *v)
{
	struct dkim_tag tags[DKIM_MAX_TAGS];
	const struct dkim_tag *d, *s;
	const char *error;
	size_t n;

	if (dkim_tags_parse(value, len, tags, DKIM_MAX_TAGS, &n, &error) < 0)
		return;
	d = dkim_tag_find(tags, n, "d");
	s = dkim_tag_find(tags, n, "s");
	if (d && d->value_len < sizeof(v->domain) && plain(d->value, d->value_len))
		snprintf(v->domain, sizeof(v->domain), "%.*s", (int)d->value_len, d->value);
	if (s && s->value_len < sizeof(v->selector) && plain(s->value, s->value_len))
		snprintf(v->selector, sizeof(v->selector), "%.*s", (int)s->value_len, s->value);
}

static enum dkim_result
verify_one(const struct dkim_field *f, const struct dkim_field *fields,
    size_t nfields, const char *body, size_t body_len,
    const struct dkim_verify_opts *opts, dkim_txt_fn txt, void *ctx,
    struct dkim_verdict *v)
{
	struct dkim_sig *sig = malloc(sizeof(*sig));
	char *stripped = malloc(8192);
	unsigned char bh[32], hh[32];
	const char *value, *error;
	size_t vlen, slen;
	uint64_t canon_len;
	EVP_PKEY *key = NULL;

	if (sig == NULL || stripped == NULL) {
		verdict(v, DKIM_TEMPERROR, "out of memory");
		goto out;
	}
	field_value(f, &value, &vlen);
	if (dkim_sig_parse(value, vlen, sig, &error) < 0) {
		name_broken_signature(value, vlen, v);
		verdict(v, DKIM_PERMERROR, error);
		goto out;
	}
	snprintf(v->domain, sizeof(v->domain), "%s", sig->domain);
	snprintf(v->selector, sizeof(v->selector), "%s", sig->selector);
	snprintf(v->auid, sizeof(v->auid), "%s", sig->auid);
	v->alg = sig->alg;
	b64_start(value, vlen, v->b_prefix);
	if (local_policy(sig, opts, v) < 0)
		goto out;
	if ((key = fetch_key(sig, txt, ctx, opts, v)) == NULL)
		goto out;
	if (dkim_hash_body(sig->body_canon, body, body_len, sig->has_length,
	    sig->length, bh, &canon_len) < 0) {
		verdict(v, DKIM_TEMPERROR, "hashing failed");
		goto out;
	}
	if (sig->has_length && canon_len < sig->length) {
		verdict(v, DKIM_PERMERROR, "l= is longer than the body");
		goto out;
	}
	if (memcmp(bh, sig->bh, sizeof(bh)) != 0) {
		verdict(v, DKIM_FAIL, "body hash did not verify");
		goto out;
	}
	if ((slen = strip_b_value(f, stripped, 8192)) == 0 ||
	    dkim_hash_headers(sig->header_canon, sig->signed_names,
	    sig->signed_count, fields, nfields, stripped, slen, hh) < 0) {
		verdict(v, DKIM_PERMERROR, "signature field too large");
		goto out;
	}
	if (dkim_verify_digest(key, sig->alg, hh, sig->b, sig->b_len) < 0) {
		verdict(v, DKIM_FAIL, "signature did not verify");
		goto out;
	}
	verdict(v, DKIM_PASS, "");
out:
	EVP_PKEY_free(key);
	free(sig);
	free(stripped);
	return v->result;
}

size_t
dkim_verify(const char *msg, size_t len, const struct dkim_verify_opts *opts,
    dkim_txt_fn txt, void *txt_ctx, struct dkim_verdict *verdicts, size_t max)
{
	struct dkim_field *fields = malloc(DKIM_MAX_FIELDS * sizeof(*fields));
	size_t nfields, body_len, n = 0;
	size_t limit = opts->max_sigs ? opts->max_sigs : 8;
	const char *body, *error = "out of memory";

	if (limit > max)
		limit = max;
	if (fields == NULL || limit == 0 ||
	    dkim_msg_split(msg, len, fields, DKIM_MAX_FIELDS, &nfields, &body,
	    &body_len, &error) < 0) {
		if (fields && limit > 0) {
			memset(&verdicts[0], 0, sizeof(verdicts[0]));
			verdict(&verdicts[0], DKIM_PERMERROR, error);
			n = 1;
		}
		free(fields);
		return n;
	}
	for (size_t i = 0; i < nfields && n < limit; i++) {
		if (!dkim_field_is(&fields[i], "dkim-signature"))
			continue;
		memset(&verdicts[n], 0, sizeof(verdicts[n]));
		verify_one(&fields[i], fields, nfields, body, body_len, opts, txt,
		    txt_ctx, &verdicts[n]);
		n++;
	}
	free(fields);
	return n;
}

/* Append printf output to out, keeping track of the length; what does
 * not fit is dropped and counted in *len. */
static void
append(char *out, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
append(char *out, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*len < size ? out + *len : NULL, *len < size ? size - *len : 0,
	    fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n;
}

size_t
dkim_auth_results(const struct dkim_verdict *v, size_t n, char *out,
    size_t size)
{
	size_t len = 0;

	if (size > 0)
		out[0] = '\0';
	if (n == 0)
		append(out, size, &len, "dkim=none");
	for (size_t i = 0; i < n; i++) {
		append(out, size, &len, "%sdkim=%s", i ? ";\r\n\t" : "",
		    dkim_result_name(v[i].result));
		if (v[i].result == DKIM_PASS)
			append(out, size, &len, " (%d-bit %s key%s)", v[i].key_bits,
			    v[i].alg == DKIM_ED25519_SHA256 ? "ed25519" : "rsa",
			    v[i].testing ? ", testing" : "");
		else if (v[i].reason[0])
			append(out, size, &len, " (%s)", v[i].reason);
		if (v[i].domain[0])
			append(out, size, &len, " header.d=%s", v[i].domain);
		if (v[i].selector[0])
			append(out, size, &len, " header.s=%s", v[i].selector);
		if (v[i].domain[0] && v[i].selector[0])
			append(out, size, &len, " header.a=%s", dkim_alg_name(v[i].alg));
		if (v[i].b_prefix[0])
			append(out, size, &len, " header.b=%s", v[i].b_prefix);
	}
	return len;
}
