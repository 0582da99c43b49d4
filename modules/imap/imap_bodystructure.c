/*
 * modules/imap/imap_bodystructure.c - the text of BODYSTRUCTURE, BODY and
 * ENVELOPE (RFC 3501 7.4.2) from a parsed MIME tree (imap_mime.c) and
 * the address parser (imap_address.c).
 *
 * BODYSTRUCTURE carries the extension data: body-fld-md5 (Content-MD5),
 * Content-Disposition with its parameters (RFC 2183), Content-Language
 * (RFC 3282) and Content-Location (RFC 2557), for single parts and
 * multiparts alike. A message/rfc822 part gets its envelope, body
 * structure and line count. Text parts without a charset get
 * "charset" "us-ascii", the RFC 2045 5.2 default. A container the parser
 * kept as a leaf (past its depth or part limits) is shown as
 * application/octet-stream, so that the output stays well-formed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/util.h>

#include "imap_mime.h"

/* An IMAP string: quoted when it may be (RFC 3501 9, quoted excludes
 * CR, LF and 8-bit octets), a literal otherwise; NIL for NULL. */
static void
put_nstring(struct mp_str *b, const char *s)
{
	int literal = 0;
	size_t n;

	if (s == NULL) {
		mp_str_puts(b, "NIL");
		return;
	}
	n = strlen(s);
	for (size_t i = 0; i < n && !literal; i++)
		literal = s[i] == '\r' || s[i] == '\n' || (unsigned char)s[i] >= 0x80;
	if (literal) {
		char head[32];
		mp_str_put(b, head, (size_t)snprintf(head, sizeof(head), "{%zu}\r\n", n));
		mp_str_put(b, s, n);
		return;
	}
	mp_str_put(b, "\"", 1);
	for (const char *p = s; *p;) {
		size_t run = strcspn(p, "\"\\");
		mp_str_put(b, p, run);
		p += run;
		if (*p) {
			mp_str_put(b, "\\", 1);
			mp_str_put(b, p++, 1);
		}
	}
	mp_str_put(b, "\"", 1);
}

static void
put_number(struct mp_str *b, size_t n)
{
	char num[32];

	mp_str_put(b, num, (size_t)snprintf(num, sizeof(num), "%zu", n));
}

/* ---- ENVELOPE ------------------------------------------------------------------------- */

struct addr_out {
	struct mp_str *b;
	size_t n;
};

/* One address structure: (name adl mailbox host); a group is
 * (NIL NIL "name" NIL) ... (NIL NIL NIL NIL) (RFC 3501 7.4.2). */
static void
put_address(void *arg, const struct imap_addr *a)
{
	struct addr_out *ao = arg;
	struct mp_str *b = ao->b;

	if (ao->n++ == 0)
		mp_str_put(b, "(", 1);	/* the list's own parenthesis */
	mp_str_put(b, "(", 1);
	if (a->kind == IMAP_ADDR_MAILBOX) {
		put_nstring(b, a->name);
		mp_str_put(b, " ", 1);
		put_nstring(b, a->route);
		mp_str_put(b, " ", 1);
		/* NIL would mean a group: a missing part gets a placeholder */
		put_nstring(b, a->mailbox ? a->mailbox : "MISSING_MAILBOX");
		mp_str_put(b, " ", 1);
		put_nstring(b, a->host ? a->host : "MISSING_DOMAIN");
	} else if (a->kind == IMAP_ADDR_GROUP) {
		mp_str_puts(b, "NIL NIL ");
		put_nstring(b, a->name);
		mp_str_puts(b, " NIL");
	} else
		mp_str_puts(b, "NIL NIL NIL NIL");
	mp_str_put(b, ")", 1);
}

/* The address list of field name: "((...)(...))", or nothing and 0
 * when the field is absent or holds no address. */
static size_t
put_addresses(struct mp_str *b, const char *hdr, size_t hlen, const char *name)
{
	struct addr_out ao = { b, 0 };
	const char *v;
	size_t vlen;

	if (mime_field_raw(hdr, hlen, name, &v, &vlen))
		imap_addresses(v, vlen, put_address, &ao);
	if (ao.n)
		mp_str_put(b, ")", 1);
	return ao.n;
}

static void
put_field(struct mp_str *b, const char *hdr, size_t hlen, const char *name)
{
	char *v = mime_field(hdr, hlen, name);

	put_nstring(b, v);
	free(v);
}

