/*
 * modules/deliver_maildir/maildir_private.h - what the Maildir store's
 * files share: the mailbox and folder structs, the UID list, and the
 * functions each concern exports to the others. Not seen outside this
 * module (maildir_store.h is the module's face to delivery).
 *
 * Who does what:
 *   maildir_names.c    folder paths, unique names, flags in file names
 *   maildir_uidlist.c  read / write / lock merpati-uidlist, \Recent mark
 *   maildir_sync.c     scan new/ and cur/, adopt files, drop vanished
 *   maildir_snapshot.c the last sync of quiet folders, shared by handles
 *   maildir_save.c     the one save path: tmp/ file, then UID under lock
 *   maildir_flags.c    flags_change, keywords, folder_keywords
 *   maildir_store.c    mailbox and folder ops, streams, the ops table
 *
 * Locking rule (store.h contract 1-5): every read-modify-write of the
 * UID list, every rename inside cur/ and every move new/ -> cur/ happens
 * under the folder's list lock, exclusive, on a list read after taking
 * it. So a sync's readdir never misses a file that is being renamed,
 * and no one writes back a stale list. A sync that only reads (nothing
 * to move or write) holds the lock shared, with other such syncs.
 */
#ifndef MERPATI_MAILDIR_PRIVATE_H
#define MERPATI_MAILDIR_PRIVATE_H

#include <limits.h>
#include <stdio.h>
#include <time.h>

#include <merpati/util.h>

#include "maildir_store.h"

#define UIDLIST "merpati-uidlist"
#define UIDLIST_LOCK "merpati-uidlist.lock"
#define POP3_LOCK "merpati-pop3.lock"
#define SUBSCRIPTIONS "merpati-subscriptions"
#define LAST_UIDVALIDITY "merpati-uidvalidity"

/* Folder paths stay well under PATH_MAX so that any file name fits. */
#define DIR_MAX (PATH_MAX - 1024)
/* Longest base name (unique name) and file name we make or accept. */
#define BASE_MAX 300
#define NAME_MAX_MD 600
/* Bounds on what clients can make the list hold (hostile input). */
#define KEYWORDS_MAX 256	/* distinct keywords per folder */

struct mp_mailbox {
	const struct maildir_store_env *env;
	char path[DIR_MAX];
};

struct md_entry {
	uint32_t uid;
	uint32_t flags;		/* from the file name, plus RECENT */
	uint64_t vsize;		/* size with CRLF line ends */
	time_t mtime;		/* INTERNALDATE; 0: read it from the file */
	char *base;		/* file name up to ':' */
	char *file;		/* "cur/<name>" or "new/<name>"; NULL if unseen */
	char *keywords;		/* space separated, "" when none */
};

/* The UID list: header, folder keywords, one entry per message. */
struct md_list {
	uint32_t uidvalidity, uidnext;
	char *keywords;		/* every keyword of the folder, in first spelling */
	struct md_entry *e;	/* sorted by UID */
	size_t n, cap;
	uint32_t uidnext_read;	/* UIDNEXT as read (no \Recent mark yet:
				   the mark starts here) */
	uint32_t gen;		/* the lock file's generation when read */
	int dirty;		/* differs from the file: write it */
	int appendable;		/* read from an M4 file ending in a whole
				   line: a new entry may be appended to it */
};

/* What the lock file holds besides being locked. */
struct md_lockstate {
	uint32_t unclaimed;	/* first UID no read-write handle claimed */
	uint32_t gen;		/* bumped by every list write */
};

/* The change times and inodes of new/, cur/, the UID list and its lock
 * file: every change to a folder moves one of them. */
#define MD_STAMPED 4
struct md_stamps {
	struct timespec mtime[MD_STAMPED];
	ino_t ino[MD_STAMPED];
	int valid;	/* 0: no full sync to compare with */
	int quiet;	/* every stamp was two seconds old when read */
	int claimed;	/* that sync claimed \Recent */
};

struct mp_folder {
	struct mp_mailbox *mb;
	char path[DIR_MAX];
	int dir_fd;		/* O_PATH: short lookups for cur/x, new/x */
	int list_fd;		/* merpati-uidlist.lock, flock()ed per change */
	int read_only;
	struct md_list list;	/* the view at the last sync */
	struct md_list fresh;	/* the list as last read for a change, when
				   the view was no longer current */
	struct mp_msg_info *info;
	uint32_t *recent;	/* UIDs this handle claimed (\Recent), sorted */
	size_t nrecent;
	uint32_t unclaimed;	/* read-only: first UID nobody claimed yet */
	int lock_fd, notify_fd;	/* notify_fd: an eventfd from the watcher */
	int notify_wd[2];
	char *result_kw;	/* flags_change's keywords result */
	struct md_stamps seen;	/* what the last full sync saw */
};

/* Set *error_r to "what: strerror(errno)" (thread-local text); rc. */
int md_fail(const char **error_r, const char *what, int rc);

/* ---- maildir_names.c ---- */
/* IMAP name "a/b" -> <mailbox>/.a.b; INBOX is the Maildir. 0 or -1. */
int md_folder_dir(const struct mp_mailbox *mb, const char *name, char *out,
    size_t size);
/* Flags from a file name's ":2," info; the name for base + flags. */
uint32_t md_flags_of(const char *file);
void md_file_name(const char *base, uint32_t flags, char *out, size_t size);
/* The base (up to ':') of a file name into out. */
void md_base_of(const char *name, char *out, size_t size);

/* ---- maildir_uidlist.c ---- */
/* Take / drop the folder's list lock on fd (flock). 0 or -1. The
 * shared lock is for reading only (a sync that changes nothing). */
