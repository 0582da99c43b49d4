/*
 * modules/deliver_maildir/maildir_snapshot.c - the last full sync of a
 * quiet folder, shared by every handle of the process.
 *
 * A handle's first sync reads the UID list and every name in cur/
 * (10,000 messages: ~8 ms of CPU, most of an IMAP session that only
 * reads). When a folder's stamps (new/, cur/, the UID list and its lock
 * file: md_stamps) are the ones an earlier full sync saw before it
 * began, and were already two seconds old then, nothing has changed
 * since (the reasoning of unchanged_since_sync in maildir_sync.c: a
 * later change stamps a later time), so that sync's list serves again.
 * Dovecot skips its Maildir rescan on the same evidence, unchanged
 * directory times and its index.
 *
 * Keyed by folder path and access (a read-only sync also lists new/,
 * which a read-write one empties). The messages held over all snapshots
 * are bounded (modules.deliver_maildir.view_cache_messages); the least
 * recently used snapshot goes first. A handle copies a snapshot out
 * (holding a reference, outside the lock) and owns the copy.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maildir_private.h"

/* Folders smaller than this scan about as fast as they copy. */
#define SNAP_MIN_MESSAGES 64

struct md_snap {
	struct md_snap *next;
	char *path;
	int read_only;
	struct md_stamps stamps;	/* as seen before the sync began */
	struct md_list list;
	int refs;		/* copies under way, + 1 while in the table */
	uint64_t used;		/* the table's tick at the last use */
};

struct md_snaps {
	pthread_mutex_t lock;
	struct md_snap *head;
	size_t messages, max_messages;
	uint64_t tick;
};

struct md_snaps *
md_snaps_new(size_t max_messages)
{
	struct md_snaps *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->max_messages = max_messages;
	return t;
}

static void
snap_unref(struct md_snap *s)
{
	if (--s->refs > 0)
		return;
	md_list_free(&s->list);
	free(s->path);
	free(s);
}

/* Take *at out of the table (lock held). */
static void
unlink_snap(struct md_snaps *t, struct md_snap **at)
{
	struct md_snap *s = *at;

	*at = s->next;
	t->messages -= s->list.n;
	snap_unref(s);
}

void
md_snaps_free(struct md_snaps *t)
{
	if (t == NULL)
		return;
	while (t->head)
		unlink_snap(t, &t->head);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int
md_stamps_equal(const struct md_stamps *a, const struct md_stamps *b)
{
	for (int i = 0; i < MD_STAMPED; i++)
		if (a->ino[i] != b->ino[i] ||
		    a->mtime[i].tv_sec != b->mtime[i].tv_sec ||
		    a->mtime[i].tv_nsec != b->mtime[i].tv_nsec)
			return 0;
	return 1;
}

static struct md_snap **
find(struct md_snaps *t, const char *path, int read_only)
{
	struct md_snap **at = &t->head;

	while (*at && ((*at)->read_only != read_only || strcmp((*at)->path, path) != 0))
		at = &(*at)->next;
	return at;
}

int
md_snap_get(struct md_snaps *t, const char *path, int read_only,
    const struct md_stamps *now, struct md_list *out)
{
	struct md_snap **at, *s = NULL;
	int rc;

	if (t == NULL || !now->quiet)
		return 0;
	pthread_mutex_lock(&t->lock);
	at = find(t, path, read_only);
	if (*at && md_stamps_equal(&(*at)->stamps, now)) {
		s = *at;
		s->refs++;
		s->used = ++t->tick;
	} else if (*at)
		unlink_snap(t, at);	/* stale: the folder changed */
	pthread_mutex_unlock(&t->lock);
	if (s == NULL)
		return 0;
	rc = md_list_copy(out, &s->list) == 0;
	pthread_mutex_lock(&t->lock);
	snap_unref(s);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Drop least recently used snapshots until `need` more messages fit. */
static void
make_room(struct md_snaps *t, size_t need)
{
	while (t->head && t->messages + need > t->max_messages) {
		struct md_snap **at = &t->head, **oldest = &t->head;
		for (; *at; at = &(*at)->next)
			if ((*at)->used < (*oldest)->used)
				oldest = at;
		unlink_snap(t, oldest);
	}
}

void
md_snap_put(struct md_snaps *t, const char *path, int read_only,
    const struct md_stamps *seen, const struct md_list *l)
{
	struct md_snap *s, **at;

	if (t == NULL || !seen->quiet || l->n < SNAP_MIN_MESSAGES ||
	    l->n > t->max_messages || (s = calloc(1, sizeof(*s))) == NULL)
		return;
	if ((s->path = strdup(path)) == NULL || md_list_copy(&s->list, l) < 0) {
		free(s->path);
		free(s);
		return;	/* only a cache: the next open scans */
	}
	s->read_only = read_only;
	s->stamps = *seen;
	s->refs = 1;
	pthread_mutex_lock(&t->lock);
	if (*(at = find(t, path, read_only)))
		unlink_snap(t, at);
	make_room(t, l->n);
	s->used = ++t->tick;
	s->next = t->head;
	t->head = s;
	t->messages += l->n;
	pthread_mutex_unlock(&t->lock);
}
