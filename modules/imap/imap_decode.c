/*
 * modules/imap/imap_decode.c - the decoders behind SEARCH on text:
 * base64 and quoted-printable (RFC 2045 6.7, 6.8), RFC 2047 encoded
 * words, charset conversion to UTF-8 through glibc iconv, and the RFC
 * 5051 i;unicode-casemap fold for Latin, Greek and Cyrillic. Every
 * decoder accepts any bytes (broken input decodes to something, never
 * fails) and its output is bounded by its input. Not a MIME parser:
 * imap_mime.c finds the parts.
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/util.h>

#include "imap_decode.h"

/* ---- base64 and quoted-printable ------------------------------------------------ */

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

size_t
imap_base64_decode(const char *in, size_t len, char *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < len && in[i] != '='; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			continue;	/* line breaks and garbage (RFC 2045 6.8: ignore) */
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return o;
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

/* Length of a soft line break ("=" [white space] CRLF or LF) at in[i], or 0. */
static size_t
soft_break(const char *in, size_t len, size_t i)
{
	size_t j = i + 1;

	while (j < len && (in[j] == ' ' || in[j] == '\t'))
		j++;
	if (j < len && in[j] == '\n')
		return j + 1 - i;
	if (j + 1 < len && in[j] == '\r' && in[j + 1] == '\n')
		return j + 2 - i;
	return j == len ? j - i : 0;	/* "=" at the very end: drop it */
}

size_t
imap_qp_decode(const char *in, size_t len, char *out, int header)
{
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)in[i];
		if (c == '=') {
			int hi = i + 2 < len ? hex_value((unsigned char)in[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value((unsigned char)in[i + 2]) : -1;
			size_t soft;
			if (hi >= 0 && lo >= 0) {
				out[o++] = (char)(hi << 4 | lo);
				i += 3;
			} else if (!header && (soft = soft_break(in, len, i)) > 0) {
				i += soft;
			} else {
				out[o++] = '=';	/* broken: keep it (RFC 2045 6.7 note 2) */
				i++;
			}
			continue;
		}
		out[o++] = header && c == '_' ? ' ' : (char)c;
		i++;
	}
	return o;
}

/* ---- charsets ------------------------------------------------------------------- */

/* Charsets whose bytes are already UTF-8 (or a subset of it). */
static int
is_utf8_name(const char *cs)
{
	return cs == NULL || cs[0] == '\0' || strcasecmp(cs, "utf-8") == 0 ||
	    strcasecmp(cs, "utf8") == 0 || strcasecmp(cs, "us-ascii") == 0 ||
	    strcasecmp(cs, "ascii") == 0;
}

int
imap_charset_known(const char *charset)
{
	iconv_t cd;

	if (is_utf8_name(charset))
		return 1;
	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return 0;
	iconv_close(cd);
	return 1;
}

static char *
copy_bytes(const char *in, size_t len, size_t *out_len)
{
	char *o = malloc(len + 1);

	if (o == NULL)
		return NULL;
	memcpy(o, in, len);
	o[len] = '\0';
	*out_len = len;
	return o;
}

static int
grow(char **out, size_t *cap)
{
	char *bigger = mp_array_grow(*out, cap, *cap + 1, 1);

	if (bigger == NULL)
		return -1;
	*out = bigger;
	return 0;
}

/* Run cd over in; an invalid or truncated sequence becomes '?' and
 * conversion goes on after its first byte. */
static char *
convert(iconv_t cd, const char *in, size_t len, size_t *out_len)
{
	size_t cap = len * 2 + 16, used = 0, ileft = len;
	char *out = malloc(cap), *ip = (char *)in;

	while (out != NULL && ileft > 0) {
		if (cap - used < 8 && grow(&out, &cap) < 0)
			break;
		char *op = out + used;
		size_t oleft = cap - used - 2;	/* room for a '?' and the NUL */
		size_t r = iconv(cd, &ip, &ileft, &op, &oleft);
		used = (size_t)(op - out);
		if (r != (size_t)-1)
			continue;
		if (errno == E2BIG) {
			if (grow(&out, &cap) < 0)
				break;
			continue;
		}
		out[used++] = '?';	/* EILSEQ, or EINVAL: cut short at the end */
		ip++;
		ileft--;
	}
	if (out == NULL || ileft > 0) {
		free(out);
		return NULL;
	}
	out[used] = '\0';
	*out_len = used;
	return out;
}

char *
imap_to_utf8(const char *charset, const char *in, size_t len, size_t *out_len)
{
	iconv_t cd;
	char *out;

	if (is_utf8_name(charset))
		return copy_bytes(in, len, out_len);
	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return copy_bytes(in, len, out_len);	/* unknown: raw bytes */
	out = convert(cd, in, len, out_len);
	iconv_close(cd);
	return out;
}

/* ---- RFC 2047 encoded words ----------------------------------------------------- */

struct word {
	char charset[64];
	int b;			/* B (base64) or Q encoding */
	const char *text;	/* the encoded text */
	size_t tlen;
	size_t end;		/* offset just past "?=" */
};

/* Parse "=?charset?e?text?=" at in[i]; 1 on success. */
static int
parse_word(const char *in, size_t len, size_t i, struct word *w)
{
	size_t j = i + 2, cs;

	if (i + 1 >= len || in[i] != '=' || in[i + 1] != '?')
		return 0;
	for (cs = j; j < len && in[j] != '?' && in[j] > ' ' && in[j] < 0x7f; j++)
		;
	if (j == cs || j - cs >= sizeof(w->charset) || j + 2 >= len || in[j + 2] != '?')
		return 0;
	memcpy(w->charset, in + cs, j - cs);
	w->charset[j - cs] = '\0';
	char *lang = strchr(w->charset, '*');	/* RFC 2231 5: charset*language */
	if (lang)
		*lang = '\0';
	if (in[j + 1] != 'B' && in[j + 1] != 'b' && in[j + 1] != 'Q' && in[j + 1] != 'q')
		return 0;
	w->b = in[j + 1] == 'B' || in[j + 1] == 'b';
	w->text = in + j + 3;
	for (j += 3; j + 1 < len; j++) {
		if (in[j] == '\r' || in[j] == '\n')
			return 0;
		if (in[j] == '?' && in[j + 1] == '=') {
			w->tlen = (size_t)(in + j - w->text);
			w->end = j + 2;
			return 1;
		}
	}
	return 0;
}

/* Decoded bytes of adjacent words in one charset, converted together so a
 * character split across two words survives. */
struct pending {
	char charset[64];
	struct mp_str raw;
};

static void
flush(struct pending *pd, struct mp_str *o)
{
	size_t n;
	char *u;

	if (pd->raw.len == 0)
		return;
	u = imap_to_utf8(pd->charset, pd->raw.p, pd->raw.len, &n);
	if (u == NULL)
		o->failed = 1;
	else
		mp_str_put(o, u, n);
	free(u);
	pd->raw.len = 0;
}

static void
add_word(struct pending *pd, struct mp_str *o, const struct word *w)
{
	char *tmp = malloc(w->tlen + 4);
	size_t n;

	if (tmp == NULL) {
		o->failed = 1;
		return;
	}
	n = w->b ? imap_base64_decode(w->text, w->tlen, tmp) :
	    imap_qp_decode(w->text, w->tlen, tmp, 1);
	if (strcasecmp(pd->charset, w->charset) != 0) {
		flush(pd, o);
		memcpy(pd->charset, w->charset, sizeof(pd->charset));
	}
	mp_str_put(&pd->raw, tmp, n);
	free(tmp);
	if (pd->raw.failed)
		o->failed = 1;
}

static int
all_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

char *
imap_decode_words(const char *in, size_t len, size_t *out_len)
{
	struct mp_str o = { 0 };
	struct pending pd = { { 0 }, { 0 } };
	size_t i = 0, plain = 0;	/* in[plain..i) not yet copied */
	int after_word = 0;
	struct word w;

	mp_str_put(&o, "", 0);
	while (i < len) {
		const char *q = memchr(in + i, '=', len - i);
		if (q == NULL)
			break;
		i = (size_t)(q - in);
		if (!parse_word(in, len, i, &w)) {
			i++;
			continue;
		}
		/* RFC 2047 6.2: white space between adjacent encoded words is dropped */
		if (!(after_word && all_space(in + plain, i - plain))) {
			flush(&pd, &o);
			mp_str_put(&o, in + plain, i - plain);
		}
		add_word(&pd, &o, &w);
		i = plain = w.end;
		after_word = 1;
	}
	flush(&pd, &o);
	mp_str_put(&o, in + plain, len - plain);
	free(pd.raw.p);
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	*out_len = o.len;
	return o.p;
}

/* ---- i;unicode-casemap ---------------------------------------------------------- */

/* One code point of Latin-1, Latin Extended-A, Greek or Cyrillic mapped to
 * the lower-case member of its titlecase class (RFC 5051 2.1 step 1). */
static uint32_t
fold_latin(uint32_t c)
{
	if (c == 0xb5) return 0x3bc;	/* micro sign: Greek mu */
	if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 0x20;
	if (c == 0x130 || c == 0x131) return 'i';	/* dotted I, dotless i */
	if (c == 0x178) return 0xff;
	if (c == 0x17f) return 's';	/* long s */
	if ((c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177))
		return c | 1;	/* pairs: even upper, odd lower */
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
		return (c & 1) ? c + 1 : c;	/* pairs: odd upper, even lower */
	return c;
}

static uint32_t
fold_greek(uint32_t c)
{
	static const uint32_t symbols[][2] = {
		{ 0x386, 0x3ac }, { 0x388, 0x3ad }, { 0x389, 0x3ae }, { 0x38a, 0x3af },
		{ 0x38c, 0x3cc }, { 0x38e, 0x3cd }, { 0x38f, 0x3ce }, { 0x3c2, 0x3c3 },
		{ 0x3d0, 0x3b2 }, { 0x3d1, 0x3b8 }, { 0x3d5, 0x3c6 }, { 0x3d6, 0x3c0 },
		{ 0x3f0, 0x3ba }, { 0x3f1, 0x3c1 }, { 0x3f5, 0x3b5 },
	};

	if (c >= 0x391 && c <= 0x3ab && c != 0x3a2) return c + 0x20;
	for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++)
		if (symbols[i][0] == c)
			return symbols[i][1];
	return c;
}

