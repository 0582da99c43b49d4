/*
 * modules/milter/milter_link.h - one session's connection to one milter:
 * open and negotiate, send a command with its macros, read replies up
 * to the one that decides. What the verdicts mean for the SMTP session,
 * and the order of milters, are milter.c's business.
 */
#ifndef MILTER_LINK_H
#define MILTER_LINK_H

#include <stdint.h>

#include <merpati/merpati.h>

#include "milter_proto.h"

enum milter_default {
	MILTER_DEFAULT_TEMPFAIL, MILTER_DEFAULT_ACCEPT, MILTER_DEFAULT_REJECT
};

/* One configured milter (read-only after init, shared by sessions). */
struct milter_conf {
	char name[64];
	char socket[256];
	struct milter_addr addr;
	int connect_ms, command_ms, content_ms;
	enum milter_default default_action;
};

/* A macro the MTA offers; a NULL value is not sent. */
struct milter_macro {
	const char *name;	/* "j", "{client_addr}" */
	const char *value;
};

/* What a milter decided about an event. */
enum milter_verdict {
	MV_CONTINUE, MV_ACCEPT, MV_REJECT, MV_TEMPFAIL, MV_DISCARD,
	MV_REPLY,		/* REPLYCODE: code/enhanced/text are its reply */
	MV_SKIP			/* no more body chunks, please */
};

struct milter_answer {
	enum milter_verdict verdict;
	int code;
	char enhanced[16];
	char text[256];
};

/* End-of-message modifications, handed over one by one as they come. */
struct milter_mods {
	/* 0, or -1 with *error_r: the milter is treated as failed. */
	int (*apply)(void *arg, const struct milter_reply *r,
	    const char **error_r);
	void *arg;
};

struct milter_link {
	const struct milter_conf *conf;
	unsigned char *buf;	/* MILTER_MAX_PACKET octets, the session's */
	int fd;			/* -1 when not connected */
	uint32_t actions, protocol;	/* as negotiated */
	char *symlist[MILTER_STAGES];	/* the macros it asked for, or NULL */
	int dead;		/* failed; its default action was applied */
	int session_done;	/* accepted the session */
	int msg_done;		/* accepted (or discarded) this message */
	int in_message;		/* MAIL sent, end of message not finished */
	size_t rcpts_sent;
};

/* Connect and negotiate. 0, or -1 with *error_r (link closed). */
int milter_link_open(struct milter_link *l, const char **error_r);
/* Say QUIT (when connected and quit is set) and close. */
void milter_link_close(struct milter_link *l, int quit);

/* Send SMFIC_MACRO for cmd with the macros the milter wants at stage. */
int milter_link_macros(struct milter_link *l, enum milter_stage stage,
    char cmd, const struct milter_macro *m, size_t n, const char **error_r);
/* Send one command with data (len octets). */
int milter_link_send(struct milter_link *l, char cmd, const void *data,
    size_t len, const char **error_r);
/* Send a command whose data is a list of NUL-terminated strings. */
int milter_link_send_strs(struct milter_link *l, char cmd,
    const char *const *strs, size_t n, const char **error_r);

/* PROGRESS replies one answer may take (each restarting the wait). */
#define MILTER_MAX_PROGRESS 1000

/*
 * Read replies until a verdict, waiting at most timeout_ms for each
 * packet (PROGRESS restarts the wait, at most MILTER_MAX_PROGRESS
 * times). Modifications are passed to
 * mods, or are a protocol error when mods is NULL (only end of message
 * may modify) or the milter did not negotiate that action. 0 with *a,
 * or -1 with *error_r.
 */
int milter_link_answer(struct milter_link *l, int timeout_ms,
    const struct milter_mods *mods, struct milter_answer *a,
    const char **error_r);

#endif
