/*
 * tests/tools/spf_tool.c - runs merpati's SPF engine against a fake zone
 * file (format in spf_zone.h) for tests/e2e/test_spf_interop.py, which
 * compares its verdicts with pyspf's on the same zone.
 *
 * Usage: spf_tool ZONEFILE IP SENDER HELO [RECEIVER]
 * Prints "RESULT<TAB>EXPLANATION" on one line; exit 0, or 2 on misuse.
 * SENDER "" is the null sender (the HELO identity is checked).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/tools/spf_zone.h"

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (f == NULL)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = ferror(f) ? NULL : calloc(1, 1);	/* empty: no records */
	}
	fclose(f);
	return buf;
}

int
main(int argc, char **argv)
{
	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: spf_tool ZONEFILE IP SENDER HELO [RECEIVER]\n");
		return 2;
	}
	char *text = read_file(argv[1]);
	struct zone z;
	struct spf_request req = {
		.sender = argv[3], .helo = argv[4],
		.receiver = argc == 6 ? argv[5] : NULL, .now = 1700000000,
	};
	if (text == NULL || zone_load(&z, text) < 0 || spf_ip_parse(argv[2], &req.ip) < 0) {
		fprintf(stderr, "spf_tool: bad zone file or IP address\n");
		free(text);
		return 2;
	}
	struct spf_dns dns = zone_dns(&z);
	struct spf_outcome out;
	spf_check_mailfrom(&dns, &req, &out);
	printf("%s\t%s\n", spf_result_name(out.result), out.explanation);
	fprintf(stderr, "problem: %s; lookups %u, void %u\n", out.problem,
	    out.lookups, out.void_lookups);
	zone_free(&z);
	free(text);
	return 0;
}
