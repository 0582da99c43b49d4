/*
 * tests/fuzz/fuzz_imap_session.c - libFuzzer target: whole IMAP
 * sessions. The input is what a client sends; the module parses and
 * runs it against an in-memory store seeded with three folders and
 * messages (flags, keywords, a nested multipart one), so STATUS,
 * STORE, SEARCH, FETCH, LIST, SELECT, COPY/MOVE, APPEND, EXPUNGE,
 * IDLE and their UID forms run on real data. Issue 15's crashes lived
 * there, beyond the parser that fuzz_imap_parse reaches.
 *
 * The first input octet chooses where the session starts: bit 0 logs
 * in first, bit 1 then also selects INBOX; the rest is the client's.
 * (A session can always LOGIN itself: alice@example.test / secret.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_fuzz_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const conf[] = {
	"plaintext_auth", "true",
	"envelope_cache", "1048576",
	NULL
};

static const char login[] = "0 LOGIN " FUZZ_USER " " FUZZ_PASS "\r\n";
static const char select_inbox[] = "0 SELECT INBOX\r\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = 0;
	char *in;

	if (size == 0)
		return 0;
	in = malloc(sizeof(login) + sizeof(select_inbox) + size);
	if (data[0] & 1) {
		memcpy(in, login, sizeof(login) - 1);
		len += sizeof(login) - 1;
		if (data[0] & 2) {
			memcpy(in + len, select_inbox, sizeof(select_inbox) - 1);
			len += sizeof(select_inbox) - 1;
		}
	}
	memcpy(in + len, data + 1, size - 1);
	len += size - 1;
	mock_conn_free(imap_fuzz_session(conf, in, len, 0, NULL, NULL));
	free(in);
	return 0;
}
