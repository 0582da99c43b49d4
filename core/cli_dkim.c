/*
 * core/cli_dkim.c - `merpati dkim keygen DOMAIN SELECTOR [--type rsa|
 * ed25519] [--bits N] [--dir D]`: makes a DKIM signing key with the dkim
 * module's engine (modules/dkim/dkim_lib.h, linked into the CLI),
 * writes it as DIR/DOMAIN.SELECTOR.key (mode 0600, never overwriting)
 * and prints the DNS TXT record to publish and the config lines that
 * use the key. DIR defaults to "dkim" beside the config file, the path
 * the `sign` entries of modules.dkim name relative to the config dir.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "modules/dkim/dkim_lib.h"

static int
keygen_usage(void)
{
	fputs("usage: merpati dkim keygen DOMAIN SELECTOR [--type rsa|ed25519]"
	    " [--bits N] [--dir DIR]\n", stderr);
	return 2;
}

/* A DNS label sequence we are willing to put in a file name: letters,
 * digits, '-', '_' and inner dots. */
static int
safe_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' ||
	    strstr(s, "..") != NULL)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		    *s == '.'))
			return 0;
	return 1;
}

/* "dkim" in the directory of the config file. */
static void
default_dir(const char *config, char *out, size_t size)
{
	const char *slash = strrchr(config, '/');

	if (slash == NULL)
		snprintf(out, size, "dkim");
	else
		snprintf(out, size, "%.*s/dkim", (int)(slash - config), config);
}

static int
keygen(const char *config, const char *domain, const char *selector,
    enum dkim_alg alg, int bits, const char *dir)
{
	char dirbuf[PATH_MAX], path[PATH_MAX];
	char *txt = NULL, *zone;
	const char *error;

	if (dir == NULL) {
		default_dir(config, dirbuf, sizeof(dirbuf));
		dir = dirbuf;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "merpati: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.%s.key", dir, domain,
	    selector) >= sizeof(path)) {
		fprintf(stderr, "merpati: %s: path too long\n", dir);
		return 1;
	}
	if (dkim_keygen(alg, bits, path, &txt, &error) < 0) {
		fprintf(stderr, "merpati: %s: %s\n", path, error);
		return 1;
	}
	if ((zone = dkim_txt_zone_line(selector, domain, txt)) == NULL) {
		free(txt);
		fprintf(stderr, "merpati: out of memory\n");
		return 1;
	}
	printf("; private key written to %s (mode 0600)\n"
	    "; publish this TXT record in the zone of %s:\n%s\n"
	    "; and sign with it in the config:\n"
	    ";   modules.dkim = { sign = ( { domain = \"%s\"; selector = \"%s\";"
	    " key = \"%s\"; } ); };\n", path, domain, zone, domain, selector,
	    path);
	free(zone);
	free(txt);
	return 0;
}

int
cli_dkim(const char *config, char **overrides, size_t n, int argc,
    char **argv)
{
	enum dkim_alg alg = DKIM_RSA_SHA256;
	const char *dir = NULL;
	int bits = 0;

	(void)overrides; (void)n;
	if (argc < 3 || strcmp(argv[0], "keygen") != 0)
		return keygen_usage();
	if (!safe_name(argv[1]) || !safe_name(argv[2])) {
		fprintf(stderr, "merpati: domain and selector are DNS names "
		    "(letters, digits, '-', '_', '.')\n");
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "rsa") == 0)
				alg = DKIM_RSA_SHA256;
			else if (strcmp(argv[i], "ed25519") == 0)
				alg = DKIM_ED25519_SHA256;
			else
				return keygen_usage();
		} else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc) {
			bits = atoi(argv[++i]);
			if (bits <= 0)
				return keygen_usage();
		} else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else {
			return keygen_usage();
		}
	}
	return keygen(config, argv[1], argv[2], alg, bits, dir);
}
