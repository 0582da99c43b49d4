/*
 * core/sync.c - group commit: one syncfs() made durable for everyone
 * who was waiting when it began.
 *
 * A caller has finished its writes (a file, a rename) and needs them on
 * disk. It takes a ticket; if no syncfs() of that file system is
 * running, it starts one covering every ticket taken so far; otherwise
 * it waits for the running one to end and, unless a later one already
 * covered it, starts the next. Under load many messages share one disk
 * flush instead of paying two fsync()s each.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync.h"

#define SLOTS 8		/* file systems synced at the same time */

struct fs_sync {
	dev_t dev;
	unsigned long long asked, done;
	int busy, users;
};

static struct fs_sync syncs[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;

/* The slot for dev, or a free one claimed for it (lock held). */
static struct fs_sync *
slot_for(dev_t dev)
{
	struct fs_sync *unused = NULL;

	for (int i = 0; i < SLOTS; i++) {
		if (syncs[i].users && syncs[i].dev == dev)
			return &syncs[i];
		if (!syncs[i].users && unused == NULL)
			unused = &syncs[i];
	}
	if (unused != NULL)
		*unused = (struct fs_sync){ .dev = dev };
	return unused;
}

static int
syncfs_at(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = syncfs(fd);
	close(fd);
	return rc;
}

/* Wait for (or run) syncs until one begun after our ticket is done. */
static int
wait_covered(struct fs_sync *d, const char *dir)
{
	unsigned long long ticket = ++d->asked;
	int rc = 0, err = 0;

	while (d->done < ticket && rc == 0) {
		if (d->busy) {
			pthread_cond_wait(&finished, &lock);
			continue;
		}
		unsigned long long upto = d->asked;
		d->busy = 1;
		pthread_mutex_unlock(&lock);
		rc = syncfs_at(dir);
		err = errno;
		pthread_mutex_lock(&lock);
		d->busy = 0;
		if (rc == 0 && upto > d->done)
			d->done = upto;
		pthread_cond_broadcast(&finished);
	}
	errno = err;
	return rc;
}

int
mp_sync_group(const char *dir)
{
	struct fs_sync *d;
	struct stat st;
	int rc;

	if (stat(dir, &st) < 0)
		return -1;
	pthread_mutex_lock(&lock);
	d = slot_for(st.st_dev);
	if (d == NULL) {
		pthread_mutex_unlock(&lock);
		return syncfs_at(dir);
	}
	d->users++;
	rc = wait_covered(d, dir);
	d->users--;
	pthread_mutex_unlock(&lock);
	return rc;
}
