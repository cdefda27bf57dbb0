/*
 * oauth2_json.c - the JSON the token endpoints send (RFC 6749 section 5,
 * RFC 8628 section 3.2), read with jansson under our own limits: size and
 * nesting are checked before jansson sees a byte, every member's type is
 * checked, tokens are printable ASCII of bounded length, and every string
 * of the tree is zeroed before it is freed since it may be a token.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "oauth2_private.h"

static int
oauth2_json_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
oauth2_json_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Nesting depth outside strings; jansson would allow 2048 levels. */
static bool
oauth2_json_shallow(const char *s, size_t len)
{
	bool in_str = false, esc = false;
	unsigned depth = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"')
			in_str = true;
		else if (ch == '{' || ch == '[') {
			if (++depth > OAUTH2_MAX_DEPTH)
				return false;
		} else if ((ch == '}' || ch == ']') && depth > 0)
			depth--;
	}
	return true;
}

int
oauth2_json_load(const char *body, size_t len, json_t **ret, char *err,
    size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	if (len > OAUTH2_MAX_RESPONSE)
		return oauth2_json_err(err, errlen, "larger than %d bytes",
		    OAUTH2_MAX_RESPONSE);
	if (!oauth2_json_shallow(body, len))
		return oauth2_json_err(err, errlen, "nested deeper than %d",
		    OAUTH2_MAX_DEPTH);
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return oauth2_json_err(err, errlen, "not JSON (line %d "
		    "column %d)", jerr.line, jerr.column);
	if (!json_is_object(root)) {
		oauth2_json_free(root);
		return oauth2_json_err(err, errlen, "not a JSON object");
	}
	*ret = root;
	return 0;
}

static void
oauth2_json_wipe(json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;

	if (json_is_string(v)) {
		/* jansson owns a writable heap copy; zero it in place. */
		explicit_bzero((char *)json_string_value(v),
		    json_string_length(v));
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, item)
			oauth2_json_wipe(item);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item)
			oauth2_json_wipe(item);
	}
}

void
oauth2_json_free(json_t *v)
{
	if (v == NULL)
		return;
	oauth2_json_wipe(v);
	json_decref(v);
}

bool
oauth2_printable(const char *s, size_t len, bool space)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == ' ' && space)
			continue;
		if (ch < 0x21 || ch > 0x7e)
			return false;
	}
	return true;
}

int
oauth2_json_string(json_t *obj, const char *key, size_t max, bool space,
    bool required, char **ret, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t len;
	char *copy;

	if (v == NULL || json_is_null(v)) {
		if (required)
			return oauth2_json_err(err, errlen, "%s is missing",
			    key);
		*ret = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return oauth2_json_err(err, errlen, "%s is not a string", key);
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0 || len > max)
		return oauth2_json_err(err, errlen, "%s is empty or longer "
		    "than %zu bytes", key, max);
	if (!oauth2_printable(s, len, space))
		return oauth2_json_err(err, errlen, "%s holds bytes other "
		    "than printable ASCII", key);
	if ((copy = strndup(s, len)) == NULL)
		return oauth2_json_err(err, errlen, "out of memory");
	*ret = copy;
	return 0;
}

/*
 * A count of seconds: a JSON integer, or a string of digits, which some
 * Azure AD endpoints still send.  *present false when absent.
 */
static int
oauth2_json_seconds(json_t *obj, const char *key, uint64_t *ret,
    bool *present, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	uint64_t n;

	*present = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return oauth2_json_err(err, errlen, "%s is negative",
			    key);
		n = (uint64_t)json_integer_value(v);
	} else if (json_is_string(v)) {
		if (parse_u64(json_string_value(v), json_string_length(v),
		    &n) < 0)
			return oauth2_json_err(err, errlen, "%s is not a "
			    "number of seconds", key);
	} else
		return oauth2_json_err(err, errlen, "%s is not a number", key);
	*ret = n;
	*present = true;
	return 0;
}

static int
oauth2_token_type_ok(json_t *root, char *err, size_t errlen)
{
	json_t *v = json_object_get(root, "token_type");

	/* RFC 6749 requires it, but a missing one costs nothing here. */
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return oauth2_json_err(err, errlen, "token_type is not a "
		    "string");
	if (strcasecmp(json_string_value(v), "bearer") != 0)
		return oauth2_json_err(err, errlen, "token_type is not Bearer");
	return 0;
}

