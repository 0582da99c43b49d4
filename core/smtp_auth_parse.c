/*
 * core/smtp_auth_parse.c - the pure parts of SMTP AUTH: the command's
 * mechanism and initial response, and the fields of the decoded PLAIN
 * and LOGIN answers. Every length is the decoded one: the text may hold
 * NULs, and a field never runs past it.
 */
#include <string.h>
#include <strings.h>

#include "smtp_auth_parse.h"

int
smtp_auth_split(const char *arg, char *mech, size_t msize,
    const char **initial_r)
{
	const char *initial = strchr(arg, ' ');
	size_t mlen = initial ? (size_t)(initial - arg) : strlen(arg);

	if (mlen == 0 || mlen >= msize)
		return -1;
	memcpy(mech, arg, mlen);
	mech[mlen] = '\0';
	*initial_r = initial ? initial + 1 : NULL;
	return 0;
}

int
smtp_auth_plain_fields(const char *buf, size_t len, char *user,
    size_t usize, char *pass, size_t psize)
{
	/* The fields are NUL-separated: walk them within the decoded length. */
	const char *authz = buf, *end = buf + len;
	const char *authc = memchr(buf, '\0', len);

	if (authc == NULL)
		return -1;
	authc++;
	const char *pw = memchr(authc, '\0', (size_t)(end - authc));
	if (pw == NULL || memchr(pw + 1, '\0', (size_t)(end - pw - 1)))
		return -1;
	pw++;
	/* No NUL after pw (checked above): the password is end - pw bytes. */
	if ((authz[0] && strcasecmp(authz, authc) != 0) || authc[0] == '\0' ||
	    strlen(authc) >= usize || (size_t)(end - pw) >= psize)
		return -1;
	strcpy(user, authc);
	memcpy(pass, pw, (size_t)(end - pw));
	pass[end - pw] = '\0';
	return 0;
}

int
mp_auth_allowed(int tls, int loopback, int plaintext_auth)
{
	return tls || (plaintext_auth && loopback);
}

int
smtp_auth_login_fields(const char *user, size_t ulen, const char *pass,
    size_t plen)
{
	if (ulen == 0 || memchr(user, '\0', ulen) || memchr(pass, '\0', plen))
		return -1;
	return 0;
}
