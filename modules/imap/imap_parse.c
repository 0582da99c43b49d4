/*
 * modules/imap/imap_parse.c - IMAP command parsing (see imap_parse.h).
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parse.h"

struct cursor {
	const char *p, *end;
	struct imap_cmd *cmd;
	char *out;		/* next free byte in cmd->text */
	int depth;
	const char *why;
};

static struct imap_arg *
new_arg(struct cursor *c)
{
	if (c->cmd->used == IMAP_MAX_ARGS) {
		c->why = "too many arguments";
		return NULL;
	}
	struct imap_arg *a = &c->cmd->pool[c->cmd->used++];
	memset(a, 0, sizeof(*a));
	return a;
}

static const char *
keep(struct cursor *c, const char *s, size_t len)
{
	char *copy = c->out;

	memcpy(copy, s, len);
	copy[len] = '\0';
	c->out += len + 1;
	return copy;
}

static int
atom_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && !strchr("(){ %*\"]", ch);
}

/*
 * Where an atom starting at p ends, or NULL. With sections, a "[...]"
 * (BODY[HEADER.FIELDS (A B)]) belongs to the atom whatever it holds.
 */
static const char *
atom_end(const char *p, const char *end, int sections)
{
	int bracket = 0;

	for (; p < end; p++) {
		unsigned char ch = (unsigned char)*p;
		if (sections && ch == '[')
			bracket++;
		else if (sections && ch == ']' && bracket > 0)
			bracket--;
		else if (bracket && (ch == '\r' || ch == '\n'))
			return NULL;
		else if (!bracket && !atom_char(ch) && ch != '*' && ch != '%')
			break;
	}
	return bracket ? NULL : p;
}

/* An atom (list wildcards included, for LIST patterns). A '[' that is
 * never closed is an ordinary ATOM-CHAR (RFC 3501 9), as in a mailbox
 * named "a[b": the command then fails on the name, not on syntax. */
static int
parse_atom(struct cursor *c, struct imap_arg *a)
{
	const char *start = c->p, *end = atom_end(c->p, c->end, 1);

	if (end == NULL)
		end = atom_end(c->p, c->end, 0);
	if (end == start) {
		c->why = "unexpected character";
		return -1;
	}
	c->p = end;
	a->type = IMAP_ATOM;
	a->len = (size_t)(end - start);
	a->s = keep(c, start, a->len);
	if (a->len == 3 && strncasecmp(start, "NIL", 3) == 0)
		a->type = IMAP_NIL;
	return 0;
}

static int
parse_quoted(struct cursor *c, struct imap_arg *a)
{
	char *dst = c->out;
	size_t len = 0;

	for (c->p++; c->p < c->end && *c->p != '"'; c->p++) {
		if (*c->p == '\\') {
			if (++c->p >= c->end || (*c->p != '\\' && *c->p != '"')) {
				c->why = "bad escape in quoted string";
				return -1;
			}
		} else if (*c->p == '\r' || *c->p == '\n' || *c->p == '\0') {
			c->why = "line break in quoted string";
			return -1;
		}
		dst[len++] = *c->p;
	}
	if (c->p >= c->end) {
		c->why = "unterminated quoted string";
		return -1;
	}
	c->p++;
	dst[len] = '\0';
	c->out += len + 1;
	a->type = IMAP_STRING;
	a->s = dst;
	a->len = len;
	return 0;
}

static int
parse_literal(struct cursor *c, struct imap_arg *a)
{
	char *end;
	unsigned long long n = strtoull(c->p + 1, &end, 10);

	if (end == c->p + 1 || !isdigit((unsigned char)c->p[1]))
		goto bad;
	if (*end == '+')
		end++;
	if (end + 3 > c->end || end[0] != '}' || end[1] != '\r' || end[2] != '\n')
		goto bad;
	c->p = end + 3;
	if (n > (unsigned long long)(c->end - c->p)) {
		c->why = "literal shorter than announced";
		return -1;
	}
	a->type = IMAP_STRING;
	a->len = (size_t)n;
	a->s = keep(c, c->p, a->len);
	c->p += n;
	return 0;
bad:
	c->why = "bad literal";
	return -1;
}

static int parse_list(struct cursor *c, struct imap_arg *a);

static int
parse_one(struct cursor *c, struct imap_arg *a)
{
	switch (*c->p) {
	case '"': return parse_quoted(c, a);
	case '{': return parse_literal(c, a);
	case '(': return parse_list(c, a);
	default: return parse_atom(c, a);
	}
}

/* Arguments until end or ')'; children are stored contiguously. */
static int
parse_seq(struct cursor *c, struct imap_arg **first, size_t *n, int in_list)
{
	/* Parse into a scratch array first: nested lists use the pool too. */
	struct imap_arg items[IMAP_MAX_ARGS / 4];
	size_t k = 0;

	*first = NULL;
	*n = 0;
	while (c->p < c->end) {
		if (*c->p == ' ') {
			c->p++;
			continue;
		}
		if (*c->p == ')') {
			if (!in_list) {
				c->why = "unexpected )";
				return -1;
			}
			break;
		}
		if (k == sizeof(items) / sizeof(items[0])) {
			c->why = "too many arguments";
			return -1;
		}
		memset(&items[k], 0, sizeof(items[k]));
		if (parse_one(c, &items[k]) < 0)
			return -1;
		k++;
		if (c->p < c->end && *c->p != ' ' && *c->p != ')') {
			c->why = "missing space between arguments";
			return -1;
		}
	}
	for (size_t i = 0; i < k; i++) {
		struct imap_arg *a = new_arg(c);
		if (a == NULL)
			return -1;
		*a = items[i];
		if (i == 0)
			*first = a;
	}
	*n = k;
	return 0;
}

