/*
 * tests/fuzz/fuzz_sendmail_drop.c - libFuzzer target: the daemon's
 * reader of maildrop files (core/sendmail_drop.c), which any local
 * user can fill through merpati-postdrop. What must hold: it returns
 * or refuses with a reason, never reads outside the text; an accepted
 * file has a sender, 1..MAX recipients without space or control
 * characters, and a message inside the text in which every LF follows
 * a CR; and encoding what was decoded decodes to the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail_submit.h"

#define MAX 20

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_field(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			abort();
}

/* Encode d again (behind its U line) and decode: the same envelope. */
static void
round_trip(const struct sm_drop *d)
{
	struct mp_buf out = { 0 };
	struct sm_drop d2;
	char head[32], why[160];

	snprintf(head, sizeof(head), "U %ld\n", d->s.uid);
	mp_buf_put(&out, head, strlen(head));
	sendmail_drop_encode(&d->s, d->msg, d->len, &out);
	if (sendmail_drop_decode(out.p, out.len, MAX, &d2, why, sizeof(why)) < 0 ||
	    d2.s.nrcpt != d->s.nrcpt || d2.len != d->len ||
	    strcmp(d2.s.sender, d->s.sender) != 0 || memcmp(d2.msg, d->msg, d->len) != 0)
		abort();
	for (size_t i = 0; i < d->s.nrcpt; i++)
		if (strcmp(d2.s.rcpts[i], d->s.rcpts[i]) != 0)
			abort();
	sendmail_drop_free(&d2);
	free(out.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), why[160] = "";
	struct sm_drop d;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (sendmail_drop_decode(text, size, MAX, &d, why, sizeof(why)) < 0) {
		if (why[0] == '\0')
			abort();
	} else {
		if (d.s.sender == NULL || d.s.nrcpt == 0 || d.s.nrcpt > MAX ||
		    d.msg < text || d.msg + d.len != text + size)
			abort();
		check_field(d.s.sender);
		for (size_t i = 0; i < d.s.nrcpt; i++) {
			check_field(d.s.rcpts[i]);
			if (d.s.rcpts[i][0] == '\0' || strchr(d.s.rcpts[i], ' '))
				abort();
		}
		for (size_t i = 0; i < d.len; i++)
			if (d.msg[i] == '\n' && (i == 0 || d.msg[i - 1] != '\r'))
				abort();
		round_trip(&d);
		sendmail_drop_free(&d);
	}
	free(text);
	return 0;
}
