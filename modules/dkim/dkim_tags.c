/*
 * dkim_tags.c - DKIM's text syntax: tag=value lists (RFC 6376 3.2), FWS
 * inside base64 (2.4), the DKIM-Signature tags (3.5) and key records
 * (3.6.1, RFC 8463). Every check is a bounded walk over the input; no
 * allocation. Cryptography is elsewhere (dkim_crypto.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dkim_lib.h"

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Length of the FWS at p (0 if none): *WSP [CRLF|LF] 1*WSP, or WSP only.
 * A line end not followed by WSP is not FWS. */
static size_t
fws_len(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && is_wsp(*q))
		q++;
	if (q < end && (*q == '\r' || *q == '\n')) {
		const char *r = q;
		if (*r == '\r') {
			if (r + 1 >= end || r[1] != '\n')
				return (size_t)(q - p);
			r++;
		}
		r++;
		if (r < end && is_wsp(*r)) {
			while (r < end && is_wsp(*r))
				r++;
			return (size_t)(r - p);
		}
	}
	return (size_t)(q - p);
}

/* VALCHAR: %x21-3A / %x3C-7E (printable, not ';'). */
static int
is_valchar(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 0x21 && u <= 0x7e && u != ';';
}

/* Parse one tag-spec at *pp; leaves *pp on the ';' or end. */
static int
parse_tag_spec(const char **pp, const char *end, struct dkim_tag *tag,
    const char **error_r)
{
	const char *p = *pp;

	p += fws_len(p, end);
	if (p >= end || !isalpha((unsigned char)*p)) {
		*error_r = "tag name expected";
		return -1;
	}
	tag->name = p;
	while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
		p++;
	tag->name_len = (size_t)(p - tag->name);
	p += fws_len(p, end);
	if (p >= end || *p != '=') {
		*error_r = "'=' expected after a tag name";
		return -1;
	}
	p++;
	p += fws_len(p, end);
	tag->value = p;
	tag->value_len = 0;
	while (p < end && *p != ';') {
		size_t f = fws_len(p, end);
		if (f > 0) {
			p += f;
			continue;
		}
		if (!is_valchar(*p)) {
			*error_r = "invalid character in a tag value";
			return -1;
		}
		p++;
		tag->value_len = (size_t)(p - tag->value);
	}
	*pp = p;
	return 0;
}

int
dkim_tags_parse(const char *text, size_t len, struct dkim_tag *tags,
    size_t max, size_t *count_r, const char **error_r)
{
	const char *p = text, *end = text + len;
	size_t n = 0;

	for (;;) {
		p += fws_len(p, end);
		if (p >= end)
			break;	/* empty list, or a trailing ';' */
		if (n == max) {
			*error_r = "too many tags";
			return -1;
		}
		if (parse_tag_spec(&p, end, &tags[n], error_r) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (tags[i].name_len == tags[n].name_len &&
			    memcmp(tags[i].name, tags[n].name, tags[n].name_len) == 0) {
				*error_r = "duplicate tag";
				return -1;
			}
		}
		n++;
		if (p >= end)
			break;
		p++;	/* the ';' */
	}
	*count_r = n;
	return 0;
}

const struct dkim_tag *
dkim_tag_find(const struct dkim_tag *tags, size_t count, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < count; i++)
		if (tags[i].name_len == len && memcmp(tags[i].name, name, len) == 0)
			return &tags[i];
	return NULL;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
dkim_base64_decode(const char *text, size_t len, unsigned char *out,
    size_t size)
{
	unsigned long acc = 0;
	size_t n = 0, digits = 0, pads = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		int v;
		if (is_wsp(c) || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pads++;
			continue;
		}
		if (pads > 0 || (v = b64_value(c)) < 0)
			return -1;	/* data after padding, or not base64 */
		acc = (acc << 6) | (unsigned long)v;
		if (++digits % 4 == 0) {
			if (n + 3 > size)
				return -1;
			out[n++] = (unsigned char)(acc >> 16);
			out[n++] = (unsigned char)(acc >> 8);
			out[n++] = (unsigned char)acc;
			acc = 0;
		}
	}
	switch (digits % 4) {
	case 0:
		return pads == 0 ? (long)n : -1;
	case 2:
		if (pads > 2 || n + 1 > size || (acc & 0xf) != 0)
			return -1;
		out[n++] = (unsigned char)(acc >> 4);
		return (long)n;
	case 3:
		if (pads > 1 || n + 2 > size || (acc & 0x3) != 0)
			return -1;
		out[n++] = (unsigned char)(acc >> 10);
		out[n++] = (unsigned char)(acc >> 2);
		return (long)n;
	default:
		return -1;
	}
}

