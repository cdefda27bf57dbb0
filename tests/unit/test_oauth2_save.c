/*
 * test_oauth2_save.c - oauth2_token_get writes the token file on a thread
 * and answers only once it is on disk: the answer waits for a held write
 * while the loop goes on, a cancel or oauth2_client_free() during the
 * write still leaves the new refresh token in the file, a waiting or a
 * later request takes the write over instead of refreshing again, and a
 * directory that cannot be written gives OAUTH2_ERR_LOCAL.
 */
#define _GNU_SOURCE	/* asprintf, strcasestr */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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
#include "oauth2/oauth2_private.h"	/* the test hooks */

#define SECRET		"cl1ent-s3cret"
#define OLD_RT		"RT-OLD-4f9a8b"
#define NEW_RT		"RT-NEW-77c1d2"
#define NEW_AT		"AT-NEW-0e5d31"
#define ROTATED		"{\"access_token\":\"" NEW_AT "\",\"expires_in\":3600," \
	"\"refresh_token\":\"" NEW_RT "\"}"
#define REFUSED		"{\"error\":\"invalid_grant\"}"

struct fx {
	char		 dir[64];
	char		 cert[128], key[128], secret[128], path[128];
	struct hsrv	 srv;
	struct event_base *base;
	struct oauth2_client *client;
	struct conf_profile p;
	char		 url[128];
};

static char certdir[64];

static int
group_setup(void **state)
{
	char cmd[512];

	strcpy(certdir, "/tmp/mailstow-test-oauth2s-XXXXXX");
	if (mkdtemp(certdir) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "cd %s && openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem "
	    "-out cert.pem -days 2 -subj /CN=localhost -addext "
	    "subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1",
	    certdir);
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	return system(cmd) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	int fd;

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/mailstow-test-oauth2s-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->cert, sizeof fx->cert, "%s/cert.pem", certdir);
	snprintf(fx->key, sizeof fx->key, "%s/key.pem", certdir);
	snprintf(fx->secret, sizeof fx->secret, "%s/secret", fx->dir);
	assert_int_equal(oauth2_token_path(fx->dir, "alice", fx->path,
	    sizeof fx->path), 0);
	fd = open(fx->secret, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, SECRET "\n", strlen(SECRET) + 1),
	    (ssize_t)strlen(SECRET) + 1);
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
	fx->p.auth.oauth2.scope = "IMAP";
	fx->p.auth.oauth2.ca_file = fx->cert;
	assert_non_null(fx->base = event_base_new());
	assert_int_equal(oauth2_client_new(fx->base, &fx->client), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
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

/* ---- helpers ----------------------------------------------------------- */

struct got {
	struct fx	*fx;
	int		 calls;
	enum oauth2_status status;
	char		 why[512];
	struct oauth2_tokens tokens;
	struct oauth2_tokens on_disk;	/* the file when the answer came */
	int		 disk_rc;
};

static void
got_clear(struct got *g)
{
	oauth2_tokens_clear(&g->tokens);
	oauth2_tokens_clear(&g->on_disk);
}

static void
got_cb(void *arg, struct oauth2_result *res)
{
	struct got *g = arg;

	g->calls++;
	g->status = res->status;
	snprintf(g->why, sizeof g->why, "%s", res->why);
	got_clear(g);
	g->tokens = res->tokens;
	memset(&res->tokens, 0, sizeof res->tokens);
	g->disk_rc = oauth2_tokens_load(g->fx->path, &g->on_disk);
	event_base_loopbreak(g->fx->base);
}

/* Turn the loop for 20 ms. */
static void
spin(struct fx *fx)
{
	struct timeval tv = { 0, 20000 };

	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

static void
run_until(struct fx *fx, struct got *g, int n)
{
	time_t t0 = time(NULL);

	while (g->calls < n) {
		spin(fx);
		if (time(NULL) - t0 > 5)
			fail_msg("no answer within 5 seconds");
	}
}

/* Until `n` saves are unanswered (the grant came back, the write waits). */
static void
run_until_saves(struct fx *fx, size_t n)
{
	time_t t0 = time(NULL);

	while (oauth2_test_saves(fx->client) != n) {
		spin(fx);
		if (time(NULL) - t0 > 5)
			fail_msg("not %zu saves within 5 seconds", n);
	}
}

static void
store(struct fx *fx, const char *at, int64_t expires_at, const char *rt)
{
	struct oauth2_tokens t = { 0 };

	t.access_token = xstrdup_or_null(at);
	t.refresh_token = xstrdup_or_null(rt);
	t.expires_at = expires_at;
	assert_int_equal(oauth2_tokens_save(fx->path, &t), 0);
	oauth2_tokens_clear(&t);
}

static void
script(struct fx *fx, int status, const char *body)
{
	fx->srv.resp[fx->srv.n_resp++] = h_answer(status, "", body);
}

/* The refresh token in the file now. */
static void
assert_file_rt(struct fx *fx, const char *rt)
{
	struct oauth2_tokens t = { 0 };

	assert_int_equal(oauth2_tokens_load(fx->path, &t), 0);
	assert_non_null(t.refresh_token);
	assert_string_equal(t.refresh_token, rt);
	oauth2_tokens_clear(&t);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(*(int *)arg)++;
}

/* ---- tests ------------------------------------------------------------- */

/* No answer while the write is held, and the loop runs meanwhile. */
static void
t_answer_after_file(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };
	struct timeval ms = { 0, 1000 };
	struct event *ev;
	int ticks = 0, i;

	store(fx, "AT-OLD", 1, OLD_RT);
	script(fx, 200, ROTATED);
	oauth2_test_save_hold(fx->client, true);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	run_until_saves(fx, 1);
	assert_non_null(ev = event_new(fx->base, -1, EV_PERSIST, tick,
	    &ticks));
	assert_int_equal(event_add(ev, &ms), 0);
	for (i = 0; i < 5; i++)
		spin(fx);
	event_free(ev);
	assert_true(ticks > 0);
	assert_int_equal(g.calls, 0);
	assert_file_rt(fx, OLD_RT);
	oauth2_test_save_hold(fx->client, false);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_OK);
	assert_string_equal(g.tokens.access_token, NEW_AT);
	/* The callback read the file: the new tokens were there already. */
	assert_int_equal(g.disk_rc, 0);
	assert_string_equal(g.on_disk.refresh_token, NEW_RT);
	assert_string_equal(g.on_disk.access_token, NEW_AT);
	assert_int_equal(oauth2_test_saves(fx->client), 0);
	got_clear(&g);
}

