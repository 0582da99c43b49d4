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

/* When the selected folder's changes are reported before a command's
 * tagged reply (RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE, SEARCH). */
enum imap_sync {
	IMAP_SYNC_NONE = 0,
	IMAP_SYNC_NO_EXPUNGE = 1,
	IMAP_SYNC_FULL = 2
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
	size_t n, msgs_cap;
	char *kw_known;		/* keywords the client was told of in FLAGS */
	enum imap_sync sync;	/* due before the running command's tagged reply */
	char *line;		/* max_line + 2 octets: the line being read */
	const char *command;	/* the name of the command not answered yet
				 * ("" before it is parsed); NULL after its
				 * tagged reply (imap_count.c) */
};

void imap_session(void *ctx, struct mp_conn *conn);

#define IMAP_CAPS "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS MOVE IDLE NAMESPACE ENABLE " \
	"UNSELECT CHILDREN ID SPECIAL-USE"

/* Argument i as a string (atom, quoted, literal or NIL as "NIL"), or
 * NULL when absent or a list. */
const char *imap_astring(const struct imap_cmd *cmd, size_t i);
/* RFC 3501 5.1: INBOX is case-insensitive. */
const char *imap_mailbox_name(const char *name);
/* 1 if cmd has n arguments, else a tagged BAD and 0. */
int imap_need_args(struct imap *s, const struct imap_cmd *cmd, size_t n);
/* LOGIN / AUTHENTICATE allowed on this connection (TLS, or loopback
 * with plaintext_auth). */
int imap_auth_allowed(struct imap *s);

/*
 * Command handlers, one per row of the command table (imap_session.c);
 * uid is 1 for the "UID x" form. imap_auth.c: LOGIN, AUTHENTICATE,
 * STARTTLS. imap_mailbox.c: the folder list and hierarchy.
 * imap_message.c: selecting and changing messages.
 */
typedef void imap_handler(struct imap *s, const struct imap_cmd *cmd, int uid);
imap_handler imap_cmd_login, imap_cmd_authenticate, imap_cmd_starttls;
imap_handler imap_cmd_list, imap_cmd_lsub, imap_cmd_create, imap_cmd_delete,
    imap_cmd_rename, imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_status;
imap_handler imap_cmd_select, imap_cmd_examine, imap_cmd_append, imap_cmd_check,
    imap_cmd_close, imap_cmd_unselect, imap_cmd_expunge, imap_cmd_store, imap_cmd_copy,
    imap_cmd_move, imap_cmd_idle;

/* Replies. imap_tagged first reports the selected folder's changes
 * (s->sync, set per command from the command table) unless it is a BAD. */
void imap_untagged(struct imap *s, const char *fmt, ...) MP_PRINTF(2, 3);
void imap_tagged(struct imap *s, const char *tag, const char *fmt, ...) MP_PRINTF(3, 4);
/* Count s->command with reply's outcome (host->count_command), once. */
void imap_count_reply(struct imap *s, const char *reply);

/* Flags as "(\Seen \Flagged kw)". */
void imap_flags_text(uint32_t flags, const char *keywords, char *out, size_t size);

/* Resolve a set argument (sequence numbers, or UIDs when uid) into
 * 0-based indexes of s->msgs; -1 when malformed. Caller frees *idx_r. */
int imap_resolve_set(struct imap *s, const char *set, int uid, size_t **idx_r,
    size_t *n_r);

/* The selected-folder view (imap_view.c). open loads it after
 * folder_open and sends FLAGS, PERMANENTFLAGS, EXISTS and RECENT (0, or
 * -1 when the store fails); sync reports what changed since (EXPUNGE
 * only when quiet_expunge is 0); close closes the folder. */
int imap_view_open(struct imap *s);
void imap_view_sync(struct imap *s, int quiet_expunge);
void imap_view_close(struct imap *s);
/* Drop message i from the view, sending "* i+1 EXPUNGE" if announce. */
void imap_view_remove(struct imap *s, size_t i, int announce);
/* Send FLAGS / PERMANENTFLAGS if keywords holds one the client has not
 * been told of. */
void imap_view_keywords(struct imap *s, const char *keywords);
/* Record message i's flags as stored (announcing new keywords). */
void imap_view_set_flags(struct imap *s, size_t i, uint32_t flags, const char *keywords);
/* A message's keywords: a copy of keywords (NULL or "" share one empty
 * string). 0, or -1 out of memory (then unchanged). */
int imap_msg_set_keywords(struct imap_msg *m, const char *keywords);
void imap_msg_free_keywords(struct imap_msg *m);
/* "* i+1 FETCH ([UID u ]FLAGS (...))" from the view. */
void imap_view_fetch_flags(struct imap *s, size_t i, int with_uid);
/* Change message i's flags in the store (flags_change: add / remove /
 * replace on the stored flags, store.h contract 3) and record the
 * result in the view. MP_OK, MP_DECLINED (expunged) or an error. */
