/*
 * modules/imap/imap_count.c - counting each command and its tagged
 * reply's outcome for the metrics (host->count_command, ABI 2.2). The
 * host matches the name against its own list; this file only says
 * which command a tagged reply answers and how it ended.
 */
#include <string.h>

#include "imap.h"

/* "OK ...", "NO ...", "BAD ..." as the host's outcome words. */
static const char *
outcome_of(const char *reply)
{
	if (strncmp(reply, "OK", 2) == 0)
		return "ok";
	if (strncmp(reply, "NO", 2) == 0)
		return "no";
	return strncmp(reply, "BAD", 3) == 0 ? "bad" : NULL;
}

void
imap_count_reply(struct imap *s, const char *reply)
{
	const struct mp_host *host = s->h;
	const char *outcome = outcome_of(reply);

	if (s->command == NULL || outcome == NULL)
		return;
	if (MP_HOST_HAS(count_command) && host->count_command != NULL)
		host->count_command(s->command, outcome);
	s->command = NULL;	/* one count per command */
}
