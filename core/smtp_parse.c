/*
 * core/smtp_parse.c - SMTP command parsing (see smtp_parse.h).
 *
 * Address syntax is checked to RFC 5321 4.1.2 closely enough to refuse
 * what could hurt later stages (CR, LF, NUL, spaces, control characters,
 * unbalanced quotes), while accepting the addresses real clients send.
 * Limits from RFC 5321 4.5.3.1: local part 64, domain 255, path 256.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_parse.h"

static const struct { const char *name; enum smtp_verb verb; } verbs[] = {
	{ "HELO", SMTP_HELO }, { "EHLO", SMTP_EHLO }, { "MAIL", SMTP_MAIL },
	{ "RCPT", SMTP_RCPT }, { "DATA", SMTP_DATA }, { "BDAT", SMTP_BDAT },
	{ "RSET", SMTP_RSET }, { "NOOP", SMTP_NOOP }, { "QUIT", SMTP_QUIT },
	{ "VRFY", SMTP_VRFY }, { "EXPN", SMTP_EXPN }, { "HELP", SMTP_HELP },
	{ "STARTTLS", SMTP_STARTTLS }, { "AUTH", SMTP_AUTH },
};

void
smtp_parse_command(const char *line, struct smtp_cmd *cmd)
{
	size_t len = strcspn(line, " ");

	cmd->verb = SMTP_UNKNOWN;
	cmd->arg = line + len;
	while (*cmd->arg == ' ')
		cmd->arg++;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i].name) == len &&
		    strncasecmp(verbs[i].name, line, len) == 0) {
			cmd->verb = verbs[i].verb;
			return;
		}
}

static int
atext(int c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
	    c >= 0x80;	/* SMTPUTF8 (RFC 6531) */
}

/* Dot-atom or quoted-string; returns length consumed, 0 on error. */
static size_t
local_part_len(const char *s)
{
	const char *p = s;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\') {
				p++;
				if (*p < 0x20 && *p != '\t')
					return 0;
			} else if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return 0;
		}
		return *p == '"' ? (size_t)(p + 1 - s) : 0;
	}
	for (;;) {
		const char *start = p;
		while (atext((unsigned char)*p))
			p++;
		if (p == start)
			return 0;
		if (*p != '.')
			break;
		p++;
	}
	return (size_t)(p - s);
}

/* Domain or [address literal]; returns length consumed, 0 on error. */
static size_t
domain_len(const char *s)
{
	const char *p = s;

	if (*p == '[') {
		for (p++; *p && *p != ']'; p++)
			if ((unsigned char)*p <= 0x20 || *p == '[' || *p == '\\')
				return 0;
		return *p == ']' ? (size_t)(p + 1 - s) : 0;
	}
	for (;;) {
		const char *start = p;
		while (isalnum((unsigned char)*p) || *p == '-' ||
		    (unsigned char)*p >= 0x80)
			p++;
		if (p == start || start[0] == '-' || p[-1] == '-')
			return 0;
		if (*p != '.')
			break;
		p++;
	}
	return (size_t)(p - s);
}

/* Skip an RFC 5321 source route "@a,@b:" (to be ignored, 4.1.1.3). */
static const char *
skip_source_route(const char *p)
{
	if (*p != '@')
		return p;
	while (*p == '@') {
		size_t n = domain_len(p + 1);
		if (n == 0)
			return NULL;
		p += 1 + n;
		if (*p == ',')
			p++;
		else if (*p == ':')
			return p + 1;
		else
			return NULL;
	}
	return NULL;
}

static enum smtp_path_result
parse_mailbox(const char *p, size_t len, char *addr, size_t addrsize)
{
	size_t l = local_part_len(p), d;

	if (l == 0 || l >= len || p[l] != '@')
		return SMTP_PATH_SYNTAX;
	d = domain_len(p + l + 1);
	if (d == 0 || l + 1 + d != len)
		return SMTP_PATH_SYNTAX;
	if (l > 64 || d > 255 || len >= addrsize)
		return SMTP_PATH_TOO_LONG;
	memcpy(addr, p, len);
	addr[len] = '\0';
	return SMTP_PATH_OK;
}

enum smtp_path_result
smtp_parse_path(const char *arg, const char *keyword, int allow_empty,
    char *addr, size_t addrsize, const char **params_r)
{
	size_t klen = strlen(keyword);
	const char *p = arg, *close;
	enum smtp_path_result r;

	if (strncasecmp(p, keyword, klen) != 0 || p[klen] != ':')
		return SMTP_PATH_SYNTAX;
	p += klen + 1;
	if (*p == ' ')
		p++;
	if (*p != '<')
		return SMTP_PATH_SYNTAX;
	p++;
	close = strchr(p, '>');
	if (close == NULL)
		return SMTP_PATH_SYNTAX;
	if (close - p > 256)
		return SMTP_PATH_TOO_LONG;
	if (close == p) {
		if (!allow_empty)
			return SMTP_PATH_SYNTAX;
		addr[0] = '\0';
		r = SMTP_PATH_OK;
	} else {
		const char *mb = skip_source_route(p);
		if (mb == NULL || mb >= close)
			return SMTP_PATH_SYNTAX;
		r = parse_mailbox(mb, (size_t)(close - mb), addr, addrsize);
	}
	if (r != SMTP_PATH_OK)
		return r;
	p = close + 1;
	if (*p != '\0' && *p != ' ')
		return SMTP_PATH_SYNTAX;
	while (*p == ' ')
		p++;
	*params_r = p;
	return SMTP_PATH_OK;
}

