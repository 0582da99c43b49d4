/*
 * tests/fuzz/fuzz_sendmail_headers.c - libFuzzer target: `merpati
 * sendmail -t`'s header work on arbitrary message text (NULs included,
 * as read_message keeps them). What must hold: every recipient is a
 * non-empty word with no space, control character or list punctuation
 * (< > , ; : ( ) \), not starting with '@', at most MAX of them, none
 * twice; after Bcc removal no Bcc or Resent-Bcc field is left, the text
 * is still NUL-terminated at its length, and the body (after the header
 * section) is untouched.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sendmail_headers.h"

#define MAX 50

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_rcpt(const char *a)
{
	size_t len = strlen(a);

	if (len == 0 || len >= 320 || a[0] == '@' || strpbrk(a, "<>,;:()\\"))
		abort();
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)a[i] <= 0x20 || a[i] == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_buf t = { 0 };
	char **v = NULL;
	size_t n = 0;

	mp_buf_put(&t, data, size);
	const char *end = sendmail_header_end(&t);
	if (end < t.p || end > t.p + t.len)
		abort();
	size_t body_len = t.len - (size_t)(end - t.p);
	char *body = malloc(body_len + 1);
	if (body == NULL)
		abort();
	memcpy(body, end, body_len);

	(void)sendmail_has_header(&t, "From");
	(void)sendmail_has_header(&t, "Message-ID");
	sendmail_recipients_from_headers(&t, &v, &n, MAX);
	if (n > MAX)
		abort();
	for (size_t i = 0; i < n; i++) {
		check_rcpt(v[i]);
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(v[i], v[j]) == 0)
				abort();
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);

	sendmail_remove_bcc(&t);
	end = sendmail_header_end(&t);
	if (t.p[t.len] != '\0' || sendmail_has_header(&t, "Bcc") ||
	    sendmail_has_header(&t, "Resent-Bcc"))
		abort();
	/* The body is the tail of the text, byte for byte. */
	if (body_len > t.len || memcmp(t.p + t.len - body_len, body, body_len) != 0)
		abort();
	free(body);
	free(t.p);
	return 0;
}
