/*
 * tests/unit/test_store_sqlite_common.c - the code both SQL stores share
 * (modules/common/store_*.c), on its own: the folder snapshot and its
 * \Recent claims, keyword spelling through a callback, folder names and
 * the LIST answer, header length, CRLF and the delivery reader. Built by
 * store_sqlite's unit test rule, which links store_sqlite_SRCS; the
 * stores' behaviour on top of it is test_store_*_contract's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock_host.h"
#include "store_folders.h"
#include "store_keywords.h"
#include "store_message.h"
#include "store_snapshot.h"
#include "test.h"

/* ---- snapshot ---- */

static struct mp_msg_info
msg(uint32_t uid, uint32_t flags, const char *kw)
{
	return (struct mp_msg_info){ .uid = uid, .flags = flags, .size = 100 + uid,
	    .internal_date = 1000, .keywords = kw };
}

/* A scripted compare-and-set: answers `answer`, counts its calls. */
struct cas_script {
	int answer, calls;
	long long seen;
	uint32_t last;
};

static int
cas(void *arg, long long seen, uint32_t last)
{
	struct cas_script *c = arg;

	c->calls++;
	c->seen = seen;
	c->last = last;
	return c->answer;
}

static void
test_snapshot_put_find(void)
{
	struct store_snapshot ss = { .uidnext = 5 };
	char kw[] = "$Label1";
	struct mp_msg_info m = msg(2, MP_FLAG_SEEN | MP_FLAG_RECENT, kw);

	CHECK("find in an empty snapshot", snapshot_find(&ss, 1) == 0);
	CHECK("put appends", snapshot_put(&ss, ss.n, &m) == 0 && ss.n == 1);
	kw[0] = 'X';
	CHECK_STR("put copies the keywords", ss.info[0].keywords, "$Label1");
	CHECK("put drops a stored \\Recent", ss.info[0].flags == MP_FLAG_SEEN);
	CHECK("struct_size set", ss.info[0].struct_size == sizeof(struct mp_msg_info));
	m = msg(4, 0, NULL);
	CHECK("NULL keywords are empty", snapshot_put(&ss, ss.n, &m) == 0 &&
	    strcmp(ss.info[1].keywords, "") == 0);
	CHECK("uidnext stays above", ss.uidnext == 5);
	m = msg(9, 0, "");
	CHECK("a UID at uidnext moves it", snapshot_put(&ss, ss.n, &m) == 0 && ss.uidnext == 10);
	for (uint32_t uid = 10; uid < 200; uid += 2) {
		m = msg(uid, 0, "a");
		snapshot_put(&ss, ss.n, &m);
	}
	CHECK("find: first", snapshot_find(&ss, 2) == 0);
	CHECK("find: middle", snapshot_find(&ss, 9) == 2);
	CHECK("find: last", snapshot_find(&ss, 198) == ss.n - 1);
	CHECK("find: absent between", snapshot_find(&ss, 11) == ss.n);
	CHECK("find: absent below and above", snapshot_find(&ss, 1) == ss.n &&
	    snapshot_find(&ss, 500) == ss.n);
	m = msg(4, MP_FLAG_FLAGGED, "new");
	CHECK("put replaces", snapshot_put(&ss, 1, &m) == 0 && ss.info[1].flags == MP_FLAG_FLAGGED &&
	    strcmp(ss.info[1].keywords, "new") == 0 && ss.n == 98);
	snapshot_clear(&ss);
	CHECK("clear empties", ss.n == 0 && ss.info == NULL && ss.uidnext == 199);
	m = msg(3, 0, "x");
	CHECK("usable after clear", snapshot_put(&ss, 0, &m) == 0 && ss.n == 1);
	snapshot_fini(&ss);
}

