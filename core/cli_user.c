/*
 * core/cli_user.c - `merpati user add|del|passwd|list` through the
 * active auth module, so whichever backend is configured is managed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "settings.h"

/* One line from stdin, without echo when it is a terminal. */
static int
read_password(char *buf, size_t size)
{
	struct termios old, quiet;
	int tty = isatty(0) && tcgetattr(0, &old) == 0;

	if (tty) {
		fputs("Password: ", stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	char *ok = fgets(buf, (int)size, stdin);
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputs("\n", stderr);
	}
	if (ok == NULL)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/*
 * Addresses become mailbox paths (<root>/<domain>/<local>) in the stores,
 * so `user add` refuses what could name another directory: a slash or
 * backslash, a part that starts with "." (".", "..", hidden), control
 * characters; the domain is a plain host name. NULL when fine, else why.
 */
static const char *
address_problem(const char *addr)
{
	const char *at = strrchr(addr, '@');

	if (at == NULL || at == addr || at[1] == '\0' || strchr(addr, '@') != at)
		return "want local@domain with one @";
	if (addr[0] == '.' || at[1] == '.' || at[-1] == '.' ||
	    addr[strlen(addr) - 1] == '.')
		return "local part and domain must not start or end with \".\"";
	for (const char *p = addr; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '/' || c == '\\' || c <= 0x20 || c == 0x7f)
			return "no \"/\", \"\\\", spaces or control characters";
		if (p > at && !isalnum(c) && c != '.' && c != '-')
			return "the domain takes letters, digits, \"-\" and \".\" only";
		if (c == '.' && p[1] == '.')
			return "no \"..\"";
	}
	return NULL;
}

static void
print_user(void *arg, const char *address)
{
	(void)arg;
	printf("%s\n", address);
}

static int
result(int rc, const char *what, const char *addr, const char *err)
{
	if (rc == MP_OK) {
		printf("%s %s\n", what, addr);
		return 0;
	}
	fprintf(stderr, "merpati: user %s: %s\n", addr, err ? err : "failed");
	return 1;
}

static int
with_password(const char *verb, const char *addr)
{
	const struct mp_auth_ops *ops = mp_core.auth.ops;
	char pw[1024];
	const char *err = NULL;
	int rc;

	const char *bad = strcmp(verb, "add") == 0 ? address_problem(addr) : NULL;
	if (bad != NULL) {
		fprintf(stderr, "merpati: user add: malformed address \"%s\" "
		    "refused: %s (it names the mailbox directory)\n", addr, bad);
		return 1;
	}
	if (read_password(pw, sizeof(pw)) < 0 || pw[0] == '\0') {
		fputs("merpati: no password given on stdin\n", stderr);
		return 1;
	}
	if (strcmp(verb, "add") == 0)
		rc = ops->user_add(mp_core.auth.ctx, addr, pw, &err);
	else
		rc = ops->user_passwd(mp_core.auth.ctx, addr, pw, &err);
	memset(pw, 0, sizeof(pw));
	return result(rc, strcmp(verb, "add") == 0 ? "added" :
	    "password changed for", addr, err);
}

/* The administration calls may be NULL (auth.h): then the auth module's
 * users are managed elsewhere. 1 when verb's call is there. */
static int
can_manage(const char *verb)
{
	const struct mp_auth_ops *o = mp_core.auth.ops;

	return strcmp(verb, "list") == 0 ? o->user_list != NULL :
	    strcmp(verb, "add") == 0 ? o->user_add != NULL :
	    strcmp(verb, "passwd") == 0 ? o->user_passwd != NULL :
	    strcmp(verb, "del") == 0 ? o->user_del != NULL : 1;
}

int
cli_user(const char *config, char **overrides, size_t n, int argc,
    char **argv)
{
	const char *err = NULL;
	int rc;

	if (argc < 1 || (strcmp(argv[0], "list") != 0 && argc != 2)) {
		fputs("usage: merpati user add|del|passwd ADDRESS | user list\n",
		    stderr);
		return 2;
	}
	cli_setup(config, overrides, n, 1);
	if (mp_core.auth.ops == NULL) {
		fputs("merpati: no auth module is configured\n", stderr);
		rc = 1;
	} else if (!can_manage(argv[0])) {
		fprintf(stderr, "merpati: the auth module cannot %s users; "
		    "manage them where it reads them from\n", argv[0]);
		rc = 1;
	} else if (strcmp(argv[0], "list") == 0) {
		rc = mp_core.auth.ops->user_list(mp_core.auth.ctx, print_user,
		    NULL, &err) == MP_OK ? 0 : 1;
		if (rc)
			fprintf(stderr, "merpati: user list: %s\n", err ? err : "failed");
	} else if (strcmp(argv[0], "add") == 0 || strcmp(argv[0], "passwd") == 0)
		rc = with_password(argv[0], argv[1]);
	else if (strcmp(argv[0], "del") == 0) {
		/* Apart: err must be read after the call has set it. */
		rc = mp_core.auth.ops->user_del(mp_core.auth.ctx, argv[1], &err);
		rc = result(rc, "deleted", argv[1], err);
	} else {
		fprintf(stderr, "merpati: unknown user command: %s\n", argv[0]);
		rc = 2;
	}
	mp_core_shutdown();
	return rc;
}
