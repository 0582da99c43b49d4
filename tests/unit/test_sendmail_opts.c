/*
 * tests/unit/test_sendmail_opts.c - sendmail's command line
 * (core/sendmail_opts.c), table-driven: the invocations mutt, s-nail,
 * cron, git send-email and mailx really use, the options Postfix
 * accepts and ignores, and the ones refused with EX_USAGE.
 */
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "sendmail_opts.h"
#include "test.h"

struct opt_case {
	const char *name;
	const char *argv[16];
	int rc;			/* 0 or EX_USAGE */
	enum sm_mode mode;
	const char *from, *fullname, *notify, *ret, *envid;
	int extract, dot_ends;
	const char *rcpts;	/* space-separated, "" for none */
};

static const struct opt_case cases[] = {
	{ "mutt: -oem -oi -- RCPT", { "sendmail", "-oem", "-oi", "--", "a@x.test", NULL },
	  0, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, "a@x.test" },
	{ "s-nail: -i -- RCPT", { "sendmail", "-i", "--", "a@x.test", "b@x.test", NULL },
	  0, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, "a@x.test b@x.test" },
	{ "cron: -FCronDaemon -i -B8BITMIME -oem -oi root",
	  { "sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-oi", "root", NULL },
	  0, SM_DELIVER, NULL, "CronDaemon", NULL, NULL, NULL, 0, 0, "root" },
	{ "plain recipients, a lone dot ends input",
	  { "sendmail", "root", NULL },
	  0, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 1, "root" },
	{ "-t with -f attached and separate -F",
	  { "sendmail", "-t", "-fme@x.test", "-F", "Me Myself", NULL },
	  0, SM_DELIVER, "me@x.test", "Me Myself", NULL, NULL, NULL, 1, 1, "" },
	{ "clustered -ti and -r <addr>", { "sendmail", "-ti", "-r", "<bounce@x.test>", NULL },
	  0, SM_DELIVER, "bounce@x.test", NULL, NULL, NULL, NULL, 1, 0, "" },
	{ "-f <> is the null sender", { "sendmail", "-f", "<>", "a@x.test", NULL },
	  0, SM_DELIVER, "", NULL, NULL, NULL, NULL, 0, 1, "a@x.test" },
	{ "DSN: -N -R -V", { "sendmail", "-N", "failure,Delay", "-R", "hdrs", "-V", "id+2B1",
	  "a@x.test", NULL },
	  0, SM_DELIVER, NULL, NULL, "FAILURE,DELAY", "HDRS", "id+2B1", 0, 1, "a@x.test" },
	{ "-N never", { "sendmail", "-Nnever", "a@x.test", NULL },
	  0, SM_DELIVER, NULL, NULL, "NEVER", NULL, NULL, 0, 1, "a@x.test" },
	{ "ignored: -odb -oep -v -G -U -n -m -h 5 -L x -O a=b -X log -o7",
	  { "sendmail", "-odb", "-oep", "-v", "-GUnm", "-h", "5", "-Lx", "-O", "a=b", "-Xlog",
	    "-o7", NULL },
	  0, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 1, "" },
	{ "recipients before options too", { "sendmail", "a@x.test", "-oi", NULL },
	  0, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, "a@x.test" },
	{ "after --, a dash word is a recipient", { "sendmail", "--", "-odd@x.test", NULL },
	  0, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 1, "-odd@x.test" },
	{ "-bm is the default", { "sendmail", "-bm", "a@x.test", NULL },
	  0, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 1, "a@x.test" },
	{ "-bp lists the queue", { "sendmail", "-bp", NULL },
	  0, SM_LIST_QUEUE, NULL, NULL, NULL, NULL, NULL, 0, 1, "" },
	{ "-bs speaks SMTP", { "sendmail", "-bs", NULL },
	  0, SM_SMTP, NULL, NULL, NULL, NULL, NULL, 0, 1, "" },
	{ "-q runs the queue", { "sendmail", "-q", NULL },
	  0, SM_FLUSH, NULL, NULL, NULL, NULL, NULL, 0, 1, "" },
	{ "an unknown option", { "sendmail", "-Z", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
	{ "-bd (daemon mode) is merpatid's", { "sendmail", "-bd", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
	{ "-bv is not supported", { "sendmail", "-bv", "a@x.test", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
	{ "-q15m is not supported", { "sendmail", "-q15m", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
	{ "-f without its value", { "sendmail", "-f", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
	{ "-N with an unknown word", { "sendmail", "-N", "sometimes", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
	{ "-N with a word twice", { "sendmail", "-N", "delay,delay", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
	{ "-R with a bad value", { "sendmail", "-R", "all", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
	{ "-V that is not xtext", { "sendmail", "-V", "a=b", NULL }, EX_USAGE, SM_DELIVER, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL },
};

static void
joined(const struct sm_opts *o, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < o->nrcpt && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? " " : "", o->rcpts[i]);
}

#define OPT_STR(what, got, want) do { \
	if ((want) || (got)) CHECK_STR(what, got, want); \
} while (0)

static void
run_case(const struct opt_case *c)
{
	char *argv[16], err[256] = "", label[300], rcpts[512];
	struct sm_opts o = { 0 };
	int argc = 0;

	while (c->argv[argc]) {
		argv[argc] = strdup(c->argv[argc]);	/* -f may cut its brackets */
		argc++;
	}
	int rc = sendmail_parse_opts(argc, argv, &o, err, sizeof(err));
	snprintf(label, sizeof(label), "%s: status", c->name);
	CHECK(label, rc == c->rc);
	if (c->rc != 0) {
		snprintf(label, sizeof(label), "%s: a reason is given", c->name);
		CHECK(label, err[0] != '\0');
	} else {
		snprintf(label, sizeof(label), "%s: mode, -t, -i", c->name);
		CHECK(label, o.mode == c->mode && o.extract == c->extract &&
		    o.dot_ends == c->dot_ends);
		snprintf(label, sizeof(label), "%s: sender", c->name);
		OPT_STR(label, o.from, c->from);
		snprintf(label, sizeof(label), "%s: full name", c->name);
		OPT_STR(label, o.fullname, c->fullname);
		snprintf(label, sizeof(label), "%s: DSN", c->name);
		OPT_STR(label, o.notify, c->notify);
		OPT_STR(label, o.ret, c->ret);
		OPT_STR(label, o.envid, c->envid);
		joined(&o, rcpts, sizeof(rcpts));
		snprintf(label, sizeof(label), "%s: recipients", c->name);
		CHECK_STR(label, rcpts, c->rcpts);
	}
	sendmail_opts_free(&o);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	TEST_EXIT();
}
