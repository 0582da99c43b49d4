/*
 * tests/unit/test_imap_decode.c - the decoders SEARCH relies on
 * (modules/imap/imap_decode.c): base64, quoted-printable, RFC 2047
 * encoded words, charset conversion to UTF-8 and the i;unicode-casemap
 * fold, each table-driven and each with broken input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap_decode.h"
#include "test.h"

struct pair {
	const char *in, *want;
};

static void
test_base64(void)
{
	static const struct pair cases[] = {
		{ "aGVsbG8gd29ybGQ=", "hello world" },
		{ "aGVs\r\nbG8=\r\n", "hello" },		/* line breaks skipped */
		{ "aGVsbG8", "hello" },			/* missing padding */
		{ "aGVsbA", "hell" },			/* whole bytes only */
		{ "a*G!V s\tb G 8 =", "hello" },	/* garbage skipped */
		{ "aGk=aGk=", "hi" },			/* stops at the first '=' */
		{ "", "" },
		{ "====", "" },
		{ "%%%%", "" },
		{ "w6TDtsO8", "\xc3\xa4\xc3\xb6\xc3\xbc" },
	};
	char out[64], name[96];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = imap_base64_decode(cases[i].in, strlen(cases[i].in), out);
		CHECK("base64 output bounded", n <= strlen(cases[i].in) * 3 / 4 + 3);
		out[n] = '\0';
		snprintf(name, sizeof(name), "base64 \"%s\"", cases[i].in);
		CHECK_STR(name, out, cases[i].want);
	}
}

static void
test_qp(void)
{
	static const struct { const char *in, *want; int header; } cases[] = {
		{ "caf=C3=A9", "caf\xc3\xa9", 0 },
		{ "soft=\r\nbreak", "softbreak", 0 },
		{ "soft=  \r\nbreak", "softbreak", 0 },	/* white space before the break */
		{ "lf=\nonly", "lfonly", 0 },
		{ "a=ZZb", "a=ZZb", 0 },		/* not hex: kept */
		{ "end=", "end", 0 },
		{ "end=4", "end=4", 0 },
		{ "=3d=3D", "==", 0 },
		{ "a_b", "a_b", 0 },
		{ "a_b=5F", "a b_", 1 },		/* RFC 2047 Q: '_' is a space */
		{ "", "", 0 },
	};
	char out[64], name[96];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = imap_qp_decode(cases[i].in, strlen(cases[i].in), out, cases[i].header);
		CHECK("qp output bounded", n <= strlen(cases[i].in));
		out[n] = '\0';
		snprintf(name, sizeof(name), "qp \"%s\"", cases[i].in);
		CHECK_STR(name, out, cases[i].want);
	}
}

static void
test_charsets(void)
{
	static const struct { const char *charset, *in, *want; } cases[] = {
		{ "iso-8859-1", "Gr\xfc\xdf" "e", "Gr\xc3\xbc\xc3\x9f" "e" },
		{ "ISO-8859-15", "\xa4", "\xe2\x82\xac" },
		{ "windows-1252", "\x80", "\xe2\x82\xac" },
		{ "windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2",
		  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },	/* Привет */
		{ "koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4",
		  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
		{ "iso-8859-7", "\xc1\xe8\xde\xed\xe1",
		  "\xce\x91\xce\xb8\xce\xae\xce\xbd\xce\xb1" },		/* Αθήνα */
		{ "utf-8", "\xc3\xa9", "\xc3\xa9" },
		{ "", "raw \xff", "raw \xff" },
		{ "x-no-such-charset", "raw \xff", "raw \xff" },	/* unknown: bytes */
		{ "utf-8", "bad \xc3", "bad \xc3" },			/* UTF-8 is not checked */
		{ "us-ascii", "plain", "plain" },
		{ "shift_jis", "a\x82", "a?" },			/* truncated sequence */
		{ "utf-16be", "\x00h\x00i\xd8", "hi?" },
		{ "iso-2022-jp", "\x1b$B\xff\xff", NULL },		/* invalid: must not hang */
	};
	char name[96];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = 0, inlen = strlen(cases[i].in);
		if (strcmp(cases[i].charset, "utf-16be") == 0)
			inlen = 5;
		char *u = imap_to_utf8(cases[i].charset, cases[i].in, inlen, &n);
		snprintf(name, sizeof(name), "to UTF-8 from %s #%zu", cases[i].charset, i);
		if (cases[i].want == NULL)
			CHECK(name, u != NULL && strlen(u) == n);
		else
			CHECK_STR(name, u, cases[i].want);
		free(u);
	}
	CHECK("charset known: iso-8859-2", imap_charset_known("iso-8859-2"));
	CHECK("charset known: UTF-8", imap_charset_known("UTF-8"));
	CHECK("charset unknown: x-bogus", !imap_charset_known("x-bogus"));
}

