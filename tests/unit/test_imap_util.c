/*
 * test_imap_util.c - modified UTF-7 (RFC 3501 5.1.3 vectors, round trips,
 * every way to be invalid), argument quoting, and UID sets checked against
 * a plain bitmap.
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
#include <event2/buffer.h>

#include "imap/imap_util.h"

static const struct {
	const char *mutf7, *utf8;
} vectors[] = {
	/* RFC 3501 5.1.3 */
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "&-", "&" },
	{ "a&-b&-", "a&b&" },
	{ "Entw&APw-rfe", "Entw\xc3\xbcrfe" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },		/* U+1F600, a pair */
	{ "&AAE-x", "\x01x" },
	{ "", "" },
	{ "INBOX.Sent Items", "INBOX.Sent Items" },
};

static void
test_mutf7_vectors(void **state)
{
	size_t i;
	char *out;

	for (i = 0; i < sizeof vectors / sizeof *vectors; i++) {
		assert_int_equal(imap_mutf7_decode(vectors[i].mutf7,
		    strlen(vectors[i].mutf7), &out), 0);
		assert_string_equal(out, vectors[i].utf8);
		free(out);
		assert_int_equal(imap_mutf7_encode(vectors[i].utf8, &out), 0);
		assert_string_equal(out, vectors[i].mutf7);
		free(out);
	}
	/* `len` is the truth, not a NUL. */
	assert_int_equal(imap_mutf7_decode("ab&-cd", 4, &out), 0);
	assert_string_equal(out, "ab&");
	free(out);
}

static void
test_mutf7_invalid(void **state)
{
	static const char *const bad[] = {
		"&",		/* shift without end */
		"a&AGE",	/* unterminated */
		"&AAA",		/* unterminated */
		"&AGE-",	/* 'a' encoded: printable ASCII */
		"&ACY-",	/* '&' encoded */
		"&ACA-",	/* space encoded */
		"&AAA-",	/* NUL */
		"&2D0-",	/* high surrogate alone */
		"&3gA-",	/* low surrogate alone */
		"&3gDYPQ-",	/* pair in the wrong order */
		"&2D0-&3gA-",	/* a pair split over two shifts */
		"&A*A-",	/* not base64 */
		"&AOQ=-",	/* padding is not modified base64 */
		"&AO/-",	/* '/' is ',' here */
		"&AOR-",	/* non-zero leftover bits */
		"&AOQA-",	/* a whole spare character */
		"&AOQAA-",	/* odd number of bytes */
		"&A-",		/* less than one unit */
		"&&-",
		"\xc3\xa4",	/* 8-bit input */
		"a\x01",	/* control byte not encoded */
		"a\x7f",
	};
	size_t i;
	char *out = NULL;

	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		int r = imap_mutf7_decode(bad[i], strlen(bad[i]), &out);

		if (r != -EINVAL)
			fail_msg("'%s' gave %d", bad[i], r);
		assert_null(out);
	}
	assert_int_equal(imap_mutf7_decode("a\0b", 3, &out), -EINVAL);
}

static void
test_mutf7_encode_invalid(void **state)
{
	static const char *const bad[] = {
		"\xc3",			/* truncated */
		"a\xc3z",
		"\xc0\xaf",		/* overlong '/' */
		"\xe0\x80\xaf",		/* overlong */
		"\xed\xa0\x80",		/* UTF-16 surrogate */
		"\xf4\x90\x80\x80",	/* above U+10FFFF */
		"\xff",
		"\x80",
	};
	size_t i;
	char *out = NULL;

	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		if (imap_mutf7_encode(bad[i], &out) != -EINVAL)
			fail_msg("'%s' encoded", bad[i]);
		assert_null(out);
	}
}

static void
test_mutf7_round_trip(void **state)
{
	static const char *const names[] = {
		"\xe2\x82\xac & \xe2\x82\xac", "&&&", "a\x7f\x01\x1f b",
		"\xf4\x8f\xbf\xbf\xef\xbf\xbf\xc2\x80", "-&-", "\xc3\xa4-",
		"Gel\xc3\xb6schte Objekte/\xe8\x8d\x89\xe7\xa8\xbf",
	};
	char *enc, *dec;
	size_t i, j;

	for (i = 0; i < sizeof names / sizeof *names; i++) {
		assert_int_equal(imap_mutf7_encode(names[i], &enc), 0);
		for (j = 0; enc[j] != '\0'; j++)
			assert_true(enc[j] >= 0x20 && enc[j] <= 0x7e);
		assert_int_equal(imap_mutf7_decode(enc, strlen(enc), &dec), 0);
		assert_string_equal(dec, names[i]);
		free(enc);
		free(dec);
	}
}