static void
t_cancel_during_save(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };
	struct oauth2_request *req;
	int i;

	store(fx, "AT-OLD", 1, OLD_RT);
	script(fx, 200, ROTATED);
	oauth2_test_save_hold(fx->client, true);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, &req), 0);
	run_until_saves(fx, 1);
	oauth2_request_cancel(req);
	assert_file_rt(fx, OLD_RT);
	oauth2_test_save_hold(fx->client, false);
	run_until_saves(fx, 0);
	assert_file_rt(fx, NEW_RT);
	for (i = 0; i < 3; i++)
		spin(fx);
	assert_int_equal(g.calls, 0);
}

/* The client goes while the write is held: it is finished, unanswered. */
static void
t_free_during_save(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx }, g2 = { .fx = fx };
	int i;

	store(fx, "AT-OLD", 1, OLD_RT);
	script(fx, 200, ROTATED);
	oauth2_test_save_hold(fx->client, true);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	run_until_saves(fx, 1);
	/* A follower waiting on the write goes too. */
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g2, NULL), 0);
	assert_file_rt(fx, OLD_RT);
	oauth2_client_free(fx->client);
	fx->client = NULL;
	assert_file_rt(fx, NEW_RT);
	for (i = 0; i < 3; i++)
		spin(fx);
	assert_int_equal(g.calls, 0);
	assert_int_equal(g2.calls, 0);
	assert_int_equal(h_reqs(&fx->srv), 1);
}

/* The token directory is a regular file: the save fails, said so. */
static void
t_save_fails(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };
	char notdir[100], expect[400];
	int fd;

	snprintf(notdir, sizeof notdir, "%s/notadir", fx->dir);
	assert_true((fd = open(notdir, O_WRONLY | O_CREAT, 0600)) >= 0);
	close(fd);
	snprintf(fx->path, sizeof fx->path, "%s/alice.json", notdir);
	/* client_credentials: a missing file is no reason to stop. */
	fx->p.auth.oauth2.flow = CONF_OAUTH2_CLIENT_CREDENTIALS;
	script(fx, 200, "{\"access_token\":\"" NEW_AT "\"}");
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, NULL), 0);
	run_until(fx, &g, 1);
	assert_int_equal(g.status, OAUTH2_ERR_LOCAL);
	snprintf(expect, sizeof expect, "cannot save the new tokens of "
	    "profile alice to %s: %s; fix the directory", fx->path,
	    strerror(ENOTDIR));
	assert_non_null(strstr(g.why, expect));
	assert_null(g.tokens.access_token);
	assert_null(strstr(g.why, NEW_AT));
	assert_int_equal(h_reqs(&fx->srv), 1);
	got_clear(&g);
}