static uint32_t
fold_cyrillic(uint32_t c)
{
	if (c >= 0x400 && c <= 0x40f) return c + 0x50;
	if (c >= 0x410 && c <= 0x42f) return c + 0x20;
	if (c == 0x4c0) return 0x4cf;
	if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) ||
	    (c >= 0x4d0 && c <= 0x52f))
		return c | 1;
	if (c >= 0x4c1 && c <= 0x4ce)
		return (c & 1) ? c + 1 : c;
	return c;
}

static uint32_t
fold_cp(uint32_t c)
{
	if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 0x20 : c;
	if (c < 0x370) return fold_latin(c);
	if (c < 0x400) return fold_greek(c);
	if (c < 0x530) return fold_cyrillic(c);
	if (c == 0x1e9e) return 0xdf;	/* capital sharp s */
	if (c == 0x2126) return 0x3c9;	/* Ohm sign: omega */
	if (c == 0x212a) return 'k';	/* Kelvin sign */
	if (c == 0x212b) return 0xe5;	/* Angstrom sign: a with ring */
	return c;
}

/* The code point of the UTF-8 sequence at s (at most 3 bytes: all the
 * characters folded are in the BMP) and its length; 0 when not valid. */
static size_t
utf8_char(const unsigned char *s, size_t len, uint32_t *cp)
{
	if (s[0] >= 0xc2 && s[0] <= 0xdf && len >= 2 && (s[1] & 0xc0) == 0x80) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0 && len >= 3 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return *cp >= 0x800 ? 3 : 0;
	}
	return 0;
}

static size_t
utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

size_t
imap_casefold(const char *in, size_t len, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n;
		if (s[i] < 0x80) {
			out[o++] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 0x20 : s[i]);
			i++;
		} else if ((n = utf8_char(s + i, len - i, &cp)) > 0) {
			uint32_t f = fold_cp(cp);
			/* a folded character is never longer (checked by the unit test) */
			o += f == cp ? (memmove(out + o, in + i, n), n) : utf8_put(f, out + o);
			i += n;
		} else {
			out[o++] = (char)s[i++];	/* invalid or 4-byte lead: kept */
		}
	}
	return o;
}

int
imap_is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}
