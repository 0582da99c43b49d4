/*
 * modules/imap/imap_address.c - RFC 5322 address lists (3.4) for ENVELOPE
 * and SEARCH: name-addr and bare addr-spec, display names (quoted
 * strings unquoted, RFC 2047 encoded words left as they are), a comment
 * after a bare address taken as its name ("u@d (Real Name)", as Dovecot
 * shows it), groups ("g: a@b, c@d;" and the empty "g:;"), and the
 * obsolete syntax of RFC 5322 4.4: source routes ("<@r1,@r2:u@d>"),
 * comments and white space between the parts of an address.
 *
 * It never fails: what does not parse is skipped up to the next comma
 * (or the ';' closing a group). Every octet is looked at a bounded
 * number of times, comments are skipped without recursion, and at most
 * IMAP_ADDR_MAX addresses are reported, so hostile input costs linear
 * time and one allocation of four times its length.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"

struct lexer {
	const char *p, *end;
};

/* One output string; cap is enough for any part taken from the input. */
struct str {
	char *s;
	size_t n, cap;
	int set;		/* for a comment: one was seen */
};

struct ctx {
	struct lexer lx;
	struct str name, route, mailbox, host;
	int has_host;
	size_t count;
	void (*each)(void *arg, const struct imap_addr *a);
	void *arg;
};

static void
add(struct str *s, char c)
{
	if (s->n + 1 < s->cap)
		s->s[s->n++] = c;
}

static const char *
text(struct str *s)
{
	s->s[s->n] = '\0';
	return s->s;
}

static int
more(const struct lexer *lx)
{
	return lx->p < lx->end;
}

static char
peek(const struct lexer *lx)
{
	return more(lx) ? *lx->p : '\0';
}

