/*
 * core/smtp_parse.h - the SMTP command parser: pure functions over one
 * command line (CRLF already removed), no I/O, so they are unit-tested
 * and fuzzed on their own. RFC 5321 section 4.1.
 */
#ifndef MERPATI_SMTP_PARSE_H
#define MERPATI_SMTP_PARSE_H

#include <stddef.h>

enum smtp_verb {
	SMTP_UNKNOWN = 0, SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT,
	SMTP_DATA, SMTP_BDAT, SMTP_RSET, SMTP_NOOP, SMTP_QUIT, SMTP_VRFY,
	SMTP_EXPN, SMTP_HELP, SMTP_STARTTLS, SMTP_AUTH
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg;	/* points into the line; "" when none */
};

/* Split a command line into verb and argument. Never fails. */
void smtp_parse_command(const char *line, struct smtp_cmd *cmd);

enum smtp_path_result {
	SMTP_PATH_OK = 0,
	SMTP_PATH_SYNTAX,	/* 501 5.5.4 / 5.1.3 */
	SMTP_PATH_TOO_LONG	/* 501 5.1.3 (RFC 5321 4.5.3.1) */
};

/*
 * Parse "FROM:<path> params" (keyword "FROM") or "TO:<path> params".
 * addr gets the address without brackets ("" for <> when allow_empty),
 * source routes dropped; *params_r points after the path. Keyword is
 * case-insensitive; one space after the colon is tolerated.
 */
enum smtp_path_result smtp_parse_path(const char *arg, const char *keyword,
    int allow_empty, char *addr, size_t addrsize, const char **params_r);

/* ESMTP parameters of MAIL FROM. */
struct smtp_mail_params {
	long long size;		/* -1 when not given */
	int body_8bit;		/* BODY=8BITMIME */
	int smtputf8;
	char ret[8];		/* DSN RET=FULL|HDRS, "" when not given */
	char envid[101];	/* DSN ENVID (xtext, RFC 3461 4.4), "" */
};

/* ESMTP parameters of RCPT TO (DSN, RFC 3461). */
struct smtp_rcpt_params {
	char notify[40];	/* "NEVER" or a list of SUCCESS,FAILURE,DELAY; "" */
	char orcpt[520];	/* "rfc822;xtext-address", "" */
};

/* Parse RCPT parameters; 0, or -1 with the bad keyword in bad. */
int smtp_parse_rcpt_params(const char *params, struct smtp_rcpt_params *p,
    char *bad, size_t badsize);

/* 1 if s is valid xtext (RFC 3461 4): printable ASCII, no '=' or
 * space, '+' followed by two upper-case hex digits. */
int smtp_xtext_valid(const char *s);

/*
 * Parse "KEY=VALUE KEY ..." after MAIL FROM. 0 ok; -1 unknown or bad
 * parameter (555 5.5.4), with the offending keyword copied to bad.
 */
int smtp_parse_mail_params(const char *params, struct smtp_mail_params *p,
    char *bad, size_t badsize);

/* Split "local@domain"; 0 ok, -1 when there is no single '@'. */
int smtp_split_address(const char *addr, char *local, size_t lsize,
    char *domain, size_t dsize);

#endif
