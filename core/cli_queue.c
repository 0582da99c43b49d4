/*
 * core/cli_queue.c - `merpati queue list|show|delete|flush|hold|release|
 * requeue`: reads the queue files directly (mailq-like), marks held and
 * requeued messages in their status files (queue.h), and signals the
 * daemon through the pid file in state_dir (SIGUSR2: rescan the queue).
 * Filters and --json: cli_queue_select.c; docs/queue.md.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_queue_select.h"
#include "privs.h"
#include "queue.h"
#include "settings.h"
#include "util.h"

const char *
mp_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

int
cli_signal_daemon(int sig, int quiet)
{
	char path[4200], buf[32] = "";
	FILE *f;
	long pid;

	snprintf(path, sizeof(path), "%s/merpatid.pid", mp_core.server.state_dir);
	f = fopen(path, "re");
	if (f == NULL || fgets(buf, sizeof(buf), f) == NULL ||
	    (pid = strtol(buf, NULL, 10)) <= 1 || kill((pid_t)pid, sig) < 0) {
		if (!quiet)
			fprintf(stderr, "merpati: merpatid is not running (no live pid in %s)\n",
			    path);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

struct list_req {
	struct qfilter filter;
	int json, shown;
	time_t now;
};

static void
list_one(void *arg, const char *id)
{
	struct list_req *q = arg;
	struct mp_qmsg m;
	char why[128], when[32];
	struct tm tm;

	if (mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why)) != 0) {
		if (!q->json && errno != ENOENT)	/* ENOENT: gone meanwhile */
			printf("%-20s (unreadable: %s)\n", id, why);
		return;
	}
	if (!qfilter_match(&q->filter, &m, q->now)) {
		mp_qmsg_free(&m);
		return;
	}
	if (q->json) {
		fputs(q->shown++ ? ",\n " : "\n ", stdout);
		qmsg_json(stdout, &m, q->now);
		mp_qmsg_free(&m);
		return;
	}
	q->shown++;
	localtime_r(&m.arrival, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%-20s %8lld %s <%s>\n", m.id, (long long)m.size, when, m.sender);
	for (size_t i = 0; i < m.nrcpt; i++)
		if (!m.done[i])
			printf("%20s <%s>\n", "", m.rcpts[i]);
	if (m.last_error[0])
		printf("%20s (%s; %u attempt(s))\n", "", m.last_error, m.attempts);
	if (m.held)
		printf("%20s (held: %s)\n", "", m.hold_reason);
	mp_qmsg_free(&m);
}

/* `queue list [--domain D] [--older-than AGE] [--deferred] [--held]
 * [--json]`: --json prints one JSON array (docs/queue.md). */
static int
list(int argc, char **argv)
{
	struct list_req q = { .now = time(NULL) };
	int rc;

	for (int i = 1; i < argc; i++)
		if ((rc = qfilter_option(&q.filter, "doDHj", argc, argv, &i, &q.json)) <= 0) {
			if (rc == 0)
				fprintf(stderr, "merpati: queue list: unknown option %s\n",
				    argv[i]);
			return 2;
		}
	if (q.json)
		fputs("[", stdout);
	rc = mp_queue_scan(mp_core.queue_dir, list_one, &q);
	if (q.json)
		fputs(q.shown ? "\n]\n" : "]\n", stdout);
	else if (rc > 0 && q.shown == 0)
		printf("no queued message matches\n");
	else if (rc <= 0)
		printf("queue is empty\n");
	return rc < 0;
}

