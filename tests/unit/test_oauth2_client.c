/*
 * test_oauth2_client.c - the token endpoint client against an HTTPS
 * server in a thread of this process (OpenSSL on 127.0.0.1, certificate
 * made by the openssl command at test time): refresh with rotation stored
 * before the answer, refused grants and what `why` says, oversized and
 * redirected answers, an untrusted certificate, cancel, the device flow,
 * client_credentials, and one refresh for two waiting callers.  Every
 * `why` produced is checked for the secrets the tests use.
 */
#define _GNU_SOURCE	/* asprintf, strcasestr */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/util.h"
#include "oauth2/oauth2.h"

#define SECRET		"cl1ent-s3cret&=+"
#define OLD_RT		"RT-OLD-4f9a8b"
#define NEW_RT		"RT-NEW-77c1d2"
#define NEW_AT		"AT-NEW-0e5d31"
#define DEV_CODE	"DEVCODE-91ab"

#define OAUTH2_FX_SECRETS	SECRET, OLD_RT, NEW_RT, NEW_AT, DEV_CODE, \
	"cl1ent-s3cret"
#define OAUTH2_FX_TAG		"oauth2c"
#include "oauth2_fixture.h"

/* ---- fixture ----------------------------------------------------------- */

/* The shared one, and the device authorization endpoint. */
static int
setup(void **state)
{
	struct fx *fx;

	oauth2_fx_setup(state, SECRET, "offline_access https://x.example/IMAP");
	fx = *state;
	snprintf(fx->dev_url, sizeof fx->dev_url,
	    "https://127.0.0.1:%u/device", fx->srv.port);
	fx->p.auth.oauth2.device_authorization_endpoint = fx->dev_url;
	return 0;
}

static void
script(struct fx *fx, int status, const char *extra, const char *body)
{
	fx->srv.resp[fx->srv.n_resp++] = h_answer(status, extra, body);
}

/* ---- tests ------------------------------------------------------------- */

static void
t_refresh_rotates(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	store(fx, "AT-OLD", time(NULL) - 10, OLD_RT);
	script(fx, 200, "", "{\"access_token\":\"" NEW_AT "\",\"token_type\":"
	    "\"Bearer\",\"expires_in\":3600,\"refresh_token\":\"" NEW_RT
	    "\"}");
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	assert_int_equal(g.calls, 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_OK);
	assert_string_equal(g.tokens.access_token, NEW_AT);
	assert_string_equal(g.tokens.refresh_token, NEW_RT);
	assert_true(g.tokens.expires_at >= time(NULL) + 3590);
	/* On disk before the callback ran. */
	assert_int_equal(g.disk_rc, 0);
	assert_string_equal(g.on_disk.refresh_token, NEW_RT);
	assert_string_equal(g.on_disk.access_token, NEW_AT);
	assert_string_equal(g.on_disk.scope, fx->p.auth.oauth2.scope);
	/* The form, every value escaped, the secret without its newline. */
	assert_string_equal(fx->srv.body[0], "grant_type=refresh_token"
	    "&refresh_token=" OLD_RT "&scope=offline_access%20https%3A%2F%2F"
	    "x.example%2FIMAP&client_id=client-1&client_secret="
	    "cl1ent-s3cret%26%3D%2B");
	got_clear(&g);
}

static void
t_refresh_keeps_unrotated(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	store(fx, "AT-OLD", time(NULL) + 60, OLD_RT);
	script(fx, 200, "", "{\"access_token\":\"" NEW_AT "\",\"scope\":"
	    "\"IMAP\"}");
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_OK);
	assert_string_equal(g.on_disk.refresh_token, OLD_RT);
	assert_string_equal(g.on_disk.access_token, NEW_AT);
	assert_string_equal(g.on_disk.scope, "IMAP");
	got_clear(&g);
}

