/*
 * tests/fuzz/fuzz_smtp_command.c - libFuzzer target: every SMTP command
 * parser (verb, MAIL/RCPT paths, ESMTP parameters) on arbitrary lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), addr[320], bad[64];
	struct smtp_cmd cmd;
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	const char *params;

	memcpy(line, data, size);
	line[size] = '\0';
	smtp_parse_command(line, &cmd);
	if (smtp_parse_path(cmd.arg, "FROM", 1, addr, sizeof(addr), &params) == SMTP_PATH_OK) {
		if (strlen(addr) >= sizeof(addr))
			abort();
		smtp_parse_mail_params(params, &mp, bad, sizeof(bad));
	}
	if (smtp_parse_path(cmd.arg, "TO", 0, addr, sizeof(addr), &params) == SMTP_PATH_OK) {
		char local[320], domain[320];
		if (addr[0] == '\0')
			abort();	/* RCPT never accepts <> */
		smtp_split_address(addr, local, sizeof(local), domain, sizeof(domain));
		smtp_parse_rcpt_params(params, &rp, bad, sizeof(bad));
	}
	free(line);
	return 0;
}
