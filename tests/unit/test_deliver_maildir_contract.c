/*
 * tests/unit/test_deliver_maildir_contract.c - the store contract
 * (store_contract.h) on the Maildir store, plus what only Maildir can
 * get wrong: deliveries into new/ racing with APPENDs and a session,
 * a UID list from before keywords had a folder table (M2).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../modules/deliver_maildir/maildir_store.h"
#include "mock_host.h"
#include "store_contract.h"

extern const struct mp_module merpati_module;

static char root[] = "/tmp/merpati-test-maildir-contract-XXXXXX";

struct deliverer {
	pthread_barrier_t *start;
	int failures;
};

static void *
deliver_thread(void *arg)
{
	struct deliverer *d = arg;
	const char *rcpts[] = { "mixed@contract.test" };
	struct mp_envelope env = { sizeof(env), "QID", "from@y.test", rcpts, 1, 0,
	    NULL, NULL, NULL };
	struct mp_status st;

	pthread_barrier_wait(d->start);
	for (int k = 0; k < 20; k++) {
		struct mock_text t = { "Subject: delivered\r\n\r\nd\r\n", 0, 0 };
		struct mp_reader r = { sizeof(r), mock_text_read, -1, &t };
		d->failures += merpati_module.deliver->deliver(sc_ctx, &env, rcpts[0],
		    &r, &st) != MP_OK;
	}
	return NULL;
}

struct appender {
	pthread_barrier_t *start;
	uint32_t uids[20];
	int failures;
};

static void *
append_thread(void *arg)
{
	struct appender *a = arg;
	struct mp_mailbox *mb = sc_open("mixed@contract.test");

	pthread_barrier_wait(a->start);
	for (int k = 0; k < 20; k++)
		a->failures += !mb || sc_append(mb, "INBOX", "Subject: appended\r\n\r\na\r\n",
		    0, &a->uids[k]) != MP_OK;
	if (mb)
		sc_ops->close(mb);
	return NULL;
}

/* Deliveries (UID at first sync) and APPENDs (UID at once) into INBOX
 * while a session syncs: 40 messages, 40 distinct UIDs, each UID's
 * subject what was put there. */
static void
test_delivery_and_append(void)
{
	struct mp_mailbox *mb = sc_open("mixed@contract.test");
	struct mp_folder *f = sc_folder(mb, "INBOX", 0);
	pthread_barrier_t start;
	struct deliverer d = { &start, 0 };
	struct appender a = { &start, { 0 }, 0 };
	pthread_t t[2];
	const struct mp_msg_info *v;
	size_t n = 0;
	const char *err;
	int appended_ok = 1, ordered = 1;

	pthread_barrier_init(&start, NULL, 3);
	pthread_create(&t[0], NULL, deliver_thread, &d);
	pthread_create(&t[1], NULL, append_thread, &a);
	pthread_barrier_wait(&start);
	for (int i = 0; i < 10; i++)
		sc_ops->messages(f, &v, &n, &err);	/* syncs racing the writers */
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	pthread_barrier_destroy(&start);
	CHECK("maildir: deliveries and appends all succeeded", d.failures == 0 && a.failures == 0);
	CHECK("maildir: 40 messages listed", sc_ops->messages(f, &v, &n, &err) == MP_OK && n == 40);
	for (size_t i = 0; i < n; i++)
		ordered &= i == 0 || MP_ELEM(v, i)->uid > MP_ELEM(v, i - 1)->uid;
	for (int k = 0; k < 20; k++) {
		char *text = sc_read(f, a.uids[k], NULL);
		appended_ok &= text && strstr(text, "appended") != NULL;
		free(text);
	}
	CHECK("maildir: UIDs distinct and ascending", ordered && n == 40 && MP_ELEM(v, 39)->uid == 40);
	CHECK("maildir: each APPENDUID names the appended message", appended_ok);
	sc_ops->folder_close(f);
	sc_ops->close(mb);
}

/* A list written by the previous format (M2, keywords joined by ',')
 * is read, its keywords become the folder's, and it is kept. */