static void
t_cached(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	store(fx, "AT-VALID", time(NULL) + 3000, OLD_RT);
	script(fx, 500, "", "{}");
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	assert_int_equal(g.calls, 0);	/* never from inside the call */
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_OK);
	assert_string_equal(g.tokens.access_token, "AT-VALID");
	assert_int_equal(h_reqs(&fx->srv), 0);
	got_clear(&g);

	/* force: the server refused it, so refresh anyway. */
	memset(&g, 0, sizeof g);
	g.fx = fx;
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, true,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(h_reqs(&fx->srv), 1);
	assert_int_equal(g.status, OAUTH2_ERR_NETWORK);
	assert_non_null(strstr(g.why, "HTTP 500"));
	got_clear(&g);
}

static void
t_invalid_grant(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	store(fx, NULL, 0, OLD_RT);
	/* A server that echoes the secrets must not get them into `why`. */
	script(fx, 400, "", "{\"error\":\"invalid_grant\",\"error_description\""
	    ":\"AADSTS70008: token " OLD_RT " of cl1ent-s3cret&=+ expired\\n"
	    "\\u001b[31m\"}");
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_LOGIN);
	assert_non_null(strstr(g.why, "run `mailstow oauth2 login alice`"));
	assert_non_null(strstr(g.why, "invalid_grant"));
	assert_non_null(strstr(g.why, "AADSTS70008"));
	assert_non_null(strstr(g.why, "\\x0a\\x1b"));
	/* The stored tokens are left as they were. */
	assert_string_equal(g.on_disk.refresh_token, OLD_RT);
	got_clear(&g);
}

static void
t_no_tokens(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_LOGIN);
	assert_non_null(strstr(g.why, "mailstow oauth2 login alice"));
	got_clear(&g);

	/* A file with an expired access token and no refresh token. */
	memset(&g, 0, sizeof g);
	g.fx = fx;
	store(fx, "AT", 1, NULL);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_LOGIN);
	assert_non_null(strstr(g.why, "no refresh token"));
	assert_int_equal(h_reqs(&fx->srv), 0);
	got_clear(&g);
}

static void
t_errors_mapped(void **state)
{
	static const struct {
		int http;
		const char *body;
		enum oauth2_status st;
		const char *why;
	} cases[] = {
		{ 401, "{\"error\":\"invalid_client\"}", OAUTH2_ERR_CLIENT,
		    "check auth.oauth2.client_id" },
		{ 400, "{\"error\":\"invalid_scope\"}", OAUTH2_ERR_CLIENT,
		    "check auth.oauth2.scope" },
		{ 400, "{\"error\":\"bogus\"}", OAUTH2_ERR_PROTOCOL, "bogus" },
		{ 404, "<html>", OAUTH2_ERR_PROTOCOL, "HTTP 404" },
		{ 503, "{\"error\":\"temporarily_unavailable\"}",
		    OAUTH2_ERR_NETWORK, "HTTP 503" },
		{ 200, "{\"access_token\":\"a b\"}", OAUTH2_ERR_PROTOCOL,
		    "access_token holds bytes" },
		{ 200, "not json", OAUTH2_ERR_PROTOCOL, "malformed" },
	};
	struct fx *fx = *state;
	struct got g;
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		memset(&g, 0, sizeof g);
		g.fx = fx;
		fx->srv.n_resp = 0;
		free((char *)fx->srv.resp[0]);
		fx->srv.resp[0] = NULL;
		pthread_mutex_lock(&fx->srv.mu);
		fx->srv.n_reqs = 0;
		pthread_mutex_unlock(&fx->srv.mu);
		script(fx, cases[i].http, "", cases[i].body);
		assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT,
		    got_cb, &g, NULL), 0);
		run_until(fx, &g, 1);
		if (g.status != cases[i].st ||
		    strstr(g.why, cases[i].why) == NULL)
			fail_msg("case %zu: %s: %s", i,
			    oauth2_status_name(g.status), g.why);
		got_clear(&g);
	}
}

static void
t_oversized(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };
	size_t n = OAUTH2_MAX_RESPONSE + 1000;
	char *body;

	assert_non_null(body = malloc(n + 1));
	memset(body, ' ', n);
	memcpy(body, "{\"access_token\":\"x\"}", 20);
	body[n] = '\0';
	script(fx, 200, "", body);
	free(body);
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_PROTOCOL);
	assert_non_null(strstr(g.why, "more than 65536 bytes"));
	got_clear(&g);
}

