/*
 * test_dkim.c - unit tests of the DKIM engine (modules/dkim/dkim_lib.h):
 * canonicalisation vectors (RFC 6376 3.4.5's example and edge cases:
 * empty bodies, trailing empty lines, LF line ends, l=), the tag-list,
 * signature and key record parsers, and sign/verify round trips with
 * keys made here, through an in-memory TXT callback.
 * Interoperability with other implementations is in
 * tests/e2e/test_dkim_interop.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../../modules/dkim/dkim_lib.h"
#include "test.h"

/* ---- canonicalisation ---- */

struct out {
	char data[4096];
	size_t len;
};

static void
out_write(void *arg, const char *data, size_t len)
{
	struct out *o = arg;

	if (len > sizeof(o->data) - 1 - o->len)
		len = sizeof(o->data) - 1 - o->len;
	memcpy(o->data + o->len, data, len);
	o->len += len;
	o->data[o->len] = '\0';
}

/* The canonical body of text, fed in pieces of step octets (0: whole). */
static const char *
body(enum dkim_canon mode, const char *text, size_t step, int has_limit,
    uint64_t limit)
{
	static struct out o;
	static struct dkim_body_canon c;
	struct dkim_sink sink = { out_write, &o };
	size_t len = strlen(text);

	o.len = 0;
	o.data[0] = '\0';
	dkim_body_init(&c, mode, &sink, has_limit, limit);
	for (size_t i = 0; i < len; i += step ? step : len)
		dkim_body_feed(&c, text + i, step && step < len - i ? step : len - i);
	dkim_body_finish(&c);
	return o.data;
}

static const char *
header(enum dkim_canon mode, const char *field)
{
	static struct out o;
	struct dkim_sink sink = { out_write, &o };

	o.len = 0;
	o.data[0] = '\0';
	dkim_header_canon(mode, field, strlen(field), &sink);
	return o.data;
}

/* RFC 6376 3.4.5: the example message and its four canonical forms. */
static void
test_rfc6376_example(void)
{
	const char *msg = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";
	struct dkim_field f[8];
	const char *b;
	size_t n, blen;
	const char *error;
	struct out o = { .len = 0 };
	struct dkim_sink sink = { out_write, &o };

	CHECK("rfc6376 example splits",
	    dkim_msg_split(msg, strlen(msg), f, 8, &n, &b, &blen, &error) == 0 && n == 2);
	for (size_t i = 0; i < n; i++)
		dkim_header_canon(DKIM_RELAXED, f[i].start, f[i].len, &sink);
	CHECK_STR("rfc6376 relaxed header", o.data, "a:X\r\nb:Y Z\r\n");
	o.len = 0;
	for (size_t i = 0; i < n; i++)
		dkim_header_canon(DKIM_SIMPLE, f[i].start, f[i].len, &sink);
	CHECK_STR("rfc6376 simple header", o.data, "A: X\r\nB : Y\t\r\n\tZ  \r\n");
	CHECK_STR("rfc6376 relaxed body", body(DKIM_RELAXED, b, 0, 0, 0),
	    " C\r\nD E\r\n");
	CHECK_STR("rfc6376 simple body", body(DKIM_SIMPLE, b, 0, 0, 0),
	    " C \r\nD \t E\r\n");
}

