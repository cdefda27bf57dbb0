/*
 * test_oauth_login_pop3.c - POP3 AUTH with an OAuth2 token (XOAUTH2,
 * OAUTHBEARER) against a scripted server on 127.0.0.1 in the same event
 * loop: initial responses within the 255-octet line or after a "+", the
 * exact bytes, the error challenge and its dummy answer, what the CAPA
 * must offer, and that the token never reaches `why` or an event.  The
 * fixture is scripted_oauth.h, shared with test_oauth_login.c (IMAP).
 */
#include "scripted_oauth.h"

/* ---- POP3 --------------------------------------------------------------- */

#define POP3_GREET(sasl) \
	S("+OK ready\r\n"), \
	C("CAPA"), \
	S("+OK\r\nUIDL\r\nUSER\r\n" sasl "\r\n.\r\n")

#define POP3_AFTER_LOGIN \
	C("CAPA"), \
	S("+OK\r\nUIDL\r\n.\r\n"), \
	C("STAT"), \
	S("+OK 0 0\r\n"), \
	C("QUIT"), \
	S("+OK bye\r\n")

static void
test_pop3_xoauth2_initial_response(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		POP3_GREET("SASL PLAIN XOAUTH2"),
		C("AUTH XOAUTH2 " XOAUTH2_B64),
		S("+OK logged in\r\n"),
		POP3_AFTER_LOGIN,
	};

	f->pop3 = true;
	RUN(f, s);
	assert_played(f, SESSION_OK);
	assert_true(f->ready);
}

/* A real token does not fit 255 octets: AUTH, "+", then the response. */
static void
test_pop3_long_token_waits_for_continuation(void **state)
{
	struct fixture *f = *state;
	char token[400], raw[512];
	int n;

	memcpy(token, "ya29.", 5);
	memset(token + 5, 'x', 300);
	token[305] = '\0';
	n = snprintf(raw, sizeof raw, "user=" USER "\001auth=Bearer %s"
	    "\001\001", token);
	const struct scripted_step s[] = {
		POP3_GREET("SASL XOAUTH2"),
		C("AUTH XOAUTH2"),
		S("+ \r\n"),
		{ 'B', "", 0, raw, (size_t)n },
		S("+OK logged in\r\n"),
		POP3_AFTER_LOGIN,
	};

	f->pop3 = true;
	f->token = token;
	RUN(f, s);
	assert_played(f, SESSION_OK);
}

static void
test_pop3_oauthbearer_exact_bytes(void **state)
{
	struct fixture *f = *state;
	char raw[256];
	size_t n = bearer_raw(f, raw, sizeof raw, USER);
	const struct scripted_step s[] = {
		POP3_GREET("SASL XOAUTH2 OAUTHBEARER PLAIN"),
		{ 'B', "AUTH OAUTHBEARER ", 0, raw, n },
		S("+OK logged in\r\n"),
		POP3_AFTER_LOGIN,
	};

	f->pop3 = true;
	RUN(f, s);
	assert_played(f, SESSION_OK);
}

static void
test_pop3_xoauth2_error_challenge(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		POP3_GREET("SASL XOAUTH2"),
		C("AUTH XOAUTH2 " XOAUTH2_B64),
		S("+ " JSON_B64 "\r\n"),
		C(""),
		S("-ERR [AUTH] Authentication failed.\r\n"),
	};
	char want[1024];

	f->pop3 = true;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	snprintf(want, sizeof want, "login as '" USER "' with an OAuth2 token "
	    "(XOAUTH2) was refused by 127.0.0.1:%u (127.0.0.1): [AUTH] "
	    "Authentication failed.; server said " JSON, (unsigned)f->sc.port);
	assert_string_equal(f->why, want);
}

