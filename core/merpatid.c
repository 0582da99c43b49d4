/*
 * core/merpatid.c - the daemon.
 *
 *   merpatid [-c FILE] [-o path=value]... [-f]
 *
 * Start-up order matters: config, the directories server.user needs
 * (created and checked while root), modules (before the privilege drop,
 * so they can open their files), sockets, privilege drop, then threads;
 * READY=1 to a service manager ($NOTIFY_SOCKET) once all listen.
 * Signals are taken synchronously by the main thread with sigtimedwait():
 * SIGHUP reloads the configuration (reload.h), SIGUSR1 flushes the
 * queue, SIGUSR2 rescans it, SIGTERM/SIGINT stop; every second without
 * one it frees the configurations reloads replaced, once unused.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildconf.h"
#include "config.h"
#include "confine.h"
#include "listener.h"
#include "log.h"
#include "maildrop.h"
#include "metrics.h"
#include "notify.h"
#include "privs.h"
#include "reload.h"
#include "queue.h"
#include "runner.h"
#include "settings.h"
#include "tls.h"
#include "user_dirs.h"
#include "util.h"

#define MAX_OVERRIDES 128
#define DEFAULT_CONFIG MERPATI_SYSCONFDIR "/merpati/merpati.conf"

struct args {
	const char *config;
	char *overrides[MAX_OVERRIDES];
	size_t noverrides;
	int foreground;
};

static void
usage(void)
{
	fputs("usage: merpatid [-c FILE] [-o path=value]... [-f]\n"
	    "  default FILE: " DEFAULT_CONFIG "\n", stderr);
	exit(2);
}

static void
parse_args(int argc, char **argv, struct args *a)
{
	int ch;

	memset(a, 0, sizeof(*a));
	while ((ch = getopt(argc, argv, "c:o:fh")) != -1) {
		switch (ch) {
		case 'c': a->config = optarg; break;
		case 'f': a->foreground = 1; break;
		case 'o':
			if (a->noverrides == MAX_OVERRIDES) {
				fputs("merpatid: too many -o options\n", stderr);
				exit(2);
			}
			a->overrides[a->noverrides++] = optarg;
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (a->config == NULL)
		a->config = DEFAULT_CONFIG;
}

static void
die_problems(struct mp_problems *p)
{
	for (size_t i = 0; i < p->n; i++)
		fprintf(stderr, "merpatid: %s\n", p->lines[i]);
	mp_problems_free(p);
	exit(1);
}

static void
die(const char *what)
{
	fprintf(stderr, "merpatid: %s\n", what);
	exit(1);
}

/* Hold an exclusive lock on the pid file: one daemon per state dir.
 * Opened as root in a directory the daemon's user owns, so relative to
 * the verified state_dir fd, never through a symlink, and only as a
 * plain file with one link: else a planted link would have root
 * truncate and write some other file. */
static int
lock_pidfile(char *path, size_t size)	/* exits when it cannot */
{
	char err[1024];
	struct stat st;
	int dir, fd;

	snprintf(path, size, "%s/merpatid.pid", mp_core.server.state_dir);
	dir = mp_state_dir_open(mp_core.server.user, mp_core.server.state_dir,
	    err, sizeof(err));
	if (dir < 0)
		die(err);
	fd = openat(dir, "merpatid.pid", O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC, 0644);
	close(dir);
	if (fd < 0) {
		fprintf(stderr, "merpatid: cannot open %s: %s%s\n", path,
		    strerror(errno), errno == ELOOP ? " (a symlink: refused; "
		    "remove it)" : "");
		exit(1);
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		fprintf(stderr, "merpatid: %s is not a plain file; remove it\n",
		    path);
		exit(1);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char buf[32] = "";
		(void)!read(fd, buf, sizeof(buf) - 1);
		fprintf(stderr, "merpatid: another merpatid (pid %ld) uses %s\n",
		    strtol(buf, NULL, 10), mp_core.server.state_dir);
		exit(1);
	}
	return fd;
}

static void
write_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, buf, (size_t)n, 0);
}

/* Set up TLS when a listener uses it (generating a certificate at the
 * first start), before the privilege drop: the key stays root's. */
