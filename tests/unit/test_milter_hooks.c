/*
 * tests/unit/test_milter_hooks.c - the milter module's hooks (milter.c)
 * against a scripted fake milter on a unix socket, with a mock host
 * whose txn_* calls record what the module asked for. Covers the
 * command sequence, verdicts and their SMTP replies, end-of-message
 * changes, ABORT between messages, and default_action for a milter
 * that is down or silent. Runs without pymilter or any milter package
 * (tests/e2e/test_milter.py does the real ones).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "test.h"
#include "mock_host.h"
#include "modules/milter/milter.h"

extern const struct mp_module merpati_module;

/* ---- the fake milter ---------------------------------------------------- */

struct fake {
	int listen_fd;
	char path[108];
	char script[16][512];	/* per command octet: the replies, framed below */
	size_t script_len[16];
	char script_cmd[16];
	size_t nscript;
	char seen[256];		/* command octets received, macros left out */
	int silent_at;		/* command that gets no answer */
	pthread_t thread;
};

static int
read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
send_raw(int fd, const char *data, size_t len)
{
	unsigned char hdr[4] = { len >> 24, len >> 16, len >> 8, len };

	if (write(fd, hdr, 4) != 4 || write(fd, data, len) != (ssize_t)len)
		return;
}

/* Replies to cmd: its script entry (several packets, each "len:bytes"),
 * else continue. */
static void
answer(struct fake *f, int fd, char cmd)
{
	for (size_t i = 0; i < f->nscript; i++) {
		if (f->script_cmd[i] != cmd)
			continue;
		const char *p = f->script[i];
		size_t left = f->script_len[i];
		while (left > 0) {
			size_t n = (unsigned char)p[0];
			send_raw(fd, p + 1, n);
			p += n + 1;
			left -= n + 1;
		}
		return;
	}
	send_raw(fd, "c", 1);
}

static void *
fake_run(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	unsigned char hdr[4];
	char buf[70000];

	while (fd >= 0 && read_full(fd, hdr, 4) == 0) {
		size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | hdr[2] << 8 | hdr[3];
		if (len == 0 || len > sizeof(buf) || read_full(fd, buf, len) < 0)
			break;
		char cmd = buf[0];
		if (cmd == SMFIC_OPTNEG) {
			static const char o[] = "O\0\0\0\6\0\0\1\377\0\0\0\0";
			send_raw(fd, o, sizeof(o) - 1);
			continue;
		}
		if (cmd == SMFIC_MACRO)
			continue;
		size_t used = strlen(f->seen);
		if (used + 1 < sizeof(f->seen))
			f->seen[used] = cmd;
		if (cmd == SMFIC_QUIT)
			break;
		if (cmd == SMFIC_ABORT || cmd == f->silent_at)
			continue;
		answer(f, fd, cmd);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Script: for command cmd, packets given as (length, bytes) pairs. */
static void
script(struct fake *f, char cmd, const char *packed, size_t len)
{
	f->script_cmd[f->nscript] = cmd;
	memcpy(f->script[f->nscript], packed, len);
	f->script_len[f->nscript] = len;
	f->nscript++;
}

static void
fake_start(struct fake *f, const char *dir)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s/milter.sock", dir);
	strcpy(un.sun_path, f->path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	/* a module that never connects must not hang the test in accept() */
	struct timeval limit = { .tv_sec = 10 };
	if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&un, sizeof(un)) < 0 ||
	    listen(f->listen_fd, 4) < 0 ||
	    setsockopt(f->listen_fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit)) < 0)
		abort();
}

static void
fake_go(struct fake *f)
{
	pthread_create(&f->thread, NULL, fake_run, f);
}

static void
fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	unlink(f->path);
}

/* ---- the mock txn --------------------------------------------------------- */

struct mp_txn {
	void *slot;
	struct mp_conn_info conn;
	struct mp_txn_info info;
	char calls[2048];	/* "name(args);" per txn_* call */
	int discarded, held;
};

static void
note(struct mp_txn *t, const char *fmt, const char *a, const char *b)
{
	size_t used = strlen(t->calls);

	snprintf(t->calls + used, sizeof(t->calls) - used, fmt, a, b ? b : "");
}

