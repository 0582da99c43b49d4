/*
 * core/cli_sendmail.c - `sendmail` (a link to merpati, or `merpati
 * sendmail`): the sendmail(1) every Unix program expects. Options are
 * parsed by sendmail_opts.c; -t's header work is sendmail_headers.c;
 * -bs is sendmail_smtp.c. Silent on success, sysexits.h statuses on
 * failure.
 *
 * Who is submitting is read first, from the real uid, before anything
 * can change it. Root writes the queue directly (as server.user, like
 * the daemon); any other user hands the message to the setgid
 * merpati-postdrop, which files it in the maildrop for the daemon
 * (core/maildrop.h). Input lines may end in LF (stored as CRLF); without
 * -i a line holding a single "." ends the message, as in sendmail 8.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "buildconf.h"
#include "cli.h"
#include "log.h"
#include "maildrop.h"
#include "privs.h"
#include "queue.h"
#include "sendmail_headers.h"
#include "sendmail_opts.h"
#include "sendmail_smtp.h"
#include "sendmail_submit.h"
#include "settings.h"
#include "util.h"

/* The invoking user, as the kernel says (getuid), read before any
 * privilege change. */
struct invoker {
	long uid;
	char login[64];
	char gecos[128];	/* full name, up to the first comma */
	int direct;		/* root: write the queue ourselves */
	int verbose, no_wake;
};

static void
who_runs(struct invoker *me)
{
	struct passwd *pw = getpwuid(getuid());

	me->uid = (long)getuid();
	me->direct = getuid() == 0 && geteuid() == 0;
	if (pw == NULL)
		snprintf(me->login, sizeof(me->login), "uid%ld", me->uid);
	else {
		mp_strlcpy(me->login, pw->pw_name, sizeof(me->login));
		mp_strlcpy(me->gecos, pw->pw_gecos ? pw->pw_gecos : "", sizeof(me->gecos));
		me->gecos[strcspn(me->gecos, ",")] = '\0';
	}
}

/* Read stdin into CRLF form; -1 when over the size limit. */
static int
read_message(struct mp_buf *t, int dot_ends)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (dot_ends && n == 1 && line[0] == '.')
			break;
		mp_buf_put(t, line, (size_t)n);
		mp_buf_put(t, "\r\n", 2);
		if ((long long)t->len > mp_core.limits.message_size) {
			free(line);
			return -1;
		}
	}
	free(line);
	return 0;
}

/* merpati-postdrop: $MERPATI_POSTDROP (tests; a user's own choice
 * only affects that user), beside this program, or the installed one. */
static void
postdrop_path(char *out, size_t size)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (getenv("MERPATI_POSTDROP")) {
		mp_strlcpy(out, getenv("MERPATI_POSTDROP"), size);
		return;
	}
	if (n > 0) {
		self[n] = '\0';
		*strrchr(self, '/') = '\0';
		snprintf(out, size, "%s/merpati-postdrop", self);
		if (access(out, X_OK) == 0)
			return;
	}
	snprintf(out, size, "%s/sbin/merpati-postdrop", MERPATI_PREFIX);
}

/* Hand the drop stream to merpati-postdrop; its exit status. */
static int
run_postdrop(const struct mp_buf *stream)
{
	char helper[4200], dir[4200];
	int p[2], status;
	pid_t pid;

	postdrop_path(helper, sizeof(helper));
	snprintf(dir, sizeof(dir), "%s/%s", mp_core.server.state_dir, MP_DROP_DIR);
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0)
		return EX_OSERR;
	if (pid == 0) {
		dup2(p[0], 0);
		execl(helper, "merpati-postdrop", dir, (char *)NULL);
		fprintf(stderr, "sendmail: cannot run %s: %s\n", helper, strerror(errno));
		_exit(EX_UNAVAILABLE);
	}
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	(void)mp_write_all(p[1], stream->p, stream->len);
	close(p[1]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return EX_OSERR;
	return WIFEXITED(status) ? WEXITSTATUS(status) : EX_TEMPFAIL;
}

/* One message, by the path that fits the invoker; a sysexits status. */
static int
submit(const struct invoker *me, const struct sm_submission *s, const char *msg,
    size_t len)
{
	char id[MP_QID_SIZE];

	if (!me->direct) {
		struct mp_buf stream = { 0 };
		sendmail_drop_encode(s, msg, len, &stream);
		int rc = run_postdrop(&stream);
		free(stream.p);
		return rc;
	}
	if (sendmail_queue(s, msg, len, id) < 0) {
		fprintf(stderr, "sendmail: cannot queue: %s\n", strerror(errno));
		return EX_TEMPFAIL;
	}
	if (me->verbose)
		fprintf(stderr, "sendmail: queued as %s\n", id);
	if (!me->no_wake)
		cli_signal_daemon(SIGUSR2, 1);
	return EX_OK;
}

static int
smtp_submit(void *arg, const struct sm_submission *s, const char *msg, size_t len)
{
	return submit(arg, s, msg, len) == EX_OK ? 0 : -1;
}

/* Root: the queue, written as the daemon's user. Others: only read the
 * config (for state_dir and the limits). */