static int
show(const char *id, int json)
{
	struct mp_qmsg m;
	struct mp_reader r;
	char why[128], buf[8192];
	ssize_t n;

	if (mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why)) != 0) {
		fprintf(stderr, "merpati: queue show %s: %s\n", id,
		    errno == ENOENT ? "no such message" : why);
		return 1;
	}
	if (json) {
		qmsg_json(stdout, &m, time(NULL));
		fputs("\n", stdout);
		mp_qmsg_free(&m);
		return 0;
	}
	printf("id: %s\nsender: <%s>\n", m.id, m.sender);
	for (size_t i = 0; i < m.nrcpt; i++)
		printf("recipient: <%s>%s%s%s\n", m.rcpts[i], m.done[i] ? " (done)" : "",
		    m.relay && m.relay[i] && m.relay[i][0] ? " via " : "",
		    m.relay && m.relay[i] ? m.relay[i] : "");
	printf("attempts: %u\nlast error: %s\n", m.attempts, m.last_error);
	if (m.held)
		printf("held: %s\n", m.hold_reason);
	printf("\n");
	if (mp_queue_reader_open(mp_core.queue_dir, &m, &r) == 0) {
		while ((n = r.read(&r, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)n, stdout);
		mp_queue_reader_close(&r);
	}
	mp_qmsg_free(&m);
	return 0;
}

static int
delete_id(const char *id)
{
	if (!mp_queue_id_valid(id) || mp_queue_remove(mp_core.queue_dir, id) < 0) {
		fprintf(stderr, "merpati: queue delete %s: no such message\n", id);
		return 1;
	}
	printf("deleted %s\n", id);
	return 0;
}

struct delete_req {
	struct qfilter filter;
	int deleted;
};

static void
delete_matching(void *arg, const char *id)
{
	struct delete_req *q = arg;
	struct mp_qmsg m;
	char why[128];
	int match;

	if (mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why)) != 0)
		return;
	match = qfilter_match(&q->filter, &m, time(NULL));
	mp_qmsg_free(&m);
	if (match && mp_queue_remove(mp_core.queue_dir, id) == 0) {
		printf("deleted %s\n", id);
		q->deleted++;
	}
}

/* `queue delete ID...` or `queue delete [--sender GLOB] [--recipient
 * GLOB]`: a message goes when its sender matches and one of its pending
 * recipients does (fnmatch, case-insensitive). 1 when none matched. */
static int
delete(int argc, char **argv)
{
	struct delete_req q = { 0 };
	int rc = 0, json = 0, r;

	if (argv[1][0] != '-') {
		for (int i = 1; i < argc; i++)
			rc |= delete_id(argv[i]);
		return rc;
	}
	for (int i = 1; i < argc; i++)
		if ((r = qfilter_option(&q.filter, "sr", argc, argv, &i, &json)) <= 0) {
			if (r == 0)
				fprintf(stderr, "merpati: queue delete: unknown option %s\n",
				    argv[i]);
			return 2;
		}
	mp_queue_scan(mp_core.queue_dir, delete_matching, &q);
	if (q.deleted == 0) {
		printf("no queued message matches\n");
		return 1;
	}
	printf("deleted %d message(s)\n", q.deleted);
	return 0;
}

struct hold_req {
	int hold;		/* 1 hold, 0 release */
	const char *reason;
	int changed, failed;
};

/* Hold or release one message (its status file says which). */
static void
hold_one(void *arg, const char *id)
{
	struct hold_req *q = arg;
	struct mp_qmsg m;
	char why[128];

	if (mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why)) != 0) {
		fprintf(stderr, "merpati: queue %s %s: %s\n", q->hold ? "hold" : "release",
		    id, errno == ENOENT ? "no such message" : why);
		q->failed++;
		return;
	}
	if (m.held != q->hold) {
		m.held = q->hold;
		if (!q->hold)
			m.next_attempt = 0;	/* due at once */
		mp_strlcpy(m.hold_reason, q->hold ? q->reason : "", sizeof(m.hold_reason));
		for (char *p = m.hold_reason; *p; p++)	/* the file is line based */
			if (*p == '\r' || *p == '\n')
				*p = ' ';
		if (mp_queue_save_status(mp_core.queue_dir, &m) < 0) {
			fprintf(stderr, "merpati: queue %s %s: %s\n",
			    q->hold ? "hold" : "release", id, strerror(errno));
			q->failed++;
		} else {
			printf("%s %s\n", q->hold ? "held" : "released", id);
			q->changed++;
		}
	}
	mp_qmsg_free(&m);
}

/* `queue hold ID|ALL [REASON]`, `queue release ID|ALL`. A released
 * message is due at once: the daemon rescans (when it runs). */
