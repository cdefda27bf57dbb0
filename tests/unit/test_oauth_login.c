/*
 * test_oauth_login.c - IMAP AUTHENTICATE and POP3 AUTH with an OAuth2
 * token (XOAUTH2, OAUTHBEARER) against a scripted server on 127.0.0.1 in
 * the same event loop: the exact lines the client sends (initial
 * responses decoded and compared byte for byte), the choice of mechanism,
 * the error challenge and its dummy answer, and that the token never
 * reaches the session's `why` or any event.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>

#include "imap/imap_client.h"
#include "pop3/pop3_client.h"

#define USER	"alice@example.com"
#define TOKEN	"ya29.A0ARrdaM-secret_Token~42"
/* base64("user=" USER "\1auth=Bearer " TOKEN "\1\1") */
#define XOAUTH2_B64 "dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5Lk" \
	"EwQVJyZGFNLXNlY3JldF9Ub2tlbn40MgEB"
/* base64 of {"status":"invalid_token","scope":"https://mail.google.com/",
 * "schemes":"Bearer"} */
#define JSON_B64 "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJodHRwczovL21" \
	"haWwuZ29vZ2xlLmNvbS8iLCJzY2hlbWVzIjoiQmVhcmVyIn0="
#define JSON	"{\"status\":\"invalid_token\",\"scope\":" \
	"\"https://mail.google.com/\",\"schemes\":\"Bearer\"}"

struct step {
	char	 who;			/* 'S' server sends, 'C' client must send
					 * `text` exactly, 'B' client must send
					 * `text` + base64 of raw[0..raw_len),
					 * 'X' server closes once its output
					 * is out */
	const char *text;
	size_t	 len;			/* of 'S' text */
	const char *raw;
	size_t	 raw_len;
};

#define S(t)	{ 'S', t, sizeof(t) - 1, NULL, 0 }
#define C(t)	{ 'C', t, 0, NULL, 0 }
#define X()	{ 'X', NULL, 0, NULL, 0 }

struct fixture {
	struct event_base *base;
	struct evconnlistener *lst;
	struct bufferevent *srv;
	uint16_t port;
	const struct step *script;
	size_t	 pos, n;
	char	 mismatch[1024];
	char	 sent[16384];		/* every client line, '\n'-joined */
	/* what the session is given */
	bool	 pop3;
	const char *token, *user, *authzid, *password;
	enum sasl_mech mech;
	bool	 no_plaintext;
	/* the owner side */
	struct imap_client *imap;
	struct pop3_client *pop;
	enum session_fail fail;
	char	 why[2048];
	char	 events[4096];
	bool	 done, ready;
};

/* Strict base64 of a client line; the byte count, or -1. */
static int
b64_decode(unsigned char *out, size_t outlen, const char *b64)
{
	size_t len = strlen(b64);
	int n, pad = 0;

	if (len % 4 != 0 || len / 4 * 3 > outlen)
		return -1;
	if (len > 0 && b64[len - 1] == '=')
		pad = len > 1 && b64[len - 2] == '=' ? 2 : 1;
	n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
	return n < 0 ? -1 : n - pad;
}

static void
srv_written(struct bufferevent *bev, void *arg)
{
	struct fixture *f = arg;

	if (f->pos < f->n && f->script[f->pos].who == 'X') {
		bufferevent_free(f->srv);
		f->srv = NULL;
		f->pos++;
	}
}

static void
srv_send_pending(struct fixture *f)
{
	while (f->pos < f->n && f->script[f->pos].who == 'S') {
		bufferevent_write(f->srv, f->script[f->pos].text,
		    f->script[f->pos].len);
		f->pos++;
	}
}

/* Does `line` match step `st`?  Writes why not into f->mismatch. */
static bool
srv_match(struct fixture *f, const struct step *st, const char *line)
{
	unsigned char raw[8192];
	size_t pl = strlen(st->text);
	int n;

	if (st->who == 'C') {
		if (strcmp(line, st->text) == 0)
			return true;
		snprintf(f->mismatch, sizeof f->mismatch, "step %zu: expected "
		    "'%s', got '%.900s'", f->pos, st->text, line);
		return false;
	}
	if (strncmp(line, st->text, pl) != 0 ||
	    (n = b64_decode(raw, sizeof raw, line + pl)) < 0 ||
	    (size_t)n != st->raw_len || memcmp(raw, st->raw, (size_t)n) != 0) {
		snprintf(f->mismatch, sizeof f->mismatch, "step %zu: expected "
		    "'%s' + base64 of the %zu-byte message, got '%.900s'",
		    f->pos, st->text, st->raw_len, line);
		return false;
	}
	return true;
}

static void
srv_read(struct bufferevent *bev, void *arg)
{
	struct fixture *f = arg;
	char *line;
	size_t len;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &len,
	    EVBUFFER_EOL_CRLF_STRICT)) != NULL) {
		size_t have = strlen(f->sent);

		snprintf(f->sent + have, sizeof f->sent - have, "%s\n", line);
		if (f->mismatch[0] != '\0') {
			/* Keep the first mismatch. */
		} else if (f->pos >= f->n || f->script[f->pos].who == 'S' ||
		    f->script[f->pos].who == 'X') {
			snprintf(f->mismatch, sizeof f->mismatch,
			    "unexpected client line '%.900s'", line);
		} else if (srv_match(f, &f->script[f->pos], line)) {
			f->pos++;
		}
		free(line);
		srv_send_pending(f);
	}
}

