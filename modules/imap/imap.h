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
	size_t n;
	char *kw_known;		/* keywords the client was told of in FLAGS */
	enum imap_sync sync;	/* due before the running command's tagged reply */
	char *line;		/* max_line + 2 octets: the line being read */
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