static const struct mp_txn_info *t_info(struct mp_txn *t) { return &t->info; }
static void **t_slot(struct mp_txn *t) { return &t->slot; }

static int
t_insert(struct mp_txn *t, size_t index, const char *name, const char *value)
{
	note(t, index == SIZE_MAX ? "add %s=%s;" : "insert %s=%s;", name, value);
	return MP_OK;
}

static int
t_change(struct mp_txn *t, const char *name, unsigned nth, const char *value)
{
	(void)nth;
	note(t, "change %s=%s;", name, value ? value : "(deleted)");
	return MP_OK;
}

static int t_sender(struct mp_txn *t, const char *s) { note(t, "sender %s%s;", s, NULL); return MP_OK; }
static int t_add(struct mp_txn *t, const char *r) { note(t, "rcpt+ %s%s;", r, NULL); return MP_OK; }
static int t_del(struct mp_txn *t, const char *r) { note(t, "rcpt- %s%s;", r, NULL); return MP_OK; }

static int
t_body(struct mp_txn *t, struct mp_reader *body)
{
	char buf[64];
	ssize_t n = body->read(body, buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	note(t, "body %s%s;", buf, NULL);
	return MP_OK;
}

static int t_hold(struct mp_txn *t, const char *why) { t->held = 1; note(t, "hold %s%s;", why, NULL); return MP_OK; }
static int t_discard(struct mp_txn *t) { t->discarded = 1; return MP_OK; }

static struct mp_host host;

static void
txn_init(struct mp_txn *t)
{
	static const char *const rcpts[] = { "ann@example.test" };

	memset(t, 0, sizeof(*t));
	t->conn = (struct mp_conn_info){ .struct_size = sizeof(t->conn), .peer = "192.0.2.7",
	    .tls_desc = "", .listener = "smtp" };
	t->info = (struct mp_txn_info){ .struct_size = sizeof(t->info), .conn = &t->conn,
	    .helo = "client.example", .sender = "joe@example.test", .rcpts = rcpts, .nrcpt = 1,
	    .queue_id = "Q1" };
}

/* ---- driving the hooks ------------------------------------------------------ */

static const char MESSAGE[] = "From: joe@example.test\r\nSubject: hi\r\n\r\nbody line\r\n";

struct run {
	int connect, helo, mail, rcpt, eoh, eod;
	struct mp_status st;
};

/* One whole SMTP transaction; stops at the first refusal. */
static void
transaction(void *ctx, struct mp_txn *t, struct run *r)
{
	const struct mp_filter_ops *ops = merpati_module.filter;
	struct mock_text hdr = { "From: joe@example.test\r\nSubject: hi\r\n\r\n", 0, 0 };
	struct mock_text msg = { MESSAGE, 0, 7 };
	struct mp_reader hr = { sizeof(hr), mock_text_read, -1, &hdr };
	struct mp_reader mr = { sizeof(mr), mock_text_read, -1, &msg };
	struct mp_envelope env = { .struct_size = sizeof(env), .queue_id = "Q1" };

	memset(r, 0, sizeof(*r));
	r->st.struct_size = sizeof(r->st);
	if ((r->connect = ops->connect(ctx, t, &r->st)) != MP_OK ||
	    (r->helo = ops->helo(ctx, t, "client.example", &r->st)) != MP_OK ||
	    (r->mail = ops->mail_from(ctx, t, "joe@example.test", &r->st)) != MP_OK ||
	    (r->rcpt = ops->rcpt_to(ctx, t, "ann@example.test", &r->st)) != MP_OK ||
	    (r->eoh = ops->end_of_headers(ctx, t, &hr, &r->st)) != MP_OK)
		return;
	r->eod = ops->end_of_data(ctx, t, &env, &mr, NULL, &r->st);
}

static void
finish(void *ctx, struct mp_txn *t)
{
	merpati_module.filter->txn_end(ctx, t);
	merpati_module.filter->session_end(ctx, t);
}

static struct milter_conf conf;
static struct milter_module module;

static void *
module_for(const char *path, enum milter_default d, int command_ms)
{
	const char *err;

	memset(&conf, 0, sizeof(conf));
	strcpy(conf.name, "fake");
	snprintf(conf.socket, sizeof(conf.socket), "unix:%s", path);
	if (milter_addr_parse(conf.socket, &conf.addr, &err) < 0)
		abort();
	conf.connect_ms = 1000;
	conf.command_ms = command_ms;
	conf.content_ms = command_ms;
	conf.default_action = d;
	module = (struct milter_module){ .host = &host, .n = 1, .milters = &conf };
	return &module;
}

/* A scripted reply: its octets (NULs written out in the literal). */
struct pk {
	const char *b;
	size_t len;
};
#define PK(s) { s, sizeof(s) - 1 }

static void
script_pkts(struct fake *f, char cmd, const struct pk *p, size_t n)
{
	char packed[64 * 16];
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		packed[k++] = (char)p[i].len;
		memcpy(packed + k, p[i].b, p[i].len);
		k += p[i].len;
	}
	if (k > sizeof(f->script[0]))
		abort();
	script(f, cmd, packed, k);
}