static void
t_redirect_not_followed(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };
	char loc[200];

	snprintf(loc, sizeof loc, "Location: https://127.0.0.1:%u/other\r\n",
	    fx->srv.port);
	script(fx, 302, loc, "{\"access_token\":\"x\"}");
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_PROTOCOL);
	assert_non_null(strstr(g.why, "HTTP 302"));
	assert_non_null(strstr(g.why, "not followed"));
	/* Give a follow the time it would take; it must not come. */
	usleep(200000);
	assert_int_equal(h_reqs(&fx->srv), 1);
	got_clear(&g);
}

static void
t_untrusted(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	fx->p.auth.oauth2.ca_file = NULL;	/* the system store */
	script(fx, 200, "", "{\"access_token\":\"x\"}");
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_TLS);
	assert_non_null(strstr(g.why, "check auth.oauth2.ca_file or the "
	    "system CA store"));
	assert_int_equal(h_reqs(&fx->srv), 0);
	got_clear(&g);
}

static void
t_unreachable(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	/* A port nobody listens on: connection refused. */
	snprintf(fx->url, sizeof fx->url, "https://127.0.0.1:1/token");
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_NETWORK);
	got_clear(&g);

	/* http:// is refused before any byte is sent. */
	memset(&g, 0, sizeof g);
	g.fx = fx;
	snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%u/token",
	    fx->srv.port);
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_CLIENT);
	assert_int_equal(h_reqs(&fx->srv), 0);
	got_clear(&g);
}

static void
t_cancel(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx }, g2 = { .fx = fx };
	struct oauth2_request *req;
	struct timeval tv = { 0, 300000 };

	fx->srv.silent = true;
	script(fx, 200, "", "{\"access_token\":\"x\"}");
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g, &req), 0);
	/* Let it connect and send, then cancel. */
	while (h_reqs(&fx->srv) == 0)
		spin(fx);
	oauth2_request_cancel(req);
	/* A second one is left pending for oauth2_client_free(). */
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g2, NULL), 0);
	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
	assert_int_equal(g.calls, 0);
	assert_int_equal(g2.calls, 0);
	oauth2_client_free(fx->client);
	fx->client = NULL;
	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
	assert_int_equal(g2.calls, 0);
}

static void
t_cancel_cached(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };
	struct oauth2_request *req;
	struct timeval tv = { 0, 50000 };

	store(fx, "AT-VALID", time(NULL) + 3000, OLD_RT);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, &req), 0);
	oauth2_request_cancel(req);
	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
	assert_int_equal(g.calls, 0);
}

/* Two callers, one expired token: one refresh, both answered. */
static void
t_one_refresh_for_two(void **state)
{
	struct fx *fx = *state;
	struct got g1 = { .fx = fx }, g2 = { .fx = fx }, g3 = { .fx = fx };
	struct oauth2_request *r1;

	store(fx, "AT-OLD", 1, OLD_RT);
	script(fx, 200, "", "{\"access_token\":\"" NEW_AT "\","
	    "\"refresh_token\":\"" NEW_RT "\"}");
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g1, &r1), 0);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g2, NULL), 0);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, true,
	    got_cb, &g3, NULL), 0);
	/* The first caller gives up; the others still get the refresh. */
	oauth2_request_cancel(r1);
	run_until(fx, &g2, 1);
	run_until(fx, &g3, 1);
	assert_int_equal(g1.calls, 0);
	assert_int_equal(g2.status, OAUTH2_OK);
	assert_int_equal(g3.status, OAUTH2_OK);
	assert_string_equal(g2.tokens.access_token, NEW_AT);
	assert_string_equal(g3.tokens.access_token, NEW_AT);
	assert_string_equal(g3.on_disk.refresh_token, NEW_RT);
	assert_int_equal(h_reqs(&fx->srv), 1);
	got_clear(&g2);
	got_clear(&g3);
}

