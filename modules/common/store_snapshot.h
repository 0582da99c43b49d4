/*
 * modules/common/store_snapshot.h - an open folder's view for the SQL
 * stores (store_sqlite, store_pgsql; store_snapshot.c): its messages'
 * UIDs, flags, sizes and keywords in UID order, the \Recent UIDs this
 * handle claimed, and what EXPUNGE and STORE need from the view.
 *
 * The database side (reading rows, the compare-and-set that claims
 * \Recent) stays in each module: it hands rows in as mp_msg_info and
 * the claim as a callback. Not thread-safe: a folder handle belongs to
 * one session (store.h).
 */
#ifndef MERPATI_COMMON_STORE_SNAPSHOT_H
#define MERPATI_COMMON_STORE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include <merpati/merpati.h>

/* UIDs first..last, claimed as \Recent by this handle. */
struct store_claim {
	uint32_t first, last;
};

struct store_snapshot {
	int read_only;		/* claims nothing; \Recent is "above seen_uid" */
	uint32_t uidvalidity, uidnext;
	uint32_t seen_uid;	/* the last UID claimed by anyone, as last read */
	struct store_claim *claims;
	size_t nclaims;
	struct mp_msg_info *info;	/* n messages, UID order */
	char **keywords;		/* info[i].keywords, owned */
	size_t n, info_cap, keywords_cap;
	char *result;		/* the last flags_change / folder_keywords text */
};

/* Forget the messages (not the claims); the snapshot stays usable. */
void snapshot_clear(struct store_snapshot *ss);
/* Free everything the snapshot holds. */
void snapshot_fini(struct store_snapshot *ss);

/* Room for n messages; 0 or -1 (out of memory). */
int snapshot_reserve(struct store_snapshot *ss, size_t n);
/*
 * Set message i (i <= ss->n; i == ss->n appends) to m, its keywords
 * copied and \Recent set from the claims. A UID at or above uidnext
 * (committed after the folder's state was read) moves uidnext past it.
 * 0 or -1 (out of memory; the snapshot keeps its first ss->n entries).
 */
int snapshot_put(struct store_snapshot *ss, size_t i, const struct mp_msg_info *m);
/*
 * Merge one changed message: a known UID gets m's flags and keywords, a
 * UID above the last is appended. 0, -1 (out of memory) or 1 when m's
 * UID falls between known ones (an import with its own UID): then only
 * a whole re-read makes the view right.
 */
int snapshot_merge(struct store_snapshot *ss, const struct mp_msg_info *m);
/* The index of uid, or ss->n when the snapshot does not hold it. */
size_t snapshot_find(const struct store_snapshot *ss, uint32_t uid);

/*
 * \Recent (store.h contract 5) once the folder's seen mark was read as
 * seen: a read-write handle that claims (claim != 0; only messages()
 * does) asks the database to move the mark from seen to UIDNEXT - 1
 * through cas, and the UIDs in between are its own when cas won (1)
 * rather than lost to another claimant (0). A read-only handle claims
 * nothing and remembers the mark. cas returns 1, 0, or -1 (error).
 * 0, or -1 (cas failed or out of memory).
 */
int snapshot_claim(struct store_snapshot *ss, long long seen, int claim,
    int (*cas)(void *arg, long long seen, uint32_t last), void *arg);
/* 1 when uid is \Recent for this handle, else 0. */
int snapshot_is_recent(const struct store_snapshot *ss, uint32_t uid);
/* Set every message's MP_FLAG_RECENT anew (the claims or the mark can
 * move while no message changes). */
void snapshot_mark_recent(struct store_snapshot *ss);

/* The folder_info answer from the snapshot; the caller sized info. */
void snapshot_folder_info(const struct store_snapshot *ss, struct mp_folder_info *info);

/*
 * After flags_change stored flags and kw (malloc'd; the snapshot takes
 * it as ss->result) for uid: the snapshot follows, and *flags_r and
 * *keywords_r (either may be NULL) get them as this handle sees them
 * (\Recent added when it is).
 */
void snapshot_flags_changed(struct store_snapshot *ss, uint32_t uid, uint32_t flags,
    char *kw, uint32_t *flags_r, const char **keywords_r);
/* Keep text (malloc'd, may be NULL) as ss->result; returns it, or ""
 * when NULL, to hand to the caller. */
const char *snapshot_result(struct store_snapshot *ss, char *text);

/*
 * EXPUNGE of a uid the database no longer had: MP_OK when this handle
 * listed it (another session expunged it first: done, as on Maildir),
 * else MP_DECLINED with *error_r "no such message".
 */
int snapshot_expunge_gone(const struct store_snapshot *ss, uint32_t uid, const char **error_r);

#endif
