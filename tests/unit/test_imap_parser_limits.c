/*
 * test_imap_parser_limits.c - the IMAP response parser's literals (in
 * memory, streamed, sized, failing callbacks), every limit (line, depth,
 * items, tag, literal size) and every error path.
 */
#include "imap_parser_fixture.h"

static void
test_literal_bytes_inline(void **state)
{
	static const char in[] = "* 1 FETCH (BODY[] {7}\r\na\0b\r\n)c)\r\n";
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, true);
	f.t.stream_min = 8;	/* begin() answers 0: keep it */
	assert_int_equal(FEED(&f, in, &r), 1);
	assert_int_equal(f.t.n_begin, 1);
	assert_int_equal(f.t.begin_size, 7);
	assert_string_equal(f.t.section, "BODY[]");
	assert_true(f.t.in_fetch);
	assert_int_equal(r->args[0].items[1].type, IMAP_V_STRING);
	assert_int_equal(r->args[0].items[1].len, 7);
	assert_memory_equal(r->args[0].items[1].str, "a\0b\r\n)c", 8);
	fix_done(&f);
}

static void
test_literal_streamed(void **state)
{
	static const char in[] =
	    "* 3 FETCH (UID 9 BODY[] {7}\r\na\0b\r\n)c RFC822.SIZE 7)\r\n"
	    "* LIST () \"/\" {5}\r\nINBOX\r\n";
	const struct imap_response *r;
	struct fix f;
	char got[64];
	size_t n;

	fix_init(&f, NULL, true);
	f.t.stream_min = 6;
	assert_int_equal(FEED(&f, in, &r), 1);
	assert_int_equal(r->args[0].items[3].type, IMAP_V_STREAMED);
	assert_int_equal(r->args[0].items[3].streamed_size, 7);
	assert_int_equal(r->args[0].n_items, 6);
	assert_int_equal(f.t.n_data, 7);
	assert_int_equal(f.t.n_end, 1);
	n = evbuffer_remove(f.t.log, got, sizeof got - 1);
	got[n] = '\0';
	assert_string_equal(got, "<begin 7 'BODY[]' 1>a\\x00b\\x0d\\x0a)c<end>");
	/* Outside FETCH, after a string: no section; kept in memory. */
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), 1);
	assert_false(f.t.in_fetch);
	assert_string_equal(f.t.section, "");
	assert_string_equal(r->args[2].str, "INBOX");
	fix_done(&f);
}

static void
test_literal_section_hint(void **state)
{
	static const struct {
		const char *in, *section;
	} c[] = {
		{ "* 1 FETCH (BODY[HEADER.FIELDS (A B)] {1}\r\nx)\r\n",
		  "BODY[HEADER.FIELDS (A B)]" },
		{ "* 1 FETCH (BODY[]<0> {1}\r\nx)\r\n", "BODY[]<0>" },
		{ "* 1 FETCH (RFC822 {1}\r\nx)\r\n", "RFC822" },
		{ "* 1 FETCH (X ({1}\r\nx))\r\n", "" },
		{ "* 1 FETCH (X (A) {1}\r\nx)\r\n", "" },
	};
	const struct imap_response *r;
	struct fix f;
	size_t i;

	for (i = 0; i < sizeof c / sizeof *c; i++) {
		fix_init(&f, NULL, true);
		assert_int_equal(fix_feed(&f, c[i].in, strlen(c[i].in), &r), 1);
		assert_string_equal(f.t.section, c[i].section);
		assert_true(f.t.in_fetch);
		fix_done(&f);
	}
}

static void
test_literal_zero_and_plus(void **state)
{
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, true);
	f.t.stream_min = 0;
	assert_int_equal(FEED(&f, "* 2 FETCH (BODY[] {0}\r\n)\r\n", &r), 1);
	assert_int_equal(r->args[0].items[1].type, IMAP_V_STREAMED);
	assert_int_equal(f.t.n_end, 1);
	assert_int_equal(f.t.n_data, 0);
	assert_int_equal(FEED(&f, "* LIST () \"/\" {3+}\r\nabc\r\n", &r), 1);
	assert_int_equal(r->args[2].streamed_size, 3);
	fix_done(&f);
}

