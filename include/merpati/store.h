/*
 * merpati/store.h - the store kind: the mailstore API through which the
 * POP3 and IMAP modules (and local delivery) read and change mail, so
 * that a storage backend can be swapped without touching them.
 *
 * Model: a user's mailbox holds folders ("INBOX", "Sent", "a/b" with '/'
 * as the hierarchy separator). A folder has a UIDVALIDITY and UIDNEXT
 * (RFC 3501 2.3.1.1) and messages with stable UIDs, sizes, an internal
 * date, flags and keywords. Message content is always served as it goes
 * on the wire: CRLF line ends, and size counts those octets.
 *
 * Threads: one mailbox handle (and the folders opened from it) is used
 * by one session thread at a time; different handles, for the same user
 * or not, may be used concurrently from different threads and processes,
 * and deliveries may add mail at any moment.
 *
 * The concurrency contract. Every store guarantees, across threads and
 * processes (and, for a store shared by several nodes, across nodes):
 *  1. A UID names one message for the life of its folder's UIDVALIDITY:
 *     the bytes, size and internal date served for it never change.
 *     UIDs are assigned under a per-folder serialisation in commit order
 *     (a message visible with UID n means every message that will ever
 *     get a UID below n is visible or expunged), and never reused.
 *  2. A reader sees a message whole or not at all: message_open on an
 *     expunged UID is MP_DECLINED (or serves the complete old bytes from
 *     a handle opened before the expunge), never empty or partial text.
 *  3. Flag changes are add / remove / replace applied to the flags as
 *     stored at that moment, atomically per message (flags_change): two
 *     sessions' +FLAGS \Answered and -FLAGS \Seen both take effect.
 *     No call writes back a session's stale copy.
 *  4. Keywords are atoms compared case-insensitively; a message holds
 *     each at most once, in the spelling first stored in the folder;
 *     the folder remembers every keyword ever set (folder_keywords) for
 *     FLAGS / PERMANENTFLAGS. COPY, MOVE, APPEND and import keep them.
 *  5. \Recent belongs to exactly one session: the first read-write
 *     folder handle whose messages() lists a message claims it
 *     (atomically with the other handles); messages() reports
 *     MP_FLAG_RECENT only to that handle. folder_open alone claims
 *     nothing, so a handle opened only to change flags (APPEND's
 *     keywords) does not steal \Recent from the next SELECT. Read-only
 *     handles claim nothing and report MP_FLAG_RECENT for messages no
 *     handle has claimed yet; folder_info.recent counts what the caller
 *     would see (so call messages() before it).
 *  6. Delivery, APPEND, COPY/MOVE and import share one save path, so
 *     all of the above hold whichever way a message arrives.
 * Protocol modules rely on nothing else (docs/imap.md).
 *
 * Every call returns MP_OK, or MP_TEMPFAIL / MP_ERROR with *error_r, or
 * as stated. Strings in results stay valid until the next call on the
 * same folder.
 */
#ifndef MERPATI_STORE_H
#define MERPATI_STORE_H

#include <merpati/module.h>

/* System flags (RFC 3501 2.3.2). */
enum mp_msg_flag {
	MP_FLAG_SEEN = 1u << 0,
	MP_FLAG_ANSWERED = 1u << 1,
	MP_FLAG_FLAGGED = 1u << 2,
	MP_FLAG_DELETED = 1u << 3,
	MP_FLAG_DRAFT = 1u << 4,
	MP_FLAG_RECENT = 1u << 5	/* read-only: new since the last session */
};

/* How flags_change applies its flags and keywords. */
enum mp_flags_how {
	MP_FLAGS_REPLACE = 0,	/* STORE FLAGS */
	MP_FLAGS_ADD = 1,	/* STORE +FLAGS */
	MP_FLAGS_REMOVE = 2	/* STORE -FLAGS */
};

/* Folder attributes for listing (RFC 3501 LIST, RFC 6154 SPECIAL-USE). */
enum mp_folder_attr {
	MP_FOLDER_NOSELECT = 1u << 0,
	MP_FOLDER_HAS_CHILDREN = 1u << 1,
	MP_FOLDER_SENT = 1u << 2,
	MP_FOLDER_DRAFTS = 1u << 3,
	MP_FOLDER_TRASH = 1u << 4,
	MP_FOLDER_JUNK = 1u << 5,
	MP_FOLDER_SUBSCRIBED = 1u << 6
};

