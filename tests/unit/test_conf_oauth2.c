/*
 * test_conf_oauth2.c - auth.oauth2 and auth.mechanism: the presets
 * resolved into final endpoints and scopes, overrides winning over them,
 * and each refusal (wrong URL scheme, missing client, password or master
 * user beside OAuth2, batch without app-only flow) with its key path.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"

#define HEAD \
	"archive:\n  path: /var/lib/mailstow\nprofiles:\n" \
	"  - name: p\n" \
	"    server: { host: imap.example.com, protocol: imaps }\n"

/* Load `yaml` from a private temp file; the config or the error text. */
static int
load(const char *yaml, struct conf **ret, struct conf_error *err)
{
	char path[] = "/tmp/mailstow-test-conf-oauth2-XXXXXX";
	int fd, r;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	memset(err, 0, sizeof *err);
	r = conf_load(path, ret, err);
	unlink(path);
	return r;
}

static const struct conf_oauth2 *
load_ok(const char *yaml, struct conf **c)
{
	struct conf_error err;
	int r = load(yaml, c, &err);

	if (r != 0)
		fail_msg("unexpected error %d: %s", r, err.text);
	return &(*c)->profiles[0].auth.oauth2;
}

static void
test_microsoft_preset(void **state)
{
	struct conf *c;
	const struct conf_oauth2 *o = load_ok(HEAD
	    "    auth:\n      user: alice@example.com\n"
	    "      oauth2: { provider: microsoft, client_id: abc }\n", &c);

	assert_true(o->enabled);
	assert_int_equal(o->flow, CONF_OAUTH2_REFRESH_TOKEN);
	assert_string_equal(o->tenant, "organizations");
	assert_string_equal(o->token_endpoint, "https://login.microsoftonline"
	    ".com/organizations/oauth2/v2.0/token");
	assert_string_equal(o->device_authorization_endpoint, "https://login"
	    ".microsoftonline.com/organizations/oauth2/v2.0/devicecode");
	assert_non_null(strstr(o->scope, "IMAP.AccessAsUser.All"));
	assert_non_null(strstr(o->scope, "offline_access"));
	assert_int_equal(c->profiles[0].auth.mechanism, CONF_MECH_AUTO);
	assert_null(c->profiles[0].auth.password_file);
	conf_free(c);
}

static void
test_microsoft_app_tenant(void **state)
{
	struct conf *c;
	const struct conf_oauth2 *o = load_ok(HEAD
	    "    auth:\n      user: alice@example.com\n"
	    "      mechanism: xoauth2\n"
	    "      oauth2:\n        provider: microsoft\n"
	    "        tenant: example.onmicrosoft.com\n"
	    "        client_id: abc\n        flow: client_credentials\n"
	    "        client_secret_file: /etc/mailstow/secrets/app\n", &c);

	assert_int_equal(o->flow, CONF_OAUTH2_CLIENT_CREDENTIALS);
	assert_string_equal(o->token_endpoint, "https://login.microsoftonline"
	    ".com/example.onmicrosoft.com/oauth2/v2.0/token");
	assert_null(o->device_authorization_endpoint);
	assert_string_equal(o->scope, "https://outlook.office365.com/.default");
	assert_int_equal(c->profiles[0].auth.mechanism, CONF_MECH_XOAUTH2);
	conf_free(c);
}

static void
test_google_override(void **state)
{
	struct conf *c;
	const struct conf_oauth2 *o = load_ok(HEAD
	    "    auth:\n      user: bob@gmail.com\n"
	    "      mechanism: oauthbearer\n"
	    "      oauth2:\n        provider: google\n        client_id: x\n"
	    "        scope: \"https://mail.google.com/ openid\"\n"
	    "        ca_file: /etc/ssl/private-ca.pem\n", &c);

	assert_string_equal(o->token_endpoint,
	    "https://oauth2.googleapis.com/token");
	assert_string_equal(o->scope, "https://mail.google.com/ openid");
	assert_string_equal(o->ca_file, "/etc/ssl/private-ca.pem");
	assert_int_equal(c->profiles[0].auth.mechanism, CONF_MECH_OAUTHBEARER);
	conf_free(c);
}

static void
test_custom_endpoints_batch_app(void **state)
{
	struct conf *c;
	const struct conf_oauth2 *o = load_ok(HEAD
	    "    auth:\n      oauth2:\n        client_id: x\n"
	    "        flow: client_credentials\n"
	    "        client_secret_file: /s\n"
	    "        token_endpoint: https://idp.example.com:8443/token\n"
	    "        scope: imap\n"
	    "    mailboxes: [ { user: a }, { user: b } ]\n", &c);

	assert_string_equal(o->token_endpoint,
	    "https://idp.example.com:8443/token");
	assert_int_equal(c->profiles[0].n_mailboxes, 2);
	conf_free(c);
}

