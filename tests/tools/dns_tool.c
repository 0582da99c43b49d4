/*
 * tests/tools/dns_tool.c - runs dns_mx's generic lookup (the one every
 * module reaches through the host's dns_lookup) against a nameserver,
 * for tests/e2e/test_dns_lookup.py, which serves the records from a
 * dnsmasq on loopback.
 *
 * Usage: dns_tool NAMESERVER BUFSIZE TYPE NAME [TYPE NAME ...]
 * (TYPE a number, 16 for TXT.) For each lookup it prints one line:
 * "STATUS COUNT TRUNCATED AUTHENTICATED TTL" and then each record as
 * hex, tab-separated. Lookups run in order on one module instance, so a
 * repeated one comes from the cache. Exit 0, or 2 on misuse.
 */
#include <stdio.h>
#include <stdlib.h>

#include <merpati/util.h>

#include "mock_host.h"

extern const struct mp_module merpati_module;

static void
print_answer(const unsigned char *buf, const struct mp_dns_answer *a)
{
	const unsigned char *rec;
	size_t off = 0, len;

	printf("%u %u %u %u %u", a->status, a->count, a->truncated,
	    a->authenticated, a->ttl);
	while (mp_dns_next(buf, a, &off, &rec, &len)) {
		putchar('\t');
		for (size_t i = 0; i < len; i++)
			printf("%02x", rec[i]);
	}
	putchar('\n');
}

int
main(int argc, char **argv)
{
	const char *err = NULL;
	void *ctx;

	if (argc < 5 || argc % 2 == 0) {
		fprintf(stderr, "usage: dns_tool NAMESERVER BUFSIZE TYPE NAME [TYPE NAME ...]\n");
		return 2;
	}
	const char *kv[] = { "nameserver", argv[1], "timeout", "2s", "attempts", "1", NULL };
	struct mp_conf conf = { kv, NULL };
	size_t size = strtoul(argv[2], NULL, 10);
	unsigned char *buf = malloc(size ? size : 1);

	if (buf == NULL || merpati_module.init(&mock_host, &conf, &ctx, &err) != MP_OK) {
		fprintf(stderr, "dns_tool: %s\n", err ? err : "out of memory");
		return 2;
	}
	for (int i = 3; i + 1 < argc; i += 2) {
		struct mp_dns_answer a = { .struct_size = sizeof(a) };
		merpati_module.resolve->lookup(ctx, argv[i + 1], atoi(argv[i]), buf,
		    size, &a);
		print_answer(buf, &a);
	}
	merpati_module.fini(ctx);
	free(buf);
	return 0;
}