int imap_view_change(struct imap *s, size_t i, enum mp_flags_how how, uint32_t flags,
    const char *keywords);
/* Keywords have with change applied (case-insensitive, no duplicates). */
void imap_keywords_apply(const char *have, enum mp_flags_how how, const char *change,
    char *out, size_t size);

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

/* ---- MIME (imap_mime.c, imap_bodystructure.c) ---- */

/* A parsed BODY[section] (RFC 3501 6.4.5). */
#define IMAP_SECTION_MAX_PARTS 128
#define IMAP_SECTION_MAX_FIELDS 256
enum imap_section_text {
	IMAP_SECTION_ALL,	/* none: the message, or a part's body */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_FIELDS,	/* HEADER.FIELDS (names) */
	IMAP_SECTION_FIELDS_NOT,	/* HEADER.FIELDS.NOT (names) */
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME
};
struct imap_section {
	uint32_t part[IMAP_SECTION_MAX_PARTS];	/* "4.2.1" */
	size_t nparts;
	enum imap_section_text text;
	const char *fields;	/* FIELDS: the names inside the parentheses, */
	size_t fields_len;	/* pointing into the parsed text */
};

/* Parse a section ("", "1.2.HEADER", "HEADER.FIELDS (A \"B\")"): 0, or
 * -1 when malformed (the FETCH is then BAD). */
int imap_section_parse(const char *text, struct imap_section *sec);

/* A message's MIME tree (RFC 2045/2046): multiparts, message/rfc822
 * and digest parts are descended into, up to bounded depth and part
 * count. msg must outlive it. NULL only when out of memory. */
struct imap_mime;
struct imap_mime *imap_mime_parse(const char *msg, size_t len);
void imap_mime_free(struct imap_mime *t);

/*
 * The bytes of a section of msg. t is the tree of msg; it may be NULL
 * when the section has no part numbers, and msg may then be the header
 * alone if the section is HEADER or HEADER.FIELDS. 1, or 0 when no such
 * part exists (FETCH then sends an empty string). For HEADER.FIELDS
 * the bytes are built in *owned_r, which the caller frees; otherwise
 * *owned_r is NULL and *start_r points into msg.
 */
int imap_mime_section(const char *msg, size_t len, const struct imap_mime *t,
    const struct imap_section *sec, const char **start_r, size_t *len_r, char **owned_r);

/* BODYSTRUCTURE (extended) or BODY of a parsed message (RFC 3501
 * 7.4.2); *out is malloc'ed, NULL when out of memory. */
void imap_mime_bodystructure(const struct imap_mime *t, int extended, char **out,
    size_t *outlen);

/* Shorthands over one message: parse, answer, free. */
void imap_bodystructure(const char *msg, size_t len, int extended, char **out,
    size_t *outlen);
/* The bytes of a section given as text; -1 when malformed or missing. */
int imap_section(const char *msg, size_t len, const char *section, const char **start,
    size_t *slen, char **owned);

/* ENVELOPE (RFC 3501 7.4.2) from the header of msg (the whole message
 * or its header alone). *out is malloc'ed. */
void imap_envelope(const char *msg, size_t len, char **out, size_t *outlen);

/* Each leaf part of msg, depth first, descending into multiparts and
 * message/rfc822 parts: hdr/hlen is its MIME header (the message header
 * for a single-part message), body/blen its body, still encoded. */
void imap_mime_leaves(const char *msg, size_t len,
    void (*each)(void *arg, const char *hdr, size_t hlen, const char *body, size_t blen),
    void *arg);
/* The value of the first header field called name in msg (unfolded,
 * leading white space removed, NUL-terminated, malloc'ed) or NULL. */
char *imap_header(const char *msg, size_t len, const char *name);

/* ---- RFC 5322 addresses (imap_address.c) ---- */

enum imap_addr_kind {
	IMAP_ADDR_MAILBOX,	/* one address */
	IMAP_ADDR_GROUP,	/* "name:" starting a group; name set */
	IMAP_ADDR_GROUP_END	/* the ";" ending it; all fields NULL */
};

struct imap_addr {
	enum imap_addr_kind kind;
	const char *name;	/* display name, quotes removed, RFC 2047 words
				 * as they are; or the comment of "u@d (Name)";
				 * for a group its name; NULL when none */
	const char *route;	/* obsolete source route "@r1,@r2", or NULL */
	const char *mailbox;	/* local part, quotes removed; NULL if missing */
	const char *host;	/* domain ("[1.2.3.4]" kept); NULL if missing */
};

/* At most this many addresses (group marks included) per field. */
#define IMAP_ADDR_MAX 10000

/*
 * Parse an address-list field value (From, To, ...; folded or not) and
 * call each(arg, a) for every address and group mark in order. The
 * strings are valid during the call only. What does not parse is
 * skipped up to the next comma. Cost is linear in len. Returns the
 * number of calls made.
 */
size_t imap_addresses(const char *value, size_t len,
    void (*each)(void *arg, const struct imap_addr *a), void *arg);

#endif
