/*
 * fuzz_oauth2_token.c - what a token endpoint or a token file can hand
 * us: the input goes through the token response, device response, error
 * object and token file parsers.  Whatever they accept must keep the
 * promised limits (printable tokens of bounded length, sane expiry) and
 * whatever they refuse must leave the out-parameters alone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth2/oauth2.h"
#include "oauth2/oauth2_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW	1700000000

static void
fz_token(const char *s, size_t max, bool space)
{
	if (s == NULL)
		return;
	if (strlen(s) == 0 || strlen(s) > max ||
	    !oauth2_printable(s, strlen(s), space))
		abort();
}

static void
fz_tokens(const struct oauth2_tokens *t, bool response)
{
	fz_token(t->access_token, OAUTH2_MAX_TOKEN, false);
	fz_token(t->refresh_token, OAUTH2_MAX_TOKEN, false);
	fz_token(t->scope, OAUTH2_MAX_SCOPE, true);
	if (response && (t->access_token == NULL || t->expires_at < NOW ||
	    t->expires_at > NOW + OAUTH2_MAX_EXPIRES))
		abort();
	if (!response && t->access_token == NULL && t->refresh_token == NULL)
		abort();
}

static void
fz_device(const struct oauth2_device *d)
{
	if (d->device_code == NULL || d->user_code == NULL ||
	    d->verification_uri == NULL || d->interval < 1 ||
	    d->interval > 600 || d->expires_in < 1 || d->expires_in > 86400)
		abort();
	fz_token(d->device_code, OAUTH2_MAX_TOKEN, false);
	fz_token(d->verification_uri, OAUTH2_MAX_URI, false);
	fz_token(d->verification_uri_complete, OAUTH2_MAX_URI, false);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct oauth2_tokens t, poison;
	struct oauth2_device d;
	char err[128], *code = NULL, *desc = NULL;

	memset(&poison, 0xa5, sizeof poison);
	t = poison;
	if (oauth2_parse_token_response(s, size, NOW, &t, err,
	    sizeof err) == 0) {
		fz_tokens(&t, true);
		oauth2_tokens_clear(&t);
	} else if (memcmp(&t, &poison, sizeof t) != 0)
		abort();
	t = poison;
	if (oauth2_tokens_parse(s, size, &t) == 0) {
		fz_tokens(&t, false);
		oauth2_tokens_clear(&t);
	} else if (memcmp(&t, &poison, sizeof t) != 0)
		abort();
	if (oauth2_parse_device_response(s, size, &d, err, sizeof err) == 0) {
		fz_device(&d);
		oauth2_device_clear(&d);
	}
	if (oauth2_parse_error(s, size, &code, &desc) == 0) {
		if (code == NULL || code[0] == '\0')
			abort();
		free(code);
		free(desc);
	}
	return 0;
}