int md_list_lock(int fd);
int md_list_lock_shared(int fd);
void md_list_unlock(int fd);
/* Open dir's lock file (not locked). fd or -1. */
int md_list_lock_open(const char *dir);
/*
 * Read dir's list (lock on lock_fd held). A missing or broken list
 * gives an empty one with a UIDVALIDITY the mailbox never used
 * (mailbox_dir keeps the last one) and dirty set. 0, or -1 with errno.
 */
int md_list_read(const char *dir, const char *mailbox_dir, int lock_fd,
    struct md_list *l);
/*
 * Parse a list's text from fp into the empty l (no I/O beyond fp, for
 * md_list_read and the fuzzer): its version (1-4; older than 3 marked
 * dirty, their keywords registered), 0 when the first line is no list
 * header (l is then empty), -1 when out of memory.
 */
int md_list_parse(FILE *fp, struct md_list *l);
/* Write l as dir's list (temp file, fsync, rename; lock held) and bump
 * the generation (l->gen gets it). 0 / -1. */
int md_list_write(const char *dir, int lock_fd, struct md_list *l);
/*
 * Append e, l's newest entry, to dir's list as it was read into l (l
 * appendable, lock held) and bump the generation. Not yet durable: the
 * caller makes it so with fdatasync(*fd_r) once it has let go of the
 * lock, then closes *fd_r. 0, or -1 with errno (the file unchanged).
 */
int md_list_append(const char *dir, int lock_fd, struct md_list *l,
    const struct md_entry *e, int *fd_r);
void md_list_free(struct md_list *l);
/* dst becomes a copy of src it owns. 0, or -1 out of memory (dst empty). */
int md_list_copy(struct md_list *dst, const struct md_list *src);
/* Add an entry (keeps UID order); NULL when out of memory. */
struct md_entry *md_list_add(struct md_list *l, uint32_t uid,
    uint64_t vsize, time_t mtime, const char *base, const char *keywords);
struct md_entry *md_list_find(const struct md_list *l, uint32_t uid);
/* The lock file's state (lock held); dflt_unclaimed when none yet. */
void md_lockstate_read(int lock_fd, struct md_lockstate *st,
    uint32_t dflt_unclaimed);
void md_lockstate_write(int lock_fd, const struct md_lockstate *st);

/* ---- maildir_snapshot.c: quiet folders' last sync, process-wide ---- */
/* Every stamp (time and inode) the same. */
int md_stamps_equal(const struct md_stamps *a, const struct md_stamps *b);
/* Copy into the empty out the list a sync of path (access read_only)
 * gave when the folder had the stamps `now` has: 1, or 0 when there is
 * none (t NULL, stamps not quiet, changed, out of memory). */
int md_snap_get(struct md_snaps *t, const char *path, int read_only,
    const struct md_stamps *now, struct md_list *out);
/* Keep a copy of l, the list a sync gave after seeing `seen`. */
void md_snap_put(struct md_snaps *t, const char *path, int read_only,
    const struct md_stamps *seen, const struct md_list *l);

/* ---- maildir_sync.c ---- */
/* Bring f's view in step with the disk (takes the list lock); claim:
 * a read-write handle claims \Recent (messages(), not folder_open). */
int md_sync(struct mp_folder *f, int claim, const char **error_r);
/* Rebuild f->info from f->list. 0 or -1 (memory). */
int md_build_info(struct mp_folder *f);
/*
 * The current name ("cur/x:2,S" or "new/x") of the file with this base,
 * found by reading cur/ and new/: for a name that went stale because
 * another session renamed it. 1 found, 0 gone, -1 error.
 */
int md_locate(const struct mp_folder *f, const char *base, char *out,
    size_t size);

/* ---- maildir_flags.c ---- */
/*
 * Apply how/flags/given to (*flags, current keywords) with the folder's
 * keyword table l->keywords (new keywords are added to it, in the given
 * spelling). *kw_r gets the message's new keywords (malloc). 0, or -1:
 * out of memory, an invalid keyword or too many keywords (*why set).
 */
/* Add kw's keywords to the folder's table if missing. 0, -1 memory. */
int md_keywords_register(struct md_list *l, const char *kw);
int md_keywords_apply(struct md_list *l, const char *current,
    enum mp_flags_how how, const char *given, char **kw_r, const char **why);
int md_flags_change(struct mp_folder *f, uint32_t uid, enum mp_flags_how how,
    uint32_t flags, const char *keywords, uint32_t *flags_r,
    const char **keywords_r, const char **error_r);
int md_flags_set(struct mp_folder *f, uint32_t uid, uint32_t flags,
    const char *keywords, const char **error_r);
int md_folder_keywords(struct mp_folder *f, const char **keywords_r,
    const char **error_r);

/* ---- maildir_save.c (delivery's half is in maildir_store.h) ---- */
int md_append(struct mp_mailbox *mb, const char *folder, struct mp_reader *msg,
    uint32_t flags, time_t date, uint32_t *uid_r, uint32_t *uidvalidity_r,
    const char **error_r);
int md_copy(struct mp_folder *f, uint32_t uid, const char *dest, int move,
    uint32_t *uid_r, uint32_t *uidvalidity_r, const char **error_r);
int md_import(struct mp_mailbox *mb, const char *folder, uint32_t uidvalidity,
    uint32_t uid, struct mp_reader *msg, uint32_t flags, const char *keywords,
    time_t date, const char **error_r);
int md_expunge(struct mp_folder *f, uint32_t uid, const char **error_r);

#endif
