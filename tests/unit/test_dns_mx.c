/*
 * tests/unit/test_dns_mx.c - the DNS answer parser on hand-built
 * packets: MX with compression, A, AAAA, null MX, NXDOMAIN with an SOA,
 * and hostile packets (truncated, pointer loops, bad counts) that must
 * fail cleanly; plus the module's nameserver setting.
 */
#include <stdio.h>
#include <string.h>

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

int
main(void)
{
	test_mx();
	test_addresses_and_null_mx();
	test_hostile();
	test_settings();
	TEST_EXIT();
}