static void
test_snapshot_merge(void)
{
	struct store_snapshot ss = { .uidnext = 1 };
	struct mp_msg_info m;

	for (uint32_t uid = 1; uid <= 5; uid += 2) {	/* 1 3 5 */
		m = msg(uid, 0, "");
		snapshot_put(&ss, ss.n, &m);
	}
	m = msg(3, MP_FLAG_ANSWERED, "$Done");
	CHECK("merge: a known UID changes", snapshot_merge(&ss, &m) == 0 && ss.n == 3 &&
	    ss.info[1].flags == MP_FLAG_ANSWERED && strcmp(ss.info[1].keywords, "$Done") == 0);
	m = msg(8, 0, "");
	CHECK("merge: a UID above the last appends", snapshot_merge(&ss, &m) == 0 && ss.n == 4 &&
	    ss.info[3].uid == 8 && ss.uidnext == 9);
	m = msg(4, 0, "");
	CHECK("merge: a UID between asks for a re-read", snapshot_merge(&ss, &m) == 1 &&
	    ss.n == 4 && snapshot_find(&ss, 4) == ss.n);
	snapshot_fini(&ss);
}

static void
test_snapshot_claims(void)
{
	struct store_snapshot rw = { .uidnext = 11 }, ro = { .read_only = 1, .uidnext = 11 };
	struct cas_script won = { .answer = 1 }, lost = { .answer = 0 }, broken = { .answer = -1 };

	CHECK("no claim asked: no compare-and-set",
	    snapshot_claim(&rw, 4, 0, cas, &won) == 0 && won.calls == 0 && rw.nclaims == 0);
	CHECK("claim won", snapshot_claim(&rw, 4, 1, cas, &won) == 0 && won.calls == 1 &&
	    won.seen == 4 && won.last == 10 && rw.nclaims == 1);
	CHECK("won UIDs are recent", snapshot_is_recent(&rw, 5) && snapshot_is_recent(&rw, 10));
	CHECK("others are not", !snapshot_is_recent(&rw, 4) && !snapshot_is_recent(&rw, 11));
	CHECK("nothing new: no compare-and-set",
	    snapshot_claim(&rw, 10, 1, cas, &won) == 0 && won.calls == 1);
	rw.uidnext = 15;
	CHECK("claim lost", snapshot_claim(&rw, 10, 1, cas, &lost) == 0 && lost.calls == 1 &&
	    rw.nclaims == 1 && !snapshot_is_recent(&rw, 12));
	CHECK("compare-and-set failing", snapshot_claim(&rw, 10, 1, cas, &broken) == -1 &&
	    rw.nclaims == 1);
	CHECK("second claim won", snapshot_claim(&rw, 10, 1, cas, &won) == 0 && rw.nclaims == 2 &&
	    snapshot_is_recent(&rw, 12) && snapshot_is_recent(&rw, 7));
	CHECK("read-only claims nothing", snapshot_claim(&ro, 6, 1, cas, &won) == 0 &&
	    won.calls == 2 && ro.nclaims == 0 && ro.seen_uid == 6);
	CHECK("read-only: recent above the mark",
	    snapshot_is_recent(&ro, 7) && !snapshot_is_recent(&ro, 6));

	struct mp_msg_info m;
	for (uint32_t uid = 3; uid <= 14; uid += 1) {
		m = msg(uid, uid == 3 ? MP_FLAG_RECENT : 0, "");
		snapshot_put(&rw, rw.n, &m);
	}
	CHECK("put marks recent from the claims", (rw.info[2].flags & MP_FLAG_RECENT) &&
	    !(rw.info[0].flags & MP_FLAG_RECENT));
	rw.claims[0].first = 6;	/* as if the claims moved */
	rw.info[0].flags |= MP_FLAG_RECENT;
	snapshot_mark_recent(&rw);
	CHECK("mark_recent follows the claims", !(rw.info[0].flags & MP_FLAG_RECENT) &&
	    !(rw.info[2].flags & MP_FLAG_RECENT) && (rw.info[3].flags & MP_FLAG_RECENT));

	struct mp_folder_info info = { .struct_size = sizeof(info) };
	rw.uidvalidity = 77;
	rw.info[4].flags |= MP_FLAG_SEEN;
	snapshot_folder_info(&rw, &info);
	CHECK("folder_info counts", info.messages == 12 && info.recent == 9 && info.unseen == 11 &&
	    info.uidvalidity == 77 && info.uidnext == 15 && info.struct_size == sizeof(info));
	snapshot_fini(&rw);
	snapshot_fini(&ro);
}

