/*
 * tests/unit/test_outbound.c - remote delivery of one queued message
 * (core/outbound.c with the real SMTP client): recipients grouped by next
 * hop (one MX lookup per domain, a relay host bypasses MX), servers tried
 * in MX order (one without an address is skipped), one transaction with
 * a result per recipient (250 / 450 / 550), DSN parameters passed on,
 * and every resolver failure mapped onto the recipients' records: null
 * MX is permanent, a module error without a status becomes a 451 with
 * the wrapper's default, no MX at all and no resolve module are 451s.
 * The "remote" server is a scripted SMTP server on loopback, in a
 * thread; the resolve module is a fake one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loader.h"
#include "outbound.h"
#include "queue.h"
#include "queue_fixture.h"
#include "rcpt.h"
#include "runner.h"
#include "settings.h"
#include "smtp_client.h"
#include "test.h"

static char state[] = "/tmp/merpati-test-outbound-XXXXXX";

/* ---- the scripted server ------------------------------------------------ */

static int listen_fd;
static volatile int stopping;
static char rcpt_lines[2048];	/* every RCPT command the server saw */
static int transactions;

static const char *
rcpt_reply(const char *line)
{
	if (strncasecmp(line, "RCPT TO:<temp", 13) == 0)
		return "450 4.2.1 mailbox busy\r\n";
	if (strncasecmp(line, "RCPT TO:<bad", 12) == 0)
		return "550 5.1.1 no such user\r\n";
	return "250 2.1.5 ok\r\n";
}

/* One client connection, command by command, until QUIT or EOF. */
static void
serve(int fd)
{
	FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
	char line[1024];

	fputs("220 mx.ok.test ESMTP fake\r\n", out);
	fflush(out);
	while (fgets(line, sizeof(line), in)) {
		const char *reply = "250 2.0.0 ok\r\n";
		if (strncasecmp(line, "EHLO", 4) == 0)
			reply = "250-mx.ok.test\r\n250 DSN\r\n";
		else if (strncasecmp(line, "RCPT", 4) == 0) {
			strncat(rcpt_lines, line, sizeof(rcpt_lines) - strlen(rcpt_lines) - 1);
			reply = rcpt_reply(line);
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			fputs("354 go on\r\n", out);
			fflush(out);
			while (fgets(line, sizeof(line), in) && strcmp(line, ".\r\n") != 0)
				;
			transactions++;
			reply = "250 2.0.0 queued as FAKE\r\n";
		} else if (strncasecmp(line, "QUIT", 4) == 0)
			reply = "221 2.0.0 bye\r\n";
		fputs(reply, out);
		fflush(out);
		if (strncasecmp(line, "QUIT", 4) == 0)
			break;
	}
	fclose(in);
	fclose(out);
}

static void *
server(void *arg)
{
	(void)arg;
	while (!stopping) {
		struct pollfd p = { .fd = listen_fd, .events = POLLIN };
		if (poll(&p, 1, 100) == 1) {
			int fd = accept(listen_fd, NULL, NULL);
			if (fd >= 0)
				serve(fd);
		}
	}
	return NULL;
}

static int
start_server(pthread_t *t)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(listen_fd, 4) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	pthread_create(t, NULL, server, NULL);
	return ntohs(a.sin_port);
}

/* ---- the fake resolve module ---------------------------------------- */

static int mx_calls_ok, mx_calls_elsewhere, addr_calls_nohost;
static char context_seen[64];

static int
fake_mx(void *ctx, const char *domain, struct mp_mx *out, size_t max,
    size_t *n_r, struct mp_status *st)
{
	(void)ctx;
	(void)max;
	snprintf(context_seen, sizeof(context_seen), "%s",
	    mp_log_module() ? mp_log_module() : "");
	*n_r = 0;
	if (strcmp(domain, "ok.test") == 0) {
		mx_calls_ok++;
		snprintf(out[0].host, sizeof(out[0].host), "nohost.ok.test");
		snprintf(out[1].host, sizeof(out[1].host), "mx.ok.test");
		*n_r = 2;
		return MP_OK;
	}
	if (strcmp(domain, "nullmx.test") == 0) {
		*st = (struct mp_status){ .struct_size = sizeof(*st), .reply = 556, .enhanced = "5.1.10",
		    .text = "nullmx.test accepts no mail (null MX)" };
		return MP_PERMFAIL;
	}
	if (strcmp(domain, "broken.test") == 0)
		return MP_ERROR;	/* and no status */
	if (strcmp(domain, "elsewhere.test") == 0)
		mx_calls_elsewhere++;
	return MP_OK;			/* no MX at all */
}

static int
fake_addresses(void *ctx, const char *host, struct sockaddr_storage *out,
    size_t max, size_t *n_r, struct mp_status *st)
{
	struct sockaddr_in *a = (struct sockaddr_in *)out;

	(void)ctx;
	(void)max;
	if (strcmp(host, "mx.ok.test") != 0) {
		addr_calls_nohost++;
		*st = (struct mp_status){ .struct_size = sizeof(*st), .reply = 451, .enhanced = "4.4.3",
		    .text = "no address" };
		return MP_TEMPFAIL;
	}
	memset(out, 0, sizeof(*out));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*n_r = 1;
	return MP_OK;
}

