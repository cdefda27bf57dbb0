/*
 * test_pop3_client.c - the POP3 client up to the maildrop walk against a
 * scripted server on 127.0.0.1 in the same event loop: greeting, CAPA,
 * STLS, every way to log in and to be refused, the deadline and replies
 * that are not POP3.  Each script is a transcript: "S:" bytes the server
 * sends (several replies in one write when joined), "C:" lines the client
 * must send, exactly and in order.  A DELE from the client fails every
 * test.  The maildrop walk is in test_pop3_retr.c.
 */
#include "scripted_pop3.h"

static void
test_happy_path_sasl_ir(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		GREET_SASL,
		C("STAT"),
		S("+OK 3 300\r\n"),
		C("UIDL"),
		S("+OK\r\n1 uid-a\r\n2  uid-b \r\n3\tuid-c\r\n.\r\n"),
		C("LIST"),
		S("+OK 3 messages\r\n1 12\r\n2 20\r\n3 5\r\n.\r\n"),
		C("RETR 1"),
		C("RETR 3"),
		S("+OK 12 octets\r\nhello\r\n..dot\r\n.\r\n"
		    "+OK\r\nbye\r\n.\r\n"),
		C("QUIT"),
		S("+OK Logging out.\r\n"),
	};

	f->known_keys[0] = "uid-b";
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_true(f->ready);
	assert_int_equal(f->opens, 1);
	assert_string_equal(f->sf_name, "INBOX");
	assert_int_equal(f->sf_messages, 3);
	assert_int_equal(f->keys_calls, 1);
	assert_int_equal(f->n_asked, 3);
	assert_string_equal(f->asked[0], "uid-a");
	assert_string_equal(f->asked[1], "uid-b");
	assert_string_equal(f->asked[2], "uid-c");
	assert_int_equal(f->found, 3);
	assert_int_equal(f->todo, 2);
	assert_int_equal(f->n_msgs, 2);
	assert_int_equal(f->body_lens[0], 13);
	assert_memory_equal(f->bodies[0], "hello\r\n.dot\r\n", 13);
	assert_string_equal(f->keys[0], "uid-a");
	assert_int_equal(f->begin_sizes[0], 12);
	assert_int_equal(f->body_lens[1], 5);
	assert_memory_equal(f->bodies[1], "bye\r\n", 5);
	assert_string_equal(f->keys[1], "uid-c");
	assert_int_equal(f->begin_sizes[1], 5);
	assert_int_equal(f->n_items, 0);
	assert_int_equal(f->folders_done, 1);
	assert_int_equal(f->folders_complete, 1);
	assert_null(strstr(f->sc.sent, "s3cret"));
}

/* No SASL PLAIN: USER/PASS; CAPA refused after login keeps the old list. */
static void
test_user_pass_fallback(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\nUIDL\r\nSASL LOGIN CRAM-MD5\r\n.\r\n"),
		C("USER alice"),
		S("+OK\r\n"),
		C("PASS s3cret"),
		S("+OK maildrop locked\r\n"),
		C("CAPA"),
		S("-ERR not after login\r\n"),
		C("STAT"),
		S("+OK 1 5\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 5\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nm1\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_msgs, 1);
	assert_memory_equal(f->bodies[0], "m1\r\n", 4);
}

/* An RFC 1939 server without CAPA: USER/PASS, one RETR at a time. */
static void
test_capa_refused(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("-ERR unknown command\r\n"),
		C("USER alice"),
		S("+OK\r\n"),
		C("PASS s3cret"),
		S("+OK\r\n"),
		C("CAPA"),
		S("-ERR unknown command\r\n"),
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 5\r\n2 5\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nm1\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\nm2\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_msgs, 2);
}

static void
test_stls_not_offered(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\nSASL PLAIN\r\nUIDL\r\n.\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "STLS"));
	assert_false(f->ready);
	assert_string_equal(f->sc.sent, "CAPA\n");
}

