/*
 * tests/unit/test_sync.c - group commit (core/sync.c): every caller
 * returns only after a syncfs() that began after its call, concurrent
 * callers share syncs, and a failed sync is reported, not hidden.
 *
 * syncfs() is replaced here (the test's definition wins over libc's for
 * core/sync.o) to record when each sync began and ended on one logical
 * clock, and to make it slow enough for callers to overlap.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sync.h"
#include "test.h"

#define THREADS 8
#define CALLS 40
#define MAX_SYNCS (THREADS * CALLS + 16)

static atomic_ulong clock_now;
static atomic_int fail_next;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { unsigned long begin, end; } syncs[MAX_SYNCS];
static int nsyncs;

int
syncfs(int fd)
{
	unsigned long begin = atomic_fetch_add(&clock_now, 1) + 1;

	usleep(1000);
	if (atomic_exchange(&fail_next, 0)) {
		errno = EIO;
		return -1;
	}
	int rc = (int)syscall(SYS_syncfs, fd);
	pthread_mutex_lock(&rec_lock);
	if (rc == 0 && nsyncs < MAX_SYNCS) {
		syncs[nsyncs].begin = begin;
		syncs[nsyncs++].end = atomic_fetch_add(&clock_now, 1) + 1;
	}
	pthread_mutex_unlock(&rec_lock);
	return rc;
}

/* Was there a successful sync that began after called and ended before
 * returned? */
static int
covered(unsigned long called, unsigned long returned)
{
	int ok = 0;

	pthread_mutex_lock(&rec_lock);
	for (int i = 0; i < nsyncs && !ok; i++)
		ok = syncs[i].begin > called && syncs[i].end < returned;
	pthread_mutex_unlock(&rec_lock);
	return ok;
}

static atomic_int uncovered, failed;

static void *
caller(void *dir)
{
	for (int i = 0; i < CALLS; i++) {
		unsigned long called = atomic_fetch_add(&clock_now, 1) + 1;
		int rc = mp_sync_group(dir);
		unsigned long returned = atomic_fetch_add(&clock_now, 1) + 1;
		if (rc != 0)
			atomic_fetch_add(&failed, 1);
		else if (!covered(called, returned))
			atomic_fetch_add(&uncovered, 1);
	}
	return NULL;
}

static void
test_concurrent_callers(const char *dir)
{
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, caller, (void *)dir);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK("every group commit succeeded", failed == 0);
	CHECK("every caller waited for a sync begun after its call", uncovered == 0);
	CHECK("concurrent callers share syncs", nsyncs > 0 && nsyncs <= THREADS * CALLS / 2);
}

static void
test_failure_reported(const char *dir)
{
	atomic_store(&fail_next, 1);
	errno = 0;
	CHECK("a failed syncfs is returned", mp_sync_group(dir) == -1 && errno == EIO);
	CHECK("the next commit runs a new sync", mp_sync_group(dir) == 0);
	errno = 0;
	CHECK("a missing directory is an error",
	    mp_sync_group("/nonexistent/merpati-sync") == -1 && errno == ENOENT);
}

int
main(void)
{
	char dir[] = "/tmp/merpati-test-sync-XXXXXX";

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_concurrent_callers(dir);
	test_failure_reported(dir);
	rmdir(dir);
	TEST_EXIT();
}
