/*
 * test_pop3_parser.c - the I/O-free half of POP3: the dot decoder fed
 * whole, a byte at a time and split at every pair of offsets; status lines
 * with RFC 2449 response codes; CAPA, UIDL, LIST and STAT lines with odd
 * spacing; the APOP timestamp; bounded line taking.
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

#include "pop3/pop3_parser.h"

/* ---- dot decoder ------------------------------------------------------- */

struct sink {
	char	 buf[4096];
	size_t	 len;
	unsigned calls;
	int	 fail_at_call;		/* 0: never */
};

static int
sink_out(void *arg, const void *buf, size_t len)
{
	struct sink *s = arg;

	s->calls++;
	if (s->fail_at_call != 0 && (int)s->calls == s->fail_at_call)
		return -ENOSPC;
	assert_true(len > 0);
	assert_true(s->len + len <= sizeof s->buf);
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

/*
 * Feed `raw` in the pieces that the split offsets make.  Returns the
 * result of the last feed and sets *consumed to the bytes taken in all.
 */
static int
feed_split(const char *raw, size_t len, const size_t *cuts, size_t n_cuts,
    struct sink *s, size_t *consumed)
{
	struct pop3_dot d;
	size_t start = 0, i, used;
	int r = 0;

	pop3_dot_init(&d);
	*consumed = 0;
	for (i = 0; i <= n_cuts; i++) {
		size_t end = i < n_cuts ? cuts[i] : len;

		if (end < start)
			continue;
		r = pop3_dot_feed(&d, raw + start, end - start, &used,
		    sink_out, s);
		assert_true(r >= 0);
		*consumed += used;
		if (r == 1) {
			assert_int_equal(pop3_dot_eof(&d), 0);
			assert_int_equal(d.decoded, s->len);
			return r;
		}
		assert_int_equal(used, end - start);
		start = end;
	}
	assert_int_equal(pop3_dot_eof(&d), -EPROTO);
	return r;
}

/*
 * A RETR reply body: a stuffed dot line, stuffed dots, a line that is a
 * lone dot in the message, a dot inside a line, a CR right after a
 * stuffing dot, and the next reply already behind the terminator.
 */
static const char dot_raw[] =
    "From: a@example.org\r\n"
    "\r\n"
    "..dot line\r\n"
    "...two dots\r\n"
    "mid.dle.\r\n"
    "..\r\n"
    ".\rx\r\n"
    "last\r\n"
    ".\r\n"
    "+OK next\r\n";
static const char dot_msg[] =
    "From: a@example.org\r\n"
    "\r\n"
    ".dot line\r\n"
    "..two dots\r\n"
    "mid.dle.\r\n"
    ".\r\n"
    "\rx\r\n"
    "last\r\n";

static void
check_sample(const size_t *cuts, size_t n_cuts)
{
	struct sink s = { .len = 0 };
	size_t consumed;
	int r;

	r = feed_split(dot_raw, sizeof dot_raw - 1, cuts, n_cuts, &s, &consumed);
	assert_int_equal(r, 1);
	assert_int_equal(s.len, sizeof dot_msg - 1);
	assert_memory_equal(s.buf, dot_msg, s.len);
	/* Not a byte of the next reply was taken. */
	assert_int_equal(consumed, sizeof dot_raw - 1 - strlen("+OK next\r\n"));
}

static void
test_dot_whole(void **state)
{
	struct sink s = { .len = 0 };
	size_t consumed;

	check_sample(NULL, 0);
	/* A plain body passes in one run, not one call per byte. */
	assert_int_equal(feed_split("abc\r\ndef\r\n.\r\n", 13, NULL, 0, &s,
	    &consumed), 1);
	assert_int_equal(s.calls, 1);
	assert_memory_equal(s.buf, "abc\r\ndef\r\n", 10);
}

static void
test_dot_byte_at_a_time(void **state)
{
	size_t cuts[sizeof dot_raw], i;

	for (i = 0; i < sizeof dot_raw - 1; i++)
		cuts[i] = i + 1;
	check_sample(cuts, sizeof dot_raw - 1);
}

static void
test_dot_every_split(void **state)
{
	size_t n = sizeof dot_raw - 1, a, b, cuts[2];

	for (a = 0; a <= n; a++) {
		cuts[0] = a;
		check_sample(cuts, 1);
		for (b = a; b <= n; b++) {
			cuts[1] = b;
			check_sample(cuts, 2);
		}
	}
}

/*
 * RFC 1939 3: every line of a multi-line reply ends in CRLF, so a server
 * adds one to a message that lacks it.  The archive keeps exactly what
 * lies before the terminating ".CRLF": the added CRLF included (it cannot
 * be told from a CRLF the message had).
 */
static void
test_dot_message_without_final_newline(void **state)
{
	struct sink s = { .len = 0 };
	size_t consumed;

	assert_int_equal(feed_split("no newline\r\n.\r\n", 15, NULL, 0, &s,
	    &consumed), 1);
	assert_int_equal(s.len, 12);
	assert_memory_equal(s.buf, "no newline\r\n", 12);
}

static void
test_dot_empty_message(void **state)
{
	struct sink s = { .len = 0 };
	size_t consumed;

	assert_int_equal(feed_split(".\r\n", 3, NULL, 0, &s, &consumed), 1);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(consumed, 3);
}

/* Truncated anywhere before the final LF: an error, whatever came out. */
static void
test_dot_missing_terminator(void **state)
{
	static const char *const cut[] = {
		"", "abc", "abc\r\n", "abc\r\n.", "abc\r\n.\r", "abc\r\n..\r\n",
		"abc\r\n.x", "abc\r\n.\rx\r\n",
	};
	size_t i, consumed;

	for (i = 0; i < sizeof cut / sizeof *cut; i++) {
		struct sink s = { .len = 0 };

		assert_int_equal(feed_split(cut[i], strlen(cut[i]), NULL, 0,
		    &s, &consumed), 0);
		assert_int_equal(consumed, strlen(cut[i]));
	}
}

/* A line starts after any LF, so bare-LF bodies are unstuffed too. */
static void
test_dot_bare_lf(void **state)
{
	struct sink s = { .len = 0 };
	size_t consumed;

	assert_int_equal(feed_split("a\n.b\n..\n\n.\r\n", 12, NULL, 0, &s,
	    &consumed), 1);
	assert_int_equal(s.len, 7);
	assert_memory_equal(s.buf, "a\nb\n.\n\n", 7);
}

static void
test_dot_errors(void **state)
{
	struct sink s = { .len = 0, .fail_at_call = 2 };
	struct pop3_dot d;
	size_t used = 99;

	/* The callback's error stops the decoder and comes back. */
	pop3_dot_init(&d);
	assert_int_equal(pop3_dot_feed(&d, "ab\r\n.x\r\n.\r\n", 11, &used,
	    sink_out, &s), -ENOSPC);
	/* Feeding after the end is refused. */
	s.fail_at_call = 0;
	pop3_dot_init(&d);
	assert_int_equal(pop3_dot_feed(&d, ".\r\n", 3, &used, sink_out, &s), 1);
	assert_int_equal(pop3_dot_feed(&d, "x", 1, &used, sink_out, &s),
	    -EINVAL);
}

/* ---- status lines ------------------------------------------------------ */

static void
check_status(const char *line, int kind, const char *code, const char *text)
{
	struct pop3_status st;

	assert_int_equal(pop3_status_parse(line, strlen(line), &st), 0);
	assert_int_equal(st.kind, kind);
	if (code == NULL) {
		assert_null(st.code);
	} else {
		assert_non_null(st.code);
		assert_int_equal(st.code_len, strlen(code));
		assert_memory_equal(st.code, code, st.code_len);
	}
	assert_int_equal(st.text_len, strlen(text));
	assert_memory_equal(st.text, text, st.text_len);
}

static void
test_status_lines(void **state)
{
	static const char *const bad[] = {
		"", "OK", "+OKAY", "-ERROR x", "+x", "* OK", " +OK", "-",
	};
	struct pop3_status st;
	size_t i;

	check_status("+OK", POP3_OK, NULL, "");
	check_status("+OK 2 320", POP3_OK, NULL, "2 320");
	check_status("+ok lower case", POP3_OK, NULL, "lower case");
	check_status("-ERR", POP3_ERR, NULL, "");
	check_status("-ERR [AUTH] Authentication failed.", POP3_ERR, "AUTH",
	    "Authentication failed.");
	check_status("-ERR [SYS/TEMP] try later", POP3_ERR, "SYS/TEMP",
	    "try later");
	check_status("-ERR   [IN-USE]\t  mailbox locked", POP3_ERR, "IN-USE",
	    "mailbox locked");
	check_status("-ERR [LOGIN-DELAY]", POP3_ERR, "LOGIN-DELAY", "");
	check_status("-ERR[AUTH] no space", POP3_ERR, "AUTH", "no space");
	check_status("+OK [IN-USE] odd but fine", POP3_OK, "IN-USE",
	    "odd but fine");
	/* Not codes: left as text. */
	check_status("-ERR [not a code", POP3_ERR, NULL, "[not a code");
	check_status("-ERR [a//b] x", POP3_ERR, NULL, "[a//b] x");
	check_status("-ERR [/a] x", POP3_ERR, NULL, "[/a] x");
	check_status("-ERR [a/] x", POP3_ERR, NULL, "[a/] x");
	check_status("-ERR [] x", POP3_ERR, NULL, "[] x");
	check_status("-ERR [a b] x", POP3_ERR, NULL, "[a b] x");
	/* SASL continuations keep their text untouched. */
	check_status("+", POP3_CONT, NULL, "");
	check_status("+ ", POP3_CONT, NULL, "");
	check_status("+ AAEC  ", POP3_CONT, NULL, "AAEC  ");
	for (i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(pop3_status_parse(bad[i], strlen(bad[i]), &st),
		    -EPROTO);
}

static void
check_ts(const char *text, const char *want)
{
	size_t off = 0, len = 0;
	int r = pop3_apop_timestamp(text, strlen(text), &off, &len);

	if (want == NULL) {
		assert_int_equal(r, -ENOENT);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(text + off, want, len);
}

static void
test_apop_timestamp(void **state)
{
	char longts[400];

	check_ts("POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
	    "<1896.697170952@dbc.mtview.ca.us>");
	check_ts("Dovecot ready.", NULL);
	check_ts("<no-at-sign> <1.2@host> x", "<1.2@host>");
	check_ts("<a b@c> <<x@y>", "<x@y>");
	check_ts("<x@y", NULL);
	check_ts("<\x01@y>", NULL);
	memset(longts, 'a', sizeof longts);
	longts[0] = '<';
	longts[1] = '@';
	longts[sizeof longts - 2] = '>';
	longts[sizeof longts - 1] = '\0';
	check_ts(longts, NULL);
	/* The bound is on the whole "<...>": 256 bytes pass, 257 do not. */
	longts[256] = '\0';
	longts[255] = '>';
	check_ts(longts, longts);
	longts[255] = 'a';
	longts[256] = '>';
	longts[257] = '\0';
	check_ts(longts, NULL);
}

/* ---- listings ---------------------------------------------------------- */

static void
test_capa_lines(void **state)
{
	static const struct { const char *line; unsigned bits; } t[] = {
		{ "STLS", POP3_CAP_STLS },
		{ "  stls  ", POP3_CAP_STLS },
		{ "USER", POP3_CAP_USER },
		{ "SASL PLAIN LOGIN", POP3_CAP_SASL_PLAIN },
		{ "  sasl\tLOGIN   plain ", POP3_CAP_SASL_PLAIN },
		{ "SASL LOGIN CRAM-MD5", 0 },
		{ "SASL", 0 },
		{ "SASLX PLAIN", 0 },
		{ "PIPELINING", POP3_CAP_PIPELINING },
		{ "UIDL", POP3_CAP_UIDL },
		{ "TOP", POP3_CAP_TOP },
		{ "RESP-CODES", POP3_CAP_RESP_CODES },
		{ "IMPLEMENTATION STLS USER", 0 },
		{ "EXPIRE NEVER", 0 },
		{ "", 0 },
		{ "   ", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof t / sizeof *t; i++)
		assert_int_equal(pop3_capa_parse(t[i].line, strlen(t[i].line)),
		    t[i].bits);
}

static void
check_listing(const char *line, int rc, uint32_t num, const char *arg)
{
	const char *a = NULL;
	size_t alen = 0;
	uint32_t n = 0;

	assert_int_equal(pop3_listing_parse(line, strlen(line), &n, &a, &alen),
	    rc);
	if (rc != 0)
		return;
	assert_int_equal(n, num);
	assert_int_equal(alen, strlen(arg));
	assert_memory_equal(a, arg, alen);
}

static void
test_uidl_lines(void **state)
{
	char uid[80];

	check_listing("1 whqtswO00WBw418f9t5JxYwZ", 0, 1,
	    "whqtswO00WBw418f9t5JxYwZ");
	check_listing("  2    QhdPYR:00WBw1Ph7x7  ", 0, 2, "QhdPYR:00WBw1Ph7x7");
	check_listing("3\t\tabc", 0, 3, "abc");
	check_listing("4", 0, 4, "");
	check_listing("5   ", 0, 5, "");
	check_listing("6 a b", 0, 6, "a b");
	check_listing("4294967295 x", 0, 4294967295u, "x");
	check_listing("0 abc", -EPROTO, 0, NULL);
	check_listing("x abc", -EPROTO, 0, NULL);
	check_listing("12abc def", -EPROTO, 0, NULL);
	check_listing("-1 abc", -EPROTO, 0, NULL);
	check_listing("4294967296 x", -EPROTO, 0, NULL);
	check_listing("", -EPROTO, 0, NULL);

	assert_true(pop3_uidl_valid("~!", 2));
	assert_false(pop3_uidl_valid("", 0));
	assert_false(pop3_uidl_valid("a b", 3));
	assert_false(pop3_uidl_valid("a\x7f", 2));
	assert_false(pop3_uidl_valid("a\x80", 2));
	assert_false(pop3_uidl_valid("a\tb", 3));
	memset(uid, 'u', sizeof uid);
	assert_true(pop3_uidl_valid(uid, 70));
	assert_false(pop3_uidl_valid(uid, 71));
}

static void
test_stat_and_multi_line(void **state)
{
	uint32_t count = 7;
	uint64_t size = 7;
	char line[16];
	size_t len;

	assert_int_equal(pop3_stat_parse("2 320", 5, &count, &size), 0);
	assert_int_equal(count, 2);
	assert_int_equal(size, 320);
	assert_int_equal(pop3_stat_parse("  0\t0 extra", 11, &count, &size), 0);
	assert_int_equal(count, 0);
	assert_int_equal(size, 0);
	count = 7;
	assert_int_equal(pop3_stat_parse("2", 1, &count, &size), -EPROTO);
	assert_int_equal(pop3_stat_parse("x 1", 3, &count, &size), -EPROTO);
	assert_int_equal(pop3_stat_parse("", 0, &count, &size), -EPROTO);
	assert_int_equal(count, 7);		/* untouched on error */

	strcpy(line, ".");
	len = 1;
	assert_int_equal(pop3_multi_line(line, &len), 1);
	strcpy(line, "..");
	len = 2;
	assert_int_equal(pop3_multi_line(line, &len), 0);
	assert_string_equal(line, ".");
	assert_int_equal(len, 1);
	strcpy(line, ".STLS");
	len = 5;
	assert_int_equal(pop3_multi_line(line, &len), 0);
	assert_string_equal(line, "STLS");
	strcpy(line, "1 a.b");
	len = 5;
	assert_int_equal(pop3_multi_line(line, &len), 0);
	assert_string_equal(line, "1 a.b");
	len = 0;
	line[0] = '\0';
	assert_int_equal(pop3_multi_line(line, &len), 0);
}

/* ---- line taking ------------------------------------------------------- */

static void
test_line_take(void **state)
{
	static const char input[] = "+OK hi\r\n-ERR x\nUIDL\r\n";
	struct evbuffer *b = evbuffer_new();
	char buf[9];
	size_t len, i, got = 0;
	int r;

	/* Byte at a time: lines appear exactly when their LF arrives. */
	for (i = 0; i < sizeof input - 1; i++) {
		evbuffer_add(b, input + i, 1);
		r = pop3_line_take(b, buf, sizeof buf, &len);
		assert_int_equal(r, input[i] == '\n' ? 1 : 0);
		if (r == 1) {
			static const char *const want[] = {
				"+OK hi", "-ERR x", "UIDL",
			};

			assert_string_equal(buf, want[got]);
			assert_int_equal(len, strlen(want[got]));
			got++;
		}
	}
	assert_int_equal(got, 3);
	assert_int_equal(evbuffer_get_length(b), 0);

	/* Eight bytes fit a buffer of nine, with or without CR. */
	evbuffer_add(b, "12345678\r\n", 10);
	assert_int_equal(pop3_line_take(b, buf, sizeof buf, &len), 1);
	assert_int_equal(len, 8);
	evbuffer_add(b, "123456789\r\n", 11);
	assert_int_equal(pop3_line_take(b, buf, sizeof buf, &len), -EMSGSIZE);
	evbuffer_drain(b, evbuffer_get_length(b));
	/* Too long before its LF came: refused at once. */
	evbuffer_add(b, "1234567890", 10);
	assert_int_equal(pop3_line_take(b, buf, sizeof buf, &len), -EMSGSIZE);
	evbuffer_drain(b, evbuffer_get_length(b));
	evbuffer_add(b, "a\0b\r\n", 5);
	assert_int_equal(pop3_line_take(b, buf, sizeof buf, &len), -EPROTO);
	assert_int_equal(evbuffer_get_length(b), 5);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_whole),
		cmocka_unit_test(test_dot_byte_at_a_time),
		cmocka_unit_test(test_dot_every_split),
		cmocka_unit_test(test_dot_message_without_final_newline),
		cmocka_unit_test(test_dot_empty_message),
		cmocka_unit_test(test_dot_missing_terminator),
		cmocka_unit_test(test_dot_bare_lf),
		cmocka_unit_test(test_dot_errors),
		cmocka_unit_test(test_status_lines),
		cmocka_unit_test(test_apop_timestamp),
		cmocka_unit_test(test_capa_lines),
		cmocka_unit_test(test_uidl_lines),
		cmocka_unit_test(test_stat_and_multi_line),
		cmocka_unit_test(test_line_take),
	};

	return cmocka_run_group_tests_name("pop3_parser", tests, NULL, NULL);
}
