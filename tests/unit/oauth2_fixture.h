/*
 * oauth2_fixture.h - what the token endpoint client tests share: a
 * certificate for 127.0.0.1 made once per binary by the openssl command,
 * and per test a fresh directory with the client secret file (0600), an
 * HTTPS server in a thread (https_server.h), a profile "alice" pointing
 * at it, an event base and an oauth2 client; tokens stored in the file;
 * a callback keeping what a request answered (and the file as it was
 * then) while checking that `why` holds none of the test's secrets.
 * Static functions: each test binary includes it once, after defining
 * _GNU_SOURCE (https_server.h), OAUTH2_FX_SECRETS (the strings no `why`
 * may hold) and OAUTH2_FX_TAG (the temporary directories' names say
 * which test left them behind).
 */
#ifndef MAILSTOW_TEST_OAUTH2_FIXTURE_H
#define MAILSTOW_TEST_OAUTH2_FIXTURE_H

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include "base/util.h"
#include "https_server.h"
#include "oauth2/oauth2.h"

/* Not every includer uses every helper. */
#define OAUTH2_FX_FN	static __attribute__((unused))

#ifndef OAUTH2_FX_TAG
#define OAUTH2_FX_TAG	"oauth2"
#endif
#define OAUTH2_FX_TEMPLATE	"/tmp/mailstow-test-" OAUTH2_FX_TAG "-XXXXXX"

#ifndef OAUTH2_FX_SECRETS
#error "define OAUTH2_FX_SECRETS, the strings no `why` may hold"
#endif

static const char *const oauth2_fx_secrets[] = { OAUTH2_FX_SECRETS };

struct fx {
	char		 dir[64];
	char		 cert[128], key[128], secret[128], path[128];
	struct hsrv	 srv;
	struct event_base *base;
	struct oauth2_client *client;
	struct conf_profile p;
	char		 url[128];
	char		 dev_url[128];	/* set by the device flow tests */
};

static char certdir[64];

OAUTH2_FX_FN int
oauth2_fx_group_setup(void **state)
{
	char cmd[512];

	snprintf(certdir, sizeof certdir, "%s", OAUTH2_FX_TEMPLATE);
	if (mkdtemp(certdir) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "cd %s && openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem "
	    "-out cert.pem -days 2 -subj /CN=localhost -addext "
	    "subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1",
	    certdir);
	/* Proxies from the environment must not catch 127.0.0.1. */
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	return system(cmd) == 0 ? 0 : -1;
}

OAUTH2_FX_FN int
oauth2_fx_group_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The per-test state, the client secret file holding `secret` and a
 * newline, the profile asking for `scope`; *state is the struct fx. */
OAUTH2_FX_FN int
oauth2_fx_setup(void **state, const char *secret, char *scope)
{
	struct fx *fx = calloc(1, sizeof *fx);
	size_t len = strlen(secret);
	int fd;

	assert_non_null(fx);
	snprintf(fx->dir, sizeof fx->dir, "%s", OAUTH2_FX_TEMPLATE);
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->cert, sizeof fx->cert, "%s/cert.pem", certdir);
	snprintf(fx->key, sizeof fx->key, "%s/key.pem", certdir);
	snprintf(fx->secret, sizeof fx->secret, "%s/secret", fx->dir);
	assert_int_equal(oauth2_token_path(fx->dir, "alice", fx->path,
	    sizeof fx->path), 0);
	fd = open(fx->secret, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, secret, len), (ssize_t)len);
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	h_start(&fx->srv, fx->cert, fx->key);
	snprintf(fx->url, sizeof fx->url, "https://127.0.0.1:%u/token",
	    fx->srv.port);
	fx->p.name = "alice";
	fx->p.auth.user = "alice@example.com";
	fx->p.auth.oauth2.enabled = true;
	fx->p.auth.oauth2.client_id = "client-1";
	fx->p.auth.oauth2.client_secret_file = fx->secret;
	fx->p.auth.oauth2.token_endpoint = fx->url;
	fx->p.auth.oauth2.scope = scope;
	fx->p.auth.oauth2.ca_file = fx->cert;
	assert_non_null(fx->base = event_base_new());
	assert_int_equal(oauth2_client_new(fx->base, &fx->client), 0);
	*state = fx;
	return 0;
}

OAUTH2_FX_FN int
oauth2_fx_teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];
	int i;

	oauth2_client_free(fx->client);
	event_base_free(fx->base);
	h_stop(&fx->srv);
	for (i = 0; i < 4; i++)
		free((char *)fx->srv.resp[i]);
	snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

/* Write these tokens to the profile's token file. */
OAUTH2_FX_FN void
store(struct fx *fx, const char *at, int64_t expires_at, const char *rt)
{
	struct oauth2_tokens t = { 0 };

	t.access_token = xstrdup_or_null(at);
	t.refresh_token = xstrdup_or_null(rt);
	t.expires_at = expires_at;
	assert_int_equal(oauth2_tokens_save(fx->path, &t), 0);
	oauth2_tokens_clear(&t);
}

/* ---- answers ----------------------------------------------------------- */

struct got {
	struct fx	*fx;
	int		 calls;
	enum oauth2_status status;
	char		 why[512];
	struct oauth2_tokens tokens;
	struct oauth2_tokens on_disk;	/* the file when the answer came */
	int		 disk_rc;
	struct oauth2_device device;
};

OAUTH2_FX_FN void
check_why(const char *why)
{
	size_t i;

	for (i = 0; i < NELEM(oauth2_fx_secrets); i++)
		if (strstr(why, oauth2_fx_secrets[i]) != NULL)
			fail_msg("secret %s in why: %s", oauth2_fx_secrets[i],
			    why);
}

OAUTH2_FX_FN void
got_clear(struct got *g)
{
	oauth2_tokens_clear(&g->tokens);
	oauth2_tokens_clear(&g->on_disk);
	oauth2_device_clear(&g->device);
}

OAUTH2_FX_FN void
got_cb(void *arg, struct oauth2_result *res)
{
	struct got *g = arg;

	g->calls++;
	g->status = res->status;
	snprintf(g->why, sizeof g->why, "%s", res->why);
	check_why(res->why);
	got_clear(g);
	/* Move the strings out, as the contract allows. */
	g->tokens = res->tokens;
	memset(&res->tokens, 0, sizeof res->tokens);
	g->device = res->device;
	memset(&res->device, 0, sizeof res->device);
	g->disk_rc = oauth2_tokens_load(g->fx->path, &g->on_disk);
	event_base_loopbreak(g->fx->base);
}

/* Turn the loop for 20 ms. */
OAUTH2_FX_FN void
spin(struct fx *fx)
{
	struct timeval tv = { 0, 20000 };

	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

/* Run the loop until `n` answers arrived, at most 5 seconds. */
OAUTH2_FX_FN void
run_until(struct fx *fx, struct got *g, int n)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (g->calls < n) {
		spin(fx);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 5)
			fail_msg("no answer within 5 seconds");
	}
}

#endif
