/*
 * tests/unit/test_queue.c - the durable queue: write/commit/load round
 * trip, abort leaves nothing, status survives, corrupt and truncated
 * files are refused (and quarantined), a requeue's routes override the
 * envelope's, hostile envelopes are refused,
 * tmp/ files a crash left (older than 36 h) are cleaned.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <merpati/maildir.h>

#include "queue.h"
#include "test.h"

static char state[] = "/tmp/merpati-test-queue-XXXXXX";
static char qdir[256];

static int
count_in(const char *sub)
{
	char cmd[512];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s/%s | grep -v '^tmp$' | wc -l", state, sub);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

static struct mp_qwriter *
begin(char id[MP_QID_SIZE], const char *sender, char **rcpts, size_t n)
{
	struct mp_qmsg env = { 0 };

	env.sender = (char *)sender;
	env.rcpts = rcpts;
	env.nrcpt = n;
	env.helo = (char *)"client.example";
	env.client = (char *)"127.0.0.1";
	env.arrival = 1700000000;
	return mp_queue_begin(qdir, &env, id);
}

static void
test_round_trip(void)
{
	char *rcpts[] = { (char *)"a@example.test", (char *)"b@example.test" };
	const char *body = "Subject: hi\r\n\r\nhello\r\n";
	char id[MP_QID_SIZE], why[128], buf[256];
	struct mp_qwriter *w = begin(id, "s@example.test", rcpts, 2);
	struct mp_qmsg m;
	struct mp_reader r;
	ssize_t n;
	struct stat st;
	char path[512];

	CHECK("begin", w != NULL);
	CHECK("write", mp_queue_write(w, body, strlen(body)) == 0);
	CHECK("not visible before commit", count_in("queue") == 0);
	CHECK("commit", mp_queue_commit(w) == 0);
	CHECK("visible after commit", count_in("queue") == 1);
	CHECK("id is valid", mp_queue_id_valid(id));
	snprintf(path, sizeof(path), "%s/%s", qdir, id);
	CHECK("queue file mode 0600", stat(path, &st) == 0 &&
	    (st.st_mode & 0777) == 0600);
	CHECK("load", mp_queue_load(qdir, id, &m, why, sizeof(why)) == 0);
	CHECK_STR("sender", m.sender, "s@example.test");
	CHECK("recipients", m.nrcpt == 2 && strcmp(m.rcpts[1], "b@example.test") == 0);
	CHECK("size", m.size == (off_t)strlen(body));
	CHECK("arrival", m.arrival == 1700000000);
	CHECK("reader opens", mp_queue_reader_open(qdir, &m, &r) == 0);
	n = r.read(&r, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	CHECK_STR("message bytes", buf, body);
	CHECK("reader at end", r.read(&r, buf, sizeof(buf)) == 0);
	mp_queue_reader_close(&r);

	m.attempts = 3;
	m.next_attempt = 1800000000;
	m.done[1] = 1;
	strcpy(m.last_error, "451 4.3.0 try later");
	CHECK("save status", mp_queue_save_status(qdir, &m) == 0);
	mp_qmsg_free(&m);
	CHECK("reload", mp_queue_load(qdir, id, &m, why, sizeof(why)) == 0);
	CHECK("status survives", m.attempts == 3 && m.next_attempt == 1800000000 &&
	    !m.done[0] && m.done[1] && strcmp(m.last_error, "451 4.3.0 try later") == 0);
	CHECK("no requeue asked", !m.reroute && !m.rerouted && m.relay == NULL);
	m.reroute = 1;	/* queue requeue */
	CHECK("save requeue", mp_queue_save_status(qdir, &m) == 0);
	mp_qmsg_free(&m);
	CHECK("reload requeued", mp_queue_load(qdir, id, &m, why, sizeof(why)) == 0);
	CHECK("requeue asked", m.reroute && !m.rerouted);
	m.reroute = 0;	/* the runner routed again */
	m.rerouted = 1;
	m.relay = calloc(2, sizeof(char *));
	m.relay[0] = strdup("relay.example:2525");
	m.relay[1] = strdup("");
	CHECK("save routes", mp_queue_save_status(qdir, &m) == 0);
	mp_qmsg_free(&m);
	CHECK("reload routed", mp_queue_load(qdir, id, &m, why, sizeof(why)) == 0);
	CHECK("new routes override the envelope", !m.reroute && m.rerouted &&
	    m.relay && strcmp(m.relay[0], "relay.example:2525") == 0 &&
	    strcmp(m.relay[1], "") == 0 && m.done[1] && m.attempts == 3);
	mp_qmsg_free(&m);
	CHECK("remove", mp_queue_remove(qdir, id) == 0 && count_in("queue") == 0);
}

