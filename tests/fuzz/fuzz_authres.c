/*
 * tests/fuzz/fuzz_authres.c - libFuzzer target: the header scanning the
 * spf, dkim and dmarc modules share (modules/dmarc/authres.h) on an
 * arbitrary header section: finding the From domain (out is lower case,
 * without separators, and fits), and removing the Authentication-Results
 * fields that claim our authserv-id through a stub host that checks every
 * deletion names an existing field (1 <= nth <= the fields of that name
 * still there). It aborts when one of those breaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/dmarc/authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned remaining;	/* Authentication-Results fields left */
static int bad;

static void stub_log(int level, const char *fmt, ...) { (void)level; (void)fmt; }
static const char *stub_hostname(void) { return "mx.example.test"; }
static const char *stub_note(struct mp_txn *t, const char *n) { (void)t; (void)n; return NULL; }
static int stub_note_set(struct mp_txn *t, const char *n, const char *v)
{ (void)t; (void)n; (void)v; return MP_OK; }

static int
stub_change(struct mp_txn *t, const char *name, unsigned nth, const char *value)
{
	(void)t; (void)name;
	if (value != NULL || nth == 0 || nth > remaining)
		bad = 1;
	else
		remaining--;
	return MP_OK;
}

static unsigned
count_fields(const char *hdr, size_t len)
{
	const char *name, *value;
	size_t nl, vl, at = 0;
	unsigned n = 0;

	while (authres_next_field(hdr, len, &at, &name, &nl, &value, &vl)) {
		if (value < hdr || value + vl > hdr + len || at > len)
			abort();
		n += authres_name_is(name, nl, "Authentication-Results");
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *hdr = (const char *)data;
	struct mp_host host = { .struct_size = sizeof(host) };
	char from[64];

	host.log = stub_log;
	host.hostname = stub_hostname;
	host.txn_note = stub_note;
	host.txn_note_set = stub_note_set;
	host.txn_header_change = stub_change;
	if (authres_from_domain(hdr, size, from, sizeof(from)) == 0) {
		size_t n = strlen(from);
		if (n == 0 || n >= sizeof(from) || strpbrk(from, " \t\r\n>;(") != NULL)
			abort();
		for (size_t i = 0; i < n; i++)
			if (from[i] >= 'A' && from[i] <= 'Z')
				abort();
	}
	remaining = count_fields(hdr, size);
	bad = 0;
	authres_remove_claiming(&host, NULL, hdr, size, "mx.example.test");
	if (bad)
		abort();
	return 0;
}
