/*
 * modules/dnsbl/dnsbl_check.c - name building, answer filtering, CIDR
 * matching and scoring for the dnsbl module (see dnsbl_check.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <merpati/util.h>

#include "dnsbl_check.h"

/* ip as 4 or 16 bytes; an IPv4-mapped IPv6 address as its IPv4 one. */
static int
parse_ip(const char *ip, unsigned char *addr, int *family)
{
	if (inet_pton(AF_INET, ip, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, addr) != 1)
		return -1;
	*family = AF_INET6;
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)addr)) {
		memmove(addr, addr + 12, 4);
		*family = AF_INET;
	}
	return 0;
}

int
dnsbl_reverse_name(const char *ip, const char *zone, char *out, size_t size)
{
	unsigned char a[16];
	int family, n = 0;

	if (parse_ip(ip, a, &family) < 0 || size == 0)
		return -1;
	out[0] = '\0';
	if (family == AF_INET)
		n = snprintf(out, size, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone);
	else {
		static const char hex[] = "0123456789abcdef";
		char nibbles[65];
		for (int i = 15, o = 0; i >= 0; i--) {
			nibbles[o++] = hex[a[i] & 0xf];
			nibbles[o++] = '.';
			nibbles[o++] = hex[a[i] >> 4];
			nibbles[o++] = '.';
		}
		nibbles[63] = '\0';	/* the last '.' goes: the zone follows it */
		n = snprintf(out, size, "%s.%s", nibbles, zone);
	}
	return n < 0 || (size_t)n >= size || n > 253 ? -1 : 0;
}

int
dnsbl_domain_name(const char *sender, const char *zone, char *out, size_t size)
{
	const char *at = strrchr(sender, '@');
	const char *domain = at ? at + 1 : sender;
	size_t len = strlen(domain), zlen = strlen(zone);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || domain[0] == '[' || domain[0] == '.' ||
	    len + 1 + zlen > 253 || len + 1 + zlen >= size)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];
		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return -1;	/* not a host name: nothing to ask */
		out[i] = (char)tolower(c);
	}
	out[len] = '.';
	memcpy(out + len + 1, zone, zlen + 1);
	return 0;
}

int
dnsbl_code_parse(const char *text, uint32_t *code_r)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1)
		return -1;
	*code_r = ntohl(a.s_addr);
	return 0;
}

int
dnsbl_code_counts(const struct dnsbl_list *l, uint32_t code)
{
	if (l->ncodes == 0)
		return (code & 0xffffff00u) ==
		    (l->kind == DNSBL_DOMAIN ? 0x7f000100u : 0x7f000000u);
	for (size_t i = 0; i < l->ncodes; i++)
		if (l->codes[i] == code)
			return 1;
	return 0;
}

int
dnsbl_cidr_parse(const char *text, struct dnsbl_cidr *out)
{
	char ip[64];
	const char *slash = strchr(text, '/');
	size_t len = slash ? (size_t)(slash - text) : strlen(text);
	unsigned long bits;
	char *end;

	if (len == 0 || len >= sizeof(ip))
		return -1;
	memcpy(ip, text, len);
	ip[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (parse_ip(ip, out->addr, &out->family) < 0)
		return -1;
	bits = out->family == AF_INET ? 32 : 128;
	if (slash) {
		unsigned long max = bits;
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		bits = strtoul(slash + 1, &end, 10);
		if (*end || bits > max)
			return -1;
	}
	out->bits = (unsigned)bits;
	return 0;
}

int
dnsbl_cidr_match(const struct dnsbl_cidr *c, const char *ip)
{
	unsigned char a[16];
	int family;
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (parse_ip(ip, a, &family) < 0 || family != c->family)
		return 0;
	if (memcmp(a, c->addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (c->addr[full] & mask);
}

/* Append "zone (a.b.c.d)" to the score's list of listings. */
static void
note_listing(struct dnsbl_score *s, const char *zone, uint32_t code)
{
	size_t used = strlen(s->listed);

	snprintf(s->listed + used, sizeof(s->listed) - used, "%s%s (%u.%u.%u.%u)",
	    used ? ", " : "", zone, code >> 24, (code >> 16) & 0xff,
	    (code >> 8) & 0xff, code & 0xff);
}

/* The first answer of l's lookup that counts; 0 when none does. */
static uint32_t
listing_code(const struct dnsbl_list *l, const char *name,
    dnsbl_lookup_fn *lookup, void *arg, unsigned *failed)
{
	unsigned char buf[512];
	struct mp_dns_answer a = { .struct_size = sizeof(a) };
	const unsigned char *rec;
	size_t off = 0, len;

	lookup(arg, name, MP_DNS_A, buf, sizeof(buf), &a);
	if (a.status == MP_DNS_TEMPFAIL || a.status == MP_DNS_PERMFAIL) {
		(*failed)++;
		return 0;
	}
	if (a.status != MP_DNS_FOUND)
		return 0;
	while (mp_dns_next(buf, &a, &off, &rec, &len))
		if (len == 4) {
			uint32_t code = (uint32_t)rec[0] << 24 | (uint32_t)rec[1] << 16 |
			    (uint32_t)rec[2] << 8 | rec[3];
			if (dnsbl_code_counts(l, code))
				return code;
		}
	return 0;
}

void
dnsbl_check(const struct dnsbl_list *lists, size_t n, int kind,
    const char *key, dnsbl_lookup_fn *lookup, void *arg,
    struct dnsbl_score *s)
{
	char name[300];

	for (size_t i = 0; i < n; i++) {
		const struct dnsbl_list *l = &lists[i];
		int made = kind == DNSBL_IP ?
		    dnsbl_reverse_name(key, l->zone, name, sizeof(name)) :
		    dnsbl_domain_name(key, l->zone, name, sizeof(name));
		if (l->kind != kind || made < 0)
			continue;
		uint32_t code = listing_code(l, name, lookup, arg, &s->failed);
		if (code) {
			s->score += l->weight;
			note_listing(s, l->zone, code);
		}
	}
}