static int
setup(const struct invoker *me, const char *config, char **overrides, size_t n)
{
	struct mp_problems problems = { 0 };
	char err[256];

	if (me->direct) {
		cli_setup(config, overrides, n, 0);
		if (mp_queue_setup(mp_core.server.state_dir) < 0) {
			fprintf(stderr, "sendmail: cannot create the queue in %s: %s\n",
			    mp_core.server.state_dir, strerror(errno));
			return EX_TEMPFAIL;
		}
		if (mp_drop_privileges(mp_core.server.user, mp_core.server.state_dir,
		    err, sizeof(err)) < 0) {
			fprintf(stderr, "sendmail: %s\n", err);
			return EX_TEMPFAIL;
		}
		return EX_OK;
	}
	if (mp_core_configure(config, overrides, n, &problems) < 0) {
		for (size_t i = 0; i < problems.n; i++)
			fprintf(stderr, "sendmail: %s\n", problems.lines[i]);
		mp_problems_free(&problems);
		return EX_CONFIG;
	}
	mp_problems_free(&problems);
	return EX_OK;
}

/* The recipients: the words, plus -t's from the headers (Postfix
 * adds both), each qualified. EX_OK or a sysexits status (printed). */
static int
recipients(struct sm_opts *o, struct mp_buf *t)
{
	if (o->extract) {
		sendmail_recipients_from_headers(t, &o->rcpts, &o->nrcpt,
		    (size_t)mp_core.limits.recipients + 1);
		sendmail_remove_bcc(t);
	}
	for (size_t i = 0; i < o->nrcpt; i++) {
		char *q = sendmail_qualify(o->rcpts[i]);
		free(o->rcpts[i]);
		o->rcpts[i] = q;
	}
	if (o->nrcpt == 0) {
		fputs(o->extract ? "sendmail: no recipient addresses found in the "
		    "message header\n" : "sendmail: no recipients\n", stderr);
		return EX_USAGE;
	}
	if (o->nrcpt > (size_t)mp_core.limits.recipients) {
		fprintf(stderr, "sendmail: more than %lld recipients\n",
		    mp_core.limits.recipients);
		return EX_DATAERR;
	}
	return EX_OK;
}

/* The default mode: a message on stdin. */
static int
deliver(const struct invoker *me, struct sm_opts *o)
{
	struct mp_buf t = { 0 };
	char sender[320], **notify = NULL;
	int rc;

	if (o->from)
		mp_strlcpy(sender, o->from, sizeof(sender));
	else
		snprintf(sender, sizeof(sender), "%s@%s", me->login, sendmail_origin());
	if (read_message(&t, o->dot_ends) < 0) {
		fprintf(stderr, "sendmail: message exceeds %lld bytes\n",
		    mp_core.limits.message_size);
		rc = EX_DATAERR;
	} else if ((rc = recipients(o, &t)) == EX_OK) {
		if (o->notify) {
			notify = mp_xcalloc(o->nrcpt, sizeof(char *));
			for (size_t i = 0; i < o->nrcpt; i++)
				notify[i] = (char *)o->notify;
		}
		struct sm_submission s = {
			.sender = sender, .rcpts = o->rcpts, .notify = notify,
			.nrcpt = o->nrcpt, .ret = o->ret, .envid = o->envid,
			.uid = me->uid,
			/* The account's full name only for the account's address. */
			.fullname = o->fullname ? o->fullname : o->from ? NULL : me->gecos,
		};
		rc = submit(me, &s, t.p ? t.p : "", t.len);
	}
	free(notify);
	free(t.p);
	return rc;
}

/* -bp and -q: what `merpati queue list|flush` does, for root only (the
 * queue is not readable by other users). */
static int
queue_command(const struct invoker *me, const char *config, char **overrides,
    size_t n, const char *what)
{
	char *argv[] = { (char *)what, NULL };

	if (!me->direct) {
		fprintf(stderr, "sendmail: only root may %s the queue\n",
		    strcmp(what, "list") == 0 ? "list" : "flush");
		return EX_NOPERM;
	}
	return cli_queue(config, overrides, n, 1, argv);
}

int
cli_sendmail(const char *config, char **overrides, size_t n, int argc,
    char **argv)
{
	struct invoker me = { 0 };
	struct sm_opts o = { 0 };
	char err[256];
	int rc;

	who_runs(&me);
	if ((rc = sendmail_parse_opts(argc, argv, &o, err, sizeof(err))) != 0) {
		fprintf(stderr, "sendmail: %s\n", err);
		sendmail_opts_free(&o);
		return rc;
	}
	me.verbose = o.verbose;
	me.no_wake = o.no_wake;
	if (o.config)
		config = o.config;
	if (o.mode == SM_LIST_QUEUE || o.mode == SM_FLUSH)
		rc = queue_command(&me, config, overrides, n,
		    o.mode == SM_FLUSH ? "flush" : "list");
	else if ((rc = setup(&me, config, overrides, n)) == EX_OK) {
		if (o.mode == SM_SMTP) {
			struct sm_smtp c = {
				.in = stdin, .out = stdout,
				.hostname = mp_core.server.hostname,
				.max_size = mp_core.limits.message_size,
				.max_rcpts = (size_t)mp_core.limits.recipients,
				.uid = me.uid,
				.submit = smtp_submit, .arg = &me,
			};
			rc = sendmail_smtp(&c);
		} else
			rc = deliver(&me, &o);
	}
	mp_core_shutdown();	/* safe also when nothing was configured */
	sendmail_opts_free(&o);
	return rc;
}
