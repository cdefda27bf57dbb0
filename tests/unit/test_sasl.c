/*
 * test_sasl.c - the SASL messages byte for byte (PLAIN, XOAUTH2 and the
 * RFC 7628 OAUTHBEARER example), what they refuse to carry, the choice of
 * mechanism, the error challenge decoder and the masking of secrets.
 * Expected base64 values were computed independently (Python).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "base/sasl.h"
#include "base/util.h"
#include "scripted.h"		/* b64_decode() */

#define TOKEN	"ya29.A0ARrdaM-secret_Token~42"
/* base64("user=alice@example.com\1auth=Bearer " TOKEN "\1\1") */
#define XOAUTH2_B64 "dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5Lk" \
	"EwQVJyZGFNLXNlY3JldF9Ub2tlbn40MgEB"

static void
test_plain_unchanged(void **state)
{
	char *b64 = sasl_plain_b64(NULL, "alice", "s3cret");

	assert_string_equal(b64, "AGFsaWNlAHMzY3JldA==");
	secret_free(b64);
	b64 = sasl_plain_b64("bob", "admin", "pw");
	/* base64("bob\0admin\0pw") */
	assert_string_equal(b64, "Ym9iAGFkbWluAHB3");
	secret_free(b64);
}

static void
test_xoauth2_bytes(void **state)
{
	char *b64 = NULL;

	assert_int_equal(sasl_oauth_b64(SASL_MECH_XOAUTH2, "alice@example.com",
	    NULL, 0, TOKEN, &b64), 0);
	assert_string_equal(b64, XOAUTH2_B64);
	secret_free(b64);
	/* Google's documented example. */
	assert_int_equal(sasl_oauth_b64(SASL_MECH_XOAUTH2,
	    "someuser@example.com", "imap.gmail.com", 993,
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", &b64), 0);
	assert_string_equal(b64, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJl"
	    "YXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0"
	    "Q2cBAQ==");
	secret_free(b64);
}

static void
test_oauthbearer_rfc7628_example(void **state)
{
	char *b64 = NULL;

	/* RFC 7628 4.1, token with base64 padding. */
	assert_int_equal(sasl_oauth_b64(SASL_MECH_OAUTHBEARER,
	    "user@example.com", "server.example.com", 143,
	    "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", &b64), 0);
	assert_string_equal(b64, "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVy"
	    "LmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52"
	    "YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB");
	secret_free(b64);
}

static void
test_oauthbearer_gs2_escaping(void **state)
{
	static const char want[] = "n,a=a=2Cb=3Dc=2C@x,\001host=h.example\001"
	    "port=995\001auth=Bearer T0k\001\001";
	unsigned char raw[256];
	char *b64 = NULL;
	int n;

	assert_int_equal(sasl_oauth_b64(SASL_MECH_OAUTHBEARER, "a,b=c,@x",
	    "h.example", 995, "T0k", &b64), 0);
	n = b64_decode(raw, sizeof raw, b64);
	assert_int_equal(n, (int)sizeof want - 1);
	assert_memory_equal(raw, want, sizeof want - 1);
	secret_free(b64);
}

static void
test_refuses_what_would_split_the_message(void **state)
{
	static const char *const bad_users[] = {
		"", "al\001ice", "al\nice", "al\rice", "tab\there", "del\177",
	};
	static const char *const bad_tokens[] = {
		"", "to\001ken", "to ken", "to\r\nken", "t\xc3\xa9", "t\177",
	};
	char *b64 = (char *)"untouched";
	char big[SASL_OAUTH_MAX_TOKEN + 2];
	size_t i;

	for (i = 0; i < sizeof bad_users / sizeof *bad_users; i++) {
		assert_int_equal(sasl_oauth_b64(SASL_MECH_XOAUTH2, bad_users[i],
		    "h", 1, TOKEN, &b64), -EINVAL);
		assert_int_equal(sasl_oauth_b64(SASL_MECH_OAUTHBEARER,
		    bad_users[i], "h", 1, TOKEN, &b64), -EINVAL);
	}
	for (i = 0; i < sizeof bad_tokens / sizeof *bad_tokens; i++)
		assert_int_equal(sasl_oauth_b64(SASL_MECH_OAUTHBEARER, "u",
		    "h", 1, bad_tokens[i], &b64), -EBADMSG);
	assert_int_equal(sasl_oauth_b64(SASL_MECH_OAUTHBEARER, "u", NULL, 1,
	    TOKEN, &b64), -EINVAL);
	assert_int_equal(sasl_oauth_b64(SASL_MECH_OAUTHBEARER, "u", "h\001x",
	    1, TOKEN, &b64), -EINVAL);
	assert_int_equal(sasl_oauth_b64(SASL_MECH_AUTO, "u", "h", 1, TOKEN,
	    &b64), -EINVAL);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(sasl_oauth_b64(SASL_MECH_XOAUTH2, "u", "h", 1, big,
	    &b64), -EMSGSIZE);
	/* ret_ is written only on success. */
	assert_string_equal(b64, "untouched");
	/* The largest allowed token still goes. */
	big[SASL_OAUTH_MAX_TOKEN] = '\0';
	assert_int_equal(sasl_oauth_b64(SASL_MECH_XOAUTH2, "u", "h", 1, big,
	    &b64), 0);
	secret_free(b64);
}

static void
test_pick(void **state)
{
	enum sasl_mech m = (enum sasl_mech)77;

	assert_int_equal(sasl_oauth_pick(SASL_MECH_AUTO, true, true, &m), 0);
	assert_int_equal(m, SASL_MECH_OAUTHBEARER);
	assert_int_equal(sasl_oauth_pick(SASL_MECH_AUTO, true, false, &m), 0);
	assert_int_equal(m, SASL_MECH_XOAUTH2);
	assert_int_equal(sasl_oauth_pick(SASL_MECH_AUTO, false, true, &m), 0);
	assert_int_equal(m, SASL_MECH_OAUTHBEARER);
	m = (enum sasl_mech)77;
	assert_int_equal(sasl_oauth_pick(SASL_MECH_AUTO, false, false, &m),
	    -ENOENT);
	assert_int_equal(m, 77);
	assert_int_equal(sasl_oauth_pick(SASL_MECH_XOAUTH2, true, true, &m), 0);
	assert_int_equal(m, SASL_MECH_XOAUTH2);
	assert_int_equal(sasl_oauth_pick(SASL_MECH_XOAUTH2, false, true, &m),
	    -ENOENT);
	assert_int_equal(sasl_oauth_pick(SASL_MECH_OAUTHBEARER, true, false,
	    &m), -ENOENT);
	assert_string_equal(sasl_mech_name(SASL_MECH_OAUTHBEARER),
	    "OAUTHBEARER");
	assert_string_equal(sasl_mech_key(SASL_MECH_XOAUTH2), "xoauth2");
	assert_string_equal(sasl_oauth_dummy(SASL_MECH_OAUTHBEARER), "AQ==");
	assert_string_equal(sasl_oauth_dummy(SASL_MECH_XOAUTH2), "");
}

static void
test_challenge(void **state)
{
	/* {"status":"invalid_token","scope":"https://mail.google.com/",...} */
	static const char json[] = "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcG"
	    "UiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8iLCJzY2hlbWVzIjoiQmVhcmVyIn0=";
	char out[512], *big;
	size_t n;

	assert_int_equal(sasl_oauth_challenge(json, strlen(json), out,
	    sizeof out), 0);
	assert_string_equal(out, "{\"status\":\"invalid_token\",\"scope\":"
	    "\"https://mail.google.com/\",\"schemes\":\"Bearer\"}");
	/* A control byte in the JSON is shown escaped: "a\nb". */
	assert_int_equal(sasl_oauth_challenge("YQpi", 4, out, sizeof out), 0);
	assert_string_equal(out, "a\\x0ab");
	assert_int_equal(sasl_oauth_challenge("", 0, out, sizeof out), 0);
	assert_string_equal(out, "");
	/* Not base64: kept as sent, escaped. */
	assert_int_equal(sasl_oauth_challenge("not base64!", 11, out,
	    sizeof out), -EINVAL);
	assert_string_equal(out, "not base64!");
	assert_int_equal(sasl_oauth_challenge("QQ=A", 4, out, sizeof out),
	    -EINVAL);
	assert_int_equal(sasl_oauth_challenge("QUJD\r", 5, out, sizeof out),
	    -EINVAL);
	assert_string_equal(out, "QUJD\\x0d");
	/* Cut to the buffer. */
	assert_int_equal(sasl_oauth_challenge(json, strlen(json), out, 8), 0);
	assert_string_equal(out, "{\"statu");
	/* Just at the limit decodes; one quantum more does not. */
	n = 4 * ((SASL_OAUTH_MAX_CHALLENGE + 2) / 3);
	big = malloc(n + 5);
	memset(big, 'Q', n + 4);
	assert_int_equal(sasl_oauth_challenge(big, n - 4, out, sizeof out), 0);
	assert_int_equal(sasl_oauth_challenge(big, n + 4, out, sizeof out),
	    -EMSGSIZE);
	free(big);
}

static void
test_redact_oauth(void **state)
{
	char text[512];
	char *b64;

	snprintf(text, sizeof text, "NO bad token " TOKEN " given");
	sasl_redact_oauth(text, "alice@example.com", "h", 993, TOKEN);
	assert_null(strstr(text, "secret"));
	assert_string_equal(text, "NO bad token "
	    "*****************************" " given");
	assert_int_equal(strlen(TOKEN), 29);
	/* The initial response echoed, whole or cut short. */
	snprintf(text, sizeof text, "BAD [" XOAUTH2_B64 "]");
	sasl_redact_oauth(text, "alice@example.com", "h", 993, TOKEN);
	assert_null(strstr(text, "dXNlcj1h"));
	assert_int_equal(text[4], '[');
	assert_int_equal(text[strlen(text) - 1], ']');
	snprintf(text, sizeof text, "BAD line too long: %.40s", XOAUTH2_B64);
	sasl_redact_oauth(text, "alice@example.com", "h", 993, TOKEN);
	assert_string_equal(text, "BAD line too long: "
	    "****************************************");
	/* A cut-short token, as a server that quotes 20 bytes would. */
	snprintf(text, sizeof text, "token %.20s...", TOKEN);
	sasl_redact_oauth(text, "alice@example.com", "h", 993, TOKEN);
	assert_string_equal(text, "token ********************...");
	/* OAUTHBEARER's response for this host and port. */
	assert_int_equal(sasl_oauth_b64(SASL_MECH_OAUTHBEARER,
	    "alice@example.com", "h", 993, TOKEN, &b64), 0);
	snprintf(text, sizeof text, "x %s y", b64);
	sasl_redact_oauth(text, "alice@example.com", "h", 993, TOKEN);
	assert_null(strstr(text, b64));
	assert_null(strchr(text + 2, 'b'));
	secret_free(b64);
	/* A token with a backslash, as str_escape() shows it. */
	snprintf(text, sizeof text, "said a\\\\bcdefghijklmnop");
	sasl_redact_oauth(text, "u", "h", 1, "a\\bcdefghijklmnop");
	assert_string_equal(text, "said ******************");
	/* Text that shares less than the minimum with it stays. */
	snprintf(text, sizeof text, "ya29.A0 is a prefix");
	sasl_redact_oauth(text, "u", "h", 1, TOKEN);
	assert_string_equal(text, "ya29.A0 is a prefix");
	sasl_redact_oauth(NULL, "u", "h", 1, TOKEN);
	sasl_redact_oauth(text, "u", "h", 1, NULL);
	assert_string_equal(text, "ya29.A0 is a prefix");
}

static void
test_redact_plain_unchanged(void **state)
{
	char text[128];

	snprintf(text, sizeof text, "NO s3cret AGFsaWNlAHMzY3JldA== s3cre");
	sasl_redact(text, NULL, "alice", "s3cret");
	/* A password is masked only whole: "s3cre" is not it. */
	assert_string_equal(text, "NO ****** ******************** s3cre");
}

/* The failure texts both clients share, with their categories. */
static void
test_oauth_failure_texts(void **state)
{
	static char big[8000];
	char said[64], why[512];

	memset(big, 'A', sizeof big);
	assert_int_equal(sasl_oauth_b64_error(-ENOMEM, SASL_MECH_XOAUTH2,
	    "empty", why, sizeof why), SESSION_FAIL_LOCAL);
	assert_string_equal(why, "out of memory");
	assert_int_equal(sasl_oauth_b64_error(-EINVAL, SASL_MECH_OAUTHBEARER,
	    "empty", why, sizeof why), SESSION_FAIL_AUTH);
	assert_string_equal(why, "auth.user is empty; an OAuth2 login "
	    "(OAUTHBEARER) cannot carry it");
	assert_int_equal(sasl_oauth_b64_error(-EBADMSG, SASL_MECH_XOAUTH2,
	    "empty", why, sizeof why), SESSION_FAIL_AUTH);
	assert_non_null(strstr(why, "not a bearer token (RFC 6750)"));
	/* base64("{}") is read; a second challenge, or a huge one, is not. */
	assert_int_equal(sasl_oauth_error_challenge(SASL_MECH_XOAUTH2, false,
	    "h:1", "e30=", 4, said, sizeof said, why, sizeof why), 0);
	assert_string_equal(said, "{}");
	assert_int_equal(sasl_oauth_error_challenge(SASL_MECH_XOAUTH2, true,
	    "h:1", "e30=", 4, said, sizeof said, why, sizeof why), -EPROTO);
	assert_string_equal(why, "h:1 sent another continuation after the "
	    "answer to its OAuth2 error challenge (XOAUTH2); the session was "
	    "closed");
	assert_int_equal(sasl_oauth_error_challenge(SASL_MECH_XOAUTH2, false,
	    "h:1", big, sizeof big, said, sizeof said, why, sizeof why),
	    -EPROTO);
	assert_non_null(strstr(why, "challenge of 8000 bytes, above the "
	    "limit of 4096"));
	sasl_oauth_refused(why, sizeof why, "al", SASL_MECH_XOAUTH2, "h:1",
	    "NO no", NULL, "POP3");
	assert_string_equal(why, "login as 'al' with an OAuth2 token "
	    "(XOAUTH2) was refused by h:1: NO no; check that the token is "
	    "current and its scope allows POP3");
	sasl_oauth_refused(why, sizeof why, "al", SASL_MECH_XOAUTH2, "h:1",
	    "NO no", "{}", "IMAP");
	assert_string_equal(why, "login as 'al' with an OAuth2 token "
	    "(XOAUTH2) was refused by h:1: NO no; server said {}");
}

/* A server echoing LOGIN shows the password quoted, then escaped again. */
static void
test_redact_quoted_password(void **state)
{
	const char *quoted = "p\\\"w\\\\d";	/* p\"w\\d as IMAP quotes it */
	char esc[64], text[256];

	str_escape(esc, sizeof esc, quoted, strlen(quoted));
	snprintf(text, sizeof text, "a2 NO LOGIN alice \"%s\" or %s refused",
	    quoted, esc);
	sasl_redact(text, NULL, "alice", "p\"w\\d");
	assert_null(strstr(text, quoted));
	assert_null(strstr(text, esc));
	assert_null(strstr(text, "w\\"));
	assert_non_null(strstr(text, "LOGIN alice"));
	assert_non_null(strstr(text, "refused"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_unchanged),
		cmocka_unit_test(test_redact_quoted_password),
		cmocka_unit_test(test_xoauth2_bytes),
		cmocka_unit_test(test_oauthbearer_rfc7628_example),
		cmocka_unit_test(test_oauthbearer_gs2_escaping),
		cmocka_unit_test(test_refuses_what_would_split_the_message),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_redact_oauth),
		cmocka_unit_test(test_redact_plain_unchanged),
		cmocka_unit_test(test_oauth_failure_texts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