static void
test_old_list(void)
{
	char path[600];
	struct mp_mailbox *mb = sc_open("old@contract.test");
	struct mp_folder *f;
	const char *all = NULL, *err;
	uint32_t uid;
	FILE *fp;

	sc_append(mb, "INBOX", "Subject: old\r\n\r\no\r\n", 0, &uid);
	f = sc_folder(mb, "INBOX", 1);
	const struct mp_msg_info *m = f ? sc_find(f, uid) : NULL;
	char base[300] = "";
	if (m && f) {
		/* find the base name through the list this store wrote */
		snprintf(path, sizeof(path), "%s/contract.test/old/merpati-uidlist", root);
		if ((fp = fopen(path, "r")) != NULL) {
			char line[600];
			while (fgets(line, sizeof(line), fp))
				if (sscanf(line, "%*u %*u %*d %299s", base) == 1)
					break;
			fclose(fp);
		}
		sc_ops->folder_close(f);
	}
	if ((fp = fopen(path, "w")) != NULL) {
		fprintf(fp, "M2 V7 N5\n%u 21 1700000000 %s $Old,Work\n", uid, base);
		fclose(fp);
	}
	f = sc_folder(mb, "INBOX", 0);
	m = f ? sc_find(f, uid) : NULL;
	CHECK("maildir: an M2 list keeps UIDVALIDITY and keywords",
	    m && strcmp(m->keywords, "$Old Work") == 0);
	CHECK("maildir: its keywords become the folder's",
	    f && sc_ops->folder_keywords(f, &all, &err) == MP_OK && all &&
	    strcmp(all, "$Old Work") == 0);
	if (f)
		sc_ops->folder_close(f);
	sc_ops->close(mb);
}

/* Set the stamps messages() compares (new/, cur/, the list, its lock)
 * to when, or to what cur/ shows when when is 0. */
static void
set_stamps(const char *dir, time_t when)
{
	static const char *const names[] = { "new", "cur", "merpati-uidlist",
	    "merpati-uidlist.lock" };
	char path[700];
	struct stat sb;

	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		struct timespec ts[2] = { { when, 0 }, { when, 0 } };
		if (when == 0 && stat(path, &sb) == 0)
			ts[0] = ts[1] = sb.st_mtim;
		utimensat(AT_FDCWD, path, ts, 0);
	}
}

/* Rename one file in cur/ to carry \Flagged, as another program might,
 * then put cur/'s time back: a change in the same clock tick. */
static void
flag_behind_the_back(const char *dir)
{
	char cur[700], from[1400], to[1400];
	struct stat before;
	struct dirent *de;
	DIR *d;

	snprintf(cur, sizeof(cur), "%s/cur", dir);
	if (stat(cur, &before) < 0 || (d = opendir(cur)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strstr(de->d_name, ":2,") != NULL &&
		    strchr(strstr(de->d_name, ":2,"), 'F') == NULL)
			break;
	if (de) {
		snprintf(from, sizeof(from), "%s/%s", cur, de->d_name);
		snprintf(to, sizeof(to), "%s/%.*sF", cur,
		    (int)(strstr(de->d_name, ":2,") + 3 - de->d_name), de->d_name);
		rename(from, to);
		struct timespec ts[2] = { before.st_atim, before.st_mtim };
		utimensat(AT_FDCWD, cur, ts, 0);
	}
	closedir(d);
}

static size_t
count_flagged(struct mp_folder *f)
{
	const struct mp_msg_info *v;
	const char *err;
	size_t n, flagged = 0;

	if (sc_ops->messages(f, &v, &n, &err) != MP_OK)
		return (size_t)-1;
	for (size_t i = 0; i < n; i++)
		flagged += (MP_ELEM(v, i)->flags & MP_FLAG_FLAGGED) != 0;
	return flagged;
}

/*
 * messages() skips the lock and the scan while the folder's stamps are
 * unchanged and two seconds old; every change must still be seen: a
 * change by another handle after a quiet spell, a delivery, and a
 * change inside the same clock tick as the last sync (stamps equal but
 * young).
 */
static void
test_quiet_folder(void)
{
	char dir[600];
	struct mp_mailbox *mb = sc_open("quiet@contract.test");
	uint32_t uid1, uid2;
	const struct mp_msg_info *v;
	const char *err;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "%s/contract.test/quiet", root);
	sc_append(mb, "INBOX", "Subject: q1\r\n\r\n1\r\n", 0, &uid1);
	sc_append(mb, "INBOX", "Subject: q2\r\n\r\n2\r\n", 0, &uid2);
	struct mp_folder *f = sc_folder(mb, "INBOX", 0), *g = sc_folder(mb, "INBOX", 0);
	if (f == NULL || g == NULL) {
		CHECK("maildir quiet: folders open", 0);
		return;
	}
	set_stamps(dir, time(NULL) - 60);
	CHECK("maildir quiet: a quiet folder keeps its view",
	    sc_ops->messages(f, &v, &n, &err) == MP_OK && n == 2 && count_flagged(f) == 0);
	set_stamps(dir, time(NULL) - 60);
	sc_change(g, uid1, MP_FLAGS_ADD, MP_FLAG_FLAGGED, NULL, NULL, NULL);
	CHECK("maildir quiet: another handle's flag change is seen", count_flagged(f) == 1);
	set_stamps(dir, time(NULL) - 60);
	sc_append(mb, "INBOX", "Subject: q3\r\n\r\n3\r\n", 0, &uid2);
	CHECK("maildir quiet: a new message is seen",
	    sc_ops->messages(f, &v, &n, &err) == MP_OK && n == 3);
	set_stamps(dir, 0);	/* young stamps, as just after a change */
	count_flagged(f);
	flag_behind_the_back(dir);
	CHECK("maildir quiet: a change in the same clock tick is seen", count_flagged(f) == 2);
	sc_ops->folder_close(g);
	sc_ops->folder_close(f);
	sc_ops->close(mb);
}