static const struct mp_resolve_ops fake_ops = {
	.struct_size = sizeof(fake_ops), .mx = fake_mx, .addresses = fake_addresses,
};
static const struct mp_module fake_mod = {
	.abi_version = MP_ABI_VERSION, .struct_size = sizeof(fake_mod),
	.name = "fake_dns", .kinds = MP_KIND_RESOLVE, .resolve = &fake_ops,
};
static struct mp_loaded fake_loaded = { .name = "fake_dns", .mod = &fake_mod };

/* ---- the message ------------------------------------------------------- */

enum { A, TEMP, BAD, NULLMX, BROKEN, EMPTY, RELAYED, N };

static void
queue_message(struct mp_qmsg *m, int port)
{
	static char *rcpts[N] = { (char *)"a@ok.test", (char *)"temp@ok.test",
	    (char *)"bad@ok.test", (char *)"x@nullmx.test", (char *)"y@broken.test",
	    (char *)"z@empty.test", (char *)"r@elsewhere.test" };
	static char *notify[N] = { (char *)"FAILURE,DELAY" };
	static char *orcpt[N] = { (char *)"rfc822;A@ok.test" };
	static char *relay[N], relay_host[64];
	struct mp_qmsg env = { 0 };

	snprintf(relay_host, sizeof(relay_host), "127.0.0.1:%d", port);
	relay[RELAYED] = relay_host;
	env.sender = (char *)"s@example.test";
	env.rcpts = rcpts;
	env.notify = notify;
	env.orcpt = orcpt;
	env.relay = relay;
	env.nrcpt = N;
	env.helo = env.client = env.auth_user = (char *)"";
	fixture_queue(&env, "Subject: t\r\n\r\n.leading dot\r\nbody\r\n", m);
}

static void
deliver_all(struct mp_qmsg *m, struct mp_rcpt *r)
{
	struct mp_rcpt *p[N];

	mp_runner_classify(m, r);
	for (int i = 0; i < N; i++)
		p[i] = &r[i];
	mp_outbound_deliver(m, p, N);
}

static void
test_delivery(int port)
{
	struct mp_qmsg m;
	struct mp_rcpt r[N];

	mp_core.resolve = &fake_loaded;
	queue_message(&m, port);
	deliver_all(&m, r);
	CHECK("250 to RCPT: delivered", r[A].rc == MP_OK);
	CHECK("450 to RCPT: deferred with the server's reply", r[TEMP].rc == MP_TEMPFAIL &&
	    r[TEMP].status.reply == 450 && strcmp(r[TEMP].status.enhanced, "4.2.1") == 0);
	CHECK("550 to RCPT: failed with the server's reply", r[BAD].rc == MP_PERMFAIL &&
	    strstr(r[BAD].status.text, "no such user") != NULL);
	CHECK("one MX lookup for three recipients of a domain", mx_calls_ok == 1);
	CHECK("an MX without an address is skipped", addr_calls_nohost >= 1);
	CHECK("the resolve call runs in the module's log context",
	    strcmp(context_seen, "fake_dns") == 0 && mp_log_module() == NULL);
	CHECK("null MX: failed with the module's status", r[NULLMX].rc == MP_PERMFAIL &&
	    strcmp(r[NULLMX].status.enhanced, "5.1.10") == 0);
	CHECK("MP_ERROR without status: deferred with a default status",
	    r[BROKEN].rc == MP_TEMPFAIL && r[BROKEN].status.reply == 451 &&
	    r[BROKEN].status.text[0] != '\0');
	CHECK("no MX at all: deferred, saying so", r[EMPTY].rc == MP_TEMPFAIL &&
	    strstr(r[EMPTY].status.text, "no mail servers for empty.test") != NULL);
	CHECK("relay host: delivered there, without an MX lookup",
	    r[RELAYED].rc == MP_OK && mx_calls_elsewhere == 0);
	CHECK("NOTIFY and ORCPT passed on to a DSN server",
	    strstr(rcpt_lines, "RCPT TO:<a@ok.test> NOTIFY=FAILURE,DELAY "
	    "ORCPT=rfc822;A@ok.test\r\n") != NULL);
	CHECK("no DSN parameters where the message had none",
	    strstr(rcpt_lines, "RCPT TO:<temp@ok.test>\r\n") != NULL);
	CHECK("two transactions (the domain, the relay)", transactions == 2);
	mp_qmsg_free(&m);

	mp_core.resolve = NULL;
	queue_message(&m, port);
	deliver_all(&m, r);
	CHECK("no resolve module: deferred, saying so", r[A].rc == MP_TEMPFAIL &&
	    strstr(r[A].status.text, "resolve module") != NULL);
	CHECK("no resolve module: a relay IP literal still works", r[RELAYED].rc == MP_OK);
	mp_qmsg_free(&m);
}

int
main(void)
{
	pthread_t t;
	int port;

	if (fixture_start(state) < 0)
		return 1;
	mp_core.outbound = (struct mp_outbound_settings){ .tls = "none", .source = "",
	    .helo = "", .connect_timeout = 5, .command_timeout = 5,
	    .data_timeout = 5, .max_mx = 5 };
	port = start_server(&t);
	CHECK("the scripted server listens", port > 0);
	if (port <= 0)
		TEST_EXIT();
	mp_core.outbound.port = port;
	test_delivery(port);
	smtp_client_release();
	stopping = 1;
	pthread_join(t, NULL);
	close(listen_fd);
	if (fixture_end(state) < 0)
		return 1;
	TEST_EXIT();
}
