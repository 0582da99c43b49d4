/*
 * core/smtp_client_reply.c - parsing one line of an SMTP server's reply
 * (RFC 5321 4.2, RFC 3463 enhanced codes). Pure, so it is unit-tested
 * and fuzzed on its own.
 */
#include <ctype.h>
#include <string.h>

#include "smtp_client.h"

int
smtp_client_parse_reply(const char *line, int *code, int *more,
    char *enhanced, size_t esize, const char **text)
{
	const char *p = line + 4;
	size_t elen;

	if (!isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (line[3] != ' ' && line[3] != '-' && line[3] != '\0'))
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*more = line[3] == '-';
	if (line[3] == '\0')
		p = line + 3;
	enhanced[0] = '\0';
	elen = strspn(p, "0123456789.");
	if (elen >= 5 && elen < esize && p[0] == line[0] && p[1] == '.' &&
	    (p[elen] == ' ' || p[elen] == '\0')) {
		memcpy(enhanced, p, elen);
		enhanced[elen] = '\0';
		p += elen;
		while (*p == ' ')
			p++;
	}
	*text = p;
	return 0;
}
