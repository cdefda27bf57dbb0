/*
 * fuzz_sasl.c - what a server controls in a SASL exchange: the error
 * challenge (decoded into a bounded, escaped buffer) and text that may
 * echo our token (masked in place, never longer, never holding the
 * token afterwards).  The input also serves as a user name, which must
 * either be refused or give a message that carries it unsplit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/sasl.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_TOKEN	"ya29.fuzz-Token_0123456789"

static void
fz_challenge(const char *in, size_t len)
{
	char out[300];

	memset(out, 'x', sizeof out);
	(void)sasl_oauth_challenge(in, len, out, 257);
	if (memchr(out, '\0', 257) == NULL || out[257] != 'x')
		abort();
}

static void
fz_redact(const char *text)
{
	size_t n = strlen(text);
	char *t = strdup(text);

	if (t == NULL)
		return;
	sasl_redact_oauth(t, "user@example.com", "imap.example.com", 993,
	    FZ_TOKEN);
	if (strlen(t) != n || strstr(t, FZ_TOKEN) != NULL)
		abort();
	free(t);
}

static void
fz_user(const char *user)
{
	char *b64;

	if (sasl_oauth_b64(SASL_MECH_OAUTHBEARER, user, "h", 1, FZ_TOKEN,
	    &b64) == 0) {
		if (strchr(user, '\001') != NULL || *user == '\0')
			abort();
		secret_free(b64);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	fz_challenge((const char *)data, size);
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fz_redact(s);
	fz_user(s);
	free(s);
	return 0;
}
