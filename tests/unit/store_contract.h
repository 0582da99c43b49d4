/*
 * tests/unit/store_contract.h - the store concurrency contract
 * (include/merpati/store.h, points 1-6) as checks any store can be put
 * through its ops table: test_deliver_maildir_contract.c and
 * test_store_sqlite_contract.c run the same ones. Two stores cannot be
 * linked into one binary (each exports merpati_module), hence a header.
 *
 * Concurrency is made deterministic: threads start together at a
 * barrier, and the interleavings that matter (a stale handle writing
 * after another handle's change) are forced by the order of calls.
 */
#ifndef MERPATI_STORE_CONTRACT_H
#define MERPATI_STORE_CONTRACT_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <merpati/merpati.h>
#include "mock_host.h"
#include "test.h"

static const struct mp_store_ops *sc_ops;
static void *sc_ctx;

/* ---- helpers ---- */

static int
sc_append(struct mp_mailbox *mb, const char *folder, const char *text,
    uint32_t flags, uint32_t *uid_r)
{
	struct mock_text t = { text, 0, 0 };
	struct mp_reader r = { sizeof(r), mock_text_read, (off_t)strlen(text), &t };
	uint32_t uv;
	const char *err;

	return sc_ops->append(mb, folder, &r, flags, 0, uid_r, &uv, &err);
}

