/*
 * modules/spf/spf_record.c - the SPF record parser (RFC 7208 4.6, 5, 6
 * and the ABNF of section 12): terms, qualifiers, CIDR lengths and the
 * redirect/exp modifiers. Macro syntax inside domain-specs is checked
 * here too, because RFC 7208 4.6 makes any syntax error anywhere in the
 * record a permerror before anything is evaluated. Pure, no DNS.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf.h"

static const struct {
	const char *name;
	enum spf_mech mech;
} mech_names[] = {
	{ "all", SPF_MECH_ALL }, { "include", SPF_MECH_INCLUDE },
	{ "a", SPF_MECH_A }, { "mx", SPF_MECH_MX }, { "ptr", SPF_MECH_PTR },
	{ "ip4", SPF_MECH_IP4 }, { "ip6", SPF_MECH_IP6 },
	{ "exists", SPF_MECH_EXISTS },
};

bool
spf_is_v1(const char *text)
{
	return strncasecmp(text, "v=spf1", 6) == 0 && (text[6] == '\0' || text[6] == ' ');
}

void
spf_record_free(struct spf_record *rec)
{
	if (rec == NULL)
		return;
	for (size_t i = 0; i < rec->count; i++)
		free(rec->terms[i].domain_spec);
	free(rec->terms);
	free(rec->redirect);
	free(rec->exp);
	free(rec);
}

/* A macro-string's syntax: the expander with no output buffer only
 * checks (so c, r and t, explanation-only letters, are errors here). */
static bool
macro_syntax_ok(const char *s, size_t len)
{
	const char *err;

	return spf_macro_expand(s, len, NULL, false, false, NULL, 0, &err) == 0;
}

/*
 * domain-end (RFC 7208 12): the last label is a macro-expand or a
 * "toplabel" (alphanumeric with at least one letter, or containing a
 * hyphen not at either end), optionally followed by a dot.
 */
static bool
domain_end_ok(const char *s, size_t len)
{
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len > 0 && s[len - 1] == '}')
		return true;
	size_t start = len;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == 0 || start == len)
		return false;	/* needs a dot before the top label */
	const char *l = s + start;
	size_t n = len - start;
	bool alpha = false, hyphen = false;
	for (size_t i = 0; i < n; i++) {
		if (isalpha((unsigned char)l[i]))
			alpha = true;
		else if (l[i] == '-')
			hyphen = true;
		else if (!isdigit((unsigned char)l[i]))
			return false;
	}
	if (l[0] == '-' || l[n - 1] == '-')
		return false;
	return alpha || hyphen;
}

static bool
domain_spec_ok(const char *s, size_t len)
{
	return len > 0 && macro_syntax_ok(s, len) && domain_end_ok(s, len);
}

/* "/" ( "0" / %x31-39 0*1DIGIT ) (or up to 3 digits for IPv6), <= max */
static int
parse_cidr(const char *s, size_t len, int max)
{
	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	int v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* Strip a trailing dual-cidr-length ("/n", "//n", "/n//n") from
 * [s, *len). -1 if a CIDR part is present but malformed. */
static int
take_dual_cidr(const char *s, size_t *len, struct spf_term *t)
{
	size_t n = *len;
	size_t d = n;

	while (d > 0 && isdigit((unsigned char)s[d - 1]))
		d--;
	if (d > 1 && d < n && s[d - 1] == '/' && s[d - 2] == '/') {
		if ((t->cidr6 = parse_cidr(s + d, n - d, 128)) < 0)
			return -1;
		n = d - 2;
		d = n;
		while (d > 0 && isdigit((unsigned char)s[d - 1]))
			d--;
	}
	if (d > 0 && d < n && s[d - 1] == '/') {
		if ((t->cidr4 = parse_cidr(s + d, n - d, 32)) < 0)
			return -1;
		n = d - 1;
	} else if (n > 0 && s[n - 1] == '/') {
		return -1;
	}
	*len = n;
	return 0;
}

/* ip4:/ip6: network with an optional single CIDR length. */
static int
parse_ip_net(const char *arg, size_t len, struct spf_term *t, const char **error_r)
{
	bool v6 = t->mech == SPF_MECH_IP6;
	size_t n = len;
	const char *slash = memchr(arg, '/', len);
	char buf[64];

	if (slash != NULL) {
		n = (size_t)(slash - arg);
		int v = parse_cidr(slash + 1, len - n - 1, v6 ? 128 : 32);
		if (v < 0) {
			*error_r = "bad CIDR length";
			return -1;
		}
		if (v6)
			t->cidr6 = v;
		else
			t->cidr4 = v;
	}
	if (n == 0 || n >= sizeof(buf)) {
		*error_r = "bad ip4/ip6 network";
		return -1;
	}
	memcpy(buf, arg, n);
	buf[n] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, t->net) != 1) {
		*error_r = "bad ip4/ip6 network";
		return -1;
	}
	return 0;
}

