/*
 * tests/unit/test_deliver_maildir.c - Maildir delivery and the Maildir
 * mailstore: spec delivery (tmp -> new, modes, headers, LF), path
 * safety, UIDs stable and ordered, flags in names, CRLF streams with
 * the right sizes, append/copy/expunge, the POP3 lock, folders, and two
 * writers (deliveries and a session) at once.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../modules/deliver_maildir/maildir_private.h"
#include "mock_host.h"
#include "test.h"

extern const struct mp_module merpati_module;

static char root[] = "/tmp/merpati-test-maildir-XXXXXX";
static void *ctx;
static const struct mp_store_ops *st;


static int
deliver(const char *rcpt, const char *text, size_t step, struct mp_status *s)
{
	struct mock_text t = { text, 0, step };
	struct mp_reader r = { sizeof(r), mock_text_read, (off_t)strlen(text), &t };
	const char *rcpts[] = { rcpt };
	struct mp_envelope env = { sizeof(env), "QID", "from@y.test", rcpts, 1, 0,
	    NULL, NULL, NULL };

	return merpati_module.deliver->deliver(ctx, &env, rcpt, &r, s);
}

static int
count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return d ? n : -1;
}

static char *
slurp_chunks(struct mp_reader *r, size_t chunk)
{
	static char buf[65536];
	size_t o = 0;
	ssize_t n;

	while (o + chunk < sizeof(buf) && (n = r->read(r, buf + o, chunk)) > 0)
		o += (size_t)n;
	buf[o] = '\0';
	return buf;
}

static char *
slurp_reader(struct mp_reader *r)
{
	return slurp_chunks(r, 7);	/* small reads on purpose */
}