static void
srv_event(struct bufferevent *bev, short what, void *arg)
{
}

static void
srv_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int socklen, void *arg)
{
	struct fixture *f = arg;

	f->srv = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(f->srv, srv_read, srv_written, srv_event, f);
	bufferevent_enable(f->srv, EV_READ | EV_WRITE);
	srv_send_pending(f);
}

/* ---- the owner: a mailbox with nothing in it ---------------------------- */

static void
o_ready(void *arg, const char *summary)
{
	((struct fixture *)arg)->ready = true;
}

static bool
o_want(void *arg, const char *name, char delim)
{
	return true;
}

static int
o_open(void *arg, const struct session_folder *sf, uint32_t **known, size_t *n)
{
	return 0;
}

static void
o_planned(void *arg, const struct session_folder *sf, uint64_t found,
    uint64_t todo)
{
}

static void *
o_begin(void *arg, uint64_t size)
{
	return NULL;
}

static int
o_write(void *arg, void *h, const void *buf, size_t len)
{
	return -EIO;
}

static int
o_end(void *arg, void *h)
{
	return -EIO;
}

static void
o_discard(void *arg, void *h)
{
}

static void
o_message(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, void *h, int64_t idate)
{
}

static void
o_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
}

static void
o_event(void *arg, enum log_level lvl, const struct session_folder *sf,
    const char *text)
{
	struct fixture *f = arg;
	size_t have = strlen(f->events);

	snprintf(f->events + have, sizeof f->events - have, "%s\n", text);
}

static void
o_folder_done(void *arg, const struct session_folder *sf, bool complete)
{
}

static void
o_done(void *arg, enum session_fail fail, const char *why)
{
	struct fixture *f = arg;

	f->done = true;
	f->fail = fail;
	snprintf(f->why, sizeof f->why, "%s", why);
	event_base_loopexit(f->base, NULL);
}

static const struct session_ops owner_ops = {
	o_ready, o_want, o_open, NULL, o_planned, o_begin, o_write, o_end,
	o_discard, o_message, o_item, o_event, o_folder_done, o_done,
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;

	f->base = event_base_new();
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lst = evconnlistener_new_bind(f->base, srv_accept, f,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4,
	    (struct sockaddr *)&sin, sizeof sin);
	assert_non_null(f->lst);
	getsockname(evconnlistener_get_fd(f->lst), (struct sockaddr *)&sin, &len);
	f->port = ntohs(sin.sin_port);
	f->token = TOKEN;
	f->user = USER;
	f->mech = SASL_MECH_AUTO;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	imap_client_free(f->imap);
	pop3_client_free(f->pop);
	if (f->srv != NULL)
		bufferevent_free(f->srv);
	evconnlistener_free(f->lst);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
net_defaults(struct fixture *f, struct net_params *np)
{
	np->host = "127.0.0.1";
	np->port = f->port;
	np->tls = NET_TLS_NONE;
	np->verify = true;
	np->timeout_ms = 5000;
}

static void
run(struct fixture *f, const struct step *s, size_t n)
{
	struct timeval limit = { 10, 0 };

	f->script = s;
	f->n = n;
	if (f->pop3) {
		struct pop3_client_params p = { 0 };

		net_defaults(f, &p.net);
		p.user = f->user;
		p.password = f->password;
		p.authzid = f->authzid;
		p.oauth2_token = f->token;
		p.mech = f->mech;
		p.allow_plaintext = !f->no_plaintext;
		p.timeout_ms = 5000;
		assert_int_equal(pop3_client_start(f->base, NULL, &p,
		    &owner_ops, f, &f->pop), 0);
	} else {
		struct imap_client_params p = { 0 };

		net_defaults(f, &p.net);
		p.user = f->user;
		p.password = f->password;
		p.authzid = f->authzid;
		p.oauth2_token = f->token;
		p.mech = f->mech;
		p.allow_plaintext = !f->no_plaintext;
		p.timeout_ms = 5000;
		p.max_message_size = 1 << 20;
		assert_int_equal(imap_client_start(f->base, NULL, &p,
		    &owner_ops, f, &f->imap), 0);
	}
	event_base_loopexit(f->base, &limit);
	event_base_dispatch(f->base);
	assert_true(f->done);
	/* The token, raw, never reaches what we keep or show. */
	assert_null(strstr(f->why, "secret_Token"));
	assert_null(strstr(f->events, "secret_Token"));
}

#define RUN(f, s)	run(f, s, sizeof(s) / sizeof(s[0]))

/* The whole script was played, nothing else was sent, and it ended so. */
static void
assert_played(struct fixture *f, enum session_fail fail)
{
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->pos, f->n);
	assert_int_equal(f->fail, fail);
}