/* 1 if the tag value equals s (NUL-terminated) exactly. */
static int
value_is(const struct dkim_tag *t, const char *s)
{
	return t->value_len == strlen(s) && memcmp(t->value, s, t->value_len) == 0;
}

/* A decimal of at most 18 digits (l=, t=, x=: RFC 6376 allows 76, but
 * nothing larger than a 64-bit count is meaningful). */
static int
parse_decimal(const struct dkim_tag *t, uint64_t *out)
{
	uint64_t v = 0;

	if (t->value_len == 0 || t->value_len > 18)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		if (!isdigit((unsigned char)t->value[i]))
			return -1;
		v = v * 10 + (uint64_t)(t->value[i] - '0');
	}
	*out = v;
	return 0;
}

/* A domain name: labels of letters, digits and '-' (RFC 6376 d= and s=
 * use sub-domain syntax), copied lower case into out. */
static int
copy_domain(const char *s, size_t len, char *out, size_t size)
{
	size_t label = 0;

	if (len == 0 || len >= size)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
		} else if (isalnum((unsigned char)c) || (c == '-' && label > 0) ||
		    c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower((unsigned char)c);
	}
	if (label == 0 || s[len - 1] == '-')
		return -1;
	out[len] = '\0';
	return 0;
}

static int
parse_canon_word(const char *s, size_t len, enum dkim_canon *out)
{
	if (len == 6 && memcmp(s, "simple", 6) == 0)
		*out = DKIM_SIMPLE;
	else if (len == 7 && memcmp(s, "relaxed", 7) == 0)
		*out = DKIM_RELAXED;
	else
		return -1;
	return 0;
}

static int
parse_canon(const struct dkim_tag *t, struct dkim_sig *sig)
{
	const char *slash;

	sig->header_canon = DKIM_SIMPLE;
	sig->body_canon = DKIM_SIMPLE;
	if (t == NULL)
		return 0;
	slash = memchr(t->value, '/', t->value_len);
	if (slash == NULL)
		return parse_canon_word(t->value, t->value_len, &sig->header_canon);
	return parse_canon_word(t->value, (size_t)(slash - t->value),
	    &sig->header_canon) < 0 ? -1 :
	    parse_canon_word(slash + 1, t->value_len - (size_t)(slash - t->value) - 1,
	    &sig->body_canon);
}

/* Colon-separated lists (h=, and a key's h= and s=), FWS allowed
 * around each item. */
struct colon_list {
	const char *p, *end;
	int done;
};

static int
is_fws(char c)
{
	return is_wsp(c) || c == '\r' || c == '\n';
}

/* The next item's word (*s, *len); 1 while there is one. *clean is 0
 * when more than FWS surrounds the word. */
static int
colon_next(struct colon_list *l, const char **s, size_t *len, int *clean)
{
	const char *colon, *e, *p = l->p;

	if (l->done)
		return 0;
	colon = memchr(p, ':', (size_t)(l->end - p));
	e = colon ? colon : l->end;
	while (p < e && is_fws(*p))
		p++;
	*s = p;
	while (p < e && !is_fws(*p))
		p++;
	*len = (size_t)(p - *s);
	while (p < e && is_fws(*p))
		p++;
	*clean = p == e;
	l->done = colon == NULL;
	l->p = colon ? colon + 1 : l->end;
	return 1;
}

/* h=: colon-separated field names, FWS allowed around each; lower-cased
 * into names_buf. Must contain From (RFC 6376 5.4). */
static int
parse_signed_names(const struct dkim_tag *t, struct dkim_sig *sig,
    const char **error_r)
{
	struct colon_list l = { t->value, t->value + t->value_len, 0 };
	const char *s;
	size_t used = 0, len;
	int has_from = 0, clean;

	sig->signed_count = 0;
	while (colon_next(&l, &s, &len, &clean)) {
		if (len == 0 || !clean) {
			*error_r = "h= has an empty or malformed field name";
			return -1;
		}
		if (sig->signed_count == DKIM_MAX_SIGNED ||
		    used + len + 1 > sizeof(sig->names_buf)) {
			*error_r = "h= names too many fields";
			return -1;
		}
		char *name = sig->names_buf + used;
		for (size_t i = 0; i < len; i++)
			name[i] = (char)tolower((unsigned char)s[i]);
		name[len] = '\0';
		used += len + 1;
		sig->signed_names[sig->signed_count++] = name;
		if (strcmp(name, "from") == 0)
			has_from = 1;
	}
	if (!has_from) {
		*error_r = "h= does not include From";
		return -1;
	}
	return 0;
}

