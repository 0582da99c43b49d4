/*
 * modules/dns_mx/dns_parse.c - DNS response parsing (see dns_parse.h).
 * Compression pointers are followed at most 64 times per name, so a
 * pointer loop ends as an error instead of a hang; every count in the
 * header is walked against the packet's length, never trusted.
 */
#include <stdlib.h>
#include <string.h>

#include <merpati/resolve.h>

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

/* Append label octet c to out (at *o) as text: raw, or in presentation
 * form (lower case, '.' and '\\' escaped, unprintables as \DDD). */
static int
put_octet(char *out, size_t size, size_t *o, unsigned char c, int present)
{
	char tmp[5];
	size_t n = 1;

	tmp[0] = (char)c;
	if (present && (c == '.' || c == '\\')) {
		tmp[0] = '\\';
		tmp[1] = (char)c;
		n = 2;
	} else if (present && (c < 0x21 || c > 0x7e)) {
		tmp[0] = '\\';
		tmp[1] = (char)('0' + c / 100);
		tmp[2] = (char)('0' + c / 10 % 10);
		tmp[3] = (char)('0' + c % 10);
		n = 4;
	} else if (present && c >= 'A' && c <= 'Z')
		tmp[0] = (char)(c - 'A' + 'a');
	if (*o + n + 1 > size)
		return -1;
	memcpy(out + *o, tmp, n);
	*o += n;
	return 0;
}

/* dns_name() and its presentation-form twin: wire length is capped at
 * 255 octets (RFC 1035 2.3.4), the text at size. */
static int
read_name(const unsigned char *msg, size_t len, size_t *pos, char *out,
    size_t size, int present)
{
	size_t p = *pos, o = 0, end = 0, wire = 0;
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
		wire += 1 + (size_t)l;
		if (p + 1 + l > len || wire + 1 > 255)
			return -1;
		if (o > 0 && put_octet(out, size, &o, '.', 0) < 0)
			return -1;
		for (size_t i = 0; i < l; i++)
			if (put_octet(out, size, &o, msg[p + 1 + i], present) < 0)
				return -1;
		p += 1 + (size_t)l;
	}
	out[o] = '\0';
	*pos = end;
	return 0;
}

int
dns_name(const unsigned char *msg, size_t len, size_t *pos, char *out,
    size_t size)
{
	return read_name(msg, len, pos, out, size, 0);
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
static int
soa_minimum(const unsigned char *m, size_t len, size_t pos, uint32_t *minimum)
{
	char name[256];

	if (dns_name(m, len, &pos, name, sizeof(name)) < 0 ||
	    dns_name(m, len, &pos, name, sizeof(name)) < 0)
		return -1;
	return u32(m, len, pos + 16, minimum);
}

/* Called for each answer record of the wanted type and class IN: the
 * rdata at m[pos], rdlen octets (within len). 0, or -1 when malformed. */
typedef int keep_fn(const unsigned char *m, size_t len, size_t pos,
    uint16_t rdlen, uint16_t type, uint32_t ttl, void *arg);

struct walk {
	uint16_t want;
	keep_fn *keep;
	void *arg;
	int rcode, truncated, authenticated;
	uint32_t negative_ttl;
};

static int
record(const unsigned char *m, size_t len, size_t *pos, int answer_section,
    struct walk *w)
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
		ttl = 0;	/* RFC 2181 8: the top bit set means zero */
	if (answer_section && type == w->want && class == 1) {
		if (w->keep(m, len, *pos, rdlen, type, ttl, w->arg) < 0)
			return -1;
	} else if (!answer_section && type == DNS_T_SOA) {
		uint32_t minimum;
		if (soa_minimum(m, len, *pos, &minimum) == 0)
			w->negative_ttl = minimum < ttl ? minimum : ttl;
	}
	*pos += rdlen;
	return 0;
}

/* The header, the questions, the answers (each kept one handed to
 * w->keep) and the authority section's SOA. 0, or -1 when malformed.
 * Each record consumes at least 11 octets, so the counts cannot make
 * the work outgrow the packet. */
static int
walk(const unsigned char *msg, size_t len, struct walk *w)
{
	uint16_t flags, qd, an, ns;
	size_t pos = 12;

	if (len < 12 || u16(msg, len, 2, &flags) < 0 || u16(msg, len, 4, &qd) < 0 ||
	    u16(msg, len, 6, &an) < 0 || u16(msg, len, 8, &ns) < 0)
		return -1;
	if (!(flags & 0x8000))
		return -1;	/* not a response */
	w->rcode = flags & 0x0f;
	w->truncated = (flags & 0x0200) != 0;
	w->authenticated = (flags & 0x0020) != 0;
	for (unsigned i = 0; i < qd; i++)
		if (skip_question(msg, len, &pos) < 0)
			return -1;
	for (unsigned i = 0; i < an; i++)
		if (record(msg, len, &pos, 1, w) < 0)
			return -1;
	for (unsigned i = 0; i < ns; i++)
		if (record(msg, len, &pos, 0, w) < 0)
			break;	/* the answers are what matter */
	return 0;
}

/* ---- fixed records (MX, A, AAAA) ----------------------------------------- */