static void
test_body_edges(void)
{
	CHECK_STR("simple empty body is CRLF", body(DKIM_SIMPLE, "", 0, 0, 0), "\r\n");
	CHECK_STR("relaxed empty body is empty", body(DKIM_RELAXED, "", 0, 0, 0), "");
	CHECK_STR("simple only empty lines", body(DKIM_SIMPLE, "\r\n\r\n\r\n", 0, 0, 0), "\r\n");
	CHECK_STR("relaxed only empty lines", body(DKIM_RELAXED, "\r\n\r\n", 0, 0, 0), "");
	CHECK_STR("simple adds a missing CRLF", body(DKIM_SIMPLE, "abc", 0, 0, 0), "abc\r\n");
	CHECK_STR("relaxed adds a missing CRLF", body(DKIM_RELAXED, "abc  ", 0, 0, 0), "abc\r\n");
	CHECK_STR("relaxed whitespace-only lines are empty",
	    body(DKIM_RELAXED, "a\r\n  \r\n\t\r\n", 0, 0, 0), "a\r\n");
	CHECK_STR("simple whitespace-only lines are content",
	    body(DKIM_SIMPLE, "a\r\n  \r\n", 0, 0, 0), "a\r\n  \r\n");
	CHECK_STR("inner empty lines stay",
	    body(DKIM_SIMPLE, "a\r\n\r\n\r\nb\r\n\r\n", 0, 0, 0), "a\r\n\r\n\r\nb\r\n");
	CHECK_STR("LF line ends become CRLF",
	    body(DKIM_SIMPLE, "a\n\nb\n\n\n", 0, 0, 0), "a\r\n\r\nb\r\n");
	CHECK_STR("a bare CR is content", body(DKIM_SIMPLE, "a\rb\r\n", 0, 0, 0), "a\rb\r\n");
	CHECK_STR("a bare CR at the end is content", body(DKIM_RELAXED, "a\r", 0, 0, 0), "a\r\r\n");
	CHECK_STR("relaxed keeps one leading space",
	    body(DKIM_RELAXED, "\t \tx  y\t\r\n", 0, 0, 0), " x y\r\n");
	CHECK_STR("8-bit octets pass unchanged",
	    body(DKIM_RELAXED, "caf\xc3\xa9 \xff\r\n", 0, 0, 0), "caf\xc3\xa9 \xff\r\n");
	CHECK_STR("l= cuts the canonical body",
	    body(DKIM_RELAXED, " C \r\nD \t E\r\n", 0, 1, 4), " C\r\n");
	CHECK_STR("l=0 hashes nothing", body(DKIM_SIMPLE, "abc\r\n", 0, 1, 0), "");
}

/* Any split of the input gives the same output as one piece. */
static void
test_body_pieces(void)
{
	const char *inputs[] = {
		" C \r\nD \t E\r\n\r\n\r\n", "a\r\r\n \t\r\n\r\nb  \n\n", "\r\n\r\nx\ry\r",
	};
	int same = 1;

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		for (int mode = DKIM_SIMPLE; mode <= DKIM_RELAXED; mode++) {
			char whole[512];
			snprintf(whole, sizeof(whole), "%s", body(mode, inputs[i], 0, 0, 0));
			for (size_t step = 1; step < 6; step++)
				if (strcmp(whole, body(mode, inputs[i], step, 0, 0)) != 0)
					same = 0;
		}
	}
	CHECK("body canonicalisation does not depend on the pieces", same);
}

static void
test_header_edges(void)
{
	CHECK_STR("relaxed lower-cases the name only",
	    header(DKIM_RELAXED, "SubJect: HeLLo  World \r\n"), "subject:HeLLo World\r\n");
	CHECK_STR("relaxed unfolds LF folding",
	    header(DKIM_RELAXED, "To: a,\n\tb\n"), "to:a, b\r\n");
	CHECK_STR("relaxed empty value", header(DKIM_RELAXED, "X:  \r\n"), "x:\r\n");
	CHECK_STR("simple turns LF into CRLF",
	    header(DKIM_SIMPLE, "To: a,\n b\n"), "To: a,\r\n b\r\n");
	CHECK_STR("simple adds a missing line end", header(DKIM_SIMPLE, "X: y"), "X: y\r\n");
}

static void
test_split(void)
{
	struct dkim_field f[4];
	const char *b, *error;
	size_t n, blen;

	CHECK("a leading continuation line is refused",
	    dkim_msg_split(" x\r\n\r\n", 5, f, 4, &n, &b, &blen, &error) < 0);
	CHECK("a line without a colon is refused",
	    dkim_msg_split("From a\r\n\r\n", 10, f, 4, &n, &b, &blen, &error) < 0);
	CHECK("more fields than the limit are refused",
	    dkim_msg_split("a:1\nb:2\nc:3\n", 12, f, 2, &n, &b, &blen, &error) < 0);
	CHECK("no empty line: all header, empty body",
	    dkim_msg_split("a:1\nb:2", 7, f, 4, &n, &b, &blen, &error) == 0 &&
	    n == 2 && blen == 0 && f[1].len == 3);
	CHECK("WSP before the colon is not part of the name",
	    dkim_msg_split("Bb \t: y\n\nz", 10, f, 4, &n, &b, &blen, &error) == 0 &&
	    n == 1 && dkim_field_is(&f[0], "BB") && blen == 1);
}

/* ---- parsers ---- */

