/*
 * core/filter_headers.h - a message's header section as a list of
 * fields, for the filters' header edits (filter_hooks.c): parse it,
 * check a name or value a filter gives, insert, change or delete a
 * field, and write the section out again. Pure functions, no I/O.
 */
#ifndef MERPATI_FILTER_HEADERS_H
#define MERPATI_FILTER_HEADERS_H

#include <stddef.h>

/* The largest header section filters may edit, and the most fields. */
#define MP_HDRS_MAX_BYTES (1024 * 1024)
#define MP_HDRS_MAX_FIELDS 4096

struct mp_hdrs {
	char **v;		/* each field whole: "Name: value\r\n", folds kept */
	size_t n;
	size_t bytes;		/* sum of the fields' lengths */
};

/*
 * Parse the header section at the start of buf (len bytes, CRLF line
 * ends). *used_r is its length including the empty line that ends it
 * (all of buf when there is none: a message of headers only; then
 * *blank_r is 0). -1 when it is longer than MP_HDRS_MAX_BYTES, has
 * more than MP_HDRS_MAX_FIELDS fields or holds a NUL.
 */
int mp_hdrs_parse(struct mp_hdrs *h, const char *buf, size_t len,
    size_t *used_r, int *blank_r);

/* A field name: printable US-ASCII but ':' (RFC 5322 2.2), 1-200 chars. */
int mp_hdr_name_valid(const char *name);

/* A value: no NUL, no CR or LF except CRLF followed by a space or tab
 * (a fold); at most 64 KiB. */
int mp_hdr_value_valid(const char *value);

/* Insert "name: value" before the index-th field (index >= n: last).
 * 0, or -1 when the section would grow past its limits. */
int mp_hdrs_insert(struct mp_hdrs *h, size_t index, const char *name,
    const char *value);

/* Replace (value) or delete (value NULL) the nth (1-based) field called
 * name, in any case. 1 done, 0 no such field, -1 limits. */
int mp_hdrs_change(struct mp_hdrs *h, const char *name, unsigned nth,
    const char *value);

/* The section, fields one after the other (no empty line), malloc()ed
 * and NUL-terminated; *len_r its length. */
char *mp_hdrs_format(const struct mp_hdrs *h, size_t *len_r);

void mp_hdrs_free(struct mp_hdrs *h);

#endif