struct mp_mailbox;	/* one user's mailbox, opened by a session */
struct mp_folder;	/* one open folder of it */

/* Filled by folder_info into the caller's struct (caller sets
 * struct_size). */
struct mp_folder_info {
	uint32_t struct_size;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t messages;
	uint32_t unseen;
	uint32_t recent;
};

/* An element of messages()'s array: the store sets struct_size in
 * each, and readers step with MP_ELEM(v, i), not v[i]. */
struct mp_msg_info {
	uint32_t struct_size;
	uint32_t uid;
	uint32_t flags;		/* enum mp_msg_flag */
	uint64_t size;		/* octets with CRLF line ends */
	time_t internal_date;
	const char *keywords;	/* space-separated, "" when none */
};

enum mp_msg_part {
	MP_PART_ALL = 0,	/* the whole message */
	MP_PART_HEADER = 1	/* the header section and its blank line */
};

struct mp_store_ops {
	uint32_t struct_size;

	/* Open user's mailbox ("local@domain"), creating it if needed. */
	int (*open)(void *ctx, const char *user, struct mp_mailbox **mb_r,
	    const char **error_r);
	void (*close)(struct mp_mailbox *mb);

	/* Folders: each(arg, name, attrs) for every folder, INBOX first. */
	int (*folders)(struct mp_mailbox *mb,
	    void (*each)(void *arg, const char *name, unsigned attrs),
	    void *arg, const char **error_r);
	/* MP_DECLINED: exists (create) / does not exist (delete, rename). */
	int (*folder_create)(struct mp_mailbox *mb, const char *name,
	    const char **error_r);
	int (*folder_delete)(struct mp_mailbox *mb, const char *name,
	    const char **error_r);
	int (*folder_rename)(struct mp_mailbox *mb, const char *from,
	    const char *to, const char **error_r);
	int (*folder_subscribe)(struct mp_mailbox *mb, const char *name,
	    int subscribed, const char **error_r);

	/* Open a folder; MP_DECLINED when it does not exist. */
	int (*folder_open)(struct mp_mailbox *mb, const char *name,
	    int read_only, struct mp_folder **f_r, const char **error_r);
	void (*folder_close)(struct mp_folder *f);
	int (*folder_info)(struct mp_folder *f, struct mp_folder_info *info_r,
	    const char **error_r);

	/*
	 * The folder's messages in UID order, synchronised with the disk
	 * at this call (new deliveries appear, expunges by others vanish).
	 * The array belongs to f and stays valid until the next call.
	 */
	int (*messages)(struct mp_folder *f, const struct mp_msg_info **v_r,
	    size_t *n_r, const char **error_r);

	/* A stream over one message (CRLF form); MP_DECLINED: no such UID.
	 * Close it with message_close. */
	int (*message_open)(struct mp_folder *f, uint32_t uid,
	    enum mp_msg_part part, struct mp_reader *r, const char **error_r);
	void (*message_close)(struct mp_reader *r);

	/* Replace the flags (RECENT ignored) and keywords of one message:
	 * flags_change(f, uid, MP_FLAGS_REPLACE, ...) without results. */
	int (*flags_set)(struct mp_folder *f, uint32_t uid, uint32_t flags,
	    const char *keywords, const char **error_r);

	/* Add a message (CRLF or LF input) to a folder; its new UID and
	 * the folder's UIDVALIDITY are returned (for APPENDUID). */
	int (*append)(struct mp_mailbox *mb, const char *folder,
	    struct mp_reader *msg, uint32_t flags, time_t internal_date,
	    uint32_t *uid_r, uint32_t *uidvalidity_r, const char **error_r);

	/* Copy (or move) one message to another folder (for COPYUID). */
	int (*copy)(struct mp_folder *f, uint32_t uid, const char *dest,
	    int move, uint32_t *uid_r, uint32_t *uidvalidity_r,
	    const char **error_r);