static void
put_envelope(struct mp_str *b, const char *hdr, size_t hlen)
{
	static const char *const lists[] = { "From", "Sender", "Reply-To", "To", "Cc", "Bcc" };

	mp_str_put(b, "(", 1);
	put_field(b, hdr, hlen, "Date");
	mp_str_put(b, " ", 1);
	put_field(b, hdr, hlen, "Subject");
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		mp_str_put(b, " ", 1);
		if (put_addresses(b, hdr, hlen, lists[i]))
			continue;
		/* Sender and Reply-To absent or empty: the From (7.4.2) */
		if ((i == 1 || i == 2) && put_addresses(b, hdr, hlen, "From"))
			continue;
		mp_str_puts(b, "NIL");
	}
	mp_str_put(b, " ", 1);
	put_field(b, hdr, hlen, "In-Reply-To");
	mp_str_put(b, " ", 1);
	put_field(b, hdr, hlen, "Message-ID");
	mp_str_put(b, ")", 1);
}

void
imap_envelope(const char *msg, size_t len, char **out, size_t *outlen)
{
	struct mp_str b = { 0 };

	put_envelope(&b, msg, mime_header_len(msg, len));
	if (b.failed) {
		free(b.p);
		b.p = NULL;
		b.len = 0;
	}
	*out = b.p;
	*outlen = b.len;
}

/* ---- BODYSTRUCTURE --------------------------------------------------------------------- */

/* ("attr" "value" ...) or NIL; for text, "charset" "us-ascii" unless
 * the part names its charset. */