static void
test_words(void)
{
	static const struct pair cases[] = {
		{ "=?UTF-8?B?R3LDvMOfZQ==?=", "Gr\xc3\xbc\xc3\x9f" "e" },
		{ "=?iso-8859-1?q?caf=E9_au_lait?=", "caf\xc3\xa9 au lait" },
		{ "Re: =?utf-8?Q?a?= =?utf-8?Q?b?= c", "Re: ab c" },		/* adjacent: joined */
		{ "=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab" },			/* across a fold */
		{ "=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b" },			/* text between: kept */
		{ "=?utf-8?B?w6Q=?= =?utf-8?B?w7Y=?=", "\xc3\xa4\xc3\xb6" },
		{ "=?utf-8?B?ww==?= =?utf-8?B?pA==?=", "\xc3\xa4" },		/* a character split across words */
		{ "=?koi8-r?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
		{ "=?utf-8*en?q?lang?=", "lang" },			/* RFC 2231 language */
		{ "=?x-unknown?q?raw=FF?=", "raw\xff" },
		{ "plain text", "plain text" },
		{ "=?utf-8?x?bad encoding?=", "=?utf-8?x?bad encoding?=" },
		{ "=?utf-8?q?unterminated", "=?utf-8?q?unterminated" },
		{ "=?utf-8?q?broken\r\n line?=", "=?utf-8?q?broken\r\n line?=" },
		{ "=??q?nocharset?=", "=??q?nocharset?=" },
		{ "a = b =? c ?= d", "a = b =? c ?= d" },
		{ "=?", "=?" },
		{ "", "" },
	};
	char name[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = 99;
		char *d = imap_decode_words(cases[i].in, strlen(cases[i].in), &n);
		snprintf(name, sizeof(name), "RFC 2047 \"%s\"", cases[i].in);
		CHECK_STR(name, d, cases[i].want);
		CHECK("RFC 2047 length", d != NULL && n == strlen(d));
		free(d);
	}
}

static void
test_casefold(void)
{
	static const struct pair cases[] = {
		{ "HeLLo", "hello" },
		{ "GR\xc3\x9c\xc3\x9f" "E", "gr\xc3\xbc\xc3\x9f" "e" },		/* GRÜßE */
		{ "\xc3\x80\xc3\x9e\xc3\x97", "\xc3\xa0\xc3\xbe\xc3\x97" },	/* ÀÞ× (× has no case) */
		{ "\xc5\xb8", "\xc3\xbf" },					/* Ÿ */
		{ "\xc4\x80\xc4\x81\xc5\x81\xc5\x82\xc5\xbd", "\xc4\x81\xc4\x81\xc5\x82\xc5\x82\xc5\xbe" },
		{ "\xc4\xb0\xc4\xb1I", "iii" },					/* İıI */
		{ "\xc5\xbf", "s" },						/* long s */
		{ "\xce\xa3\xcf\x82\xcf\x83", "\xcf\x83\xcf\x83\xcf\x83" },	/* Σςσ */
		{ "\xce\x86\xce\x8f", "\xce\xac\xcf\x8e" },			/* Ά Ώ */
		{ "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2",
		  "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },		/* ПРИВЕТ */
		{ "\xd0\x81\xd0\x84", "\xd1\x91\xd1\x94" },			/* ЁЄ */
		{ "\xd1\xa2\xd3\x90\xd3\x80", "\xd1\xa3\xd3\x91\xd3\x8f" },
		{ "\xe2\x84\xaa\xe2\x84\xa6", "k\xcf\x89" },			/* Kelvin, Ohm */
		{ "\xc2\xb5", "\xce\xbc" },					/* micro: mu */
		{ "\xe4\xb8\xad", "\xe4\xb8\xad" },				/* CJK: kept */
		{ "\xf0\x9f\x98\x80X", "\xf0\x9f\x98\x80x" },			/* 4 bytes: kept */
		{ "bad\xc3" "A\xff\x80", "bad\xc3" "a\xff\x80" },		/* invalid: kept */
		{ "\xe0\x80\x80", "\xe0\x80\x80" },				/* overlong: kept */
		{ "", "" },
	};
	char out[64], name[96];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in), n = imap_casefold(cases[i].in, len, out);
		CHECK("casefold never grows", n <= len);
		out[n] = '\0';
		snprintf(name, sizeof(name), "casefold #%zu", i);
		CHECK_STR(name, out, cases[i].want);
	}
	/* in place, and over every 2- and 3-byte sequence: never longer */
	int grew = 0;
	for (unsigned cp = 0x80; cp < 0x10000; cp++) {
		char buf[4];
		size_t len = cp < 0x800 ? 2 : 3;
		if (cp >= 0xd800 && cp < 0xe000)
			continue;
		if (len == 2) {
			buf[0] = (char)(0xc0 | cp >> 6);
			buf[1] = (char)(0x80 | (cp & 0x3f));
		} else {
			buf[0] = (char)(0xe0 | cp >> 12);
			buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			buf[2] = (char)(0x80 | (cp & 0x3f));
		}
		grew |= imap_casefold(buf, len, buf) > len;
	}
	CHECK("casefold of every BMP character fits in place", !grew);
	CHECK("is_ascii", imap_is_ascii("abc", 3) && !imap_is_ascii("a\xc3\xa9", 3));
}

int
main(void)
{
	test_base64();
	test_qp();
	test_charsets();
	test_words();
	test_casefold();
	TEST_EXIT();
}
