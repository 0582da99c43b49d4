/*
 * modules/imap/imap_decode.h - private to the IMAP module: the decoders
 * SEARCH needs to compare text rather than bytes: base64 and
 * quoted-printable bodies, RFC 2047 encoded words, charset conversion
 * to UTF-8 (glibc iconv) and the RFC 5051 i;unicode-casemap fold. Pure
 * functions over buffers, so they are unit-tested and fuzzed alone.
 */
#ifndef MERPATI_IMAP_DECODE_H
#define MERPATI_IMAP_DECODE_H

#include <stddef.h>

/*
 * Base64 (RFC 2045 6.8) of in[0..len) into out, which holds at least
 * len * 3 / 4 + 3 bytes. Characters outside the alphabet (line breaks,
 * garbage) are skipped; decoding stops at the first '='. Returns the
 * number of bytes written.
 */
size_t imap_base64_decode(const char *in, size_t len, char *out);

/*
 * Quoted-printable (RFC 2045 6.7) of in[0..len) into out, which holds at
 * least len bytes. Soft line breaks are removed; a '=' not followed by
 * two hex digits is kept as it is. With header set, '_' is a space (the
 * Q encoding of RFC 2047 4.2). Returns the number of bytes written.
 */
size_t imap_qp_decode(const char *in, size_t len, char *out, int header);

/*
 * in[0..len) converted from charset to UTF-8 (malloc'ed, NUL-terminated,
 * length in *out_len). An empty, US-ASCII or UTF-8 charset and one
 * iconv does not know give a copy of the bytes; a byte that is invalid
 * in the charset becomes '?'. NULL only when out of memory.
 */
char *imap_to_utf8(const char *charset, const char *in, size_t len, size_t *out_len);

/* 1 if iconv can convert from charset to UTF-8 (SEARCH CHARSET). */
int imap_charset_known(const char *charset);

/*
 * A header value (or a whole header section) with its RFC 2047 encoded
 * words decoded to UTF-8 (malloc'ed, NUL-terminated, length in
 * *out_len); white space between two adjacent encoded words is dropped
 * (RFC 2047 6.2). Text outside encoded words is kept as it is. NULL only
 * when out of memory.
 */
char *imap_decode_words(const char *in, size_t len, size_t *out_len);

/*
 * The RFC 5051 i;unicode-casemap fold, simplified: each UTF-8 character
 * of Latin-1, Latin Extended-A, Greek and Cyrillic (and the Kelvin,
 * Ohm and Angstrom signs) is mapped to one lower-case character that
 * stands for its titlecase class, ASCII likewise; other code points and
 * invalid bytes are kept. The result is never longer than the input, so
 * out may be in and needs len bytes. Returns the length written.
 */
size_t imap_casefold(const char *in, size_t len, char *out);

/* 1 if s[0..len) has no byte above 0x7f. */
int imap_is_ascii(const char *s, size_t len);

#endif
