/*
 * tests/unit/test_deliver_maildir_dirsync.c - the group commit of new/
 * (maildir_dirsync.c): a caller returns only after an fsync() that began
 * after its call, callers waiting while one runs share the next one,
 * different directories do not share, and a failed fsync() is reported.
 *
 * The fsync() it calls is replaced (md_dir_fsync) by one that counts
 * calls and, when asked, holds the first call open until the test has
 * seen every other caller take its ticket: the overlap is made, not
 * hoped for.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../modules/deliver_maildir/maildir_store.h"
#include "test.h"

#define WAITERS 9

static char root[] = "/tmp/merpati-test-dirsync-XXXXXX";
static char dir_a[256], dir_b[256];

static atomic_int calls, fail_next, hold_first;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int inside, released;

static int
fake_fsync(int fd)
{
	int n = atomic_fetch_add(&calls, 1) + 1;

	if (n == 1 && atomic_load(&hold_first)) {
		pthread_mutex_lock(&gate_lock);
		inside = 1;
		pthread_cond_broadcast(&gate_cv);
		while (!released)
			pthread_cond_wait(&gate_cv, &gate_lock);
		pthread_mutex_unlock(&gate_lock);
	}
	if (atomic_exchange(&fail_next, 0)) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static void *
sync_a(void *arg)
{
	*(int *)arg = md_dir_sync_group(dir_a);
	return NULL;
}

/* Tickets on dir_a reach want within about 5 s. */
static int
await_tickets(unsigned long long want)
{
	for (int i = 0; i < 5000; i++) {
		if (md_dir_sync_tickets(dir_a) >= want)
			return 1;
		usleep(1000);
	}
	return 0;
}

static void
test_waiters_share_one_sync(void)
{
	pthread_t leader, waiter[WAITERS];
	int rc_leader = -1, rc[WAITERS];

	atomic_store(&calls, 0);
	atomic_store(&hold_first, 1);
	pthread_create(&leader, NULL, sync_a, &rc_leader);
	pthread_mutex_lock(&gate_lock);
	while (!inside)
		pthread_cond_wait(&gate_cv, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	/* the first fsync() is running: these all come too late for it */
	for (int i = 0; i < WAITERS; i++)
		pthread_create(&waiter[i], NULL, sync_a, &rc[i]);
	CHECK("every waiter took a ticket", await_tickets(1 + WAITERS));
	CHECK("no one returned while the first fsync runs",
	    atomic_load(&calls) == 1);
	pthread_mutex_lock(&gate_lock);
	released = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_lock);
	pthread_join(leader, NULL);
	int ok = rc_leader == 0;
	for (int i = 0; i < WAITERS; i++) {
		pthread_join(waiter[i], NULL);
		ok &= rc[i] == 0;
	}
	atomic_store(&hold_first, 0);
	CHECK("all callers succeed", ok);
	CHECK("the waiters share one fsync begun after their calls",
	    atomic_load(&calls) == 2);
	CHECK("the slot is free once no one waits",
	    md_dir_sync_tickets(dir_a) == 0);
}

static void
test_alone_and_errors(void)
{
	atomic_store(&calls, 0);
	CHECK("a lone caller runs its own fsync",
	    md_dir_sync_group(dir_a) == 0 && atomic_load(&calls) == 1);
	CHECK("another directory gets its own fsync",
	    md_dir_sync_group(dir_b) == 0 && atomic_load(&calls) == 2);
	atomic_store(&fail_next, 1);
	CHECK("a failed fsync is returned",
	    md_dir_sync_group(dir_a) == -1 && errno == EIO);
	CHECK("the next call runs a new fsync",
	    md_dir_sync_group(dir_a) == 0 && atomic_load(&calls) == 4);
	CHECK("a missing directory is an error",
	    md_dir_sync_group("/nonexistent/merpati-dirsync") == -1 &&
	    errno == ENOENT);
	CHECK("a file is not a directory",
	    md_dir_sync_group("/etc/hostname") == -1 && errno == ENOTDIR);
}

/* More directories at once than the table holds: each still synced. */
static void
test_many_directories(void)
{
	char dirs[40][300];
	int ok = 1;

	for (int i = 0; i < 40; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "%s/d%d", root, i);
		ok &= mkdir(dirs[i], 0700) == 0;
	}
	atomic_store(&calls, 0);
	for (int i = 0; i < 40; i++)
		ok &= md_dir_sync_group(dirs[i]) == 0;
	CHECK("forty directories, forty fsyncs", ok && atomic_load(&calls) == 40);
	for (int i = 0; i < 40; i++)
		rmdir(dirs[i]);
}

int
main(void)
{
	if (mkdtemp(root) == NULL)
		return 1;
	snprintf(dir_a, sizeof(dir_a), "%s/a", root);
	snprintf(dir_b, sizeof(dir_b), "%s/b", root);
	if (mkdir(dir_a, 0700) < 0 || mkdir(dir_b, 0700) < 0)
		return 1;
	md_dir_fsync = fake_fsync;
	test_waiters_share_one_sync();
	test_alone_and_errors();
	test_many_directories();
	rmdir(dir_a);
	rmdir(dir_b);
	rmdir(root);
	TEST_EXIT();
}
