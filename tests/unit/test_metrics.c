/*
 * tests/unit/test_metrics.c - the protocol modules' command counts
 * (core/metrics.c, host->count_command): the classifier maps a name,
 * any case, onto the protocol's fixed list or "other"; outcomes outside
 * a protocol's set and protocols without a list are not counted; a
 * counted command shows in both families of the exposition; a flood of
 * distinct garbage names adds no series.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "test.h"

static const struct { const char *protocol, *command, *label; } labels[] = {
	{ "imap", "FETCH", "FETCH" },
	{ "imap", "fetch", "FETCH" },
	{ "imap", "UID FETCH", "UID FETCH" },
	{ "imap", "uid store", "UID STORE" },
	{ "imap", "UID EXPUNGE", "UID EXPUNGE" },
	{ "imap", "UID", "other" },
	{ "imap", "UID LOGIN", "other" },
	{ "imap", "UIDFETCH", "other" },
	{ "imap", "FETCHX", "other" },
	{ "imap", "FETC", "other" },
	{ "imap", "", "other" },
	{ "imap", NULL, "other" },
	{ "imap", "other", "other" },
	{ "imap", "LSUB", "LSUB" },
	{ "imap", "ID", "ID" },
	{ "imap", "RETR", "other" },
	{ "pop3", "retr", "RETR" },
	{ "pop3", "STLS", "STLS" },
	{ "pop3", "CAPA", "CAPA" },
	{ "pop3", "APOP", "APOP" },
	{ "pop3", "FETCH", "other" },
	{ "pop3", "QUIT", "QUIT" },
};

static void
test_labels(void)
{
	char name[128];

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		snprintf(name, sizeof(name), "%s %s counts as %s", labels[i].protocol,
		    labels[i].command ? labels[i].command : "(null)", labels[i].label);
		CHECK_STR(name, mp_metric_command_label(labels[i].protocol,
		    labels[i].command), labels[i].label);
	}
	CHECK("smtp has no module list", mp_metric_command_label("smtp", "MAIL") == NULL);
	CHECK("an unknown protocol has none", mp_metric_command_label("x", "A") == NULL);
	CHECK("nor has NULL", mp_metric_command_label(NULL, "A") == NULL);
}

/* The value of one exposition line "series value". */
static long long
sample(const char *series)
{
	size_t len;
	char *text = mp_metrics_render(NULL, &len);
	const char *at = strstr(text, series);
	long long v = -1;

	if (at && at[strlen(series)] == ' ')
		v = atoll(at + strlen(series) + 1);
	free(text);
	return v;
}

static size_t
lines(void)
{
	size_t len, n = 0;
	char *text = mp_metrics_render(NULL, &len);

	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

#define IMAP_FETCH "merpati_commands_total{protocol=\"imap\",command=\"UID FETCH\"}"
#define IMAP_OTHER "merpati_commands_total{protocol=\"imap\",command=\"other\"}"
#define IMAP_OK "merpati_replies_total{protocol=\"imap\",class=\"ok\"}"
#define IMAP_NO "merpati_replies_total{protocol=\"imap\",class=\"no\"}"
#define POP3_ERR "merpati_replies_total{protocol=\"pop3\",class=\"err\"}"
#define POP3_RETR "merpati_commands_total{protocol=\"pop3\",command=\"RETR\"}"

static void
test_counting(void)
{
	CHECK("every series is there from the start", sample(IMAP_FETCH) == 0 &&
	    sample(IMAP_OK) == 0 && sample(POP3_ERR) == 0 && sample(POP3_RETR) == 0);
	CHECK("a command with ok is counted", mp_metric_command("imap",
	    "uid fetch", "ok") == 0);
	CHECK("under its label and its outcome's class",
	    sample(IMAP_FETCH) == 1 && sample(IMAP_OK) == 1 && sample(IMAP_NO) == 0);
	CHECK("pop3 err is counted", mp_metric_command("pop3", "RETR", "err") == 0 &&
	    sample(POP3_RETR) == 1 && sample(POP3_ERR) == 1);
	CHECK("an outcome of another protocol is ignored",
	    mp_metric_command("imap", "FETCH", "err") == -1 &&
	    mp_metric_command("pop3", "RETR", "no") == -1 &&
	    mp_metric_command("imap", "FETCH", "OK") == -1 &&
	    mp_metric_command("imap", "FETCH", NULL) == -1);
	CHECK("so is a protocol without a list",
	    mp_metric_command("smtp", "MAIL", "ok") == -1 &&
	    mp_metric_command(NULL, "MAIL", "ok") == -1);
	CHECK("ignored calls moved nothing", sample(IMAP_FETCH) == 1 &&
	    sample(IMAP_OK) == 1 && sample(POP3_RETR) == 1 && sample(POP3_ERR) == 1);
}

static void
test_bounded(void)
{
	size_t before = lines();
	char verb[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(verb, sizeof(verb), "GARBAGE%d", i);
		mp_metric_command("imap", verb, i % 2 ? "bad" : "no");
		mp_metric_command("pop3", verb, "err");
	}
	CHECK("1000 distinct names add no series", lines() == before);
	CHECK("they are all other", sample(IMAP_OTHER) == 1000);
	{
		size_t len;
		char *text = mp_metrics_render(NULL, &len);
		CHECK("no name reached the exposition", strstr(text, "GARBAGE") == NULL);
		free(text);
	}
}

int
main(void)
{
	test_labels();
	test_counting();
	test_bounded();
	TEST_EXIT();
}
