/*
 * store_writer.c - the thread that writes message bytes for the event loop.
 * The loop fills 64 KiB chunks and queues them here; this thread makes the
 * temp file if no spare was ready, writes the chunks, runs SHA-256 over
 * them and, at a message's end, starts the writeback and closes the file.  When the queue holds more
 * than STORE_WRITER_HIGH bytes, sessions are told to wait, and a pipe
 * wakes the loop to let them go on once it is down to STORE_WRITER_LOW.
 */
#define _GNU_SOURCE	/* pipe2() */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/thread.h"
#include "store_private.h"

struct store_chunk {
	struct store_chunk *next;
	struct store_blob *blob;
	char	*data;			/* NULL: the blob's end */
	size_t	 len;
};

struct store_writer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work;		/* todo got a chunk, or stop */
	pthread_cond_t settled;		/* a blob's end was handled */
	struct store_chunk *todo, **todo_tail;
	atomic_size_t queued;		/* bytes in todo; changed under mu */
	bool	 stop;
	bool	 hold;			/* test hook: write nothing for now */
	struct store_waiter *waiting;	/* for the queue to drain */
	struct store_waiter *ready;	/* drained: to call on the loop */
	int	 wake[2];		/* thread -> loop */
	struct event *ev;
	struct event_base *base;
};

static void
store_waiter_unlink(struct store_waiter **list, struct store_waiter *sw)
{
	for (; *list != NULL; list = &(*list)->next)
		if (*list == sw) {
			*list = sw->next;
			break;
		}
	sw->next = NULL;
}

/* Under mu: once the queue is low, the waiters are told on the loop. */
static bool
store_writer_release(struct store_writer *w)
{
	struct store_waiter *sw;

	if (w->waiting == NULL || atomic_load(&w->queued) > STORE_WRITER_LOW)
		return false;
	while ((sw = w->waiting) != NULL) {
		w->waiting = sw->next;
		sw->next = w->ready;
		w->ready = sw;
	}
	return true;
}

/* On the thread: one chunk, or the end, of a blob. */
static int
store_writer_do(struct store_chunk *c, bool skip)
{
	int r;

	if (skip) {
		if (c->data == NULL)
			store_blob_close_fd(c->blob);
		return 0;
	}
	/* No spare was ready at the blob's begin: the file is made here. */
	if ((r = store_blob_need_file(c->blob)) < 0)
		return r;
	if (c->data != NULL)
		return store_blob_out(c->blob, c->data, c->len);
	return store_blob_finish(c->blob);
}

static void
store_writer_done(struct store_writer *w, struct store_chunk *c, int r)
{
	struct store_blob *b = c->blob;
	bool wake, orphan;
	char one = 1;

	pthread_mutex_lock(&w->mu);
	atomic_fetch_sub(&w->queued, c->len);
	if (r < 0 && b->werror == 0)
		b->werror = r;
	if (c->data == NULL) {
		b->settled = true;
		pthread_cond_broadcast(&w->settled);
	}
	orphan = --b->pending == 0 && b->orphan;
	wake = store_writer_release(w);
	pthread_mutex_unlock(&w->mu);
	if (orphan)
		store_blob_destroy(b);
	/* A full pipe already holds a wake-up: nothing is lost. */
	if (wake)
		(void)!write(w->wake[1], &one, 1);
	free(c->data);
	free(c);
}