static void
test_pop3_oauthbearer_error_challenge(void **state)
{
	struct fixture *f = *state;
	char raw[256];
	size_t n = bearer_raw(f, raw, sizeof raw, USER);
	const struct scripted_step s[] = {
		POP3_GREET("SASL OAUTHBEARER"),
		{ 'B', "AUTH OAUTHBEARER ", 0, raw, n },
		S("+ " JSON_B64 "\r\n"),
		C("AQ=="),
		S("-ERR [AUTH] Authentication failed.\r\n"),
	};

	f->pop3 = true;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "(OAUTHBEARER) was refused by"));
	assert_non_null(strstr(f->why, "server said " JSON));
}

static void
test_pop3_second_challenge(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		POP3_GREET("SASL XOAUTH2"),
		C("AUTH XOAUTH2 " XOAUTH2_B64),
		S("+ " JSON_B64 "\r\n"),
		C(""),
		S("+ " JSON_B64 "\r\n"),
	};

	f->pop3 = true;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "another continuation"));
	assert_non_null(strstr(f->sc.sent, "AUTH XOAUTH2 " XOAUTH2_B64 "\n\n"));
	assert_null(strstr(f->sc.sent, "AUTH XOAUTH2 " XOAUTH2_B64 "\n\n\n"));
}

static void
test_pop3_oversized_challenge(void **state)
{
	struct fixture *f = *state;
	char big[6000];
	struct scripted_step s[] = {
		POP3_GREET("SASL XOAUTH2"),
		C("AUTH XOAUTH2 " XOAUTH2_B64),
		{ 'S', big, 0, NULL, 0 },
	};

	memcpy(big, "+ ", 2);
	memset(big + 2, 'Q', 5468);
	memcpy(big + 2 + 5468, "\r\n", 2);
	s[4].len = 5472;
	f->pop3 = true;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "error challenge of 5468 bytes"));
	assert_null(strstr(f->sc.sent, XOAUTH2_B64 "\n\n"));
}

static void
test_pop3_no_sasl(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		POP3_GREET("TOP"),
	};

	f->pop3 = true;
	f->password = "s3cret";		/* USER/PASS is not a fallback */
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sc.sent, "CAPA\n");
	assert_non_null(strstr(f->why, "offers neither SASL OAUTHBEARER nor "
	    "XOAUTH2 (its CAPA has no SASL line naming an OAuth2 "
	    "mechanism)"));
}

static void
test_pop3_forced_not_offered(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		POP3_GREET("SASL PLAIN"),
	};

	f->pop3 = true;
	f->mech = SASL_MECH_XOAUTH2;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "auth.mechanism is xoauth2, but "));
	assert_non_null(strstr(f->why, "does not offer SASL XOAUTH2 (its CAPA "
	    "offers SASL PLAIN only)"));
}

static void
test_pop3_master_user_refused(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		POP3_GREET("SASL PLAIN XOAUTH2"),
	};

	f->pop3 = true;
	f->authzid = "bob";
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->why, "auth.master_user cannot be combined with "
	    "auth.oauth2");
}

static void
test_pop3_echoed_token_is_masked(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		POP3_GREET("SASL XOAUTH2"),
		C("AUTH XOAUTH2 " XOAUTH2_B64),
		S("-ERR bad token " TOKEN " in " XOAUTH2_B64 "\r\n"),
	};

	f->pop3 = true;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_null(strstr(f->why, "dXNlcj1h"));
	assert_non_null(strstr(f->why, "bad token *****"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
		T(test_pop3_xoauth2_initial_response),
		T(test_pop3_long_token_waits_for_continuation),
		T(test_pop3_oauthbearer_exact_bytes),
		T(test_pop3_xoauth2_error_challenge),
		T(test_pop3_oauthbearer_error_challenge),
		T(test_pop3_second_challenge),
		T(test_pop3_oversized_challenge),
		T(test_pop3_no_sasl),
		T(test_pop3_forced_not_offered),
		T(test_pop3_master_user_refused),
		T(test_pop3_echoed_token_is_masked),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
