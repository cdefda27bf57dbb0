/*
 * sasl.c - builds the SASL PLAIN message.  The clear-text form exists only
 * in a buffer that is wiped before it is freed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sasl.h"

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
