/*
 * test_mime.c - header field parsing: folding with CRLF and LF, names in
 * any case, the end of the header, RFC 2047 words (B and Q, UTF-8 and
 * Latin-1, joined, unknown charsets kept), bounds on huge lines and many
 * fields, and clean UTF-8 from bad bytes and control characters.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/mime.h"

static struct mime_fields
parse(const char *hdr)
{
	struct mime_fields f;

	memset(&f, 0xa5, sizeof f);	/* must all be written */
	assert_int_equal(mime_header_fields(hdr, strlen(hdr), &f), 0);
	return f;
}

static char *
subject_of(const char *value)
{
	struct mime_fields f;
	char hdr[2048], *s;

	snprintf(hdr, sizeof hdr, "Subject: %s\r\n\r\n", value);
	f = parse(hdr);
	assert_non_null(f.subject);
	s = strdup(f.subject);
	mime_fields_free(&f);
	return s;
}

#define assert_subject(in, want) do {					\
	char *got_ = subject_of(in);					\
	assert_string_equal(got_, want);				\
	free(got_);							\
} while (0)

static void
test_basic_fields(void **state)
{
	const char *hdr =
	    "Return-Path: <x@y>\r\n"
	    "message-id: <abc@example.com>\r\n"
	    "DATE:   Tue, 25 Nov 2025 19:14:55 +0000  \r\n"
	    "From: Alice <alice@example.com>\r\n"
	    "To: bob@example.com\r\n"
	    "Subject : plain\r\n"
	    "Subject: second subject is ignored\r\n"
	    "\r\n"
	    "To: body@example.com\r\n";
	struct mime_fields f;

	(void)state;
	f = parse(hdr);
	assert_string_equal(f.message_id, "<abc@example.com>");
	assert_string_equal(f.date, "Tue, 25 Nov 2025 19:14:55 +0000");
	assert_string_equal(f.from, "Alice <alice@example.com>");
	assert_string_equal(f.to, "bob@example.com");
	assert_string_equal(f.subject, "plain");
	mime_fields_free(&f);
	assert_null(f.subject);
	mime_fields_free(NULL);
}

static void
test_missing_fields(void **state)
{
	struct mime_fields f;

	(void)state;
	f = parse("X-Other: 1\r\nSubject:\r\n\r\nFrom: in body\r\n");
	assert_null(f.message_id);
	assert_null(f.date);
	assert_null(f.from);
	assert_null(f.to);
	assert_string_equal(f.subject, "");
	mime_fields_free(&f);
	f = parse("");
	assert_null(f.subject);
	mime_fields_free(&f);
	/* An empty first line: no header at all. */
	f = parse("\r\nSubject: body\r\n");
	assert_null(f.subject);
	mime_fields_free(&f);
	/* Junk lines without a colon are skipped, not fatal. */
	f = parse("no colon here\r\n  stray fold\r\nSubject: ok\r\n");
	assert_string_equal(f.subject, "ok");
	mime_fields_free(&f);
}

static void
test_folding(void **state)
{
	const char *crlf = "Subject: first\r\n\tsecond\r\n  third\r\nTo: x\r\n";
	const char *lf = "Subject: first\n second\nTo: x\n\nbody";
	struct mime_fields f;
	char *v;

	(void)state;
	f = parse(crlf);
	assert_string_equal(f.subject, "first second  third");
	assert_string_equal(f.to, "x");
	mime_fields_free(&f);
	f = parse(lf);
	assert_string_equal(f.subject, "first second");
	mime_fields_free(&f);
	/* Folded right after the colon. */
	f = parse("Subject:\r\n folded\r\n\r\n");
	assert_string_equal(f.subject, "folded");
	mime_fields_free(&f);
	/* Raw value from mime_header_get: unfolded, tab kept. */
	v = mime_header_get(crlf, strlen(crlf), "SUBJECT", 100);
	assert_string_equal(v, "first\tsecond  third");
	free(v);
	v = mime_header_get(crlf, strlen(crlf), "subject", 8);
	assert_string_equal(v, "first\tse");
	free(v);
	assert_null(mime_header_get(crlf, strlen(crlf), "Subj", 100));
	assert_null(mime_header_get(crlf, strlen(crlf), "Cc", 100));
	/* `len` bounds the header: no NUL needed, nothing read past it. */
	v = mime_header_get(crlf, 14, "Subject", 100);
	assert_string_equal(v, "first");
	free(v);
}

