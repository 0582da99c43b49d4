/*
 * modules/dmarc/dmarc_record.c - the DMARC record parser (RFC 7489 6.3,
 * 6.4): a tag=value list separated by ";" with optional whitespace,
 * "v=DMARC1" first. Unknown tags are ignored; an invalid value falls
 * back to the tag's default, except p= (see dmarc.h). Pure, no DNS.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmarc.h"

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? "reject" :
	    p == DMARC_POLICY_QUARANTINE ? "quarantine" : "none";
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* [s, s+len) without leading and trailing WSP. */
static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && is_wsp(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_wsp((*s)[*len - 1]))
		(*len)--;
}

static bool
equals(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

bool
dmarc_is_v1(const char *text)
{
	const char *p = text;

	while (is_wsp(*p))
		p++;
	if (*p != 'v' && *p != 'V')
		return false;
	p++;
	while (is_wsp(*p))
		p++;
	if (*p++ != '=')
		return false;
	while (is_wsp(*p))
		p++;
	if (strncmp(p, "DMARC1", 6) != 0)
		return false;
	p += 6;
	while (is_wsp(*p))
		p++;
	return *p == '\0' || *p == ';';
}

static int
parse_policy(const char *v, size_t len, enum dmarc_policy *p)
{
	if (equals(v, len, "none"))
		*p = DMARC_POLICY_NONE;
	else if (equals(v, len, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (equals(v, len, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* 1*DIGIT no larger than max; -1 otherwise. */
static long
parse_number(const char *v, size_t len, unsigned long max)
{
	unsigned long n = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		n = n * 10 + (unsigned long)(v[i] - '0');
	}
	return n <= max ? (long)n : -1;
}

/* rua/ruf: a comma-separated list of URIs; at least one must have a
 * scheme ("mailto:" etc.) to count as valid (6.4, RFC 3986). */
static bool
uri_list_valid(const char *v, size_t len)
{
	const char *colon = memchr(v, ':', len);

	return colon != NULL && colon > v && isalpha((unsigned char)v[0]);
}

static void
set_string(char **slot, const char *v, size_t len)
{
	free(*slot);
	*slot = strndup(v, len);
}

static void
apply_tag(struct dmarc_record *rec, const char *tag, size_t tlen,
    const char *v, size_t vlen, bool *sp_seen)
{
	long n;

	if (equals(tag, tlen, "p")) {
		rec->p_valid = parse_policy(v, vlen, &rec->p) == 0;
	} else if (equals(tag, tlen, "sp")) {
		*sp_seen = parse_policy(v, vlen, &rec->sp) == 0;
	} else if (equals(tag, tlen, "pct")) {
		if ((n = parse_number(v, vlen, 100)) >= 0)
			rec->pct = (int)n;
	} else if (equals(tag, tlen, "adkim") || equals(tag, tlen, "aspf")) {
		bool *strict = tlen == 5 ? &rec->adkim_strict : &rec->aspf_strict;
		if (equals(v, vlen, "s") || equals(v, vlen, "r"))
			*strict = equals(v, vlen, "s");
	} else if (equals(tag, tlen, "rua")) {
		if (uri_list_valid(v, vlen))
			set_string(&rec->rua, v, vlen);
	} else if (equals(tag, tlen, "ruf")) {
		if (uri_list_valid(v, vlen))
			set_string(&rec->ruf, v, vlen);
	} else if (equals(tag, tlen, "fo")) {
		set_string(&rec->fo, v, vlen);
	} else if (equals(tag, tlen, "rf")) {
		set_string(&rec->rf, v, vlen);
	} else if (equals(tag, tlen, "ri")) {
		if ((n = parse_number(v, vlen, 0xffffffffUL)) >= 0)
			rec->ri = (unsigned long)n;
	}
}

void
dmarc_record_clear(struct dmarc_record *rec)
{
	free(rec->rua);
	free(rec->ruf);
	free(rec->fo);
	free(rec->rf);
	memset(rec, 0, sizeof(*rec));
}

int
dmarc_record_parse(const char *text, struct dmarc_record *rec, const char **error_r)
{
	bool sp_seen = false;

	memset(rec, 0, sizeof(*rec));
	rec->pct = 100;
	rec->ri = 86400;
	if (!dmarc_is_v1(text)) {
		*error_r = "not a DMARC1 record";
		return -1;
	}
	const char *p = strchr(text, ';');
	while (p != NULL && *p == ';') {
		p++;
		size_t len = strcspn(p, ";");
		const char *eq = memchr(p, '=', len);
		if (eq != NULL) {
			const char *tag = p, *v = eq + 1;
			size_t tlen = (size_t)(eq - p), vlen = len - tlen - 1;
			trim(&tag, &tlen);
			trim(&v, &vlen);
			apply_tag(rec, tag, tlen, v, vlen, &sp_seen);
		}
		p += len;
	}
	if (!rec->p_valid) {
		if (rec->rua == NULL) {
			dmarc_record_clear(rec);
			*error_r = "no valid p= and no rua=";
			return -1;
		}
		rec->p = DMARC_POLICY_NONE;	/* 6.6.3: act as if p=none */
	}
	if (!sp_seen)
		rec->sp = rec->p;
	return 0;
}
