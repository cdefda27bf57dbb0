/*
 * imap_auth.c - logging in to an IMAP server: AUTHENTICATE PLAIN or LOGIN
 * with a password, AUTHENTICATE XOAUTH2 or OAUTHBEARER with an OAuth2
 * access token (RFC 7628), with SASL-IR (RFC 4959) when offered, and the
 * error challenge a server sends on a refused token.  The secret is wiped
 * once the server answered, and no text we keep ever holds it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "base/log.h"
#include "base/sasl.h"
#include "base/util.h"
#include "imap/imap_client_private.h"

static void imap_auth_login(struct imap_client *);

void
imap_auth_redact(struct imap_client *c, char *text)
{
	sasl_redact_login(text, c->authzid, c->user, c->password,
	    c->p.net.host, c->p.net.port, c->token);
}

static void
imap_send_secret(struct imap_client *c, const char *prefix, const char *secret)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	/* Only the redacted form ever reaches the debug log. */
	log_debug("imap %s C: %s<redacted>", c->host, prefix);
	evbuffer_add(out, prefix, strlen(prefix));
	evbuffer_add(out, secret, strlen(secret));
	evbuffer_add(out, "\r\n", 2);
	imap_arm_deadline(c);
}

/* "a3 AUTHENTICATE MECH b64" with SASL-IR, else without and wait for "+". */
static void
imap_auth_send(struct imap_client *c, const char *mech, const char *b64)
{
	char prefix[64];

	snprintf(c->tag, sizeof c->tag, "a%u", ++c->tagseq);
	if (c->caps & IMAP_CAP_SASL_IR) {
		snprintf(prefix, sizeof prefix, "%s AUTHENTICATE %s ", c->tag,
		    mech);
		imap_send_secret(c, prefix, b64);
		c->sent_auth_response = true;
	} else {
		log_debug("imap %s C: %s AUTHENTICATE %s", c->host, c->tag,
		    mech);
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "%s AUTHENTICATE %s\r\n", c->tag, mech);
		imap_arm_deadline(c);
	}
}

/* The initial response of the chosen OAuth2 mechanism; NULL: failed. */
static char *
imap_oauth_response(struct imap_client *c)
{
	char why[256], *b64;
	enum session_fail fail;
	int err;

	err = sasl_oauth_b64(c->mech, c->user, c->p.net.host, c->p.net.port,
	    c->token, &b64);
	if (err == 0)
		return b64;
	fail = sasl_oauth_b64_error(err, c->mech, "empty, 1 KiB or longer, "
	    "or holds control characters", why, sizeof why);
	imap_fail(c, fail, "%s", why);
	return NULL;
}

/* Neither mechanism fits: say what the server offers and what to set. */
static void
imap_oauth_unoffered(struct imap_client *c)
{
	const char *offers = c->auth_mechs[0] != '\0' ? c->auth_mechs :
	    "no AUTHENTICATE mechanism";

	if (c->p.mech == SASL_MECH_AUTO)
		imap_fail(c, SESSION_FAIL_AUTH, "%s offers neither "
		    "AUTHENTICATE OAUTHBEARER nor XOAUTH2 (it offers: %s), so "
		    "the OAuth2 token cannot be used with any auth.mechanism; "
		    "check server.host and that the server accepts OAuth2 "
		    "logins", net_peer(c->conn), offers);
	else
		imap_fail(c, SESSION_FAIL_AUTH, "auth.mechanism is %s, but %s "
		    "does not offer AUTHENTICATE %s (it offers: %s); set "
		    "auth.mechanism to one it offers, or leave it out",
		    sasl_mech_key(c->p.mech), net_peer(c->conn),
		    sasl_mech_name(c->p.mech), offers);
}

static void
imap_auth_oauth(struct imap_client *c)
{
	char *b64;

	if (c->authzid != NULL) {
		imap_fail(c, SESSION_FAIL_AUTH, "auth.master_user cannot be "
		    "combined with auth.oauth2");
		return;
	}
	if (sasl_oauth_pick(c->p.mech, c->caps & IMAP_CAP_AUTH_XOAUTH2,
	    c->caps & IMAP_CAP_AUTH_OAUTHBEARER, &c->mech) < 0) {
		imap_oauth_unoffered(c);
		return;
	}
	if ((b64 = imap_oauth_response(c)) == NULL)
		return;
	imap_auth_send(c, sasl_mech_name(c->mech), b64);
	secret_free(b64);
}

void
imap_auth_start(struct imap_client *c)
{
	char *b64;

	if (!net_is_tls(c->conn) && !c->p.allow_plaintext) {
		imap_fail(c, SESSION_FAIL_TLS, "refusing to send the %s without "
		    "TLS (set auth.allow_plaintext: true to allow it)",
		    c->token != NULL ? "OAuth2 token" : "password");
		return;
	}
	imap_enter(c, IMAP_S_AUTH);
	if (c->token != NULL) {
		imap_auth_oauth(c);
		return;
	}
	if (c->caps & IMAP_CAP_AUTH_PLAIN) {
		if ((b64 = sasl_plain_b64(c->authzid, c->user,
		    c->password)) == NULL) {
			imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
			return;
		}
		imap_auth_send(c, "PLAIN", b64);
		secret_free(b64);
		return;
	}
	if (c->authzid != NULL) {
		/* LOGIN cannot say "on behalf of"; only SASL can. */
		imap_fail(c, SESSION_FAIL_AUTH, "a master-user login for %s "
		    "needs AUTHENTICATE PLAIN, which %s does not offer (use "
		    "auth.method: separator instead)", c->authzid,
		    net_peer(c->conn));
		return;
	}
	if (c->caps & IMAP_CAP_LOGINDISABLED) {
		imap_fail(c, SESSION_FAIL_AUTH, "%s disables LOGIN "
		    "(LOGINDISABLED) and offers no AUTHENTICATE PLAIN; no way "
		    "to log in", net_peer(c->conn));
		return;
	}
	imap_auth_login(c);
}