/* A folder's flagged count as a new handle (read_only) sees it. */
static size_t
flagged_at_open(struct mp_mailbox *mb, int read_only)
{
	struct mp_folder *f = sc_folder(mb, "INBOX", read_only);
	size_t n = f ? count_flagged(f) : (size_t)-1;

	if (f)
		sc_ops->folder_close(f);
	return n;
}

/*
 * Opening a quiet folder copies the view the last full sync left
 * (maildir_snapshot.c) instead of scanning: a change that leaves every
 * stamp as it was (renamed behind the back, cur/'s time put back) is
 * therefore not seen, which shows the shared view served. Any stamp
 * that moves, or stamps younger than two seconds, make the open scan.
 */
static void
test_shared_view(void)
{
	char dir[600];
	struct mp_mailbox *mb = sc_open("shared@contract.test");
	time_t old = time(NULL) - 60;
	uint32_t uid;
	int ok = mb != NULL;

	snprintf(dir, sizeof(dir), "%s/contract.test/shared", root);
	for (int i = 0; ok && i < 70; i++)
		ok = sc_append(mb, "INBOX", "Subject: s\r\n\r\ns\r\n", 0, &uid) == MP_OK;
	CHECK("maildir shared view: 70 messages", ok);
	if (!ok)
		return;
	set_stamps(dir, old);
	CHECK("maildir shared view: first open scans", flagged_at_open(mb, 1) == 0);
	flag_behind_the_back(dir);
	CHECK("maildir shared view: a quiet folder's next open is the shared view",
	    flagged_at_open(mb, 1) == 0);
	CHECK("maildir shared view: read-write handles have their own",
	    flagged_at_open(mb, 0) == 1);
	set_stamps(dir, old + 1);
	CHECK("maildir shared view: a moved stamp makes the open scan",
	    flagged_at_open(mb, 1) == 1);
	set_stamps(dir, time(NULL));
	CHECK("maildir shared view: young stamps scan", flagged_at_open(mb, 1) == 1);
	flag_behind_the_back(dir);
	CHECK("maildir shared view: young stamps are never shared",
	    flagged_at_open(mb, 1) == 2);
	sc_ops->close(mb);
}

int
main(void)
{
	const char *err = NULL;
	const char *kv[] = { "root", root, NULL };
	struct mp_conf conf = { kv, NULL };
	char cmd[600];

	if (mkdtemp(root) == NULL)
		return 1;
	CHECK("init", merpati_module.init(&mock_host, &conf, &sc_ctx, &err) == MP_OK);
	sc_run_contract(merpati_module.store, sc_ctx);
	test_delivery_and_append();
	test_old_list();
	test_quiet_folder();
	test_shared_view();
	merpati_module.fini(sc_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		return 1;
	TEST_EXIT();
}