struct bad {
	const char *yaml;	/* the auth: block and anything after it */
	const char *key;	/* key path in the error */
	const char *what;	/* phrase of the message */
};

static const struct bad bad[] = {
	{ "    auth:\n      user: a\n      oauth2: { client_id: x, scope: s,"
	  " token_endpoint: \"http://idp/token\","
	  " device_authorization_endpoint: \"https://idp/d\" }\n",
	  "auth.oauth2.token_endpoint", "not an https:// URL" },
	{ "    auth:\n      user: a\n      oauth2: { client_id: x, scope: s,"
	  " token_endpoint: \"https://u:p@idp/token\","
	  " device_authorization_endpoint: \"https://idp/d\" }\n",
	  "auth.oauth2.token_endpoint", "user@ credentials" },
	{ "    auth:\n      user: a\n      oauth2: { provider: yahoo,"
	  " client_id: x }\n", "auth.oauth2", "unknown provider 'yahoo'" },
	{ "    auth:\n      user: a\n      oauth2: { provider: google }\n",
	  "auth.oauth2", "no client_id" },
	{ "    auth:\n      user: a\n      oauth2: { client_id: x }\n",
	  "auth.oauth2", "no token_endpoint" },
	{ "    auth:\n      user: a\n      oauth2: { client_id: x, scope: s,"
	  " token_endpoint: \"https://idp/t\" }\n",
	  "auth.oauth2", "device_authorization_endpoint" },
	{ "    auth:\n      user: a\n      password_file: /p\n"
	  "      oauth2: { provider: google, client_id: x }\n",
	  "auth.password_file", "auth.oauth2 replaces passwords" },
	{ "    auth:\n      user: a\n      master_user: m\n"
	  "      oauth2: { provider: google, client_id: x }\n",
	  "auth.master_user", "auth.oauth2 replaces passwords" },
	{ "    auth:\n      user: a\n      password_file: /p\n"
	  "      mechanism: xoauth2\n", "auth.mechanism", "add oauth2:" },
	{ "    auth:\n      user: a\n      mechanism: plain\n"
	  "      oauth2: { provider: google, client_id: x }\n",
	  "auth.mechanism", "mechanism is auto" },
	{ "    auth:\n      user: a\n      oauth2: { provider: google,"
	  " client_id: x, flow: implicit }\n", "auth.oauth2.flow",
	  "flow is refresh_token" },
	{ "    auth:\n      user: a\n      oauth2: { provider: google,"
	  " client_id: x, flow: client_credentials }\n", "auth.oauth2",
	  "needs the application's secret" },
	{ "    auth:\n      user: a\n      oauth2: { provider: microsoft,"
	  " client_id: x, flow: client_credentials, client_secret_file: /s }\n",
	  "auth.oauth2", "needs the tenant" },
	{ "    auth:\n      user: a\n      oauth2: { provider: microsoft,"
	  " client_id: x, tenant: \"a/b\" }\n", "auth.oauth2.tenant",
	  "not a tenant" },
	{ "    auth:\n      oauth2: { provider: google, client_id: x }\n"
	  "    mailboxes: [ { user: a } ]\n", "auth.oauth2.flow",
	  "set flow: client_credentials" },
	{ "    auth:\n      user: a\n      oauth2: { provider: google,"
	  " client_id: x, secret: y }\n", "auth.oauth2.secret", "unknown key" },
};

static void
test_refusals(void **state)
{
	struct conf_error err;
	struct conf *c = NULL;
	char yaml[2048], key[128];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(yaml, sizeof yaml, "%s%s", HEAD, bad[i].yaml);
		if (load(yaml, &c, &err) == 0) {
			conf_free(c);
			fail_msg("case %zu loaded", i);
		}
		snprintf(key, sizeof key, ": profiles[0].%s: ", bad[i].key);
		if (strstr(err.text, key) == NULL ||
		    strstr(err.text, bad[i].what) == NULL)
			fail_msg("case %zu: %s", i, err.text);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_microsoft_preset),
		cmocka_unit_test(test_microsoft_app_tenant),
		cmocka_unit_test(test_google_override),
		cmocka_unit_test(test_custom_endpoints_batch_app),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
