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
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sync.h"

#define SLOTS 8		/* file systems synced at the same time */

/*
 * Tickets and progress are atomics and waiters sleep on a futex word
 * bumped after each syncfs(): a finished sync wakes its waiters once,
 * and they check their ticket without a lock. (A mutex and condition
 * variable made every waiter wake and queue for the mutex again: five
 * futex calls and as many context switches per commit, measurable at
 * thousands of commits per second.)
 */
struct fs_sync {
	dev_t dev;
	int users;			/* under lock: slot in use */
	atomic_ullong asked, done;	/* tickets taken; covered up to */
	atomic_int busy, sleepers;
	atomic_uint gen;		/* futex word: syncs finished */
};

static struct fs_sync syncs[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

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
	if (unused != NULL) {
		unused->dev = dev;
		atomic_store(&unused->asked, 0);
		atomic_store(&unused->done, 0);
	}
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

/* Run one syncfs() covering every ticket taken before it began, then
 * wake whoever sleeps on gen. Called holding d->busy. */
static int
lead_sync(struct fs_sync *d, const char *dir)
{
	unsigned long long upto = atomic_load(&d->asked);
	int rc = syncfs_at(dir), err = errno;

	if (rc == 0 && upto > atomic_load(&d->done))
		atomic_store(&d->done, upto);
	atomic_store(&d->busy, 0);
	atomic_fetch_add(&d->gen, 1);
	if (atomic_load(&d->sleepers) > 0)
		syscall(SYS_futex, &d->gen, FUTEX_WAKE_PRIVATE, INT_MAX,
		    NULL, NULL, 0);
	errno = err;
	return rc;
}

/* Sleep until the running sync ends (gen moves past seen). */
static void
await_sync(struct fs_sync *d, unsigned seen)
{
	atomic_fetch_add(&d->sleepers, 1);
	/* Returns at once if gen already moved: no lost wake-up. */
	syscall(SYS_futex, &d->gen, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
	atomic_fetch_sub(&d->sleepers, 1);
}

/* Wait for (or run) syncs until one begun after our ticket is done. */
static int
wait_covered(struct fs_sync *d, const char *dir)
{
	unsigned long long ticket = atomic_fetch_add(&d->asked, 1) + 1;

	while (atomic_load(&d->done) < ticket) {
		unsigned seen = atomic_load(&d->gen);
		int idle = 0;

		if (atomic_compare_exchange_strong(&d->busy, &idle, 1)) {
			if (lead_sync(d, dir) < 0)
				return -1;
		} else
			await_sync(d, seen);
	}
	return 0;
}

int
mp_sync_group(const char *dir)
{
	struct fs_sync *d;
	struct stat st;
	int rc, err;

	if (stat(dir, &st) < 0)
		return -1;
	pthread_mutex_lock(&lock);
	d = slot_for(st.st_dev);
	if (d != NULL)
		d->users++;
	pthread_mutex_unlock(&lock);
	if (d == NULL)
		return syncfs_at(dir);
	rc = wait_covered(d, dir);
	err = errno;
	pthread_mutex_lock(&lock);
	d->users--;
	pthread_mutex_unlock(&lock);
	errno = err;
	return rc;
}
