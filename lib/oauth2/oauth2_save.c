/*
 * oauth2_save.c - oauth2_token_get's write of a token file, off the loop
 * thread (DESIGN.md rule 5: its fsyncs may take tens of milliseconds).
 * One thread per client, started at the first save, writes the files in
 * the order asked; a pipe wakes the loop, which answers the request that
 * waits.  A write once begun is always finished: a cancelled request only
 * loses its answer, and oauth2_client_free() waits for the writes left.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/worker.h"
#include "oauth2_private.h"

/* One token file to write. */
struct oauth2_save {
	struct worker_job	 job;		/* the worker's link */
	struct oauth2_save	*anext;		/* sv->all; loop thread only */
	struct oauth2_request	*req;		/* who waits; NULL: nobody.
						 * Loop thread only. */
	char			*path;		/* both threads read it */
	struct oauth2_tokens	 tokens;	/* the thread's until done */
	int			 rc;		/* the save's, set by the thread */
};

/*
 * The worker (base/worker.c) owns the queue; `all` (every save not yet
 * answered, in order) and the `req` of each belong to the loop thread.
 */
struct oauth2_saver {
	struct worker		*w;
	struct oauth2_save	*all;
};

static void
oauth2_save_free(struct oauth2_save *s)
{
	oauth2_tokens_clear(&s->tokens);
	free(s->path);
	free(s);
}

/* On the thread: write one file asked for (worker_free() runs the rest). */
static void
oauth2_save_run(struct worker_job *j, void *arg)
{
	struct oauth2_save *s = WORKER_JOB_OF(j, struct oauth2_save, job);

	s->rc = oauth2_tokens_save(s->path, &s->tokens);
}

/* A write nobody waits for any more failed: the only one to tell is the
 * log, and the new refresh token may be lost with it. */
static void
oauth2_save_orphan_failed(const struct oauth2_save *s)
{
	log_err("oauth2: cannot save new tokens to %s: %s; fix the directory, "
	    "then run `mailstow oauth2 login` for that profile if its next "
	    "run is refused", s->path, strerror(-s->rc));
}

static void
oauth2_save_unlink(struct oauth2_saver *sv, struct oauth2_save *s)
{
	struct oauth2_save **pp;

	for (pp = &sv->all; *pp != NULL; pp = &(*pp)->anext)
		if (*pp == s) {
			*pp = s->anext;
			break;
		}
}

/* On the loop: answer the request whose file is written. */
static void
oauth2_save_done(struct worker_job *j, void *arg)
{
	struct oauth2_save *s = WORKER_JOB_OF(j, struct oauth2_save, job);
	struct oauth2_request *req;

	oauth2_save_unlink(arg, s);
	/* Only zero timers are armed from here: no callback runs inside. */
	if ((req = s->req) != NULL) {
		req->save = NULL;
		oauth2_get_save_done(req, &s->tokens, s->rc);
	} else if (s->rc < 0)
		oauth2_save_orphan_failed(s);
	oauth2_save_free(s);
}

/* oauth2_client_free(): the file is written, but nobody is answered. */
static void
oauth2_save_drop(struct worker_job *j, void *arg)
{
	struct oauth2_save *s = WORKER_JOB_OF(j, struct oauth2_save, job);

	oauth2_save_unlink(arg, s);
	if (s->req != NULL)
		s->req->save = NULL;
	if (s->rc < 0)
		oauth2_save_orphan_failed(s);
	oauth2_save_free(s);
}

static const struct worker_ops oauth2_saver_ops = {
	.run = oauth2_save_run,
	.done = oauth2_save_done,
	.drop = oauth2_save_drop,
};

/* The client's saver, started at the first use. */
static int
oauth2_saver_get(struct oauth2_client *c, struct oauth2_saver **ret)
{
	struct oauth2_saver **svp = oauth2_client_saver(c), *sv;
	int r;

	if ((sv = *svp) != NULL) {
		*ret = sv;
		return 0;
	}
	if ((sv = calloc(1, sizeof *sv)) == NULL)
		return -ENOMEM;
	if ((r = worker_start(oauth2_client_base(c), &oauth2_saver_ops, sv,
	    &sv->w)) < 0) {
		free(sv);
		return r;
	}
	*svp = sv;
	*ret = sv;
	return 0;
}

int
oauth2_save_start(struct oauth2_request *req, struct oauth2_tokens *t)
{
	struct oauth2_saver *sv;
	struct oauth2_save *s, **pp;
	int r;

	if ((r = oauth2_saver_get(req->c, &sv)) < 0)
		return r;
	if ((s = calloc(1, sizeof *s)) == NULL ||
	    (s->path = strdup(req->path)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->tokens = *t;
	memset(t, 0, sizeof *t);
	s->req = req;
	req->save = s;
	for (pp = &sv->all; *pp != NULL; pp = &(*pp)->anext)
		;
	*pp = s;
	worker_push(sv->w, &s->job);
	return 0;
}

void
oauth2_save_detach(struct oauth2_request *req, struct oauth2_request *heir)
{
	struct oauth2_save *s = req->save;

	if (s == NULL)
		return;
	req->save = NULL;
	/* Without an heir the file is still written, only not answered. */
	s->req = heir;
	if (heir != NULL)
		heir->save = s;
}

/*
 * A save whose request was cancelled still carries the newest tokens,
 * and until it is done the file holds a refresh token the provider may
 * have revoked: a request for the same file waits for it instead.
 */
bool
oauth2_save_adopt(struct oauth2_request *req)
{
	struct oauth2_saver *sv = *oauth2_client_saver(req->c);
	struct oauth2_save *s, *last = NULL;

	if (sv == NULL)
		return false;
	for (s = sv->all; s != NULL; s = s->anext)
		if (strcmp(s->path, req->path) == 0)
			last = s;
	if (last == NULL || last->req != NULL)
		return false;
	last->req = req;
	req->save = last;
	return true;
}

/*
 * On the loop, after every request is cancelled: the writes finish, and
 * oauth2_save_drop() takes each save left unanswered (all of `all`).
 */
void
oauth2_saver_free(struct oauth2_saver *sv)
{
	if (sv == NULL)
		return;
	worker_free(sv->w);
	free(sv);
}

void
oauth2_test_save_hold(struct oauth2_client *c, bool hold)
{
	struct oauth2_saver *sv;

	if (oauth2_saver_get(c, &sv) < 0)
		return;
	worker_hold(sv->w, hold);
}

size_t
oauth2_test_saves(struct oauth2_client *c)
{
	struct oauth2_saver *sv = *oauth2_client_saver(c);
	struct oauth2_save *s;
	size_t n = 0;

	if (sv == NULL)
		return 0;
	for (s = sv->all; s != NULL; s = s->anext)
		n++;
	return n;
}