static void
test_snapshot_flags_expunge(void)
{
	struct store_snapshot ss = { .uidnext = 1 };
	struct cas_script won = { .answer = 1 };
	struct mp_msg_info m;
	const char *kw_r = NULL, *err = NULL;
	uint32_t flags_r = 0;

	for (uint32_t uid = 1; uid <= 3; uid++) {
		m = msg(uid, 0, "");
		snapshot_put(&ss, ss.n, &m);
	}
	ss.uidnext = 5;
	snapshot_claim(&ss, 2, 1, cas, &won);	/* 3 and 4 are ours */
	snapshot_flags_changed(&ss, 3, MP_FLAG_SEEN, strdup("$A $B"), &flags_r, &kw_r);
	CHECK("flags_changed: the handle's view", flags_r == (MP_FLAG_SEEN | MP_FLAG_RECENT) &&
	    kw_r == ss.result && strcmp(kw_r, "$A $B") == 0);
	CHECK("flags_changed: the snapshot follows", ss.info[2].flags == flags_r &&
	    strcmp(ss.info[2].keywords, "$A $B") == 0 && ss.info[2].keywords != ss.result);
	snapshot_flags_changed(&ss, 1, MP_FLAG_DELETED, strdup(""), NULL, NULL);
	CHECK("flags_changed: outputs optional", ss.info[0].flags == MP_FLAG_DELETED);
	snapshot_flags_changed(&ss, 9, MP_FLAG_DELETED, strdup("x"), &flags_r, &kw_r);
	CHECK("flags_changed: an unlisted UID", flags_r == MP_FLAG_DELETED && strcmp(kw_r, "x") == 0 &&
	    ss.n == 3);
	CHECK_STR("result keeps text", snapshot_result(&ss, strdup("k")), "k");
	CHECK_STR("result of NULL is empty", snapshot_result(&ss, NULL), "");
	CHECK("expunge of a listed UID gone already", snapshot_expunge_gone(&ss, 2, &err) == MP_OK);
	CHECK("expunge of an unlisted UID", snapshot_expunge_gone(&ss, 7, &err) == MP_DECLINED &&
	    strcmp(err, "no such message") == 0);
	snapshot_fini(&ss);
	CHECK("fini leaves nothing", ss.claims == NULL && ss.result == NULL && ss.info == NULL);
}

/* ---- keywords ---- */

/* A folder's keyword table for the spelling callback. */
struct table {
	char words[4][32];
	int n, max, fail;
};

static int
spelling(void *arg, char *word, size_t size, const char **why)
{
	struct table *t = arg;

	if (t->fail)
		return -1;
	for (int i = 0; i < t->n; i++)
		if (strcasecmp(t->words[i], word) == 0) {
			snprintf(word, size, "%s", t->words[i]);
			return 0;
		}
	if (t->n == t->max) {
		*why = "too many keywords in this folder";
		return -2;
	}
	snprintf(t->words[t->n++], sizeof(t->words[0]), "%s", word);
	return 0;
}

