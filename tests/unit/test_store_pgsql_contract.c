/*
 * tests/unit/test_store_pgsql_contract.c - the store contract
 * (store_contract.h) on store_pgsql, against the PostgreSQL named by
 * MERPATI_TEST_PG_CONNINFO; then the points that must hold across
 * nodes, with two instances of the module (two pools, as two nodes
 * have) on the one database. tests/e2e/test_store_pgsql.py starts a
 * private PostgreSQL and runs this binary with it; run alone without
 * the variable, it says so and checks nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"
#include "store_contract.h"

extern const struct mp_module merpati_module;

#define NODE_THREADS 3	/* per node */
#define NODE_APPENDS 10	/* per thread */

struct node_appender {
	void *node;
	int id;
	pthread_barrier_t *start;
	uint32_t uids[NODE_APPENDS];
	int failures;
};

static void *
node_append_thread(void *arg)
{
	struct node_appender *a = arg;
	struct mp_mailbox *mb = NULL;
	const char *err;
	char text[128];

	if (sc_ops->open(a->node, "nodes@contract.test", &mb, &err) != MP_OK)
		a->failures = NODE_APPENDS;
	pthread_barrier_wait(a->start);
	for (int k = 0; mb && k < NODE_APPENDS; k++) {
		struct mock_text t = { text, 0, 0 };
		struct mp_reader r = { sizeof(r), mock_text_read, 0, &t };
		uint32_t uv;
		snprintf(text, sizeof(text), "Subject: %d/%d\r\n\r\nbody\r\n", a->id, k);
		r.size = (off_t)strlen(text);
		if (sc_ops->append(mb, "INBOX", &r, 0, 0, &a->uids[k], &uv, &err) != MP_OK)
			a->failures++;
	}
	if (mb)
		sc_ops->close(mb);
	return NULL;
}

/* Both nodes append at once: every UID distinct, both list them all. */
static void
check_appends_across_nodes(void *node[2], struct mp_folder *f[2])
{
	struct node_appender a[2 * NODE_THREADS];
	pthread_t t[2 * NODE_THREADS];
	pthread_barrier_t start;
	int seen[2 * NODE_THREADS * NODE_APPENDS + 1] = { 0 }, failures = 0, dup = 0;

	pthread_barrier_init(&start, NULL, 2 * NODE_THREADS);
	for (int i = 0; i < 2 * NODE_THREADS; i++) {
		a[i] = (struct node_appender){ node[i % 2], i, &start, { 0 }, 0 };
		pthread_create(&t[i], NULL, node_append_thread, &a[i]);
	}
	for (int i = 0; i < 2 * NODE_THREADS; i++) {
		pthread_join(t[i], NULL);
		failures += a[i].failures;
		for (int k = 0; k < NODE_APPENDS; k++) {
			uint32_t u = a[i].uids[k];
			if (u == 0 || u > 2 * NODE_THREADS * NODE_APPENDS || seen[u]++)
				dup++;
		}
	}
	pthread_barrier_destroy(&start);
	CHECK("nodes: every append from both nodes succeeded", failures == 0);
	CHECK("nodes, contract 1: UIDs distinct and dense across nodes", dup == 0);
	for (int n = 0; n < 2; n++) {
		const struct mp_msg_info *v;
		size_t count = 0;
		const char *err;
		sc_ops->messages(f[n], &v, &count, &err);
		CHECK(n ? "nodes: node B lists every message" : "nodes: node A lists every message",
		    count == 2 * NODE_THREADS * NODE_APPENDS);
	}
}

/* A's +\Answered and B's -\Seen on its older view both take effect. */
static void
check_flags_across_nodes(struct mp_folder *f[2])
{
	uint32_t flags = 0;

	CHECK("nodes: A sets \\Seen", sc_change(f[0], 1, MP_FLAGS_ADD, MP_FLAG_SEEN, NULL,
	    &flags, NULL) == MP_OK);
	CHECK("nodes: A adds \\Answered", sc_change(f[0], 1, MP_FLAGS_ADD, MP_FLAG_ANSWERED,
	    NULL, &flags, NULL) == MP_OK);
	CHECK("nodes: B removes \\Seen on its older view", sc_change(f[1], 1, MP_FLAGS_REMOVE,
	    MP_FLAG_SEEN, NULL, &flags, NULL) == MP_OK);
	const struct mp_msg_info *m = sc_find(f[0], 1);
	CHECK("nodes, contract 3: A sees B's -\\Seen with its own +\\Answered",
	    m && (m->flags & (MP_FLAG_SEEN | MP_FLAG_ANSWERED)) == MP_FLAG_ANSWERED);
}

/* A's handle has listed the folder (its snapshot is current); B then
 * changes a message's flags and keywords and expunges another: A's next
 * messages() shows both, round after round (store_pgsql re-reads only
 * the rows that changed, and everything after an expunge), and A's
 * listing equals B's. */