static int
keep_fixed(const unsigned char *m, size_t len, size_t pos, uint16_t rdlen,
    uint16_t type, uint32_t ttl, void *arg)
{
	struct dns_answer *out = arg;
	struct dns_rr *rr;

	if (out->n >= DNS_MAX_RR)
		return 0;
	rr = &out->rr[out->n];
	memset(rr, 0, sizeof(*rr));
	rr->type = type;
	rr->ttl = ttl;
	if (rdata(m, len, pos, rdlen, rr) < 0)
		return -1;
	out->n++;
	return 0;
}

int
dns_parse(const unsigned char *msg, size_t len, uint16_t want,
    struct dns_answer *out)
{
	struct walk w = { .want = want, .keep = keep_fixed, .arg = out };

	memset(out, 0, sizeof(*out));
	if (walk(msg, len, &w) < 0)
		return -1;
	out->rcode = w.rcode;
	out->truncated = w.truncated;
	out->negative_ttl = w.negative_ttl;
	return 0;
}

/* ---- packed records (the generic lookup) --------------------------------- */

struct packer {
	unsigned char *buf;
	size_t size;
	struct dns_packed *out;
	unsigned char data[65536];	/* one record, before it is placed */
};

/* TXT: the character-strings joined without separator (RFC 7208 3.3). */
static int
pack_txt(const unsigned char *m, size_t pos, uint16_t rdlen, unsigned char *d,
    size_t *n)
{
	size_t p = pos, end = pos + rdlen;

	if (rdlen == 0)
		return -1;	/* at least one string (RFC 1035 3.3.14) */
	while (p < end) {
		size_t l = m[p];
		if (p + 1 + l > end)
			return -1;
		memcpy(d + *n, m + p + 1, l);
		*n += l;
		p += 1 + l;
	}
	return 0;
}

/* A name at m[*p] ending exactly at end, as text into d. */
static int
pack_name(const unsigned char *m, size_t len, size_t p, size_t end,
    unsigned char *d, size_t *n)
{
	char text[1024];	/* 255 wire octets, each at most 4 as text */

	if (read_name(m, len, &p, text, sizeof(text), 1) < 0 || p != end)
		return -1;
	memcpy(d + *n, text, strlen(text));
	*n += strlen(text);
	return 0;
}

/* The packed form of one record's rdata into d (*n octets). */
static int
pack_rdata(const unsigned char *m, size_t len, size_t pos, uint16_t rdlen,
    uint16_t type, unsigned char *d, size_t *n)
{
	*n = 0;
	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (rdlen != (type == DNS_T_A ? 4 : 16))
			return -1;
		memcpy(d, m + pos, rdlen);
		*n = rdlen;
		return 0;
	case DNS_T_MX:
		if (rdlen < 3)
			return -1;
		memcpy(d, m + pos, 2);	/* the preference, big-endian as on the wire */
		*n = 2;
		return pack_name(m, len, pos + 2, pos + rdlen, d, n);
	case DNS_T_PTR:
		return pack_name(m, len, pos, pos + rdlen, d, n);
	case DNS_T_TXT:
		return pack_txt(m, pos, rdlen, d, n);
	case DNS_T_TLSA:
		if (rdlen < 3)
			return -1;	/* usage, selector, matching type */
		memcpy(d, m + pos, rdlen);
		*n = rdlen;
		return 0;
	}
	return -1;
}

static int
keep_packed(const unsigned char *m, size_t len, size_t pos, uint16_t rdlen,
    uint16_t type, uint32_t ttl, void *arg)
{
	struct packer *pk = arg;
	struct dns_packed *out = pk->out;
	size_t n;

	if (pack_rdata(m, len, pos, rdlen, type, pk->data, &n) < 0 || n > 0xffff)
		return -1;
	if (out->count == 0 || ttl < out->ttl)
		out->ttl = ttl;
	if (out->cut || out->used + 2 + n > pk->size) {
		out->cut = 1;	/* keep the order: nothing after a record left out */
		return 0;
	}
	pk->buf[out->used] = (unsigned char)(n >> 8);
	pk->buf[out->used + 1] = (unsigned char)n;
	memcpy(pk->buf + out->used + 2, pk->data, n);
	out->used += 2 + n;
	out->count++;
	return 0;
}

int
dns_parse_packed(const unsigned char *msg, size_t len, uint16_t want,
    unsigned char *buf, size_t size, struct dns_packed *out)
{
	struct packer *pk = malloc(sizeof(*pk));
	struct walk w = { .want = want, .keep = keep_packed, .arg = pk };
	int rc;

	memset(out, 0, sizeof(*out));
	if (pk == NULL)
		return -1;
	pk->buf = buf;
	pk->size = size;
	pk->out = out;
	rc = walk(msg, len, &w);
	free(pk);
	if (rc < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->rcode = w.rcode;
	out->truncated = w.truncated;
	out->authenticated = w.authenticated;
	out->negative_ttl = w.negative_ttl;
	return 0;
}

int
dns_status_of(int parsed, int rcode, uint32_t count)
{
	if (parsed < 0)
		return MP_DNS_PERMFAIL;	/* malformed */
	switch (rcode) {
	case DNS_RCODE_OK:
		return count > 0 ? MP_DNS_FOUND : MP_DNS_NODATA;
	case DNS_RCODE_SERVFAIL:
		return MP_DNS_TEMPFAIL;
	case DNS_RCODE_NXDOMAIN:
		return MP_DNS_NXDOMAIN;
	}
	return MP_DNS_PERMFAIL;
}