/* i=: [local-part] "@" domain, the domain d= or a subdomain of it. */
static int
parse_auid(const struct dkim_tag *t, struct dkim_sig *sig,
    const char **error_r)
{
	char dom[DKIM_MAX_DOMAIN];
	const char *at;
	size_t dlen, olen;

	if (t == NULL) {
		snprintf(sig->auid, sizeof(sig->auid), "@%s", sig->domain);
		return 0;
	}
	at = memchr(t->value, '@', t->value_len);
	if (at == NULL || t->value_len >= sizeof(sig->auid) ||
	    copy_domain(at + 1, t->value_len - (size_t)(at - t->value) - 1,
	    dom, sizeof(dom)) < 0) {
		*error_r = "i= is not an identity";
		return -1;
	}
	dlen = strlen(dom);
	olen = strlen(sig->domain);
	if (!(dlen == olen || (dlen > olen && dom[dlen - olen - 1] == '.')) ||
	    strcmp(dom + dlen - olen, sig->domain) != 0) {
		*error_r = "i= domain is not d= or a subdomain of it";
		return -1;
	}
	memcpy(sig->auid, t->value, (size_t)(at - t->value) + 1);
	memcpy(sig->auid + (at - t->value) + 1, dom, dlen + 1);
	return 0;
}

/* q=: colon-separated methods; dns/txt must be one of them. */
static int
query_ok(const struct dkim_tag *t)
{
	const char *p, *end;

	if (t == NULL)
		return 1;
	p = t->value;
	end = t->value + t->value_len;
	while (p < end) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *e = colon ? colon : end;
		while (p < e && is_wsp(*p))
			p++;
		if ((size_t)(e - p) >= 7 && memcmp(p, "dns/txt", 7) == 0 &&
		    (e - p == 7 || is_wsp(p[7])))
			return 1;
		p = colon ? colon + 1 : end;
	}
	return 0;
}

static int
parse_alg(const struct dkim_tag *t, enum dkim_alg *alg, const char **error_r)
{
	if (value_is(t, "rsa-sha256"))
		*alg = DKIM_RSA_SHA256;
	else if (value_is(t, "ed25519-sha256"))
		*alg = DKIM_ED25519_SHA256;
	else {
		/* rsa-sha1 included: RFC 8301 forbids verifying it. */
		*error_r = "unsupported signing algorithm (a=)";
		return -1;
	}
	return 0;
}

static int
parse_times(const struct dkim_tag *tags, size_t n, struct dkim_sig *sig,
    const char **error_r)
{
	const struct dkim_tag *t = dkim_tag_find(tags, n, "t");
	const struct dkim_tag *x = dkim_tag_find(tags, n, "x");
	const struct dkim_tag *l = dkim_tag_find(tags, n, "l");

	sig->has_timestamp = t != NULL;
	sig->has_expiry = x != NULL;
	sig->has_length = l != NULL;
	if ((t && parse_decimal(t, &sig->timestamp) < 0) ||
	    (x && parse_decimal(x, &sig->expiry) < 0) ||
	    (l && parse_decimal(l, &sig->length) < 0)) {
		*error_r = "t=, x= or l= is not a decimal number";
		return -1;
	}
	if (t && x && sig->expiry < sig->timestamp) {
		*error_r = "x= is before t=";
		return -1;
	}
	return 0;
}