static void
test_literal_callback_errors(void **state)
{
	static const char in[] = "* 1 FETCH (BODY[] {3}\r\nabc)\r\n";
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, true);
	f.t.begin_ret = -ENOSPC;
	assert_int_equal(FEED(&f, in, &r), -ENOSPC);
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), -ENOSPC);
	fix_done(&f);
	fix_init(&f, NULL, true);
	f.t.stream_min = 0;
	f.t.data_ret = -EIO;
	assert_int_equal(FEED(&f, in, &r), -EIO);
	fix_done(&f);
	fix_init(&f, NULL, true);
	f.t.stream_min = 0;
	f.t.end_ret = -EPIPE;
	assert_int_equal(FEED(&f, in, &r), -EPIPE);
	assert_non_null(strstr(imap_parser_error(f.p), "literal"));
	fix_done(&f);
}

static void
test_inline_literal_limit(void **state)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct fix f;

	imap_limits_default(&lim);
	lim.max_inline_literal = 4;
	/* begin() says keep: 4 bytes fit, 5 do not. */
	fix_init(&f, &lim, true);
	assert_int_equal(FEED(&f, "* X {4}\r\nabcd\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* X {5}\r\nabcde\r\n", &r), -EMSGSIZE);
	fix_done(&f);
	/* Without callbacks the same bound holds. */
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* X {5}\r\n", &r), -EMSGSIZE);
	fix_done(&f);
	/* Streamed, the size does not matter. */
	fix_init(&f, &lim, true);
	f.t.stream_min = 5;
	assert_int_equal(FEED(&f, "* X {5}\r\nabcde\r\n", &r), 1);
	fix_done(&f);
}

static void
expect_size(const char *in, uint64_t max_literal, int want)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct fix f;

	imap_limits_default(&lim);
	lim.max_literal = max_literal;
	fix_init(&f, &lim, true);
	f.t.stream_min = 0;
	assert_int_equal(fix_feed(&f, in, strlen(in), &r), want);
	/* Refused sizes never reach begin(). */
	assert_int_equal(f.t.n_begin, want < 0 ? 0 : 1);
	fix_done(&f);
}

static void
test_literal_sizes(void **state)
{
	expect_size("* 1 FETCH (BODY[] {2147483648}\r\n", 256 << 20, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {4294967296}\r\n", 256 << 20, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {9223372036854775808}\r\n",
	    UINT32_MAX, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {18446744073709551616}\r\n",
	    UINT64_MAX, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {99999999999999999999999}\r\n",
	    UINT64_MAX, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {4294967296}\r\n", UINT64_MAX, 0);
	expect_size("* 1 FETCH (BODY[] {18446744073709551615}\r\n",
	    UINT64_MAX, 0);
	expect_size("* 1 FETCH (BODY[] {00000000000000000000005}\r\n", 5, 0);
	expect_size("* 1 FETCH (BODY[] {6}\r\n", 5, -EMSGSIZE);
}

static void
test_max_line(void **state)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct fix f;
	char chunk[65536];
	size_t fed = 0;
	int rc = 0;

	imap_limits_default(&lim);
	lim.max_line = 12;
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* SEARCH 1 2\r\n", &r), 1);	/* 12 */
	assert_int_equal(FEED(&f, "* SEARCH 1 23\r\n", &r), -EMSGSIZE);
	assert_non_null(strstr(imap_parser_error(f.p), "12 bytes"));
	fix_done(&f);
	/* Literal lines count together, literal bytes do not. */
	lim.max_line = 20;
	memset(chunk, 'a', sizeof chunk);
	fix_init(&f, &lim, true);
	f.t.stream_min = 0;
	assert_int_equal(FEED(&f, "* X {100}\r\n", &r), 0);
	evbuffer_add(f.in, chunk, 100);
	assert_int_equal(FEED(&f, " {1}\r\nx 123456\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* X {0}\r\n {0}\r\n {0}\r\n {0}\r\n {0}\r\n", &r),
	    -EMSGSIZE);
	fix_done(&f);
	/* A 1 GiB line: refused once past max_line, nothing more buffered. */
	imap_limits_default(&lim);
	fix_init(&f, &lim, false);
	evbuffer_add(f.in, "* X ", 4);
	while (fed < (1ULL << 30) && rc == 0) {
		evbuffer_add(f.in, chunk, sizeof chunk);
		fed += sizeof chunk;
		rc = imap_parser_feed(f.p, f.in, &r);
	}
	assert_int_equal(rc, -EMSGSIZE);
	assert_true(fed <= lim.max_line + sizeof chunk);
	fix_done(&f);
}

