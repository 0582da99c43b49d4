/*
 * tests/fuzz/fuzz_spf_record.c - libFuzzer target: the SPF record
 * parser (modules/spf/spf_record.c) on any text, then a full check_host
 * of that record against a fake DNS where every name has the record
 * itself as TXT and 192.0.2.1 / 2001:db8::1 as addresses, so include,
 * redirect, a, mx, ptr and exists recurse and hit the limits. A parsed
 * record must have sane fields; the check must end within the 10-term
 * limit (bounded queries) with a defined result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules/spf/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_dns {
	const char *record;
	unsigned queries;
};

static enum spf_dns_status
answer(void *ctx, const char *name, struct spf_dns_answer *a, int kind)
{
	struct fuzz_dns *f = ctx;
	static const unsigned char v4[4] = { 192, 0, 2, 1 };
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

	f->queries++;
	if (strlen(name) > 253)
		abort();	/* the 7.3 rule keeps names short */
	if (name[0] == 'n')
		return SPF_DNS_NXDOMAIN;
	if (name[0] == 't')
		return SPF_DNS_TEMPFAIL;
	switch (kind) {
	case 0: spf_answer_add_text(a, f->record, strlen(f->record)); break;
	case 1: spf_answer_add_addr(a, v4, 4); break;
	case 2: spf_answer_add_addr(a, v6, 16); break;
	default: spf_answer_add_text(a, "mx.example.test", 15); break;
	}
	return SPF_DNS_FOUND;
}

static enum spf_dns_status f_txt(void *c, const char *n, struct spf_dns_answer *a) { return answer(c, n, a, 0); }
static enum spf_dns_status f_a(void *c, const char *n, struct spf_dns_answer *a) { return answer(c, n, a, 1); }
static enum spf_dns_status f_aaaa(void *c, const char *n, struct spf_dns_answer *a) { return answer(c, n, a, 2); }
static enum spf_dns_status f_name(void *c, const char *n, struct spf_dns_answer *a) { return answer(c, n, a, 3); }

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 8);
	struct spf_record *rec;
	const char *err;

	if (text == NULL)
		return 0;
	memcpy(text, "v=spf1 ", 7);
	memcpy(text + 7, data, size);
	text[size + 7] = '\0';
	if (strlen(text) != size + 7) {
		free(text);
		return 0;
	}
	if (spf_record_parse(text, &rec, &err) == 0) {
		for (size_t i = 0; i < rec->count; i++) {
			const struct spf_term *t = &rec->terms[i];
			if (t->cidr4 < 0 || t->cidr4 > 32 || t->cidr6 < 0 || t->cidr6 > 128 ||
			    strchr("+-~?", t->qualifier) == NULL || t->qualifier == '\0')
				abort();
		}
		spf_record_free(rec);
	} else if (err == NULL) {
		abort();
	}
	struct fuzz_dns f = { text, 0 };
	struct spf_dns dns = { &f, f_txt, f_a, f_aaaa, f_name, f_name };
	struct spf_request req = { .sender = "user@example.test", .helo = "h.example.test",
	    .receiver = "rx.example.test", .now = 1 };
	struct spf_outcome out;
	spf_ip_parse(size % 2 ? "2001:db8::1" : "192.0.2.1", &req.ip);
	enum spf_result r = spf_check_mailfrom(&dns, &req, &out);
	/* 11 terms at most, each at most 1 + 10 MX or PTR hosts, + exp */
	if ((unsigned)r > SPF_RESULT_PERMERROR || out.lookups > 11 || f.queries > 11 * 12 + 2)
		abort();
	free(text);
	return 0;
}
