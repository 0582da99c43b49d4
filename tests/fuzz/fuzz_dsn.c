/*
 * tests/fuzz/fuzz_dsn.c - libFuzzer target: DSN generation
 * (mp_dsn_format) for a fuzzed queued message. Input: one flag byte
 * (bit 0: delay warning, bits 1-3: recipients, bit 4: NOTIFY given,
 * bit 5: ORCPT given), then NUL-separated fields: sender, RET, ENVID,
 * added headers, and per recipient address, NOTIFY, ORCPT, enhanced
 * status, reply text; the rest is the message, written as its queue
 * file. What must hold: the report ends with its closing delimiter;
 * the boundary delimits exactly its three parts and occurs nowhere in
 * them; every line outside the quoted message ends in CRLF (no bare CR
 * or LF from a field); a header-only quote holds no blank line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsn.h"
#include "loader.h"
#include "queue.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define ID "006B04A30FE33F96E196"
#define MAX_RCPT 7

struct input {
	const uint8_t *p, *end;
};

/* The next NUL-terminated field (a malloc'ed string; "" at the end). */
static char *
field(struct input *in)
{
	const uint8_t *nul = memchr(in->p, '\0', (size_t)(in->end - in->p));
	size_t len = nul ? (size_t)(nul - in->p) : (size_t)(in->end - in->p);
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p = nul ? nul + 1 : in->end;
	return s;
}

static void
write_queue_file(const uint8_t *body, size_t len)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", mp_core.queue_dir, ID);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fwrite(body, 1, len, f);
	fclose(f);
}

static size_t
count(const char *text, size_t len, const char *needle)
{
	size_t n = 0, nlen = strlen(needle);

	for (const char *p = text; (p = memmem(p, len - (size_t)(p - text), needle, nlen));
	    p++)
		n++;
	return n;
}

/* No bare CR or LF in [from, to). */
static void
check_crlf(const char *from, const char *to)
{
	for (const char *p = from; p < to; p++)
		if ((*p == '\r' && (p + 1 == to || p[1] != '\n')) ||
		    (*p == '\n' && (p == from || p[-1] != '\r')))
			abort();
}

static void
check_report(const char *text, size_t len, int header_only)
{
	char boundary[200] = "", delim[210], close[220];
	/* The Content-Type's own parameter: a field (the sender in To:) may
	 * hold "boundary=" too, but never a CR LF TAB before it. */
	const char *param = memmem(text, len, "\r\n\tboundary=\"", 13);

	if (param == NULL || sscanf(param + 13, "%199[^\"]", boundary) != 1)
		abort();
	snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", boundary);
	if (count(text, len, delim) != 4 || len < strlen(close) ||
	    memcmp(text + len - strlen(close), close, strlen(close)) != 0)
		abort();
	/* The quoted message: after the third part's header, to the end. */
	const char *third = text;
	for (int i = 0; i < 3; i++)
		third = memmem(third + 1, len - (size_t)(third + 1 - text), delim, strlen(delim));
	const char *quoted = memmem(third, len - (size_t)(third - text), "\r\n\r\n", 4) + 4;
	const char *quoted_end = text + len - strlen(close);
	check_crlf(text, quoted);
	check_crlf(quoted_end, text + len);
	if (header_only && memmem(quoted, (size_t)(quoted_end - quoted), "\r\n\r\n", 4))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char state[] = "/tmp/fuzz-dsn-XXXXXX";
	struct input in = { data + (size > 0), data + size };
	unsigned flags = size ? data[0] : 0;
	size_t n = (flags >> 1) & 7;
	struct mp_qmsg m = { .id = ID, .nrcpt = n };
	char *rcpts[MAX_RCPT], *notify[MAX_RCPT], *orcpt[MAX_RCPT];
	struct mp_rcpt r[MAX_RCPT];
	char *text = NULL;

	if (!mp_core.queue_dir[0]) {
		if (mkdtemp(state) == NULL)
			abort();
		mp_core.server.hostname = "mail.fuzz.test";
		snprintf(mp_core.queue_dir, sizeof(mp_core.queue_dir), "%s", state);
	}
	m.sender = field(&in);
	m.ret = field(&in);
	m.envid = field(&in);
	m.added = field(&in);
	m.nadded = strlen(m.added);
	m.rcpts = rcpts;
	m.notify = flags & 16 ? notify : NULL;
	m.orcpt = flags & 32 ? orcpt : NULL;
	for (size_t i = 0; i < n; i++) {
		char *enh, *why;
		rcpts[i] = field(&in);
		notify[i] = field(&in);
		orcpt[i] = field(&in);
		enh = field(&in);
		why = field(&in);
		r[i] = (struct mp_rcpt){ .index = i, .address = rcpts[i],
		    .notify = m.notify ? notify[i] : NULL,
		    .orcpt = m.orcpt ? orcpt[i] : NULL };
		r[i].status.reply = 500 + (int)i;
		snprintf(r[i].status.enhanced, sizeof(r[i].status.enhanced), "%s", enh);
		snprintf(r[i].status.text, sizeof(r[i].status.text), "%s", why);
		free(enh);
		free(why);
	}
	m.size = (off_t)(in.end - in.p);
	write_queue_file(in.p, (size_t)(in.end - in.p));

	enum dsn_kind kind = flags & 1 ? DSN_DELAYED : DSN_FAILED;
	size_t len = mp_dsn_format(&m, r, n, kind, &text);
	if (text == NULL || strlen(text) > len)
		abort();
	check_report(text, len, !(kind == DSN_FAILED && strcasecmp(m.ret, "FULL") == 0));
	free(text);
	for (size_t i = 0; i < n; i++) {
		free(rcpts[i]);
		free(notify[i]);
		free(orcpt[i]);
	}
	free(m.sender);
	free(m.ret);
	free(m.envid);
	free(m.added);
	return 0;
}
