/*
 * sasl.c - builds the SASL messages the clients send: PLAIN (RFC 4616),
 * XOAUTH2 and OAUTHBEARER (RFC 7628); reads the error challenge of the
 * last two; masks our own secrets in text a server echoed; words the
 * failures of an OAuth2 login the same for every protocol.  A clear-text
 * message exists only in a buffer that is wiped before it is freed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sasl.h"
#include "util.h"

/* An echo of at least this much of a secret's start is masked. */
#define SASL_MASK_MIN		12
#define SASL_MAX_USER		1024

/* Heap base64 of `n` bytes, or NULL. */
static char *
sasl_b64(const unsigned char *raw, size_t n)
{
	char *b64;

	if (n > INT32_MAX / 2)
		return NULL;
	if ((b64 = malloc(4 * ((n + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
	return b64;
}

char *
sasl_plain_b64(const char *authzid, const char *authcid, const char *password)
{
	size_t zl = authzid != NULL ? strlen(authzid) : 0;
	size_t ul = strlen(authcid), pl = strlen(password);
	size_t n = zl + ul + pl + 2;
	unsigned char *raw;
	char *b64;

	if (n > INT32_MAX / 2 || (raw = malloc(n)) == NULL)
		return NULL;
	memcpy(raw, authzid != NULL ? authzid : "", zl);
	raw[zl] = '\0';
	memcpy(raw + zl + 1, authcid, ul);
	raw[zl + 1 + ul] = '\0';
	memcpy(raw + zl + 2 + ul, password, pl);
	b64 = sasl_b64(raw, n);
	explicit_bzero(raw, n);
	free(raw);
	return b64;
}

/*
 * Mask every run of `text` that matches the start of `secret` for at
 * least min(minlen, strlen(secret)) bytes, as far as the match goes.
 */
static void
sasl_mask_run(char *text, const char *secret, size_t minlen)
{
	size_t n = strlen(secret), k = n < minlen ? n : minlen, m;
	char *p;

	if (n == 0)
		return;
	for (p = text; *p != '\0'; p++) {
		if (strncmp(p, secret, k) != 0)
			continue;
		for (m = k; m < n && p[m] == secret[m]; m++)
			;
		memset(p, '*', m);
		p += m - 1;
	}
}

static void
sasl_mask(char *text, const char *secret)
{
	sasl_mask_run(text, secret, strlen(secret));
}

/*
 * A server that echoes an IMAP LOGIN shows the password as we quoted it,
 * '"' and '\\' backslash-escaped, and its words are str_escape()d once
 * more on their way to us: mask both spellings.
 */
static void
sasl_redact_quoted(char *text, const char *password)
{
	size_t i, n = 0, len = strlen(password);
	char *q, *esc;

	if (strpbrk(password, "\"\\") == NULL)
		return;
	/* Out of memory: the plain masks above still ran. */
	if ((q = malloc(2 * len + 1)) == NULL)
		return;
	for (i = 0; i < len; i++) {
		if (password[i] == '"' || password[i] == '\\')
			q[n++] = '\\';
		q[n++] = password[i];
	}
	q[n] = '\0';
	sasl_mask(text, q);
	if ((esc = malloc(4 * n + 1)) != NULL) {
		str_escape(esc, 4 * n + 1, q, n);
		sasl_mask(text, esc);
		secret_free(esc);
	}
	secret_free(q);
}

void
sasl_redact(char *text, const char *authzid, const char *authcid,
    const char *password)
{
	char esc[1024];
	char *b64;

	if (text == NULL || password == NULL)
		return;
	sasl_mask(text, password);
	str_escape(esc, sizeof esc, password, strlen(password));
	sasl_mask(text, esc);
	sasl_redact_quoted(text, password);
	if ((b64 = sasl_plain_b64(authzid, authcid, password)) != NULL) {
		sasl_mask(text, b64);
		secret_free(b64);
	}
	explicit_bzero(esc, sizeof esc);
}

const char *
sasl_mech_name(enum sasl_mech m)
{
	return m == SASL_MECH_XOAUTH2 ? "XOAUTH2" :
	    m == SASL_MECH_OAUTHBEARER ? "OAUTHBEARER" : "auto";
}

const char *
sasl_mech_key(enum sasl_mech m)
{
	return m == SASL_MECH_XOAUTH2 ? "xoauth2" :
	    m == SASL_MECH_OAUTHBEARER ? "oauthbearer" : "auto";
}

int
sasl_oauth_pick(enum sasl_mech want, bool has_xoauth2, bool has_oauthbearer,
    enum sasl_mech *ret)
{
	enum sasl_mech m;

	if (want == SASL_MECH_XOAUTH2 || want == SASL_MECH_OAUTHBEARER)
		m = want;
	else
		m = has_oauthbearer ? SASL_MECH_OAUTHBEARER :
		    SASL_MECH_XOAUTH2;
	if ((m == SASL_MECH_XOAUTH2 && !has_xoauth2) ||
	    (m == SASL_MECH_OAUTHBEARER && !has_oauthbearer))
		return -ENOENT;
	*ret = m;
	return 0;
}

/* Non-empty, bounded, no control byte (0x01 separates the fields). */
static bool
sasl_field_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f ||
		    n >= SASL_MAX_USER)
			return false;
	return n > 0;
}

/* RFC 6750 2.1 b64token, loosely: printable ASCII, no space. */
static int
sasl_token_check(const char *t)
{
	size_t n;

	for (n = 0; t[n] != '\0'; n++) {
		if (n >= SASL_OAUTH_MAX_TOKEN)
			return -EMSGSIZE;
		if ((unsigned char)t[n] <= 0x20 || (unsigned char)t[n] >= 0x7f)
			return -EBADMSG;
	}
	return n > 0 ? 0 : -EBADMSG;
}

/* Append `n` bytes; the buffer was sized for the worst case. */
static void
sasl_put(char *buf, size_t *o, const char *s, size_t n)
{
	memcpy(buf + *o, s, n);
	*o += n;
}

#define SASL_PUTS(buf, o, s)	sasl_put(buf, o, s, strlen(s))

/* The GS2 authzid: ',' and '=' escaped (RFC 5801 4). */
static void
sasl_put_gs2_user(char *buf, size_t *o, const char *user)
{
	for (; *user != '\0'; user++) {
		if (*user == ',')
			SASL_PUTS(buf, o, "=2C");
		else if (*user == '=')
			SASL_PUTS(buf, o, "=3D");
		else
			sasl_put(buf, o, user, 1);
	}
}

/* The clear-text message into `buf`, sized by the caller; its length. */
static size_t
sasl_oauth_raw(char *buf, enum sasl_mech mech, const char *user,
    const char *host, uint16_t port, const char *token)
{
	char num[8];
	size_t o = 0;

	if (mech == SASL_MECH_XOAUTH2) {
		SASL_PUTS(buf, &o, "user=");
		SASL_PUTS(buf, &o, user);
	} else {
		SASL_PUTS(buf, &o, "n,a=");
		sasl_put_gs2_user(buf, &o, user);
		SASL_PUTS(buf, &o, ",\001host=");
		SASL_PUTS(buf, &o, host);
		snprintf(num, sizeof num, "%u", (unsigned)port);
		SASL_PUTS(buf, &o, "\001port=");
		SASL_PUTS(buf, &o, num);
	}
	SASL_PUTS(buf, &o, "\001auth=Bearer ");
	SASL_PUTS(buf, &o, token);
	SASL_PUTS(buf, &o, "\001\001");
	return o;
}

int
sasl_oauth_b64(enum sasl_mech mech, const char *user, const char *host,
    uint16_t port, const char *token, char **ret)
{
	size_t cap, n;
	char *raw, *b64;
	int err;

	if (mech != SASL_MECH_XOAUTH2 && mech != SASL_MECH_OAUTHBEARER)
		return -EINVAL;
	if (!sasl_field_ok(user))
		return -EINVAL;
	if (mech == SASL_MECH_OAUTHBEARER &&
	    (host == NULL || !sasl_field_ok(host)))
		return -EINVAL;
	if ((err = sasl_token_check(token)) < 0)
		return err;
	/* Every part bounded above: no overflow. */
	cap = 3 * strlen(user) + (host != NULL ? strlen(host) : 0) +
	    strlen(token) + 64;
	if ((raw = malloc(cap)) == NULL)
		return -ENOMEM;
	n = sasl_oauth_raw(raw, mech, user, host, port, token);
	b64 = sasl_b64((unsigned char *)raw, n);
	explicit_bzero(raw, cap);
	free(raw);
	if (b64 == NULL)
		return -ENOMEM;
	*ret = b64;
	return 0;
}

const char *
sasl_oauth_dummy(enum sasl_mech mech)
{
	return mech == SASL_MECH_OAUTHBEARER ? "AQ==" : "";
}

static bool
sasl_b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

/* Strict base64: whole quanta, padding only at the end.  The pad count. */
static int
sasl_b64_valid(const char *s, size_t len)
{
	size_t i, pad = 0;

	if (len % 4 != 0)
		return -EINVAL;
	if (len > 0 && s[len - 1] == '=')
		pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (!sasl_b64_char(s[i]))
			return -EINVAL;
	return (int)pad;
}

int
sasl_oauth_challenge(const char *b64, size_t len, char *out, size_t outlen)
{
	unsigned char dec[SASL_OAUTH_MAX_CHALLENGE + 3];
	int pad, n;

	if (len > 4 * ((SASL_OAUTH_MAX_CHALLENGE + 2) / 3))
		return -EMSGSIZE;
	if ((pad = sasl_b64_valid(b64, len)) < 0) {
		str_escape(out, outlen, b64, len);
		return -EINVAL;
	}
	n = len > 0 ? EVP_DecodeBlock(dec, (const unsigned char *)b64,
	    (int)len) : 0;
	if (n < pad) {
		str_escape(out, outlen, b64, len);
		return -EINVAL;
	}
	if ((size_t)(n - pad) > SASL_OAUTH_MAX_CHALLENGE)
		return -EMSGSIZE;
	str_escape(out, outlen, dec, (size_t)(n - pad));
	return 0;
}

void
sasl_redact_oauth(char *text, const char *user, const char *host,
    uint16_t port, const char *token)
{
	static const enum sasl_mech mechs[] = {
		SASL_MECH_XOAUTH2, SASL_MECH_OAUTHBEARER,
	};
	size_t i, n;
	char *esc, *b64;

	if (text == NULL || token == NULL)
		return;
	sasl_mask_run(text, token, SASL_MASK_MIN);
	n = strlen(token);
	/* Only a backslash differs once escaped (tokens are ASCII). */
	if (strchr(token, '\\') != NULL && n < SASL_OAUTH_MAX_TOKEN &&
	    (esc = malloc(4 * n + 1)) != NULL) {
		str_escape(esc, 4 * n + 1, token, n);
		sasl_mask_run(text, esc, SASL_MASK_MIN);
		secret_free(esc);
	}
	for (i = 0; user != NULL && i < NELEM(mechs); i++)
		if (sasl_oauth_b64(mechs[i], user, host, port, token,
		    &b64) == 0) {
			sasl_mask_run(text, b64, SASL_MASK_MIN);
			secret_free(b64);
		}
}

void
sasl_redact_login(char *text, const char *authzid, const char *user,
    const char *password, const char *host, uint16_t port, const char *token)
{
	if (password != NULL)
		sasl_redact(text, authzid, user, password);
	if (token != NULL)
		sasl_redact_oauth(text, user, host, port, token);
}

enum session_fail
sasl_oauth_b64_error(int err, enum sasl_mech mech, const char *user_rule,
    char *buf, size_t len)
{
	if (err == -ENOMEM) {
		snprintf(buf, len, "out of memory");
		return SESSION_FAIL_LOCAL;
	}
	if (err == -EINVAL)
		snprintf(buf, len, "auth.user is %s; an OAuth2 login (%s) "
		    "cannot carry it", user_rule, sasl_mech_name(mech));
	else
		snprintf(buf, len, "the OAuth2 access token is empty, longer "
		    "than %d bytes or holds bytes other than printable ASCII; "
		    "it is not a bearer token (RFC 6750), so it was not sent",
		    SASL_OAUTH_MAX_TOKEN);
	return SESSION_FAIL_AUTH;
}

int
sasl_oauth_error_challenge(enum sasl_mech mech, bool sent_dummy,
    const char *peer, const char *b64, size_t b64_len, char *said,
    size_t said_len, char *why, size_t why_len)
{
	if (sent_dummy) {
		snprintf(why, why_len, "%s sent another continuation after the "
		    "answer to its OAuth2 error challenge (%s); the session "
		    "was closed", peer, sasl_mech_name(mech));
		return -EPROTO;
	}
	if (sasl_oauth_challenge(b64 != NULL ? b64 : "", b64_len, said,
	    said_len) == -EMSGSIZE) {
		snprintf(why, why_len, "%s sent an OAuth2 error challenge of "
		    "%zu bytes, above the limit of %d decoded bytes", peer,
		    b64_len, SASL_OAUTH_MAX_CHALLENGE);
		return -EPROTO;
	}
	return 0;
}

void
sasl_oauth_refused(char *buf, size_t len, const char *user,
    enum sasl_mech mech, const char *peer, const char *words,
    const char *said, const char *proto)
{
	if (said != NULL)
		snprintf(buf, len, "login as '%s' with an OAuth2 token (%s) "
		    "was refused by %s: %s; server said %s", user,
		    sasl_mech_name(mech), peer, words, said);
	else
		snprintf(buf, len, "login as '%s' with an OAuth2 token (%s) "
		    "was refused by %s: %s; check that the token is current "
		    "and its scope allows %s", user, sasl_mech_name(mech), peer,
		    words, proto);
}
