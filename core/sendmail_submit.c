/*
 * core/sendmail_submit.c - writing one local submission into the queue
 * (see sendmail_submit.h): the path of a sendmail run by root and of
 * the daemon's maildrop pickup, so both add the same fields.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "sendmail_headers.h"
#include "sendmail_submit.h"
#include "settings.h"

const char *
sendmail_origin(void)
{
	return mp_core.ndomains ? mp_core.domains[0] : mp_core.server.hostname;
}

char *
sendmail_qualify(const char *addr)
{
	char *out;

	if (strchr(addr, '@') || addr[0] == '\0')
		return mp_xstrdup(addr);
	out = mp_xmalloc(strlen(addr) + strlen(sendmail_origin()) + 2);
	sprintf(out, "%s@%s", addr, sendmail_origin());
	return out;
}

/* "userid alice (uid 1000)", or "uid 1000" when the name is unknown. */
static void
who(long uid, char *out, size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[2048];

	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, size, "userid %s (uid %ld)", pw.pw_name, uid);
	else
		snprintf(out, size, "uid %ld", uid);
}

/* The fields merpati adds before the user's text. */
static void
added_fields(const struct sm_submission *s, const char *msg, size_t len,
    const char *id, struct mp_buf *head)
{
	const struct mp_buf view = { (char *)msg, len, len };
	char line[1400], date[64], user[400];

	mp_rfc5322_date(date, sizeof(date));
	who(s->uid, user, sizeof(user));
	snprintf(line, sizeof(line), "Received: by %s (merpati sendmail, from %s)\r\n"
	    "\tid %s; %s\r\n", mp_core.server.hostname, user, id, date);
	mp_buf_put(head, line, strlen(line));
	if (!sendmail_has_header(&view, "From")) {
		if (s->fullname && s->fullname[0] && !strpbrk(s->fullname, "\"\\\r\n"))
			snprintf(line, sizeof(line), "From: \"%s\" <%s>\r\n",
			    s->fullname, s->sender);
		else
			snprintf(line, sizeof(line), "From: <%s>\r\n", s->sender);
		mp_buf_put(head, line, strlen(line));
	}
	if (!sendmail_has_header(&view, "Date")) {
		snprintf(line, sizeof(line), "Date: %s\r\n", date);
		mp_buf_put(head, line, strlen(line));
	}
	if (!sendmail_has_header(&view, "Message-ID")) {
		snprintf(line, sizeof(line), "Message-ID: <%s@%s>\r\n", id,
		    mp_core.server.hostname);
		mp_buf_put(head, line, strlen(line));
	}
}

struct mp_qwriter *
sendmail_write(const struct sm_submission *s, const char *msg, size_t len,
    char id_r[MP_QID_SIZE])
{
	struct mp_qmsg env = { 0 };
	struct mp_qwriter *w;
	struct mp_buf head = { 0 };

	env.sender = (char *)s->sender;
	env.rcpts = s->rcpts;
	env.notify = s->notify;
	env.nrcpt = s->nrcpt;
	env.ret = (char *)s->ret;
	env.envid = (char *)s->envid;
	env.arrival = time(NULL);
	w = mp_queue_begin(mp_core.queue_dir, &env, id_r);
	if (w == NULL)
		return NULL;
	added_fields(s, msg, len, id_r, &head);
	if (mp_queue_write(w, head.p, head.len) < 0 || mp_queue_write(w, msg, len) < 0) {
		int e = errno;
		mp_queue_abort(w);
		errno = e;
		w = NULL;
	}
	free(head.p);
	return w;
}

int
sendmail_queue(const struct sm_submission *s, const char *msg, size_t len,
    char id_r[MP_QID_SIZE])
{
	struct mp_qwriter *w = sendmail_write(s, msg, len, id_r);

	return w ? mp_queue_commit(w) : -1;
}