static void
test_delivery(void)
{
	struct mp_status s;
	char dir[512], path[1024];
	struct stat sb;

	CHECK("deliver", deliver("Alice@Example.TEST", "Subject: a\r\n\r\nline\r\n", 1, &s) == MP_OK &&
	    s.reply == 250 && strcmp(s.enhanced, "2.0.0") == 0);
	snprintf(dir, sizeof(dir), "%s/example.test/alice/new", root);
	CHECK("one file in new/", count(dir) == 1);
	snprintf(dir, sizeof(dir), "%s/example.test/alice/tmp", root);
	CHECK("tmp/ left empty", count(dir) == 0);
	snprintf(dir, sizeof(dir), "%s/example.test/alice", root);
	CHECK("Maildir mode 0700", stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	snprintf(dir, sizeof(dir), "%s/example.test/alice/new", root);
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
	closedir(d);
	CHECK("file mode 0600", stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	FILE *f = fopen(path, "r");
	char text[512] = "";
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	CHECK_STR("headers first, LF line ends (CRLF split across reads)", text,
	    "Return-Path: <from@y.test>\nDelivered-To: Alice@Example.TEST\nSubject: a\n\nline\n");
}

static void
test_path_safety(void)
{
	static const char *const bad[] = { "../../etc@example.test", ".hidden@example.test",
	    "a/b@example.test", "x@../etc", "x@.", "@example.test", "noat" };
	struct mp_status s;
	char probe[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[96];
		snprintf(name, sizeof(name), "refuse %s", bad[i]);
		CHECK(name, deliver(bad[i], "x\r\n", 0, &s) == MP_PERMFAIL && s.reply == 550);
	}
	snprintf(probe, sizeof(probe), "%s/../etc", root);
	CHECK("nothing created outside root", access(probe, F_OK) != 0);
}

static void
test_unwritable_root(void)
{
	char file[512];
	struct mp_status s;
	const char *kv[] = { "root", file, NULL };
	struct mp_conf conf = { kv, NULL };
	void *c2;
	const char *err = NULL;

	snprintf(file, sizeof(file), "%s-notadir", root);
	FILE *f = fopen(file, "w");
	fclose(f);
	CHECK("init with a file as root", merpati_module.init(&mock_host, &conf, &c2, &err) == MP_OK);
	void *saved = ctx;
	ctx = c2;
	CHECK("root is a file: TEMPFAIL", deliver("a@example.test", "x\r\n", 0, &s) == MP_TEMPFAIL &&
	    s.reply == 451 && s.enhanced[0] == '4');
	ctx = saved;
	merpati_module.fini(c2);
	unlink(file);
}

/* sync = "file" (fsync per file and new/) delivers the same way; an
 * unknown sync mode is refused at init. */
static void
test_sync_modes(void)
{
	const char *file_kv[] = { "root", root, "sync", "file", NULL };
	const char *bad_kv[] = { "root", root, "sync", "sometimes", NULL };
	struct mp_conf file_conf = { file_kv, NULL }, bad_conf = { bad_kv, NULL };
	struct mp_status s;
	char dir[512];
	void *c2, *saved = ctx;
	const char *err = NULL;

	CHECK("unknown sync mode refused",
	    merpati_module.init(&mock_host, &bad_conf, &c2, &err) == MP_ERROR &&
	    err && strstr(err, "sync") != NULL);
	CHECK("sync = file accepted",
	    merpati_module.init(&mock_host, &file_conf, &c2, &err) == MP_OK);
	ctx = c2;
	CHECK("sync = file delivers", deliver("erin@example.test", "x\r\n", 0, &s) == MP_OK);
	ctx = saved;
	merpati_module.fini(c2);
	snprintf(dir, sizeof(dir), "%s/example.test/erin/new", root);
	CHECK("message in new/", count(dir) == 1);
}

static void
test_store(void)
{
	struct mp_mailbox *mb;
	struct mp_folder *f;
	const struct mp_msg_info *v;
	struct mp_folder_info info = { .struct_size = sizeof(info) };
	struct mp_reader r = { .struct_size = sizeof(r) };
	struct mp_status s;
	const char *err = NULL;
	size_t n;

	deliver("bob@example.test", "Subject: 1\r\n\r\n.dot\r\n", 0, &s);
	deliver("bob@example.test", "Subject: 2\r\n\r\nbody two\r\n", 0, &s);
	CHECK("open mailbox", st->open(ctx, "bob@example.test", &mb, &err) == MP_OK);
	CHECK("open INBOX", st->folder_open(mb, "INBOX", 0, &f, &err) == MP_OK);
	CHECK("two messages", st->messages(f, &v, &n, &err) == MP_OK && n == 2);
	CHECK("UIDs 1 and 2 in delivery order", n == 2 && MP_ELEM(v, 0)->uid == 1 && MP_ELEM(v, 1)->uid == 2);
	CHECK("new messages are recent", n == 2 && (MP_ELEM(v, 0)->flags & MP_FLAG_RECENT));
	CHECK("message_open", st->message_open(f, 1, MP_PART_ALL, &r, &err) == MP_OK);
	const char *text = slurp_reader(&r);
	CHECK("served with CRLF", strstr(text, "Subject: 1\r\n\r\n.dot\r\n") != NULL);
	CHECK("size counts CRLF octets", strlen(text) == MP_ELEM(v, 0)->size);
	st->message_close(&r);
	CHECK("header part", st->message_open(f, 2, MP_PART_HEADER, &r, &err) == MP_OK &&
	    strcmp(strstr(slurp_reader(&r), "Subject"), "Subject: 2\r\n\r\n") == 0);
	st->message_close(&r);
	CHECK("set flags", st->flags_set(f, 1, MP_FLAG_SEEN | MP_FLAG_FLAGGED, "$Work", &err) == MP_OK);
	st->folder_close(f);
	CHECK("lock taken", st->folder_open(mb, "INBOX", 0, &f, &err) == MP_OK &&
	    st->lock(f, &err) == MP_OK);
	struct mp_folder *f2;
	st->folder_open(mb, "INBOX", 0, &f2, &err);
	CHECK("second lock refused", st->lock(f2, &err) == MP_DECLINED);
	CHECK("flags and keywords persist", st->messages(f2, &v, &n, &err) == MP_OK &&
	    (MP_ELEM(v, 0)->flags & (MP_FLAG_SEEN | MP_FLAG_FLAGGED)) == (MP_FLAG_SEEN | MP_FLAG_FLAGGED) &&
	    strcmp(MP_ELEM(v, 0)->keywords, "$Work") == 0 && !(MP_ELEM(v, 0)->flags & MP_FLAG_RECENT));
	st->folder_close(f2);
	st->folder_info(f, &info, &err);
	uint32_t uidvalidity = info.uidvalidity;
	CHECK("create folder", st->folder_create(mb, "Archive/2026", &err) == MP_OK);
	CHECK("create again declined", st->folder_create(mb, "Archive/2026", &err) == MP_DECLINED);
	CHECK("dot in name refused", st->folder_create(mb, "a.b", &err) == MP_ERROR);
	uint32_t newuid = 0, uv = 0;
	CHECK("copy", st->copy(f, 2, "Archive/2026", 0, &newuid, &uv, &err) == MP_OK && newuid == 1);
	CHECK("expunge", st->expunge(f, 1, &err) == MP_OK);
	CHECK("one left", st->messages(f, &v, &n, &err) == MP_OK && n == 1 && MP_ELEM(v, 0)->uid == 2);
	deliver("bob@example.test", "Subject: 3\r\n\r\nthree\r\n", 0, &s);
	CHECK("new mail gets UID 3", st->messages(f, &v, &n, &err) == MP_OK && n == 2 && MP_ELEM(v, 1)->uid == 3);
	st->folder_info(f, &info, &err);
	CHECK("UIDVALIDITY stable", info.uidvalidity == uidvalidity && info.uidnext == 4);
	st->folder_close(f);
	CHECK("rename folder", st->folder_rename(mb, "Archive/2026", "Old", &err) == MP_OK);
	CHECK("delete folder", st->folder_delete(mb, "Old", &err) == MP_OK);
	CHECK("INBOX not deletable", st->folder_delete(mb, "INBOX", &err) == MP_ERROR);
	st->close(mb);
}

/* Message 1 of folder f, read chunk bytes at a time. */
static char *
read_in_chunks(struct mp_folder *f, enum mp_msg_part part, size_t chunk)
{
	struct mp_reader r = { .struct_size = sizeof(r) };
	const char *err;
	char *text;

	if (st->message_open(f, 1, part, &r, &err) != MP_OK)
		return NULL;
	text = slurp_chunks(&r, chunk);
	st->message_close(&r);
	return text;
}

/* A file dropped in by another program: LF, CRLF and no final newline
 * are all served as CRLF, whatever the size of the reads. */
static void
test_reader_line_ends(void)
{
	const char *file = "H: a\nK: b\r\n\nline 1\r\nline 2\nlast";
	const char *wire = "H: a\r\nK: b\r\n\r\nline 1\r\nline 2\r\nlast\r\n";
	struct mp_mailbox *mb;
	struct mp_folder *f;
	const char *err;
	char path[512];
	FILE *fp;
	int same = 1;

	snprintf(path, sizeof(path), "%s/example.test/dave", root);
	maildir_make_path(path);
	snprintf(path, sizeof(path), "%s/example.test/dave/cur/1.x.test:2,", root);
	fp = fopen(path, "w");
	fputs(file, fp);
	fclose(fp);
	CHECK("open dave", st->open(ctx, "dave@example.test", &mb, &err) == MP_OK &&
	    st->folder_open(mb, "INBOX", 1, &f, &err) == MP_OK);
	for (size_t chunk = 1; chunk <= 64; chunk++) {
		const char *got = read_in_chunks(f, MP_PART_ALL, chunk);
		same &= got && strcmp(got, wire) == 0;
	}
	CHECK("CRLF whatever the read size", same);
	same = 1;
	for (size_t chunk = 1; chunk <= 16; chunk++) {
		const char *got = read_in_chunks(f, MP_PART_HEADER, chunk);
		same &= got && strcmp(got, "H: a\r\nK: b\r\n\r\n") == 0;
	}
	CHECK("header part ends after the blank line", same);
	st->folder_close(f);
	st->close(mb);
}

/* RFC 3501 2.3.1.1: a folder deleted and made again (here within the
 * same second) gets a new UIDVALIDITY; an untouched one keeps its own. */
static void
test_uidvalidity_never_reused(void)
{
	struct mp_mailbox *mb;
	struct mp_folder *f;
	struct mp_folder_info info = { .struct_size = sizeof(info) };
	const char *err;
	uint32_t first = 0, again = 0, second = 0;

	st->open(ctx, "frank@example.test", &mb, &err);
	for (int round = 0; round < 2; round++) {
		st->folder_create(mb, "Temp", &err);
		CHECK("open Temp", st->folder_open(mb, "Temp", 0, &f, &err) == MP_OK);
		st->folder_info(f, &info, &err);
		*(round ? &second : &first) = info.uidvalidity;
		st->folder_close(f);
		if (round == 0 && st->folder_open(mb, "Temp", 0, &f, &err) == MP_OK) {
			st->folder_info(f, &info, &err);
			again = info.uidvalidity;
			st->folder_close(f);
		}
		st->folder_delete(mb, "Temp", &err);
	}
	CHECK("UIDVALIDITY kept while the folder lives", again == first);
	CHECK("a recreated folder gets a new UIDVALIDITY", second != first && second != 0);
	st->close(mb);
}

static void *
delivery_thread(void *arg)
{
	struct mp_status s;
	char text[64];

	for (int i = 0; i < 50; i++) {
		snprintf(text, sizeof(text), "Subject: t%ld-%d\r\n\r\nx\r\n", (long)arg, i);
		deliver("carol@example.test", text, 0, &s);
	}
	return NULL;
}

static void
test_concurrent_writers(void)
{
	pthread_t t[4];
	struct mp_mailbox *mb;
	struct mp_folder *f;
	const struct mp_msg_info *v;
	const char *err;
	size_t n = 0;
	int ordered = 1, distinct = 1;

	st->open(ctx, "carol@example.test", &mb, &err);
	st->folder_open(mb, "INBOX", 0, &f, &err);
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, delivery_thread, (void *)i);
	for (int k = 0; k < 20; k++)	/* a session syncing meanwhile */
		st->messages(f, &v, &n, &err);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK("all 200 messages seen", st->messages(f, &v, &n, &err) == MP_OK && n == 200);
	for (size_t i = 1; i < n; i++) {
		ordered &= MP_ELEM(v, i)->uid > MP_ELEM(v, i - 1)->uid;
		distinct &= MP_ELEM(v, i)->uid != MP_ELEM(v, i - 1)->uid;
	}
	CHECK("UIDs strictly increasing and unique", ordered && distinct);
	st->folder_close(f);
	st->close(mb);
}

/* The UID list's three versions, and lines that must be skipped: a UID
 * of 0, at or past UIDNEXT, signed or over 32 bits, a missing field, a
 * base name longer than any the store writes. */
static void
test_uidlist_parse(void)
{
	static const char text[] =
	    "M1 V7 N90\n"
	    "3 120 1700.M1P2.h a,b\n"
	    "0 10 zero.M1P2.h\n"
	    "90 10 at-uidnext.M1P2.h\n"
	    "-4 10 negative.M1P2.h\n"
	    "4294967297 10 wraps.M1P2.h\n"
	    "5 10\n"
	    "6 x letters.M1P2.h\n";
	static const char v3[] =
	    "M3 V8 N20\nK $Work\n"
	    "4 99 1700000000 1700.M4P2.h,S=99 $Work\n"
	    "5 99 -1 1701.M5P2.h\n";
	char *overlong = malloc(BASE_MAX + 40);
	struct md_list l = { 0 };
	FILE *fp;

	fp = fmemopen((void *)text, strlen(text), "r");
	CHECK("uidlist M1: version", fp && md_list_parse(fp, &l) == 1);
	CHECK("uidlist M1: header", l.uidvalidity == 7 && l.uidnext == 90);
	CHECK("uidlist M1: only the good line", l.n == 1 && l.e[0].uid == 3 &&
	    l.e[0].vsize == 120 && strcmp(l.e[0].base, "1700.M1P2.h") == 0);
	CHECK("uidlist M1: ',' joined keywords", strcmp(l.e[0].keywords, "a b") == 0);
	if (fp)
		fclose(fp);
	md_list_free(&l);
	fp = fmemopen((void *)v3, strlen(v3), "r");
	CHECK("uidlist M3: version", fp && md_list_parse(fp, &l) == 3);
	CHECK("uidlist M3: entries", l.n == 2 && l.e[0].mtime == 1700000000 &&
	    strcmp(l.e[0].keywords, "$Work") == 0 && l.e[1].mtime == -1);
	if (fp)
		fclose(fp);
	md_list_free(&l);
	if (overlong == NULL)
		return;
	memset(overlong, 'x', BASE_MAX + 39);
	memcpy(overlong, "M2 V1 N9\n3 10 1 ", 16);
	overlong[BASE_MAX + 39] = '\0';
	fp = fmemopen(overlong, strlen(overlong), "r");
	CHECK("uidlist: an over-long base name is skipped", fp && md_list_parse(fp, &l) == 2 &&
	    l.n == 0);
	if (fp)
		fclose(fp);
	md_list_free(&l);
	free(overlong);
}

/* M4: entries appended past the header's N count when whole and each
 * past the one before; a torn last line, or anything older after an
 * appended entry, does not, and a torn end makes the list not
 * appendable. M3 lists never had appended entries. */
static void
test_uidlist_appended(void)
{
	static const char torn[] =
	    "M4 V8 N3\n"
	    "1 10 1700000000 one.M1P2.h\n"
	    "3 10 1700000001 three.M1P2.h $Work\n"
	    "2 10 1700000002 stale-older.M1P2.h\n"
	    "4 10 1700000003 four.M1P2.h\n"
	    "4 10 1700000003 again.M1P2.h\n"
	    "6 10 1700000004 torn.M1";
	static const char clean[] = "M4 V8 N3\n1 10 1700000000 one.M1P2.h\n3 10 1 three.M1P2.h\n";
	static const char v3[] = "M3 V8 N3\n1 10 1700000000 one.M1P2.h\n3 10 1 three.M1P2.h\n";
	struct md_list l = { 0 };
	FILE *fp;

	fp = fmemopen((void *)torn, strlen(torn), "r");
	CHECK("uidlist M4: version", fp && md_list_parse(fp, &l) == 4);
	CHECK("uidlist M4: appended entries count, older and torn ones do not",
	    l.n == 3 && l.e[0].uid == 1 && l.e[1].uid == 3 && l.e[2].uid == 4 &&
	    strcmp(l.e[2].base, "four.M1P2.h") == 0 && strcmp(l.e[1].keywords, "$Work") == 0);
	CHECK("uidlist M4: UIDNEXT past the last appended entry", l.uidnext == 5);
	CHECK("uidlist M4: a torn end is not appended to", !l.appendable && !l.dirty);
	if (fp)
		fclose(fp);
	md_list_free(&l);
	fp = fmemopen((void *)clean, strlen(clean), "r");
	CHECK("uidlist M4: a whole list is appendable", fp && md_list_parse(fp, &l) == 4 &&
	    l.appendable && l.n == 2 && l.uidnext == 4);
	if (fp)
		fclose(fp);
	md_list_free(&l);
	fp = fmemopen((void *)v3, strlen(v3), "r");
	CHECK("uidlist M3: nothing past N counts, not appendable", fp &&
	    md_list_parse(fp, &l) == 3 && l.n == 1 && l.uidnext == 3 && !l.appendable);
	if (fp)
		fclose(fp);
	md_list_free(&l);
}

static ino_t
inode_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

static int
append_text(struct mp_mailbox *mb, const char *text, uint32_t *uid)
{
	struct mock_text t = { text, 0, 0 };
	struct mp_reader r = { sizeof(r), mock_text_read, (off_t)strlen(text), &t };
	uint32_t uv;
	const char *err;

	return st->append(mb, "INBOX", &r, 0, 0, uid, &uv, &err);
}

/* The store's side of the cheaper writes: APPEND appends its entry to
 * the list (same file, not a rewrite) unless the list ends torn; an
 * EXPUNGE leaves the list alone until vanished entries are a quarter of
 * it; subscribing a subscribed folder leaves the subscriptions alone. */
static void
test_cheap_writes(void)
{
	char list[600], subs[600], torn[] = "7 1 1 torn-entry";
	struct mp_mailbox *mb;
	struct mp_folder *f;
	const struct mp_msg_info *v;
	const char *err = NULL;
	uint32_t uid1 = 0, uid2 = 0, uid3 = 0;
	size_t n;
	ino_t ino;
	FILE *fp;

	snprintf(list, sizeof(list), "%s/example.test/dora/merpati-uidlist", root);
	snprintf(subs, sizeof(subs), "%s/example.test/dora/merpati-subscriptions", root);
	CHECK("cheap: open mailbox", st->open(ctx, "dora@example.test", &mb, &err) == MP_OK);
	CHECK("cheap: first append", append_text(mb, "Subject: a\r\n\r\na\r\n", &uid1) == MP_OK);
	ino = inode_of(list);
	CHECK("cheap: second append", append_text(mb, "Subject: b\r\n\r\nb\r\n", &uid2) == MP_OK);
	CHECK("cheap: the entry is appended, the list not rewritten",
	    ino != 0 && inode_of(list) == ino && uid1 == 1 && uid2 == 2);
	if ((fp = fopen(list, "a")) != NULL) {	/* a crash in the middle of an append */
		fputs(torn, fp);
		fclose(fp);
	}
	CHECK("cheap: append after a torn line", append_text(mb, "Subject: c\r\n\r\nc\r\n", &uid3) == MP_OK);
	CHECK("cheap: a torn list is rewritten, its torn line gone", inode_of(list) != ino &&
	    uid3 == 3);
	CHECK("cheap: open INBOX", st->folder_open(mb, "INBOX", 0, &f, &err) == MP_OK);
	CHECK("cheap: three messages, UIDs 1-3", st->messages(f, &v, &n, &err) == MP_OK && n == 3 &&
	    MP_ELEM(v, 0)->uid == 1 && MP_ELEM(v, 2)->uid == 3);
	ino = inode_of(list);
	CHECK("cheap: expunge", st->expunge(f, 2, &err) == MP_OK);
	CHECK("cheap: the expunged message leaves the view",
	    st->messages(f, &v, &n, &err) == MP_OK && n == 2 && MP_ELEM(v, 1)->uid == 3);
	CHECK("cheap: ... but the list is not rewritten for it", inode_of(list) == ino);
	st->folder_close(f);
	CHECK("cheap: reopened, still gone", st->folder_open(mb, "INBOX", 1, &f, &err) == MP_OK &&
	    st->messages(f, &v, &n, &err) == MP_OK && n == 2 && MP_ELEM(v, 0)->uid == 1 &&
	    MP_ELEM(v, 1)->uid == 3);
	st->folder_close(f);
	CHECK("cheap: subscribe", st->folder_subscribe(mb, "INBOX", 1, &err) == MP_OK);
	ino = inode_of(subs);
	CHECK("cheap: subscribe again leaves the list alone",
	    st->folder_subscribe(mb, "INBOX", 1, &err) == MP_OK && ino != 0 && inode_of(subs) == ino);
	CHECK("cheap: unsubscribe still writes", st->folder_subscribe(mb, "INBOX", 0, &err) == MP_OK &&
	    inode_of(subs) != ino);
	st->close(mb);
}

/* Set every stamp of the folder (new/, cur/, the list and its lock) to t. */
static void
set_stamps(const char *dir, time_t t)
{
	static const char *const names[] = { "new", "cur", "merpati-uidlist",
	    "merpati-uidlist.lock" };
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };
	char path[700];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		utimensat(AT_FDCWD, path, ts, 0);
	}
}