	/* Remove one message for good. MP_OK too when another session
	 * removed it first; MP_DECLINED: a UID this handle never listed. */
	int (*expunge)(struct mp_folder *f, uint32_t uid, const char **error_r);

	/*
	 * Exclusive session lock (POP3's maildrop lock, RFC 1939 8):
	 * MP_OK, or MP_DECLINED when another session holds it. Released by
	 * folder_close.
	 */
	int (*lock)(struct mp_folder *f, const char **error_r);

	/*
	 * A file descriptor that becomes readable when the folder may have
	 * changed (for IMAP IDLE), or -1 when the backend cannot tell (the
	 * caller then polls messages()). Owned by f. May be NULL: the
	 * same as always -1.
	 */
	int (*change_fd)(struct mp_folder *f);

	/*
	 * Restore one message with a given UID (mailbox migration between
	 * stores). The folder is created if missing; an empty folder takes
	 * uidvalidity; UIDNEXT moves past uid. MP_DECLINED when uid is
	 * already taken. May be NULL: the store cannot be a migration
	 * target.
	 */
	int (*import)(struct mp_mailbox *mb, const char *folder,
	    uint32_t uidvalidity, uint32_t uid, struct mp_reader *msg,
	    uint32_t flags, const char *keywords, time_t internal_date,
	    const char **error_r);

	/* ---- appended in the store-contract round (ABI 1), part of ABI
	 * 2.0. Either may be NULL: callers then fall back to flags_set
	 * and to the keywords seen in messages(). ---- */

	/*
	 * Change one message's flags (RECENT ignored) and keywords (space
	 * separated atoms, NULL = none) against the flags stored now,
	 * atomically per message (contract 3 and 4). On MP_OK, *flags_r and
	 * *keywords_r (either may be NULL) get the result; the string stays
	 * valid until the next call on f. MP_DECLINED: the UID is gone.
	 */
	int (*flags_change)(struct mp_folder *f, uint32_t uid,
	    enum mp_flags_how how, uint32_t flags, const char *keywords,
	    uint32_t *flags_r, const char **keywords_r, const char **error_r);

	/* Every keyword defined in the folder, space separated ("" when
	 * none); valid until the next call on f. */
	int (*folder_keywords)(struct mp_folder *f, const char **keywords_r,
	    const char **error_r);

	/* ---- since 2.1 (may be NULL) ---- */

	/*
	 * Create or upgrade the store's own storage (a database store's
	 * tables), for `merpati store init`; safe to run again and from
	 * several nodes at once. On MP_OK, *version_r is the schema version
	 * now in place. May be NULL: the store needs no setting up.
	 */
	int (*storage_init)(void *ctx, uint32_t *version_r,
	    const char **error_r);
};

/* ---- helpers every store needs to keep contract 3 and 4 alike ---- */

/* Longest keyword a store must keep (octets). */
#define MP_KEYWORD_LEN_MAX 100

/* The flags after applying flags_change's how and flags to stored
 * (\Recent is never stored). */
static inline uint32_t
mp_flags_apply(uint32_t stored, enum mp_flags_how how, uint32_t flags)
{
	flags &= ~(uint32_t)MP_FLAG_RECENT;
	return how == MP_FLAGS_ADD ? stored | flags :
	    how == MP_FLAGS_REMOVE ? stored & ~flags : flags;
}

/* 1 when w (len octets) can be a keyword: an IMAP atom (RFC 3501 9)
 * of 1 to MP_KEYWORD_LEN_MAX octets. */
static inline int
mp_keyword_valid(const char *w, size_t len)
{
	static const char specials[] = "(){%*\"\\]";

	if (len == 0 || len > MP_KEYWORD_LEN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)w[i];
		if (c <= 0x20 || c >= 0x7f)
			return 0;
		for (const char *sp = specials; *sp; sp++)
			if (c == (unsigned char)*sp)
				return 0;
	}
	return 1;
}

/* What host->store() returns: the store in use (server.mailstore). */
struct mp_store {
	uint32_t struct_size;
	const struct mp_store_ops *ops;
	void *ctx;
};

#endif