static void
test_changes(const char *dir)
{
	struct fake f;
	struct mp_txn t;
	struct run r;
	static const struct pk eom[] = {
		PK("h" "X-Added\0yes\0"), PK("i\0\0\0\0" "X-Top\0t\0"),
		PK("m\0\0\0\1" "Subject\0\0"), PK("e<new@example.test>\0"),
		PK("+<carol@example.test>\0"), PK("-<ann@example.test>\0"),
		PK("q" "held\0"), PK("b" "new body\r\n"), PK("c"),
	};

	fake_start(&f, dir);
	script_pkts(&f, SMFIC_BODYEOB, eom, sizeof(eom) / sizeof(eom[0]));
	fake_go(&f);
	void *ctx = module_for(f.path, MILTER_DEFAULT_TEMPFAIL, 2000);
	txn_init(&t);
	transaction(ctx, &t, &r);
	CHECK("milter hooks: a whole transaction passes", r.eod == MP_OK);
	CHECK_STR("milter hooks: changes applied in order", t.calls,
	    "add X-Added=yes;insert X-Top=t;change Subject=(deleted);"
	    "sender new@example.test;rcpt+ carol@example.test;rcpt- ann@example.test;"
	    "hold held;body new body\r\n;");
	finish(ctx, &t);
	fake_stop(&f);
	CHECK_STR("milter hooks: commands in order, no ABORT after end of message", f.seen,
	    "CHMRTLLNBEQ");
}

