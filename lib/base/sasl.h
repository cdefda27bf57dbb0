/*
 * sasl.h - the SASL messages shared by the IMAP and POP3 clients: PLAIN
 * (RFC 4616), and the two ways to present an OAuth2 access token, Google's
 * and Microsoft's XOAUTH2 and the standard OAUTHBEARER (RFC 7628), with
 * the error challenge a server sends when it refuses a token.
 */
#ifndef MAILSTOW_BASE_SASL_H
#define MAILSTOW_BASE_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

/*
 * Heap string with the base64 of the PLAIN message; `authzid` NULL or ""
 * for "act as myself", else the user to act for (a master-user login).
 * NULL on -ENOMEM or when a part holds a NUL it cannot (none can: C
 * strings).  The caller wipes it with secret_free(); the raw message is
 * wiped here.
 */
char	*sasl_plain_b64(const char *authzid, const char *authcid,
	    const char *password);

/*
 * Mask our own secret wherever a server echoed it into `text` (a refusal
 * that quotes the command): the password as sent, as str_escape() shows
 * it, and the PLAIN message of (authzid, authcid, password).  Each
 * occurrence becomes '*' of the same length, in place.
 */
void	sasl_redact(char *text, const char *authzid, const char *authcid,
	    const char *password);

/* The OAuth2 mechanisms; the values match enum conf_auth_mech. */
enum sasl_mech {
	SASL_MECH_AUTO,			/* OAUTHBEARER if offered, else XOAUTH2 */
	SASL_MECH_XOAUTH2,
	SASL_MECH_OAUTHBEARER,
};

/* Longest access token we send (Microsoft's JWTs run to a few KiB). */
#define SASL_OAUTH_MAX_TOKEN	(16 * 1024)
/* Longest decoded error challenge we read (RFC 7628 3.2.2: a JSON). */
#define SASL_OAUTH_MAX_CHALLENGE 4096

/* "XOAUTH2", "OAUTHBEARER" (as on the wire), "auto". */
const char *sasl_mech_name(enum sasl_mech);
/* The auth.mechanism spelling: "xoauth2", "oauthbearer", "auto". */
const char *sasl_mech_key(enum sasl_mech);

/*
 * The mechanism to use given what the server offers: `want` when it is
 * forced and offered; for SASL_MECH_AUTO OAUTHBEARER when offered, else
 * XOAUTH2.  0 with *ret set, or -ENOENT when nothing fits.
 */
int	sasl_oauth_pick(enum sasl_mech want, bool has_xoauth2,
	    bool has_oauthbearer, enum sasl_mech *ret);

/*
 * Heap string with the base64 initial response of `mech` (XOAUTH2 or
 * OAUTHBEARER, not AUTO):
 *   XOAUTH2:     "user=" U "\1auth=Bearer " T "\1\1"
 *   OAUTHBEARER: "n,a=" U' ",\1host=" H "\1port=" P "\1auth=Bearer " T
 *                "\1\1", with ',' and '=' in U written "=2C" and "=3D"
 *                (RFC 5801 GS2 header, RFC 7628 3.1).
 * `host` and `port` are the server connected to (OAUTHBEARER only; host
 * may be NULL for XOAUTH2).  -EINVAL: the user or host is empty, 1 KiB
 * or longer, or holds a control byte (which would split the message), or
 * `mech` is AUTO; -EBADMSG: the token is empty or not printable ASCII
 * without spaces (it is no RFC 6750 bearer token); -EMSGSIZE: the token
 * is above SASL_OAUTH_MAX_TOKEN; -ENOMEM.  *ret is set only on success;
 * the caller wipes it with secret_free().
 */
int	sasl_oauth_b64(enum sasl_mech mech, const char *user,
	    const char *host, uint16_t port, const char *token, char **ret);

/*
 * The response to an error challenge, which ends the exchange so that
 * the server sends its final NO / -ERR (RFC 7628 3.2.3): "AQ==", the
 * base64 of one 0x01, for OAUTHBEARER; an empty line for XOAUTH2.
 */
const char *sasl_oauth_dummy(enum sasl_mech);

/*
 * Decode an error challenge (the base64 text after "+ ") into `out` as
 * escaped, printable text (str_escape(), cut to outlen - 1).  0;
 * -EMSGSIZE when it would decode to more than SASL_OAUTH_MAX_CHALLENGE
 * bytes (nothing decoded); -EINVAL when it is not base64 (`out` holds
 * the text as sent, escaped).  An empty challenge gives "".
 */
int	sasl_oauth_challenge(const char *b64, size_t len, char *out,
	    size_t outlen);

/*
 * Mask an OAuth2 token wherever a server echoed it into `text`: the token
 * itself, as str_escape() shows it, and the base64 initial responses of
 * both mechanisms for (user, host, port, token); an echo cut short (a
 * refusal that quotes the first few hundred bytes of a long line) is
 * masked as far as it goes.  In place, '*' of the same length.  NULL
 * text or token: nothing to do.
 */
void	sasl_redact_oauth(char *text, const char *user, const char *host,
	    uint16_t port, const char *token);

/*
 * Mask what a client holds of a login in server text: the password
 * (sasl_redact(), when `password` is not NULL) and the OAuth2 token
 * (sasl_redact_oauth(), when `token` is not NULL).
 */
void	sasl_redact_login(char *text, const char *authzid, const char *user,
	    const char *password, const char *host, uint16_t port,
	    const char *token);

/*
 * What a session says when sasl_oauth_b64() failed with `err`: the
 * category (SESSION_FAIL_LOCAL for -ENOMEM, else SESSION_FAIL_AUTH) is
 * returned, the sentence written to `buf`.  `user_rule` is what auth.user
 * may not be, as far as the protocol checked it already ("empty or holds
 * control characters").
 */
enum session_fail sasl_oauth_b64_error(int err, enum sasl_mech,
	    const char *user_rule, char *buf, size_t len);

/*
 * A continuation after our OAuth2 response is the error challenge (RFC
 * 7628 3.2.2; Gmail and Dovecot send it for XOAUTH2 as well).  0: what it
 * says is in `said` (escaped, as sasl_oauth_challenge()), and the client
 * answers with sasl_oauth_dummy() so that the server ends the exchange
 * with its refusal.  -EPROTO: the session fails (SESSION_FAIL_PROTOCOL)
 * with the sentence in `why`: a challenge after the dummy answer
 * (`sent_dummy`) is a loop we do not enter, and a challenge above
 * SASL_OAUTH_MAX_CHALLENGE is refused.  `peer` names the server.
 */
int	sasl_oauth_error_challenge(enum sasl_mech, bool sent_dummy,
	    const char *peer, const char *b64, size_t b64_len, char *said,
	    size_t said_len, char *why, size_t why_len);

/*
 * The sentence for a refused OAuth2 login into `buf`: the user, the
 * mechanism, the server (`peer`) and its words; then what the error
 * challenge said (`said`), or when there was none (NULL) what to check
 * about the token, whose scope must allow `proto` ("IMAP", "POP3").
 */
void	sasl_oauth_refused(char *buf, size_t len, const char *user,
	    enum sasl_mech, const char *peer, const char *words,
	    const char *said, const char *proto);

#endif
