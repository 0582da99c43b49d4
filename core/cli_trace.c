/*
 * core/cli_trace.c - `merpati trace ID [LOGFILE...]`: everything known
 * about one message, in order, for "where is my mail?": its queue
 * status when it is still queued (envelope, client, recipients done or
 * pending, attempts, last error, next try), then every log line that
 * names it (arrival with client, user, TLS and Message-ID, each
 * delivery attempt with the server, the reply and the delays), and the
 * lines of the bounce or delay notice it caused (their own queue ids,
 * found through "notification: NEWID"), each followed the same way.
 *
 * Logs are read from the files given (default /var/log/mail.log, where
 * syslog puts facility mail on Debian); plain and JSON lines alike, as
 * they name the id the same way. Bounded: lines are read in pieces of
 * at most LINE_MAX bytes, at most MAX_IDS ids are followed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "queue.h"
#include "settings.h"

#define MAX_IDS 16
#define TRACE_LINE 8192
#define DEFAULT_LOG "/var/log/mail.log"

struct ids {
	char v[MAX_IDS][MP_QID_SIZE];
	size_t n;
};

static int
has_id(const struct ids *ids, const char *id)
{
	for (size_t i = 0; i < ids->n; i++)
		if (strcmp(ids->v[i], id) == 0)
			return 1;
	return 0;
}

static void
add_id(struct ids *ids, const char *id)
{
	if (ids->n < MAX_IDS && mp_queue_id_valid(id) && !has_id(ids, id))
		snprintf(ids->v[ids->n++], MP_QID_SIZE, "%s", id);
}

static void
print_time(const char *label, time_t t)
{
	char buf[64];
	struct tm tm;

	if (t <= 0)
		return;
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	printf("  %s: %s\n", label, buf);
}

static void
queue_status(const char *id)
{
	struct mp_qmsg m;
	char why[128];

	if (mp_queue_load(mp_core.queue_dir, id, &m, why, sizeof(why)) != 0) {
		printf("%s: not in the queue (%s)\n", id, errno == ENOENT ?
		    "delivered, bounced, deleted or never queued" : why);
		return;
	}
	printf("%s: in the queue\n", id);
	print_time("arrival", m.arrival);
	printf("  from: <%s>\n  client: [%s] helo=%s%s%s\n", m.sender, m.client,
	    m.helo, m.auth_user[0] ? " user=" : "", m.auth_user);
	for (size_t i = 0; i < m.nrcpt; i++)
		printf("  to: <%s>%s%s%s\n", m.rcpts[i],
		    m.relay && m.relay[i] && m.relay[i][0] ? " relay=" : "",
		    m.relay && m.relay[i] ? m.relay[i] : "",
		    m.done[i] ? " (done)" : " (pending)");
	printf("  attempts: %u\n", m.attempts);
	print_time("last attempt", m.last_attempt);
	if (m.last_error[0])
		printf("  last error: %s\n", m.last_error);
	print_time("next attempt", m.next_attempt);
	mp_qmsg_free(&m);
}

/* The id a notification line names: "... notification: NEWID". */
static void
follow_notification(const char *line, struct ids *ids)
{
	const char *p = strstr(line, "notification: ");
	char id[MP_QID_SIZE];
	size_t n;

	if (p == NULL)
		return;
	p += strlen("notification: ");
	n = strspn(p, "0123456789ABCDEF");
	if (n == 0 || n >= sizeof(id))
		return;
	memcpy(id, p, n);
	id[n] = '\0';
	add_id(ids, id);
}

/* One pass over a log: lines naming any id so far, in file order; a
 * notification found adds its id, so a second pass finds its lines.
 * Returns how many lines were printed, -1 when the file cannot be read. */
static int
scan_log(const char *path, struct ids *ids, int print)
{
	FILE *f = fopen(path, "re");
	char line[TRACE_LINE];
	int printed = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		int match = 0;
		for (size_t i = 0; i < ids->n && !match; i++)
			match = strstr(line, ids->v[i]) != NULL;
		if (!match)
			continue;
		follow_notification(line, ids);
		if (print) {
			fputs(line, stdout);
			if (strchr(line, '\n') == NULL)
				fputs("...\n", stdout);	/* a longer line, cut */
			printed++;
		}
	}
	fclose(f);
	return printed;
}

static int
trace(const char *id, char **logs, int nlogs)
{
	static char *default_logs[] = { (char *)DEFAULT_LOG };
	struct ids ids = { .n = 0 };
	size_t known;

	if (!mp_queue_id_valid(id)) {
		fprintf(stderr, "merpati: trace: %s is not a queue id\n", id);
		return 2;
	}
	if (nlogs == 0) {
		logs = default_logs;
		nlogs = 1;
	}
	add_id(&ids, id);
	/* Find the notifications first (they may chain: a bounce's own
	 * delay notice), bounded by MAX_IDS. */
	do {
		known = ids.n;
		for (int i = 0; i < nlogs; i++)
			if (scan_log(logs[i], &ids, 0) < 0) {
				fprintf(stderr, "merpati: trace: cannot read %s: %s\n",
				    logs[i], strerror(errno));
				return 1;
			}
	} while (ids.n > known);
	for (size_t k = 0; k < ids.n; k++)
		queue_status(ids.v[k]);
	printf("\nlog lines (%s", logs[0]);
	for (int i = 1; i < nlogs; i++)
		printf(", %s", logs[i]);
	printf("):\n");
	int printed = 0;
	for (int i = 0; i < nlogs; i++)
		printed += scan_log(logs[i], &ids, 1);
	if (printed == 0)
		printf("(none: the message is older than the log, or the log is elsewhere)\n");
	return 0;
}

int
cli_trace(const char *config, char **overrides, size_t n, int argc,
    char **argv)
{
	int rc;

	if (argc < 1) {
		fputs("usage: merpati trace ID [LOGFILE...]\n", stderr);
		return 2;
	}
	cli_setup(config, overrides, n, 0);
	rc = trace(argv[0], argv + 1, argc - 1);
	mp_core_shutdown();
	return rc;
}