int
dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig,
    const char **error_r)
{
	struct dkim_tag tags[DKIM_MAX_TAGS];
	const struct dkim_tag *v, *a, *b, *bh, *d, *h, *s;
	size_t n;
	long got;

	memset(sig, 0, sizeof(*sig));
	if (dkim_tags_parse(value, len, tags, DKIM_MAX_TAGS, &n, error_r) < 0)
		return -1;
	v = dkim_tag_find(tags, n, "v");
	a = dkim_tag_find(tags, n, "a");
	b = dkim_tag_find(tags, n, "b");
	bh = dkim_tag_find(tags, n, "bh");
	d = dkim_tag_find(tags, n, "d");
	h = dkim_tag_find(tags, n, "h");
	s = dkim_tag_find(tags, n, "s");
	if (!v || !a || !b || !bh || !d || !h || !s) {
		*error_r = "a required tag (v a b bh d h s) is missing";
		return -1;
	}
	if (!value_is(v, "1")) {
		*error_r = "unsupported version (v=)";
		return -1;
	}
	if (parse_alg(a, &sig->alg, error_r) < 0)
		return -1;
	if (parse_canon(dkim_tag_find(tags, n, "c"), sig) < 0) {
		*error_r = "unsupported canonicalisation (c=)";
		return -1;
	}
	if (copy_domain(d->value, d->value_len, sig->domain, sizeof(sig->domain)) < 0 ||
	    copy_domain(s->value, s->value_len, sig->selector, sizeof(sig->selector)) < 0) {
		*error_r = "d= or s= is not a domain name";
		return -1;
	}
	got = dkim_base64_decode(b->value, b->value_len, sig->b, sizeof(sig->b));
	if (got <= 0) {
		*error_r = "b= is empty or not base64";
		return -1;
	}
	sig->b_len = (size_t)got;
	if (dkim_base64_decode(bh->value, bh->value_len, sig->bh,
	    sizeof(sig->bh)) != (long)sizeof(sig->bh)) {
		*error_r = "bh= is not a base64 SHA-256 digest";
		return -1;
	}
	if (parse_signed_names(h, sig, error_r) < 0 ||
	    parse_auid(dkim_tag_find(tags, n, "i"), sig, error_r) < 0 ||
	    parse_times(tags, n, sig, error_r) < 0)
		return -1;
	if (!query_ok(dkim_tag_find(tags, n, "q"))) {
		*error_r = "no supported query method (q=)";
		return -1;
	}
	return 0;
}

/* 1 if the colon-separated list (FWS allowed) contains word. */
static int
list_has(const struct dkim_tag *t, const char *word)
{
	struct colon_list l = { t->value, t->value + t->value_len, 0 };
	size_t wlen = strlen(word), len;
	const char *s;
	int clean;

	while (colon_next(&l, &s, &len, &clean))
		if (len == wlen && strncasecmp(s, word, wlen) == 0)
			return 1;
	return 0;
}

int
dkim_key_record_parse(const char *text, size_t len,
    struct dkim_key_record *key, const char **error_r)
{
	struct dkim_tag tags[DKIM_MAX_TAGS];
	const struct dkim_tag *t;
	size_t n;
	long got;

	memset(key, 0, sizeof(*key));
	if (dkim_tags_parse(text, len, tags, DKIM_MAX_TAGS, &n, error_r) < 0)
		return -1;
	t = dkim_tag_find(tags, n, "v");
	if (t && (t != &tags[0] || !value_is(t, "DKIM1"))) {
		*error_r = "key record v= is not DKIM1 or not first";
		return -1;
	}
	t = dkim_tag_find(tags, n, "k");
	key->alg = DKIM_RSA_SHA256;
	if (t && value_is(t, "ed25519"))
		key->alg = DKIM_ED25519_SHA256;
	else if (t && !value_is(t, "rsa")) {
		*error_r = "key record k= names an unsupported key type";
		return -1;
	}
	t = dkim_tag_find(tags, n, "h");
	if (t && !list_has(t, "sha256")) {
		*error_r = "key record h= does not allow sha256";
		return -1;
	}
	t = dkim_tag_find(tags, n, "s");
	if (t && !list_has(t, "*") && !list_has(t, "email")) {
		*error_r = "key record s= is not for email";
		return -1;
	}
	t = dkim_tag_find(tags, n, "t");
	if (t) {
		key->testing = list_has(t, "y");
		key->strict = list_has(t, "s");
	}
	t = dkim_tag_find(tags, n, "p");
	if (t == NULL) {
		*error_r = "key record has no p=";
		return -1;
	}
	if (t->value_len == 0)
		return 0;	/* revoked; the caller says so */
	got = dkim_base64_decode(t->value, t->value_len, key->key, sizeof(key->key));
	if (got <= 0) {
		*error_r = "key record p= is not base64";
		return -1;
	}
	key->key_len = (size_t)got;
	return 0;
}

const char *
dkim_result_name(enum dkim_result result)
{
	static const char *const names[] = {
		"none", "pass", "fail", "policy", "neutral", "temperror",
		"permerror",
	};

	return (unsigned)result < sizeof(names) / sizeof(names[0]) ?
	    names[result] : "permerror";
}

const char *
dkim_alg_name(enum dkim_alg alg)
{
	return alg == DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}
