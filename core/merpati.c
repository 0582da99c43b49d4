/*
 * core/merpati.c - the admin CLI.
 *
 *   merpati -c FILE [-o path=value]... COMMAND ...
 *     check-config
 *     reload                        (check, then SIGHUP to merpatid)
 *     trace ID [LOGFILE...]         (docs/operations.md)
 *     user add|del|passwd ADDRESS   (password read from stdin)
 *     user list
 *     queue list|show|delete|flush|hold|release|requeue (core/cli_queue.c)
 *     mailbox migrate --from STORE --to STORE USER...
 *     store init [STORE]
 *     sendmail [sendmail(1) options] [RCPT...]   (core/sendmail_opts.c)
 *     dkim keygen DOMAIN SELECTOR [--type rsa|ed25519] [--bits N] [--dir D]
 *
 * It reads the same config and loads the same modules as the daemon,
 * so check-config sees exactly what merpatid would.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "privs.h"
#include "queue.h"
#include "settings.h"
#include "user_dirs.h"
#include "util.h"

#define MAX_OVERRIDES 128

static void
usage(void)
{
	fputs("usage: merpati -c FILE [-o path=value]... COMMAND\n"
	    "  check-config\n"
	    "  reload\n"
	    "  trace ID [LOGFILE...]\n"
	    "  user add|del|passwd ADDRESS    (password on stdin)\n"
	    "  user list\n"
	    "  queue list [--domain D] [--older-than AGE] [--deferred] [--held] [--json]\n"
	    "  queue show ID [--json] | queue flush\n"
	    "  queue delete ID... | queue delete --sender PATTERN | --recipient PATTERN\n"
	    "  queue hold ID|ALL [REASON] | queue release ID|ALL | queue requeue ID|ALL\n"
	    "  mailbox migrate --from STORE --to STORE USER...\n"
	    "  store init [STORE]             (create or upgrade its tables)\n"
	    "  sendmail [-t] [-i] [-f FROM] [-bs|-bp] [other sendmail(1) options] [RCPT...]\n"
	    "  dkim keygen DOMAIN SELECTOR [--type rsa|ed25519] [--bits N] [--dir D]\n", stderr);
	exit(2);
}

static int
print_problems(struct mp_problems *p)
{
	for (size_t i = 0; i < p->n; i++)
		fprintf(stderr, "merpati: %s\n", p->lines[i]);
	return p->n ? 1 : 0;
}

/* Load config and modules; exits 1 with every problem printed. */
void
cli_setup(const char *config, char **overrides, size_t n, int with_modules)
{
	struct mp_problems problems = { 0 };

	if (mp_core_configure(config, overrides, n, &problems) == 0 &&
	    mp_mkdir_p(mp_core.server.state_dir, 0700) < 0)
		mp_problem(&problems, "cannot create %s: %s",
		    mp_core.server.state_dir, strerror(errno));
	if (problems.n == 0) {
		char err[1024];
		if (mp_chown_to_user(mp_core.server.user, mp_core.server.state_dir,
		    err, sizeof(err)) < 0)
			mp_problem(&problems, "%s", err);
		else if (with_modules)
			mp_core_load_modules(&problems);
	}
	if (print_problems(&problems))
		exit(1);
	mp_problems_free(&problems);
}

static int
check_config(const char *config, char **overrides, size_t n)
{
	struct mp_problems problems = { 0 };
	int rc;

	/* Modules are checked even when core settings have problems, so
	 * that one run reports everything. */
	if (mp_core_configure(config, overrides, n, &problems) == 0) {
		/* what merpatid's start as root would find (and create) */
		mp_user_dirs(0, &problems);
		mp_core_load_modules(&problems);
	} else if (mp_core.cfg && mp_core.server.module_dir)
		mp_core_load_modules(&problems);
	rc = print_problems(&problems);
	if (rc == 0)
		printf("%s: configuration OK (%zu module(s) loaded)\n", config,
		    mp_core.modules.n);
	else
		fprintf(stderr, "merpati: %zu problem(s) found\n", problems.n);
	mp_problems_free(&problems);
	return rc;
}

/* The same check as check-config here, where it can be read, then the
 * daemon's own reload, which checks again: it decides and logs. */
static int
reload(const char *config, char **overrides, size_t n)
{
	if (check_config(config, overrides, n) != 0) {
		fputs("merpati: not reloading: merpatid would refuse this "
		    "configuration\n", stderr);
		return 1;
	}
	if (cli_signal_daemon(SIGHUP, 0) < 0)
		return 1;
	printf("merpati: reload requested; merpatid's log says when it is in force\n");
	return 0;
}

int
main(int argc, char **argv)
{
	const char *config = getenv("MERPATI_CONFIG");
	char *overrides[MAX_OVERRIDES];
	size_t n = 0;
	int i;

	mp_log_open("merpati", 1);
	if (strcmp(mp_basename(argv[0]), "sendmail") == 0)
		return cli_sendmail(config ? config : CLI_DEFAULT_CONFIG, NULL,
		    0, argc, argv);
	if (strcmp(mp_basename(argv[0]), "mailq") == 0) {
		char *bp[] = { (char *)"sendmail", (char *)"-bp", NULL };
		return cli_sendmail(config ? config : CLI_DEFAULT_CONFIG, NULL, 0, 2, bp);
	}
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc &&
		    n < MAX_OVERRIDES)
			overrides[n++] = argv[++i];
		else
			usage();
	}
	if (i >= argc)
		usage();
	if (config == NULL)
		config = CLI_DEFAULT_CONFIG;
	if (strcmp(argv[i], "check-config") == 0)
		return check_config(config, overrides, n);
	if (strcmp(argv[i], "reload") == 0)
		return reload(config, overrides, n);
	if (strcmp(argv[i], "trace") == 0)
		return cli_trace(config, overrides, n, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "user") == 0)
		return cli_user(config, overrides, n, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "queue") == 0)
		return cli_queue(config, overrides, n, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "mailbox") == 0)
		return cli_mailbox(config, overrides, n, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "store") == 0)
		return cli_store(config, overrides, n, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "sendmail") == 0)
		return cli_sendmail(config, overrides, n, argc - i, argv + i);
	if (strcmp(argv[i], "dkim") == 0)
		return cli_dkim(config, overrides, n, argc - i - 1, argv + i + 1);
	usage();
	return 2;
}