static int
hold(int argc, char **argv, int on)
{
	struct hold_req q = { on, argc > 2 ? argv[2] : "held by the administrator",
	    0, 0 };
	char err[256];

	/* status files stay the daemon user's (it rewrites them) */
	if (mp_drop_privileges(mp_core.server.user, mp_core.server.state_dir, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "merpati: %s\n", err);
		return 1;
	}
	if (strcmp(argv[1], "ALL") == 0)
		mp_queue_scan(mp_core.queue_dir, hold_one, &q);
	else
		hold_one(&q, argv[1]);
	if (!on && q.changed) {
		if (cli_signal_daemon(SIGUSR2, 1) < 0)	/* a rescan */
			printf("merpatid is not running: released mail goes when it starts\n");
	}
	return q.failed > 0;
}

struct requeue_req {
	int changed, failed;
};

/* Ask the daemon to route one message again and try it now. */
static void
requeue_one(void *arg, const char *id)
{
	struct requeue_req *q = arg;
	struct mp_qmsg m;
	char why[128];

	if (mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why)) != 0) {
		fprintf(stderr, "merpati: queue requeue %s: %s\n", id,
		    errno == ENOENT ? "no such message" : why);
		q->failed++;
		return;
	}
	m.reroute = 1;
	m.next_attempt = 0;	/* due at once */
	if (mp_queue_save_status(mp_core.queue_dir, &m) < 0) {
		fprintf(stderr, "merpati: queue requeue %s: %s\n", id, strerror(errno));
		q->failed++;
	} else {
		printf("requeued %s%s\n", id, m.held ? " (held: goes when released)" : "");
		q->changed++;
	}
	mp_qmsg_free(&m);
}

/* `queue requeue ID|ALL`: the daemon routes the pending recipients
 * again with its rules of now (core/requeue.c) and tries at once. */
static int
requeue(const char *what)
{
	struct requeue_req q = { 0, 0 };
	char err[256];

	if (mp_drop_privileges(mp_core.server.user, mp_core.server.state_dir, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "merpati: %s\n", err);
		return 1;
	}
	if (strcmp(what, "ALL") == 0)
		mp_queue_scan(mp_core.queue_dir, requeue_one, &q);
	else
		requeue_one(&q, what);
	if (q.changed && cli_signal_daemon(SIGUSR2, 1) < 0)
		printf("merpatid is not running: requeued mail goes when it starts\n");
	return q.failed > 0;
}

static void
queue_usage(void)
{
	fputs("usage: merpati queue list [--domain D] [--older-than AGE] [--deferred]\n"
	    "                        [--held] [--json]\n"
	    "       merpati queue show ID [--json]\n"
	    "       merpati queue delete ID... | --sender GLOB [--recipient GLOB] |\n"
	    "                             --recipient GLOB\n"
	    "       merpati queue flush | hold ID|ALL [REASON] | release ID|ALL |\n"
	    "                     requeue ID|ALL\n", stderr);
}

int
cli_queue(const char *config, char **overrides, size_t n, int argc,
    char **argv)
{
	int rc = 0;

	if (argc < 1) {
		queue_usage();
		return 2;
	}
	cli_setup(config, overrides, n, 0);
	if (strcmp(argv[0], "list") == 0)
		rc = list(argc, argv);
	else if (strcmp(argv[0], "flush") == 0) {
		rc = cli_signal_daemon(SIGUSR1, 0) < 0;
		if (rc == 0)
			printf("flush requested\n");
	} else if (strcmp(argv[0], "show") == 0 && (argc == 2 || (argc == 3 &&
	    strcmp(argv[2], "--json") == 0)))
		rc = show(argv[1], argc == 3);
	else if (strcmp(argv[0], "delete") == 0 && argc >= 2)
		rc = delete(argc, argv);
	else if (strcmp(argv[0], "requeue") == 0 && argc == 2)
		rc = requeue(argv[1]);
	else if (strcmp(argv[0], "hold") == 0 && (argc == 2 || argc == 3))
		rc = hold(argc, argv, 1);
	else if (strcmp(argv[0], "release") == 0 && argc == 2)
		rc = hold(argc, argv, 0);
	else {
		queue_usage();
		rc = 2;
	}
	mp_core_shutdown();
	return rc;
}
