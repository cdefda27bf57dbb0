/*
 * oauth2_save.c - oauth2_token_get's write of a token file, off the loop
 * thread (DESIGN.md rule 5: its fsyncs may take tens of milliseconds).
 * One thread per client, started at the first save, writes the files in
 * the order asked; a pipe wakes the loop, which answers the request that
 * waits.  A write once begun is always finished: a cancelled request only
 * loses its answer, and oauth2_client_free() waits for the writes left.
 */
#define _GNU_SOURCE	/* pipe2() */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/log.h"
#include "oauth2_private.h"

/* One token file to write. */
struct oauth2_save {
	struct oauth2_save	*next;		/* todo or done; under mu */
	struct oauth2_save	*anext;		/* sv->all; loop thread only */
	struct oauth2_request	*req;		/* who waits; NULL: nobody.
						 * Loop thread only. */
	char			*path;		/* both threads read it */
	struct oauth2_tokens	 tokens;	/* the thread's until done */
	int			 rc;		/* the save's, set by the thread */
};

/*
 * `mu` guards todo, done, stop and hold; it is never held across the
 * write itself.  `all` (every save not yet answered, in order) and the
 * `req` of each belong to the loop thread.
 */
struct oauth2_saver {
	pthread_t		 th;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct oauth2_save	*todo, **todo_tail;
	struct oauth2_save	*done, **done_tail;
	bool			 stop;		/* client freed: finish, leave */
	bool			 hold;		/* test hook: write nothing yet */
	int			 wake[2];	/* thread -> loop */
	struct event		*ev;
	struct oauth2_save	*all;
};

static void
oauth2_save_free(struct oauth2_save *s)
{
	oauth2_tokens_clear(&s->tokens);
	free(s->path);
	free(s);
}

/* On the thread: write every file asked for; on stop, the rest first. */
static void *
oauth2_saver_main(void *arg)
{
	struct oauth2_saver *sv = arg;
	struct oauth2_save *s;
	char one = 1;

	pthread_mutex_lock(&sv->mu);
	for (;;) {
		while (!sv->stop && (sv->todo == NULL || sv->hold))
			pthread_cond_wait(&sv->cv, &sv->mu);
		if ((s = sv->todo) == NULL)
			break;
		if ((sv->todo = s->next) == NULL)
			sv->todo_tail = &sv->todo;
		pthread_mutex_unlock(&sv->mu);
		s->rc = oauth2_tokens_save(s->path, &s->tokens);
		pthread_mutex_lock(&sv->mu);
		s->next = NULL;
		*sv->done_tail = s;
		sv->done_tail = &s->next;
		/* A full pipe already holds a wake-up: nothing is lost. */
		(void)!write(sv->wake[1], &one, 1);
	}
	pthread_mutex_unlock(&sv->mu);
	return NULL;
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

/* On the loop: answer the requests whose files are written. */
static void
oauth2_saver_wake(evutil_socket_t fd, short what, void *arg)
{
	struct oauth2_saver *sv = arg;
	struct oauth2_save *list, *s;
	struct oauth2_request *req;
	char buf[64];

	while (read(fd, buf, sizeof buf) > 0)
		;
	pthread_mutex_lock(&sv->mu);
	list = sv->done;
	sv->done = NULL;
	sv->done_tail = &sv->done;
	pthread_mutex_unlock(&sv->mu);
	/* Only zero timers are armed from here: no callback runs inside. */
	while ((s = list) != NULL) {
		list = s->next;
		oauth2_save_unlink(sv, s);
		if ((req = s->req) != NULL) {
			req->save = NULL;
			oauth2_get_save_done(req, &s->tokens, s->rc);
		} else if (s->rc < 0)
			oauth2_save_orphan_failed(s);
		oauth2_save_free(s);
	}
}

static int
oauth2_saver_thread(struct oauth2_saver *sv)
{
	sigset_t all, old;
	int r;

	/* Signals are for the loop thread; the new thread inherits this. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&sv->th, NULL, oauth2_saver_main, sv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

/* Undo a start that failed before the thread ran. */
static void
oauth2_saver_undo(struct oauth2_saver *sv)
{
	if (sv->ev != NULL)
		event_free(sv->ev);
	if (sv->wake[0] >= 0)
		close(sv->wake[0]);
	if (sv->wake[1] >= 0)
		close(sv->wake[1]);
	pthread_cond_destroy(&sv->cv);
	pthread_mutex_destroy(&sv->mu);
	free(sv);
}

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
	sv->wake[0] = sv->wake[1] = -1;
	sv->todo_tail = &sv->todo;
	sv->done_tail = &sv->done;
	if ((r = pthread_mutex_init(&sv->mu, NULL)) != 0) {
		free(sv);
		return -r;
	}
	if ((r = -pthread_cond_init(&sv->cv, NULL)) < 0) {
		pthread_mutex_destroy(&sv->mu);
		free(sv);
		return r;
	}
	/* A pipe, not event_active(): the loop's base may lack locking. */
	if (pipe2(sv->wake, O_CLOEXEC | O_NONBLOCK) < 0)
		r = -errno;
	else if ((sv->ev = event_new(oauth2_client_base(c), sv->wake[0],
	    EV_READ | EV_PERSIST, oauth2_saver_wake, sv)) == NULL ||
	    event_add(sv->ev, NULL) < 0)
		r = -ENOMEM;
	else
		r = oauth2_saver_thread(sv);
	if (r < 0) {
		oauth2_saver_undo(sv);
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
	pthread_mutex_lock(&sv->mu);
	*sv->todo_tail = s;
	sv->todo_tail = &s->next;
	pthread_cond_signal(&sv->cv);
	pthread_mutex_unlock(&sv->mu);
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

/* On the loop, after every request is cancelled: the writes finish. */
void
oauth2_saver_free(struct oauth2_saver *sv)
{
	struct oauth2_save *s;

	if (sv == NULL)
		return;
	pthread_mutex_lock(&sv->mu);
	sv->stop = true;
	pthread_cond_signal(&sv->cv);
	pthread_mutex_unlock(&sv->mu);
	pthread_join(sv->th, NULL);
	while ((s = sv->all) != NULL) {
		sv->all = s->anext;
		if (s->req != NULL)
			s->req->save = NULL;
		if (s->rc < 0)
			oauth2_save_orphan_failed(s);
		oauth2_save_free(s);
	}
	oauth2_saver_undo(sv);
}

void
oauth2_test_save_hold(struct oauth2_client *c, bool hold)
{
	struct oauth2_saver *sv;

	if (oauth2_saver_get(c, &sv) < 0)
		return;
	pthread_mutex_lock(&sv->mu);
	sv->hold = hold;
	pthread_cond_signal(&sv->cv);
	pthread_mutex_unlock(&sv->mu);
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
