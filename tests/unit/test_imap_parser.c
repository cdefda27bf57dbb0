/*
 * test_imap_parser.c - the IMAP response parser: every response type and
 * the value helpers, and the property that matters most for a network
 * parser: the result does not depend on how the bytes were split.
 * Literals, limits and error paths: test_imap_parser_limits.c.
 */
#include "imap_parser_fixture.h"

/*
 * Feed `in` as a first piece of `first` bytes, then `step` bytes at a
 * time; return (malloc'ed) everything that was seen, responses and
 * callbacks in order, and the final result.
 */
static char *
run_split(const char *in, size_t len, size_t first, size_t step,
    const struct imap_limits *lim, bool ops, uint64_t stream_min)
{
	const struct imap_response *r;
	struct fix f;
	size_t off = 0, n;
	char *out;
	int rc = 0;

	fix_init(&f, lim, ops);
	f.t.stream_min = stream_min;
	while (rc >= 0) {
		n = off == 0 ? first : step;
		if (n > len - off)
			n = len - off;
		evbuffer_add(f.in, in + off, n);
		off += n;
		while ((rc = imap_parser_feed(f.p, f.in, &r)) == 1)
			dump_resp(f.t.log, r);
		if (off == len)
			break;
	}
	evbuffer_add_printf(f.t.log, "rc=%d", rc);
	if (rc < 0)
		evbuffer_add_printf(f.t.log, " err=%s", imap_parser_error(f.p));
	else
		evbuffer_add_printf(f.t.log, " left=%zu",
		    evbuffer_get_length(f.in));
	n = evbuffer_get_length(f.t.log);
	out = malloc(n + 1);
	assert_non_null(out);
	evbuffer_remove(f.t.log, out, n);
	out[n] = '\0';
	fix_done(&f);
	return out;
}

/* Every split point, byte at a time, and a few odd steps: same result. */
static void
check_splits(const char *in, size_t len, bool ops, uint64_t stream_min,
    const struct imap_limits *lim)
{
	static const size_t steps[] = { 1, 2, 3, 7, 64 };
	char *ref, *got;
	size_t k, i;

	ref = run_split(in, len, len, len, lim, ops, stream_min);
	for (k = 1; k < len; k++) {
		got = run_split(in, len, k, len, lim, ops, stream_min);
		if (strcmp(ref, got) != 0)
			fail_msg("split at %zu differs:\n%s\n--- vs ---\n%s",
			    k, ref, got);
		free(got);
	}
	for (i = 0; i < sizeof steps / sizeof *steps; i++) {
		got = run_split(in, len, steps[i], steps[i], lim, ops,
		    stream_min);
		if (strcmp(ref, got) != 0)
			fail_msg("step %zu differs:\n%s\n--- vs ---\n%s",
			    steps[i], ref, got);
		free(got);
	}
	free(ref);
}