static void
test_max_depth(void **state)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct evbuffer *b;
	struct fix f;
	clock_t t0;
	int i;

	imap_limits_default(&lim);
	lim.max_depth = 3;
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* X (((a)) ((b)))\r\n", &r), 1);
	assert_string_equal(r->args[0].items[1].items[0].items[0].str, "b");
	assert_int_equal(FEED(&f, "* X ((((a))))\r\n", &r), -EMSGSIZE);
	fix_done(&f);
	/* 100,000 '(' : fails at once, the stack does not notice. */
	fix_init(&f, NULL, false);
	b = evbuffer_new();
	evbuffer_add(b, "* 1 FETCH ", 10);
	for (i = 0; i < 100000; i++)
		evbuffer_add(b, "(", 1);
	for (i = 0; i < 100000; i++)
		evbuffer_add(b, ")", 1);
	evbuffer_add(b, "\r\n", 2);
	evbuffer_add_buffer(f.in, b);
	t0 = clock();
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), -EMSGSIZE);
	assert_true(clock() - t0 < CLOCKS_PER_SEC);
	assert_non_null(strstr(imap_parser_error(f.p), "deeper than 32"));
	evbuffer_free(b);
	fix_done(&f);
}

static void
test_max_items(void **state)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct fix f;

	imap_limits_default(&lim);
	lim.max_items = 4;
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* SEARCH 1 2 3 4\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* X (1 2) 3\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* X (1 2) (3)\r\n", &r), -EMSGSIZE);
	fix_done(&f);
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* SEARCH 1 2 3 4 5\r\n", &r), -EMSGSIZE);
	fix_done(&f);
}

static void
test_tag_length(void **state)
{
	const struct imap_response *r;
	char line[128];
	struct fix f;

	memset(line, 't', 64);
	strcpy(line + 64, " OK x\r\n");
	fix_init(&f, NULL, false);
	assert_int_equal(fix_feed(&f, line, strlen(line), &r), 1);
	assert_int_equal(strlen(r->tag), 64);
	fix_done(&f);
	memset(line, 't', 65);
	strcpy(line + 65, " OK x\r\n");
	fix_init(&f, NULL, false);
	assert_int_equal(fix_feed(&f, line, strlen(line), &r), -EMSGSIZE);
	fix_done(&f);
}

static void
expect_err(const char *in, size_t len, int want)
{
	const struct imap_response *r;
	struct fix f;
	int rc;

	fix_init(&f, NULL, true);
	rc = fix_feed(&f, in, len, &r);
	if (rc != want)
		fail_msg("'%s': got %d want %d (%s)", in, rc, want,
		    imap_parser_error(f.p));
	/* After an error the parser stays failed. */
	if (want < 0)
		assert_int_equal(imap_parser_feed(f.p, f.in, &r), want);
	fix_done(&f);
}

#define EXPECT_ERR(lit, want) expect_err((lit), sizeof(lit) - 1, (want))