static int
oauth2_token_fields(json_t *root, int64_t now, struct oauth2_tokens *t,
    char *err, size_t errlen)
{
	uint64_t exp = OAUTH2_DEFAULT_EXPIRES;
	bool present;
	int r;

	if ((r = oauth2_token_type_ok(root, err, errlen)) < 0 ||
	    (r = oauth2_json_string(root, "access_token", OAUTH2_MAX_TOKEN,
	    false, true, &t->access_token, err, errlen)) < 0 ||
	    (r = oauth2_json_string(root, "refresh_token", OAUTH2_MAX_TOKEN,
	    false, false, &t->refresh_token, err, errlen)) < 0 ||
	    (r = oauth2_json_string(root, "scope", OAUTH2_MAX_SCOPE, true,
	    false, &t->scope, err, errlen)) < 0 ||
	    (r = oauth2_json_seconds(root, "expires_in", &exp, &present, err,
	    errlen)) < 0)
		return r;
	if (!present)
		exp = OAUTH2_DEFAULT_EXPIRES;
	if (exp > OAUTH2_MAX_EXPIRES)
		exp = OAUTH2_MAX_EXPIRES;
	t->expires_at = now + (int64_t)exp;
	return 0;
}

int
oauth2_parse_token_response(const char *body, size_t len, int64_t now,
    struct oauth2_tokens *ret, char *err, size_t errlen)
{
	struct oauth2_tokens t = { 0 };
	json_t *root;
	int r;

	if ((r = oauth2_json_load(body, len, &root, err, errlen)) < 0)
		return r;
	r = oauth2_token_fields(root, now, &t, err, errlen);
	oauth2_json_free(root);
	if (r < 0) {
		oauth2_tokens_clear(&t);
		return r;
	}
	*ret = t;
	return 0;
}

static int
oauth2_device_fields(json_t *root, struct oauth2_device *d, char *err,
    size_t errlen)
{
	uint64_t exp = 0, interval = 5;
	const char *ukey = "verification_uri";
	bool present;
	int r;

	/* Google calls it verification_url. */
	if (json_object_get(root, ukey) == NULL &&
	    json_object_get(root, "verification_url") != NULL)
		ukey = "verification_url";
	if ((r = oauth2_json_string(root, "device_code", OAUTH2_MAX_TOKEN,
	    false, true, &d->device_code, err, errlen)) < 0 ||
	    (r = oauth2_json_string(root, "user_code", 128, false, true,
	    &d->user_code, err, errlen)) < 0 ||
	    (r = oauth2_json_string(root, ukey, OAUTH2_MAX_URI, false, true,
	    &d->verification_uri, err, errlen)) < 0 ||
	    (r = oauth2_json_string(root, "verification_uri_complete",
	    OAUTH2_MAX_URI, false, false, &d->verification_uri_complete, err,
	    errlen)) < 0 ||
	    (r = oauth2_json_seconds(root, "expires_in", &exp, &present, err,
	    errlen)) < 0)
		return r;
	if (!present || exp == 0)
		return oauth2_json_err(err, errlen, "expires_in is missing "
		    "or zero");
	if ((r = oauth2_json_seconds(root, "interval", &interval, &present,
	    err, errlen)) < 0)
		return r;
	if (!present || interval == 0)
		interval = 5;
	d->interval = interval > 600 ? 600 : (uint32_t)interval;
	d->expires_in = exp > 86400 ? 86400 : (uint32_t)exp;
	return 0;
}

int
oauth2_parse_device_response(const char *body, size_t len,
    struct oauth2_device *ret, char *err, size_t errlen)
{
	struct oauth2_device d = { 0 };
	json_t *root;
	int r;

	if ((r = oauth2_json_load(body, len, &root, err, errlen)) < 0)
		return r;
	r = oauth2_device_fields(root, &d, err, errlen);
	oauth2_json_free(root);
	if (r < 0) {
		oauth2_device_clear(&d);
		return r;
	}
	*ret = d;
	return 0;
}

int
oauth2_parse_error(const char *body, size_t len, char **ret_code,
    char **ret_desc)
{
	json_t *root, *code, *desc;
	char *c = NULL, *d = NULL;
	int r = -EINVAL;

	if (oauth2_json_load(body, len, &root, NULL, 0) < 0)
		return -EINVAL;
	code = json_object_get(root, "error");
	desc = json_object_get(root, "error_description");
	if (!json_is_string(code) || json_string_length(code) == 0)
		goto out;
	r = -ENOMEM;
	if ((c = strndup(json_string_value(code),
	    json_string_length(code))) == NULL)
		goto out;
	if (json_is_string(desc) && (d = strndup(json_string_value(desc),
	    json_string_length(desc))) == NULL) {
		free(c);
		goto out;
	}
	*ret_code = c;
	*ret_desc = d;
	r = 0;
out:
	oauth2_json_free(root);
	return r;
}

void
oauth2_device_clear(struct oauth2_device *d)
{
	secret_free(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->verification_uri_complete);
	memset(d, 0, sizeof *d);
}