/* A change by another program in the clock tick a sync read its stamps
 * in leaves every stamp as that sync saw it; two seconds later they
 * are quiet and still equal. The view must not stand on them then. */
static void
test_same_tick_change(void)
{
	char dir[600], from[900], to[900];
	struct mp_mailbox *mb;
	struct mp_folder *f;
	const struct mp_msg_info *v;
	const char *err = NULL;
	struct mp_status s;
	struct dirent *d = NULL;
	time_t then;
	size_t n;
	DIR *dp;

	deliver("gina@example.test", "Subject: g\r\n\r\ng\r\n", 0, &s);
	snprintf(dir, sizeof(dir), "%s/example.test/gina", root);
	CHECK("same tick: open", st->open(ctx, "gina@example.test", &mb, &err) == MP_OK &&
	    st->folder_open(mb, "INBOX", 0, &f, &err) == MP_OK &&
	    st->messages(f, &v, &n, &err) == MP_OK && n == 1 && MP_ELEM(v, 0)->flags == MP_FLAG_RECENT);
	then = time(NULL) - 1;
	set_stamps(dir, then);	/* young: this sync's stamps are not quiet */
	CHECK("same tick: sync", st->messages(f, &v, &n, &err) == MP_OK && n == 1);
	snprintf(from, sizeof(from), "%s/cur", dir);
	dp = opendir(from);
	while (dp && (d = readdir(dp)) != NULL && d->d_name[0] == '.')
		;
	if (d != NULL) {	/* another program marks it \Seen, in the same tick */
		snprintf(from, sizeof(from), "%s/cur/%s", dir, d->d_name);
		snprintf(to, sizeof(to), "%s/cur/%.*sS", dir, (int)strcspn(d->d_name, ":") + 3,
		    d->d_name);
		CHECK("same tick: renamed", rename(from, to) == 0);
	}
	if (dp)
		closedir(dp);
	set_stamps(dir, then);
	usleep(1500 * 1000);	/* every stamp quiet now, and equal to the sync's */
	CHECK("same tick: the change is seen", st->messages(f, &v, &n, &err) == MP_OK && n == 1 &&
	    (MP_ELEM(v, 0)->flags & MP_FLAG_SEEN));
	st->folder_close(f);
	st->close(mb);
}

