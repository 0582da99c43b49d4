/*
 * tests/unit/test_smtp_auth.c - SMTP AUTH's pure parts
 * (core/smtp_auth_parse.c): the command's mechanism and initial
 * response, PLAIN's NUL-separated fields within the decoded length
 * (also the host's sasl_plain for IMAP and POP3), LOGIN's answers, and
 * the one rule for when a password may be sent.
 */
#include <string.h>

#include "smtp_auth_parse.h"
#include "test.h"

static int
plain(const char *buf, size_t len, char *user, char *pass)
{
	return smtp_auth_plain_fields(buf, len, user, 320, pass, 512);
}

int
main(void)
{
	char mech[32], user[320], pass[512], big[600];
	const char *initial = NULL;

	CHECK("mechanism and initial response", smtp_auth_split("PLAIN AGEAYg==",
	    mech, sizeof(mech), &initial) == 0 && strcmp(mech, "PLAIN") == 0 &&
	    strcmp(initial, "AGEAYg==") == 0);
	CHECK("no initial response", smtp_auth_split("LOGIN", mech, sizeof(mech),
	    &initial) == 0 && initial == NULL);
	CHECK("empty mechanism refused", smtp_auth_split(" x", mech, sizeof(mech), &initial) < 0);
	memset(big, 'A', 40);
	big[40] = '\0';
	CHECK("over-long mechanism refused", smtp_auth_split(big, mech, sizeof(mech), &initial) < 0);

	CHECK("PLAIN without authzid", plain("\0alice\0pw", 9, user, pass) == 0 &&
	    strcmp(user, "alice") == 0 && strcmp(pass, "pw") == 0);
	CHECK("PLAIN with the same authzid (any case)", plain("ALICE\0alice\0pw", 14, user, pass) == 0);
	CHECK("PLAIN as someone else refused", plain("bob\0alice\0pw", 12, user, pass) < 0);
	CHECK("PLAIN with one NUL refused", plain("alice\0pw", 8, user, pass) < 0);
	CHECK("PLAIN with a third NUL refused", plain("\0alice\0pw\0x", 11, user, pass) < 0);
	CHECK("PLAIN empty authcid refused", plain("\0\0pw", 4, user, pass) < 0);
	CHECK("PLAIN empty authcid with an authzid refused", plain("alice\0\0pw", 9, user, pass) < 0);
	CHECK("PLAIN trailing NUL refused", plain("\0alice\0pw\0", 10, user, pass) < 0);
	CHECK("PLAIN authzid a prefix of the authcid refused", plain("ali\0alice\0pw", 12, user, pass) < 0);
	CHECK("PLAIN empty password kept", plain("\0alice\0", 7, user, pass) == 0 && pass[0] == '\0');
	/* The password is what the decoded length holds, not up to a NUL past it. */
	CHECK("PLAIN password ends at the decoded length",
	    plain("\0alice\0pwXYZ", 9, user, pass) == 0 && strcmp(pass, "pw") == 0);
	memset(big, 'p', sizeof(big));
	memcpy(big, "\0a\0", 3);
	CHECK("PLAIN password over its buffer refused", plain(big, sizeof(big), user, pass) < 0);

	CHECK("TLS may authenticate", mp_auth_allowed(1, 0, 0) == 1);
	CHECK("loopback without TLS may not by default", mp_auth_allowed(0, 1, 0) == 0);
	CHECK("loopback may when plaintext_auth allows", mp_auth_allowed(0, 1, 1) == 1);
	CHECK("remote without TLS never may", mp_auth_allowed(0, 0, 1) == 0);

	CHECK("LOGIN answers", smtp_auth_login_fields("alice", 5, "pw", 2) == 0);
	CHECK("LOGIN empty user refused", smtp_auth_login_fields("", 0, "pw", 2) < 0);
	CHECK("LOGIN NUL in the password refused", smtp_auth_login_fields("alice", 5, "p\0w", 3) < 0);
	TEST_EXIT();
}
