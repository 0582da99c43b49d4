/*
 * dkim_sign.c - making a DKIM-Signature field (RFC 6376 5): choose the
 * fields to sign, hash body and header, sign, and fold the result into
 * lines of at most about 78 octets (RFC 5322 2.1.1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_crypto.h"

/* What to sign when present (RFC 6376 5.4.1's recommendations, minus
 * the trace and list fields that relays add), and which of them are
 * also named once more than they occur (over-signed) so that nobody can
 * add another after signing. */
static const struct {
	const char *name;
	int oversign;
} signed_fields[] = {
	{ "from", 1 }, { "to", 1 }, { "cc", 0 }, { "subject", 1 },
	{ "date", 0 }, { "message-id", 0 }, { "reply-to", 0 },
	{ "in-reply-to", 0 }, { "references", 0 }, { "mime-version", 0 },
	{ "content-type", 0 }, { "content-transfer-encoding", 0 },
};

/* A growing string for the field being built; on allocation failure
 * it sets failed and stays as it was. */
struct strbuf {
	char *data;
	size_t len, size;
	size_t line;	/* octets on the current line */
	int failed;
};

static void
sb_add(struct strbuf *sb, const char *s, size_t len)
{
	if (sb->failed)
		return;
	if (sb->len + len + 1 > sb->size) {
		size_t size = (sb->size + len + 1) * 2;
		char *d = realloc(sb->data, size);
		if (d == NULL) {
			sb->failed = 1;
			return;
		}
		sb->data = d;
		sb->size = size;
	}
	memcpy(sb->data + sb->len, s, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
	for (size_t i = 0; i < len; i++)
		sb->line = s[i] == '\n' ? 0 : sb->line + 1;
}

/* Append sep and a word, starting a new line ("CRLF TAB") before the
 * word when it would make the current one longer than 78 octets. A
 * space separator is replaced by the fold; any other (the ':' in h=)
 * stays in front of it. */
static void
sb_word(struct strbuf *sb, const char *sep, const char *word)
{
	size_t len = strlen(word);

	if (sb->line + strlen(sep) + len > 78) {
		if (strcmp(sep, " ") != 0)
			sb_add(sb, sep, strlen(sep));
		sb_add(sb, "\r\n\t", 3);
	} else {
		sb_add(sb, sep, strlen(sep));
	}
	sb_add(sb, word, len);
}

/* The h= names for this message, each as many times as it occurs, plus
 * one for the over-signed ones. */
static size_t
choose_names(const struct dkim_field *fields, size_t nfields,
    const char **names, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(signed_fields) / sizeof(signed_fields[0]); i++) {
		size_t count = signed_fields[i].oversign;
		for (size_t j = 0; j < nfields; j++)
			count += dkim_field_is(&fields[j], signed_fields[i].name);
		while (count-- > 0 && n < max)
			names[n++] = signed_fields[i].name;
	}
	return n;
}

/* The field up to and including "b=", without the final CRLF. */
static void
build_unsigned(struct strbuf *sb, const struct dkim_signer *s, time_t now,
    const char *const *names, size_t n, const char *bh64)
{
	char word[DKIM_MAX_DOMAIN + 8];

	sb_add(sb, "DKIM-Signature: v=1;", 20);
	snprintf(word, sizeof(word), "a=%s;", dkim_alg_name(s->alg));
	sb_word(sb, " ", word);
	snprintf(word, sizeof(word), "c=%s/%s;",
	    s->header_canon == DKIM_RELAXED ? "relaxed" : "simple",
	    s->body_canon == DKIM_RELAXED ? "relaxed" : "simple");
	sb_word(sb, " ", word);
	snprintf(word, sizeof(word), "d=%s;", s->domain);
	sb_word(sb, " ", word);
	snprintf(word, sizeof(word), "s=%s;", s->selector);
	sb_word(sb, " ", word);
	snprintf(word, sizeof(word), "t=%lld;", (long long)now);
	sb_word(sb, " ", word);
	for (size_t i = 0; i < n; i++) {
		snprintf(word, sizeof(word), "%s%s%s", i == 0 ? "h=" : "",
		    names[i], i + 1 == n ? ";" : "");
		sb_word(sb, i == 0 ? " " : ":", word);
	}
	snprintf(word, sizeof(word), "bh=%s;", bh64);
	sb_word(sb, " ", word);
	sb_word(sb, " ", "b=");
}

/* Append the b= value in pieces that keep lines short. */
static void
add_folded_b(struct strbuf *sb, const char *b64)
{
	size_t len = strlen(b64);

	while (len > 0) {
		size_t room = sb->line < 76 ? 76 - sb->line : 0;
		if (room < 8) {
			sb_add(sb, "\r\n\t", 3);
			continue;
		}
		size_t n = len < room ? len : room;
		sb_add(sb, b64, n);
		b64 += n;
		len -= n;
	}
	sb_add(sb, "\r\n", 2);
}

int
dkim_sign(const struct dkim_signer *signer, const char *msg, size_t len,
    time_t now, char **header_r, const char **error_r)
{
	struct dkim_field *fields = malloc(DKIM_MAX_FIELDS * sizeof(*fields));
	const char *names[DKIM_MAX_SIGNED], *body;
	unsigned char bh[32], hh[32], sig[DKIM_MAX_SIG_OCTETS];
	size_t nfields, nnames, body_len, sig_len = sizeof(sig);
	uint64_t canon_len;
	struct strbuf sb = { 0 };
	char *bh64 = NULL, *b64 = NULL;
	int rc = -1;

	if (fields == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (dkim_msg_split(msg, len, fields, DKIM_MAX_FIELDS, &nfields, &body,
	    &body_len, error_r) < 0)
		goto out;
	nnames = choose_names(fields, nfields, names, DKIM_MAX_SIGNED);
	if (names[0] != signed_fields[0].name || nnames < 2 ||
	    strcmp(names[1], "from") != 0 || (nnames > 2 && strcmp(names[2], "from") == 0)) {
		/* From must occur exactly once (RFC 5322 3.6) */
		*error_r = "the message needs exactly one From field";
		goto out;
	}
	if (dkim_hash_body(signer->body_canon, body, body_len, 0, 0, bh,
	    &canon_len) < 0 || (bh64 = dkim_base64_encode(bh, 32)) == NULL) {
		*error_r = "body hash failed";
		goto out;
	}
	build_unsigned(&sb, signer, now, names, nnames, bh64);
	if (sb.failed || dkim_hash_headers(signer->header_canon, names, nnames,
	    fields, nfields, sb.data, sb.len, hh) < 0 ||
	    dkim_sign_digest(signer->key, signer->alg, hh, sig, &sig_len) < 0 ||
	    (b64 = dkim_base64_encode(sig, sig_len)) == NULL) {
		*error_r = "signing failed";
		goto out;
	}
	add_folded_b(&sb, b64);
	if (sb.failed) {
		*error_r = "out of memory";
		goto out;
	}
	*header_r = sb.data;
	sb.data = NULL;
	rc = 0;
out:
	free(sb.data);
	free(bh64);
	free(b64);
	free(fields);
	return rc;
}