static void
test_abort(void)
{
	char *rcpts[] = { (char *)"a@example.test" };
	char id[MP_QID_SIZE];
	struct mp_qwriter *w = begin(id, "", rcpts, 1);

	mp_queue_write(w, "x", 1);
	mp_queue_abort(w);
	CHECK("abort leaves no file", count_in("queue") == 0 &&
	    count_in("queue/tmp") == 0);
}

/* Small messages stay in memory until commit; big ones spill to tmp/
 * and read back the same either way. */
static void
test_memory_then_spill(void)
{
	char *rcpts[] = { (char *)"a@example.test" };
	char id[MP_QID_SIZE], chunk[4096], back[4096];
	struct mp_qwriter *w = begin(id, "", rcpts, 1);
	struct mp_reader r;
	int same = 1;

	memset(chunk, 'm', sizeof(chunk));
	mp_queue_write(w, chunk, 1000);
	CHECK("small message: no file yet", count_in("queue/tmp") == 0);
	mp_queue_writer_reader(w, &r);
	CHECK("memory reader reads it", r.read(&r, back, sizeof(back)) == 1000 &&
	    memcmp(back, chunk, 1000) == 0 && r.read(&r, back, 1) == 0);
	mp_queue_writer_reader_close(&r);
	for (int i = 0; i < 64; i++)
		mp_queue_write(w, chunk, sizeof(chunk));
	CHECK("big message spilled to tmp/", count_in("queue/tmp") == 1);
	CHECK("size counts both parts",
	    mp_queue_written(w) == 1000 + 64 * (off_t)sizeof(chunk));
	mp_queue_writer_reader(w, &r);
	for (ssize_t n; (n = r.read(&r, back, sizeof(back))) > 0;)
		same &= memcmp(back, chunk, (size_t)n) == 0;
	mp_queue_writer_reader_close(&r);
	CHECK("spilled reader reads the same bytes", same);
	mp_queue_abort(w);
	CHECK("abort removes the spilled file", count_in("queue/tmp") == 0);
}

static void
test_hostile_envelope(void)
{
	char *crlf[] = { (char *)"a@example.test\r\nrcpt evil@x" };
	char *ok[] = { (char *)"a@example.test" };
	char id[MP_QID_SIZE];

	CHECK("CRLF in recipient refused", begin(id, "", crlf, 1) == NULL &&
	    errno == EINVAL);
	CHECK("CRLF in sender refused", begin(id, "x\nrcpt y@z", ok, 1) == NULL);
	CHECK("no recipients refused", begin(id, "", ok, 0) == NULL);
}

static void
test_corrupt(void)
{
	char *rcpts[] = { (char *)"a@example.test" };
	char id[MP_QID_SIZE], why[128], path[512];
	struct mp_qwriter *w = begin(id, "s@x.test", rcpts, 1);
	struct mp_qmsg m;
	FILE *f;

	mp_queue_write(w, "0123456789", 10);
	mp_queue_commit(w);
	snprintf(path, sizeof(path), "%s/%s", qdir, id);
	truncate(path, 100);
	CHECK("truncated file is corrupt", mp_queue_load(qdir, id, &m, why,
	    sizeof(why)) == -2);
	CHECK("quarantine moves it aside", mp_queue_quarantine(qdir, id) == 0 &&
	    count_in("queue") == 0 && count_in("corrupt") == 1);

	snprintf(path, sizeof(path), "%s/0000000000000000AAAAA", qdir);
	f = fopen(path, "w");
	fputs("garbage\n", f);
	fclose(f);
	CHECK("garbage file is corrupt", mp_queue_load(qdir,
	    "0000000000000000AAAAA", &m, why, sizeof(why)) == -2 &&
	    strstr(why, "magic") != NULL);
	CHECK("missing file is ENOENT", mp_queue_load(qdir,
	    "0000000000000000BBBBB", &m, why, sizeof(why)) == -1 && errno == ENOENT);
	CHECK("bad id refused", mp_queue_load(qdir, "../../etc/passwd", &m,
	    why, sizeof(why)) == -2);

	/* A size field near LLONG_MAX used to overflow offset + size. */
	snprintf(path, sizeof(path), "%s/0000000000000000CCCCC", qdir);
	f = fopen(path, "w");
	fputs("MERPATI-QUEUE 1\nid 0000000000000000CCCCC\narrival 1\nsender s@x.test\n"
	    "rcpt a@example.test\nsize 99999999999999999999\n.\nbody\r\n", f);
	fclose(f);
	CHECK("huge size field is corrupt, cut short", mp_queue_load(qdir,
	    "0000000000000000CCCCC", &m, why, sizeof(why)) == -2 &&
	    strstr(why, "cut short") != NULL);

	/* A recipient after the per-recipient arrays were sized used to
	 * be indexed past their end. */
	snprintf(path, sizeof(path), "%s/0000000000000000DDDDD", qdir);
	f = fopen(path, "w");
	fputs("MERPATI-QUEUE 1\nid 0000000000000000DDDDD\narrival 1\nsender s@x.test\n"
	    "sender again@x.test\nrcpt a@example.test\nnotify 0 NEVER\nrcpt b@example.test\n"
	    "size 6\n.\nbody\r\n", f);
	fclose(f);
	CHECK("rcpt after notify is corrupt", mp_queue_load(qdir,
	    "0000000000000000DDDDD", &m, why, sizeof(why)) == -2);
}

