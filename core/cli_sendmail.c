/*
 * core/cli_sendmail.c - `merpati sendmail` (also run as `sendmail`):
 * local submission straight into the queue, like Postfix's maildrop.
 * Lines may end in LF (converted to CRLF); without -i a line with a
 * single "." ends the message, as sendmail(8) does. -t takes the
 * recipients from To, Cc and Bcc, and Bcc is removed (sendmail_headers.c).
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "privs.h"
#include "queue.h"
#include "sendmail_headers.h"
#include "settings.h"
#include "smtp_parse.h"
#include "util.h"


/* Read stdin into CRLF form; returns -1 if over the size limit. */
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

static void
default_sender(char *out, size_t size)
{
	struct passwd *pw = getpwuid(getuid());

	snprintf(out, size, "%s@%s", pw ? pw->pw_name : "nobody",
	    mp_core.server.hostname);
}

static int
write_queue(const char *sender, char **rcpts, size_t n, const struct mp_buf *t)
{
	struct mp_qmsg env = { 0 };
	struct mp_qwriter *w;
	char id[MP_QID_SIZE], head[1024], date[64];
	int len;

	env.sender = (char *)sender;
	env.rcpts = rcpts;
	env.nrcpt = n;
	env.arrival = time(NULL);
	mp_rfc5322_date(date, sizeof(date));
	w = mp_queue_begin(mp_core.queue_dir, &env, id);
	if (w == NULL)
		return -1;
	len = snprintf(head, sizeof(head),
	    "Received: by %s (merpati sendmail, uid %ld) id %s;\r\n\t%s\r\n",
	    mp_core.server.hostname, (long)getuid(), id, date);
	if (!sendmail_has_header(t, "From"))
		len += snprintf(head + len, sizeof(head) - (size_t)len,
		    "From: <%s>\r\n", sender);
	if (!sendmail_has_header(t, "Date"))
		len += snprintf(head + len, sizeof(head) - (size_t)len,
		    "Date: %s\r\n", date);
	if (!sendmail_has_header(t, "Message-ID"))
		len += snprintf(head + len, sizeof(head) - (size_t)len,
		    "Message-ID: <%s@%s>\r\n", id, mp_core.server.hostname);
	if (mp_queue_write(w, head, (size_t)len) < 0 ||
	    mp_queue_write(w, t->p ? t->p : "", t->len) < 0) {
		mp_queue_abort(w);
		return -1;
	}
	if (mp_queue_commit(w) < 0)
		return -1;
	printf("queued as %s\n", id);
	return 0;
}

struct sm_opts {
	const char *from;
	int from_headers, dot_ends;
	char **rcpts;
	size_t nrcpt;
};

static int
parse_opts(int argc, char **argv, struct sm_opts *o)
{
	o->dot_ends = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			o->from = argv[++i];
		else if (strncmp(argv[i], "-f", 2) == 0 && argv[i][2])
			o->from = argv[i] + 2;
		else if (strcmp(argv[i], "-t") == 0)
			o->from_headers = 1;
		else if (strcmp(argv[i], "-i") == 0 || strcmp(argv[i], "-oi") == 0)
			o->dot_ends = 0;
		else if (argv[i][0] == '-') {
			fprintf(stderr, "merpati sendmail: unsupported option %s\n",
			    argv[i]);
			return -1;
		} else
			sendmail_add_rcpt(&o->rcpts, &o->nrcpt, argv[i]);
	}
	return 0;
}

/* Local submission writes queue files as the daemon's user. */
static int
become_queue_owner(void)
{
	char err[256];

	if (mp_drop_privileges(mp_core.server.user, mp_core.server.state_dir,
	    err, sizeof(err)) < 0) {
		fprintf(stderr, "merpati sendmail: %s\n", err);
		return -1;
	}
	return 0;
}

int
cli_sendmail(const char *config, char **overrides, size_t n, int argc,
    char **argv)
{
	struct sm_opts o = { 0 };
	struct mp_buf t = { 0 };
	char sender[320];
	int rc = 1;

	if (parse_opts(argc, argv, &o) < 0)
		return 64;	/* EX_USAGE */
	cli_setup(config, overrides, n, 0);
	if (mp_queue_setup(mp_core.server.state_dir) < 0 || become_queue_owner() < 0)
		return 75;	/* EX_TEMPFAIL */
	if (read_message(&t, o.dot_ends) < 0) {
		fprintf(stderr, "merpati sendmail: message exceeds %lld bytes\n",
		    mp_core.limits.message_size);
		goto out;
	}
	if (o.from_headers) {
		sendmail_recipients_from_headers(&t, &o.rcpts, &o.nrcpt);
		sendmail_remove_bcc(&t);
	}
	if (o.nrcpt == 0) {
		fputs("merpati sendmail: no recipients\n", stderr);
		goto out;
	}
	if (o.from)
		mp_strlcpy(sender, o.from, sizeof(sender));
	else
		default_sender(sender, sizeof(sender));
	if (write_queue(sender, o.rcpts, o.nrcpt, &t) < 0) {
		fprintf(stderr, "merpati sendmail: cannot queue: %s\n", strerror(errno));
		rc = 75;
		goto out;
	}
	cli_signal_daemon(SIGUSR2, 1);
	rc = 0;
out:
	for (size_t i = 0; i < o.nrcpt; i++)
		free(o.rcpts[i]);
	free(o.rcpts);
	free(t.p);
	return rc;
}
