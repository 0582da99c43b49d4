/*
 * tests/tools/dkim_tool.c - a command-line driver of the DKIM engine
 * (modules/dkim/dkim_lib.h) for tests/e2e/test_dkim_interop.py, which
 * compares it with independent implementations. Not installed.
 *
 *   dkim_tool sign DOMAIN SELECTOR KEYFILE [TIME] < msg > signed msg
 *   dkim_tool verify KEYS [allow-l] < msg     one line per signature:
 *       "RESULT d=DOMAIN s=SELECTOR a=ALG bits=N reason=TEXT"
 *   dkim_tool keygen rsa|ed25519 BITS KEYFILE  prints the TXT record
 *
 * KEYS is a file of lines "NAME RECORD" (NAME = sel._domainkey.domain),
 * the DNS of the test: the TXT callback looks names up there. A record
 * "TEMPFAIL" makes the lookup fail temporarily.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_lib.h"

#define MAX_MESSAGE (16 * 1024 * 1024)

static char *
read_all(FILE *f, size_t *len_r)
{
	char *buf = malloc(MAX_MESSAGE);
	size_t n = 0, got;

	if (buf == NULL)
		return NULL;
	while (n < MAX_MESSAGE && (got = fread(buf + n, 1, MAX_MESSAGE - n, f)) > 0)
		n += got;
	*len_r = n;
	return buf;
}

static int
txt_from_file(void *ctx, const char *name, char *out, size_t size)
{
	FILE *f = fopen(ctx, "r");
	char line[8192];
	size_t nlen = strlen(name);
	int found = 0;

	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, name, nlen) != 0 || line[nlen] != ' ')
			continue;
		if (strcmp(line + nlen + 1, "TEMPFAIL") == 0) {
			fclose(f);
			return -1;
		}
		snprintf(out, size, "%s", line + nlen + 1);
		found = 1;
	}
	fclose(f);
	return found;
}

static int
do_sign(int argc, char **argv)
{
	struct dkim_signer signer;
	const char *error;
	char *msg, *header;
	size_t len;

	if (argc < 5)
		return 2;
	if (dkim_signer_load(&signer, argv[2], argv[3], argv[4], &error) < 0) {
		fprintf(stderr, "dkim_tool: %s\n", error);
		return 1;
	}
	if ((msg = read_all(stdin, &len)) == NULL ||
	    dkim_sign(&signer, msg, len, argc > 5 ? atoll(argv[5]) : time(NULL),
	    &header, &error) < 0) {
		fprintf(stderr, "dkim_tool: %s\n", msg ? error : "out of memory");
		return 1;
	}
	fputs(header, stdout);
	fwrite(msg, 1, len, stdout);
	free(header);
	free(msg);
	dkim_signer_free(&signer);
	return 0;
}

static int
do_verify(int argc, char **argv)
{
	struct dkim_verify_opts opts = { 0 };
	struct dkim_verdict v[8];
	size_t len, n;
	char *msg;

	if (argc < 3)
		return 2;
	opts.allow_length = argc > 3 && strcmp(argv[3], "allow-l") == 0;
	if ((msg = read_all(stdin, &len)) == NULL)
		return 1;
	n = dkim_verify(msg, len, &opts, txt_from_file, argv[2], v, 8);
	if (n == 0)
		printf("none\n");
	for (size_t i = 0; i < n; i++)
		printf("%s d=%s s=%s a=%s bits=%d reason=%s\n",
		    dkim_result_name(v[i].result), v[i].domain, v[i].selector,
		    dkim_alg_name(v[i].alg), v[i].key_bits, v[i].reason);
	free(msg);
	return 0;
}

static int
do_keygen(int argc, char **argv)
{
	const char *error;
	char *txt;

	if (argc < 5)
		return 2;
	if (dkim_keygen(strcmp(argv[2], "ed25519") == 0 ? DKIM_ED25519_SHA256 :
	    DKIM_RSA_SHA256, atoi(argv[3]), argv[4], &txt, &error) < 0) {
		fprintf(stderr, "dkim_tool: %s\n", error);
		return 1;
	}
	printf("%s\n", txt);
	free(txt);
	return 0;
}

int
main(int argc, char **argv)
{
	int rc = 2;

	if (argc > 1 && strcmp(argv[1], "sign") == 0)
		rc = do_sign(argc, argv);
	else if (argc > 1 && strcmp(argv[1], "verify") == 0)
		rc = do_verify(argc, argv);
	else if (argc > 1 && strcmp(argv[1], "keygen") == 0)
		rc = do_keygen(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: dkim_tool sign|verify|keygen ... (see the source)\n");
	return rc;
}