static char *
quoted(const char *s, size_t len, int *rc)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *out;

	evbuffer_add(b, "<", 1);
	*rc = imap_quote(b, s, len);
	n = evbuffer_get_length(b);
	out = malloc(n + 1);
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	evbuffer_free(b);
	return out;
}

static void
test_quote(void **state)
{
	static const struct {
		const char *in, *want;
	} ok[] = {
		{ "INBOX", "<INBOX" },
		{ "", "<\"\"" },
		{ "a b", "<\"a b\"" },
		{ "a\"b\\", "<\"a\\\"b\\\\\"" },
		{ "NIL", "<\"NIL\"" },
		{ "nil2", "<nil2" },
		{ "a]", "<\"a]\"" },
		{ "50%", "<\"50%\"" },
		{ "a*", "<\"a*\"" },
		{ "{5}", "<\"{5}\"" },
		{ "(x)", "<\"(x)\"" },
		{ "u@ex.com", "<u@ex.com" },
		{ "p[1]~!#", "<\"p[1]~!#\"" },
		{ "p[1~!#", "<p[1~!#" },
	};
	static const struct {
		const char *in;
		size_t len;
	} bad[] = {
		{ "a\rb", 3 }, { "a\nb", 3 }, { "a\0b", 3 }, { "\xc3\xa4", 2 },
		{ "\x7f", 1 }, { "\t", 1 },
	};
	size_t i;
	char *out;
	int rc;

	for (i = 0; i < sizeof ok / sizeof *ok; i++) {
		out = quoted(ok[i].in, strlen(ok[i].in), &rc);
		assert_int_equal(rc, 0);
		assert_string_equal(out, ok[i].want);
		assert_true(imap_quotable(ok[i].in, strlen(ok[i].in)));
		free(out);
	}
	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		out = quoted(bad[i].in, bad[i].len, &rc);
		assert_int_equal(rc, -EINVAL);
		assert_string_equal(out, "<");	/* nothing half-written */
		assert_false(imap_quotable(bad[i].in, bad[i].len));
		free(out);
	}
}

static char *
formatted(const struct imap_uidset *s, int *rc)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *out;

	*rc = imap_uidset_format(s, b);
	n = evbuffer_get_length(b);
	out = malloc(n + 1);
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	evbuffer_free(b);
	return out;
}