static int
parse_list(struct cursor *c, struct imap_arg *a)
{
	if (++c->depth > IMAP_MAX_DEPTH) {
		c->why = "lists nested too deep";
		return -1;
	}
	c->p++;
	a->type = IMAP_LIST;
	a->s = "";	/* never read as text, but safe if it is */
	a->len = 0;
	if (parse_seq(c, &a->list, &a->nlist, 1) < 0)
		return -1;
	if (c->p >= c->end || *c->p != ')') {
		c->why = "unterminated list";
		return -1;
	}
	c->p++;
	c->depth--;
	return 0;
}

static int
word(struct cursor *c, char *out, size_t size)
{
	size_t n = 0;

	while (c->p < c->end && atom_char((unsigned char)*c->p) && n + 1 < size)
		out[n++] = (char)toupper((unsigned char)*c->p++);
	out[n] = '\0';
	if (n == 0 || (c->p < c->end && *c->p != ' '))
		return -1;
	if (c->p < c->end)
		c->p++;
	return 0;
}

int
imap_parse(const char *buf, size_t len, struct imap_cmd *cmd, const char **why)
{
	struct cursor c = { buf, buf + len, cmd, NULL, 0, NULL };
	size_t t = 0;

	memset(cmd->tag, 0, sizeof(cmd->tag));
	cmd->name[0] = '\0';
	cmd->args = NULL;
	cmd->nargs = 0;
	cmd->used = 0;
	cmd->text = malloc(len * 2 + 16);
	if (cmd->text == NULL) {
		*why = "out of memory";
		return -1;
	}
	c.out = cmd->text;
	while (c.p < c.end && *c.p != ' ' && t + 1 < sizeof(cmd->tag) &&
	    atom_char((unsigned char)*c.p) && *c.p != '+')
		cmd->tag[t++] = *c.p++;
	if (t == 0 || c.p >= c.end || *c.p != ' ') {
		memset(cmd->tag, 0, sizeof(cmd->tag));
		*why = "missing or bad tag";
		return -1;
	}
	c.p++;
	if (word(&c, cmd->name, sizeof(cmd->name)) < 0) {
		*why = "missing or bad command";
		return -1;
	}
	if (strcmp(cmd->name, "UID") == 0) {
		char sub[16];
		if (word(&c, sub, sizeof(sub)) < 0) {
			*why = "UID needs a command";
			return -1;
		}
		snprintf(cmd->name, sizeof(cmd->name), "UID %s", sub);
	}
	if (parse_seq(&c, &cmd->args, &cmd->nargs, 0) < 0) {
		*why = c.why ? c.why : "syntax error";
		return -1;
	}
	return 0;
}

void
imap_cmd_free(struct imap_cmd *cmd)
{
	free(cmd->text);
	cmd->text = NULL;
}

void
imap_tag_of(const char *line, size_t len, char *tag, size_t size)
{
	size_t t = 0;

	while (t < len && t + 1 < size && line[t] != '+' &&
	    atom_char((unsigned char)line[t]))
		t++;
	if (t == 0 || t == len || line[t] != ' ')
		t = 0;
	memcpy(tag, line, t);
	if (t == 0 && size > 1)
		tag[t++] = '*';
	tag[t] = '\0';
}

long long
imap_literal_size(const char *line, size_t len, int *plus)
{
	size_t i;

	*plus = 0;
	if (len < 3 || line[len - 1] != '}')
		return -1;
	i = len - 2;
	if (line[i] == '+') {
		*plus = 1;
		i--;
	}
	size_t digits_end = i + 1;
	while (i > 0 && isdigit((unsigned char)line[i]))
		i--;
	if (line[i] != '{' || i + 1 == digits_end)
		return -1;
	if (digits_end - i - 1 > 12)
		return LLONG_MAX;
	return strtoll(line + i + 1, NULL, 10);
}

static int
number(const char **p, uint32_t max, uint32_t *v)
{
	char *end;
	unsigned long n;

	if (**p == '*') {
		(*p)++;
		*v = max;
		return 0;
	}
	if (!isdigit((unsigned char)**p) || **p == '0')
		return -1;
	n = strtoul(*p, &end, 10);
	if (n > 0xffffffffUL || end - *p > 10)
		return -1;
	*p = end;
	*v = (uint32_t)n;
	return 0;
}

int
imap_seqset(const char *s, uint32_t max, struct imap_range *out, size_t max_ranges,
    size_t *n_r)
{
	const char *p = s;

	*n_r = 0;
	for (;;) {
		uint32_t lo, hi;
		if (number(&p, max, &lo) < 0)
			return -1;
		hi = lo;
		if (*p == ':' && (p++, number(&p, max, &hi) < 0))
			return -1;
		if (*n_r == max_ranges)
			return -1;
		out[*n_r].lo = lo < hi ? lo : hi;
		out[*n_r].hi = lo < hi ? hi : lo;
		(*n_r)++;
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			return -1;
	}
}

int
imap_in_set(const struct imap_range *r, size_t n, uint32_t value)
{
	for (size_t i = 0; i < n; i++)
		if (value >= r[i].lo && value <= r[i].hi)
			return 1;
	return 0;
}

void
imap_quote(const char *s, char *out, size_t size)
{
	size_t o = 0;
	int literal = 0;

	for (const char *p = s; *p; p++)
		if (*p == '\r' || *p == '\n' || (unsigned char)*p >= 0x80)
			literal = 1;
	if (literal) {
		snprintf(out, size, "{%zu}\r\n%s", strlen(s), s);
		return;
	}
	if (size < 3) {
		if (size)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (const char *p = s; *p && o + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o++] = '"';
	out[o] = '\0';
}