static void
test_refusals(const char *dir)
{
	static const struct {
		char at;
		const char *pkt;
		size_t len;
		int rc, reply;
		const char *text;
	} cases[] = {
		{ SMFIC_RCPT, "r", 1, MP_PERMFAIL, 550, "Command rejected" },
		{ SMFIC_MAIL, "t", 1, MP_TEMPFAIL, 451, "Service unavailable - try again later" },
		{ SMFIC_CONNECT, "r", 1, MP_PERMFAIL, 554, "Access denied" },
		{ SMFIC_EOH, "y553 5.1.8 bad sender", 22, MP_PERMFAIL, 553, "bad sender" },
		{ SMFIC_BODY, "t", 1, MP_TEMPFAIL, 451, "Service unavailable - try again later" },
		{ SMFIC_BODYEOB, "y452 4.2.2 full", 16, MP_TEMPFAIL, 452, "full" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f;
		struct mp_txn t;
		struct run r;
		char packed[40], name[96];
		fake_start(&f, dir);
		packed[0] = (char)cases[i].len;
		memcpy(packed + 1, cases[i].pkt, cases[i].len);
		script(&f, cases[i].at, packed, cases[i].len + 1);
		fake_go(&f);
		void *ctx = module_for(f.path, MILTER_DEFAULT_ACCEPT, 2000);
		txn_init(&t);
		transaction(ctx, &t, &r);
		int rc = r.connect ? r.connect : r.helo ? r.helo : r.mail ? r.mail : r.rcpt ? r.rcpt :
		    r.eoh ? r.eoh : r.eod;
		snprintf(name, sizeof(name), "milter hooks: '%c' refused at '%c' gives %d %s",
		    cases[i].pkt[0], cases[i].at, cases[i].reply, cases[i].text);
		CHECK(name, rc == cases[i].rc && r.st.reply == cases[i].reply &&
		    strcmp(r.st.text, cases[i].text) == 0);
		finish(ctx, &t);
		fake_stop(&f);
		snprintf(name, sizeof(name), "milter hooks: ABORT after a refusal at '%c'",
		    cases[i].at);
		/* (after end of message the milter is reset without one) */
		if (cases[i].at != SMFIC_CONNECT && cases[i].at != SMFIC_BODYEOB)
			CHECK(name, strchr(f.seen, SMFIC_ABORT) != NULL);
	}
}

static void
test_discard_and_accept(const char *dir)
{
	struct fake f;
	struct mp_txn t;
	struct run r;

	fake_start(&f, dir);
	script(&f, SMFIC_RCPT, "\1d", 2);
	fake_go(&f);
	void *ctx = module_for(f.path, MILTER_DEFAULT_TEMPFAIL, 2000);
	txn_init(&t);
	transaction(ctx, &t, &r);
	CHECK("milter hooks: discard at RCPT accepts, then drops the message",
	    r.eod == MP_OK && t.discarded && strchr(f.seen, SMFIC_BODYEOB) == NULL);
	finish(ctx, &t);
	fake_stop(&f);

	fake_start(&f, dir);
	script(&f, SMFIC_HELO, "\1a", 2);
	fake_go(&f);
	ctx = module_for(f.path, MILTER_DEFAULT_TEMPFAIL, 2000);
	txn_init(&t);
	transaction(ctx, &t, &r);
	finish(ctx, &t);
	fake_stop(&f);
	CHECK_STR("milter hooks: accept at HELO ends the milter's part in the session",
	    f.seen, "CHQ");
}

static void
test_milter_down(const char *dir)
{
	struct mp_txn t;
	struct run r;
	char gone[200];
	void *ctx;

	snprintf(gone, sizeof(gone), "%s/nobody.sock", dir);
	ctx = module_for(gone, MILTER_DEFAULT_TEMPFAIL, 500);
	txn_init(&t);
	transaction(ctx, &t, &r);
	CHECK("milter hooks: down, tempfail: connect and HELO pass",
	    r.connect == MP_OK && r.helo == MP_OK);
	CHECK("milter hooks: down, tempfail: MAIL gets 451 4.7.1", r.mail == MP_TEMPFAIL &&
	    r.st.reply == 451 && strcmp(r.st.enhanced, "4.7.1") == 0);
	finish(ctx, &t);

	ctx = module_for(gone, MILTER_DEFAULT_REJECT, 500);
	txn_init(&t);
	transaction(ctx, &t, &r);
	CHECK("milter hooks: down, reject: MAIL gets 550 5.7.1", r.mail == MP_PERMFAIL &&
	    r.st.reply == 550 && strcmp(r.st.enhanced, "5.7.1") == 0);
	finish(ctx, &t);

	ctx = module_for(gone, MILTER_DEFAULT_ACCEPT, 500);
	txn_init(&t);
	transaction(ctx, &t, &r);
	CHECK("milter hooks: down, accept: the message passes", r.eod == MP_OK);
	finish(ctx, &t);

	struct fake f;
	fake_start(&f, dir);
	f.silent_at = SMFIC_RCPT;
	fake_go(&f);
	ctx = module_for(f.path, MILTER_DEFAULT_TEMPFAIL, 300);
	txn_init(&t);
	transaction(ctx, &t, &r);
	CHECK("milter hooks: silent at RCPT: 451 after the timeout", r.rcpt == MP_TEMPFAIL &&
	    r.st.reply == 451 && strstr(mock_log_text(), "timed out") != NULL);
	finish(ctx, &t);
	fake_stop(&f);
}

int
main(void)
{
	char dir[] = "/tmp/test-milter-XXXXXX";

	if (mkdtemp(dir) == NULL)
		return 1;
	host = mock_host;
	host.txn_info = t_info;
	host.txn_slot = t_slot;
	host.txn_header_insert = t_insert;
	host.txn_header_change = t_change;
	host.txn_sender_set = t_sender;
	host.txn_rcpt_add = t_add;
	host.txn_rcpt_delete = t_del;
	host.txn_body_replace = t_body;
	host.txn_hold = t_hold;
	host.txn_discard = t_discard;
	test_changes(dir);
	test_refusals(dir);
	test_discard_and_accept(dir);
	test_milter_down(dir);
	rmdir(dir);
	TEST_EXIT();
}
