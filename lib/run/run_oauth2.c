/*
 * run_oauth2.c - sessions of an OAuth2 profile log in with an access token
 * instead of a password.  Token requests of a run go one at a time (a
 * FIFO of waiting sessions), so a batch of app-only mailboxes asks the
 * provider once and the others find the saved token; a token the server
 * refuses is refreshed once and the login tried once more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "oauth2/oauth2.h"
#include "run/run_private.h"
#include "source/source.h"

static void	run_oauth2_next(struct run *);

int
run_oauth2_init(struct run *r)
{
	const struct conf_profile *p = r->p.profile;
	int err;

	if (!p->auth.oauth2.enabled)
		return 0;
	if ((r->oauth2_wait = calloc(r->n_mboxes, sizeof *r->oauth2_wait)) ==
	    NULL)
		return -ENOMEM;
	if ((err = oauth2_token_path(store_root(r->p.store), p->name,
	    r->oauth2_path, sizeof r->oauth2_path)) < 0)
		return err;
	r->oauth2 = r->p.oauth2;
	if (r->oauth2 == NULL) {
		if ((err = oauth2_client_new(r->p.base, &r->oauth2)) < 0)
			return err;
		r->oauth2_own = true;
	}
	return 0;
}

static enum session_fail
run_oauth2_fail(enum oauth2_status st)
{
	switch (st) {
	case OAUTH2_ERR_NETWORK:
		return SESSION_FAIL_CONNECT;
	case OAUTH2_ERR_TLS:
		return SESSION_FAIL_TLS;
	case OAUTH2_ERR_LOCAL:
		return SESSION_FAIL_LOCAL;
	default:
		return SESSION_FAIL_AUTH;
	}
}

static void
run_oauth2_cb(void *arg, struct oauth2_result *res)
{
	struct run *r = arg;
	struct run_session *s = r->oauth2_wait[r->oauth2_head++];
	const struct conf_profile *p = r->p.profile;
	struct source_login login = {
		.user = s->mb->user, .mech = p->auth.mechanism,
	};
	int err;

	r->oauth2_req = NULL;
	if (res->status != OAUTH2_OK) {
		run_session_over(s, run_oauth2_fail(res->status), res->why);
	} else {
		login.oauth2_token = res->tokens.access_token;
		err = source_start(r->p.base, r->p.dns, p, &login,
		    &run_session_ops, s, &s->src);
		if (err < 0) {
			char why[128];

			snprintf(why, sizeof why, "could not start the "
			    "session: %s", strerror(-err));
			run_session_over(s, SESSION_FAIL_LOCAL, why);
		}
	}
	run_oauth2_next(r);
}

/* Ask for the token of the first waiting session, if none is asked. */
static void
run_oauth2_next(struct run *r)
{
	struct run_session *s;
	int err;

	while (r->oauth2_req == NULL && r->oauth2_head < r->oauth2_tail) {
		s = r->oauth2_wait[r->oauth2_head];
		err = oauth2_token_get(r->oauth2, r->p.profile, r->oauth2_path,
		    s->oauth2_retried, run_oauth2_cb, r, &r->oauth2_req);
		if (err == 0)
			return;
		r->oauth2_head++;
		run_session_over(s, SESSION_FAIL_LOCAL, "could not ask for an "
		    "OAuth2 access token: out of memory");
	}
}

void
run_oauth2_login(struct run_session *s)
{
	struct run *r = s->r;

	/* A session waits at most twice (first login, one retry). */
	if (r->oauth2_tail == r->n_mboxes) {
		memmove(r->oauth2_wait, r->oauth2_wait + r->oauth2_head,
		    (r->oauth2_tail - r->oauth2_head) * sizeof *r->oauth2_wait);
		r->oauth2_tail -= r->oauth2_head;
		r->oauth2_head = 0;
	}
	r->oauth2_wait[r->oauth2_tail++] = s;
	run_oauth2_next(r);
}

bool
run_oauth2_retry(struct run_session *s, enum session_fail fail,
    const char *why)
{
	struct run *r = s->r;

	/* Only a refused login, before anything was archived, and once. */
	if (!r->p.profile->auth.oauth2.enabled || fail != SESSION_FAIL_AUTH ||
	    s->oauth2_retried || s->frec != NULL || s->recs != NULL ||
	    r->cancelled)
		return false;
	s->oauth2_retried = true;
	/* The server's own words (its JSON error) go into the protocol. */
	run_event(r, STORE_WARNING, s->mb->user, NULL, 0, "%s; getting a fresh "
	    "OAuth2 access token and logging in once more",
	    why != NULL ? why : "the server refused the OAuth2 access token");
	/* We are inside the source's done(), where freeing it is allowed. */
	source_free(s->src);
	s->src = NULL;
	s->paused = false;
	run_oauth2_login(s);
	return true;
}

/* Sessions still waiting for a token end as cancelled. */
void
run_oauth2_cancel(struct run *r)
{
	if (r->oauth2_req != NULL) {
		oauth2_request_cancel(r->oauth2_req);
		r->oauth2_req = NULL;
	}
	while (r->oauth2_head < r->oauth2_tail)
		run_session_over(r->oauth2_wait[r->oauth2_head++],
		    SESSION_FAIL_CANCELLED, "cancelled while waiting for an "
		    "OAuth2 access token");
}

void
run_oauth2_free(struct run *r)
{
	if (r->oauth2_req != NULL)
		oauth2_request_cancel(r->oauth2_req);
	r->oauth2_req = NULL;
	if (r->oauth2_own)
		oauth2_client_free(r->oauth2);
	r->oauth2 = NULL;
	free(r->oauth2_wait);
	r->oauth2_wait = NULL;
}
