/*
 * tests/unit/test_pop3.c - POP3 command syntax: keyword split and
 * message numbers (RFC 1939 3, 5).
 */
#include <stdio.h>
#include <string.h>

#include "../../modules/pop3/pop3_parse.h"
#include "test.h"

int
main(void)
{
	char verb[16];
	const char *arg, *rest;
	size_t n;

	CHECK("split", pop3_split("retr 12", verb, sizeof(verb), &arg) == 0 &&
	    strcmp(verb, "RETR") == 0 && strcmp(arg, "12") == 0);
	CHECK("no argument", pop3_split("STAT", verb, sizeof(verb), &arg) == 0 && arg[0] == '\0');
	CHECK("empty refused", pop3_split("", verb, sizeof(verb), &arg) < 0);
	CHECK("leading space refused", pop3_split(" STAT", verb, sizeof(verb), &arg) < 0);
	CHECK("non-letters refused", pop3_split("ST4T", verb, sizeof(verb), &arg) < 0);
	CHECK("over-long verb refused", pop3_split("ABCDEFGHIJKLMNOPQRS", verb, sizeof(verb), &arg) < 0);
	CHECK("number", pop3_number("3", 5, &n, NULL) == 0 && n == 3);
	CHECK("number with rest", pop3_number("2 10", 5, &n, &rest) == 0 && n == 2 &&
	    strcmp(rest, "10") == 0);
	CHECK("zero out of range", pop3_number("0", 5, &n, NULL) == -2);
	CHECK("too big out of range", pop3_number("6", 5, &n, NULL) == -2);
	CHECK("huge refused", pop3_number("99999999999999999999", 5, &n, NULL) == -1);
	CHECK("sign refused", pop3_number("+1", 5, &n, NULL) == -1);
	CHECK("trailing junk refused", pop3_number("1x", 5, &n, NULL) == -1);
	CHECK("extra argument refused", pop3_number("1 2", 5, &n, NULL) == -1);
	TEST_EXIT();
}
