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

#include "base/log.h"
#include "base/util.h"
#include "oauth2/oauth2.h"
#include "oauth2/oauth2_private.h"	/* the test hooks */

#define SECRET		"cl1ent-s3cret"
#define OLD_RT		"RT-OLD-4f9a8b"
#define NEW_RT		"RT-NEW-77c1d2"
#define NEW_AT		"AT-NEW-0e5d31"
#define ROTATED		"{\"access_token\":\"" NEW_AT "\",\"expires_in\":3600," \
	"\"refresh_token\":\"" NEW_RT "\"}"
#define REFUSED		"{\"error\":\"invalid_grant\"}"

#define OAUTH2_FX_SECRETS	SECRET, OLD_RT, NEW_RT, NEW_AT
#define OAUTH2_FX_TAG		"oauth2s"
#include "oauth2_fixture.h"

static int
setup(void **state)
{
	return oauth2_fx_setup(state, SECRET, "IMAP");
}

/* ---- helpers ----------------------------------------------------------- */

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

/* An expired access token and OLD_RT in the file, a refresh for `g`
 * (its answers scripted before), its grant back and its write held. */
static void
refresh_held(struct fx *fx, struct got *g, struct oauth2_request **req)
{
	store(fx, "AT-OLD", 1, OLD_RT);
	oauth2_test_save_hold(fx->client, true);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, g, req), 0);
	run_until_saves(fx, 1);
}

/* The write released, `g2` gets what `g1`'s refresh wrote, `g1` nothing,
 * and the server saw that one refresh only. */
static void
assert_inherited(struct fx *fx, struct got *g1, struct got *g2)
{
	oauth2_test_save_hold(fx->client, false);
	run_until(fx, g2, 1);
	assert_int_equal(g1->calls, 0);
	assert_int_equal(g2->status, OAUTH2_OK);
	assert_string_equal(g2->tokens.access_token, NEW_AT);
	assert_string_equal(g2->on_disk.refresh_token, NEW_RT);
	assert_int_equal(h_reqs(&fx->srv), 1);
	got_clear(g2);
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

	script(fx, 200, ROTATED);
	refresh_held(fx, &g, NULL);
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

	script(fx, 200, ROTATED);
	refresh_held(fx, &g, &req);
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

	script(fx, 200, ROTATED);
	refresh_held(fx, &g, NULL);
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

	script(fx, 200, ROTATED);
	script(fx, 400, REFUSED);	/* a second refresh would get this */
	refresh_held(fx, &g1, &r1);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g2, NULL), 0);
	oauth2_request_cancel(r1);
	assert_inherited(fx, &g1, &g2);
}

/* The starter is cancelled first; a request after that adopts the write. */
static void
t_orphan_adopted(void **state)
{
	struct fx *fx = *state;
	struct got g1 = { .fx = fx }, g2 = { .fx = fx };
	struct oauth2_request *r1;

	script(fx, 200, ROTATED);
	script(fx, 400, REFUSED);
	refresh_held(fx, &g1, &r1);
	oauth2_request_cancel(r1);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g2, NULL), 0);
	assert_inherited(fx, &g1, &g2);
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
	t.refresh_token = xstrdup_or_null("RT-BOB");
	assert_int_equal(oauth2_tokens_save(path2, &t), 0);
	oauth2_tokens_clear(&t);
	script(fx, 200, ROTATED);
	script(fx, 200, "{\"access_token\":\"AT-BOB2\",\"refresh_token\":"
	    "\"RT-BOB2\"}");
	refresh_held(fx, &g1, NULL);
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

static void
capture_err(enum log_level level, const char *line, void *arg)
{
	char *buf = arg;

	if (level == LOG_LVL_ERR && buf[0] == '\0')
		snprintf(buf, 512, "%s", line);
}

/* A failed save whose request was cancelled has nobody to answer: it
 * is logged as an error that says what to do, not dropped. */
static void
t_orphan_save_fails_logged(void **state)
{
	struct fx *fx = *state;
	struct got g = { .fx = fx };
	struct oauth2_request *req;
	char notdir[100], line[512] = "";
	int fd;

	snprintf(notdir, sizeof notdir, "%s/notadir", fx->dir);
	assert_true((fd = open(notdir, O_WRONLY | O_CREAT, 0600)) >= 0);
	close(fd);
	snprintf(fx->path, sizeof fx->path, "%s/alice.json", notdir);
	fx->p.auth.oauth2.flow = CONF_OAUTH2_CLIENT_CREDENTIALS;
	script(fx, 200, "{\"access_token\":\"" NEW_AT "\"}");
	oauth2_test_save_hold(fx->client, true);
	assert_int_equal(oauth2_token_get(fx->client, &fx->p, fx->path, false,
	    got_cb, &g, &req), 0);
	run_until_saves(fx, 1);
	oauth2_request_cancel(req);
	log_set_sink(capture_err, line);
	oauth2_test_save_hold(fx->client, false);
	run_until_saves(fx, 0);
	log_set_sink(NULL, NULL);
	assert_int_equal(g.calls, 0);
	assert_non_null(strstr(line, "cannot save new tokens to"));
	assert_non_null(strstr(line, "mailstow oauth2 login"));
	assert_null(strstr(line, NEW_AT));
}

#define T(f)	\
	cmocka_unit_test_setup_teardown(f, setup, oauth2_fx_teardown)

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
		T(t_orphan_save_fails_logged),
	};

	return cmocka_run_group_tests(tests, oauth2_fx_group_setup,
	    oauth2_fx_group_teardown);
}
