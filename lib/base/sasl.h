/*
 * sasl.h - the SASL PLAIN message (RFC 4616), shared by the IMAP and POP3
 * clients: base64("authzid\0authcid\0password").
 */
#ifndef MAILSTOW_BASE_SASL_H
#define MAILSTOW_BASE_SASL_H

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

#endif