/* RFC 5322 3.2.3 atext, and UTF-8 octets (RFC 6532). */
static int
atext(unsigned char c)
{
	return c >= 0x80 || isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int
space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A comment at '(' (nested ones kept as text in it); its text goes to
 * out when out is given. */
static void
read_comment(struct lexer *lx, struct str *out)
{
	int depth = 0;

	do {
		char c = *lx->p++;
		if (c == '\\' && more(lx))
			c = *lx->p++;
		else if (c == '(' && depth++ == 0)
			continue;
		else if (c == ')' && --depth == 0)
			break;
		if (out && c != '\r' && c != '\n')
			add(out, c);
	} while (more(lx));
	if (out) {
		while (out->n && space(out->s[out->n - 1]))
			out->n--;
		size_t lead = 0;
		while (lead < out->n && space(out->s[lead]))
			lead++;
		memmove(out->s, out->s + lead, out->n - lead);
		out->n -= lead;
		out->set = 1;
	}
}

/* White space and comments; the first comment's text goes to comment
 * when it is given and has none yet. */
static void
skip_cfws(struct lexer *lx, struct str *comment)
{
	for (;;) {
		while (more(lx) && space(*lx->p))
			lx->p++;
		if (peek(lx) != '(')
			return;
		read_comment(lx, comment && !comment->set ? comment : NULL);
	}
}

/* A quoted string at '"', unquoted into out (folds removed). */
static void
read_quoted(struct lexer *lx, struct str *out)
{
	for (lx->p++; more(lx); lx->p++) {
		char c = *lx->p;
		if (c == '"') {
			lx->p++;
			return;
		}
		if (c == '\\' && lx->p + 1 < lx->end)
			c = *++lx->p;
		else if (c == '\r' || c == '\n')
			continue;
		add(out, c);
	}
}

static void
read_atom(struct lexer *lx, struct str *out, int dots)
{
	while (more(lx) && (atext((unsigned char)*lx->p) || (dots && *lx->p == '.')))
		add(out, *lx->p++);
}

/* A phrase (display name): words joined by one space; dots allowed
 * (obs-phrase, "John Q. Public"). Returns the number of words. */
static int
parse_phrase(struct lexer *lx, struct str *out)
{
	int words = 0;

	for (;;) {
		skip_cfws(lx, NULL);
		char c = peek(lx);
		if (c != '"' && c != '.' && !atext((unsigned char)c))
			return words;
		if (words++)
			add(out, ' ');
		if (c == '"')
			read_quoted(lx, out);
		else
			read_atom(lx, out, 1);
	}
}

/* local-part: words and dots, CFWS between them dropped (obs-local-part);
 * stops before trailing CFWS. Returns the number of words. */
static int
parse_local(struct lexer *lx, struct str *out)
{
	int words = 0;

	for (;;) {
		const char *save = lx->p;
		skip_cfws(lx, NULL);
		char c = peek(lx);
		if (c == '"')
			read_quoted(lx, out);
		else if (atext((unsigned char)c))
			read_atom(lx, out, 0);
		else if (c == '.' && words) {
			add(out, *lx->p++);
			continue;
		} else {
			lx->p = save;
			return words;
		}
		words++;
	}
}

/* A domain: atoms joined by dots (CFWS around them dropped) or a
 * [domain literal]; stops before trailing CFWS, so that a comment after
 * the address stays for its name. 1 if one was there. */
static int
parse_domain(struct lexer *lx, struct str *out)
{
	int atoms = 0;

	skip_cfws(lx, NULL);
	if (peek(lx) == '[') {
		while (more(lx) && *lx->p != ']') {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			if (!space(*lx->p))
				add(out, *lx->p);
			lx->p++;
		}
		if (more(lx))
			add(out, *lx->p++);
		return 1;
	}
	for (;;) {
		const char *save = lx->p;
		if (atoms) {	/* a dot must follow for the domain to go on */
			skip_cfws(lx, NULL);
			if (peek(lx) != '.') {
				lx->p = save;
				return 1;
			}
			add(out, *lx->p++);
			skip_cfws(lx, NULL);
		}
		if (!atext((unsigned char)peek(lx)))
			return atoms > 0;
		read_atom(lx, out, 0);
		atoms++;
	}
}

/* local-part ["@" domain]; the domain may be missing. 1, or 0 when
 * there is no local part. */
static int
parse_addr_spec(struct ctx *c)
{
	if (!parse_local(&c->lx, &c->mailbox))
		return 0;
	const char *save = c->lx.p;
	skip_cfws(&c->lx, NULL);
	if (peek(&c->lx) != '@') {
		c->lx.p = save;
		return 1;
	}
	c->lx.p++;
	c->has_host = parse_domain(&c->lx, &c->host);
	return 1;
}

/* obs-route "@r1,@r2:" after '<', kept as "@r1,@r2". 1, or 0 when
 * broken. */
static int
parse_route(struct ctx *c)
{
	for (;;) {
		skip_cfws(&c->lx, NULL);
		char ch = peek(&c->lx);
		if (ch == ',') {
			c->lx.p++;
		} else if (ch == '@') {
			c->lx.p++;
			if (c->route.n)
				add(&c->route, ',');
			add(&c->route, '@');
			if (!parse_domain(&c->lx, &c->route))
				return 0;
		} else if (ch == ':') {
			c->lx.p++;
			return 1;
		} else
			return 0;
	}
}

/* angle-addr at '<': [route] addr-spec ">"; "<>" has neither part. */
static int
parse_angle(struct ctx *c)
{
	c->lx.p++;
	skip_cfws(&c->lx, NULL);
	if (peek(&c->lx) == '@' && !parse_route(c))
		return 0;
	skip_cfws(&c->lx, NULL);
	if (peek(&c->lx) != '>' && !parse_addr_spec(c))
		return 0;
	skip_cfws(&c->lx, NULL);
	if (peek(&c->lx) == '>')
		c->lx.p++;
	else if (more(&c->lx))
		return 0;	/* "<a@b" at the very end is let through */
	return 1;
}

static void
report(struct ctx *c, enum imap_addr_kind kind)
{
	struct imap_addr a = { .kind = kind };

	if (c->count >= IMAP_ADDR_MAX)
		return;
	if (kind == IMAP_ADDR_GROUP)
		a.name = text(&c->name);
	else if (kind == IMAP_ADDR_MAILBOX) {
		a.name = c->name.n ? text(&c->name) : NULL;
		a.route = c->route.n ? text(&c->route) : NULL;
		a.mailbox = c->mailbox.n ? text(&c->mailbox) : NULL;
		a.host = c->has_host && c->host.n ? text(&c->host) : NULL;
	}
	c->each(c->arg, &a);
	c->count++;
}

static void
reset(struct ctx *c)
{
	c->name.n = c->route.n = c->mailbox.n = c->host.n = 0;
	c->name.set = 0;
	c->has_host = 0;
}

/* Past what does not parse: up to the next ',' (or ';' in a group),
 * outside quoted strings and comments; moves at least one octet. */
static void
skip_bad(struct lexer *lx, int in_group)
{
	struct str none = { 0 };

	do {
		char ch = *lx->p;
		if (ch == '"')
			read_quoted(lx, &none);
		else if (ch == '(')
			read_comment(lx, NULL);
		else
			lx->p++;
	} while (more(lx) && *lx->p != ',' && !(in_group && *lx->p == ';'));
}

static int parse_address(struct ctx *c, int in_group);

/* The members of a group after its ':', through the ';'. */
static void
parse_group(struct ctx *c)
{
	report(c, IMAP_ADDR_GROUP);
	c->lx.p++;
	for (;;) {
		skip_cfws(&c->lx, NULL);
		char ch = peek(&c->lx);
		if (!more(&c->lx) || ch == ';')
			break;
		if (ch == ',') {
			c->lx.p++;
			continue;
		}
		const char *before = c->lx.p;
		if (!parse_address(c, 1))
			c->lx.p = before;
		skip_cfws(&c->lx, NULL);
		if (more(&c->lx) && *c->lx.p != ',' && *c->lx.p != ';')
			skip_bad(&c->lx, 1);
	}
	if (more(&c->lx))
		c->lx.p++;	/* the ';' */
	report(c, IMAP_ADDR_GROUP_END);
}

/* One address or group; 1 when reported, 0 when it did not parse. */
static int
parse_address(struct ctx *c, int in_group)
{
	const char *start = c->lx.p;

	reset(c);
	int words = parse_phrase(&c->lx, &c->name);
	skip_cfws(&c->lx, NULL);
	if (peek(&c->lx) == '<') {
		if (!parse_angle(c))
			return 0;
		if (words == 0)	/* "<u@d> (Name)" */
			skip_cfws(&c->lx, &c->name);
		report(c, IMAP_ADDR_MAILBOX);
		return 1;
	}
	if (peek(&c->lx) == ':' && words && !in_group) {
		parse_group(c);
		return 1;
	}
	c->lx.p = start;	/* not a name: a bare addr-spec */
	reset(c);
	if (!parse_addr_spec(c))
		return 0;
	skip_cfws(&c->lx, &c->name);	/* "u@d (Real Name)" */
	report(c, IMAP_ADDR_MAILBOX);
	return 1;
}

size_t
imap_addresses(const char *value, size_t len,
    void (*each)(void *arg, const struct imap_addr *a), void *arg)
{
	struct ctx c = { .lx = { value, value + len }, .each = each, .arg = arg };
	char *scratch = malloc(4 * (len + 1));
	struct str *strs[] = { &c.name, &c.route, &c.mailbox, &c.host };

	if (scratch == NULL)
		return 0;
	for (size_t i = 0; i < 4; i++)
		*strs[i] = (struct str){ scratch + i * (len + 1), 0, len + 1, 0 };
	while (more(&c.lx) && c.count < IMAP_ADDR_MAX) {
		skip_cfws(&c.lx, NULL);
		if (!more(&c.lx))
			break;
		if (*c.lx.p == ',') {
			c.lx.p++;
			continue;
		}
		const char *before = c.lx.p;
		if (!parse_address(&c, 0))
			c.lx.p = before;
		skip_cfws(&c.lx, NULL);
		if (more(&c.lx) && *c.lx.p != ',')
			skip_bad(&c.lx, 0);
	}
	free(scratch);
	return c.count;
}