/* A session's worth of responses of every kind. */
static const char session[] =
    "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n"
    "a1 OK [READ-ONLY] EXAMINE completed (0.001 secs)\r\n"
    "* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n"
    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
    "* LIST (\\Noselect) NIL {9}\r\nweird\"nam\r\n"
    "* LSUB () \".\" \"Sent \\\"Items\\\\\"\r\n"
    "* STATUS \"Sent Items\" (MESSAGES 231 UIDNEXT 44292)\r\n"
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
    "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    "* NO [REFERRAL imap://u;AUTH=*@s2/] try s2\r\n"
    "* SEARCH 2 84 882 \r\n"
    "* ESEARCH (TAG \"a1\") UID ALL 1:5\r\n"
    "* ENABLED CONDSTORE\r\n"
    "* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n"
    "* NAMESPACE ((\"\" \"/\")) NIL ((\"#shared/\" \"/\"))\r\n"
    "* 23 EXISTS\r\n* 1 RECENT\r\n* 44 EXPUNGE\r\n"
    "+ Ready for literal data\r\n+\r\n+ YWJjZA==\r\n"
    "* 5 FETCH (UID 12 FLAGS (\\Seen) RFC822.SIZE 7 "
    "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {7}\r\n"
    "a\0b\r\n)c BODY[HEADER.FIELDS (FROM TO)] {0}\r\n)\r\n"
    "* 6 fetch (BODY[]<0> {3}\r\nxyz BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" "
    "(\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 1) \"MIXED\"))\n"
    "* OK [ALERT] \x1b[31mred\" (unbalanced \xc3\xa4 {5}\r\n"
    "* BYE [UNKNOWN-CODE a \"b ( c] going away\r\n"
    "a2 bad [BADCHARSET (UTF-8 \"US-ASCII\")] no\r\n"
    "a3 NO\r\n* PREAUTH [ not a code\r\n";

static void
test_splits_session(void **state)
{
	/* In memory, streamed from 1 byte on, and without callbacks. */
	check_splits(session, sizeof session - 1, true, UINT64_MAX, NULL);
	check_splits(session, sizeof session - 1, true, 1, NULL);
	check_splits(session, sizeof session - 1, false, 0, NULL);
}

static void
test_splits_errors(void **state)
{
#define S(x) { x, sizeof(x) - 1 }
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		S("* OK fine\r\n* LIST (\\X) \"a\\q\" b\r\n"),
		S("* OK x\r\n* 1 FETCH (BODY[] {3}\r\nab\0 \"open\r\n"),
		S("* OK x\r\n* SEARCH 1 \r 2\r\n"),
		S("* OK x\r\n* SEARCH 1 2\0\r\n"),
		S("* 1 FETCH (BODY[] {99999999999999999999}\r\n"),
		S("* X ((((((((((((((((((((((((((((((((((((((((()))\r\n"),
		S("* OK x\r\n* LIST {3}\r\nabc{3}\r\nabc\r\n"),
	};
#undef S
	struct imap_limits lim;
	size_t i;

	imap_limits_default(&lim);
	lim.max_line = 40;	/* the first response is longer: EMSGSIZE */
	check_splits(session, 200, true, 1, &lim);
	for (i = 0; i < sizeof bad / sizeof *bad; i++)
		check_splits(bad[i].s, bad[i].len, true, 2, NULL);
}

static void
test_tagged(void **state)
{
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "a1 OK [READ-ONLY] EXAMINE done\r\n", &r), 1);
	assert_int_equal(r->type, IMAP_R_TAGGED);
	assert_string_equal(r->tag, "a1");
	assert_int_equal(r->status, IMAP_ST_OK);
	assert_string_equal(r->keyword, "");
	assert_string_equal(r->code, "READ-ONLY");
	assert_int_equal(r->n_code_args, 0);
	assert_string_equal(r->text, "EXAMINE done");
	assert_int_equal(r->text_len, 12);
	assert_false(r->has_number);
	assert_int_equal(FEED(&f, "a2 no failed\r\na3 Bad\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_NO);
	assert_null(r->code);
	assert_string_equal(r->text, "failed");
	/* The second response was left in the buffer for the next call. */
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), 1);
	assert_int_equal(r->status, IMAP_ST_BAD);
	assert_string_equal(r->tag, "a3");
	assert_int_equal(r->text_len, 0);
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), 0);
	assert_string_equal(imap_parser_error(f.p), "no error");
	fix_done(&f);
}

