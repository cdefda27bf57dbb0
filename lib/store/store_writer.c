/*
 * store_writer.c - message bytes written for the event loop.  The loop
 * fills chunks of up to 64 KiB and queues them to a worker thread
 * (base/worker.c), which makes the temp file if no spare was ready,
 * writes the chunks, runs SHA-256 over them and, at a message's end,
 * starts the writeback and closes the file.  Each chunk comes back to the
 * loop, which counts the queue down and lets waiting sessions go on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/worker.h"
#include "store_private.h"

struct store_chunk {
	struct worker_job wj;
	struct store_blob *blob;
	char	*data;			/* NULL once written */
	size_t	 len;
	bool	 end;			/* the blob's end, not bytes */
};

/*
 * `mu` guards each blob's pending, orphan, settled and werror: the loop,
 * the writer thread and the commit thread (settle, free) all touch them.
 * `queued` and `waiting` belong to the loop thread.
 */
struct store_writer {
	struct worker *w;
	pthread_mutex_t mu;
	pthread_cond_t settled;		/* a blob's end was handled */
	size_t	 queued;		/* bytes queued and not handed back */
	struct store_waiter *waiting;	/* for the queue to drain */
	struct event_base *base;
};

/* On the thread: one chunk, or the end, of a blob. */
static int
store_writer_do(struct store_chunk *c, bool skip)
{
	int r;

	if (skip) {
		if (c->end)
			store_blob_close_fd(c->blob);
		return 0;
	}
	/* No spare was ready at the blob's begin: the file is made here. */
	if ((r = store_blob_need_file(c->blob)) < 0)
		return r;
	if (!c->end)
		return store_blob_out(c->blob, c->data, c->len);
	return store_blob_finish(c->blob);
}

static void
store_writer_run(struct worker_job *wj, void *arg)
{
	struct store_writer *w = arg;
	struct store_chunk *c = WORKER_JOB_OF(wj, struct store_chunk, wj);
	struct store_blob *b = c->blob;
	bool skip, orphan;
	int r;

	/* A blob given up, or one that already failed: no more I/O. */
	pthread_mutex_lock(&w->mu);
	skip = b->orphan || b->werror != 0;
	pthread_mutex_unlock(&w->mu);
	r = store_writer_do(c, skip);
	free(c->data);
	c->data = NULL;
	pthread_mutex_lock(&w->mu);
	if (r < 0 && b->werror == 0)
		b->werror = r;
	if (c->end) {
		b->settled = true;
		pthread_cond_broadcast(&w->settled);
	}
	orphan = --b->pending == 0 && b->orphan;
	pthread_mutex_unlock(&w->mu);
	/* Given up while queued: it goes with its last chunk, and its temp
	 * file's close and unlink stay off the loop too. */
	if (orphan)
		store_blob_destroy(b);
	c->blob = NULL;
}

/* The chunk is written: the loop counts it off. */
static void
store_writer_release(struct store_writer *w, struct store_chunk *c)
{
	w->queued -= c->len;
	free(c);
}

/* On the loop: once the queue is low, every waiter goes on. */
static void
store_writer_done(struct worker_job *wj, void *arg)
{
	struct store_writer *w = arg;
	struct store_waiter *sw;

	store_writer_release(w, WORKER_JOB_OF(wj, struct store_chunk, wj));
	if (w->queued > STORE_WRITER_LOW)
		return;
	/* One at a time: a callback may cancel the next waiter, or write
	 * and fill the queue again. */
	while (w->queued <= STORE_WRITER_LOW && (sw = w->waiting) != NULL) {
		w->waiting = sw->next;
		sw->next = NULL;
		sw->listed = false;
		sw->cb(sw->arg);
	}
}

/* The store is closing: nobody waits any more. */
static void
store_writer_drop(struct worker_job *wj, void *arg)
{
	store_writer_release(arg, WORKER_JOB_OF(wj, struct store_chunk, wj));
}

static const struct worker_ops store_writer_ops = {
	.run = store_writer_run,
	.done = store_writer_done,
	.drop = store_writer_drop,
};

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
	w->base = base;
	if ((r = pthread_mutex_init(&w->mu, NULL)) != 0) {
		free(w);
		return -r;
	}
	if ((r = pthread_cond_init(&w->settled, NULL)) != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
		return -r;
	}
	if ((r = worker_start(base, &store_writer_ops, w, &w->w)) < 0) {
		pthread_cond_destroy(&w->settled);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return r;
	}
	s->writer = w;
	return 0;
}

/* Every queued chunk is written before the thread ends. */
void
store_writer_stop(struct store *s)
{
	struct store_writer *w = s->writer;

	if (w == NULL)
		return;
	worker_free(w->w);
	pthread_cond_destroy(&w->settled);
	pthread_mutex_destroy(&w->mu);
	free(w);
	s->writer = NULL;
}

void
store_test_writer_hold(struct store *s, bool hold)
{
	worker_hold(s->writer->w, hold);
}

size_t
store_test_writer_queued(const struct store *s)
{
	return s->writer->queued;
}

int
store_writer_queue(struct store_blob *b, char *data, size_t len)
{
	struct store_writer *w = b->writer;
	struct store_chunk *c;
	int r;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	c->blob = b;
	c->data = data;
	c->len = len;
	c->end = data == NULL;
	pthread_mutex_lock(&w->mu);
	/* Nothing more is queued for a blob that failed: say so now. */
	if ((r = b->werror) == 0)
		b->pending++;
	pthread_mutex_unlock(&w->mu);
	if (r < 0) {
		free(c);
		return r;
	}
	w->queued += len;
	worker_push(w->w, &c->wj);
	return 0;
}

bool
store_writer_wait(struct store *s, struct store_waiter *sw)
{
	struct store_writer *w = s->writer;

	if (w == NULL || w->queued <= STORE_WRITER_HIGH)
		return false;
	if (!sw->listed) {
		sw->next = w->waiting;
		w->waiting = sw;
		sw->listed = true;
	}
	return true;
}

void
store_writer_cancel(struct store *s, struct store_waiter *sw)
{
	struct store_writer *w = s->writer;
	struct store_waiter **pp;

	if (w == NULL || !sw->listed)
		return;
	for (pp = &w->waiting; *pp != NULL; pp = &(*pp)->next)
		if (*pp == sw) {
			*pp = sw->next;
			break;
		}
	sw->next = NULL;
	sw->listed = false;
}

int
store_writer_settle(struct store_blob *b)
{
	struct store_writer *w = b->writer;
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
	struct store_writer *w = b->writer;
	bool later;

	if (w == NULL)
		return false;
	pthread_mutex_lock(&w->mu);
	if ((later = b->pending > 0))
		b->orphan = true;
	pthread_mutex_unlock(&w->mu);
	return later;
}
