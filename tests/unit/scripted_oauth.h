/*
 * scripted_oauth.h - the fixture of the OAuth2 login tests: the token,
 * user and expected messages, an owner with an empty mailbox that keeps
 * the session's end and its events, and a run of an IMAP or a POP3
 * session against the scripted server (scripted.h) that checks the token
 * never reaches `why` or an event.  Shared by test_oauth_login.c (IMAP)
 * and test_oauth_login_pop3.c; static, included once each.
 */
#ifndef MAILSTOW_TEST_SCRIPTED_OAUTH_H
#define MAILSTOW_TEST_SCRIPTED_OAUTH_H

#include <errno.h>

#include "imap/imap_client.h"
#include "pop3/pop3_client.h"
#include "scripted.h"

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

struct fixture {
	struct scripted sc;		/* the server */
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
	event_base_loopexit(f->sc.base, NULL);
}

static const struct session_ops owner_ops = {
	o_ready, o_want, o_open, NULL, o_planned, o_begin, o_write, o_end,
	o_discard, o_message, o_item, o_event, o_folder_done, o_done,
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	scripted_open(&f->sc);
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
	scripted_close(&f->sc);
	free(f);
	return 0;
}

static void
net_defaults(struct fixture *f, struct net_params *np)
{
	np->host = "127.0.0.1";
	np->port = f->sc.port;
	np->tls = NET_TLS_NONE;
	np->verify = true;
	np->timeout_ms = 5000;
}

static void
run(struct fixture *f, const struct scripted_step *s, size_t n)
{
	scripted_play(&f->sc, s, n);
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
		assert_int_equal(pop3_client_start(f->sc.base, NULL, &p,
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
		assert_int_equal(imap_client_start(f->sc.base, NULL, &p,
		    &owner_ops, f, &f->imap), 0);
	}
	scripted_loop(&f->sc);
	assert_true(f->done);
	/* The token, raw, never reaches what we keep or show. */
	assert_null(strstr(f->why, "secret_Token"));
	assert_null(strstr(f->events, "secret_Token"));
}

#define RUN(f, s)	run(f, s, NSTEPS(s))

/* The whole script was played, nothing else was sent, and it ended so. */
static void
assert_played(struct fixture *f, enum session_fail fail)
{
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->sc.pos, f->sc.n);
	assert_int_equal(f->fail, fail);
}

/* The OAUTHBEARER message for USER/TOKEN at 127.0.0.1 and our port. */
static size_t
bearer_raw(struct fixture *f, char *buf, size_t len, const char *gs2user)
{
	int n = snprintf(buf, len, "n,a=%s,\001host=127.0.0.1\001port=%u"
	    "\001auth=Bearer %s\001\001", gs2user, (unsigned)f->sc.port, TOKEN);

	assert_true(n > 0 && (size_t)n < len);
	return (size_t)n;
}

#endif
