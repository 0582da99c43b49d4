/*
 * modules/pop3/pop3_parse.h - POP3 command syntax (RFC 1939 3): the
 * keyword and argument split, and message-number arguments. Pure, so
 * it is unit-tested and fuzzed on its own.
 */
#ifndef MERPATI_POP3_PARSE_H
#define MERPATI_POP3_PARSE_H

#include <stddef.h>

/* Split "VERB arg..." into an upper-cased verb (at most 4 letters in
 * RFC 1939, 15 here) and the rest. 0, or -1 when there is no verb. */
int pop3_split(const char *line, char *verb, size_t vsize, const char **arg_r);

/* A message number 1..max at arg; *rest_r gets what follows one space
 * (NULL: nothing may follow). 0, -1 syntax, -2 out of range. */
int pop3_number(const char *arg, size_t max, size_t *n_r, const char **rest_r);

#endif
