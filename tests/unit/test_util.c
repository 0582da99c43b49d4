/*
 * tests/unit/test_util.c - base64 (SASL), CIDR matching (relay_networks),
 * SMTP client reply parsing, and the header-only helpers of
 * include/merpati/util.h (arrays, string buffer, memory reader, word
 * lists, special-use names).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <merpati/util.h>

#include "settings.h"
#include "smtp_client.h"
#include "test.h"
#include "util.h"

static void
test_base64(void)
{
	static const struct { const char *plain; size_t len; const char *b64; } cases[] = {
		{ "", 0, "" }, { "f", 1, "Zg==" }, { "fo", 2, "Zm8=" },
		{ "foo", 3, "Zm9v" }, { "foobar", 6, "Zm9vYmFy" },
		{ "\0alice@example.test\0pw", 22, "AGFsaWNlQGV4YW1wbGUudGVzdABwdw==" },
	};
	static const char *const bad[] = { "Zg=", "Z===", "Zm9v!", "=Zm9", "Zg==Zg==" };
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[96];
		int n = mp_base64_decode(cases[i].b64, out, sizeof(out));
		snprintf(name, sizeof(name), "base64 decode \"%s\"", cases[i].b64);
		CHECK(name, n == (int)cases[i].len && memcmp(out, cases[i].plain,
		    cases[i].len) == 0);
		mp_base64_encode(cases[i].plain, cases[i].len, out, sizeof(out));
		snprintf(name, sizeof(name), "base64 encode to \"%s\"", cases[i].b64);
		CHECK_STR(name, out, cases[i].b64);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "base64 refuses \"%s\"", bad[i]);
		CHECK(name, mp_base64_decode(bad[i], out, sizeof(out)) < 0);
	}
	CHECK("base64 refuses output that does not fit",
	    mp_base64_decode("Zm9vYmFy", out, 6) < 0);
}

static void
test_cidr(void)
{
	static const struct { const char *net, *addr; int match; } cases[] = {
		{ "127.0.0.0/8", "127.0.0.1", 1 }, { "127.0.0.0/8", "127.255.1.2", 1 },
		{ "127.0.0.0/8", "128.0.0.1", 0 }, { "192.0.2.1", "192.0.2.1", 1 },
		{ "192.0.2.1", "192.0.2.2", 0 }, { "10.1.0.0/15", "10.0.255.255", 1 },
		{ "10.1.0.0/15", "10.2.0.0", 0 }, { "0.0.0.0/0", "203.0.113.9", 1 },
		{ "::1", "::1", 1 }, { "2001:db8::/32", "2001:db8:1::5", 1 },
		{ "2001:db8::/32", "2001:db9::1", 0 }, { "127.0.0.0/8", "::1", 0 },
	};
	static const char *const bad[] = { "", "300.0.0.1", "10.0.0.0/33", "10.0.0.0/",
	    "10.0.0.0/x", "example.test", "::1/129" };
	struct mp_cidr c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[96];
		snprintf(name, sizeof(name), "%s %s %s", cases[i].addr,
		    cases[i].match ? "in" : "not in", cases[i].net);
		CHECK(name, mp_cidr_parse(cases[i].net, &c) == 0 &&
		    mp_cidr_match(&c, cases[i].addr) == cases[i].match);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "CIDR \"%s\" refused", bad[i]);
		CHECK(name, mp_cidr_parse(bad[i], &c) < 0);
	}
}

static void
test_replies(void)
{
	static const struct { const char *line; int ok, code, more; const char *enh, *text; } cases[] = {
		{ "250 2.1.0 Sender ok", 1, 250, 0, "2.1.0", "Sender ok" },
		{ "250-PIPELINING", 1, 250, 1, "", "PIPELINING" },
		{ "550 5.1.1 <a@b>: no such user", 1, 550, 0, "5.1.1", "<a@b>: no such user" },
		{ "451 Try later", 1, 451, 0, "", "Try later" },
		{ "220", 1, 220, 0, "", "" },
		{ "354 End data with <CR><LF>.<CR><LF>", 1, 354, 0, "", "End data with <CR><LF>.<CR><LF>" },
		{ "250 4.1.0 mismatched class", 1, 250, 0, "", "4.1.0 mismatched class" },
		{ "25 short", 0, 0, 0, "", "" },
		{ "abc def", 0, 0, 0, "", "" },
		{ "2500 x", 0, 0, 0, "", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int code = 0, more = 0;
		char enh[16], name[128];
		const char *text = NULL;
		int rc = smtp_client_parse_reply(cases[i].line, &code, &more, enh,
		    sizeof(enh), &text);
		snprintf(name, sizeof(name), "reply \"%s\"", cases[i].line);
		if (!cases[i].ok) {
			CHECK(name, rc < 0);
			continue;
		}
		CHECK(name, rc == 0 && code == cases[i].code && more == cases[i].more);
		CHECK_STR(name, enh, cases[i].enh);
		CHECK_STR(name, text, cases[i].text);
	}
}

static void
test_array_grow(void)
{
	int *v = NULL;
	size_t cap = 0, n = 0;
	int ok = 1;

	for (int i = 0; i < 1000 && ok; i++) {
		int *grown = mp_array_grow(v, &cap, n + 1, sizeof(*v));
		ok = grown != NULL && cap >= n + 1;
		if (ok) {
			v = grown;
			v[n++] = i;
		}
	}
	for (size_t i = 0; ok && i < n; i++)
		ok = v[i] == (int)i;
	CHECK("array grows one at a time and keeps what it held", ok && n == 1000);
	CHECK("array growth is geometric", cap < 2 * 1000 + 8);
	CHECK("array with room is returned as it is",
	    mp_array_grow(v, &cap, n, sizeof(*v)) == v);

	size_t before = cap;
	errno = 0;
	CHECK("array growth past SIZE_MAX bytes fails",
	    mp_array_grow(v, &cap, SIZE_MAX / sizeof(*v) + 1, sizeof(*v)) == NULL &&
	    errno == ENOMEM);
	CHECK("a failed growth leaves the capacity", cap == before);
	CHECK("a failed growth leaves the array", v[999] == 999);
	size_t huge = SIZE_MAX / 2 + 1;
	CHECK("doubling a huge capacity does not wrap",
	    mp_array_grow(v, &huge, SIZE_MAX / 4 * 3, 4) == NULL &&
	    huge == SIZE_MAX / 2 + 1);
	errno = 0;
	CHECK("array resize overflow fails",
	    mp_array_resize(v, SIZE_MAX / 8 + 1, 8) == NULL && errno == ENOMEM);
	free(v);
}

static void
test_str(void)
{
	struct mp_str b = { 0 };

	mp_str_puts(&b, "a1");
	mp_str_putc(&b, ' ');
	mp_str_put(&b, "x\0y", 3);
	mp_str_printf(&b, "[%d:%s]", 42, "z");
	CHECK("string buffer holds what was put, NULs too",
	    !b.failed && b.len == 12 && memcmp(b.p, "a1 x\0y[42:z]", 12) == 0);
	CHECK("string buffer is NUL-terminated", b.p[b.len] == '\0');
	for (int i = 0; i < 10000; i++)
		mp_str_puts(&b, "0123456789");
	CHECK("string buffer grows", !b.failed && b.len == 100012 &&
	    memcmp(b.p + b.len - 10, "0123456789", 10) == 0);
	free(b.p);

	struct mp_str big = { .len = SIZE_MAX - 4 };
	mp_str_put(&big, "0123456789", 10);
	CHECK("string buffer length overflow fails", big.failed && big.p == NULL);
	big.len = 0;
	mp_str_puts(&big, "ok");
	CHECK("a failed string buffer ignores later puts", big.len == 0 && big.p == NULL);
}

static void
test_mem_reader(void)
{
	struct mp_mem_reader m;
	struct mp_reader *r = mp_mem_reader_init(&m, "hello, world", 12);
	char buf[8], all[16] = "";
	size_t have = 0;
	ssize_t n;

	CHECK("memory reader knows its size", r->size == 12);
	while ((n = r->read(r, buf, 5)) > 0 && have + (size_t)n < sizeof(all)) {
		memcpy(all + have, buf, (size_t)n);
		have += (size_t)n;
	}
	CHECK("memory reader reads it all in pieces, then 0",
	    n == 0 && have == 12 && memcmp(all, "hello, world", 12) == 0);
	CHECK("memory reader stays at the end", r->read(r, buf, sizeof(buf)) == 0);
}

static void
test_words(void)
{
	const char *p = "  $Junk  Work ", *w;
	char *list = NULL;
	size_t n;

	n = mp_words_next(&p, &w);
	CHECK("word list: first word", n == 5 && strncmp(w, "$Junk", 5) == 0);
	n = mp_words_next(&p, &w);
	CHECK("word list: second word", n == 4 && strncmp(w, "Work", 4) == 0);
	CHECK("word list: then 0", mp_words_next(&p, &w) == 0);
	CHECK("word list: found in any case",
	    mp_words_find("$Junk Work", "WORK", 4) != NULL &&
	    mp_words_find(NULL, "a", 1) == NULL &&
	    mp_words_find("Workday", "Work", 4) == NULL);
	CHECK("word list: add to an empty list", mp_words_add(&list, "a1", 2) == 0 &&
	    strcmp(list, "a1") == 0);
	CHECK("word list: add another", mp_words_add(&list, "b2xx", 2) == 0 &&
	    strcmp(list, "a1 b2") == 0);
	free(list);
}

static void
test_special_use(void)
{
	CHECK("special use by name, any case",
	    mp_special_use_flag("sent") == MP_FOLDER_SENT &&
	    mp_special_use_flag("JUNK") == MP_FOLDER_JUNK);
	CHECK("other folders have no special use",
	    mp_special_use_flag("INBOX") == 0 && mp_special_use_flag("Sent/2026") == 0);
	for (size_t i = 0; i < MP_SPECIAL_USES; i++) {
		const struct mp_special_use *u = mp_special_use(i);
		CHECK(u->attribute, u->attribute[0] == '\\' &&
		    strcmp(u->attribute + 1, u->name) == 0 &&
		    mp_special_use_flag(u->name) == u->flag);
	}
}

int
main(void)
{
	test_base64();
	test_cidr();
	test_replies();
	test_array_grow();
	test_str();
	test_mem_reader();
	test_words();
	test_special_use();
	TEST_EXIT();
}
