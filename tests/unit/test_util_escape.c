/*
 * test_util_escape.c - str_escape(), the one door through which a
 * server's words reach a log line, a protocol or a terminal: what passes
 * (ASCII, well-formed UTF-8) and what is shown as \xNN (controls,
 * malformed UTF-8, C1 controls, separators and bidirectional overrides).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/util.h"

static void
check(const char *in, size_t inlen, const char *want)
{
	char out[256];

	str_escape(out, sizeof out, in, inlen);
	assert_string_equal(out, want);
}

#define CHECK(lit, want) check(lit, sizeof(lit) - 1, want)

static void
test_ascii_and_controls(void **state)
{
	CHECK("plain text", "plain text");
	CHECK("a\\b", "a\\\\b");
	CHECK("a\r\nb", "a\\x0d\\x0ab");
	CHECK("\x1b[31mred", "\\x1b[31mred");
	CHECK("nul\0byte", "nul\\x00byte");
	CHECK("del\x7f", "del\\x7f");
}

static void
test_wellformed_utf8_passes(void **state)
{
	CHECK("caf\xc3\xa9", "caf\xc3\xa9");		/* U+00E9 */
	CHECK("\xe2\x82\xac 5", "\xe2\x82\xac 5");	/* U+20AC */
	CHECK("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac");
	CHECK("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");	/* U+1F600 */
	CHECK("\xc2\xa0", "\xc2\xa0");			/* U+00A0, after C1 */
	CHECK("\xef\xbf\xbd", "\xef\xbf\xbd");		/* U+FFFD */
	CHECK("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");	/* U+10FFFF */
}

static void
test_malformed_utf8_escaped(void **state)
{
	CHECK("caf\xe9", "caf\\xe9");			/* Latin-1 */
	CHECK("\xc0\xaf", "\\xc0\\xaf");		/* overlong '/' */
	CHECK("\xe0\x80\xaf", "\\xe0\\x80\\xaf");	/* overlong */
	CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");	/* surrogate */
	CHECK("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* > U+10FFFF */
	CHECK("\xf8\x88\x80\x80\x80", "\\xf8\\x88\\x80\\x80\\x80");
	CHECK("\x80x", "\\x80x");			/* lone continuation */
	CHECK("a\xe2\x82", "a\\xe2\\x82");		/* cut short */
	CHECK("\xc3\x28", "\\xc3(");			/* bad continuation */
	/* A good character right after a bad byte still passes. */
	CHECK("\xff\xc3\xa9", "\\xff\xc3\xa9");
}

static void
test_unsafe_characters_escaped(void **state)
{
	CHECK("\xc2\x9b" "31m", "\\xc2\\x9b31m");	/* U+009B CSI */
	CHECK("\xc2\x85", "\\xc2\\x85");		/* U+0085 NEL */
	CHECK("a\xe2\x80\xa8" "b", "a\\xe2\\x80\\xa8b");	/* U+2028 */
	CHECK("\xe2\x80\xae" "cod", "\\xe2\\x80\\xaecod");	/* U+202E RLO */
	CHECK("\xe2\x81\xa6", "\\xe2\\x81\\xa6");	/* U+2066 LRI */
	CHECK("\xe2\x81\xa9", "\\xe2\\x81\\xa9");	/* U+2069 PDI */
	CHECK("\xe2\x80\xa7", "\xe2\x80\xa7");		/* U+2027 is fine */
	CHECK("\xe2\x81\xaa", "\xe2\x81\xaa");		/* U+206A is fine */
}

static void
test_cut_never_splits(void **state)
{
	char out[8];

	memset(out, 'Z', sizeof out);
	str_escape(out, 3, "a\xc3\xa9", 3);
	assert_string_equal(out, "a");
	str_escape(out, 4, "a\xc3\xa9", 3);
	assert_string_equal(out, "a\xc3\xa9");
	str_escape(out, 5, "ab\r", 3);
	assert_string_equal(out, "ab");
	str_escape(out, 1, "abc", 3);
	assert_string_equal(out, "");
	out[0] = 'Z';
	str_escape(out, 0, "abc", 3);
	assert_int_equal(out[0], 'Z');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_and_controls),
		cmocka_unit_test(test_wellformed_utf8_passes),
		cmocka_unit_test(test_malformed_utf8_escaped),
		cmocka_unit_test(test_unsafe_characters_escaped),
		cmocka_unit_test(test_cut_never_splits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
