/*
 * worker.c - a thread, a todo FIFO and a done FIFO under one mutex, and a
 * pipe that wakes the loop: jobs run in order on the thread and come back
 * to the loop thread in the same order.  A job once pushed is always run,
 * so worker_free() waits for the queue rather than dropping it.
 */
#define _GNU_SOURCE	/* pipe2() */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "thread.h"
#include "worker.h"

/*
 * `mu` guards todo, done, stop and hold; it is never held across run().
 * `ready` (taken from done, not yet handed back) and `dying` belong to
 * the loop thread; ops and arg are set before the thread starts.
 */
struct worker {
	pthread_t		 th;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct worker_job	*todo, **todo_tail;
	struct worker_job	*done, **done_tail;
	bool			 stop;		/* freed: finish, leave */
	bool			 hold;		/* test hook: run nothing yet */
	int			 wake[2];	/* thread -> loop */
	struct event		*ev;
	struct worker_job	*ready;
	bool			*dying;		/* set if freed inside done() */
	const struct worker_ops	*ops;
	void			*arg;
};

/* On the thread: run every job pushed; on stop, the rest first. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_job *j;
	char one = 1;

	thread_yield_to_loop();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && (w->todo == NULL || w->hold))
			pthread_cond_wait(&w->cv, &w->mu);
		if ((j = w->todo) == NULL)
			break;
		if ((w->todo = j->next) == NULL)
			w->todo_tail = &w->todo;
		pthread_mutex_unlock(&w->mu);
		w->ops->run(j, w->arg);
		pthread_mutex_lock(&w->mu);
		j->next = NULL;
		*w->done_tail = j;
		w->done_tail = &j->next;
		/* A full pipe already holds a wake-up: nothing is lost. */
		(void)!write(w->wake[1], &one, 1);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/*
 * On the loop: hand back the jobs done, in order.  done() may free the
 * worker; `dead` says so, and worker_free() has dropped what was left.
 */
static void
worker_wake(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_job *j, **tail;
	bool dead = false;
	char buf[64];

	while (read(fd, buf, sizeof buf) > 0)
		;
	for (tail = &w->ready; *tail != NULL; tail = &(*tail)->next)
		;
	pthread_mutex_lock(&w->mu);
	*tail = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->mu);
	w->dying = &dead;
	while ((j = w->ready) != NULL) {
		w->ready = j->next;
		j->next = NULL;
		w->ops->done(j, w->arg);
		if (dead)
			return;
	}
	w->dying = NULL;
}

static int
worker_thread(struct worker *w)
{
	sigset_t all, old;
	int r;

	/* Signals are for the loop thread; the new thread inherits this. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&w->th, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

/* Free what worker_start() made; the thread is joined or never ran. */
static void
worker_undo(struct worker *w)
{
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->wake[0] >= 0)
		close(w->wake[0]);
	if (w->wake[1] >= 0)
		close(w->wake[1]);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int
worker_start(struct event_base *base, const struct worker_ops *ops,
    void *arg, struct worker **ret)
{
	struct worker *w;
	int r;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return -ENOMEM;
	w->wake[0] = w->wake[1] = -1;
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	w->ops = ops;
	w->arg = arg;
	if ((r = pthread_mutex_init(&w->mu, NULL)) != 0) {
		free(w);
		return -r;
	}
	if ((r = pthread_cond_init(&w->cv, NULL)) != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
		return -r;
	}
	/* A pipe, not event_active(): the loop's base may lack locking. */
	if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) < 0)
		r = -errno;
	else if ((w->ev = event_new(base, w->wake[0], EV_READ | EV_PERSIST,
	    worker_wake, w)) == NULL || event_add(w->ev, NULL) < 0)
		r = -ENOMEM;
	else
		r = worker_thread(w);
	if (r < 0) {
		worker_undo(w);
		return r;
	}
	*ret = w;
	return 0;
}

void
worker_push(struct worker *w, struct worker_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&w->mu);
	*w->todo_tail = j;
	w->todo_tail = &j->next;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
worker_hold(struct worker *w, bool hold)
{
	pthread_mutex_lock(&w->mu);
	w->hold = hold;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Hand `list` to drop(), in order. */
static void
worker_drop_list(struct worker *w, struct worker_job *list)
{
	struct worker_job *j;

	while ((j = list) != NULL) {
		list = j->next;
		j->next = NULL;
		w->ops->drop(j, w->arg);
	}
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	if (w->dying != NULL)
		*w->dying = true;
	/* The thread is gone: done needs no lock, and follows ready. */
	worker_drop_list(w, w->ready);
	worker_drop_list(w, w->done);
	worker_undo(w);
}
