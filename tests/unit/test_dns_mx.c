/*
 * tests/unit/test_dns_mx.c - the DNS answer parser on hand-built
 * packets: MX with compression, A, AAAA, null MX, NXDOMAIN with an SOA,
 * and hostile packets (truncated, pointer loops, bad counts) that must
 * fail cleanly; the packed parser of the generic lookup for every type
 * (TXT joining, PTR case and escapes, TLSA, the AD bit, a buffer too
 * small) and its hostile records; the status mapping; the module's
 * nameserver setting; and the lookup cache against a small UDP server
 * on loopback that counts the queries it gets.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <merpati/util.h>

#include "../../modules/dns_mx/dns_parse.h"
#include "mock_host.h"
#include "test.h"

extern const struct mp_module merpati_module;

/* Header: id, flags, qd, an, ns, ar. */
static size_t
header(unsigned char *p, unsigned flags, unsigned qd, unsigned an, unsigned ns)
{
	unsigned char h[12] = { 0x12, 0x34, flags >> 8, flags & 0xff, 0, qd, 0, an, 0, ns, 0, 0 };

	memcpy(p, h, 12);
	return 12;
}

static size_t
put(unsigned char *p, const char *bytes, size_t n)
{
	memcpy(p, bytes, n);
	return n;
}

/* example.test MX: 10 mx1.example.test, 20 mx2 (compressed). */
static size_t
mx_packet(unsigned char *p)
{
	size_t o = header(p, 0x8180, 1, 2, 0);
	o += put(p + o, "\7example\4test\0\0\x0f\0\x01", 18);	/* question at 12 */
	o += put(p + o, "\xc0\x0c\0\x0f\0\x01\0\0\x0e\x10\0\x09\0\x0a\3mx1\xc0\x0c", 21);
	o += put(p + o, "\xc0\x0c\0\x0f\0\x01\0\0\x01\x2c\0\x09\0\x14\3mx2\xc0\x0c", 21);
	return o;
}

static void
test_mx(void)
{
	unsigned char p[512];
	struct dns_answer a;
	size_t len = mx_packet(p);

	CHECK("MX packet parses", dns_parse(p, len, DNS_T_MX, &a) == 0);
	CHECK("two MX records", a.n == 2 && a.rcode == 0);
	CHECK_STR("first exchange (compressed)", a.rr[0].name, "mx1.example.test");
	CHECK("preferences and TTLs", a.rr[0].preference == 10 && a.rr[1].preference == 20 &&
	    a.rr[0].ttl == 3600 && a.rr[1].ttl == 300);
	for (size_t cut = 0; cut < len; cut++) {
		struct dns_answer t;
		int rc = dns_parse(p, cut, DNS_T_MX, &t);
		if (rc == 0 && t.n == 2) {
			CHECK("every truncation is refused", 0);
			return;
		}
	}
	CHECK("every truncation is refused", 1);
}