static void
setup_tls(void)
{
	char err[1024];
	int needed = 0;

	if (strcmp(mp_core.outbound.tls, "none") != 0 &&
	    (mp_core.tls_client_ctx = mp_tls_client_ctx(err, sizeof(err))) == NULL)
		die(err);
	for (size_t i = 0; i < mp_core.nlisten; i++)
		needed |= mp_core.listen[i].tls != LISTEN_TLS_NONE;
	if (!needed)
		return;
	mp_core.tls_ctx = mp_tls_server_ctx(mp_core.tls_cert, mp_core.tls_key,
	    mp_core.server.hostname, err, sizeof(err));
	if (mp_core.tls_ctx == NULL)
		die(err);
}

static void
daemonize(void)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork failed");
	if (pid > 0)
		_exit(0);
	setsid();
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
}

static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void
serve(const sigset_t *set, const char *pidpath, const struct args *a)
{
	const struct timespec second = { 1, 0 };
	int sig;

	for (;;) {
		/* Between signals, free the configurations reloads replaced
		 * once nothing holds them (reload.h): only this thread frees. */
		if ((sig = sigtimedwait(set, NULL, &second)) < 0) {
			mp_reload_collect();
			continue;
		}
		if (sig == SIGUSR1) {
			mp_log(MP_LOG_INFO, "flush requested: all queued mail is due now");
			mp_runner_flush();
		} else if (sig == SIGUSR2)
			mp_runner_rescan();
		else if (sig == SIGHUP)
			mp_reload(a->config, a->overrides, a->noverrides);
		else
			break;
	}
	mp_log(MP_LOG_INFO, "stopping on signal %d", sig);
	mp_notify("STOPPING=1");
	mp_listener_stop();
	mp_metrics_stop();
	mp_runner_stop();
	mp_maildrop_stop();
	unlink(pidpath);
	mp_log(MP_LOG_INFO, "stopped");
}

int
main(int argc, char **argv)
{
	struct mp_problems problems = { 0 };
	struct args a;
	char err[1024], pidpath[4200];
	sigset_t set;
	int pidfd;

	parse_args(argc, argv, &a);
	mp_log_open("merpatid", 1);
	if (mp_tls_init() < 0)
		die("cannot initialise OpenSSL");
	if (mp_core_configure(a.config, a.overrides, a.noverrides,
	    &problems) < 0)
		die_problems(&problems);
	mp_log_set_json(mp_core.log_json);
	if (mp_queue_setup(mp_core.server.state_dir) < 0) {
		snprintf(err, sizeof(err), "cannot create %s/queue: %s",
		    mp_core.server.state_dir, strerror(errno));
		die(err);
	}
	if (mp_user_dirs(1, &problems) < 0)
		die_problems(&problems);
	pidfd = lock_pidfile(pidpath, sizeof(pidpath));
	if (mp_core_load_modules(&problems) < 0)
		die_problems(&problems);
	setup_tls();
	mp_reload_note_tls();
	if (mp_notify_open(err, sizeof(err)) < 0)
		die(err);
	if (mp_listener_bind(err, sizeof(err)) < 0 ||
	    mp_metrics_bind(&mp_core.metrics, err, sizeof(err)) < 0 ||
	    mp_listener_fit_fd_limit(err, sizeof(err)) < 0 ||
	    mp_maildrop_prepare(mp_core.server.state_dir, mp_core.server.user,
	    err, sizeof(err)) < 0 ||
	    mp_drop_privileges(mp_core.server.user, mp_core.server.state_dir,
	    err, sizeof(err)) < 0)
		die(err);
	if (!a.foreground) {
		daemonize();
		mp_log_open("merpatid", 0);
	}
	write_pid(pidfd);
	if (mp_confine(mp_core.server.landlock, err, sizeof(err)) < 0)
		die(err);
	block_signals(&set);
	if (mp_runner_start() < 0 || mp_listener_start() < 0 ||
	    mp_maildrop_start() < 0 || mp_metrics_start(mp_core.queue_dir) < 0)
		die("cannot start threads");
	mp_log(MP_LOG_INFO, "merpatid started (pid %ld) as %s", (long)getpid(),
	    mp_core.server.hostname);
	mp_notify("READY=1");
	serve(&set, pidpath, &a);
	/* OpenSSL's clean-up waits for the threads (see tls.h); bounded,
	 * as a session a client keeps open does not end by itself. The
	 * contexts freed are the newest configuration's (reload.h). */
	if (mp_tls_cleanup(mp_core.tls_ctx, mp_core.tls_client_ctx, 1000) == 0)
		mp_core.tls_ctx = mp_core.tls_client_ctx = NULL;
	else
		mp_log(MP_LOG_INFO, "threads still busy: OpenSSL left to the exit");
	return 0;
}
