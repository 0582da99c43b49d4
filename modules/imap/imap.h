/*
 * modules/imap/imap.h - private to the IMAP module: settings, the
 * session state, and the parts split across files (session, fetch,
 * search, MIME).
 */
#ifndef MERPATI_IMAP_H
#define MERPATI_IMAP_H

#include <merpati/merpati.h>

#include "imap_parse.h"

struct imap_settings {
	int plaintext_auth;	/* LOGIN without TLS from loopback */
	long long timeout;	/* idle seconds; RFC 3501 5.4: at least 30 min */
	long long max_literal;	/* octets */
	long long max_line;	/* octets of one command line */
	long long errors;	/* BAD commands before the connection closes */
	long long auth_failures;
	long long envelope_cache;	/* bytes; 0: off */
};

struct imap_cache;

struct imap_module {
	const struct mp_host *host;
	struct imap_settings set;
	struct imap_cache *cache;	/* ENVELOPEs; NULL when off */
};

/* One message of the selected folder as the client knows it. */
struct imap_msg {
	uint32_t uid;
	uint32_t flags;
	uint64_t size;
	time_t date;
	char *keywords;
};

struct imap {
	const struct imap_module *m;
	const struct mp_host *h;
	struct mp_conn *c;
	const struct mp_store *st;
	int authed, quit, errors, auth_failures;
	char user[320];
	struct mp_mailbox *mb;
	struct mp_folder *f;
	int read_only;
	uint32_t uidvalidity, uidnext;
	char folder_key[600];	/* user and folder: the cache's name for it */
	struct imap_msg *msgs;	/* sequence number = index + 1 */
	size_t n;
};

void imap_session(void *ctx, struct mp_conn *conn);

/* Replies. */
void imap_untagged(struct imap *s, const char *fmt, ...) MP_PRINTF(2, 3);
void imap_tagged(struct imap *s, const char *tag, const char *fmt, ...) MP_PRINTF(3, 4);

/* Flags as "(\Seen \Flagged kw)". */
void imap_flags_text(uint32_t flags, const char *keywords, char *out, size_t size);

/* Resolve a set argument (sequence numbers, or UIDs when uid) into
 * 0-based indexes of s->msgs; -1 when malformed. Caller frees *idx_r. */
int imap_resolve_set(struct imap *s, const char *set, int uid, size_t **idx_r,
    size_t *n_r);

/* Read message i of the selected folder, or its header, into memory
 * (CRLF). */
char *imap_load(struct imap *s, size_t i, enum mp_msg_part part, size_t *len_r);

/* The envelope cache (imap_cache.c): a copy of the text or NULL; put
 * stores a copy. Budget in bytes; when full it is emptied. */
struct imap_cache *imap_cache_new(size_t budget);
void imap_cache_free(struct imap_cache *c);
char *imap_cache_get(struct imap_cache *c, const char *folder, uint32_t uidvalidity,
    uint32_t uid, size_t *len_r);
void imap_cache_put(struct imap_cache *c, const char *folder, uint32_t uidvalidity,
    uint32_t uid, const char *text, size_t len);

int imap_fetch(struct imap *s, const struct imap_cmd *cmd, int uid);
int imap_search(struct imap *s, const struct imap_cmd *cmd, int uid);

/* MIME: BODYSTRUCTURE, ENVELOPE and section lookup over a message. */
void imap_bodystructure(const char *msg, size_t len, int extended, char **out,
    size_t *outlen);
void imap_envelope(const char *msg, size_t len, char **out, size_t *outlen);
/* The bytes of a section ("", "1", "1.2.HEADER", "TEXT", "HEADER.FIELDS (A B)"). */
int imap_section(const char *msg, size_t len, const char *section, const char **start,
    size_t *slen, char **owned);
/* Each leaf part of msg, depth first, descending into multiparts and
 * message/rfc822 parts: hdr/hlen is its MIME header (the message header
 * for a single-part message), body/blen its body, still encoded. */
void imap_mime_leaves(const char *msg, size_t len,
    void (*each)(void *arg, const char *hdr, size_t hlen, const char *body, size_t blen),
    void *arg);
/* The value of header name (unfolded, NUL-terminated, malloc'ed) or NULL. */
char *imap_header(const char *msg, size_t len, const char *name);

#endif
