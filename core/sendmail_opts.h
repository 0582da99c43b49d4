/*
 * core/sendmail_opts.h - the command line of `sendmail` (and `merpati
 * sendmail`): the options programs really pass, as the sendmail 8 and
 * Postfix sendmail(1) pages describe them. Pure: no I/O beyond the
 * error text it fills in, so tests/unit/test_sendmail_opts.c runs it on
 * tables of command lines. Options Postfix accepts and ignores are
 * accepted and ignored here too (listed in sendmail_opts.c).
 */
#ifndef MERPATI_SENDMAIL_OPTS_H
#define MERPATI_SENDMAIL_OPTS_H

#include <stddef.h>

enum sm_mode {
	SM_DELIVER = 0,	/* -bm (the default): read a message from stdin */
	SM_LIST_QUEUE,	/* -bp: print the queue, as mailq does */
	SM_SMTP,	/* -bs: speak SMTP on stdin/stdout */
	SM_FLUSH	/* -q: ask the daemon to run the queue now */
};

struct sm_opts {
	enum sm_mode mode;
	const char *config;	/* -C FILE, else NULL */
	const char *from;	/* -f / -r, else NULL */
	const char *fullname;	/* -F, else NULL */
	const char *notify;	/* -N as the queue stores it: "NEVER" or
				 * "SUCCESS,DELAY,FAILURE" (any of them) */
	const char *ret;	/* -R: "FULL" or "HDRS", else NULL */
	const char *envid;	/* -V, else NULL */
	int extract;		/* -t: recipients from the headers */
	int dot_ends;		/* a lone "." line ends input (no -i/-oi) */
	int verbose;		/* -v: say the queue id on stderr */
	int no_wake;		/* -odq: queue only, do not wake the daemon */
	char **rcpts;		/* the other argv words, copied */
	size_t nrcpt;
	char notify_buf[32];
};

/*
 * Parse argv (argv[0] is the program name) into a zeroed *o. Options
 * may be clustered ("-ti") and their values attached or separate
 * ("-fa@b", "-f a@b"); words that are not options are recipients
 * wherever they stand, and everything after "--" is one. 0, or
 * EX_USAGE (sysexits.h) with the reason in err. The option strings
 * point into argv (-f's angle brackets are cut there); free the
 * recipients with sendmail_opts_free().
 */
int sendmail_parse_opts(int argc, char **argv, struct sm_opts *o, char *err,
    size_t errsize);
void sendmail_opts_free(struct sm_opts *o);

#endif