static void
expect_set(const struct imap_uidset *s, const char *want)
{
	char *got;
	int rc;

	got = formatted(s, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(got, want);
	free(got);
}

static void
test_uidset_add(void **state)
{
	struct imap_uidset s;
	int rc;
	char *got;

	imap_uidset_init(&s);
	got = formatted(&s, &rc);
	assert_int_equal(rc, -EINVAL);	/* an empty set is not IMAP */
	free(got);
	assert_int_equal(imap_uidset_add(&s, 5, 5), 0);
	assert_int_equal(imap_uidset_add(&s, 7, 7), 0);
	expect_set(&s, "5,7");
	assert_int_equal(imap_uidset_add(&s, 6, 6), 0);
	expect_set(&s, "5:7");
	assert_int_equal(imap_uidset_add(&s, 12, 10), 0);
	assert_int_equal(imap_uidset_add(&s, 1, 2), 0);
	expect_set(&s, "1:2,5:7,10:12");
	assert_int_equal(imap_uidset_add(&s, 3, 9), 0);
	expect_set(&s, "1:12");
	assert_int_equal(s.n, 1);
	assert_int_equal(imap_uidset_add(&s, 0, 3), -EINVAL);
	assert_int_equal(imap_uidset_add(&s, UINT32_MAX, UINT32_MAX), 0);
	assert_int_equal(imap_uidset_add(&s, 13, UINT32_MAX - 1), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(imap_uidset_count(&s), 4294967295ULL);
	expect_set(&s, "1:4294967295");
	imap_uidset_clear(&s);
	assert_int_equal(imap_uidset_count(&s), 0);
	assert_int_equal(s.n, 0);
}

/* Random adds against a bitmap: same members, and the ranges are canonical. */
static void
test_uidset_bitmap(void **state)
{
	enum { N = 300 };
	struct imap_uidset s;
	bool bit[N + 2];
	unsigned seed = 1, i, round, k;
	uint64_t count;

	for (round = 0; round < 50; round++) {
		imap_uidset_init(&s);
		memset(bit, 0, sizeof bit);
		for (k = 0; k < 40; k++) {
			uint32_t a, b;

			seed = seed * 1103515245 + 12345;
			a = 1 + (seed >> 8) % N;
			seed = seed * 1103515245 + 12345;
			b = a + (seed >> 8) % (k % 3 == 0 ? 20 : 2);
			if (b > N)
				b = N;
			assert_int_equal(imap_uidset_add(&s, k & 1 ? b : a,
			    k & 1 ? a : b), 0);
			for (i = a; i <= b; i++)
				bit[i] = true;
		}
		for (count = 0, i = 1; i <= N; i++)
			count += bit[i];
		assert_int_equal(imap_uidset_count(&s), count);
		for (k = 0; k < s.n; k++) {
			assert_true(s.r[k].lo <= s.r[k].hi);
			if (k > 0)
				assert_true(s.r[k - 1].hi + 1 < s.r[k].lo);
			for (i = s.r[k].lo; i <= s.r[k].hi; i++)
				assert_true(bit[i]);
		}
		imap_uidset_clear(&s);
	}
}

static void
test_uidset_parse(void **state)
{
	struct imap_uidset s;

	imap_uidset_init(&s);
	assert_int_equal(imap_uidset_parse(&s, "1:5,7,9:*", 9, 12, 10), 0);
	expect_set(&s, "1:5,7,9:12");
	assert_int_equal(imap_uidset_count(&s), 10);
	assert_int_equal(imap_uidset_parse(&s, "5:3", 3, 0, 10), 0);
	expect_set(&s, "3:5");
	assert_int_equal(imap_uidset_parse(&s, "3,1,2,9:7,8", 11, 0, 10), 0);
	expect_set(&s, "1:3,7:9");
	assert_int_equal(imap_uidset_parse(&s, "*:4", 3, 2, 10), 0);
	expect_set(&s, "2:4");
	assert_int_equal(imap_uidset_parse(&s, "1:4294967295", 12, 0, 1), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(imap_uidset_count(&s), 4294967295ULL);
	/* `len` bounds the parse, not a NUL. */
	assert_int_equal(imap_uidset_parse(&s, "7,8x", 3, 0, 2), 0);
	expect_set(&s, "7:8");
	imap_uidset_clear(&s);
}

static void
test_uidset_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"", "0", "1:0", "0:1", ",1", "1,", "1,,2", "1:", ":1", "1 2",
		"a", "4294967296", "1:2:3", "-1", "+1", "1;2", "*", "1:*",
	};
	struct imap_uidset s;
	size_t i;

	imap_uidset_init(&s);
	assert_int_equal(imap_uidset_parse(&s, "4", 1, 0, 10), 0);
	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		if (imap_uidset_parse(&s, bad[i], strlen(bad[i]), 0, 10) !=
		    -EINVAL)
			fail_msg("'%s' parsed", bad[i]);
		expect_set(&s, "4");	/* untouched on failure */
	}
	assert_int_equal(imap_uidset_parse(&s, "1,3,5", 5, 0, 2), -E2BIG);
	assert_int_equal(imap_uidset_parse(&s, "1,3,5", 5, 0, 3), 0);
	assert_int_equal(imap_uidset_parse(&s, "1", 1, 0, 0), -E2BIG);
	expect_set(&s, "1,3,5");
	imap_uidset_clear(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutf7_vectors),
		cmocka_unit_test(test_mutf7_invalid),
		cmocka_unit_test(test_mutf7_encode_invalid),
		cmocka_unit_test(test_mutf7_round_trip),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_uidset_add),
		cmocka_unit_test(test_uidset_bitmap),
		cmocka_unit_test(test_uidset_parse),
		cmocka_unit_test(test_uidset_parse_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