static void
count_cb(void *arg, const char *id)
{
	(void)id;
	(*(int *)arg)++;
}

static void
test_unique_ids(void)
{
	char *rcpts[] = { (char *)"a@example.test" };
	char id[MP_QID_SIZE], prev[MP_QID_SIZE] = "";
	int distinct = 1, seen = 0;
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -f %s/[0-9A-F]*", qdir);
	if (system(cmd) != 0)
		return;
	for (int i = 0; i < 200; i++) {
		struct mp_qwriter *w = begin(id, "", rcpts, 1);
		if (w == NULL || mp_queue_commit(w) < 0 || strcmp(id, prev) == 0)
			distinct = 0;
		memcpy(prev, id, sizeof(prev));
	}
	mp_queue_scan(qdir, count_cb, &seen);
	CHECK("200 messages, 200 distinct files", distinct && seen == 200);
}

/* A file in qdir/tmp/ whose mtime is age seconds back (its ctime is
 * now: nothing can set that back). */
static void
make_aged(const char *name, time_t age)
{
	char path[512];
	struct timespec t[2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/tmp/%s", qdir, name);
	if ((f = fopen(path, "w")) != NULL)
		fclose(f);
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= age;
	t[1] = t[0];
	utimensat(AT_FDCWD, path, t, 0);
}

/* With a 2 s maximum age: what was made 3 s ago goes, what is fresh by
 * mtime or by ctime stays, a symlink goes without its target. */
static void
test_clean_tmp(void)
{
	char path[512], link_path[512], target[512];
	struct stat st;
	FILE *f;

	make_aged("crashed", 0);
	snprintf(target, sizeof(target), "%s/target", state);
	if ((f = fopen(target, "w")) != NULL)
		fclose(f);
	snprintf(link_path, sizeof(link_path), "%s/tmp/link", qdir);
	CHECK("symlink planted", symlink(target, link_path) == 0);
	sleep(3);
	make_aged("writing", 0);
	make_aged("appending", 100 * 3600);	/* an APPEND with an old INTERNALDATE */
	CHECK("stale tmp: two removed (the old file, the old link)",
	    mp_maildir_clean_tmp(qdir, 2) == 2);
	snprintf(path, sizeof(path), "%s/tmp/crashed", qdir);
	CHECK("stale tmp: unchanged for the maximum age gone", stat(path, &st) < 0);
	snprintf(path, sizeof(path), "%s/tmp/writing", qdir);
	CHECK("stale tmp: younger kept", stat(path, &st) == 0);
	unlink(path);
	snprintf(path, sizeof(path), "%s/tmp/appending", qdir);
	CHECK("stale tmp: old mtime but fresh ctime kept", stat(path, &st) == 0);
	unlink(path);
	CHECK("stale tmp: a link's target is not followed", stat(target, &st) == 0);
	unlink(target);
}

int
main(void)
{
	char cmd[512];

	if (mkdtemp(state) == NULL)
		return 1;
	snprintf(qdir, sizeof(qdir), "%s/queue", state);
	CHECK("setup", mp_queue_setup(state) == 0);
	test_round_trip();
	test_abort();
	test_memory_then_spill();
	test_hostile_envelope();
	test_corrupt();
	test_unique_ids();
	test_clean_tmp();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
	if (system(cmd) != 0)
		return 1;
	TEST_EXIT();
}