static int
tags_ok(const char *text, size_t *n)
{
	struct dkim_tag t[DKIM_MAX_TAGS];
	const char *error;

	return dkim_tags_parse(text, strlen(text), t, DKIM_MAX_TAGS, n, &error) == 0;
}

static void
test_tags(void)
{
	struct dkim_tag t[4];
	const char *error, *s = "a = b ;\r\n c=d\r\n e f; g=";
	size_t n;

	CHECK("tags with FWS parse",
	    dkim_tags_parse(s, strlen(s), t, 4, &n, &error) == 0 && n == 3 &&
	    t[0].value_len == 1 && t[1].value_len == 7 && t[2].value_len == 0);
	CHECK("a trailing ';' is allowed", tags_ok("v=1;", &n) && n == 1);
	CHECK("an empty list is allowed", tags_ok("  ", &n) && n == 0);
	CHECK("a duplicate tag is refused", !tags_ok("a=1; b=2; a=3", &n));
	CHECK("an empty tag-spec is refused", !tags_ok("a=1;;b=2", &n));
	CHECK("a missing '=' is refused", !tags_ok("a=1; b", &n));
	CHECK("a tag starting with a digit is refused", !tags_ok("1a=x", &n));
	CHECK("a control character is refused", !tags_ok("a=b\x01", &n));
	CHECK("a line end without WSP is refused", !tags_ok("a=b\r\nc=d", &n));
	CHECK("a bare CR is refused", !tags_ok("a=b\rc", &n));
	CHECK("more tags than the limit are refused",
	    dkim_tags_parse("a=1;b=2;c=3;d=4;e=5", 19, t, 4, &n, &error) < 0);
}

static void
test_base64(void)
{
	unsigned char out[16];

	CHECK("base64 with FWS", dkim_base64_decode("aGVs\r\n bG8=", 11, out, 16) == 5 &&
	    memcmp(out, "hello", 5) == 0);
	CHECK("base64 without padding", dkim_base64_decode("aGk", 3, out, 16) == 2);
	CHECK("base64 data after padding is refused",
	    dkim_base64_decode("aG=k", 4, out, 16) < 0);
	CHECK("base64 bad character is refused", dkim_base64_decode("a*Vs", 4, out, 16) < 0);
	CHECK("base64 one dangling digit is refused", dkim_base64_decode("aGVsb", 5, out, 16) < 0);
	CHECK("base64 over the buffer is refused", dkim_base64_decode("aGVsbG8=", 8, out, 4) < 0);
}

#define BH "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"

static int
sig_ok(const char *text, struct dkim_sig *sig, const char **error)
{
	return dkim_sig_parse(text, strlen(text), sig, error) == 0;
}

static void
test_sig_parse(void)
{
	static struct dkim_sig sig;
	const char *error = "";

	CHECK("a full signature parses",
	    sig_ok("v=1; a=rsa-sha256; c=relaxed; d=Example.TEST; s=s1;\r\n\t"
	    "h=From : to:\r\n subject; " BH " b=AAAA\r\n BBBB; i=joe@mail.example.test;"
	    " l=10; t=5; x=6; q=dns/txt; z=ignored", &sig, &error) &&
	    sig.header_canon == DKIM_RELAXED && sig.body_canon == DKIM_SIMPLE &&
	    strcmp(sig.domain, "example.test") == 0 && sig.signed_count == 3 &&
	    strcmp(sig.signed_names[1], "to") == 0 && sig.b_len == 6 &&
	    sig.has_length && sig.length == 10 &&
	    strcmp(sig.auid, "joe@mail.example.test") == 0);
	CHECK_STR("error is empty on success", error, "");
	CHECK("ed25519 and default auid",
	    sig_ok("v=1; a=ed25519-sha256; d=x.test; s=s; h=from; " BH " b=AAAA",
	    &sig, &error) && sig.alg == DKIM_ED25519_SHA256 &&
	    strcmp(sig.auid, "@x.test") == 0 && sig.header_canon == DKIM_SIMPLE);
	CHECK("rsa-sha1 is refused (RFC 8301)",
	    !sig_ok("v=1; a=rsa-sha1; d=x.test; s=s; h=from; " BH " b=AAAA", &sig, &error));
	CHECK("v=2 is refused",
	    !sig_ok("v=2; a=rsa-sha256; d=x.test; s=s; h=from; " BH " b=AAAA", &sig, &error));
	CHECK("a missing s= is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; h=from; " BH " b=AAAA", &sig, &error));
	CHECK("h= without From is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=to:subject; " BH " b=AAAA", &sig, &error));
	CHECK("an empty h= name is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=from::to; " BH " b=AAAA", &sig, &error));
	CHECK("i= outside d= is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=from; i=@evilx.test; " BH " b=AAAA",
	    &sig, &error));
	CHECK("i= in a subdomain is accepted",
	    sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=from; i=@a.x.test; " BH " b=AAAA",
	    &sig, &error));
	CHECK("x= before t= is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=from; t=9; x=8; " BH " b=AAAA",
	    &sig, &error));
	CHECK("an unknown c= is refused",
	    !sig_ok("v=1; a=rsa-sha256; c=relaxed/loose; d=x.test; s=s; h=from; " BH " b=AAAA",
	    &sig, &error));
	CHECK("a short bh= is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=from; bh=AAAA; b=AAAA", &sig, &error));
	CHECK("an empty b= is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=from; " BH " b=", &sig, &error));
	CHECK("a bad d= is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x..test; s=s; h=from; " BH " b=AAAA", &sig, &error));
	CHECK("a huge l= is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=from; l=99999999999999999999; "
	    BH " b=AAAA", &sig, &error));
	CHECK("q= without dns/txt is refused",
	    !sig_ok("v=1; a=rsa-sha256; d=x.test; s=s; h=from; q=http/x; " BH " b=AAAA",
	    &sig, &error));
}