static void
check_changes_across_nodes(struct mp_folder *f[2])
{
	const struct mp_msg_info *v[2];
	size_t n[2], before;
	const char *err;
	int flag_seen = 0, expunge_seen = 0, same = 1;

	sc_ops->messages(f[0], &v[0], &before, &err);
	for (uint32_t round = 0; round < 3; round++) {
		uint32_t flagged = 10 + round, gone = 20 + round;
		char kw[16];
		snprintf(kw, sizeof(kw), "$Round%u", round);
		sc_ops->messages(f[0], &v[0], &n[0], &err);	/* A's view is current */
		sc_change(f[1], flagged, MP_FLAGS_ADD, MP_FLAG_FLAGGED, kw, NULL, NULL);
		const struct mp_msg_info *m = sc_find(f[0], flagged);
		flag_seen += m && (m->flags & MP_FLAG_FLAGGED) && strstr(m->keywords, kw);
		sc_ops->expunge(f[1], gone, &err);
		expunge_seen += sc_find(f[0], gone) == NULL && sc_find(f[0], gone + 1) != NULL;
	}
	sc_ops->messages(f[0], &v[0], &n[0], &err);
	sc_ops->messages(f[1], &v[1], &n[1], &err);
	for (size_t i = 0; i < n[0] && n[0] == n[1]; i++)
		same &= MP_ELEM(v[0], i)->uid == MP_ELEM(v[1], i)->uid &&
		    (MP_ELEM(v[0], i)->flags & ~(uint32_t)MP_FLAG_RECENT) ==
		    (MP_ELEM(v[1], i)->flags & ~(uint32_t)MP_FLAG_RECENT) &&
		    strcmp(MP_ELEM(v[0], i)->keywords, MP_ELEM(v[1], i)->keywords) == 0;
	CHECK("nodes, contract 3: A sees B's flag and keyword changes at its next listing",
	    flag_seen == 3);
	CHECK("nodes: A sees B's expunges at its next listing", expunge_seen == 3);
	CHECK("nodes: A's listing equals B's after the changes",
	    n[0] == n[1] && n[0] == before - 3 && same);
}

/* The NODE_APPENDS messages nobody has listed yet are each \Recent in
 * exactly one of two read-write handles, one per node; those the first
 * handles claimed are \Recent in neither. */
static void
check_recent_across_nodes(struct mp_folder *f[2])
{
	const struct mp_msg_info *v[2];
	size_t n[2];
	const char *err;
	int old_recent = 0, new_not_once = 0;

	sc_ops->messages(f[0], &v[0], &n[0], &err);
	sc_ops->messages(f[1], &v[1], &n[1], &err);
	for (size_t i = 0; i < n[0] && n[0] == n[1]; i++) {
		int k = !!(MP_ELEM(v[0], i)->flags & MP_FLAG_RECENT) +
		    !!(MP_ELEM(v[1], i)->flags & MP_FLAG_RECENT);
		if (i + NODE_APPENDS >= n[0])
			new_not_once += k != 1;
		else
			old_recent += k;
	}
	CHECK("nodes, contract 5: each new message is \\Recent on exactly one node",
	    n[0] == n[1] && n[0] > NODE_APPENDS && new_not_once == 0);
	CHECK("nodes, contract 5: messages claimed before are \\Recent on neither",
	    old_recent == 0);
}

static void
run_across_nodes(struct mp_conf *conf)
{
	void *node[2] = { sc_ctx, NULL };
	struct mp_mailbox *mb[2] = { NULL, NULL };
	struct mp_folder *f[2] = { NULL, NULL };
	const char *err = NULL;

	CHECK("nodes: a second instance (node B)",
	    merpati_module.init(&mock_host, conf, &node[1], &err) == MP_OK);
	for (int i = 0; i < 2 && node[1]; i++) {
		sc_ops->open(node[i], "nodes@contract.test", &mb[i], &err);
		f[i] = mb[i] ? sc_folder(mb[i], "INBOX", 0) : NULL;
	}
	CHECK("nodes: both open the INBOX", f[0] && f[1]);
	if (f[0] && f[1]) {
		check_appends_across_nodes(node, f);
		check_flags_across_nodes(f);
		check_changes_across_nodes(f);
		sc_ops->folder_close(f[0]);	/* fresh handles, none has claimed */
		sc_ops->folder_close(f[1]);
		f[0] = sc_folder(mb[0], "INBOX", 0);
		f[1] = sc_folder(mb[1], "INBOX", 0);
		if (f[0] && f[1]) {
			/* new mail nobody has listed yet */
			struct node_appender a = { node[0], 99, NULL, { 0 }, 0 };
			pthread_barrier_t one;
			pthread_barrier_init(&one, NULL, 1);
			a.start = &one;
			node_append_thread(&a);
			pthread_barrier_destroy(&one);
			check_recent_across_nodes(f);
		}
	}
	for (int i = 0; i < 2; i++) {
		if (f[i])
			sc_ops->folder_close(f[i]);
		if (mb[i])
			sc_ops->close(mb[i]);
	}
	if (node[1])
		merpati_module.fini(node[1]);
}

int
main(void)
{
	const char *conninfo = getenv("MERPATI_TEST_PG_CONNINFO");
	const char *err = NULL;

	if (conninfo == NULL || conninfo[0] == '\0') {
		printf("# test_store_pgsql_contract: needs MERPATI_TEST_PG_CONNINFO; "
		    "tests/e2e/test_store_pgsql.py runs it with a private PostgreSQL\n");
		return 0;
	}
	const char *kv[] = { "conninfo", conninfo, "pool_size", "8", NULL };
	struct mp_conf conf = { kv, NULL };
	CHECK("init", merpati_module.init(&mock_host, &conf, &sc_ctx, &err) == MP_OK);
	if (sc_ctx == NULL)
		TEST_EXIT();
	sc_run_contract(merpati_module.store, sc_ctx);
	run_across_nodes(&conf);
	merpati_module.fini(sc_ctx);
	TEST_EXIT();
}
