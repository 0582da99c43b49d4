/*
 * tests/fuzz/fuzz_smtp_auth.c - libFuzzer target: SMTP AUTH field
 * splitting as smtp_auth.c does it. The input's first line is the AUTH
 * argument ("PLAIN <b64>", "LOGIN", ...), the next lines the client's
 * base64 answers to the 334 challenges; an input starting with NUL is
 * instead a raw decoded PLAIN response (exact-size copy, so a read past
 * its length is caught). What is accepted must fit its buffer, the user
 * name must be non-empty and neither field may hold a NUL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_auth_parse.h"
#include "util.h"
#include "tests/fuzz/input_fields.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SASL_LINE 2048
#define USER_MAX 320
#define PASS_MAX 512

/* As response() in smtp_auth.c: "=" is empty, otherwise base64. */
static int
decode(const char *text, char *out, size_t size)
{
	if (strcmp(text, "=") == 0) {
		out[0] = '\0';
		return 0;
	}
	return mp_base64_decode(text, out, size);
}

static void
check_plain(const char *buf, size_t len)
{
	char user[USER_MAX], pass[PASS_MAX];

	if (smtp_auth_plain_fields(buf, len, user, sizeof(user), pass, sizeof(pass)) < 0)
		return;
	size_t ul = strnlen(user, sizeof(user)), pl = strnlen(pass, sizeof(pass));
	if (ul == 0 || ul == sizeof(user) || pl == sizeof(pass) || ul + pl + 2 > len ||
	    memcmp(buf + len - pl, pass, pl) != 0)
		abort();
}

static void
auth(const char *arg, const uint8_t *p, const uint8_t *end)
{
	char mech[32], buf[SASL_LINE], user[USER_MAX], pass[PASS_MAX];
	const char *initial;
	char *line = NULL;
	int n;

	if (smtp_auth_split(arg, mech, sizeof(mech), &initial) < 0)
		return;
	if (strlen(mech) >= sizeof(mech) || (initial && initial[-1] != ' '))
		abort();
	if (initial == NULL || initial[0] == '\0')
		initial = line = fuzz_take(&p, end, '\n');
	if (strcmp(mech, "PLAIN") == 0) {
		if ((n = decode(initial, buf, sizeof(buf))) >= 0)
			check_plain(buf, (size_t)n);
	} else if (strcmp(mech, "LOGIN") == 0) {
		int ulen = decode(initial, user, sizeof(user));
		char *answer = fuzz_take(&p, end, '\n');
		int plen = mp_base64_decode(answer, pass, sizeof(pass));
		if (ulen >= 0 && plen >= 0 &&
		    smtp_auth_login_fields(user, (size_t)ulen, pass, (size_t)plen) == 0 &&
		    (strlen(user) != (size_t)ulen || strlen(pass) != (size_t)plen))
			abort();
		free(answer);
	}
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;

	if (size > 0 && data[0] == '\0') {
		char *raw = malloc(size - 1 ? size - 1 : 1);
		if (raw == NULL)
			abort();
		memcpy(raw, data + 1, size - 1);
		check_plain(raw, size - 1);
		free(raw);
		return 0;
	}
	char *arg = fuzz_take(&p, end, '\n');
	auth(arg, p, end);
	free(arg);
	return 0;
}