static void
test_stls_without_capa(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("-ERR what?\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_string_equal(f->sc.sent, "CAPA\n");
}

static void
test_stls_refused(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nSTLS\r\nSASL PLAIN\r\n.\r\n"),
		C("STLS"),
		S("-ERR [SYS/TEMP] TLS not available right now\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "[SYS/TEMP] TLS not available"));
	assert_string_equal(f->sc.sent, "CAPA\nSTLS\n");
}

/* The answer to STLS and an injected reply in one segment. */
static void
test_stls_injection(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nSTLS\r\nSASL PLAIN\r\n.\r\n"),
		C("STLS"),
		S("+OK Begin TLS negotiation now.\r\n+OK\r\nSASL PLAIN\r\n.\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "injection"));
	assert_string_equal(f->sc.sent, "CAPA\nSTLS\n");
}

static void
test_auth_refused(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nRESP-CODES\r\nSASL PLAIN\r\n.\r\n"),
		C("AUTH PLAIN " PLAIN_B64),
		S("-ERR [AUTH] Authentication failed.\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "[AUTH] Authentication failed."));
	assert_non_null(strstr(f->why, "alice"));
	assert_null(strstr(f->why, "s3cret"));
	assert_null(strstr(f->why, PLAIN_B64));
	assert_false(f->ready);
	assert_int_equal(f->opens, 0);
}

/* A hostile server's words cannot forge lines in a protocol. */
static void
test_auth_refused_escaped(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\n.\r\n"),
		C("USER alice"),
		S("+OK\r\n"),
		C("PASS s3cret"),
		S("-ERR [IN-USE] locked\x1b[31m\rby another\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "[IN-USE] locked\\x1b[31m\\x0dby another"));
	assert_non_null(strstr(f->why, "another client"));
	assert_null(strstr(f->why, "\x1b"));
}

static void
test_plaintext_refused(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"),
	};

	default_params(f, &p);
	p.allow_plaintext = false;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "allow_plaintext"));
	assert_string_equal(f->sc.sent, "CAPA\n");
}

/* RFC 1939 7's own example: the digest is of timestamp + password. */
static void
test_apop(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct scripted_step s[] = {
		S("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"),
		C("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
		S("+OK mrose's maildrop has 0 messages (0 octets)\r\n"),
		C("CAPA"),
		S("+OK\r\nUIDL\r\n.\r\n"),
		C("STAT"),
		S("+OK 0 0\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	default_params(f, &p);
	p.apop = true;
	p.user = "mrose";
	p.password = "tanstaaf";
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->planned, 1);
	assert_int_equal(f->found, 0);
	assert_int_equal(f->folders_complete, 1);
}

static void
test_apop_without_timestamp(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\n.\r\n"),
	};

	default_params(f, &p);
	p.apop = true;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "APOP"));
}

/* Too long for an initial response (RFC 5034 4): wait for "+". */
static void
test_auth_plain_continuation(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	unsigned char raw[300];
	char pw[241], b64[420];
	struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nSASL PLAIN\r\n.\r\n"),
		C("AUTH PLAIN"),
		S("+ \r\n"),
		C(b64),
		S("-ERR [AUTH] no\r\n"),
	};

	memset(pw, 'p', sizeof pw - 1);
	pw[sizeof pw - 1] = '\0';
	raw[0] = '\0';
	memcpy(raw + 1, "alice", 5);
	raw[6] = '\0';
	memcpy(raw + 7, pw, 240);
	EVP_EncodeBlock((unsigned char *)b64, raw, 247);
	default_params(f, &p);
	p.password = pw;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_null(strstr(f->why, b64));
}

static void
test_silent_server_times_out(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
	};

	RUN(f, s, NET_TLS_NONE, 300);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TIMEOUT);
	assert_non_null(strstr(f->why, "capa"));
}

static void
test_garbage_reply(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1] this is IMAP\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "not a POP3 status line"));
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_happy_path_sasl_ir),
		T(test_user_pass_fallback),
		T(test_capa_refused),
		T(test_stls_not_offered),
		T(test_stls_without_capa),
		T(test_stls_refused),
		T(test_stls_injection),
		T(test_auth_refused),
		T(test_auth_refused_escaped),
		T(test_plaintext_refused),
		T(test_apop),
		T(test_apop_without_timestamp),
		T(test_auth_plain_continuation),
		T(test_silent_server_times_out),
		T(test_garbage_reply),
	};

	return cmocka_run_group_tests_name("pop3_client", tests, NULL, NULL);
}
