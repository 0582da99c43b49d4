/*
 * core/sendmail_opts.c - parsing sendmail's command line (see
 * sendmail_opts.h). The table of what is accepted follows Postfix's
 * sendmail(1): options that only tune sendmail 8's own behaviour
 * (-B, -G, -h, -L, -n, -m, -O, -U, -X, and -o/-oe/-od variants) are
 * accepted and ignored, so programs that pass them out of habit work;
 * options asking for something merpati does not do (-bd, -bv, -I,
 * -qR...) are refused with EX_USAGE and a reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "sendmail_headers.h"
#include "sendmail_opts.h"
#include "smtp_parse.h"

/* Option letters taking a value (attached or as the next word). */
static const char with_value[] = "BCFLNORVXbfhor";
/* Flags accepted and ignored, as Postfix does. */
static const char ignored_flags[] = "GUmnx";

static int
usage_error(char *err, size_t errsize, const char *fmt, const char *what)
{
	snprintf(err, errsize, fmt, what);
	return EX_USAGE;
}

/* -N: "never", or a comma list of success, delay, failure (each at
 * most once), stored upper-case as the queue keeps RFC 3461 NOTIFY. */
static int
set_notify(struct sm_opts *o, const char *v)
{
	static const char *const words[] = { "SUCCESS", "DELAY", "FAILURE" };
	char copy[64], *save = NULL;
	unsigned seen = 0;
	size_t len = 0;

	if (strcasecmp(v, "never") == 0) {
		o->notify = "NEVER";
		return 0;
	}
	if (strlen(v) >= sizeof(copy))
		return -1;
	strcpy(copy, v);
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		unsigned i = 0;
		while (i < 3 && strcasecmp(w, words[i]) != 0)
			i++;
		if (i == 3 || (seen & (1u << i)))
			return -1;
		seen |= 1u << i;
		len += (size_t)snprintf(o->notify_buf + len, sizeof(o->notify_buf) - len,
		    "%s%s", len ? "," : "", words[i]);
	}
	if (seen == 0)
		return -1;
	o->notify = o->notify_buf;
	return 0;
}

/* -b: the mode. */
static int
set_mode(struct sm_opts *o, const char *v, char *err, size_t errsize)
{
	if (strcmp(v, "m") == 0)
		o->mode = SM_DELIVER;
	else if (strcmp(v, "p") == 0)
		o->mode = SM_LIST_QUEUE;
	else if (strcmp(v, "s") == 0)
		o->mode = SM_SMTP;
	else if (strcmp(v, "d") == 0)
		return usage_error(err, errsize, "-b%s: run merpatid for a daemon", v);
	else
		return usage_error(err, errsize, "-b%s: not supported "
		    "(-bm, -bp and -bs are)", v);
	return 0;
}

/* -o: only -oi changes anything; -odq keeps the daemon asleep. */
static void
set_o(struct sm_opts *o, const char *v)
{
	if (strcmp(v, "i") == 0)
		o->dot_ends = 0;
	else if (strcmp(v, "dq") == 0)
		o->no_wake = 1;
}

/* -f/-r: "<a@b>" and "<>" are taken as a@b and the null sender. */
static const char *
sender_value(char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

static int
take_value(struct sm_opts *o, char c, char *v, char *err, size_t errsize)
{
	switch (c) {
	case 'C': o->config = v; break;
	case 'F': o->fullname = v; break;
	case 'f': case 'r': o->from = sender_value(v); break;
	case 'b': return set_mode(o, v, err, errsize);
	case 'o': set_o(o, v); break;
	case 'N':
		if (set_notify(o, v) < 0)
			return usage_error(err, errsize, "-N %s: want never, or a "
			    "list of success, delay, failure", v);
		break;
	case 'R':
		if (strcasecmp(v, "full") != 0 && strcasecmp(v, "hdrs") != 0)
			return usage_error(err, errsize, "-R %s: want full or hdrs", v);
		o->ret = strcasecmp(v, "full") == 0 ? "FULL" : "HDRS";
		break;
	case 'V':
		if (strlen(v) > 100 || !smtp_xtext_valid(v))
			return usage_error(err, errsize, "-V %s: an envelope id is "
			    "at most 100 characters of xtext (RFC 3461)", v);
		o->envid = v;
		break;
	default:
		break;	/* -B -h -L -O -X: accepted and ignored */
	}
	return 0;
}

/* One "-..." word from argv[*i]; may consume the next word. */
static int
option_word(struct sm_opts *o, int argc, char **argv, int *i, char *err,
    size_t errsize)
{
	for (char *p = argv[*i] + 1; *p; p++) {
		char c = *p;
		if (c == 't')
			o->extract = 1;
		else if (c == 'i')
			o->dot_ends = 0;
		else if (c == 'v')
			o->verbose = 1;
		else if (c == 'q') {
			if (p[1])
				return usage_error(err, errsize, "-q%s: only a plain "
				    "-q (run the queue now) is supported", p + 1);
			o->mode = SM_FLUSH;
		} else if (strchr(ignored_flags, c))
			continue;
		else if (c != '\0' && strchr(with_value, c)) {
			char *v = p[1] ? p + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
			char opt[3] = { '-', c, '\0' };
			if (v == NULL)
				return usage_error(err, errsize, "%s needs a value", opt);
			return take_value(o, c, v, err, errsize);
		} else {
			char opt[3] = { '-', c, '\0' };
			return usage_error(err, errsize, "unsupported option %s", opt);
		}
	}
	return 0;
}

int
sendmail_parse_opts(int argc, char **argv, struct sm_opts *o, char *err,
    size_t errsize)
{
	int rc, words_only = 0;

	o->dot_ends = 1;
	for (int i = 1; i < argc; i++) {
		if (!words_only && strcmp(argv[i], "--") == 0)
			words_only = 1;
		else if (!words_only && argv[i][0] == '-' && argv[i][1]) {
			if ((rc = option_word(o, argc, argv, &i, err, errsize)) != 0)
				return rc;
		} else
			sendmail_add_rcpt(&o->rcpts, &o->nrcpt, argv[i]);
	}
	return 0;
}

void
sendmail_opts_free(struct sm_opts *o)
{
	for (size_t i = 0; i < o->nrcpt; i++)
		free(o->rcpts[i]);
	free(o->rcpts);
	o->rcpts = NULL;
	o->nrcpt = 0;
}
