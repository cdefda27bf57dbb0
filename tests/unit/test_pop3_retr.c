/*
 * test_pop3_retr.c - the POP3 maildrop walk against a scripted server on
 * 127.0.0.1 in the same event loop: STAT, UIDL, LIST and pipelined RETR,
 * what is delivered with which UIDL, oversized, refused and vanished
 * messages, limits, stalls and a cancel from inside a callback.  Scripts
 * and fixture as in test_pop3_client.c (scripted_pop3.h); a DELE from
 * the client fails every test.
 */
#include "scripted_pop3.h"

/* Four RETRs go out before the first answer; the fifth follows it. */
static void
test_pipelined_retr(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_SASL,
		C("STAT"),
		S("+OK 5 50\r\n"),
		C("UIDL"),
		S("+OK\r\n1 u1\r\n2 u2\r\n3 u3\r\n4 u4\r\n5 u5\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 4\r\n2 4\r\n3 4\r\n4 4\r\n5 4\r\n.\r\n"),
		C("RETR 1"),
		C("RETR 2"),
		C("RETR 3"),
		C("RETR 4"),
		S("+OK\r\nm1\r\n.\r\n+OK\r\nm2\r\n.\r\n+OK\r\nm3\r\n.\r\n"
		    "+OK\r\nm4\r\n.\r\n"),
		C("RETR 5"),
		S("+OK\r\nm5\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};
	size_t i;

	/* A client that waited for each answer would hit the deadline. */
	RUN(f, s, NET_TLS_NONE, 2000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_msgs, 5);
	for (i = 0; i < 5; i++) {
		char want[8];

		snprintf(want, sizeof want, "m%zu\r\n", i + 1);
		assert_memory_equal(f->bodies[i], want, 4);
		snprintf(want, sizeof want, "u%zu", i + 1);
		assert_string_equal(f->keys[i], want);
	}
	assert_int_equal(f->folders_complete, 1);
}

/* The last answers and the close arrive while paused: all still count. */
static void
test_close_while_paused_keeps_replies(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_SASL,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 u1\r\n2 u2\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 4\r\n2 4\r\n.\r\n"),
		C("RETR 1"),
		C("RETR 2"),
		S("+OK\r\nm1\r\n.\r\n+OK\r\nm2\r\n.\r\n+OK bye\r\n"),
		X(),
	};

	f->pause_first = true;
	f->resume_ev = evtimer_new(f->sc.base, resume_cb, f);
	assert_non_null(f->resume_ev);
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->n_msgs, 2);
	assert_memory_equal(f->bodies[1], "m2\r\n", 4);
	assert_int_equal(f->folders_complete, 1);
	assert_int_equal(f->fail, SESSION_OK);
}

static void
test_server_without_uidl(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("-ERR Unknown command: UIDL\r\n"),
		C("LIST"),
		S("+OK\r\n1 5\r\n2 5\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nm1\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\nm2\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	f->known_keys[0] = "a";
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->keys_calls, 0);
	assert_int_equal(f->todo, 2);
	assert_int_equal(f->n_msgs, 2);
	assert_string_equal(f->keys[0], "");
	assert_string_equal(f->keys[1], "");
	assert_int_equal(f->n_events, 1);
	assert_int_equal(f->event_levels[0], LOG_LVL_WARN);
	assert_non_null(strstr(f->events[0], "no UIDL"));
	assert_int_equal(f->folders_complete, 1);
}

/* Shared, empty, overlong, control bytes: no key, still fetched. */
static void
test_bad_uidls(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 6 60\r\n"),
		C("UIDL"),
		S("+OK\r\n1 good\r\n2 twin\r\n3 twin\r\n4\r\n"
		    "5 0123456789012345678901234567890123456789"
		    "0123456789012345678901234567890\r\n"
		    "6 a\x01b\r\njunk line\r\n99 beyond\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\nb\r\n.\r\n"),
		C("RETR 3"),
		S("+OK\r\nc\r\n.\r\n"),
		C("RETR 4"),
		S("+OK\r\nd\r\n.\r\n"),
		C("RETR 5"),
		S("+OK\r\ne\r\n.\r\n"),
		C("RETR 6"),
		S("+OK\r\nf\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};
	size_t i;

	f->known_keys[0] = "good";
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_asked, 1);
	assert_string_equal(f->asked[0], "good");
	assert_int_equal(f->found, 6);
	assert_int_equal(f->todo, 5);
	assert_int_equal(f->n_msgs, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(f->keys[i], "");
	/* One warning for the malformed lines, one for the unusable ids. */
	assert_int_equal(f->n_events, 2);
	assert_non_null(strstr(f->events[0], "2 lines"));
	assert_non_null(strstr(f->events[1], "5 messages have no usable UIDL"));
}

static void
test_connection_dropped_mid_retr(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 4\r\n2 100\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nok\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\npartial line\r\nand more\r\n."),
		X(),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_CONNECT);
	assert_non_null(strstr(f->why, "message 2"));
	/* The whole message is delivered; the partial one is not. */
	assert_int_equal(f->n_msgs, 1);
	assert_string_equal(f->keys[0], "a");
	assert_int_equal(f->begins, 2);
	assert_int_equal(f->discards, 1);
	assert_int_equal(f->folders_done, 0);
}