static void
test_line_bytes(void **state)
{
	EXPECT_ERR("* OK a\0b\r\n", -EPROTO);
	EXPECT_ERR("* OK a\rb\r\n", -EPROTO);
	EXPECT_ERR("* OK a\r\r\n", -EPROTO);
	EXPECT_ERR("\r\n", -EPROTO);
	EXPECT_ERR("\n", -EPROTO);
	EXPECT_ERR("* OK a\n", 1);
	EXPECT_ERR("* OK a\r", 0);
	EXPECT_ERR("* SEARCH 1\r\n", 1);
}

static void
test_quoted_errors(void **state)
{
	EXPECT_ERR("* LIST () \"/\" \"a\\nb\"\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"abc\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"abc\\\"\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"abc\\\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"ab {3}\r\nxyz\"\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"a\tb\xc3\xa4\"\r\n", 1);
	EXPECT_ERR("* LIST () \"/\" \"a\"b\r\n", -EPROTO);
}

static void
test_garbage(void **state)
{
	EXPECT_ERR("foo\r\n", -EPROTO);
	EXPECT_ERR("a1 FOO bar\r\n", -EPROTO);
	EXPECT_ERR("a1 BYE bar\r\n", -EPROTO);
	EXPECT_ERR("a(1 OK x\r\n", -EPROTO);
	EXPECT_ERR("*\r\n", -EPROTO);
	EXPECT_ERR("* \r\n", -EPROTO);
	EXPECT_ERR("*OK\r\n", -EPROTO);
	EXPECT_ERR("* 5\r\n", -EPROTO);
	EXPECT_ERR("* 5 \r\n", -EPROTO);
	EXPECT_ERR("* 4294967296 EXISTS\r\n", -EPROTO);
	EXPECT_ERR("* (LIST)\r\n", -EPROTO);
	EXPECT_ERR("* LIST (\r\n", -EPROTO);
	EXPECT_ERR("* LIST )\r\n", -EPROTO);
	EXPECT_ERR("* LIST a(b)\r\n", -EPROTO);
	EXPECT_ERR("* LIST (a)(b)\r\n", -EPROTO);
	EXPECT_ERR("* LIST {abc}\r\n", -EPROTO);
	EXPECT_ERR("* LIST {3}x\r\n", -EPROTO);
	EXPECT_ERR("* LIST a{3}\r\n", -EPROTO);
	EXPECT_ERR("* LIST {3}\r\nabc{3}\r\nabc\r\n", -EPROTO);
	EXPECT_ERR("* LIST BODY[1\r\n", -EPROTO);
	EXPECT_ERR("* LIST a\x01\r\n", -EPROTO);
	EXPECT_ERR("* OK [] x\r\n", -EPROTO);
	EXPECT_ERR("* OK [A(] x\r\n", -EPROTO);
	EXPECT_ERR("* OK [CAPABILITY (a] x\r\n", -EPROTO);
	EXPECT_ERR("* OK [UIDNEXT \"1] x\r\n", -EPROTO);
	EXPECT_ERR("+\x01\r\n", -EPROTO);
}

static void
test_error_text_escaped(void **state)
{
	const struct imap_response *r;
	const char *e;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "* 1 EXISTS\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* LIST \"\x1b[31m\\q\"\r\n", &r), -EPROTO);
	e = imap_parser_error(f.p);
	assert_non_null(strstr(e, "invalid escape"));
	assert_non_null(strstr(e, "response 2"));
	assert_non_null(strstr(e, "\\x1b[31m"));
	assert_null(strchr(e, '\x1b'));
	fix_done(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_bytes_inline),
		cmocka_unit_test(test_literal_streamed),
		cmocka_unit_test(test_literal_section_hint),
		cmocka_unit_test(test_literal_zero_and_plus),
		cmocka_unit_test(test_literal_callback_errors),
		cmocka_unit_test(test_inline_literal_limit),
		cmocka_unit_test(test_literal_sizes),
		cmocka_unit_test(test_max_line),
		cmocka_unit_test(test_max_depth),
		cmocka_unit_test(test_max_items),
		cmocka_unit_test(test_tag_length),
		cmocka_unit_test(test_line_bytes),
		cmocka_unit_test(test_quoted_errors),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_error_text_escaped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
