/*
 * tests/unit/test_deliver_maildir_contract.c - the store contract
 * (store_contract.h) on the Maildir store, plus what only Maildir can
 * get wrong: deliveries into new/ racing with APPENDs and a session,
 * a UID list from before keywords had a folder table (M2).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
		struct sc_text t = { "Subject: delivered\r\n\r\nd\r\n", 0 };
		struct mp_reader r = { sc_text_read, -1, &t };
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
		ordered &= i == 0 || v[i].uid > v[i - 1].uid;
	for (int k = 0; k < 20; k++) {
		char *text = sc_read(f, a.uids[k], NULL);
		appended_ok &= text && strstr(text, "appended") != NULL;
		free(text);
	}
	CHECK("maildir: UIDs distinct and ascending", ordered && n == 40 && v[39].uid == 40);
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
	merpati_module.fini(sc_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		return 1;
	TEST_EXIT();
}
