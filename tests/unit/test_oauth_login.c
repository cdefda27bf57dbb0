/*
 * test_oauth_login.c - IMAP AUTHENTICATE with an OAuth2 token (XOAUTH2,
 * OAUTHBEARER) against a scripted server on 127.0.0.1 in the same event
 * loop: the exact lines the client sends (initial responses decoded and
 * compared byte for byte), the choice of mechanism, the error challenge
 * and its dummy answer, and that the token never reaches the session's
 * `why` or any event.  POP3 AUTH is in test_oauth_login_pop3.c.
 */
#include "scripted_oauth.h"

/* ---- IMAP --------------------------------------------------------------- */

#define IMAP_AFTER_LOGIN \
	C("a2 LIST \"\" \"*\""), \
	S("a2 OK done\r\n"), \
	C("a3 LOGOUT"), \
	S("* BYE\r\na3 OK\r\n")

static void
test_imap_xoauth2_sasl_ir(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2] "
		    "hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		S("a1 OK [CAPABILITY IMAP4rev1] logged in\r\n"),
		IMAP_AFTER_LOGIN,
	};

	RUN(f, s);
	assert_played(f, SESSION_OK);
	assert_true(f->ready);
	assert_null(strstr(f->sc.sent, "secret_Token"));
}

static void
test_imap_xoauth2_without_sasl_ir(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK ready\r\n"),
		C("a1 CAPABILITY"),
		S("* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=PLAIN\r\na1 OK\r\n"),
		C("a2 AUTHENTICATE XOAUTH2"),
		S("+ \r\n"),
		C(XOAUTH2_B64),
		S("a2 OK logged in\r\n"),
		C("a3 CAPABILITY"),
		S("* CAPABILITY IMAP4rev1\r\na3 OK\r\n"),
		C("a4 LIST \"\" \"*\""),
		S("a4 OK done\r\n"),
		C("a5 LOGOUT"),
		S("* BYE\r\na5 OK\r\n"),
	};

	RUN(f, s);
	assert_played(f, SESSION_OK);
}

static void
test_imap_oauthbearer_exact_bytes(void **state)
{
	struct fixture *f = *state;
	char raw[256];
	size_t n = bearer_raw(f, raw, sizeof raw, "a=2Cb=3Dc@example.com");
	const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 "
		    "AUTH=OAUTHBEARER] hi\r\n"),
		{ 'B', "a1 AUTHENTICATE OAUTHBEARER ", 0, raw, n },
		S("a1 OK [CAPABILITY IMAP4rev1] logged in\r\n"),
		IMAP_AFTER_LOGIN,
	};

	/* AUTO picks OAUTHBEARER when both are offered. */
	f->user = "a,b=c@example.com";
	RUN(f, s);
	assert_played(f, SESSION_OK);
}

static void
test_imap_forced_xoauth2_over_oauthbearer(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER "
		    "AUTH=XOAUTH2] hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		S("a1 OK [CAPABILITY IMAP4rev1] logged in\r\n"),
		IMAP_AFTER_LOGIN,
	};

	f->mech = SASL_MECH_XOAUTH2;
	RUN(f, s);
	assert_played(f, SESSION_OK);
}

static void
test_imap_auto_none_offered(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN] "
		    "hi\r\n"),
	};

	f->password = "s3cret";		/* never used instead */
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sc.sent, "");
	assert_non_null(strstr(f->why, "offers neither AUTHENTICATE "
	    "OAUTHBEARER nor XOAUTH2 (it offers: PLAIN LOGIN)"));
	assert_non_null(strstr(f->why, "auth.mechanism"));
}

static void
test_imap_forced_not_offered(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] hi\r\n"),
	};

	f->mech = SASL_MECH_OAUTHBEARER;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sc.sent, "");
	assert_non_null(strstr(f->why, "auth.mechanism is oauthbearer, but "
	    "127.0.0.1"));
	assert_non_null(strstr(f->why, "does not offer AUTHENTICATE "
	    "OAUTHBEARER (it offers: XOAUTH2)"));
}

/* Gmail: "+ <base64 JSON>", an empty line back, then the NO. */
static void
test_imap_xoauth2_error_challenge(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		S("+ " JSON_B64 "\r\n"),
		C(""),
		S("a1 NO [AUTHENTICATIONFAILED] Invalid credentials "
		    "(Failure)\r\n"),
	};
	char want[1024];

	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	snprintf(want, sizeof want, "login as '" USER "' with an OAuth2 token "
	    "(XOAUTH2) was refused by 127.0.0.1:%u (127.0.0.1): "
	    "[AUTHENTICATIONFAILED] Invalid credentials (Failure); server "
	    "said " JSON, (unsigned)f->sc.port);
	assert_string_equal(f->why, want);
}

