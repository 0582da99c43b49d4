/*
 * modules/milter/milter_link.c - one connection to one milter (see
 * milter_link.h): option negotiation, commands and macros out, replies
 * in. Every packet is built in, and read into, the session's buffer of
 * MILTER_MAX_PACKET octets, so nothing a milter sends can grow memory.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "milter_io.h"
#include "milter_link.h"

static int
send_pkt(struct milter_link *l, struct milter_pkt *p, int timeout_ms,
    const char **error_r)
{
	size_t n = milter_pkt_end(p);

	if (n == 0) {
		*error_r = "command too long for a milter packet";
		return -1;
	}
	return milter_io_send(l->fd, p->buf, n, timeout_ms, error_r);
}

static void
free_symlists(struct milter_link *l)
{
	for (int i = 0; i < MILTER_STAGES; i++) {
		free(l->symlist[i]);
		l->symlist[i] = NULL;
	}
}

/* Keep the OPTNEG answer; it points into the buffer the next read reuses. */
static int
keep_optneg(struct milter_link *l, const struct milter_optneg *o,
    const char **error_r)
{
	/* a milter may only narrow what we offered; what it asks beyond
	 * that (larger chunks, leading spaces) it does not get */
	l->actions = o->actions & MILTER_ACTIONS;
	l->protocol = o->protocol & MILTER_PROTOCOL;
	for (int i = 0; i < MILTER_STAGES; i++) {
		if (o->symlist[i] == NULL)
			continue;
		if ((l->symlist[i] = strdup(o->symlist[i])) == NULL) {
			*error_r = "out of memory";
			return -1;
		}
	}
	return 0;
}

static int
negotiate(struct milter_link *l, const char **error_r)
{
	struct milter_pkt p;
	struct milter_optneg o;
	size_t len;

	milter_pkt_begin(&p, l->buf, MILTER_MAX_PACKET, SMFIC_OPTNEG);
	milter_pkt_u32(&p, MILTER_VERSION);
	milter_pkt_u32(&p, MILTER_ACTIONS);
	milter_pkt_u32(&p, MILTER_PROTOCOL);
	if (send_pkt(l, &p, l->conf->command_ms, error_r) < 0 ||
	    milter_io_recv(l->fd, l->buf, &len, l->conf->command_ms, error_r) < 0 ||
	    milter_optneg_parse(l->buf, len, &o, error_r) < 0)
		return -1;
	return keep_optneg(l, &o, error_r);
}

int
milter_link_open(struct milter_link *l, const char **error_r)
{
	l->fd = milter_io_connect(&l->conf->addr, l->conf->connect_ms, error_r);
	if (l->fd < 0)
		return -1;
	if (negotiate(l, error_r) < 0) {
		milter_link_close(l, 0);
		return -1;
	}
	return 0;
}

void
milter_link_close(struct milter_link *l, int quit)
{
	if (l->fd >= 0) {
		if (quit) {
			const char *ignored;
			milter_link_send(l, SMFIC_QUIT, NULL, 0, &ignored);
		}
		close(l->fd);
		l->fd = -1;
	}
	free_symlists(l);
}

int
milter_link_macros(struct milter_link *l, enum milter_stage stage, char cmd,
    const struct milter_macro *m, size_t n, const char **error_r)
{
	struct milter_pkt p;
	size_t sent = 0;

	milter_pkt_begin(&p, l->buf, MILTER_MAX_PACKET, SMFIC_MACRO);
	milter_pkt_byte(&p, (unsigned char)cmd);
	for (size_t i = 0; i < n; i++) {
		if (m[i].value == NULL ||
		    !milter_macro_wanted(l->symlist[stage], m[i].name))
			continue;
		milter_pkt_str(&p, m[i].name);
		milter_pkt_str(&p, m[i].value);
		sent++;
	}
	if (sent == 0)
		return 0;
	return send_pkt(l, &p, l->conf->command_ms, error_r);
}