static void
test_keywords(void)
{
	struct table t = { .words = { "$Work" }, .n = 1, .max = 4 };
	const char *why = NULL;
	char *kw = NULL;
	int rc;

	rc = store_keywords_apply("", MP_FLAGS_ADD, "$work Urgent $WORK", spelling, &t, &kw, &why);
	CHECK_STR("add: the folder's spelling, once", rc == 0 ? kw : NULL, "$Work Urgent");
	CHECK("add: a new word joins the table", t.n == 2);
	CHECK("success leaves *why alone", why == NULL);
	free(kw);
	rc = store_keywords_apply("$Work Urgent", MP_FLAGS_REMOVE, "urgent", spelling, &t, &kw, &why);
	CHECK_STR("remove, any case", rc == 0 ? kw : NULL, "$Work");
	free(kw);
	rc = store_keywords_apply("$Work Urgent", MP_FLAGS_REPLACE, "urgent", spelling, &t, &kw, &why);
	CHECK_STR("replace", rc == 0 ? kw : NULL, "Urgent");
	free(kw);
	rc = store_keywords_apply("$Work bad\"word", MP_FLAGS_ADD, NULL, spelling, &t, &kw, &why);
	CHECK_STR("an invalid stored word is dropped", rc == 0 ? kw : NULL, "$Work");
	free(kw);
	kw = NULL;
	rc = store_keywords_apply("", MP_FLAGS_ADD, "ok (bad", spelling, &t, &kw, &why);
	CHECK("an invalid given word is refused", rc == -2 && kw == NULL &&
	    strcmp(why, "invalid keyword") == 0);
	rc = store_keywords_apply("", MP_FLAGS_ADD, "a b c", spelling, &t, &kw, &why);
	CHECK("a full table refuses", rc == -2 && kw == NULL && strstr(why, "too many"));
	t.fail = 1;
	rc = store_keywords_apply("", MP_FLAGS_ADD, "x", spelling, &t, &kw, &why);
	CHECK("a database error is -1", rc == -1 && kw == NULL);
	rc = store_keywords_apply("", MP_FLAGS_ADD, "", spelling, &t, &kw, &why);
	CHECK_STR("nothing given: empty, no lookup", rc == 0 ? kw : NULL, "");
	free(kw);
}

/* ---- folders ---- */

static char listed[512];

static void
each(void *arg, const char *name, unsigned attrs)
{
	size_t len = strlen(listed);

	(void)arg;
	snprintf(listed + len, sizeof(listed) - len, "%s%s ", name,
	    attrs & MP_FOLDER_HAS_CHILDREN ? "+" : "");
}

static void
test_folders(void)
{
	char long_name[400];
	struct store_folder_row rows[] = { { "INBOX", 0 }, { "a", 0 }, { "a/b", 0 },
	    { "ab", 0 }, { "a/b/c", 0 } };

	struct store *owner = (struct store *)long_name;	/* opaque here */
	struct mp_mailbox *mb = NULL;
	const char *err = NULL;

	CHECK("mailbox: the address lower-cased",
	    store_mailbox_new(owner, "Ann@Ex.TEST", &mb, &err) == MP_OK && mb->s == owner &&
	    strcmp(mb->user, "ann@ex.test") == 0);
	store_mailbox_close(mb);
	mb = NULL;
	CHECK("mailbox: no @", store_mailbox_new(owner, "ann", &mb, &err) == MP_ERROR &&
	    mb == NULL && strcmp(err, "bad mailbox address") == 0);
	memset(long_name, 'x', sizeof(long_name));
	long_name[0] = '@';
	long_name[329] = '\0';
	CHECK("mailbox: 329 octets", store_mailbox_new(owner, long_name, &mb, &err) == MP_OK &&
	    strlen(mb->user) == 329);
	store_mailbox_close(mb);
	mb = NULL;
	long_name[329] = 'x';
	long_name[330] = '\0';
	CHECK("mailbox: 330 octets", store_mailbox_new(owner, long_name, &mb, &err) == MP_ERROR &&
	    mb == NULL);
	CHECK("folder names: good", store_folder_valid("a") && store_folder_valid("a/b c"));
	CHECK("folder names: empty levels", !store_folder_valid("") && !store_folder_valid("/a") &&
	    !store_folder_valid("a/") && !store_folder_valid("a//b"));
	CHECK("folder names: control characters", !store_folder_valid("a\tb") &&
	    !store_folder_valid("a\x7f"));
	memset(long_name, 'x', sizeof(long_name));
	long_name[200] = '\0';
	CHECK("folder names: 200 octets", store_folder_valid(long_name));
	long_name[200] = 'x';
	long_name[201] = '\0';
	CHECK("folder names: 201 octets", !store_folder_valid(long_name));
	CHECK_STR("INBOX in any case", store_folder_canonical("inBox"), "INBOX");
	CHECK_STR("other names as given", store_folder_canonical("Inboxes"), "Inboxes");
	store_folders_report(rows, 5, each, NULL);
	CHECK_STR("LIST with \\HasChildren", listed, "INBOX a+ a/b+ ab a/b/c ");
}

