/*
 * modules/deliver_maildir/maildir_store.h - what delivery
 * (deliver_maildir.c) and the Maildir mailstore (maildir_*.c, see
 * maildir_private.h) share, private to this module.
 */
#ifndef MERPATI_MAILDIR_STORE_H
#define MERPATI_MAILDIR_STORE_H

#include <time.h>

#include <merpati/merpati.h>

/* What the store needs from the module's context. */
struct maildir_store_env {
	const struct mp_host *host;
	const char *root;	/* mail for a@d is in root/d/a/ */
	time_t tmp_max_age;	/* tmp/ files older: left by a crash */
	struct md_watcher *watcher;	/* IDLE's change events (maildir_watch.c) */
	struct md_snaps *snaps;	/* quiet folders' views (maildir_snapshot.c);
				   NULL: every open scans */
};

/* ---- maildir_watch.c: one inotify instance for every folder handle ---- */
struct md_watcher;
struct md_watcher *md_watcher_new(void);
void md_watcher_free(struct md_watcher *w);
/* An eventfd that becomes readable when folder's new/ or cur/ changes,
 * with the watch descriptors to hand back; -1 when inotify is not to be
 * had (the caller polls). */
int md_watch_subscribe(struct md_watcher *w, const char *folder, int wd_r[2]);
void md_watch_unsubscribe(struct md_watcher *w, int fd, const int wd[2]);

/* ---- maildir_snapshot.c: views of quiet folders, shared ---- */
struct md_snaps;
/* Holding at most max_messages messages over all folders; NULL: out of
 * memory. md_snaps_free(NULL) does nothing. */
struct md_snaps *md_snaps_new(size_t max_messages);
void md_snaps_free(struct md_snaps *t);

/* Provided by deliver_maildir.c: the env inside the module context. */
const struct maildir_store_env *maildir_store_env(void *ctx);

/*
 * The user's Maildir path, root/<domain>/<local> lower-cased, refusing
 * anything that could leave root (empty parts, '/', '\\', control
 * characters, a leading '.'). 0, or -1 with *why set.
 */
int maildir_user_path(const char *root, const char *address, char *out,
    size_t size, const char **why);

/* "<secs>.M<usecs>P<pid>Q<n>.<host>": the Maildir spec's unique name,
 * with '/' and ':' in the host name written as \057 and \072. */
void maildir_unique_name(const struct mp_host *host, char *out, size_t size);

/* Create dir and its cur/ new/ tmp/ (mode 0700); maildir_make_path
 * creates missing parents too. 0 or -1 with errno. */
int maildir_make(const char *dir);
int maildir_make_path(const char *dir);

/*
 * The save path's first step, shared by delivery and the store
 * (maildir_save.c): a new file dir/tmp/<unique base> (fd, or -1 with
 * errno; make: create a missing Maildir first), then the message
 * written to it with LF line ends after prefix (may be NULL), its size
 * as served (CRLF) in *vsize_r (may be NULL). 0 or -1 with errno.
 */
int maildir_save_open(const struct mp_host *host, const char *dir, int make,
    char *base, size_t basesize);
int maildir_save_write(int fd, const char *prefix, struct mp_reader *msg,
    uint64_t *vsize_r);

/* fsync() of directory dir, shared with every caller waiting on the
 * same directory (maildir_dirsync.c): returns once an fsync() begun
 * after this call has ended. 0 or -1 with errno. */
int md_dir_sync_group(const char *dir);
/* For tests: the fsync() it calls, and the tickets taken so far on dir
 * while anyone waits on it (0 when no one does). */
extern int (*md_dir_fsync)(int fd);
unsigned long long md_dir_sync_tickets(const char *dir);

extern const struct mp_store_ops maildir_store_ops;

#endif
