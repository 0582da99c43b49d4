/*
 * modules/spf/spf_macro.c - macro expansion (RFC 7208 7): the letters
 * s l o d i p h v (and c r t in explanations), the DIGIT and "r"
 * transformers, the delimiters . - + , / _ =, URL-escaping for upper-case
 * letters, %% %_ %-, and the 253-octet rule for domain names (7.3).
 * With env == NULL and out == NULL it checks syntax only (the parser).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "spf.h"

#define SPF_MAX_PARTS 128	/* more parts than a 253-octet name has */

struct out_buf {
	char *p;
	size_t size, len;
	bool overflow;
};

static void
put(struct out_buf *o, const char *s, size_t n)
{
	if (o->p == NULL)
		return;
	if (o->len + n >= o->size) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* RFC 3986 unreserved characters stay; others become %XX (7.3). */
static void
put_escaped(struct out_buf *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			put(o, s + i, 1);
		} else {
			char hex[4];
			snprintf(hex, sizeof(hex), "%%%02X", c);
			put(o, hex, 3);
		}
	}
}

/* %{i}: dotted quad, or 32 dot-separated nibbles for IPv6 (7.3). */
static void
ip_dotted(const struct spf_ip *ip, char *buf, size_t size)
{
	if (ip->family == AF_INET) {
		inet_ntop(AF_INET, ip->addr, buf, (socklen_t)size);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;
	for (int i = 0; i < 16 && k + 4 < size; i++) {
		buf[k++] = hex[ip->addr[i] >> 4];
		buf[k++] = '.';
		buf[k++] = hex[ip->addr[i] & 15];
		buf[k++] = '.';
	}
	buf[k > 0 ? k - 1 : 0] = '\0';
}

/* The raw value of a macro letter, or NULL if the letter is invalid
 * in this context. */
static const char *
letter_value(char letter, const struct spf_macro_env *env, bool explain,
    char *buf, size_t size)
{
	switch (letter) {
	case 's': return env->sender;
	case 'l': return env->local;
	case 'o': return env->sender_domain;
	case 'd': return env->domain;
	case 'h': return env->helo;
	case 'v': return env->ip.family == AF_INET ? "in-addr" : "ip6";
	case 'i':
		ip_dotted(&env->ip, buf, size);
		return buf;
	case 'p': {
		const char *p = env->validated_name ? env->validated_name(env->ctx) : NULL;
		return p != NULL ? p : "unknown";
	}
	case 'c':
		if (!explain)
			return NULL;
		inet_ntop(env->ip.family, env->ip.addr, buf, (socklen_t)size);
		return buf;
	case 'r':
		return explain ? (env->receiver ? env->receiver : "unknown") : NULL;
	case 't':
		if (!explain)
			return NULL;
		snprintf(buf, size, "%lld", (long long)env->now);
		return buf;
	}
	return NULL;
}

/* Split value on the delimiters, keep the rightmost `keep` parts after
 * an optional reversal, and join them with dots (7.3). */
static void
put_transformed(struct out_buf *o, const char *value, unsigned keep,
    bool reverse, const char *delims, bool escape)
{
	const char *start[SPF_MAX_PARTS];
	size_t len[SPF_MAX_PARTS];
	size_t n = 0;
	const char *p = value;

	for (;;) {
		size_t l = strcspn(p, delims);
		if (n == SPF_MAX_PARTS) {	/* fold the excess into the last part */
			len[n - 1] = (size_t)(p + strlen(p) - start[n - 1]);
			break;
		}
		start[n] = p;
		len[n++] = l;
		if (p[l] == '\0')
			break;
		p += l + 1;
	}
	size_t first = keep > 0 && keep < n ? n - keep : 0;
	for (size_t k = first; k < n; k++) {
		size_t i = reverse ? n - 1 - k : k;
		if (k > first)
			put(o, ".", 1);
		if (escape)
			put_escaped(o, start[i], len[i]);
		else
			put(o, start[i], len[i]);
	}
}

/* One "%{...}" at s (s points past "%{"); returns the length consumed
 * including '}', or 0 on a syntax error. */
static size_t
expand_one(const char *s, size_t len, const struct spf_macro_env *env,
    bool explain, struct out_buf *o)
{
	if (len == 0)
		return 0;
	char letter = s[0];
	char lower = (char)tolower((unsigned char)letter);
	if (strchr("slodiphvcrt", lower) == NULL || letter == '\0')
		return 0;
	if (!explain && strchr("crt", lower) != NULL)
		return 0;
	size_t i = 1;
	unsigned keep = 0;
	size_t digits = 0;
	while (i < len && isdigit((unsigned char)s[i])) {
		if (keep < 1000)
			keep = keep * 10 + (unsigned)(s[i] - '0');
		i++;
		digits++;
	}
	if (digits > 0 && keep == 0)
		return 0;	/* "If a DIGIT is specified, the value MUST be nonzero" */
	bool reverse = false;
	if (i < len && (s[i] == 'r' || s[i] == 'R')) {
		reverse = true;
		i++;
	}
	char delims[8];
	size_t nd = 0;
	while (i < len && strchr(".-+,/_=", s[i]) != NULL && s[i] != '\0') {
		if (nd < sizeof(delims) - 1 && memchr(delims, s[i], nd) == NULL)
			delims[nd++] = s[i];
		i++;
	}
	if (i >= len || s[i] != '}')
		return 0;
	if (nd == 0)
		delims[nd++] = '.';
	delims[nd] = '\0';
	if (env != NULL) {
		char buf[80];
		const char *value = letter_value(lower, env, explain, buf, sizeof(buf));
		if (value == NULL)
			return 0;
		put_transformed(o, value, keep, reverse, delims, letter != lower);
	}
	return i + 1;
}

/* 7.3: a name over 253 octets loses labels from the left. -1 when a
 * single label is still over 253 octets: no name is left to query. */
static int
trim_domain(struct out_buf *o)
{
	if (o->p == NULL || o->len <= 253)
		return 0;
	size_t cut = 0;
	while (o->len - cut > 253) {
		const char *dot = memchr(o->p + cut, '.', o->len - cut);
		if (dot == NULL)
			return -1;
		cut = (size_t)(dot - o->p) + 1;
	}
	memmove(o->p, o->p + cut, o->len - cut);
	o->len -= cut;
	return 0;
}

int
spf_macro_expand(const char *in, size_t len, const struct spf_macro_env *env,
    bool explain, bool domain, char *out, size_t out_size, const char **error_r)
{
	struct out_buf o = { .p = out, .size = out_size };
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (c != '%') {
			if ((c < 0x21 && !(explain && c == ' ')) || c > 0x7e) {
				*error_r = "bad character in macro-string";
				return -1;
			}
			put(&o, in + i, 1);
			i++;
			continue;
		}
		char next = i + 1 < len ? in[i + 1] : '\0';
		if (next == '%' || next == '_' || next == '-') {
			put(&o, next == '%' ? "%" : next == '_' ? " " : "%20",
			    next == '-' ? 3 : 1);
			i += 2;
			continue;
		}
		size_t used = next == '{' ?
		    expand_one(in + i + 2, len - i - 2, env, explain, &o) : 0;
		if (used == 0) {
			*error_r = "bad macro";
			return -1;
		}
		i += 2 + used;
	}
	if (o.overflow) {
		*error_r = "expansion too long";
		return -1;
	}
	if (domain && trim_domain(&o) < 0) {
		*error_r = "expanded domain name has a label over 253 octets";
		return -1;
	}
	if (o.p != NULL)
		o.p[o.len] = '\0';
	return 0;
}
