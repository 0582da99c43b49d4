/*
 * modules/deliver_maildir/maildir_watch.c - change notification for
 * IMAP IDLE through ONE inotify instance per module.
 *
 * An inotify instance per idling session ran out at the kernel's
 * fs.inotify.max_user_instances (128 by default), after which every
 * further IDLE polled its folder each second. Here one instance watches
 * each folder's new/ and cur/ once, however many sessions wait on it,
 * and a thread forwards its events to one eventfd per folder handle:
 * eventfds have no such per-user limit. Watches are counted by the
 * handles that want them and removed with the last one.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "maildir_private.h"

#define WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR | \
    IN_DONT_FOLLOW)

/* One watched directory and the eventfds of the handles waiting on it. */
struct watch {
	int wd;
	int *fds;
	size_t nfds, cap;
};

struct md_watcher {
	pthread_mutex_t lock;
	int inotify_fd;		/* -1 until the first subscriber */
	int stop_fd;		/* eventfd: fini wakes the thread with it */
	int failed;		/* inotify unavailable: callers poll */
	pthread_t thread;
	struct watch *watches;
	size_t nwatches, cap;
};

struct md_watcher *
md_watcher_new(void)
{
	struct md_watcher *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	w->inotify_fd = w->stop_fd = -1;
	return w;
}

static struct watch *
watch_find(struct md_watcher *w, int wd)
{
	for (size_t i = 0; i < w->nwatches; i++)
		if (w->watches[i].wd == wd)
			return &w->watches[i];
	return NULL;
}

static void
signal_all(const struct watch *x)
{
	uint64_t one = 1;

	for (size_t i = 0; i < x->nfds; i++)
		(void)!write(x->fds[i], &one, sizeof(one));
}

/* Forward one buffer of events; a watch the kernel dropped (its
 * directory was removed: IN_IGNORED) is signalled and forgotten. */
static void
dispatch(struct md_watcher *w, const char *buf, size_t len)
{
	const struct inotify_event *ev;

	pthread_mutex_lock(&w->lock);
	for (size_t off = 0; off + sizeof(*ev) <= len; off += sizeof(*ev) + ev->len) {
		ev = (const struct inotify_event *)(const void *)(buf + off);
		struct watch *x = watch_find(w, ev->wd);
		if (x == NULL)
			continue;
		signal_all(x);
		if (ev->mask & IN_IGNORED) {
			free(x->fds);
			*x = w->watches[--w->nwatches];
		}
	}
	pthread_mutex_unlock(&w->lock);
}

static void *
watch_thread(void *arg)
{
	struct md_watcher *w = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd p[2] = { { .fd = w->inotify_fd, .events = POLLIN },
			       { .fd = w->stop_fd, .events = POLLIN } };

	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		ssize_t n = read(w->inotify_fd, buf, sizeof(buf));
		if (n > 0)
			dispatch(w, buf, (size_t)n);
	}
	return NULL;
}

/* The instance and its thread, made on first use. 0 or -1. */
static int
start_locked(struct md_watcher *w)
{
	if (w->inotify_fd >= 0)
		return 0;
	if (w->failed)
		return -1;
	w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (w->inotify_fd >= 0 && w->stop_fd >= 0 &&
	    pthread_create(&w->thread, NULL, watch_thread, w) == 0)
		return 0;
	if (w->inotify_fd >= 0)
		close(w->inotify_fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	w->inotify_fd = w->stop_fd = -1;
	w->failed = 1;
	return -1;
}

static int
add_fd(struct md_watcher *w, int wd, int fd)
{
	struct watch *x = watch_find(w, wd);

	if (x == NULL) {
		struct watch *v = mp_array_grow(w->watches, &w->cap, w->nwatches + 1,
		    sizeof(*v));
		if (v == NULL)
			return -1;
		w->watches = v;
		x = &w->watches[w->nwatches++];
		*x = (struct watch){ .wd = wd };
	}
	int *fds = mp_array_grow(x->fds, &x->cap, x->nfds + 1, sizeof(*fds));
	if (fds == NULL)
		return -1;
	x->fds = fds;
	x->fds[x->nfds++] = fd;
	return 0;
}

/* Drop fd from watch wd; the watch itself goes with its last fd. */
static void
remove_fd(struct md_watcher *w, int wd, int fd)
{
	struct watch *x = watch_find(w, wd);

	if (x == NULL)
		return;
	for (size_t i = 0; i < x->nfds; i++)
		if (x->fds[i] == fd) {
			x->fds[i] = x->fds[--x->nfds];
			break;
		}
	if (x->nfds > 0)
		return;
	inotify_rm_watch(w->inotify_fd, wd);
	free(x->fds);
	*x = w->watches[--w->nwatches];
}

int
md_watch_subscribe(struct md_watcher *w, const char *folder, int wd_r[2])
{
	static const char *const subdirs[2] = { "new", "cur" };
	char path[PATH_MAX];
	int fd = -1;

	pthread_mutex_lock(&w->lock);
	if (start_locked(w) < 0 || (fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto fail;
	wd_r[0] = wd_r[1] = -1;
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", folder, subdirs[i]);
		/* the same directory yields the same wd: one watch, shared */
		wd_r[i] = inotify_add_watch(w->inotify_fd, path, WATCH_MASK);
		if (wd_r[i] < 0 || add_fd(w, wd_r[i], fd) < 0) {
			if (wd_r[i] >= 0)
				remove_fd(w, wd_r[i], fd);
			if (i == 1)
				remove_fd(w, wd_r[0], fd);
			goto fail;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return fd;
fail:
	pthread_mutex_unlock(&w->lock);
	if (fd >= 0)
		close(fd);
	return -1;
}

void
md_watch_unsubscribe(struct md_watcher *w, int fd, const int wd[2])
{
	pthread_mutex_lock(&w->lock);
	for (int i = 0; i < 2; i++)
		remove_fd(w, wd[i], fd);
	pthread_mutex_unlock(&w->lock);
	close(fd);
}

void
md_watcher_free(struct md_watcher *w)
{
	uint64_t one = 1;

	if (w == NULL)
		return;
	if (w->inotify_fd >= 0) {
		(void)!write(w->stop_fd, &one, sizeof(one));
		pthread_join(w->thread, NULL);
		close(w->inotify_fd);
		close(w->stop_fd);
	}
	for (size_t i = 0; i < w->nwatches; i++)
		free(w->watches[i].fds);
	free(w->watches);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