static int
key_ok(const char *text, struct dkim_key_record *k)
{
	const char *error;

	return dkim_key_record_parse(text, strlen(text), k, &error) == 0;
}

static void
test_key_record(void)
{
	static struct dkim_key_record k;

	CHECK("ed25519 key record", key_ok("v=DKIM1; k=ed25519; p=AAAA; t=y:s", &k) &&
	    k.alg == DKIM_ED25519_SHA256 && k.key_len == 3 && k.testing && k.strict);
	CHECK("rsa is the default", key_ok("p=AAAA", &k) && k.alg == DKIM_RSA_SHA256 &&
	    !k.testing);
	CHECK("empty p= means revoked", key_ok("v=DKIM1; p=", &k) && k.key_len == 0);
	CHECK("v= not first is refused", !key_ok("k=rsa; v=DKIM1; p=AAAA", &k));
	CHECK("v=DKIM2 is refused", !key_ok("v=DKIM2; p=AAAA", &k));
	CHECK("no p= is refused", !key_ok("v=DKIM1; k=rsa", &k));
	CHECK("k=dsa is refused", !key_ok("k=dsa; p=AAAA", &k));
	CHECK("h=sha1 only is refused", !key_ok("h=sha1; p=AAAA", &k));
	CHECK("h=sha1:sha256 is accepted", key_ok("h=sha1:sha256; p=AAAA", &k));
	CHECK("s=email is accepted", key_ok("s=email; p=AAAA", &k));
	CHECK("s=other is refused", !key_ok("s=other; p=AAAA", &k));
}

/* ---- round trips ---- */

static char dir[64];
static char records[4][2048];	/* "name record" entries */
static int tempfail;

static int
txt_memory(void *ctx, const char *name, char *out, size_t size)
{
	size_t len = strlen(name);

	if (tempfail)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		if (strncmp(records[i], name, len) == 0 && records[i][len] == ' ') {
			snprintf(out, size, "%s", records[i] + len + 1);
			return 1;
		}
	}
	return 0;
}

static const char message[] =
    "Date: Tue, 24 Nov 2026 01:00:00 +0000\r\n"
    "From: Joe <joe@example.test>\r\n"
    "To: ann@example.org,\r\n\tbob@example.org\r\n"
    "Subject: caf\xc3\xa9\r\n"
    "Message-ID: <1@example.test>\r\n"
    "\r\n"
    "Hello  there\r\n"
    "\r\n";

/* Sign message with the key at path into *signed_r (malloc()ed). */
static int
sign_with(const char *path, const char *selector, const char *msg,
    char **signed_r)
{
	struct dkim_signer s;
	const char *error;
	char *h;

	if (dkim_signer_load(&s, "example.test", selector, path, &error) < 0)
		return -1;
	if (dkim_sign(&s, msg, strlen(msg), 1795000000, &h, &error) < 0) {
		dkim_signer_free(&s);
		return -1;
	}
	*signed_r = malloc(strlen(h) + strlen(msg) + 1);
	strcpy(*signed_r, h);
	strcat(*signed_r, msg);
	free(h);
	dkim_signer_free(&s);
	return 0;
}