static void
imap_auth_login(struct imap_client *c)
{
	struct evbuffer *args = evbuffer_new();
	char prefix[64];
	size_t n;
	char *line;

	if (args == NULL) {
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	if (imap_quote(args, c->user, strlen(c->user)) < 0 ||
	    evbuffer_add(args, " ", 1) < 0 ||
	    imap_quote(args, c->password, strlen(c->password)) < 0) {
		evbuffer_free(args);
		imap_fail(c, SESSION_FAIL_AUTH, "the user name or password "
		    "has characters that LOGIN cannot carry, and %s offers no "
		    "AUTHENTICATE PLAIN", net_peer(c->conn));
		return;
	}
	n = evbuffer_get_length(args);
	line = malloc(n + 1);
	if (line != NULL) {
		unsigned char *p = evbuffer_pullup(args, -1);

		/* evbuffer_free() does not wipe: clear the copy it holds. */
		memcpy(line, p, n);
		explicit_bzero(p, n);
		line[n] = '\0';
		snprintf(c->tag, sizeof c->tag, "a%u", ++c->tagseq);
		snprintf(prefix, sizeof prefix, "%s LOGIN ", c->tag);
		imap_send_secret(c, prefix, line);
		c->sent_auth_response = true;
		explicit_bzero(line, n);
		free(line);
	}
	evbuffer_free(args);
	if (line == NULL)
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

/*
 * A "+" after the OAuth2 response is the error challenge: keep what it
 * says and answer with the dummy response, so that the server ends the
 * exchange with its NO.
 */
static void
imap_oauth_challenge(struct imap_client *c, const struct imap_response *r)
{
	const char *dummy = sasl_oauth_dummy(c->mech);
	char why[512];

	if (sasl_oauth_error_challenge(c->mech, c->sent_auth_dummy,
	    net_peer(c->conn), r->text, r->text_len, c->auth_said,
	    sizeof c->auth_said, why, sizeof why) < 0) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s", why);
		return;
	}
	imap_auth_redact(c, c->auth_said);
	log_debug("imap %s C: %s", c->host, dummy);
	evbuffer_add_printf(bufferevent_get_output(c->bev), "%s\r\n", dummy);
	imap_arm_deadline(c);
	c->sent_auth_dummy = true;
}

/* "+" while authenticating: the response (no SASL-IR), or a challenge. */
void
imap_auth_continue(struct imap_client *c, const struct imap_response *r)
{
	char *b64;

	if (c->state != IMAP_S_AUTH) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a continuation "
		    "request nobody asked for (in %s)", net_peer(c->conn),
		    imap_state_name(c->state));
		return;
	}
	if (c->sent_auth_response && c->token != NULL) {
		imap_oauth_challenge(c, r);
		return;
	}
	if (c->sent_auth_response) {
		/* A second challenge for PLAIN: cancel the exchange. */
		evbuffer_add(bufferevent_get_output(c->bev), "*\r\n", 3);
		return;
	}
	if (c->token != NULL)
		b64 = imap_oauth_response(c);
	else if ((b64 = sasl_plain_b64(c->authzid, c->user, c->password)) ==
	    NULL)
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
	if (b64 == NULL)
		return;
	imap_send_secret(c, "", b64);
	secret_free(b64);
	c->sent_auth_response = true;
}

static void
imap_oauth_refused(struct imap_client *c, const char *words)
{
	char why[1024];

	sasl_oauth_refused(why, sizeof why, c->user, c->mech,
	    net_peer(c->conn), words, c->sent_auth_dummy ? c->auth_said :
	    NULL, "IMAP");
	imap_fail(c, SESSION_FAIL_AUTH, "%s", why);
}

static void
imap_password_refused(struct imap_client *c, const char *words)
{
	if (c->authzid != NULL)
		imap_fail(c, SESSION_FAIL_AUTH, "login as master user '%s' "
		    "for mailbox '%s' was refused by %s: %s; check that the "
		    "mailbox exists, auth.master_user and its password, and "
		    "that the server lets it log in for others", c->user,
		    c->authzid, net_peer(c->conn), words);
	else
		imap_fail(c, SESSION_FAIL_AUTH, "login as '%s' was refused by "
		    "%s: %s; check the user name and the password", c->user,
		    net_peer(c->conn), words);
}

int
imap_auth_tagged(struct imap_client *c, const struct imap_response *r)
{
	char words[512];

	if (r->status == IMAP_ST_OK) {
		secret_free(c->password);
		secret_free(c->token);
		c->password = c->token = NULL;
		return 0;
	}
	/* imap_fail() masks what is still held, after the words are in. */
	imap_server_words(r, words, sizeof words);
	imap_auth_redact(c, words);
	if (c->token != NULL)
		imap_oauth_refused(c, words);
	else
		imap_password_refused(c, words);
	return -1;
}
