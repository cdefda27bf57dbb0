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

#endif
