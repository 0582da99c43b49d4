/*
 * tests/fuzz/fuzz_milter_reply.c - libFuzzer target: what a milter sends
 * back (modules/milter/milter_proto.c). The input is a stream of framed
 * packets as they arrive on the socket; each frame's length is checked
 * as the reader does, then the packet goes through the reply parser and
 * the option negotiation parser, and every string a parsed reply holds
 * through the parsers that would see it next (SMTP reply, address,
 * header value). The input as a whole also goes through the body cut
 * and header splitter. Checks: strings end inside the packet, a body
 * chunk lies inside it, reply codes are 4xx/5xx, nothing overruns.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/milter/milter_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const unsigned char *pkt, size_t len, const char *s)
{
	if (s == NULL)
		return;
	if ((const unsigned char *)s < pkt || (const unsigned char *)s >= pkt + len ||
	    memchr(s, '\0', len - (size_t)((const unsigned char *)s - pkt)) == NULL)
		abort();
}

static void
reply_strings(const struct milter_reply *r)
{
	char enh[16], text[256], addr[512];
	int code;

	if (r->code == SMFIR_REPLYCODE &&
	    milter_replycode_parse(r->value, &code, enh, sizeof(enh), text, sizeof(text)) == 0 &&
	    (code < 400 || code > 599 || strlen(enh) >= sizeof(enh)))
		abort();
	if (r->value != NULL && milter_addr_unwrap(r->value, addr, sizeof(addr)) == 0 &&
	    (strchr(addr, '\r') || strchr(addr, '\n') || strchr(addr, '<')))
		abort();
}

static void
one_packet(const unsigned char *pkt, size_t len)
{
	struct milter_reply r;
	struct milter_optneg o;
	const char *err = NULL;

	if (milter_reply_parse(pkt, len, &r, &err) == 0) {
		inside(pkt, len, r.name);
		inside(pkt, len, r.value);
		inside(pkt, len, r.args);
		if (r.data != NULL && (r.data < pkt || r.data + r.data_len > pkt + len))
			abort();
		reply_strings(&r);
	} else if (err == NULL) {
		abort();
	}
	err = NULL;
	if (milter_optneg_parse(pkt, len, &o, &err) == 0) {
		for (int i = 0; i < MILTER_STAGES; i++)
			inside(pkt, len, o.symlist[i]);
		milter_macro_wanted(o.symlist[0], "{client_addr}");
	} else if (err == NULL) {
		abort();
	}
}

static void
message(const uint8_t *data, size_t size)
{
	struct milter_body_cut cut = { 0 };
	char *out = malloc(2 * size + 1), name[64], value[512];
	size_t pos = 0, k;

	/* in two pieces, to cross a feed boundary */
	k = milter_body_cut(&cut, (const char *)data, size / 2, out);
	k += milter_body_cut(&cut, (const char *)data + size / 2, size - size / 2, out + k);
	if (k > 2 * size)
		abort();
	free(out);
	while (milter_header_next((const char *)data, size, &pos, name, sizeof(name), value,
	    sizeof(value))) {
		if (pos > size || strlen(name) >= sizeof(name))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0;

	while (size - at >= 4) {
		size_t len;
		if (milter_frame_len(data + at, &len) < 0 || len > size - at - 4)
			break;
		/* a copy of its own, so ASan sees any read past the packet */
		unsigned char *pkt = malloc(len);
		memcpy(pkt, data + at + 4, len);
		one_packet(pkt, len);
		free(pkt);
		at += 4 + len;
	}
	message(data, size);
	return 0;
}