static void
t_client_credentials(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	fx->p.auth.oauth2.flow = CONF_OAUTH2_CLIENT_CREDENTIALS;
	script(fx, 200, "", "{\"access_token\":\"" NEW_AT "\","
	    "\"expires_in\":600}");
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_OK);
	assert_string_equal(g.on_disk.access_token, NEW_AT);
	assert_null(g.on_disk.refresh_token);
	assert_string_equal(fx->srv.body[0], "grant_type=client_credentials"
	    "&scope=offline_access%20https%3A%2F%2Fx.example%2FIMAP"
	    "&client_id=client-1&client_secret=cl1ent-s3cret%26%3D%2B");
	got_clear(&g);
}

static void
t_device_flow(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };

	script(fx, 200, "", "{\"device_code\":\"" DEV_CODE "\",\"user_code\":"
	    "\"WDJB-MJHT\",\"verification_uri\":\"https://example.com/dev\","
	    "\"expires_in\":900}");
	script(fx, 400, "", "{\"error\":\"authorization_pending\"}");
	script(fx, 400, "", "{\"error\":\"slow_down\"}");
	script(fx, 200, "", "{\"access_token\":\"" NEW_AT "\","
	    "\"refresh_token\":\"" NEW_RT "\"}");
	assert_int_equal(oauth2_device_start(fx->client, &fx->p, got_cb, &g,
	    NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_OK);
	assert_string_equal(g.device.device_code, DEV_CODE);
	assert_string_equal(g.device.user_code, "WDJB-MJHT");
	assert_int_equal(g.device.interval, 5);
	/* RFC 8628 3.1: a confidential client authenticates here too. */
	assert_string_equal(fx->srv.body[0], "scope=offline_access%20https"
	    "%3A%2F%2Fx.example%2FIMAP&client_id=client-1"
	    "&client_secret=cl1ent-s3cret%26%3D%2B");
	assert_int_equal(oauth2_device_poll(fx->client, &fx->p, DEV_CODE,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 2);
	assert_int_equal(g.status, OAUTH2_ERR_PENDING);
	assert_int_equal(oauth2_device_poll(fx->client, &fx->p, DEV_CODE,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 3);
	assert_int_equal(g.status, OAUTH2_ERR_SLOW_DOWN);
	assert_int_equal(oauth2_device_poll(fx->client, &fx->p, DEV_CODE,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 4);
	assert_int_equal(g.status, OAUTH2_OK);
	assert_string_equal(g.tokens.refresh_token, NEW_RT);
	assert_string_equal(fx->srv.body[3], "grant_type=urn%3Aietf%3Aparams"
	    "%3Aoauth%3Agrant-type%3Adevice_code&device_code=" DEV_CODE
	    "&client_id=client-1&client_secret=cl1ent-s3cret%26%3D%2B");
	got_clear(&g);
}

static void
t_secret_file_refused(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };
	char expect[300];

	assert_int_equal(chmod(fx->secret, 0640), 0);
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g, NULL), 0);
	assert_int_equal(g.calls, 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_LOCAL);
	snprintf(expect, sizeof expect, "chmod 600 %s", fx->secret);
	assert_non_null(strstr(g.why, expect));
	assert_int_equal(h_reqs(&fx->srv), 0);
	got_clear(&g);

	/* Missing configuration is refused at the call, no callback. */
	fx->p.auth.oauth2.token_endpoint = NULL;
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, OLD_RT, got_cb,
	    &g, NULL), -EINVAL);
	fx->p.auth.oauth2.token_endpoint = fx->url;
	assert_int_equal(oauth2_refresh(fx->client, &fx->p, "", got_cb, &g,
	    NULL), -EINVAL);
}

#define T(f)	\
	cmocka_unit_test_setup_teardown(f, setup, oauth2_fx_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(t_refresh_rotates),
		T(t_refresh_keeps_unrotated),
		T(t_cached),
		T(t_invalid_grant),
		T(t_no_tokens),
		T(t_errors_mapped),
		T(t_oversized),
		T(t_redirect_not_followed),
		T(t_untrusted),
		T(t_unreachable),
		T(t_cancel),
		T(t_cancel_cached),
		T(t_one_refresh_for_two),
		T(t_client_credentials),
		T(t_device_flow),
		T(t_secret_file_refused),
	};

	return cmocka_run_group_tests(tests, oauth2_fx_group_setup,
	    oauth2_fx_group_teardown);
}