static void
test_addresses_and_null_mx(void)
{
	unsigned char p[512];
	struct dns_answer a;
	size_t o = header(p, 0x8180, 1, 1, 0);

	o += put(p + o, "\1h\4test\0\0\x01\0\x01", 12);
	o += put(p + o, "\xc0\x0c\0\x01\0\x01\0\0\0\x3c\0\x04\x7f\0\0\x03", 16);
	CHECK("A record", dns_parse(p, o, DNS_T_A, &a) == 0 && a.n == 1 &&
	    a.rr[0].addr[0] == 127 && a.rr[0].addr[3] == 3);
	o = header(p, 0x8180, 1, 1, 0);
	o += put(p + o, "\1h\4test\0\0\x1c\0\x01", 12);
	o += put(p + o, "\xc0\x0c\0\x1c\0\x01\0\0\0\x3c\0\x10", 12);
	o += put(p + o, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	CHECK("AAAA record", dns_parse(p, o, DNS_T_AAAA, &a) == 0 && a.n == 1 && a.rr[0].addr[15] == 1);
	o = header(p, 0x8180, 1, 1, 0);
	o += put(p + o, "\1n\4test\0\0\x0f\0\x01", 12);
	o += put(p + o, "\xc0\x0c\0\x0f\0\x01\0\0\0\x3c\0\x03\0\0\0", 15);
	CHECK("null MX: preference 0, root", dns_parse(p, o, DNS_T_MX, &a) == 0 && a.n == 1 &&
	    a.rr[0].preference == 0 && a.rr[0].name[0] == '\0');
	o = header(p, 0x8183, 1, 0, 1);
	o += put(p + o, "\1x\4test\0\0\x0f\0\x01", 12);
	o += put(p + o, "\xc0\x0e\0\x06\0\x01\0\0\x0e\x10\0\x18", 12);	/* SOA for test */
	o += put(p + o, "\2ns\xc0\x0e\2hm\xc0\x0e\0\0\0\1\0\0\0\1\0\0\0\1\0\0\0\1\0\0\0\x78", 30);
	CHECK("NXDOMAIN with SOA minimum", dns_parse(p, o, DNS_T_MX, &a) == 0 && a.rcode == 3 &&
	    a.n == 0 && a.negative_ttl == 120);
}

static void
test_hostile(void)
{
	unsigned char p[512];
	struct dns_answer a;
	size_t o = header(p, 0x8180, 1, 1, 0);

	o += put(p + o, "\xc0\x0c", 2);	/* a name pointing at itself */
	CHECK("pointer loop refused", dns_parse(p, o + 4, DNS_T_MX, &a) < 0);
	o = header(p, 0x8180, 1, 60, 0);
	o += put(p + o, "\1h\4test\0\0\x01\0\x01", 12);
	CHECK("answer count beyond the packet refused", dns_parse(p, o, DNS_T_A, &a) < 0);
	o = header(p, 0x0100, 0, 0, 0);
	CHECK("a query is not a response", dns_parse(p, o, DNS_T_A, &a) < 0);
	o = header(p, 0x8180, 1, 1, 0);
	o += put(p + o, "\1h\4test\0\0\x01\0\x01", 12);
	o += put(p + o, "\xc0\x0c\0\x01\0\x01\0\0\0\x3c\0\x05\1\2\3\4\5", 17);
	CHECK("A with the wrong length refused", dns_parse(p, o, DNS_T_A, &a) < 0);
	memset(p, 0x3f, sizeof(p));
	size_t pos = 0;
	char name[256];
	CHECK("over-long name refused", dns_name(p, sizeof(p), &pos, name, sizeof(name)) < 0);
	CHECK("empty buffer refused", dns_parse(p, 0, DNS_T_A, &a) < 0);
}

static void
test_settings(void)
{
	const char *good[] = { "nameserver", "127.0.0.1:5353", NULL };
	const char *bad[] = { "nameserver", "dns.example:53", NULL };
	const char *port[] = { "nameserver", "127.0.0.1:99999", NULL };
	struct mp_conf c1 = { good, NULL }, c2 = { bad, NULL }, c3 = { port, NULL };
	const char *err = NULL;
	void *ctx;

	CHECK("nameserver IP:PORT accepted", merpati_module.init(&mock_host, &c1, &ctx, &err) == MP_OK);
	merpati_module.fini(ctx);
	CHECK("nameserver name refused", merpati_module.init(&mock_host, &c2, &ctx, &err) == MP_ERROR &&
	    strstr(err, "nameserver"));
	CHECK("nameserver bad port refused", merpati_module.init(&mock_host, &c3, &ctx, &err) == MP_ERROR);
}


/* ---- the packed parser (generic lookup) ---------------------------------- */

/* A response to "q.test" of type `type` (flags as given) with one
 * answer record whose rdata is rd (n octets), TTL ttl. */
static size_t
one_answer(unsigned char *p, unsigned flags, unsigned type, const char *rd,
    size_t n, unsigned ttl)
{
	size_t o = header(p, flags, 1, 1, 0);
	unsigned char rr[12] = { 0xc0, 0x0c, 0, (unsigned char)type, 0, 1,
	    0, 0, (unsigned char)(ttl >> 8), (unsigned char)ttl,
	    (unsigned char)(n >> 8), (unsigned char)n };

	o += put(p + o, "\1q\4test\0\0", 9);
	p[o++] = (unsigned char)type;
	o += put(p + o, "\0\x01", 2);
	memcpy(p + o, rr, sizeof(rr));
	o += sizeof(rr);
	memcpy(p + o, rd, n);
	return o + n;
}

/* The first packed record as a string (for text types). */
static const char *
first_text(const unsigned char *buf, const struct dns_packed *pk)
{
	static char text[2048];
	struct mp_dns_answer a = { .used = pk->used };
	const unsigned char *d;
	size_t off = 0, len;

	if (!mp_dns_next(buf, &a, &off, &d, &len) || len >= sizeof(text))
		return "(none)";
	memcpy(text, d, len);
	text[len] = '\0';
	return text;
}

static void
test_packed_types(void)
{
	unsigned char p[1024], buf[2048];
	struct dns_packed pk;
	size_t o;

	o = one_answer(p, 0x81a0, DNS_T_TXT, "\x06v=spf1\x0b -all extra\x00", 20, 300);
	CHECK("TXT parses", dns_parse_packed(p, o, DNS_T_TXT, buf, sizeof(buf), &pk) == 0 &&
	    pk.count == 1 && pk.ttl == 300);
	CHECK_STR("TXT strings joined without separator (RFC 7208 3.3)", first_text(buf, &pk),
	    "v=spf1 -all extra");
	CHECK("AD bit reported", pk.authenticated == 1);
	o = one_answer(p, 0x8180, DNS_T_PTR, "\4MAIL\3Ex.\4Test\0", 15, 60);
	CHECK("PTR parses", dns_parse_packed(p, o, DNS_T_PTR, buf, sizeof(buf), &pk) == 0 &&
	    pk.count == 1 && pk.authenticated == 0);
	CHECK_STR("PTR lower case, a dot in a label escaped", first_text(buf, &pk),
	    "mail.ex\\..test");
	o = one_answer(p, 0x8180, DNS_T_PTR, "\4ma\1l\xc0\x0c", 7, 60);
	CHECK("PTR compressed, unprintable escaped", dns_parse_packed(p, o, DNS_T_PTR, buf,
	    sizeof(buf), &pk) == 0);
	CHECK_STR("PTR as presentation text", first_text(buf, &pk), "ma\\001l.q.test");
	o = one_answer(p, 0x8180, DNS_T_TLSA, "\3\1\1\xaa\xbb\xcc", 6, 60);
	CHECK("TLSA: usage, selector, matching type, data", dns_parse_packed(p, o, DNS_T_TLSA,
	    buf, sizeof(buf), &pk) == 0 && pk.used == 8 && buf[0] == 0 && buf[1] == 6 &&
	    buf[2] == 3 && buf[3] == 1 && buf[4] == 1 && buf[7] == 0xcc);
	o = one_answer(p, 0x8180, DNS_T_MX, "\0\x0a\2mx\xc0\x0c", 7, 60);
	CHECK("MX: preference then exchange", dns_parse_packed(p, o, DNS_T_MX, buf, sizeof(buf),
	    &pk) == 0 && pk.used == 2 + 2 + 9 && buf[2] == 0 && buf[3] == 10 &&
	    memcmp(buf + 4, "mx.q.test", 9) == 0);
	o = one_answer(p, 0x8180, DNS_T_AAAA, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16, 60);
	CHECK("AAAA: 16 octets", dns_parse_packed(p, o, DNS_T_AAAA, buf, sizeof(buf), &pk) == 0 &&
	    pk.used == 18 && buf[2] == 0x20 && buf[17] == 1);
	o = one_answer(p, 0x8180, DNS_T_A, "\x7f\0\0\x02", 4, 60);
	CHECK("A: 4 octets", dns_parse_packed(p, o, DNS_T_A, buf, sizeof(buf), &pk) == 0 &&
	    pk.used == 6 && buf[2] == 127 && buf[5] == 2);
	CHECK("records of another type are not kept", dns_parse_packed(p, o, DNS_T_TXT, buf,
	    sizeof(buf), &pk) == 0 && pk.count == 0 && pk.used == 0);
}

/* Two TXT records: a buffer with room for the first only. */
static void
test_packed_cut(void)
{
	unsigned char p[512], buf[64];
	struct dns_packed pk;
	size_t o = header(p, 0x8180, 1, 2, 0);

	o += put(p + o, "\1q\4test\0\0\x10\0\x01", 12);
	o += put(p + o, "\xc0\x0c\0\x10\0\x01\0\0\0\x3c\0\x04\3one", 16);
	o += put(p + o, "\xc0\x0c\0\x10\0\x01\0\0\0\x1e\0\x06\5three", 18);
	CHECK("both records fit", dns_parse_packed(p, o, DNS_T_TXT, buf, sizeof(buf), &pk) == 0 &&
	    pk.count == 2 && pk.cut == 0 && pk.used == 5 + 7 && pk.ttl == 30);
	CHECK("a buffer too small keeps whole records and says so",
	    dns_parse_packed(p, o, DNS_T_TXT, buf, 8, &pk) == 0 && pk.count == 1 &&
	    pk.cut == 1 && pk.used == 5);
	CHECK("no buffer at all", dns_parse_packed(p, o, DNS_T_TXT, buf, 0, &pk) == 0 &&
	    pk.count == 0 && pk.cut == 1);
}

static void
test_packed_hostile(void)
{
	unsigned char p[70000], buf[256];
	struct dns_packed pk;
	size_t o;

	o = one_answer(p, 0x8180, DNS_T_TXT, "\x09short", 6, 60);
	CHECK("TXT string past its rdata refused", dns_parse_packed(p, o, DNS_T_TXT, buf,
	    sizeof(buf), &pk) < 0);
	o = one_answer(p, 0x8180, DNS_T_TXT, "", 0, 60);
	CHECK("TXT without a string refused", dns_parse_packed(p, o, DNS_T_TXT, buf,
	    sizeof(buf), &pk) < 0);
	o = one_answer(p, 0x8180, DNS_T_TLSA, "\3\1", 2, 60);
	CHECK("TLSA shorter than its fixed part refused", dns_parse_packed(p, o, DNS_T_TLSA,
	    buf, sizeof(buf), &pk) < 0);
	o = one_answer(p, 0x8180, DNS_T_PTR, "\1a\0\0", 4, 60);
	CHECK("PTR name not ending at its rdata refused", dns_parse_packed(p, o, DNS_T_PTR,
	    buf, sizeof(buf), &pk) < 0);
	o = one_answer(p, 0x8180, DNS_T_PTR, "\1a\xc0\x00", 4, 60);
	size_t at = o - 4;	/* point the name's tail at itself */
	p[o - 1] = (unsigned char)at;
	CHECK("PTR compression loop refused", dns_parse_packed(p, o, DNS_T_PTR, buf,
	    sizeof(buf), &pk) < 0);
	o = one_answer(p, 0x8180, DNS_T_A, "\1\2\3", 3, 60);
	CHECK("A of 3 octets refused", dns_parse_packed(p, o, DNS_T_A, buf, sizeof(buf), &pk) < 0);
	o = one_answer(p, 0x8180, DNS_T_MX, "\0\x0a", 2, 60);
	CHECK("MX without an exchange refused", dns_parse_packed(p, o, DNS_T_MX, buf,
	    sizeof(buf), &pk) < 0);
	o = header(p, 0x8180, 1, 0, 0);
	p[6] = p[7] = 0xff;	/* 65535 answers */
	o += put(p + o, "\1q\4test\0\0\x10\0\x01", 12);
	for (int i = 0; i < 5000; i++)
		o += put(p + o, "\xc0\x0c\0\x10\0\x01\0\0\0\x3c\0\x01\0", 13);
	CHECK("65535 answers claimed, 5000 there: refused", dns_parse_packed(p, o, DNS_T_TXT, buf,
	    sizeof(buf), &pk) < 0);
	p[6] = 5000 >> 8;
	p[7] = 5000 & 0xff;
	CHECK("5000 empty TXT strings: parsed, the buffer cut, bounded",
	    dns_parse_packed(p, o, DNS_T_TXT, buf, sizeof(buf), &pk) == 0 &&
	    pk.count == sizeof(buf) / 2 && pk.cut == 1);
	o = one_answer(p, 0x8180, DNS_T_TXT, "\3abc", 4, 60);
	size_t parsed_cut = 0;
	for (size_t cut = 0; cut < o && parsed_cut == 0; cut++)
		if (dns_parse_packed(p, cut, DNS_T_TXT, buf, sizeof(buf), &pk) == 0 &&
		    pk.count > 0)
			parsed_cut = cut;
	CHECK("every truncated TXT answer is refused", parsed_cut == 0);
}

static void
test_status(void)
{
	CHECK("records: FOUND", dns_status_of(0, DNS_RCODE_OK, 1) == MP_DNS_FOUND);
	CHECK("RCODE 0, none of the type: NODATA", dns_status_of(0, DNS_RCODE_OK, 0) == MP_DNS_NODATA);
	CHECK("RCODE 3: NXDOMAIN", dns_status_of(0, DNS_RCODE_NXDOMAIN, 0) == MP_DNS_NXDOMAIN);
	CHECK("SERVFAIL: TEMPFAIL", dns_status_of(0, DNS_RCODE_SERVFAIL, 0) == MP_DNS_TEMPFAIL);
	CHECK("REFUSED: PERMFAIL", dns_status_of(0, 5, 0) == MP_DNS_PERMFAIL);
	CHECK("FORMERR: PERMFAIL", dns_status_of(0, 1, 0) == MP_DNS_PERMFAIL);
	CHECK("malformed: PERMFAIL", dns_status_of(-1, DNS_RCODE_OK, 1) == MP_DNS_PERMFAIL);
}

/* ---- the lookup cache, against a counting server ------------------------- */

struct fake_dns {
	int fd;
	int queries;		/* written by the server thread */
	int rcode;		/* what it answers */
	int stop;
	pthread_mutex_t lock;
};

/* The reply to query q: its ID and question, one TXT record "abc" "def"
 * (TTL 60) when the query is for TXT, AD set. */
static size_t
fake_reply(struct fake_dns *f, const unsigned char *q, size_t qlen, unsigned char *r)
{
	size_t qend = 12;
	int rcode;

	while (qend < qlen && q[qend] != 0)
		qend += 1 + q[qend];
	qend += 5;
	if (qend > qlen)
		return 0;
	pthread_mutex_lock(&f->lock);
	rcode = f->rcode;
	pthread_mutex_unlock(&f->lock);
	int txt = rcode == 0 && q[qend - 3] == DNS_T_TXT;
	memcpy(r, q, qend);
	r[2] = 0x81;
	r[3] = (unsigned char)(0xa0 | rcode);
	r[7] = (unsigned char)txt;
	r[8] = r[9] = r[10] = r[11] = 0;
	if (!txt)
		return qend;
	memcpy(r + qend, "\xc0\x0c\0\x10\0\x01\0\0\0\x3c\0\x08\3abc\3def", 20);
	return qend + 20;
}

static void *
fake_serve(void *arg)
{
	struct fake_dns *f = arg;
	unsigned char q[2048], r[2048];

	for (;;) {
		struct pollfd pfd = { f->fd, POLLIN, 0 };
		pthread_mutex_lock(&f->lock);
		int stop = f->stop;
		pthread_mutex_unlock(&f->lock);
		if (stop)
			return NULL;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(f->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n < 12)
			continue;
		pthread_mutex_lock(&f->lock);
		f->queries++;
		pthread_mutex_unlock(&f->lock);
		size_t rl = fake_reply(f, q, (size_t)n, r);
		if (rl)
			sendto(f->fd, r, rl, 0, (struct sockaddr *)&from, fl);
	}
}

static int
fake_queries(struct fake_dns *f)
{
	pthread_mutex_lock(&f->lock);
	int n = f->queries;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static time_t fake_clock = 1000000;
static time_t fake_now(void) { return fake_clock; }

static void
test_lookup_cache(void)
{
	struct fake_dns f = { .rcode = 0 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	pthread_t th;
	char server[64];
	struct mp_host h = mock_host;
	unsigned char buf[64];
	struct mp_dns_answer a = { .struct_size = sizeof(a) };
	void *ctx;
	const char *err = NULL;

	h.now = fake_now;
	pthread_mutex_init(&f.lock, NULL);
	f.fd = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (f.fd < 0 || bind(f.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(f.fd, (struct sockaddr *)&sa, &sl) < 0) {
		CHECK("a loopback UDP socket for the fake server", 0);
		return;
	}
	snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(sa.sin_port));
	const char *kv[] = { "nameserver", server, "timeout", "1s", "attempts", "1", NULL };
	struct mp_conf c = { kv, NULL };
	pthread_create(&th, NULL, fake_serve, &f);
	CHECK("module up", merpati_module.init(&h, &c, &ctx, &err) == MP_OK);
	const struct mp_resolve_ops *ops = merpati_module.resolve;

	CHECK("TXT found", ops->lookup(ctx, "c.test", DNS_T_TXT, buf, sizeof(buf), &a) == MP_OK &&
	    a.status == MP_DNS_FOUND && a.count == 1 && a.used == 8 &&
	    memcmp(buf + 2, "abcdef", 6) == 0 && a.ttl == 60 && a.authenticated == 1);
	CHECK("one query so far", fake_queries(&f) == 1);
	fake_clock += 20;
	memset(buf, 0, sizeof(buf));
	CHECK("again: from the cache, TTL counting down", ops->lookup(ctx, "c.test", DNS_T_TXT,
	    buf, sizeof(buf), &a) == MP_OK && a.ttl == 40 && memcmp(buf + 2, "abcdef", 6) == 0 &&
	    fake_queries(&f) == 1);
	CHECK("cached, into a buffer too small: truncated", ops->lookup(ctx, "c.test", DNS_T_TXT,
	    buf, 4, &a) == MP_OK && a.truncated == 1 && a.count == 0 && a.used == 0);
	CHECK("the type is part of the key: A is asked, NODATA",
	    ops->lookup(ctx, "c.test", DNS_T_A, buf, sizeof(buf), &a) == MP_PERMFAIL &&
	    a.status == MP_DNS_NODATA && fake_queries(&f) == 2);
	CHECK("NODATA cached too", ops->lookup(ctx, "c.test", DNS_T_A, buf, sizeof(buf), &a) ==
	    MP_PERMFAIL && a.status == MP_DNS_NODATA && fake_queries(&f) == 2);
	fake_clock += 41;
	CHECK("expired: asked again", ops->lookup(ctx, "c.test", DNS_T_TXT, buf, sizeof(buf),
	    &a) == MP_OK && fake_queries(&f) == 3);
	pthread_mutex_lock(&f.lock);
	f.rcode = 3;
	pthread_mutex_unlock(&f.lock);
	CHECK("NXDOMAIN", ops->lookup(ctx, "nx.test", DNS_T_TXT, buf, sizeof(buf), &a) ==
	    MP_PERMFAIL && a.status == MP_DNS_NXDOMAIN && a.count == 0 && a.ttl > 0);
	pthread_mutex_lock(&f.lock);
	f.rcode = 2;
	pthread_mutex_unlock(&f.lock);
	int before = fake_queries(&f);
	CHECK("SERVFAIL: TEMPFAIL", ops->lookup(ctx, "sf.test", DNS_T_TXT, buf, sizeof(buf), &a) ==
	    MP_TEMPFAIL && a.status == MP_DNS_TEMPFAIL);
	CHECK("TEMPFAIL not cached", ops->lookup(ctx, "sf.test", DNS_T_TXT, buf, sizeof(buf), &a) ==
	    MP_TEMPFAIL && fake_queries(&f) > before + 1);
	CHECK("unsupported type: PERMFAIL, nothing sent", ops->lookup(ctx, "c.test", 99, buf,
	    sizeof(buf), &a) == MP_PERMFAIL && a.status == MP_DNS_PERMFAIL);
	merpati_module.fini(ctx);
	pthread_mutex_lock(&f.lock);
	f.stop = 1;
	pthread_mutex_unlock(&f.lock);
	pthread_join(th, NULL);
	close(f.fd);
}

int
main(void)
{
	test_mx();
	test_addresses_and_null_mx();
	test_hostile();
	test_settings();
	test_packed_types();
	test_packed_cut();
	test_packed_hostile();
	test_status();
	test_lookup_cache();
	TEST_EXIT();
}
