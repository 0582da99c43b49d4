/*
 * core/sendmail_headers.h - the header work of `merpati sendmail` (core
 * only): where the header section ends, whether a field is there, the
 * -t recipients from To/Cc/Bcc and removing Bcc. The text is a CRLF
 * message in an mp_buf and may hold NULs: every step keeps to t->len.
 * tests/fuzz/fuzz_sendmail_headers.c runs these on arbitrary text.
 */
#ifndef MERPATI_SENDMAIL_HEADERS_H
#define MERPATI_SENDMAIL_HEADERS_H

#include <stddef.h>

#include "util.h"

/* Just past the last header line's CRLF: the blank line that ends the
 * section, t->p itself when the message starts with one, the end of
 * the text when there is none. */
const char *sendmail_header_end(const struct mp_buf *t);

/* 1 when the header section has a "name:" field (any case). */
int sendmail_has_header(const struct mp_buf *t, const char *name);

/* Append a copy of addr to the vector *v of *n addresses, unless one
 * equal to it (any case) is already there. */
void sendmail_add_rcpt(char ***v, size_t *n, const char *addr);

/*
 * The addresses of the To, Cc and Bcc fields (all of them, folded lines
 * included), appended to *v; when the message has any Resent-To,
 * Resent-Cc or Resent-Bcc field, those instead (it is being resent:
 * RFC 5322 3.6.6, as sendmail -t does). An address is the "<...>" part
 * of a mailbox, or its addr-spec; it holds no space, control character
 * or list punctuation, and may lack a domain (the caller qualifies it).
 * Stops adding once *n reaches max.
 */
void sendmail_recipients_from_headers(const struct mp_buf *t, char ***v,
    size_t *n, size_t max);

/* Drop Bcc and Resent-Bcc fields (with their folded lines) from the
 * header section. */
void sendmail_remove_bcc(struct mp_buf *t);

#endif
