/*
 * modules/pop3/pop3_parse.c - POP3 command syntax (see pop3_parse.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_parse.h"

int
pop3_split(const char *line, char *verb, size_t vsize, const char **arg_r)
{
	size_t len = strcspn(line, " ");

	if (len == 0 || len >= vsize)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isalpha((unsigned char)line[i]))
			return -1;
		verb[i] = (char)toupper((unsigned char)line[i]);
	}
	verb[len] = '\0';
	*arg_r = line[len] ? line + len + 1 : "";
	return 0;
}

int
pop3_number(const char *arg, size_t max, size_t *n_r, const char **rest_r)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)arg[0]) || strspn(arg, "0123456789") > 9)
		return -1;
	n = strtoul(arg, &end, 10);
	if (*end != '\0' && *end != ' ')
		return -1;
	if (rest_r)
		*rest_r = *end == ' ' ? end + 1 : end;
	else if (*end != '\0')
		return -1;
	if (n == 0 || n > max)
		return -2;
	*n_r = n;
	return 0;
}