static enum dkim_result
verify1(const char *msg, int allow_length, char *reason, size_t size)
{
	struct dkim_verify_opts opts = { .allow_length = allow_length, .now = 1795000100 };
	struct dkim_verdict v[4];
	size_t n = dkim_verify(msg, strlen(msg), &opts, txt_memory, NULL, v, 4);

	if (reason)
		snprintf(reason, size, "%s", n ? v[0].reason : "");
	return n ? v[0].result : DKIM_NONE;
}

/* A copy of s with the first occurrence of from replaced by to. */
static char *
replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	char *out = malloc(strlen(s) + strlen(to) + 1);

	if (at == NULL) {
		strcpy(out, s);
		return out;
	}
	memcpy(out, s, (size_t)(at - s));
	strcpy(out + (at - s), to);
	strcat(out, at + strlen(from));
	return out;
}

static void
make_key(const char *alg, int bits, const char *selector, int slot, char *path,
    size_t size)
{
	char *txt = NULL;
	const char *error;

	snprintf(path, size, "%s/%s.key", dir, selector);
	if (dkim_keygen(strcmp(alg, "ed25519") == 0 ? DKIM_ED25519_SHA256 :
	    DKIM_RSA_SHA256, bits, path, &txt, &error) == 0) {
		snprintf(records[slot], sizeof(records[slot]),
		    "%s._domainkey.example.test %s", selector, txt);
	}
	free(txt);
}

