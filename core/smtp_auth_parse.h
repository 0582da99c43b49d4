/*
 * core/smtp_auth_parse.h - the pure parts of SMTP AUTH (core only):
 * splitting "AUTH mechanism [initial-response]" and the decoded fields
 * of PLAIN (RFC 4616) and LOGIN. No I/O, so tests/fuzz/fuzz_smtp_auth.c
 * runs exactly what smtp_auth.c runs. The PLAIN parser and the rule for
 * offering a password mechanism are also the host's sasl_plain and
 * auth_allowed, so IMAP and POP3 follow the same rules as SMTP.
 */
#ifndef MERPATI_SMTP_AUTH_PARSE_H
#define MERPATI_SMTP_AUTH_PARSE_H

#include <stddef.h>

/*
 * "mechanism [initial-response]": the mechanism into mech (msize bytes),
 * *initial_r at the response or NULL when there is none. 0, or -1 when
 * the mechanism is empty or does not fit.
 */
int smtp_auth_split(const char *arg, char *mech, size_t msize,
    const char **initial_r);

/*
 * A decoded PLAIN response of len bytes, [authzid] NUL authcid NUL
 * passwd: authcid into user, passwd into pass. An authzid must name the
 * authcid (no proxy logins). 0, or -1 when malformed or too long.
 */
int smtp_auth_plain_fields(const char *buf, size_t len, char *user,
    size_t usize, char *pass, size_t psize);

/*
 * May a session send a password: under TLS, or on loopback when the
 * listener's plaintext_auth allows it (RFC 2595 3.1, RFC 4954 4).
 * 1 or 0.
 */
int mp_auth_allowed(int tls, int loopback, int plaintext_auth);

/* The two decoded LOGIN answers: a user name and a password, neither
 * holding a NUL, the name not empty. 0, or -1. */
int smtp_auth_login_fields(const char *user, size_t ulen, const char *pass,
    size_t plen);

#endif
