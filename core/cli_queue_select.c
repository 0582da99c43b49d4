/*
 * core/cli_queue_select.c - queue list filters, delete patterns and
 * the JSON form of a queued message (see cli_queue_select.h).
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli_queue_select.h"
#include "util.h"

static int
option_value(int argc, char **argv, int *i, const char **val_r)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "merpati: queue: %s needs a value\n", argv[*i]);
		return -1;
	}
	*val_r = argv[++*i];
	return 1;
}

int
qfilter_option(struct qfilter *f, const char *allowed, int argc, char **argv,
    int *i, int *json)
{
	static const struct { char letter; const char *name; } names[] = {
		{ 'd', "--domain" }, { 'o', "--older-than" }, { 'D', "--deferred" },
		{ 'H', "--held" }, { 's', "--sender" }, { 'r', "--recipient" },
		{ 'j', "--json" },
	};
	const char *arg = argv[*i], *val;
	char letter = 0;

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (strcmp(arg, names[k].name) == 0 && strchr(allowed, names[k].letter))
			letter = names[k].letter;
	switch (letter) {
	case 'D': f->deferred = 1; return 1;
	case 'H': f->held = 1; return 1;
	case 'j': *json = 1; return 1;
	case 'd': return option_value(argc, argv, i, &f->domain);
	case 's': return option_value(argc, argv, i, &f->sender);
	case 'r': return option_value(argc, argv, i, &f->recipient);
	case 'o':
		if (option_value(argc, argv, i, &val) < 0)
			return -1;
		if (mp_parse_duration(val, &f->older_than) < 0 || f->older_than < 0) {
			fprintf(stderr, "merpati: queue: --older-than %s: not a duration "
			    "(like 90s, 30m, 1h, 2d)\n", val);
			return -1;
		}
		return 1;
	default:
		return 0;
	}
}

static int
domain_is(const char *addr, const char *domain)
{
	const char *at = strrchr(addr, '@');

	return at && strcasecmp(at + 1, domain) == 0;
}

/* "<>" or "" stands for the null sender. */
static int
sender_matches(const char *pattern, const char *sender)
{
	if (strcmp(pattern, "<>") == 0 || pattern[0] == '\0')
		return sender[0] == '\0';
	return fnmatch(pattern, sender, FNM_CASEFOLD) == 0;
}

static int
any_pending(const struct mp_qmsg *m, const char *domain, const char *glob)
{
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (m->done[i])
			continue;
		if (domain && !domain_is(m->rcpts[i], domain))
			continue;
		if (glob && fnmatch(glob, m->rcpts[i], FNM_CASEFOLD) != 0)
			continue;
		return 1;
	}
	return 0;
}

int
qfilter_match(const struct qfilter *f, const struct mp_qmsg *m, time_t now)
{
	if (f->held && !m->held)
		return 0;
	if (f->deferred && (m->held || m->attempts == 0))
		return 0;
	if (f->older_than > 0 && now - m->arrival < f->older_than)
		return 0;
	if (f->sender && !sender_matches(f->sender, m->sender))
		return 0;
	if ((f->domain || f->recipient) && !any_pending(m, f->domain, f->recipient))
		return 0;
	return 1;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 :
	    s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : 0;

	for (size_t k = 1; k < n; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	return n;
}

/* A JSON string (RFC 8259); bytes that are not UTF-8 become U+FFFD. */
static void
json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	fputc('"', out);
	while (*p) {
		size_t n;
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p++);
		else if (*p < 0x20 || *p == 0x7F)
			fprintf(out, "\\u%04x", *p++);
		else if (*p < 0x80)
			fputc(*p++, out);
		else if ((n = utf8_len(p)) > 0) {
			fwrite(p, 1, n, out);
			p += n;
		} else {
			fputs("\\ufffd", out);
			p++;
		}
	}
	fputc('"', out);
}

static void
json_field(FILE *out, const char *name, const char *value)
{
	fprintf(out, "\"%s\": ", name);
	json_string(out, value);
	fputs(", ", out);
}

void
qmsg_json(FILE *out, const struct mp_qmsg *m, time_t now)
{
	fputs("{", out);
	json_field(out, "id", m->id);
	fprintf(out, "\"arrival\": %lld, \"age\": %lld, \"size\": %lld, ",
	    (long long)m->arrival, (long long)(now - m->arrival), (long long)m->size);
	json_field(out, "sender", m->sender);
	json_field(out, "client", m->client);
	json_field(out, "helo", m->helo);
	json_field(out, "auth_user", m->auth_user);
	fputs("\"recipients\": [", out);
	for (size_t i = 0; i < m->nrcpt; i++) {
		fputs(i ? ", {" : "{", out);
		json_field(out, "address", m->rcpts[i]);
		json_field(out, "route", m->relay && m->relay[i] ? m->relay[i] : "");
		fprintf(out, "\"done\": %s}", m->done[i] ? "true" : "false");
	}
	fprintf(out, "], \"attempts\": %u, \"last_attempt\": %lld, "
	    "\"next_attempt\": %lld, ", m->attempts, (long long)m->last_attempt,
	    (long long)m->next_attempt);
	json_field(out, "last_error", m->last_error);
	fprintf(out, "\"held\": %s, ", m->held ? "true" : "false");
	json_field(out, "hold_reason", m->held ? m->hold_reason : "");
	fprintf(out, "\"requeue_pending\": %s}", m->reroute ? "true" : "false");
}