static void
test_keygen(const char *rsa_path)
{
	struct stat st;
	char *txt = NULL;
	const char *error;

	CHECK("keygen writes the key 0600",
	    stat(rsa_path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK("keygen does not overwrite a key",
	    dkim_keygen(DKIM_RSA_SHA256, 0, rsa_path, &txt, &error) < 0 && txt == NULL);
	CHECK("keygen refuses 512-bit RSA",
	    dkim_keygen(DKIM_RSA_SHA256, 512, "/nonexistent/x", &txt, &error) < 0);
	{
		char big[600], *line;
		memset(big, 'A', 599);
		big[599] = '\0';
		memcpy(big, "v=DKIM1; p=", 11);
		line = dkim_txt_zone_line("s1", "example.test", big);
		CHECK("zone line cuts the record into strings of 250",
		    line && strncmp(line, "s1._domainkey.example.test. IN TXT ( \"v=DKIM1; p=", 49) == 0 &&
		    /* 36 octets of name, 3 strings of ' "' 250 '"', " )" */
		    strlen(line) == 36 + 599 + 3 * 3 + 2 &&
		    line[38 + 250] == '"' && line[38 + 251] == ' ' && line[38 + 252] == '"' &&
		    strcmp(line + strlen(line) - 4, "A\" )") == 0);
		free(line);
	}
	CHECK("the RSA record names k=rsa",
	    strncmp(records[0] + strlen("rsa._domainkey.example.test "),
	    "v=DKIM1; k=rsa; p=MII", 21) == 0);
}

static void
test_round_trip(const char *selector)
{
	char name[96], reason[128], *signed_msg = NULL, *bad;

	snprintf(name, sizeof(name), "%s: signature verifies", selector);
	CHECK(name, sign_with(strcmp(selector, "rsa") == 0 ? records[2] : records[3],
	    selector, message, &signed_msg) == 0 &&
	    verify1(signed_msg, 0, reason, sizeof(reason)) == DKIM_PASS);
	if (signed_msg == NULL)
		return;
	bad = replace(signed_msg, "Hello  there", "Hello  therE");
	snprintf(name, sizeof(name), "%s: a changed body fails", selector);
	CHECK(name, verify1(bad, 0, reason, sizeof(reason)) == DKIM_FAIL &&
	    strstr(reason, "body hash"));
	free(bad);
	bad = replace(signed_msg, "Hello  there\r\n", "Hello there \r\n\r\n\r\n");
	snprintf(name, sizeof(name), "%s: relaxed body changes pass", selector);
	CHECK(name, verify1(bad, 0, NULL, 0) == DKIM_PASS);
	free(bad);
	bad = replace(signed_msg, "Subject: caf", "Subject: cap");
	snprintf(name, sizeof(name), "%s: a changed header fails", selector);
	CHECK(name, verify1(bad, 0, reason, sizeof(reason)) == DKIM_FAIL &&
	    strstr(reason, "signature did not"));
	free(bad);
	bad = replace(signed_msg, "\r\n\r\n", "\r\nSubject: second\r\n\r\n");
	snprintf(name, sizeof(name), "%s: an added Subject fails (over-signed)", selector);
	CHECK(name, verify1(bad, 0, NULL, 0) == DKIM_FAIL);
	free(bad);
	bad = replace(signed_msg, "\r\n\r\n", "\r\nX-Added: yes\r\n\r\n");
	snprintf(name, sizeof(name), "%s: an unsigned added field passes", selector);
	CHECK(name, verify1(bad, 0, NULL, 0) == DKIM_PASS);
	free(bad);
	bad = replace(signed_msg, " d=example.test;", " l=3; d=example.test;");
	snprintf(name, sizeof(name), "%s: l= is refused by default", selector);
	CHECK(name, verify1(bad, 0, NULL, 0) == DKIM_POLICY);
	snprintf(name, sizeof(name), "%s: l= allowed, changed field fails", selector);
	CHECK(name, verify1(bad, 1, NULL, 0) == DKIM_FAIL);
	free(bad);
	/* verify1 checks at t=1795000100 */
	bad = replace(signed_msg, " d=example.test;", " x=1795000050; d=example.test;");
	snprintf(name, sizeof(name), "%s: an expired signature is refused", selector);
	CHECK(name, verify1(bad, 0, reason, sizeof(reason)) == DKIM_POLICY &&
	    strstr(reason, "expired"));
	free(bad);
	bad = replace(signed_msg, " d=example.test;", " x=1795000200; d=example.test;");
	snprintf(name, sizeof(name), "%s: an unexpired x= reaches the crypto", selector);
	CHECK(name, verify1(bad, 0, NULL, 0) == DKIM_FAIL);
	free(bad);
	tempfail = 1;
	snprintf(name, sizeof(name), "%s: a lookup failure is temperror", selector);
	CHECK(name, verify1(signed_msg, 0, NULL, 0) == DKIM_TEMPERROR);
	tempfail = 0;
	free(signed_msg);
}

/* Every default field present: h= is long enough to be folded, and the
 * fold must keep it parseable (a fold once swallowed a ':'). */
static void
test_long_h(void)
{
	static const char full[] =
	    "Date: Tue, 24 Nov 2026 01:00:00 +0000\r\nFrom: joe@example.test\r\n"
	    "To: ann@example.org\r\nCc: bob@example.org\r\nSubject: s\r\n"
	    "Message-ID: <2@example.test>\r\nReply-To: joe@example.test\r\n"
	    "In-Reply-To: <1@example.test>\r\nReferences: <1@example.test>\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n\r\nbody\r\n";
	char *signed_msg = NULL;

	for (int k = 2; k <= 3; k++) {
		CHECK(k == 2 ? "rsa: a folded h= verifies" : "ed: a folded h= verifies",
		    sign_with(records[k], k == 2 ? "rsa" : "ed", full, &signed_msg) == 0 &&
		    strstr(signed_msg, ":\r\n\t") != NULL &&
		    verify1(signed_msg, 0, NULL, 0) == DKIM_PASS);
		free(signed_msg);
		signed_msg = NULL;
	}
}

/* A second, bad signature does not hide the good one; key problems are
 * permerrors. */
static void
test_verdicts(void)
{
	char *one = NULL, *two, reason[128];
	struct dkim_verify_opts opts = { .now = 1795000100 };
	struct dkim_verdict v[4];
	char saved[2048];
	size_t n;

	if (sign_with(records[2], "rsa", message, &one) < 0) {
		CHECK("signing for verdict tests", 0);
		return;
	}
	two = replace(one, "DKIM-Signature: v=1; a=rsa-sha256;",
	    "DKIM-Signature: v=1; a=rsa-sha256; s=nokey; d=example.test; h=from;"
	    " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
	    "DKIM-Signature: v=1; a=rsa-sha256;");
	n = dkim_verify(two, strlen(two), &opts, txt_memory, NULL, v, 4);
	CHECK("two signatures, two verdicts", n == 2 && v[0].result == DKIM_PERMERROR &&
	    strcmp(v[0].reason, "no key record") == 0 && v[1].result == DKIM_PASS &&
	    v[1].key_bits == 2048);
	{
		char ar[1024], want[256];
		size_t len = dkim_auth_results(v, n, ar, sizeof(ar));
		snprintf(want, sizeof(want), "dkim=permerror (no key record) header.d=example.test"
		    " header.s=nokey header.a=rsa-sha256 header.b=AAAA;\r\n\tdkim=pass"
		    " (2048-bit rsa key) header.d=example.test header.s=rsa"
		    " header.a=rsa-sha256 header.b=%.8s", strstr(one, " b=") + 3);
		CHECK_STR("Authentication-Results for two signatures", ar, want);
		CHECK("Authentication-Results length", len == strlen(want));
		CHECK("Authentication-Results cut to the buffer",
		    dkim_auth_results(v, n, ar, 20) == len && strlen(ar) == 19);
		CHECK_STR("Authentication-Results for none",
		    (dkim_auth_results(v, 0, ar, sizeof(ar)), ar), "dkim=none");
	}
	free(two);
	CHECK("an unsigned message has no verdict",
	    dkim_verify(message, strlen(message), &opts, txt_memory, NULL, v, 4) == 0);

	memcpy(saved, records[0], sizeof(saved));
	snprintf(records[0], sizeof(records[0]), "rsa._domainkey.example.test v=DKIM1; p=");
	CHECK("a revoked key is a permerror",
	    verify1(one, 0, reason, sizeof(reason)) == DKIM_PERMERROR &&
	    strcmp(reason, "key revoked") == 0);
	snprintf(records[0], sizeof(records[0]), "rsa._domainkey.example.test %s",
	    strchr(records[1], ' ') + 1);
	CHECK("an ed25519 key for an rsa signature is a permerror",
	    verify1(one, 0, reason, sizeof(reason)) == DKIM_PERMERROR);
	memcpy(records[0], saved, sizeof(saved));
	free(one);
}

/* A published 768-bit RSA key is refused whatever the signature. */
static void
test_short_key(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
	unsigned char *der = NULL;
	char b64[1024], saved[2048], reason[128], *signed_msg = NULL;
	int len = key ? i2d_PUBKEY(key, &der) : -1;

	if (len <= 0 || sign_with(records[2], "rsa", message, &signed_msg) < 0) {
		CHECK("short key set-up", 0);
		EVP_PKEY_free(key);
		return;
	}
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	memcpy(saved, records[0], sizeof(saved));
	snprintf(records[0], sizeof(records[0]), "rsa._domainkey.example.test p=%s", b64);
	CHECK("a 768-bit RSA key is refused",
	    verify1(signed_msg, 0, reason, sizeof(reason)) == DKIM_PERMERROR &&
	    strcmp(reason, "RSA key too short") == 0);
	memcpy(records[0], saved, sizeof(saved));
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	free(signed_msg);
}

int
main(void)
{
	const char *error;
	struct dkim_signer s;
	char *header = NULL;

	test_rfc6376_example();
	test_body_edges();
	test_body_pieces();
	test_header_edges();
	test_split();
	test_tags();
	test_base64();
	test_sig_parse();
	test_key_record();

	snprintf(dir, sizeof(dir), "/tmp/test_dkim.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		CHECK("temporary directory", 0);
		TEST_EXIT();
	}
	/* records[0..1] the DNS, records[2..3] the key paths */
	make_key("rsa", 2048, "rsa", 0, records[2], sizeof(records[2]));
	make_key("ed25519", 0, "ed", 1, records[3], sizeof(records[3]));
	test_keygen(records[2]);
	CHECK("signing refuses a message without From",
	    dkim_signer_load(&s, "example.test", "rsa", records[2], &error) == 0 &&
	    dkim_sign(&s, "To: x@y\r\n\r\nhi\r\n", 15, 0, &header, &error) < 0 &&
	    header == NULL);
	dkim_signer_free(&s);
	test_round_trip("rsa");
	test_round_trip("ed");
	test_long_h();
	test_verdicts();
	test_short_key();
	unlink(records[2]);
	unlink(records[3]);
	rmdir(dir);
	TEST_EXIT();
}