static void
put_params(struct mp_str *b, const struct mime_value *v, int text)
{
	int charset = !text || mime_param(v, "charset") != NULL;

	if (v->nparams == 0 && charset) {
		mp_str_puts(b, "NIL");
		return;
	}
	mp_str_put(b, "(", 1);
	for (size_t i = 0; i < v->nparams; i++) {
		if (i)
			mp_str_put(b, " ", 1);
		put_nstring(b, v->param[i].attr);
		mp_str_put(b, " ", 1);
		put_nstring(b, v->param[i].val);
	}
	if (!charset)
		mp_str_puts(b, v->nparams ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
	mp_str_put(b, ")", 1);
}

/* body-fld-dsp: ("attachment" ("filename" "a.txt")) or NIL. */
static void
put_disposition(struct mp_str *b, const char *hdr, size_t hlen)
{
	char *raw = mime_field(hdr, hlen, "Content-Disposition");
	struct mime_value v;

	mime_value_parse(raw ? raw : "", 0, &v);
	free(raw);
	if (v.value == NULL) {
		mp_str_puts(b, "NIL");
	} else {
		mp_str_put(b, "(", 1);
		put_nstring(b, v.value);
		mp_str_put(b, " ", 1);
		put_params(b, &v, 0);
		mp_str_put(b, ")", 1);
	}
	mime_value_free(&v);
}

/* body-fld-lang: ("en" "de") from "en, de", or NIL. */
static void
put_language(struct mp_str *b, const char *hdr, size_t hlen)
{
	char *raw = mime_field(hdr, hlen, "Content-Language");
	char *tags = raw ? malloc(strlen(raw) + 1) : NULL;
	const char *p = raw;
	size_t n = 0;

	while (tags && *(p = mime_skip_cfws(p))) {
		char *o = tags;
		const char *next = mime_read_word(p, &o, 0);
		if (next != NULL) {
			mp_str_put(b, n++ ? " " : "(", 1);
			put_nstring(b, tags);
			p = next;
		} else
			p++;	/* the comma, or a stray special */
	}
	mp_str_puts(b, n ? ")" : "NIL");
	free(tags);
	free(raw);
}

/* The extension data both kinds share: dsp, lang, loc. */
static void
put_ext_common(struct mp_str *b, const char *hdr, size_t hlen)
{
	mp_str_put(b, " ", 1);
	put_disposition(b, hdr, hlen);
	mp_str_put(b, " ", 1);
	put_language(b, hdr, hlen);
	mp_str_put(b, " ", 1);
	put_field(b, hdr, hlen, "Content-Location");
}

static size_t
count_lines(const char *s, size_t len)
{
	size_t n = 0;
	const char *end = s + len;

	while ((s = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		n++;
		s++;
	}
	return n;
}

static void put_part(struct mp_str *b, const struct imap_mime *t, size_t p, int ext);

/* body-type-mpart: the parts, the subtype, extension data. */
static void
put_multipart(struct mp_str *b, const struct imap_mime *t, size_t p, const struct mime_value *ct,
    const char *subtype, int ext)
{
	const struct mime_part *part = &t->parts[p];
	const char *hdr = t->msg + part->hdr;

	mp_str_put(b, "(", 1);
	for (uint32_t c = part->first_child; c; c = t->parts[c].next)
		put_part(b, t, c, ext);
	if (part->nchildren == 0)	/* no part found: 1*body needs one */
		mp_str_puts(b, ext ? "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"
		    " NIL NIL NIL NIL)" : "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL"
		    " \"7bit\" 0 0)");
	mp_str_put(b, " ", 1);
	put_nstring(b, subtype);
	if (ext) {
		mp_str_put(b, " ", 1);
		put_params(b, ct, 0);
		put_ext_common(b, hdr, part->hdr_len);
	}
	mp_str_put(b, ")", 1);
}

/* body-type-1part: basic, text or message/rfc822, then extension data. */
static void
put_single(struct mp_str *b, const struct imap_mime *t, size_t p, const struct mime_value *ct,
    const char *type, const char *subtype, int ext)
{
	const struct mime_part *part = &t->parts[p];
	const char *hdr = t->msg + part->hdr;
	size_t hlen = part->hdr_len;
	char *enc_raw = mime_field(hdr, hlen, "Content-Transfer-Encoding");
	struct mime_value enc;
	int text = strcasecmp(type, "text") == 0;

	mime_value_parse(enc_raw ? enc_raw : "", 0, &enc);
	free(enc_raw);
	mp_str_put(b, "(", 1);
	put_nstring(b, part->degraded ? "application" : type);
	mp_str_put(b, " ", 1);
	put_nstring(b, part->degraded ? "octet-stream" : subtype);
	mp_str_put(b, " ", 1);
	put_params(b, ct, text);
	mp_str_put(b, " ", 1);
	put_field(b, hdr, hlen, "Content-ID");
	mp_str_put(b, " ", 1);
	put_field(b, hdr, hlen, "Content-Description");
	mp_str_put(b, " ", 1);
	put_nstring(b, enc.value ? enc.value : "7bit");
	mime_value_free(&enc);
	mp_str_put(b, " ", 1);
	put_number(b, part->body_len);
	if (part->kind == MIME_MESSAGE) {
		const struct mime_part *inner = &t->parts[part->first_child];
		mp_str_put(b, " ", 1);
		put_envelope(b, t->msg + inner->hdr, inner->hdr_len);
		mp_str_put(b, " ", 1);
		put_part(b, t, part->first_child, ext);
	}
	if (text || part->kind == MIME_MESSAGE) {
		mp_str_put(b, " ", 1);
		put_number(b, count_lines(t->msg + part->body, part->body_len));
	}
	if (ext) {
		mp_str_put(b, " ", 1);
		put_field(b, hdr, hlen, "Content-MD5");
		put_ext_common(b, hdr, hlen);
	}
	mp_str_put(b, ")", 1);
}

/* Recursion follows the tree, whose depth the parser bounds. */
static void
put_part(struct mp_str *b, const struct imap_mime *t, size_t p, int ext)
{
	struct mime_value ct;
	const char *type, *subtype;

	mime_content_type(t, p, &ct, &type, &subtype);
	if (t->parts[p].kind == MIME_MULTIPART)
		put_multipart(b, t, p, &ct, subtype, ext);
	else
		put_single(b, t, p, &ct, type, subtype, ext);
	mime_value_free(&ct);
}

void
imap_mime_bodystructure(const struct imap_mime *t, int extended, char **out, size_t *outlen)
{
	struct mp_str b = { 0 };

	put_part(&b, t, 0, extended);
	if (b.failed) {
		free(b.p);
		b.p = NULL;
		b.len = 0;
	}
	*out = b.p;
	*outlen = b.len;
}

void
imap_bodystructure(const char *msg, size_t len, int extended, char **out, size_t *outlen)
{
	struct imap_mime *t = imap_mime_parse(msg, len);

	*out = NULL;
	*outlen = 0;
	if (t != NULL)
		imap_mime_bodystructure(t, extended, out, outlen);
	imap_mime_free(t);
}