/* ---- message bodies ---- */

static long long
header_length_of(const char *text, size_t step)
{
	struct mock_text t = { text, 0, step };
	struct mp_reader r = { sizeof(r), mock_text_read, -1, &t };

	return store_header_length(&r, 999);
}

static void
test_message(void)
{
	char out[64], prev = 0, big[1500];
	size_t n;

	CHECK("header length", header_length_of("A: b\r\n\r\nbody", 4096) == 8);
	CHECK("header length, an octet at a time", header_length_of("A: b\r\nC: d\r\n\r\nx", 1) == 14);
	CHECK("header length: \\r\\r\\n\\r\\n", header_length_of("A: b\r\r\n\r\nx", 3) == 9);
	CHECK("header length: no empty line", header_length_of("A: b\r\nno end", 5) == 999);
	CHECK("header length: bare LFs are no end", header_length_of("A\n\nB", 5) == 999);

	n = store_crlf("a\nb\r\nc\r", 7, out, &prev);
	CHECK("CRLF: bare LF gets CR", n == 8 && memcmp(out, "a\r\nb\r\nc\r", 8) == 0 && prev == '\r');
	n = store_crlf("\nd\n", 3, out, &prev);
	CHECK("CRLF: a CR ending the last piece counts", n == 4 && memcmp(out, "\nd\r\n", 4) == 0);

	struct mock_text t = { "Subject: x\r\n\r\nhi\r\n", 0, 0 };
	struct mp_reader inner = { sizeof(inner), mock_text_read, -1, &t };
	struct mp_envelope env = { .struct_size = sizeof(env), .sender = "s@x.test" };
	struct store_delivery d;
	char got[256] = "";
	ssize_t k;
	size_t len = 0;

	store_delivery_init(&d, &env, "r@y.test", &inner);
	while ((k = d.reader.read(&d.reader, got + len, 5)) > 0)
		len += (size_t)k;
	got[len] = '\0';
	CHECK_STR("delivery: trace headers then the message", got,
	    "Return-Path: <s@x.test>\r\nDelivered-To: r@y.test\r\nSubject: x\r\n\r\nhi\r\n");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	env.sender = big;
	t.pos = 0;
	store_delivery_init(&d, &env, "r@y.test", &inner);
	CHECK("delivery: a huge sender is cut to the buffer", d.hlen == sizeof(d.head) - 1);

	struct mp_status st = { .struct_size = sizeof(st) };
	CHECK("status: delivered", store_delivery_status(&st, "store_x", MP_OK, NULL) == MP_OK &&
	    st.reply == 250 && strcmp(st.text, "delivered to store_x") == 0);
	CHECK("status: any failure tempfails", store_delivery_status(&st, "store_x", MP_PERMFAIL,
	    "disk on fire") == MP_TEMPFAIL && st.reply == 451 &&
	    strcmp(st.text, "store_x: disk on fire") == 0 && strcmp(st.enhanced, "4.3.0") == 0);
	CHECK("status: no reason given", store_delivery_status(&st, "store_x", MP_ERROR, NULL) ==
	    MP_TEMPFAIL && strcmp(st.text, "store_x: failed") == 0);
}

int
main(void)
{
	test_snapshot_put_find();
	test_snapshot_merge();
	test_snapshot_claims();
	test_snapshot_flags_expunge();
	test_keywords();
	test_folders();
	test_message();
	TEST_EXIT();
}
