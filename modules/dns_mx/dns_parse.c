/*
 * modules/dns_mx/dns_parse.c - DNS response parsing (see dns_parse.h).
 * Compression pointers are followed at most 64 times, so a pointer loop
 * ends as an error instead of a hang.
 */
#include <string.h>

#include "dns_parse.h"

static int
u16(const unsigned char *m, size_t len, size_t pos, uint16_t *v)
{
	if (pos + 2 > len)
		return -1;
	*v = (uint16_t)(m[pos] << 8 | m[pos + 1]);
	return 0;
}

static int
u32(const unsigned char *m, size_t len, size_t pos, uint32_t *v)
{
	if (pos + 4 > len)
		return -1;
	*v = (uint32_t)m[pos] << 24 | (uint32_t)m[pos + 1] << 16 |
	    (uint32_t)m[pos + 2] << 8 | m[pos + 3];
	return 0;
}

int
dns_name(const unsigned char *msg, size_t len, size_t *pos, char *out,
    size_t size)
{
	size_t p = *pos, o = 0, end = 0;
	int jumps = 0;

	if (size == 0)
		return -1;
	for (;;) {
		if (p >= len)
			return -1;
		unsigned char l = msg[p];
		if ((l & 0xc0) == 0xc0) {
			if (p + 1 >= len || ++jumps > 64)
				return -1;
			if (end == 0)
				end = p + 2;
			p = (size_t)(l & 0x3f) << 8 | msg[p + 1];
			continue;
		}
		if (l & 0xc0)
			return -1;	/* reserved label types */
		if (l == 0) {
			if (end == 0)
				end = p + 1;
			break;
		}
		if (p + 1 + l > len || o + l + 2 > size || o + l + 1 > 255)
			return -1;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, msg + p + 1, l);
		o += l;
		p += 1 + (size_t)l;
	}
	out[o] = '\0';
	*pos = end;
	return 0;
}

static int
skip_question(const unsigned char *m, size_t len, size_t *pos)
{
	char name[256];

	if (dns_name(m, len, pos, name, sizeof(name)) < 0 || *pos + 4 > len)
		return -1;
	*pos += 4;
	return 0;
}

static int
rdata(const unsigned char *m, size_t len, size_t pos, uint16_t rdlen,
    struct dns_rr *rr)
{
	size_t p = pos;

	switch (rr->type) {
	case DNS_T_A:
		if (rdlen != 4)
			return -1;
		memcpy(rr->addr, m + pos, 4);
		return 0;
	case DNS_T_AAAA:
		if (rdlen != 16)
			return -1;
		memcpy(rr->addr, m + pos, 16);
		return 0;
	case DNS_T_MX:
		if (rdlen < 3 || u16(m, len, p, &rr->preference) < 0)
			return -1;
		p += 2;
		if (dns_name(m, len, &p, rr->name, sizeof(rr->name)) < 0 ||
		    p > pos + rdlen)
			return -1;
		return 0;
	}
	return -1;
}

/* SOA: mname, rname, serial, refresh, retry, expire, minimum. */
static void
soa_minimum(const unsigned char *m, size_t len, size_t pos, uint32_t ttl,
    struct dns_answer *out)
{
	char name[256];
	uint32_t minimum;

	if (dns_name(m, len, &pos, name, sizeof(name)) < 0 ||
	    dns_name(m, len, &pos, name, sizeof(name)) < 0 ||
	    u32(m, len, pos + 16, &minimum) < 0)
		return;
	out->negative_ttl = minimum < ttl ? minimum : ttl;
}

static int
record(const unsigned char *m, size_t len, size_t *pos, uint16_t want,
    int answer_section, struct dns_answer *out)
{
	char owner[256];
	uint16_t type, class, rdlen;
	uint32_t ttl;

	if (dns_name(m, len, pos, owner, sizeof(owner)) < 0 ||
	    u16(m, len, *pos, &type) < 0 || u16(m, len, *pos + 2, &class) < 0 ||
	    u32(m, len, *pos + 4, &ttl) < 0 || u16(m, len, *pos + 8, &rdlen) < 0)
		return -1;
	*pos += 10;
	if (*pos + rdlen > len)
		return -1;
	if (ttl > 0x7fffffff)
		ttl = 0;
	if (answer_section && type == want && class == 1 && out->n < DNS_MAX_RR) {
		struct dns_rr *rr = &out->rr[out->n];
		memset(rr, 0, sizeof(*rr));
		rr->type = type;
		rr->ttl = ttl;
		if (rdata(m, len, *pos, rdlen, rr) < 0)
			return -1;
		out->n++;
	} else if (!answer_section && type == DNS_T_SOA)
		soa_minimum(m, len, *pos, ttl, out);
	*pos += rdlen;
	return 0;
}

int
dns_parse(const unsigned char *msg, size_t len, uint16_t want,
    struct dns_answer *out)
{
	uint16_t flags, qd, an, ns;
	size_t pos = 12;

	memset(out, 0, sizeof(*out));
	if (len < 12 || u16(msg, len, 2, &flags) < 0 || u16(msg, len, 4, &qd) < 0 ||
	    u16(msg, len, 6, &an) < 0 || u16(msg, len, 8, &ns) < 0)
		return -1;
	if (!(flags & 0x8000))
		return -1;	/* not a response */
	out->rcode = flags & 0x0f;
	out->truncated = (flags & 0x0200) != 0;
	for (unsigned i = 0; i < qd; i++)
		if (skip_question(msg, len, &pos) < 0)
			return -1;
	for (unsigned i = 0; i < an; i++)
		if (record(msg, len, &pos, want, 1, out) < 0)
			return -1;
	for (unsigned i = 0; i < ns; i++)
		if (record(msg, len, &pos, want, 0, out) < 0)
			break;	/* the answers are what matter */
	return 0;
}