/* A server that trickles a message too slowly still hits the deadline. */
static void
test_stalled_retr_times_out(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 1 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 10\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nhalf a mess"),
	};

	RUN(f, s, NET_TLS_NONE, 300);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TIMEOUT);
	assert_int_equal(f->n_msgs, 0);
	assert_int_equal(f->discards, 1);
}

/* Oversize known from LIST (never retrieved) and found while streaming. */
static void
test_too_large(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 3 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 big\r\n2 liar\r\n3 small\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 5000\r\n2 3\r\n3 3\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\n0123456789\r\n..more\r\n.\r\n"),
		C("RETR 3"),
		S("+OK\r\nok\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	default_params(f, &p);
	p.max_message_size = 10;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->todo, 3);
	assert_int_equal(f->n_items, 2);
	assert_int_equal(f->items[0], SESSION_ITEM_TOO_LARGE);
	assert_string_equal(f->item_keys[0], "big");
	assert_non_null(strstr(f->item_texts[0], "UIDL big"));
	assert_non_null(strstr(f->item_texts[0], "5000"));
	assert_int_equal(f->items[1], SESSION_ITEM_TOO_LARGE);
	assert_string_equal(f->item_keys[1], "liar");
	assert_int_equal(f->n_msgs, 1);
	assert_string_equal(f->keys[0], "small");
	assert_int_equal(f->discards, 1);
	assert_int_equal(f->folders_complete, 0);
}

static void
test_retr_refused(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 3 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n3 c\r\n.\r\n"),
		C("LIST"),
		S("-ERR no LIST today\r\n"),
		C("RETR 1"),
		S("-ERR There's no message 1.\r\n"),
		C("RETR 2"),
		S("-ERR [SYS/TEMP] Disk error\r\n"),
		C("RETR 3"),
		S("+OK\r\nc\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_items, 2);
	assert_int_equal(f->items[0], SESSION_ITEM_VANISHED);
	assert_string_equal(f->item_keys[0], "a");
	assert_int_equal(f->items[1], SESSION_ITEM_FAILED);
	assert_non_null(strstr(f->item_texts[1], "[SYS/TEMP] Disk error"));
	assert_int_equal(f->n_msgs, 1);
	assert_int_equal(f->begin_sizes[0], 0);	/* no LIST: size unknown */
	assert_int_equal(f->folders_complete, 0);
}

/* The owner says the maildrop needs no look: straight to QUIT. */
static void
test_folder_skipped(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	f->skip_folder = true;
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->folders_complete, 1);
	assert_int_equal(f->keys_calls, 0);
}

/* Everything archived already: no LIST, no RETR. */
static void
test_nothing_new(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	f->known_keys[0] = "a";
	f->known_keys[1] = "b";
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->found, 2);
	assert_int_equal(f->todo, 0);
	assert_int_equal(f->folders_complete, 1);
}

static void
test_limits(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 3 10\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	default_params(f, &p);
	p.max_messages = 2;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_events, 1);
	assert_int_equal(f->event_levels[0], LOG_LVL_ERR);
	assert_int_equal(f->folders_done, 1);
	assert_int_equal(f->folders_complete, 0);
}

static void
test_listing_flood(void **state)
{
	struct fixture *f = *state;
	static char flood[1100 * 6 + 16];
	struct scripted_step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 1 10\r\n"),
		C("UIDL"),
		{ 'S', flood, 0, NULL, 0 },
	};
	size_t i, n = 0;

	n += (size_t)sprintf(flood, "+OK\r\n");
	for (i = 0; i < 1100; i++)
		n += (size_t)sprintf(flood + n, "1 a\r\n");
	s[NSTEPS(s) - 1].len = n;
	run_script(f, s, NSTEPS(s), NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "more UIDL lines"));
}

/* Cancelled from inside message(): nothing more is delivered or sent. */
static void
test_cancel_from_callback(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_SASL,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 4\r\n2 4\r\n.\r\n"),
		C("RETR 1"),
		C("RETR 2"),
		S("+OK\r\nm1\r\n.\r\n+OK\r\nm2\r\n.\r\n"),
	};

	f->cancel_on_message = true;
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_CANCELLED);
	assert_int_equal(f->n_msgs, 1);
	assert_int_equal(f->folders_done, 0);
	assert_null(strstr(f->sc.sent, "QUIT"));
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_pipelined_retr),
		T(test_server_without_uidl),
		T(test_close_while_paused_keeps_replies),
		T(test_bad_uidls),
		T(test_connection_dropped_mid_retr),
		T(test_stalled_retr_times_out),
		T(test_too_large),
		T(test_retr_refused),
		T(test_folder_skipped),
		T(test_nothing_new),
		T(test_limits),
		T(test_listing_flood),
		T(test_cancel_from_callback),
	};

	return cmocka_run_group_tests_name("pop3_retr", tests, NULL, NULL);
}