/* The OAUTHBEARER message for USER/TOKEN at 127.0.0.1 and our port. */
static size_t
bearer_raw(struct fixture *f, char *buf, size_t len, const char *gs2user)
{
	int n = snprintf(buf, len, "n,a=%s,\001host=127.0.0.1\001port=%u"
	    "\001auth=Bearer %s\001\001", gs2user, (unsigned)f->port, TOKEN);

	assert_true(n > 0 && (size_t)n < len);
	return (size_t)n;
}

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
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2] "
		    "hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		S("a1 OK [CAPABILITY IMAP4rev1] logged in\r\n"),
		IMAP_AFTER_LOGIN,
	};

	RUN(f, s);
	assert_played(f, SESSION_OK);
	assert_true(f->ready);
	assert_null(strstr(f->sent, "secret_Token"));
}

static void
test_imap_xoauth2_without_sasl_ir(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
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
	const struct step s[] = {
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
	static const struct step s[] = {
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
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN] "
		    "hi\r\n"),
	};

	f->password = "s3cret";		/* never used instead */
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sent, "");
	assert_non_null(strstr(f->why, "offers neither AUTHENTICATE "
	    "OAUTHBEARER nor XOAUTH2 (it offers: PLAIN LOGIN)"));
	assert_non_null(strstr(f->why, "auth.mechanism"));
}

static void
test_imap_forced_not_offered(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] hi\r\n"),
	};

	f->mech = SASL_MECH_OAUTHBEARER;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sent, "");
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
	static const struct step s[] = {
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
	    "said " JSON, (unsigned)f->port);
	assert_string_equal(f->why, want);
}

static void
test_imap_oauthbearer_error_challenge(void **state)
{
	struct fixture *f = *state;
	char raw[256];
	size_t n = bearer_raw(f, raw, sizeof raw, USER);
	const struct step s[] = {
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
	static const struct step s[] = {
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
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
		C("a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64),
		S("+ " JSON_B64 "\r\n"),
		C(""),
		S("+ " JSON_B64 "\r\n"),
	};

	RUN(f, s);
	assert_played(f, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "another continuation"));
	assert_string_equal(f->sent, "a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64
	    "\n\n");
}

static void
test_imap_oversized_challenge(void **state)
{
	struct fixture *f = *state;
	char big[8000];
	struct step s[] = {
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
	assert_string_equal(f->sent, "a1 AUTHENTICATE XOAUTH2 " XOAUTH2_B64
	    "\n");
}

/* A server that quotes the token back, in every place we keep text. */
static void
test_imap_echoed_token_is_masked(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
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
	static const struct step s[] = {
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
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
	};

	f->no_plaintext = true;
	RUN(f, s);
	assert_played(f, SESSION_FAIL_TLS);
	assert_string_equal(f->sent, "");
	assert_non_null(strstr(f->why, "refusing to send the OAuth2 token "
	    "without TLS"));
}

static void
test_imap_master_user_refused(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN] "
		    "hi\r\n"),
	};

	f->authzid = "bob";
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sent, "");
	assert_string_equal(f->why, "auth.master_user cannot be combined with "
	    "auth.oauth2");
}

static void
test_imap_bad_token_not_sent(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
	};

	f->token = "ya29.abc\001auth=Bearer other";
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sent, "");
	assert_non_null(strstr(f->why, "it is not a bearer token"));
}

static void
test_imap_bad_user_not_sent(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n"),
	};

	f->user = "alice\001auth=Bearer x";
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sent, "");
	assert_non_null(strstr(f->why, "auth.user"));
}

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
	static const struct step s[] = {
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
	const struct step s[] = {
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
	const struct step s[] = {
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
	static const struct step s[] = {
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
	    "Authentication failed.; server said " JSON, (unsigned)f->port);
	assert_string_equal(f->why, want);
}

static void
test_pop3_oauthbearer_error_challenge(void **state)
{
	struct fixture *f = *state;
	char raw[256];
	size_t n = bearer_raw(f, raw, sizeof raw, USER);
	const struct step s[] = {
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
	static const struct step s[] = {
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
	assert_non_null(strstr(f->sent, "AUTH XOAUTH2 " XOAUTH2_B64 "\n\n"));
	assert_null(strstr(f->sent, "AUTH XOAUTH2 " XOAUTH2_B64 "\n\n\n"));
}

static void
test_pop3_oversized_challenge(void **state)
{
	struct fixture *f = *state;
	char big[6000];
	struct step s[] = {
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
	assert_null(strstr(f->sent, XOAUTH2_B64 "\n\n"));
}

static void
test_pop3_no_sasl(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		POP3_GREET("TOP"),
	};

	f->pop3 = true;
	f->password = "s3cret";		/* USER/PASS is not a fallback */
	RUN(f, s);
	assert_played(f, SESSION_FAIL_AUTH);
	assert_string_equal(f->sent, "CAPA\n");
	assert_non_null(strstr(f->why, "offers neither SASL OAUTHBEARER nor "
	    "XOAUTH2 (its CAPA has no SASL line naming an OAuth2 "
	    "mechanism)"));
}

static void
test_pop3_forced_not_offered(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
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
	static const struct step s[] = {
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
	static const struct step s[] = {
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