static void
test_rfc2047_subject(void **state)
{
	(void)state;
	assert_subject("=?UTF-8?B?R3LDvMOfZQ==?=", "Gr\xc3\xbc\xc3\x9f" "e");
	assert_subject("=?utf-8?q?Gr=C3=BC=C3=9Fe_dich?=",
	    "Gr\xc3\xbc\xc3\x9f" "e dich");
	assert_subject("=?ISO-8859-1?Q?Gr=FC=DFe?=", "Gr\xc3\xbc\xc3\x9f" "e");
	assert_subject("=?iso-8859-1?b?R3L832U=?=", "Gr\xc3\xbc\xc3\x9f" "e");
	assert_subject("=?us-ascii?q?plain_text?=", "plain text");
	/* RFC 2047 8: adjacent words join, other spaces stay. */
	assert_subject("=?utf-8?q?a?= =?utf-8?q?b?=", "ab");
	assert_subject("=?utf-8?q?a?=\r\n =?utf-8?q?b?= c", "ab c");
	assert_subject("x =?utf-8?q?a?= y", "x a y");
	assert_subject("=?utf-8?q?a_?= =?utf-8?q?b?=", "a b");
	/* A character split between two B words joins up again. */
	assert_subject("=?utf-8?B?R3LD?= =?utf-8?B?vGU=?=", "Gr\xc3\xbc" "e");
	/* Unknown charset, bad base64, broken syntax: kept as written. */
	assert_subject("=?koi8-r?q?abc?= x", "=?koi8-r?q?abc?= x");
	assert_subject("=?utf-8?b?!!!?=", "=?utf-8?b?!!!?=");
	assert_subject("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
	assert_subject("=?utf-8?q?no end", "=?utf-8?q?no end");
	assert_subject("a =?utf-8?q?x?= =?koi8-r?q?y?=",
	    "a x =?koi8-r?q?y?=");
	/* RFC 2231 language tag. */
	assert_subject("=?utf-8*de?q?ja?=", "ja");
	/* Q with a bad escape keeps the bytes. */
	assert_subject("=?utf-8?q?100=ZZ?=", "100=ZZ");
	/* Encoded control bytes are removed, tabs become spaces. */
	assert_subject("=?utf-8?q?a=0D=0Ab=09c=1B[31m?=", "ab c[31m");
}

static void
test_rfc2047_addresses(void **state)
{
	struct mime_fields f;

	(void)state;
	f = parse("From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\n"
	    "To: \"=?iso-8859-1?q?M=FCller?=\" <m@example.com>, "
	    "x=?utf-8?q?y?=@example.com, <=?utf-8?q?z?=@example.com>\r\n\r\n");
	assert_string_equal(f.from, "J\xc3\xb6rg <j@example.com>");
	/* Not inside an address, not glued to other text. */
	assert_string_equal(f.to, "\"M\xc3\xbcller\" <m@example.com>, "
	    "x=?utf-8?q?y?=@example.com, <=?utf-8?q?z?=@example.com>");
	mime_fields_free(&f);
	/* Message-ID and Date are never decoded. */
	f = parse("Message-ID: <=?utf-8?q?a?=@x>\r\nDate: =?utf-8?q?b?=\r\n");
	assert_string_equal(f.message_id, "<=?utf-8?q?a?=@x>");
	assert_string_equal(f.date, "=?utf-8?q?b?=");
	mime_fields_free(&f);
}

static void
test_bad_utf8_and_controls(void **state)
{
	(void)state;
	/* Raw Latin-1 is not UTF-8: each bad byte becomes U+FFFD. */
	assert_subject("caf\xe9 ok", "caf\xef\xbf\xbd ok");
	/* Overlong, surrogate, truncated sequences. */
	assert_subject("a\xc0\xaf" "b", "a\xef\xbf\xbd\xef\xbf\xbd" "b");
	assert_subject("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_subject("x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd");
	/* Valid multibyte passes, C1 controls and DEL go, ESC goes. */
	assert_subject("\xe2\x82\xac \xf0\x9f\x93\xa7", "\xe2\x82\xac "
	    "\xf0\x9f\x93\xa7");
	assert_subject("a\xc2\x9b" "b\x7f" "c\x1b" "d\r", "abcd");
	/* Bad bytes in an encoded UTF-8 word. */
	assert_subject("=?utf-8?q?=FF?=", "\xef\xbf\xbd");
	assert_subject("=?us-ascii?q?=E9?=", "\xef\xbf\xbd");
}

static void
test_nul_bytes(void **state)
{
	static const char hdr[] = "Subject: a\0b\r\nTo: c\r\n\r\n";
	struct mime_fields f;
	char *v;

	(void)state;
	assert_int_equal(mime_header_fields(hdr, sizeof hdr - 1, &f), 0);
	assert_string_equal(f.subject, "ab");
	assert_string_equal(f.to, "c");
	mime_fields_free(&f);
	v = mime_header_get(hdr, sizeof hdr - 1, "Subject", 100);
	assert_string_equal(v, "ab");
	free(v);
}

static void
test_huge_line(void **state)
{
	const size_t big = 1024 * 1024;
	struct mime_fields f;
	char *hdr, *v;
	size_t len;

	(void)state;
	assert_non_null(hdr = malloc(big + 64));
	len = (size_t)sprintf(hdr, "Subject: ");
	memset(hdr + len, 'a', big);
	len += big;
	len += (size_t)sprintf(hdr + len, "\r\nTo: t\r\n\r\n");
	assert_int_equal(mime_header_fields(hdr, len, &f), 0);
	assert_int_equal(strlen(f.subject), 998);
	assert_string_equal(f.to, "t");
	mime_fields_free(&f);
	v = mime_header_get(hdr, len, "subject", 5000);
	assert_int_equal(strlen(v), 5000);
	free(v);
	/* 1 MB of multibyte characters: cut at a character boundary. */
	for (size_t i = 9; i + 1 < 9 + big; i += 2)
		memcpy(hdr + i, "\xc3\xa9", 2);
	assert_int_equal(mime_header_fields(hdr, len, &f), 0);
	assert_int_equal(strlen(f.subject), 998);
	assert_memory_equal(f.subject + 996, "\xc3\xa9", 2);
	mime_fields_free(&f);
	/* Encoded words that expand: Latin-1 to 2 bytes a character... */
	len = (size_t)sprintf(hdr, "Subject: =?iso-8859-1?q?");
	for (size_t i = 0; i < 300; i++)
		len += (size_t)sprintf(hdr + len, "=E9");
	len += (size_t)sprintf(hdr + len, "?=\r\n\r\n");
	assert_int_equal(mime_header_fields(hdr, len, &f), 0);
	assert_int_equal(strlen(f.subject), 600);
	mime_fields_free(&f);
	/* ...bad bytes to 3: 735 of them are cut to 332 whole U+FFFD. */
	len = (size_t)sprintf(hdr, "Subject: =?utf-8?b?");
	for (size_t i = 0; i < 245; i++)
		len += (size_t)sprintf(hdr + len, "////");
	len += (size_t)sprintf(hdr + len, "?=\r\n\r\n");
	assert_int_equal(mime_header_fields(hdr, len, &f), 0);
	assert_int_equal(strlen(f.subject), 996);
	assert_memory_equal(f.subject + 993, "\xef\xbf\xbd", 3);
	mime_fields_free(&f);
	/* A word cut by the 998-byte field limit stays as written. */
	len = (size_t)sprintf(hdr, "Subject: =?iso-8859-1?q?");
	for (size_t i = 0; i < 400; i++)
		len += (size_t)sprintf(hdr + len, "=E9");
	len += (size_t)sprintf(hdr + len, "?=\r\n\r\n");
	assert_int_equal(mime_header_fields(hdr, len, &f), 0);
	assert_int_equal(strlen(f.subject), 998);
	assert_memory_equal(f.subject, "=?iso-8859-1?q?=E9", 18);
	mime_fields_free(&f);
	free(hdr);
}

static void
test_many_fields(void **state)
{
	struct mime_fields f;
	char *hdr, *p;
	int i;

	(void)state;
	assert_non_null(hdr = malloc(10000 * 16 + 64));
	p = hdr;
	for (i = 0; i < 10000; i++)
		p += sprintf(p, "X-F%05d: v\r\n", i);
	p += sprintf(p, "Subject: late\r\n\r\n");
	/* Only the first 1000 fields are looked at. */
	assert_int_equal(mime_header_fields(hdr, (size_t)(p - hdr), &f), 0);
	assert_null(f.subject);
	mime_fields_free(&f);
	assert_null(mime_header_get(hdr, (size_t)(p - hdr), "Subject", 100));
	p = hdr;
	for (i = 0; i < 999; i++)
		p += sprintf(p, "X-F%05d: v\r\n", i);
	p += sprintf(p, "Subject: in time\r\n\r\n");
	assert_int_equal(mime_header_fields(hdr, (size_t)(p - hdr), &f), 0);
	assert_string_equal(f.subject, "in time");
	mime_fields_free(&f);
	free(hdr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_fields),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_rfc2047_subject),
		cmocka_unit_test(test_rfc2047_addresses),
		cmocka_unit_test(test_bad_utf8_and_controls),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_huge_line),
		cmocka_unit_test(test_many_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