/* A request arriving during the write waits for it, even after the one
 * that started it is cancelled: no second refresh with the old token. */
static void
t_follower_inherits_save(void **state)
{
	struct fx *fx = *state;
	struct got g1 = { .fx = fx }, g2 = { .fx = fx };
	struct oauth2_request *r1;

	store(fx, "AT-OLD", 1, OLD_RT);
	script(fx, 200, ROTATED);
	script(fx, 400, REFUSED);	/* a second refresh would get this */
	oauth2_test_save_hold(fx->client, true);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g1, &r1), 0);
	run_until_saves(fx, 1);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g2, NULL), 0);
	oauth2_request_cancel(r1);
	oauth2_test_save_hold(fx->client, false);
	run_until(fx, &g2, 1);
	assert_int_equal(g1.calls, 0);
	assert_int_equal(g2.status, OAUTH2_OK);
	assert_string_equal(g2.tokens.access_token, NEW_AT);
	assert_string_equal(g2.on_disk.refresh_token, NEW_RT);
	assert_int_equal(h_reqs(&fx->srv), 1);
	got_clear(&g2);
}

/* The starter is cancelled first; a request after that adopts the write. */
static void
t_orphan_adopted(void **state)
{
	struct fx *fx = *state;
	struct got g1 = { .fx = fx }, g2 = { .fx = fx };
	struct oauth2_request *r1;

	store(fx, "AT-OLD", 1, OLD_RT);
	script(fx, 200, ROTATED);
	script(fx, 400, REFUSED);
	oauth2_test_save_hold(fx->client, true);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g1, &r1), 0);
	run_until_saves(fx, 1);
	oauth2_request_cancel(r1);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g2, NULL), 0);
	oauth2_test_save_hold(fx->client, false);
	run_until(fx, &g2, 1);
	assert_int_equal(g1.calls, 0);
	assert_int_equal(g2.status, OAUTH2_OK);
	assert_string_equal(g2.tokens.access_token, NEW_AT);
	assert_string_equal(g2.on_disk.refresh_token, NEW_RT);
	assert_int_equal(h_reqs(&fx->srv), 1);
	got_clear(&g2);
}

/* Two files at once: both written, each answered with its own. */
static void
t_two_files(void **state)
{
	struct fx *fx = *state;
	struct got g1 = { .fx = fx }, g2 = { .fx = fx };
	struct conf_profile p2 = fx->p;
	char path2[128];
	struct oauth2_tokens t = { 0 };

	p2.name = "bob";
	assert_int_equal(oauth2_token_path(fx->dir, "bob", path2,
	    sizeof path2), 0);
	store(fx, "AT-OLD", 1, OLD_RT);
	t.refresh_token = xstrdup_or_null("RT-BOB");
	assert_int_equal(oauth2_tokens_save(path2, &t), 0);
	oauth2_tokens_clear(&t);
	script(fx, 200, ROTATED);
	script(fx, 200, "{\"access_token\":\"AT-BOB2\",\"refresh_token\":"
	    "\"RT-BOB2\"}");
	oauth2_test_save_hold(fx->client, true);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g1, NULL), 0);
	run_until_saves(fx, 1);
	assert_int_equal(oauth2_token_get(fx->client, &p2, path2, false,
	    got_cb, &g2, NULL), 0);
	run_until_saves(fx, 2);
	oauth2_test_save_hold(fx->client, false);
	run_until(fx, &g1, 1);
	run_until(fx, &g2, 1);
	assert_string_equal(g1.tokens.access_token, NEW_AT);
	assert_string_equal(g2.tokens.access_token, "AT-BOB2");
	assert_file_rt(fx, NEW_RT);
	assert_int_equal(oauth2_tokens_load(path2, &t), 0);
	assert_string_equal(t.refresh_token, "RT-BOB2");
	oauth2_tokens_clear(&t);
	got_clear(&g1);
	got_clear(&g2);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(t_answer_after_file),
		T(t_cancel_during_save),
		T(t_free_during_save),
		T(t_save_fails),
		T(t_follower_inherits_save),
		T(t_orphan_adopted),
		T(t_two_files),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