static int
param_size(const char *val, struct smtp_mail_params *p)
{
	char *end;

	if (val == NULL || !isdigit((unsigned char)*val) || strlen(val) > 20)
		return -1;
	errno = 0;
	p->size = strtoll(val, &end, 10);
	if (errno == ERANGE)
		p->size = (long long)(~0ULL >> 1);
	return *end == '\0' ? 0 : -1;
}

int
smtp_xtext_valid(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '+') {
			if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]) ||
			    islower((unsigned char)s[1]) || islower((unsigned char)s[2]))
				return 0;
			s += 2;
		} else if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

static int
copy_value(char *dst, size_t size, const char *val)
{
	if (val == NULL || val[0] == '\0' || strlen(val) >= size)
		return -1;
	strcpy(dst, val);
	return 0;
}

static int
one_param(char *kv, struct smtp_mail_params *p)
{
	char *eq = strchr(kv, '=');
	const char *val = NULL;

	if (eq) {
		*eq = '\0';
		val = eq + 1;
	}
	if (strcasecmp(kv, "SIZE") == 0)
		return param_size(val, p);
	if (strcasecmp(kv, "RET") == 0) {
		if (val == NULL || (strcasecmp(val, "FULL") != 0 &&
		    strcasecmp(val, "HDRS") != 0) || p->ret[0])
			return -1;
		snprintf(p->ret, sizeof(p->ret), "%s", val);
		for (char *c = p->ret; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		return 0;
	}
	if (strcasecmp(kv, "ENVID") == 0)
		return val && smtp_xtext_valid(val) && !p->envid[0] ?
		    copy_value(p->envid, sizeof(p->envid), val) : -1;
	if (strcasecmp(kv, "AUTH") == 0)	/* RFC 4954 5: accepted, not trusted */
		return val && (strcmp(val, "<>") == 0 || smtp_xtext_valid(val)) ? 0 : -1;
	if (strcasecmp(kv, "BODY") == 0) {
		if (val && strcasecmp(val, "8BITMIME") == 0)
			p->body_8bit = 1;
		else if (!val || strcasecmp(val, "7BIT") != 0)
			return -1;
		return 0;
	}
	if (strcasecmp(kv, "SMTPUTF8") == 0 && val == NULL) {
		p->smtputf8 = 1;
		return 0;
	}
	return -1;
}

/* Call one() on each space-separated KEY[=VALUE]; on the first refusal
 * copy its keyword to bad. 0 or -1. */
static int
each_param(const char *params, char *bad, size_t badsize,
    int (*one)(char *kv, void *p), void *p)
{
	char buf[1024], *save = NULL;
	size_t len = strlen(params);

	bad[0] = '\0';
	if (len >= sizeof(buf)) {
		snprintf(bad, badsize, "(too long)");
		return -1;
	}
	memcpy(buf, params, len + 1);
	for (char *tok = strtok_r(buf, " ", &save); tok;
	    tok = strtok_r(NULL, " ", &save)) {
		char copy[128];
		snprintf(copy, sizeof(copy), "%s", tok);
		if (one(tok, p) < 0) {
			copy[strcspn(copy, "=")] = '\0';
			snprintf(bad, badsize, "%s", copy);
			return -1;
		}
	}
	return 0;
}

static int
mail_param(char *kv, void *p)
{
	return one_param(kv, p);
}

int
smtp_parse_mail_params(const char *params, struct smtp_mail_params *p,
    char *bad, size_t badsize)
{
	memset(p, 0, sizeof(*p));
	p->size = -1;
	return each_param(params, bad, badsize, mail_param, p);
}

static int
notify_valid(const char *val)
{
	char buf[40], *save = NULL;
	int never = 0, other = 0;

	if (val == NULL || strlen(val) >= sizeof(buf))
		return 0;
	strcpy(buf, val);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(t, "NEVER") == 0)
			never++;
		else if (strcasecmp(t, "SUCCESS") == 0 || strcasecmp(t, "FAILURE") == 0 ||
		    strcasecmp(t, "DELAY") == 0)
			other++;
		else
			return 0;
	}
	return (never == 1 && other == 0) || (never == 0 && other > 0);
}

static int
one_rcpt_param(char *kv, struct smtp_rcpt_params *p)
{
	char *eq = strchr(kv, '=');
	const char *val = eq ? eq + 1 : NULL;

	if (eq)
		*eq = '\0';
	if (strcasecmp(kv, "NOTIFY") == 0 && !p->notify[0] && notify_valid(val)) {
		copy_value(p->notify, sizeof(p->notify), val);
		for (char *c = p->notify; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		return 0;
	}
	if (strcasecmp(kv, "ORCPT") == 0 && !p->orcpt[0] && val &&
	    strchr(val, ';') && smtp_xtext_valid(strchr(val, ';') + 1))
		return copy_value(p->orcpt, sizeof(p->orcpt), val);
	return -1;
}

static int
rcpt_param(char *kv, void *p)
{
	return one_rcpt_param(kv, p);
}

int
smtp_parse_rcpt_params(const char *params, struct smtp_rcpt_params *p,
    char *bad, size_t badsize)
{
	memset(p, 0, sizeof(*p));
	return each_param(params, bad, badsize, rcpt_param, p);
}

int
smtp_split_address(const char *addr, char *local, size_t lsize,
    char *domain, size_t dsize)
{
	const char *at = strrchr(addr, '@');
	size_t llen;

	if (at == NULL || at == addr || at[1] == '\0')
		return -1;
	llen = (size_t)(at - addr);
	if (llen >= lsize || strlen(at + 1) >= dsize)
		return -1;
	memcpy(local, addr, llen);
	local[llen] = '\0';
	strcpy(domain, at + 1);
	return 0;
}