int
milter_link_send(struct milter_link *l, char cmd, const void *data, size_t len,
    const char **error_r)
{
	struct milter_pkt p;

	milter_pkt_begin(&p, l->buf, MILTER_MAX_PACKET, cmd);
	milter_pkt_bytes(&p, data, len);
	return send_pkt(l, &p, cmd == SMFIC_BODY ? l->conf->content_ms :
	    l->conf->command_ms, error_r);
}

int
milter_link_send_strs(struct milter_link *l, char cmd, const char *const *strs,
    size_t n, const char **error_r)
{
	struct milter_pkt p;

	milter_pkt_begin(&p, l->buf, MILTER_MAX_PACKET, cmd);
	for (size_t i = 0; i < n; i++)
		milter_pkt_str(&p, strs[i]);
	return send_pkt(l, &p, l->conf->command_ms, error_r);
}

/* The action flag a modification needs. */
static uint32_t
action_for(char code)
{
	switch (code) {
	case SMFIR_ADDHEADER: case SMFIR_INSHEADER: return SMFIF_ADDHDRS;
	case SMFIR_CHGHEADER: return SMFIF_CHGHDRS;
	case SMFIR_REPLBODY: return SMFIF_CHGBODY;
	case SMFIR_ADDRCPT: return SMFIF_ADDRCPT;
	case SMFIR_ADDRCPT_PAR: return SMFIF_ADDRCPT_PAR;
	case SMFIR_DELRCPT: return SMFIF_DELRCPT;
	case SMFIR_QUARANTINE: return SMFIF_QUARANTINE;
	case SMFIR_CHGFROM: return SMFIF_CHGFROM;
	default: return 0;
	}
}

static void
set_answer(struct milter_answer *a, enum milter_verdict v)
{
	memset(a, 0, sizeof(*a));
	a->verdict = v;
}

/* A verdict reply into *a: 1 done, 0 not a verdict, -1 malformed. */
static int
verdict(const struct milter_reply *r, struct milter_answer *a,
    const char **error_r)
{
	switch (r->code) {
	case SMFIR_CONTINUE: set_answer(a, MV_CONTINUE); return 1;
	case SMFIR_ACCEPT: set_answer(a, MV_ACCEPT); return 1;
	case SMFIR_REJECT: set_answer(a, MV_REJECT); return 1;
	case SMFIR_TEMPFAIL: set_answer(a, MV_TEMPFAIL); return 1;
	case SMFIR_DISCARD: set_answer(a, MV_DISCARD); return 1;
	case SMFIR_SKIP: set_answer(a, MV_SKIP); return 1;
	case SMFIR_SHUTDOWN: case SMFIR_CONN_FAIL:
		/* "shut down the connection": as Postfix, a tempfail */
		set_answer(a, MV_TEMPFAIL);
		return 1;
	case SMFIR_REPLYCODE:
		set_answer(a, MV_REPLY);
		if (milter_replycode_parse(r->value, &a->code, a->enhanced,
		    sizeof(a->enhanced), a->text, sizeof(a->text)) < 0) {
			*error_r = "malformed SMTP reply from the milter";
			return -1;
		}
		return 1;
	default:
		return 0;
	}
}

int
milter_link_answer(struct milter_link *l, int timeout_ms,
    const struct milter_mods *mods, struct milter_answer *a,
    const char **error_r)
{
	unsigned progress = 0;

	for (;;) {
		struct milter_reply r;
		size_t len;
		int v;
		if (milter_io_recv(l->fd, l->buf, &len, timeout_ms, error_r) < 0 ||
		    milter_reply_parse(l->buf, len, &r, error_r) < 0)
			return -1;
		if (r.code == SMFIR_PROGRESS) {
			/* each restarts the wait, as in Postfix; but not forever */
			if (++progress > MILTER_MAX_PROGRESS) {
				*error_r = "too many progress replies";
				return -1;
			}
			continue;
		}
		if ((v = verdict(&r, a, error_r)) != 0)
			return v < 0 ? -1 : 0;
		if (mods == NULL) {
			*error_r = "modification before end of message";
			return -1;
		}
		if (!(l->actions & action_for(r.code))) {
			*error_r = "modification the milter did not negotiate";
			return -1;
		}
		if (mods->apply(mods->arg, &r, error_r) < 0)
			return -1;
	}
}