/* A mechanism term after its qualifier. */
static int
parse_mechanism(const char *s, size_t len, struct spf_term *t, const char **error_r)
{
	size_t nlen = 0;
	while (nlen < len && s[nlen] != ':' && s[nlen] != '/')
		nlen++;
	size_t i;
	for (i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++)
		if (strlen(mech_names[i].name) == nlen &&
		    strncasecmp(mech_names[i].name, s, nlen) == 0)
			break;
	if (i == sizeof(mech_names) / sizeof(mech_names[0])) {
		*error_r = "unknown mechanism";
		return -1;
	}
	t->mech = mech_names[i].mech;
	t->cidr4 = 32;
	t->cidr6 = 128;
	const char *rest = s + nlen;
	size_t rlen = len - nlen;
	bool colon = rlen > 0 && rest[0] == ':';
	if (colon) {
		rest++;
		rlen--;
	}

	switch (t->mech) {
	case SPF_MECH_ALL:
		if (rlen == 0 && !colon)
			return 0;
		break;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		if (colon)
			return parse_ip_net(rest, rlen, t, error_r);
		break;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (colon && domain_spec_ok(rest, rlen)) {
			t->domain_spec = strndup(rest, rlen);
			return t->domain_spec ? 0 : (*error_r = "out of memory", -1);
		}
		break;
	case SPF_MECH_A:
	case SPF_MECH_MX:
	case SPF_MECH_PTR:
		if (t->mech != SPF_MECH_PTR && take_dual_cidr(rest, &rlen, t) < 0) {
			*error_r = "bad CIDR length";
			return -1;
		}
		if (!colon && rlen == 0)
			return 0;
		if (colon && domain_spec_ok(rest, rlen)) {
			t->domain_spec = strndup(rest, rlen);
			return t->domain_spec ? 0 : (*error_r = "out of memory", -1);
		}
		break;
	}
	*error_r = "malformed mechanism";
	return -1;
}

/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ); length, or 0. */
static size_t
modifier_name_len(const char *s, size_t len)
{
	if (len == 0 || !isalpha((unsigned char)s[0]))
		return 0;
	size_t i = 1;
	while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '-' ||
	    s[i] == '_' || s[i] == '.'))
		i++;
	return i < len && s[i] == '=' ? i : 0;
}

static int
parse_modifier(struct spf_record *rec, const char *s, size_t nlen, size_t len,
    const char **error_r)
{
	const char *val = s + nlen + 1;
	size_t vlen = len - nlen - 1;
	char **slot = NULL;

	if (nlen == 8 && strncasecmp(s, "redirect", 8) == 0)
		slot = &rec->redirect;
	else if (nlen == 3 && strncasecmp(s, "exp", 3) == 0)
		slot = &rec->exp;
	if (slot == NULL) {
		if (!macro_syntax_ok(val, vlen)) {
			*error_r = "bad macro in unknown modifier";
			return -1;
		}
		return 0;	/* unknown modifiers are ignored (6) */
	}
	if (*slot != NULL) {
		*error_r = "redirect or exp given twice";
		return -1;
	}
	if (!domain_spec_ok(val, vlen)) {
		*error_r = "bad domain-spec in redirect or exp";
		return -1;
	}
	*slot = strndup(val, vlen);
	return *slot ? 0 : (*error_r = "out of memory", -1);
}

static int
parse_term(struct spf_record *rec, const char *s, size_t len, const char **error_r)
{
	size_t nlen = modifier_name_len(s, len);

	if (nlen > 0)
		return parse_modifier(rec, s, nlen, len, error_r);
	struct spf_term *t = &rec->terms[rec->count];
	memset(t, 0, sizeof(*t));
	t->qualifier = '+';
	if (strchr("+-~?", s[0]) != NULL) {
		t->qualifier = s[0];
		s++;
		len--;
	}
	if (parse_mechanism(s, len, t, error_r) < 0) {
		free(t->domain_spec);
		return -1;
	}
	rec->count++;
	return 0;
}

int
spf_record_parse(const char *text, struct spf_record **rec_r, const char **error_r)
{
	if (!spf_is_v1(text)) {
		*error_r = "not an SPF version 1 record";
		return -1;
	}
	const char *p = text + 6;
	size_t max_terms = 0;
	for (const char *q = p; *q != '\0'; q++)
		max_terms += *q == ' ';
	struct spf_record *rec = calloc(1, sizeof(*rec));
	if (rec == NULL || (max_terms > 0 &&
	    (rec->terms = calloc(max_terms, sizeof(*rec->terms))) == NULL)) {
		free(rec);
		*error_r = "out of memory";
		return -1;
	}
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ");
		if (len == 0)
			break;
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c < 0x21 || c > 0x7e) {
				*error_r = "control or non-ASCII character";
				spf_record_free(rec);
				return -1;
			}
		}
		if (parse_term(rec, p, len, error_r) < 0) {
			spf_record_free(rec);
			return -1;
		}
		p += len;
	}
	*rec_r = rec;
	return 0;
}
