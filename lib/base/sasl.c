/*
 * sasl.c - builds the SASL PLAIN message.  The clear-text form exists only
 * in a buffer that is wiped before it is freed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sasl.h"
#include "util.h"

char *
sasl_plain_b64(const char *authzid, const char *authcid, const char *password)
{
	size_t zl = authzid != NULL ? strlen(authzid) : 0;
	size_t ul = strlen(authcid), pl = strlen(password);
	size_t n = zl + ul + pl + 2;
	unsigned char *raw;
	char *b64;

	if (n > INT32_MAX / 2)
		return NULL;
	raw = malloc(n);
	b64 = malloc(4 * ((n + 2) / 3) + 1);
	if (raw == NULL || b64 == NULL) {
		free(raw);
		free(b64);
		return NULL;
	}
	memcpy(raw, authzid != NULL ? authzid : "", zl);
	raw[zl] = '\0';
	memcpy(raw + zl + 1, authcid, ul);
	raw[zl + 1 + ul] = '\0';
	memcpy(raw + zl + 2 + ul, password, pl);
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
	explicit_bzero(raw, n);
	free(raw);
	return b64;
}

static void
sasl_mask(char *text, const char *secret)
{
	size_t n = strlen(secret);
	char *p = text;

	if (n == 0)
		return;
	while ((p = strstr(p, secret)) != NULL) {
		memset(p, '*', n);
		p += n;
	}
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
	if ((b64 = sasl_plain_b64(authzid, authcid, password)) != NULL) {
		sasl_mask(text, b64);
		secret_free(b64);
	}
	explicit_bzero(esc, sizeof esc);
}
