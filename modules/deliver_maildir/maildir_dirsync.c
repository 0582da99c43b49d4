/*
 * modules/deliver_maildir/maildir_dirsync.c - group commit of a
 * directory: one fsync() of new/ makes durable the name of every
 * delivery renamed into it before that fsync() began.
 *
 * Concurrent deliveries into one Maildir each need their name in new/
 * on disk before the delivery counts. An fsync() of the directory writes
 * all of its entries, whoever made them, and ends in one disk flush; so
 * a caller takes a ticket, and whoever finds no fsync() of that
 * directory running starts one covering every ticket taken so far. The
 * others wait for it, or for the next one when theirs came too late for
 * the running one. Unlike a syncfs() of the whole file system this
 * writes only this directory, whatever else on the disk is dirty.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir_private.h"

#define DIR_SLOTS 32	/* directories synced at the same time */

struct dir_sync {
	dev_t dev;
	ino_t ino;
	int users;			/* slot in use while > 0 */
	int busy;			/* an fsync() is running */
	unsigned long long asked, done;	/* tickets taken; covered up to */
};

static struct dir_sync slots[DIR_SLOTS];
int (*md_dir_fsync)(int fd) = fsync;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t synced = PTHREAD_COND_INITIALIZER;

/* The slot for (dev, ino), or a free one claimed for it (lock held). */
static struct dir_sync *
slot_for(const struct stat *st)
{
	struct dir_sync *unused = NULL;

	for (int i = 0; i < DIR_SLOTS; i++) {
		if (slots[i].users && slots[i].dev == st->st_dev &&
		    slots[i].ino == st->st_ino)
			return &slots[i];
		if (!slots[i].users && unused == NULL)
			unused = &slots[i];
	}
	if (unused != NULL) {
		unused->dev = st->st_dev;
		unused->ino = st->st_ino;
		unused->busy = 0;
		unused->asked = unused->done = 0;
	}
	return unused;
}

/* Run fsync(fd) for every ticket taken before it began (lock held on
 * entry and exit, released during the fsync). */
static int
lead_sync(struct dir_sync *d, int fd)
{
	unsigned long long upto = d->asked;
	int rc, err;

	d->busy = 1;
	pthread_mutex_unlock(&lock);
	rc = md_dir_fsync(fd);
	err = errno;
	pthread_mutex_lock(&lock);
	d->busy = 0;
	if (rc == 0 && upto > d->done)
		d->done = upto;
	pthread_cond_broadcast(&synced);
	errno = err;
	return rc;
}

/* Wait for (or run) fsyncs until one begun after our ticket is done;
 * lock held. */
static int
wait_covered(struct dir_sync *d, int fd)
{
	unsigned long long ticket = ++d->asked;

	while (d->done < ticket) {
		if (!d->busy) {
			if (lead_sync(d, fd) < 0)
				return -1;
		} else
			pthread_cond_wait(&synced, &lock);
	}
	return 0;
}

int
md_dir_sync_group(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, err;
	struct dir_sync *d;
	struct stat st;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	pthread_mutex_lock(&lock);
	d = slot_for(&st);
	if (d == NULL) {
		pthread_mutex_unlock(&lock);
		rc = md_dir_fsync(fd);	/* more directories than slots */
	} else {
		d->users++;
		rc = wait_covered(d, fd);
		err = errno;
		d->users--;
		pthread_mutex_unlock(&lock);
		errno = err;
	}
	err = errno;
	close(fd);
	errno = err;
	return rc;
}

unsigned long long
md_dir_sync_tickets(const char *dir)
{
	unsigned long long n = 0;
	struct stat st;

	if (stat(dir, &st) < 0)
		return 0;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < DIR_SLOTS; i++)
		if (slots[i].users && slots[i].dev == st.st_dev &&
		    slots[i].ino == st.st_ino)
			n = slots[i].asked;
	pthread_mutex_unlock(&lock);
	return n;
}