static const char *
mb_dir_of(const char *user)
{
	static char dir[600];

	snprintf(dir, sizeof(dir), "%s/example.test/%s", root, user);
	return dir;
}

struct sync_arg {
	struct mp_folder *f;
	size_t n;
	int rc;
};

static void *
sync_thread(void *p)
{
	struct sync_arg *a = p;
	const struct mp_msg_info *v;
	const char *err;

	a->rc = st->messages(a->f, &v, &a->n, &err);
	return NULL;
}

/* A sync that only reads takes the list lock shared: it goes ahead
 * while another reader holds it (before, every sync queued behind
 * every other). A thread syncs while this one holds the lock shared;
 * it must finish within 5 s (it would wait forever for an exclusive
 * lock), and then the lock is let go either way. */
static void
test_shared_sync(void)
{
	char lockpath[700];
	struct mp_mailbox *mb;
	struct mp_folder *f;
	const struct mp_msg_info *v;
	const char *err = NULL;
	struct mp_status s;
	struct sync_arg a = { 0 };
	struct timespec until;
	pthread_t t;
	size_t n;
	int fd, joined;

	deliver("hank@example.test", "Subject: h\r\n\r\nh\r\n", 0, &s);
	CHECK("shared: open", st->open(ctx, "hank@example.test", &mb, &err) == MP_OK &&
	    st->folder_open(mb, "INBOX", 0, &f, &err) == MP_OK &&
	    st->messages(f, &v, &n, &err) == MP_OK && n == 1);
	deliver("hank@example.test", "Subject: i\r\n\r\ni\r\n", 0, &s);
	CHECK("shared: the second message is listed", st->messages(f, &v, &n, &err) == MP_OK &&
	    n == 2);
	st->folder_close(f);
	CHECK("shared: read-only handle", st->folder_open(mb, "INBOX", 1, &f, &err) == MP_OK);
	snprintf(lockpath, sizeof(lockpath), "%s/example.test/hank/merpati-uidlist.lock", root);
	fd = open(lockpath, O_RDWR | O_CLOEXEC);
	CHECK("shared: another reader holds the lock", fd >= 0 && flock(fd, LOCK_SH) == 0);
	set_stamps(mb_dir_of("hank"), time(NULL));	/* a change: the sync must look */
	a.f = f;
	joined = pthread_create(&t, NULL, sync_thread, &a) == 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	int done = joined && pthread_timedjoin_np(t, NULL, &until) == 0;
	CHECK("shared: the sync did not wait for the other reader", done && a.rc == MP_OK &&
	    a.n == 2);
	if (fd >= 0)
		close(fd);	/* lets a waiting sync go */
	if (joined && !done)
		pthread_join(t, NULL);
	st->folder_close(f);
	st->close(mb);
}

int
main(void)
{
	const char *err = NULL;
	const char *kv[] = { "root", root, NULL };
	struct mp_conf conf = { kv, NULL };
	const char *bad_kv[] = { "bogus", "1", NULL };
	struct mp_conf bad = { bad_kv, NULL };
	void *tmp;
	char cmd[600];

	if (mkdtemp(root) == NULL)
		return 1;
	CHECK("unknown option refused", merpati_module.init(&mock_host, &bad, &tmp, &err) == MP_ERROR &&
	    strstr(err, "bogus") != NULL);
	CHECK("init", merpati_module.init(&mock_host, &conf, &ctx, &err) == MP_OK);
	CHECK("kinds deliver + store", merpati_module.kinds == (MP_KIND_DELIVER | MP_KIND_STORE));
	st = merpati_module.store;
	test_delivery();
	test_path_safety();
	test_unwritable_root();
	test_sync_modes();
	test_store();
	test_reader_line_ends();
	test_uidvalidity_never_reused();
	test_concurrent_writers();
	test_uidlist_parse();
	test_uidlist_appended();
	test_cheap_writes();
	test_same_tick_change();
	test_shared_sync();
	merpati_module.fini(ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		return 1;
	TEST_EXIT();
}
