/*
 * pop3_auth.c - logging in to a POP3 server: SASL PLAIN through AUTH
 * with an initial response (RFC 5034) or after a "+" challenge, USER and
 * PASS (RFC 1939 7), APOP when the profile asks for it, or an OAuth2
 * access token through AUTH XOAUTH2 or OAUTHBEARER (RFC 7628) with the
 * error challenge of a refused token.  The secret is wiped as soon as the
 * server answered its use, and the debug log only ever sees it redacted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "base/log.h"
#include "base/sasl.h"
#include "base/util.h"
#include "pop3/pop3_client_private.h"

/* RFC 2449 4: a command line is at most 255 octets with its CRLF. */
#define POP3_MAX_COMMAND	255
#define POP3_MAX_USER		200

/* RFC 1939 7: lowercase hex MD5 of timestamp + password. */
static int
pop3_apop_digest(const char *timestamp, const char *password, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, timestamp, strlen(timestamp)) == 1 &&
	    EVP_DigestUpdate(ctx, password, strlen(password)) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 16;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -ENOTSUP;
	hex_encode(md, 16, out);
	explicit_bzero(md, sizeof md);
	return 0;
}

/* No CR, LF or other control byte may reach a command line. */
static bool
pop3_clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void
pop3_auth_plain(struct pop3_client *c)
{
	char *b64;
	int err;

	if ((b64 = sasl_plain_b64(c->authzid, c->user, c->password)) ==
	    NULL) {
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	pop3_enter(c, POP3_S_AUTH);
	/* RFC 5034 4: too long for one line, the response waits for "+". */
	if (strlen("AUTH PLAIN ") + strlen(b64) + 2 <= POP3_MAX_COMMAND) {
		err = pop3_send_secret(c, "AUTH PLAIN ", b64);
		c->sent_auth_response = true;
	} else {
		err = pop3_send(c, "AUTH PLAIN");
	}
	secret_free(b64);
	if (err < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

void
pop3_auth_redact(struct pop3_client *c, char *text)
{
	sasl_redact_login(text, c->authzid, c->user, c->password,
	    c->p.net.host, c->p.net.port, c->token);
}

/* The initial response of the chosen OAuth2 mechanism; NULL: failed. */
static char *
pop3_oauth_response(struct pop3_client *c)
{
	char why[256], *b64;
	enum session_fail fail;
	int err;

	err = sasl_oauth_b64(c->mech, c->user, c->p.net.host, c->p.net.port,
	    c->token, &b64);
	if (err == 0)
		return b64;
	/* pop3_start_auth() refused a user above POP3_MAX_USER already. */
	fail = sasl_oauth_b64_error(err, c->mech, "empty or holds control "
	    "characters", why, sizeof why);
	pop3_fail(c, fail, "%s", why);
	return NULL;
}

/* Neither mechanism fits: say what the server offers and what to set. */
static void
pop3_oauth_unoffered(struct pop3_client *c)
{
	const char *offers = c->capa_failed ? "it refused CAPA, so it "
	    "announces no SASL mechanism" : (c->caps & POP3_CAP_SASL_PLAIN) ?
	    "its CAPA offers SASL PLAIN only" : "its CAPA has no SASL line "
	    "naming an OAuth2 mechanism";

	if (c->p.mech == SASL_MECH_AUTO)
		pop3_fail(c, SESSION_FAIL_AUTH, "%s offers neither SASL "
		    "OAUTHBEARER nor XOAUTH2 (%s), so the OAuth2 token cannot "
		    "be used with any auth.mechanism; check server.host and "
		    "that the server accepts OAuth2 logins", net_peer(c->conn),
		    offers);
	else
		pop3_fail(c, SESSION_FAIL_AUTH, "auth.mechanism is %s, but %s "
		    "does not offer SASL %s (%s); set auth.mechanism to one it "
		    "offers, or leave it out", sasl_mech_key(c->p.mech),
		    net_peer(c->conn), sasl_mech_name(c->p.mech), offers);
}

static void
pop3_auth_oauth(struct pop3_client *c)
{
	char cmd[32];
	char *b64;
	int err;

	if (c->authzid != NULL) {
		pop3_fail(c, SESSION_FAIL_AUTH, "auth.master_user cannot be "
		    "combined with auth.oauth2");
		return;
	}
	if (sasl_oauth_pick(c->p.mech, c->caps & POP3_CAP_SASL_XOAUTH2,
	    c->caps & POP3_CAP_SASL_OAUTHBEARER, &c->mech) < 0) {
		pop3_oauth_unoffered(c);
		return;
	}
	if ((b64 = pop3_oauth_response(c)) == NULL)
		return;
	pop3_enter(c, POP3_S_AUTH);
	snprintf(cmd, sizeof cmd, "AUTH %s ", sasl_mech_name(c->mech));
	/* RFC 5034 4: a real token is too long; it waits for the "+". */
	if (strlen(cmd) + strlen(b64) + 2 <= POP3_MAX_COMMAND) {
		err = pop3_send_secret(c, cmd, b64);
		c->sent_auth_response = true;
	} else {
		err = pop3_send(c, "AUTH %s", sasl_mech_name(c->mech));
	}
	secret_free(b64);
	if (err < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

static void
pop3_auth_apop(struct pop3_client *c)
{
	char digest[33], prefix[POP3_MAX_USER + 8];
	int err;

	if (c->timestamp[0] == '\0') {
		pop3_fail(c, SESSION_FAIL_AUTH, "the profile asks for APOP, but "
		    "the greeting of %s holds no APOP timestamp; the server "
		    "does not offer APOP", net_peer(c->conn));
		return;
	}
	if ((err = pop3_apop_digest(c->timestamp, c->password, digest)) < 0) {
		pop3_fail(c, SESSION_FAIL_LOCAL, "cannot compute the APOP "
		    "digest: MD5 is %s", err == -ENOMEM ? "out of memory" :
		    "not available in this OpenSSL (FIPS mode?)");
		return;
	}
	pop3_enter(c, POP3_S_APOP);
	snprintf(prefix, sizeof prefix, "APOP %s ", c->user);
	err = pop3_send_secret(c, prefix, digest);
	explicit_bzero(digest, sizeof digest);
	if (err < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

void
pop3_start_auth(struct pop3_client *c)
{
	if (!net_is_tls(c->conn) && !c->p.allow_plaintext) {
		pop3_fail(c, SESSION_FAIL_TLS, "refusing to send the %s without "
		    "TLS (set auth.allow_plaintext: true to allow it)",
		    c->token != NULL ? "OAuth2 token" : "password");
		return;
	}
	if (!pop3_clean(c->user) || strlen(c->user) > POP3_MAX_USER) {
		pop3_fail(c, SESSION_FAIL_AUTH, "auth.user is longer than %d "
		    "bytes or holds control characters; POP3 cannot carry it",
		    POP3_MAX_USER);
		return;
	}
	if (c->token != NULL) {
		pop3_auth_oauth(c);
	} else if (c->authzid != NULL && !(c->caps & POP3_CAP_SASL_PLAIN)) {
		/* Only SASL carries "log in as X on behalf of Y". */
		pop3_fail(c, SESSION_FAIL_AUTH, "a master-user login for %s "
		    "needs SASL PLAIN, which %s does not offer (use "
		    "auth.method: separator instead)", c->authzid,
		    net_peer(c->conn));
	} else if (c->p.apop) {
		pop3_auth_apop(c);
	} else if (c->caps & POP3_CAP_SASL_PLAIN) {
		pop3_auth_plain(c);
	} else if ((c->caps & POP3_CAP_USER) || c->capa_failed) {
		/* Without CAPA nothing is announced; USER is RFC 1939. */
		pop3_enter(c, POP3_S_USER);
		if (pop3_send(c, "USER %s", c->user) < 0)
			pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
	} else {
		pop3_fail(c, SESSION_FAIL_AUTH, "%s offers neither SASL PLAIN "
		    "nor USER/PASS in its CAPA; no way to log in",
		    net_peer(c->conn));
	}
}

/* What a user should check, from the RFC 2449 / RFC 3206 code. */
static const char *
pop3_auth_advice(const struct pop3_status *st)
{
	static const struct { const char *code; const char *advice; } t[] = {
		{ "IN-USE", "another client holds the maildrop; the next run "
		    "tries again" },
		{ "LOGIN-DELAY", "the server limits how often this user may "
		    "log in; run less often" },
		{ "SYS/TEMP", "a temporary problem on the server; the next run "
		    "tries again" },
		{ "SYS/PERM", "a problem on the server that its administrator "
		    "must fix" },
	};
	size_t i;

	for (i = 0; st->code != NULL && i < NELEM(t); i++)
		if (st->code_len == strlen(t[i].code) &&
		    strncasecmp(st->code, t[i].code, st->code_len) == 0)
			return t[i].advice;
	return "check the user name and the password";
}

/* "+" during AUTH PLAIN without an initial response: send it once. */
static void
pop3_auth_continue(struct pop3_client *c)
{
	char *b64;
	int err;

	if (c->sent_auth_response || c->password == NULL) {
		/* A second challenge for PLAIN: cancel (RFC 5034 4). */
		if (pop3_send(c, "*") < 0)
			pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	if ((b64 = sasl_plain_b64(c->authzid, c->user, c->password)) ==
	    NULL) {
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	err = pop3_send_secret(c, "", b64);
	secret_free(b64);
	c->sent_auth_response = true;
	if (err < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

/*
 * A "+" during an OAuth2 AUTH: before our response it asks for it; after
 * it, it is the error challenge (RFC 7628 3.2.2), kept and answered with
 * the dummy response so that the server ends with its -ERR; after that,
 * a loop we do not enter.
 */
static void
pop3_oauth_continue(struct pop3_client *c, const struct pop3_status *st)
{
	const char *dummy = sasl_oauth_dummy(c->mech);
	char why[512], *b64;
	int err;

	if (!c->sent_auth_response) {
		if ((b64 = pop3_oauth_response(c)) == NULL)
			return;
		err = pop3_send_secret(c, "", b64);
		secret_free(b64);
		c->sent_auth_response = true;
	} else if (sasl_oauth_error_challenge(c->mech, c->sent_auth_dummy,
	    net_peer(c->conn), st->text, st->text_len, c->auth_said,
	    sizeof c->auth_said, why, sizeof why) < 0) {
		pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s", why);
		return;
	} else {
		pop3_auth_redact(c, c->auth_said);
		err = pop3_send(c, "%s", dummy);
		c->sent_auth_dummy = true;
	}
	if (err < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

static void
pop3_oauth_refused(struct pop3_client *c, const char *words)
{
	char why[1024];

	sasl_oauth_refused(why, sizeof why, c->user, c->mech,
	    net_peer(c->conn), words, c->sent_auth_dummy ? c->auth_said :
	    NULL, "POP3");
	pop3_fail(c, SESSION_FAIL_AUTH, "%s", why);
}

static void
pop3_auth_send_pass(struct pop3_client *c)
{
	if (!pop3_clean(c->password)) {
		pop3_fail(c, SESSION_FAIL_AUTH, "the password holds control "
		    "characters that PASS cannot carry, and %s offers no SASL "
		    "PLAIN", net_peer(c->conn));
		return;
	}
	pop3_enter(c, POP3_S_PASS);
	if (pop3_send_secret(c, "PASS ", c->password) < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

void
pop3_auth_status(struct pop3_client *c, const struct pop3_status *st)
{
	char words[512];

	if (st->kind == POP3_CONT) {
		if (c->token != NULL)
			pop3_oauth_continue(c, st);
		else
			pop3_auth_continue(c);
		return;
	}
	if (st->kind == POP3_ERR && c->token != NULL) {
		pop3_server_words(st, words, sizeof words);
		pop3_auth_redact(c, words);
		pop3_oauth_refused(c, words);
		return;
	}
	if (st->kind == POP3_ERR) {
		pop3_server_words(st, words, sizeof words);
		sasl_redact(words, c->authzid, c->user, c->password);
		secret_free(c->password);
		c->password = NULL;
		pop3_fail(c, SESSION_FAIL_AUTH, "login as %s'%s'%s%s was "
		    "refused by %s%s: %s; %s", c->authzid != NULL ?
		    "master user " : "", c->user, c->authzid != NULL ?
		    " for mailbox " : "", c->authzid != NULL ? c->authzid : "",
		    net_peer(c->conn), c->state == POP3_S_USER ? " at USER" :
		    "", words, c->authzid != NULL ? "check that the mailbox "
		    "exists, auth.master_user and its password" :
		    pop3_auth_advice(st));
		return;
	}
	if (c->state == POP3_S_USER) {
		pop3_auth_send_pass(c);
		return;
	}
	secret_free(c->password);
	secret_free(c->token);
	c->password = c->token = NULL;
	/* Capabilities may differ once logged in (RFC 2449 5). */
	pop3_send_capa(c, POP3_S_POSTAUTH_CAPA);
}