/* The whole message as served (malloc'd), or NULL when not MP_OK. */
static char *
sc_read(struct mp_folder *f, uint32_t uid, int *rc_r)
{
	struct mp_reader r = { .struct_size = sizeof(r) };
	const char *err;
	size_t o = 0, cap = 4096;
	char *buf;
	ssize_t n;
	int rc = sc_ops->message_open(f, uid, MP_PART_ALL, &r, &err);

	if (rc_r)
		*rc_r = rc;
	if (rc != MP_OK)
		return NULL;
	buf = malloc(cap);
	while (buf && (n = r.read(&r, buf + o, cap - o - 1)) > 0) {
		o += (size_t)n;
		if (o + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	sc_ops->message_close(&r);
	if (buf)
		buf[o] = '\0';
	return buf;
}

static struct mp_mailbox *
sc_open(const char *user)
{
	struct mp_mailbox *mb = NULL;
	const char *err;

	return sc_ops->open(sc_ctx, user, &mb, &err) == MP_OK ? mb : NULL;
}

static struct mp_folder *
sc_folder(struct mp_mailbox *mb, const char *name, int read_only)
{
	struct mp_folder *f = NULL;
	const char *err;

	return sc_ops->folder_open(mb, name, read_only, &f, &err) == MP_OK ? f : NULL;
}

static const struct mp_msg_info *
sc_find(struct mp_folder *f, uint32_t uid)
{
	const struct mp_msg_info *v;
	size_t n;
	const char *err;

	if (sc_ops->messages(f, &v, &n, &err) != MP_OK)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (MP_ELEM(v, i)->uid == uid)
			return MP_ELEM(v, i);
	return NULL;
}

static int
sc_change(struct mp_folder *f, uint32_t uid, enum mp_flags_how how,
    uint32_t flags, const char *kw, uint32_t *flags_r, const char **kw_r)
{
	const char *err;

	return sc_ops->flags_change(f, uid, how, flags, kw, flags_r, kw_r, &err);
}

/* ---- 1: concurrent appends, UIDs distinct, bytes stable ---- */

#define SC_THREADS 6
#define SC_PER_THREAD 12
#define SC_TOTAL (SC_THREADS * SC_PER_THREAD)

struct sc_appender {
	const char *user;
	int id;
	pthread_barrier_t *start;
	uint32_t uids[SC_PER_THREAD];
	int failures;
};

static void
sc_body(char *buf, size_t size, int thread, int k)
{
	snprintf(buf, size, "Message-ID: <t%d.m%d@contract>\r\nSubject: %d/%d\r\n\r\n"
	    "body of thread %d message %d\r\n", thread, k, thread, k, thread, k);
}

static void *
sc_append_thread(void *arg)
{
	struct sc_appender *a = arg;
	struct mp_mailbox *mb = sc_open(a->user);
	char text[256];

	pthread_barrier_wait(a->start);
	for (int k = 0; k < SC_PER_THREAD && mb; k++) {
		sc_body(text, sizeof(text), a->id, k);
		if (sc_append(mb, "Conc", text, 0, &a->uids[k]) != MP_OK)
			a->failures++;
	}
	if (mb)
		sc_ops->close(mb);
	else
		a->failures++;
	return NULL;
}

/* Reads every message again and again while the appends run: the
 * first bytes it sees for a UID must stay the UID's bytes. */
struct sc_watcher {
	const char *user;
	pthread_barrier_t *start;
	volatile int *stop;
	char *seen[SC_TOTAL + 2];
	int changed, partial;
};

static void *
sc_watch_thread(void *arg)
{
	struct sc_watcher *w = arg;
	struct mp_mailbox *mb = sc_open(w->user);
	struct mp_folder *f = mb ? sc_folder(mb, "Conc", 0) : NULL;
	const struct mp_msg_info *v;
	const char *err;
	size_t n;
	int last_round = 0;

	pthread_barrier_wait(w->start);
	while (f && !last_round) {
		last_round = *w->stop;	/* one full pass after the appends */
		if (sc_ops->messages(f, &v, &n, &err) != MP_OK)
			break;
		for (size_t i = 0; i < n; i++) {
			uint32_t uid = MP_ELEM(v, i)->uid;
			char *text = uid <= SC_TOTAL + 1 ? sc_read(f, uid, NULL) : NULL;
			if (text == NULL)
				continue;
			w->partial += strstr(text, "\r\n\r\nbody of thread") == NULL;
			if (w->seen[uid] == NULL)
				w->seen[uid] = text;
			else {
				w->changed += strcmp(w->seen[uid], text) != 0;
				free(text);
			}
		}
	}
	if (f)
		sc_ops->folder_close(f);
	if (mb)
		sc_ops->close(mb);
	return NULL;
}

static void
sc_check_concurrent_appends(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	struct sc_appender a[SC_THREADS];
	struct sc_watcher w = { 0 };
	pthread_t t[SC_THREADS], wt;
	pthread_barrier_t start;
	volatile int stop = 0;
	int failures = 0, dup = 0, wrong = 0;
	char taken[SC_TOTAL + 2] = { 0 }, text[256];
	const char *err;

	sc_ops->folder_create(mb, "Conc", &err);
	pthread_barrier_init(&start, NULL, SC_THREADS + 1);
	w = (struct sc_watcher){ .user = user, .start = &start, .stop = &stop };
	for (int i = 0; i < SC_THREADS; i++) {
		a[i] = (struct sc_appender){ .user = user, .id = i, .start = &start };
		pthread_create(&t[i], NULL, sc_append_thread, &a[i]);
	}
	/* the watcher opens first, then joins the barrier's count as the +1 */
	pthread_create(&wt, NULL, sc_watch_thread, &w);
	for (int i = 0; i < SC_THREADS; i++) {
		pthread_join(t[i], NULL);
		failures += a[i].failures;
	}
	stop = 1;
	pthread_join(wt, NULL);
	pthread_barrier_destroy(&start);
	CHECK("contract 1: every concurrent append succeeded", failures == 0);
	struct mp_folder *f = sc_folder(mb, "Conc", 1);
	for (int i = 0; i < SC_THREADS; i++)
		for (int k = 0; k < SC_PER_THREAD; k++) {
			uint32_t uid = a[i].uids[k];
			char *got = f && uid >= 1 && uid <= SC_TOTAL ? sc_read(f, uid, NULL) : NULL;
			if (uid < 1 || uid > SC_TOTAL || taken[uid]++) {
				dup++;
				free(got);
				continue;
			}
			sc_body(text, sizeof(text), i, k);
			wrong += got == NULL || strcmp(got, text) != 0;
			/* the watcher's first sight of the UID is the same bytes */
			wrong += w.seen[uid] && strcmp(w.seen[uid], text) != 0;
			free(got);
		}
	CHECK("contract 1: concurrent appends got distinct UIDs 1..N", dup == 0);
	CHECK("contract 1: each UID serves the message appended under it", wrong == 0);
	CHECK("contract 1: a reader during the appends saw no UID change bytes",
	    w.changed == 0);
	CHECK("contract 2: a reader during the appends saw no partial message",
	    w.partial == 0);
	for (size_t i = 0; i < SC_TOTAL + 2; i++)
		free(w.seen[i]);
	if (f)
		sc_ops->folder_close(f);
	sc_ops->close(mb);
}

/* A handle with an old view writes (flags and keywords) after another
 * handle appended: the other's messages keep their UIDs and bytes. */
static void
sc_check_stale_writer(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	struct mp_folder *stale, *f;
	uint32_t first, later[3];
	int ok = 1;
	char text[256];
	const char *err;

	sc_ops->folder_create(mb, "Stale", &err);
	sc_append(mb, "Stale", "Subject: first\r\n\r\nfirst\r\n", 0, &first);
	stale = sc_folder(mb, "Stale", 0);
	for (int k = 0; k < 3; k++) {
		sc_body(text, sizeof(text), 99, k);
		sc_append(mb, "Stale", text, 0, &later[k]);
	}
	/* another handle expunges the middle one: UIDs now have a gap that
	 * a list rebuilt from the stale view would close */
	f = sc_folder(mb, "Stale", 0);
	CHECK("stale handle: another handle expunges one",
	    f && sc_find(f, later[1]) && sc_ops->expunge(f, later[1], &err) == MP_OK &&
	    sc_find(f, later[1]) == NULL);
	if (f)
		sc_ops->folder_close(f);
	CHECK("stale handle: keyword change on its old view",
	    stale && sc_change(stale, first, MP_FLAGS_ADD, MP_FLAG_SEEN, "$Stale", NULL, NULL) == MP_OK);
	CHECK("stale handle: flags_set on its old view",
	    stale && sc_ops->flags_set(stale, first, MP_FLAG_FLAGGED, "$Other", &err) == MP_OK);
	f = sc_folder(mb, "Stale", 1);
	for (int k = 0; k < 3 && f; k += 2) {
		char *got = sc_read(f, later[k], NULL);
		sc_body(text, sizeof(text), 99, k);
		ok &= got != NULL && strcmp(got, text) == 0;
		free(got);
	}
	ok &= f && sc_find(f, later[1]) == NULL;
	CHECK("contract 1: a stale handle's write loses no one else's UID", f && ok);
	struct mp_folder_info info = { .struct_size = sizeof(info) };
	CHECK("contract 1: UIDNEXT did not go back",
	    f && sc_ops->folder_info(f, &info, &err) == MP_OK && info.uidnext == later[2] + 1 &&
	    info.messages == 3);
	if (f)
		sc_ops->folder_close(f);
	if (stale)
		sc_ops->folder_close(stale);
	sc_ops->close(mb);
}

/* ---- 3: two handles' flag changes both take effect ---- */

static void
sc_check_flag_changes(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	struct mp_folder *a, *b;
	const struct mp_msg_info *m;
	uint32_t uid, flags = 0;
	const char *kw = NULL, *err;

	sc_ops->folder_create(mb, "Flags", &err);
	sc_append(mb, "Flags", "Subject: f\r\n\r\nf\r\n", MP_FLAG_SEEN, &uid);
	a = sc_folder(mb, "Flags", 0);
	b = sc_folder(mb, "Flags", 0);
	CHECK("flags: two read-write handles", a && b);
	if (!a || !b)
		return;
	CHECK("flags: A +\\Answered",
	    sc_change(a, uid, MP_FLAGS_ADD, MP_FLAG_ANSWERED, NULL, &flags, NULL) == MP_OK &&
	    (flags & ~MP_FLAG_RECENT) == (MP_FLAG_SEEN | MP_FLAG_ANSWERED));
	/* B's view still says (\Seen): its change applies to what is stored */
	CHECK("flags: B -\\Seen on its older view",
	    sc_change(b, uid, MP_FLAGS_REMOVE, MP_FLAG_SEEN, NULL, &flags, NULL) == MP_OK &&
	    (flags & ~MP_FLAG_RECENT) == MP_FLAG_ANSWERED);
	m = sc_find(a, uid);
	CHECK("contract 3: +\\Answered and -\\Seen both took effect",
	    m && (m->flags & ~MP_FLAG_RECENT) == MP_FLAG_ANSWERED);
	CHECK("flags: A +\\Deleted after B's change",
	    sc_change(a, uid, MP_FLAGS_ADD, MP_FLAG_DELETED, NULL, NULL, NULL) == MP_OK);
	m = sc_find(b, uid);
	CHECK("contract 3: +\\Deleted seen by the other handle",
	    m && (m->flags & ~MP_FLAG_RECENT) == (MP_FLAG_ANSWERED | MP_FLAG_DELETED));
	CHECK("flags: A +$a, B +$b",
	    sc_change(a, uid, MP_FLAGS_ADD, 0, "$a", NULL, NULL) == MP_OK &&
	    sc_change(b, uid, MP_FLAGS_ADD, 0, "$b", NULL, &kw) == MP_OK);
	CHECK_STR("contract 3: both keyword additions kept", kw, "$a $b");
	CHECK("flags: B replaces on its view",
	    sc_ops->flags_set(b, uid, MP_FLAG_FLAGGED, "$c", &err) == MP_OK);
	m = sc_find(a, uid);
	CHECK("flags_set replaces flags and keywords",
	    m && (m->flags & ~MP_FLAG_RECENT) == MP_FLAG_FLAGGED &&
	    strcmp(m->keywords, "$c") == 0);
	struct mp_folder *ro = sc_folder(mb, "Flags", 1);
	CHECK("flags_change on a read-only handle refused", ro &&
	    sc_change(ro, uid, MP_FLAGS_ADD, MP_FLAG_SEEN, NULL, NULL, NULL) == MP_ERROR);
	if (ro)
		sc_ops->folder_close(ro);
	CHECK("flags_change on an expunged UID: MP_DECLINED",
	    sc_ops->expunge(a, uid, &err) == MP_OK &&
	    sc_change(b, uid, MP_FLAGS_ADD, MP_FLAG_SEEN, NULL, NULL, NULL) == MP_DECLINED);
	sc_ops->folder_close(a);
	sc_ops->folder_close(b);
	sc_ops->close(mb);
}

/* Two threads at a barrier each add their own flag to the same
 * messages: every message ends with both. */
struct sc_flagger {
	struct mp_folder *f;
	pthread_barrier_t *start;
	uint32_t flag;
	const char *kw;
	uint32_t first, count;
	int failures;
};

static void *
sc_flag_thread(void *arg)
{
	struct sc_flagger *g = arg;

	pthread_barrier_wait(g->start);
	for (uint32_t u = g->first; u < g->first + g->count; u++)
		g->failures += sc_change(g->f, u, MP_FLAGS_ADD, g->flag, g->kw, NULL,
		    NULL) != MP_OK;
	return NULL;
}

static void
sc_check_concurrent_flag_changes(const char *user)
{
	struct mp_mailbox *mb = sc_open(user), *mb2 = sc_open(user);
	pthread_barrier_t start;
	struct sc_flagger g[2];
	pthread_t t[2];
	uint32_t first = 0, uid;
	int both = 0;
	const char *err;

	sc_ops->folder_create(mb, "Race", &err);
	for (int k = 0; k < 20; k++) {
		sc_append(mb, "Race", "Subject: r\r\n\r\nr\r\n", 0, &uid);
		first = first ? first : uid;
	}
	pthread_barrier_init(&start, NULL, 2);
	g[0] = (struct sc_flagger){ sc_folder(mb, "Race", 0), &start, MP_FLAG_SEEN, "$one", first, 20, 0 };
	g[1] = (struct sc_flagger){ sc_folder(mb2, "Race", 0), &start, MP_FLAG_FLAGGED, "$two", first, 20, 0 };
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, sc_flag_thread, &g[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	for (uint32_t u = first; u < first + 20; u++) {
		const struct mp_msg_info *m = sc_find(g[0].f, u);
		both += m && (m->flags & (MP_FLAG_SEEN | MP_FLAG_FLAGGED)) ==
		    (MP_FLAG_SEEN | MP_FLAG_FLAGGED) && (strcmp(m->keywords, "$one $two") == 0 ||
		    strcmp(m->keywords, "$two $one") == 0);
	}
	CHECK("contract 3: concurrent +FLAGS from two handles all succeed",
	    g[0].failures == 0 && g[1].failures == 0);
	CHECK("contract 3: every message has both handles' flags and keywords", both == 20);
	sc_ops->folder_close(g[0].f);
	sc_ops->folder_close(g[1].f);
	sc_ops->close(mb);
	sc_ops->close(mb2);
}

/* ---- 4: keywords ---- */

static void
sc_check_keywords(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	struct mp_folder *f;
	const struct mp_msg_info *m;
	uint32_t uid, uid2, copied, moved, uv;
	const char *kw = NULL, *all = NULL, *err;

	sc_ops->folder_create(mb, "Kw", &err);
	sc_ops->folder_create(mb, "KwDest", &err);
	sc_append(mb, "Kw", "Subject: k\r\n\r\nk\r\n", 0, &uid);
	sc_append(mb, "Kw", "Subject: k2\r\n\r\nk2\r\n", 0, &uid2);
	f = sc_folder(mb, "Kw", 0);
	if (f == NULL || sc_ops->messages(f, &m, &(size_t){ 0 }, &err) != MP_OK) {
		CHECK("keywords: open", 0);
		return;
	}
	CHECK("keywords: +$a", sc_change(f, uid, MP_FLAGS_ADD, 0, "$a", NULL, &kw) == MP_OK);
	CHECK("keywords: +($a $b)", sc_change(f, uid, MP_FLAGS_ADD, 0, "$a $b", NULL, &kw) == MP_OK);
	CHECK_STR("contract 4: +$a then +($a $b) gives $a $b", kw, "$a $b");
	sc_change(f, uid, MP_FLAGS_ADD, 0, "$A $B", NULL, &kw);
	CHECK_STR("contract 4: $A is $a (case-insensitive, first spelling)", kw, "$a $b");
	sc_change(f, uid2, MP_FLAGS_ADD, 0, "$B Work work", NULL, &kw);
	CHECK_STR("contract 4: another message gets the folder's spelling, once", kw, "$b Work");
	sc_change(f, uid, MP_FLAGS_REPLACE, 0, "$B $c", NULL, &kw);
	CHECK_STR("contract 4: REPLACE in folder spelling", kw, "$b $c");
	sc_change(f, uid, MP_FLAGS_REMOVE, 0, "$C", NULL, &kw);
	CHECK_STR("contract 4: REMOVE is case-insensitive", kw, "$b");
	CHECK("folder_keywords", sc_ops->folder_keywords(f, &all, &err) == MP_OK);
	CHECK_STR("contract 4: the folder remembers every keyword once", all, "$a $b Work $c");
	CHECK("keywords: an invalid keyword is refused",
	    sc_change(f, uid, MP_FLAGS_ADD, 0, "bad(kw", NULL, NULL) == MP_ERROR);
	/* bounded: a client cannot grow the folder's table without end */
	char many[32];
	int refused = 0;
	for (int i = 0; i < 300 && !refused; i++) {
		snprintf(many, sizeof(many), "k%d", i);
		refused = sc_change(f, uid2, MP_FLAGS_ADD, 0, many, NULL, NULL) == MP_ERROR;
	}
	CHECK("contract 4: the folder's keyword table is bounded", refused);
	sc_change(f, uid2, MP_FLAGS_REPLACE, MP_FLAG_SEEN, "$b Work", NULL, NULL);
	CHECK("copy keeps keywords",
	    sc_ops->copy(f, uid2, "KwDest", 0, &copied, &uv, &err) == MP_OK);
	CHECK("move keeps keywords",
	    sc_ops->copy(f, uid, "KwDest", 1, &moved, &uv, &err) == MP_OK);
	struct mp_folder *d = sc_folder(mb, "KwDest", 0);
	const struct mp_msg_info *c = d ? sc_find(d, copied) : NULL;
	CHECK("contract 4: COPY kept keywords and flags",
	    c && strcmp(c->keywords, "$b Work") == 0 && (c->flags & MP_FLAG_SEEN));
	c = d ? sc_find(d, moved) : NULL;
	CHECK("contract 4: MOVE kept keywords", c && strcmp(c->keywords, "$b") == 0);
	all = NULL;
	CHECK("contract 4: the destination knows the copied keywords",
	    d && sc_ops->folder_keywords(d, &all, &err) == MP_OK && all &&
	    strstr(all, "Work") && strstr(all, "$b"));
	CHECK("contract 4: MOVE removed the source", sc_find(f, uid) == NULL &&
	    sc_find(f, uid2) != NULL);
	if (d)
		sc_ops->folder_close(d);
	sc_ops->folder_close(f);
	sc_ops->close(mb);
}

/* ---- 5: \Recent belongs to one handle ---- */

static int
sc_recent(struct mp_folder *f, uint32_t uid)
{
	const struct mp_msg_info *m = sc_find(f, uid);

	return m && (m->flags & MP_FLAG_RECENT);
}

struct sc_opener {
	const char *user;
	pthread_barrier_t *start;
	struct mp_folder *f;
	struct mp_mailbox *mb;
};

static void *
sc_open_thread(void *arg)
{
	struct sc_opener *o = arg;

	o->mb = sc_open(o->user);
	pthread_barrier_wait(o->start);
	o->f = o->mb ? sc_folder(o->mb, "Rec", 0) : NULL;
	return NULL;
}

static void
sc_check_recent(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	struct mp_folder *ro, *a, *b;
	struct mp_folder_info info = { .struct_size = sizeof(info) };
	uint32_t u1, u2, u3;
	const char *err;

	sc_ops->folder_create(mb, "Rec", &err);
	sc_append(mb, "Rec", "Subject: 1\r\n\r\n1\r\n", 0, &u1);
	ro = sc_folder(mb, "Rec", 1);
	CHECK("contract 5: read-only sees an unclaimed message as recent",
	    ro && sc_recent(ro, u1) && sc_ops->folder_info(ro, &info, &err) == MP_OK &&
	    info.recent == 1);
	if (ro)
		sc_ops->folder_close(ro);
	ro = sc_folder(mb, "Rec", 1);
	CHECK("contract 5: read-only handles claim nothing", ro && sc_recent(ro, u1));
	/* APPEND's keywords: a handle opened only to change flags */
	struct mp_folder *w = sc_folder(mb, "Rec", 0);
	CHECK("contract 5: a handle only changing flags claims nothing",
	    w && sc_change(w, u1, MP_FLAGS_ADD, 0, "$k", NULL, NULL) == MP_OK);
	if (w)
		sc_ops->folder_close(w);
	a = sc_folder(mb, "Rec", 0);
	b = sc_folder(mb, "Rec", 0);
	CHECK("contract 5: the first read-write handle to list it claims it",
	    a && sc_recent(a, u1));
	CHECK("contract 5: the second does not see it recent", b && !sc_recent(b, u1));
	CHECK("contract 5: once claimed, read-only handles do not count it",
	    ro && !sc_recent(ro, u1) && sc_ops->folder_info(ro, &info, &err) == MP_OK &&
	    info.recent == 0);
	sc_append(mb, "Rec", "Subject: 2\r\n\r\n2\r\n", 0, &u2);
	CHECK("contract 5: a later message goes to whoever syncs first",
	    b && sc_recent(b, u2) && a && !sc_recent(a, u2));
	CHECK("contract 5: the first claim stays", a && sc_recent(a, u1));
	CHECK("contract 5: folder_info counts what the caller sees",
	    b && sc_ops->folder_info(b, &info, &err) == MP_OK && info.recent == 1);
	sc_ops->folder_close(a);
	sc_ops->folder_close(b);
	/* two handles opened at once by two threads: one claim each message */
	sc_append(mb, "Rec", "Subject: 3\r\n\r\n3\r\n", 0, &u3);
	pthread_barrier_t start;
	struct sc_opener o[2] = { { user, &start, NULL, NULL }, { user, &start, NULL, NULL } };
	pthread_t t[2];
	pthread_barrier_init(&start, NULL, 2);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, sc_open_thread, &o[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	CHECK("contract 5: two concurrent read-write opens: exactly one has \\Recent",
	    o[0].f && o[1].f && sc_recent(o[0].f, u3) + sc_recent(o[1].f, u3) == 1);
	for (int i = 0; i < 2; i++) {
		if (o[i].f)
			sc_ops->folder_close(o[i].f);
		if (o[i].mb)
			sc_ops->close(o[i].mb);
	}
	if (ro)
		sc_ops->folder_close(ro);
	sc_ops->close(mb);
}

/* ---- 2: expunged by another handle: whole or MP_DECLINED ---- */

static void
sc_check_expunged_read(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	struct mp_folder *a, *b;
	struct mp_reader r = { .struct_size = sizeof(r) };
	char big[20000], got[32768];
	uint32_t uid;
	size_t o = 0;
	ssize_t n;
	int rc;
	const char *err;

	memset(big, 'x', sizeof(big));
	memcpy(big, "Subject: big\r\n\r\n", 16);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	sc_ops->folder_create(mb, "Exp", &err);
	sc_append(mb, "Exp", big, 0, &uid);
	a = sc_folder(mb, "Exp", 0);
	b = sc_folder(mb, "Exp", 0);
	CHECK("expunge: two handles", a && b);
	if (!a || !b)
		return;
	CHECK("expunge: A opens a stream", sc_ops->message_open(a, uid, MP_PART_ALL, &r, &err) == MP_OK);
	n = r.read(&r, got, 100);
	o = n > 0 ? (size_t)n : 0;
	CHECK("expunge: B expunges it", sc_ops->expunge(b, uid, &err) == MP_OK);
	while ((n = r.read(&r, got + o, sizeof(got) - o - 1)) > 0)
		o += (size_t)n;
	sc_ops->message_close(&r);
	got[o] = '\0';
	CHECK("contract 2: a stream opened before the expunge reads the whole message",
	    n == 0 && strcmp(got, big) == 0);
	char *again = sc_read(a, uid, &rc);
	CHECK("contract 2: a stale handle opening the expunged UID: MP_DECLINED or whole",
	    (rc == MP_DECLINED && again == NULL) || (rc == MP_OK && again && strcmp(again, big) == 0));
	free(again);
	CHECK("contract 2: the other handle no longer lists it", sc_find(b, uid) == NULL);
	CHECK("expunge: a stale handle expunging it again: MP_OK",
	    sc_ops->expunge(a, uid, &err) == MP_OK);
	CHECK("expunge: a UID never listed: MP_DECLINED",
	    sc_ops->expunge(a, uid + 1000, &err) == MP_DECLINED);
	sc_ops->folder_close(a);
	sc_ops->folder_close(b);
	sc_ops->close(mb);
}

/* A handle reads a message whose flags another handle changed since. */
static void
sc_check_renamed_read(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	struct mp_folder *a, *b;
	uint32_t uid, flags = 0;
	const char *text = "Subject: renamed\r\n\r\nstill me\r\n", *err;

	sc_ops->folder_create(mb, "Ren", &err);
	sc_append(mb, "Ren", text, 0, &uid);
	a = sc_folder(mb, "Ren", 0);
	b = sc_folder(mb, "Ren", 0);
	if (!a || !b) {
		CHECK("renamed: open", 0);
		return;
	}
	sc_change(b, uid, MP_FLAGS_ADD, MP_FLAG_FLAGGED, NULL, NULL, NULL);
	char *got = sc_read(a, uid, NULL);
	CHECK("contract 2: a message whose flags another handle changed still reads whole",
	    got && strcmp(got, text) == 0);
	free(got);
	CHECK("contract 3: a change on the stale name applies to the stored flags",
	    sc_change(a, uid, MP_FLAGS_ADD, MP_FLAG_SEEN, NULL, &flags, NULL) == MP_OK &&
	    (flags & ~MP_FLAG_RECENT) == (MP_FLAG_SEEN | MP_FLAG_FLAGGED));
	sc_ops->folder_close(a);
	sc_ops->folder_close(b);
	sc_ops->close(mb);
}

/* ---- hierarchy: deleting a parent keeps children ---- */

static void
sc_names(void *arg, const char *name, unsigned attrs)
{
	char *out = arg;

	(void)attrs;
	snprintf(out + strlen(out), 1024 - strlen(out), "%s;", name);
}

static void
sc_check_hierarchy(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	char names[1024] = "";
	uint32_t uid;
	const char *err;

	CHECK("hierarchy: create a/b/c (parents not made by the store)",
	    sc_ops->folder_create(mb, "H/b/c", &err) == MP_OK);
	sc_ops->folder_create(mb, "H", &err);
	sc_ops->folder_create(mb, "H/b", &err);
	sc_append(mb, "H/b", "Subject: child\r\n\r\nc\r\n", 0, &uid);
	CHECK("hierarchy: delete H", sc_ops->folder_delete(mb, "H", &err) == MP_OK);
	sc_ops->folders(mb, sc_names, names, &err);
	CHECK("hierarchy: deleting H leaves H/b and H/b/c",
	    strstr(names, ";H/b;") && strstr(names, ";H/b/c;") && !strstr(names, ";H;"));
	struct mp_folder *f = sc_folder(mb, "H/b", 1);
	CHECK("hierarchy: H/b keeps its message", f && sc_find(f, uid) != NULL);
	if (f)
		sc_ops->folder_close(f);
	sc_ops->close(mb);
}

/* The ABI 2 rules for the store's structs (module.h rules 1, 2, 4):
 * messages() sizes every element, folder_info writes nothing past the
 * members it knows and leaves the caller's size alone. */
static void
sc_check_sized_structs(const char *user)
{
	struct mp_mailbox *mb = sc_open(user);
	struct mp_folder *f = mb ? sc_folder(mb, "INBOX", 0) : NULL;
	struct { struct mp_folder_info info; uint32_t later; } grown = {
		.info = { .struct_size = sizeof(grown) }, .later = 0x5eed };
	const struct mp_msg_info *v = NULL;
	const char *err;
	size_t n = 0, sized = 0;
	uint32_t uid;

	for (int i = 0; f && i < 3; i++)
		sc_append(mb, "INBOX", "Subject: sized\r\n\r\nbody\r\n", 0, &uid);
	if (f && sc_ops->messages(f, &v, &n, &err) == MP_OK)
		for (size_t i = 0; i < n; i++)
			sized += MP_ELEM(v, i)->struct_size == sizeof(struct mp_msg_info);
	CHECK("ABI: every messages() element carries its size", n == 3 && sized == 3);
	CHECK("ABI: folder_info fills a grown caller's struct, nothing past it",
	    f && sc_ops->folder_info(f, &grown.info, &err) == MP_OK &&
	    grown.info.messages == 3 && grown.later == 0x5eed &&
	    grown.info.struct_size == sizeof(grown));
	if (f)
		sc_ops->folder_close(f);
	if (mb)
		sc_ops->close(mb);
}

static void
sc_run_contract(const struct mp_store_ops *ops, void *ctx)
{
	sc_ops = ops;
	sc_ctx = ctx;
	CHECK("ops table has flags_change and folder_keywords",
	    MP_HAS(ops, ops->struct_size, folder_keywords) && ops->flags_change &&
	    ops->folder_keywords);
	sc_check_concurrent_appends("conc@contract.test");
	sc_check_stale_writer("stale@contract.test");
	sc_check_flag_changes("flags@contract.test");
	sc_check_concurrent_flag_changes("race@contract.test");
	sc_check_keywords("kw@contract.test");
	sc_check_recent("recent@contract.test");
	sc_check_expunged_read("exp@contract.test");
	sc_check_renamed_read("ren@contract.test");
	sc_check_hierarchy("tree@contract.test");
	sc_check_sized_structs("abi@contract.test");
}

#endif