static void
test_imap_oauthbearer_error_challenge(void **state)
{
	struct fixture *f = *state;
	char raw[256];
	size_t n = bearer_raw(f, raw, sizeof raw, USER);
	const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER] hi\r\n"),
		C("a1 AUTHENTICATE OAUTHBEARER"),
		S("+\r\n"),
		{ 'B', "", 0, raw, n },
		S("+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n"),
		C("AQ=="),
		S("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
	};

	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "(OAUTHBEARER) was refused by "));
	assert_non_null(strstr(f->why, "Authentication failed.; server said "
	    "{\"status\":\"401\",\"schemes\":\"bearer\"}"));
}

/* Microsoft: a plain NO without a challenge. */
static void
test_imap_refused_without_challenge(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		S("a1 NO AUTHENTICATE failed.\r\n"),
	};

	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "AUTHENTICATE failed.; check that the "
	    "token is current"));
	assert_null(strstr(f->why, "server said"));
}

/* A second "+" after the dummy answer: no loop, a protocol error. */
static void
test_imap_second_challenge(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		S("+ " JSON_B64 "\r\n"),
		C(""),
		S("+ " JSON_B64 "\r\n"),
	};

	RUN(f, s);
	assert_played(f, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "another continuation"));
	assert_string_equal(f->sc.sent, "a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64
	    "\n\n");
}

static void
test_imap_oversized_challenge(void **state)
{
	struct fixture *f = *state;
	char big[8000];
	struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		{ 'S', big, 0, NULL, 0 },
	};

	/* 5,468 base64 bytes decode to 4,101: above the 4 KiB limit. */
	memcpy(big, "+ ", 2);
	memset(big + 2, 'Q', 5468);
	memcpy(big + 2 + 5468, "\r\n", 2);
	s[2].len = 5472;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "error challenge of 5468 bytes"));
	/* No dummy answer was sent. */
	assert_string_equal(f->sc.sent, "a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64
	    "\n");
}

/* A server that quotes the token back, in every place we keep text. */
static void
test_imap_echoed_token_is_masked(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		/* {"token":"ya29.A0ARrdaM-secret_Token~42"} */
		S("* OK [ALERT] token " TOKEN " is bad\r\n"
		    "+ eyJ0b2tlbiI6InlhMjkuQTBBUnJkYU0tc2VjcmV0X1Rva2Vufj"
		    "QyIn0=\r\n"),
		C(""),
		S("a1 NO [ALERT] you sent " XOAUTH2_B64 "\r\n"),
	};

	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->events, "token ******"));
	assert_null(strstr(f->why, XOAUTH2_B64));
	assert_null(strstr(f->why, "dXNlcj1h"));
	assert_non_null(strstr(f->why, "server said {\"token\":\"*****"));
}

/* BYE quoting the token, then a close: the why shows the BYE, masked. */
static void
test_imap_bye_with_token(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		S("* BYE go away " TOKEN "\r\n"),
		X(),
	};

	RUN(f, s);
	assert_played(f, SESSION_FAIL_CONNECT);
	assert_non_null(strstr(f->why, "during authentication; it said: go "
	    "away *****************************"));
}

static void
test_imap_refuses_plaintext(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
	};

	f->no_plaintext = true;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_TLS);
	assert_string_equal(f->sc.sent, "");
	assert_non_null(strstr(f->why, "refusing to send the OAuth2 token "
	    "without TLS"));
}

static void
test_imap_master_user_refused(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN] "
		    "hi\r\n"),
	};

	f->authzid = "bob";
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sc.sent, "");
	assert_string_equal(f->why, "auth.master_user cannot be combined with "
	    "auth.oauth2");
}

static void
test_imap_bad_token_not_sent(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
	};

	f->token = "ya29.abc\001auth=Bearer other";
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sc.sent, "");
	assert_non_null(strstr(f->why, "it is not a bearer token"));
}

static void
test_imap_bad_user_not_sent(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
	};

	f->user = "alice\001auth=Bearer x";
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sc.sent, "");
	assert_non_null(strstr(f->why, "auth.user"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
		T(test_imap_xoauth2_sasl_ir),
		T(test_imap_xoauth2_without_sasl_ir),
		T(test_imap_oauthbearer_exact_bytes),
		T(test_imap_forced_xoauth2_over_oauthbearer),
		T(test_imap_auto_none_offered),
		T(test_imap_forced_not_offered),
		T(test_imap_xoauth2_error_challenge),
		T(test_imap_oauthbearer_error_challenge),
		T(test_imap_refused_without_challenge),
		T(test_imap_second_challenge),
		T(test_imap_oversized_challenge),
		T(test_imap_echoed_token_is_masked),
		T(test_imap_bye_with_token),
		T(test_imap_refuses_plaintext),
		T(test_imap_master_user_refused),
		T(test_imap_bad_token_not_sent),
		T(test_imap_bad_user_not_sent),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
