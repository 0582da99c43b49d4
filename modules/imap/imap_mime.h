/*
 * modules/imap/imap_mime.h - private to the MIME files of the IMAP module
 * (imap_mime.c, imap_bodystructure.c, imap_address.c): the parsed MIME
 * tree, header field access and the RFC 2045 "value; a=b" field parser.
 * The rest of the module uses only what imap.h declares.
 */
#ifndef MERPATI_IMAP_MIME_H
#define MERPATI_IMAP_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "imap.h"

/* Hostile nesting costs bounded time and memory: deeper entities and
 * entities past the part budget are kept as leaves. */
#define MIME_MAX_DEPTH 64
#define MIME_MAX_PARTS 10000

enum mime_kind {
	MIME_LEAF,		/* a single part (or a container past the limits) */
	MIME_MULTIPART,		/* children: its body parts */
	MIME_MESSAGE		/* message/rfc822: one child, the enclosed message */
};

/* One entity: the message itself (index 0), a body part or an enclosed
 * message. Offsets are into the message. */
struct mime_part {
	size_t hdr, hdr_len;	/* its header, with the empty line ending it */
	size_t body, body_len;	/* its body, without the CRLF before a boundary */
	uint32_t first_child, next;	/* indexes; 0 = none (0 is the root) */
	uint32_t nchildren;
	uint8_t kind;		/* enum mime_kind */
	uint8_t degraded;	/* a container turned into a leaf by the limits */
	uint8_t digest_child;	/* in multipart/digest: default message/rfc822 */
};

struct imap_mime {
	const char *msg;
	size_t len;
	struct mime_part *parts;	/* parts[0] is the message */
	size_t n, cap;
};

/* The n-th child (1-based) of part p, or -1. */
long mime_child(const struct imap_mime *t, size_t p, unsigned long n);

/* Length of the header at the start of m (through its empty line, or
 * all of m when there is none). */
size_t mime_header_len(const char *m, size_t len);

/*
 * The raw value (after the colon, still folded, without the final line
 * end) of the first field called name (case-insensitive) in the header
 * hdr..hdr+hlen. 1 found, 0 not.
 */
int mime_field_raw(const char *hdr, size_t hlen, const char *name, const char **v_r,
    size_t *vlen_r);
/* The same value unfolded (RFC 5322 2.2.3) and trimmed of white space
 * at both ends, NUL-terminated and malloc'ed; NULL when absent. */
char *mime_field(const char *hdr, size_t hlen, const char *name);

/* Skip white space and (nested) comments at p. */
const char *mime_skip_cfws(const char *p);
/* An RFC 2045 token (or, when quoted_ok, a quoted string, unquoted) at
 * p copied to *o with a NUL, *o moved past it; the position after it,
 * or NULL when there is none. *o needs room for strlen(p) + 1. */
const char *mime_read_word(const char *p, char **o, int quoted_ok);

/* A structured MIME field: "value[/subtype] *(; attribute=value)"
 * (RFC 2045 5.1, RFC 2183), comments skipped, quoted strings unquoted. */
#define MIME_MAX_PARAMS 64
struct mime_param {
	const char *attr, *val;
};
struct mime_value {
	char *buf;		/* owns the strings and the array below */
	const char *value;	/* "text", "attachment"; NULL when unparseable */
	const char *subtype;	/* when asked for; NULL when missing */
	size_t nparams;		/* at most MIME_MAX_PARAMS */
	struct mime_param *param;
};

/* Parse the unfolded text s; with_subtype for Content-Type. Always
 * fills v (v->value NULL when s does not start with a token); free
 * with mime_value_free. */
void mime_value_parse(const char *s, int with_subtype, struct mime_value *v);
void mime_value_free(struct mime_value *v);
/* The value of parameter attr (case-insensitive), or NULL. */
const char *mime_param(const struct mime_value *v, const char *attr);

/* Content-Type of part p, with the defaults of RFC 2045 5.2 and RFC
 * 2046 5.1.5 (digest parts): *type and *subtype point into v or are
 * static strings. */
void mime_content_type(const struct imap_mime *t, size_t p, struct mime_value *v,
    const char **type, const char **subtype);

#endif