static void *
store_writer_main(void *arg)
{
	struct store_writer *w = arg;
	struct store_chunk *c;
	bool skip;

	thread_yield_to_loop();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while ((w->todo == NULL || w->hold) && !w->stop)
			pthread_cond_wait(&w->work, &w->mu);
		if ((c = w->todo) == NULL)
			break;
		if ((w->todo = c->next) == NULL)
			w->todo_tail = &w->todo;
		/* A blob given up, or one that already failed: no more I/O. */
		skip = c->blob->orphan || c->blob->werror != 0;
		pthread_mutex_unlock(&w->mu);
		store_writer_done(w, c, store_writer_do(c, skip));
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* On the loop: the queue drained; let each waiter go on. */
static void
store_writer_wake(evutil_socket_t fd, short what, void *arg)
{
	struct store_writer *w = arg;
	struct store_waiter *sw;
	char buf[64];

	while (read(fd, buf, sizeof buf) > 0)
		;
	/* One at a time: a callback may cancel the next waiter. */
	for (;;) {
		pthread_mutex_lock(&w->mu);
		if ((sw = w->ready) != NULL) {
			w->ready = sw->next;
			sw->next = NULL;
			sw->listed = false;
		}
		pthread_mutex_unlock(&w->mu);
		if (sw == NULL)
			break;
		sw->cb(sw->arg);
	}
}

static void
store_writer_free(struct store_writer *w)
{
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->wake[0] >= 0)
		close(w->wake[0]);
	if (w->wake[1] >= 0)
		close(w->wake[1]);
	pthread_cond_destroy(&w->settled);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int
store_writer_start(struct store *s, struct event_base *base)
{
	struct store_writer *w;
	int r;

	if (s->writer != NULL)
		return s->writer->base == base ? 0 : -EINVAL;
	if (s->rdonly)
		return -EROFS;
	if ((w = calloc(1, sizeof *w)) == NULL)
		return -ENOMEM;
	w->wake[0] = w->wake[1] = -1;
	w->todo_tail = &w->todo;
	w->base = base;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->settled, NULL);
	if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	w->ev = event_new(base, w->wake[0], EV_READ | EV_PERSIST,
	    store_writer_wake, w);
	if (w->ev == NULL || event_add(w->ev, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = pthread_create(&w->thread, NULL, store_writer_main, w)) != 0) {
		r = -r;
		goto fail;
	}
	s->writer = w;
	return 0;
fail:
	store_writer_free(w);
	return r;
}

/* Every queued chunk is written before the thread ends. */
void
store_writer_stop(struct store *s)
{
	struct store_writer *w = s->writer;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	store_writer_free(w);
	s->writer = NULL;
}

void
store_test_writer_hold(struct store *s, bool hold)
{
	struct store_writer *w = s->writer;

	pthread_mutex_lock(&w->mu);
	w->hold = hold;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
}

size_t
store_test_writer_queued(const struct store *s)
{
	return atomic_load(&s->writer->queued);
}

int
store_writer_queue(struct store_blob *b, char *data, size_t len)
{
	struct store_writer *w = b->store->writer;
	struct store_chunk *c;
	int r;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	c->blob = b;
	c->data = data;
	c->len = len;
	pthread_mutex_lock(&w->mu);
	/* Nothing more is queued for a blob that failed: say so now. */
	if ((r = b->werror) == 0) {
		b->pending++;
		atomic_fetch_add(&w->queued, len);
		*w->todo_tail = c;
		w->todo_tail = &c->next;
		pthread_cond_signal(&w->work);
	}
	pthread_mutex_unlock(&w->mu);
	if (r < 0)
		free(c);
	return r;
}

bool
store_writer_wait(struct store *s, struct store_waiter *sw)
{
	struct store_writer *w = s->writer;
	bool wait = false;

	if (w == NULL || atomic_load(&w->queued) <= STORE_WRITER_HIGH)
		return false;
	pthread_mutex_lock(&w->mu);
	if (!sw->listed && atomic_load(&w->queued) > STORE_WRITER_HIGH) {
		sw->next = w->waiting;
		w->waiting = sw;
		sw->listed = true;
	}
	wait = sw->listed;
	pthread_mutex_unlock(&w->mu);
	return wait;
}

void
store_writer_cancel(struct store *s, struct store_waiter *sw)
{
	struct store_writer *w = s->writer;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	if (sw->listed) {
		store_waiter_unlink(&w->waiting, sw);
		store_waiter_unlink(&w->ready, sw);
		sw->listed = false;
	}
	pthread_mutex_unlock(&w->mu);
}

int
store_writer_settle(struct store_blob *b)
{
	struct store_writer *w = b->store->writer;
	int r;

	if (w == NULL)
		return b->error;
	pthread_mutex_lock(&w->mu);
	while (!b->settled)
		pthread_cond_wait(&w->settled, &w->mu);
	r = b->werror;
	pthread_mutex_unlock(&w->mu);
	return r;
}

bool
store_writer_orphan(struct store_blob *b)
{
	struct store_writer *w = b->store->writer;
	bool later;

	if (w == NULL)
		return false;
	pthread_mutex_lock(&w->mu);
	if ((later = b->pending > 0))
		b->orphan = true;
	pthread_mutex_unlock(&w->mu);
	return later;
}