static void
test_status_codes(void **state)
{
	const struct imap_response *r;
	struct fix f;
	uint32_t u;
	uint64_t u64;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "* OK [UIDVALIDITY 3857529045] ok\r\n", &r), 1);
	assert_int_equal(r->type, IMAP_R_UNTAGGED);
	assert_null(r->tag);
	assert_string_equal(r->code, "UIDVALIDITY");
	assert_int_equal(r->n_code_args, 1);
	assert_int_equal(imap_value_u32(&r->code_args[0], &u), 0);
	assert_int_equal(u, 3857529045U);
	assert_int_equal(FEED(&f, "* ok [uidnext 4]\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_OK);
	assert_string_equal(r->code, "UIDNEXT");
	assert_string_equal(r->text, "");
	assert_int_equal(FEED(&f, "* OK [HIGHESTMODSEQ 715194045007] x\r\n", &r), 1);
	assert_int_equal(imap_value_u64(&r->code_args[0], &u64), 0);
	assert_int_equal(u64, 715194045007ULL);
	assert_int_equal(imap_value_u32(&r->code_args[0], &u), -EINVAL);
	assert_int_equal(FEED(&f, "* OK [PERMANENTFLAGS (\\Seen \\*)] L\r\n", &r), 1);
	assert_int_equal(r->n_code_args, 1);
	assert_int_equal(r->code_args[0].type, IMAP_V_LIST);
	assert_int_equal(r->code_args[0].n_items, 2);
	assert_true(imap_value_is(&r->code_args[0].items[0], "\\SEEN"));
	assert_string_equal(r->code_args[0].items[1].str, "\\*");
	assert_int_equal(FEED(&f, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", &r), 1);
	assert_int_equal(r->n_code_args, 2);
	assert_string_equal(r->code_args[1].str, "AUTH=PLAIN");
	assert_string_equal(r->text, "hi");
	assert_int_equal(FEED(&f, "* NO [REFERRAL imap://u;AUTH=*@s/] go\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_NO);
	assert_int_equal(r->n_code_args, 1);
	assert_string_equal(r->code_args[0].str, "imap://u;AUTH=*@s/");
	assert_int_equal(FEED(&f, "a9 NO [BADCHARSET (UTF-8 US-ASCII)] x\r\n", &r), 1);
	assert_int_equal(r->code_args[0].n_items, 2);
	assert_int_equal(FEED(&f, "* BYE [XY-Z a \"b ( c] rest \"(\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_BYE);
	assert_string_equal(r->code, "XY-Z");
	assert_int_equal(r->n_code_args, 1);
	assert_string_equal(r->code_args[0].str, "a \"b ( c");
	assert_string_equal(r->text, "rest \"(");
	assert_int_equal(FEED(&f, "* PREAUTH [never closed\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_PREAUTH);
	assert_null(r->code);
	assert_string_equal(r->text, "[never closed");
	fix_done(&f);
}

static void
test_alert_raw_text(void **state)
{
	static const char in[] = "* OK [ALERT] \x1b[2J\xff{3}\r\n* 1 EXISTS\r\n";
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, true);
	assert_int_equal(FEED(&f, in, &r), 1);
	assert_string_equal(r->code, "ALERT");
	assert_int_equal(r->text_len, 8);
	assert_memory_equal(r->text, "\x1b[2J\xff{3}", 8);
	/* "{3}" at the end of free text is no literal. */
	assert_int_equal(f.t.n_begin, 0);
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), 1);
	assert_string_equal(r->keyword, "EXISTS");
	fix_done(&f);
}

static void
test_data_responses(void **state)
{
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "* CAPABILITY IMAP4rev1 IDLE\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_NONE);
	assert_string_equal(r->keyword, "CAPABILITY");
	assert_int_equal(r->n_args, 2);
	assert_null(r->code);
	assert_int_equal(FEED(&f, "* list (\\HasNoChildren) \"/\" INBOX\r\n", &r), 1);
	assert_string_equal(r->keyword, "LIST");
	assert_int_equal(r->n_args, 3);
	assert_int_equal(r->args[0].type, IMAP_V_LIST);
	assert_int_equal(r->args[1].type, IMAP_V_STRING);
	assert_string_equal(r->args[1].str, "/");
	assert_int_equal(r->args[2].type, IMAP_V_ATOM);
	assert_int_equal(FEED(&f, "* LIST () NiL \"a\\\"b\\\\\"\r\n", &r), 1);
	assert_int_equal(r->args[0].n_items, 0);
	assert_int_equal(r->args[1].type, IMAP_V_NIL);
	assert_string_equal(r->args[2].str, "a\"b\\");
	assert_int_equal(r->args[2].len, 4);
	assert_int_equal(FEED(&f, "* SEARCH\r\n", &r), 1);
	assert_int_equal(r->n_args, 0);
	assert_int_equal(FEED(&f, "* ESEARCH (TAG \"a1\") UID ALL 1:5\r\n", &r), 1);
	assert_int_equal(r->n_args, 4);
	assert_true(imap_value_is(&r->args[0].items[0], "tag"));
	assert_true(imap_value_is(&r->args[0].items[1], "a1"));
	assert_string_equal(r->args[3].str, "1:5");
	assert_int_equal(FEED(&f, "* 4294967295 EXISTS\r\n", &r), 1);
	assert_true(r->has_number);
	assert_int_equal(r->number, 4294967295U);
	assert_string_equal(r->keyword, "EXISTS");
	assert_int_equal(r->n_args, 0);
	assert_int_equal(FEED(&f, "* 3 expunge\r\n", &r), 1);
	assert_string_equal(r->keyword, "EXPUNGE");
	fix_done(&f);
}

static void
test_fetch_values(void **state)
{
	static const char in[] =
	    "* 12 FETCH (FLAGS (\\Seen $Junk) BODY[HEADER.FIELDS (FROM TO)]"
	    " {5}\r\nF: x\n BODY[]<0> \"\" X-GM-LABELS (\\Inbox \"a b\"))\r\n";
	const struct imap_response *r;
	const struct imap_value *l;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, in, &r), 1);
	assert_int_equal(r->number, 12);
	assert_string_equal(r->keyword, "FETCH");
	assert_int_equal(r->n_args, 1);
	l = &r->args[0];
	assert_int_equal(l->n_items, 8);
	assert_string_equal(l->items[2].str, "BODY[HEADER.FIELDS (FROM TO)]");
	assert_int_equal(l->items[3].type, IMAP_V_STRING);
	assert_int_equal(l->items[3].len, 5);
	assert_memory_equal(l->items[3].str, "F: x\n", 6);
	assert_string_equal(l->items[4].str, "BODY[]<0>");
	assert_int_equal(l->items[5].len, 0);
	assert_string_equal(l->items[7].items[1].str, "a b");
	fix_done(&f);
}

static void
test_continuation(void **state)
{
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "+ Ready (for \"it\r\n", &r), 1);
	assert_int_equal(r->type, IMAP_R_CONTINUE);
	assert_string_equal(r->text, "Ready (for \"it");
	assert_int_equal(FEED(&f, "+\r\n", &r), 1);
	assert_int_equal(r->type, IMAP_R_CONTINUE);
	assert_int_equal(r->text_len, 0);
	assert_int_equal(FEED(&f, "+ \r\n", &r), 1);
	assert_int_equal(r->text_len, 0);
	assert_int_equal(FEED(&f, "+ YWJjZA==\n", &r), 1);
	assert_string_equal(r->text, "YWJjZA==");
	assert_int_equal(FEED(&f, "+x\r\n", &r), -EPROTO);
	fix_done(&f);
}

static void
test_value_helpers(void **state)
{
	struct imap_value v = { .type = IMAP_V_ATOM, .str = "0042", .len = 4 };
	uint32_t u;
	uint64_t u64;

	assert_int_equal(imap_value_u32(&v, &u), 0);
	assert_int_equal(u, 42);
	v.str = "4294967296";
	v.len = 10;
	assert_int_equal(imap_value_u32(&v, &u), -EINVAL);
	assert_int_equal(imap_value_u64(&v, &u64), 0);
	assert_int_equal(u64, 4294967296ULL);
	v.str = "";
	v.len = 0;
	assert_int_equal(imap_value_u64(&v, &u64), -EINVAL);
	v.type = IMAP_V_STRING;
	v.str = "12";
	v.len = 2;
	assert_int_equal(imap_value_u32(&v, &u), -EINVAL);
	assert_true(imap_value_is(&v, "12"));
	v.str = "Inbox\0x";
	v.len = 7;
	assert_false(imap_value_is(&v, "INBOX"));
	v.len = 5;
	assert_true(imap_value_is(&v, "INBOX"));
	v.type = IMAP_V_NIL;
	assert_false(imap_value_is(&v, "INBOX"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tagged),
		cmocka_unit_test(test_status_codes),
		cmocka_unit_test(test_alert_raw_text),
		cmocka_unit_test(test_data_responses),
		cmocka_unit_test(test_fetch_values),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_value_helpers),
		cmocka_unit_test(test_splits_session),
		cmocka_unit_test(test_splits_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
