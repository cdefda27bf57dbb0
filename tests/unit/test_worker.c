/*
 * test_worker.c - base/worker.c runs jobs in push order on a thread that
 * is not the loop's, hands each back to done() on the loop thread in the
 * same order, runs nothing while held, finishes every queued job in
 * worker_free() and gives drop() what done() never saw (also when done()
 * frees the worker), and loses no wake-up when the pipe is full.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "base/worker.h"

#define WORKER_T_TIMEOUT_S	20	/* a lost wake-up hangs: fail instead */

struct tjob {
	unsigned	 seq;		/* push order */
	struct worker_job wj;		/* not first: WORKER_JOB_OF must work */
	unsigned	 run_pos;	/* order the thread ran it in */
	pthread_t	 ran_on;
};

struct tctx {
	struct event_base *base;
	struct event	*tick;		/* keeps EVLOOP_ONCE from blocking */
	struct worker	*w;
	pthread_t	 loop;
	struct tjob	*jobs;
	size_t		 n_jobs;
	atomic_uint	 ran;		/* the only field the thread writes */
	unsigned	 done, dropped;
	unsigned	 bad_done;	/* done() off order or off thread */
	unsigned	 bad_drop;
	unsigned	 free_at;	/* done() frees the worker at this count */
};

/* Run on the worker thread: record, never assert (no longjmp there). */
static void
t_run(struct worker_job *wj, void *arg)
{
	struct tctx *c = arg;
	struct tjob *j = WORKER_JOB_OF(wj, struct tjob, wj);

	j->run_pos = atomic_fetch_add(&c->ran, 1);
	j->ran_on = pthread_self();
}

static void
t_done(struct worker_job *wj, void *arg)
{
	struct tctx *c = arg;
	struct tjob *j = WORKER_JOB_OF(wj, struct tjob, wj);

	if (j->seq != c->done + c->dropped || j->run_pos != j->seq ||
	    !pthread_equal(pthread_self(), c->loop) ||
	    pthread_equal(j->ran_on, c->loop))
		c->bad_done++;
	c->done++;
	if (c->free_at != 0 && c->done == c->free_at) {
		worker_free(c->w);
		c->w = NULL;
	}
}

static void
t_drop(struct worker_job *wj, void *arg)
{
	struct tctx *c = arg;
	struct tjob *j = WORKER_JOB_OF(wj, struct tjob, wj);

	/* Dropped jobs were run, and come after every job done() saw. */
	if (j->seq != c->done + c->dropped || j->run_pos != j->seq)
		c->bad_drop++;
	c->dropped++;
}

static const struct worker_ops t_ops = {
	.run = t_run, .done = t_done, .drop = t_drop,
};

static void
t_tick(evutil_socket_t fd, short what, void *arg)
{
}

static int
setup(void **state)
{
	struct timeval tv = { 0, 20000 };
	struct tctx *c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -1;
	atomic_init(&c->ran, 0);
	c->loop = pthread_self();
	if ((c->base = event_base_new()) == NULL ||
	    (c->tick = event_new(c->base, -1, EV_PERSIST, t_tick, c)) ==
	    NULL || event_add(c->tick, &tv) < 0 ||
	    worker_start(c->base, &t_ops, c, &c->w) < 0)
		return -1;
	*state = c;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *c = *state;

	worker_free(c->w);
	event_free(c->tick);
	event_base_free(c->base);
	free(c->jobs);
	free(c);
	return 0;
}

static void
push_n(struct tctx *c, size_t n)
{
	size_t i, base = c->n_jobs;

	c->jobs = realloc(c->jobs, (base + n) * sizeof *c->jobs);
	assert_non_null(c->jobs);
	c->n_jobs += n;
	/* Push only after the array is final: the thread holds pointers. */
	for (i = base; i < base + n; i++)
		c->jobs[i] = (struct tjob){ .seq = i };
	for (i = base; i < base + n; i++)
		worker_push(c->w, &c->jobs[i].wj);
}

/* Run the loop until done() saw `n` jobs; fail after the timeout. */
static void
loop_until_done(struct tctx *c, unsigned n)
{
	time_t t0 = time(NULL);

	while (c->done < n) {
		assert_true(time(NULL) - t0 < WORKER_T_TIMEOUT_S);
		assert_int_equal(event_base_loop(c->base, EVLOOP_ONCE), 0);
	}
}

/* Wait, without the loop, until the thread ran `n` jobs. */
static void
wait_ran(struct tctx *c, unsigned n)
{
	struct timespec ms = { 0, 1000000 };
	time_t t0 = time(NULL);

	while (atomic_load(&c->ran) < n) {
		assert_true(time(NULL) - t0 < WORKER_T_TIMEOUT_S);
		nanosleep(&ms, NULL);
	}
}

/* Spin the loop for about `ms` milliseconds. */
static void
loop_for(struct tctx *c, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	assert_int_equal(event_base_loopexit(c->base, &tv), 0);
	assert_int_equal(event_base_dispatch(c->base), 0);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_order_and_threads(void **state)
{
	struct tctx *c = *state;

	push_n(c, 500);
	/* done() only ever runs from the loop, never from worker_push(). */
	assert_int_equal(c->done, 0);
	loop_until_done(c, 500);
	assert_int_equal(atomic_load(&c->ran), 500);
	assert_int_equal(c->bad_done, 0);
	/* Pushed again after a delivery: the order goes on. */
	push_n(c, 3);
	loop_until_done(c, 503);
	assert_int_equal(c->bad_done, 0);
	assert_int_equal(c->dropped, 0);
}

static void
test_hold(void **state)
{
	struct tctx *c = *state;

	worker_hold(c->w, true);
	push_n(c, 4);
	loop_for(c, 150);
	assert_int_equal(atomic_load(&c->ran), 0);
	assert_int_equal(c->done, 0);
	worker_hold(c->w, false);
	loop_until_done(c, 4);
	assert_int_equal(atomic_load(&c->ran), 4);
	assert_int_equal(c->bad_done, 0);
}

/* worker_free() runs what is queued even while held; drop() gets it. */
static void
test_free_finishes_held(void **state)
{
	struct tctx *c = *state;

	worker_hold(c->w, true);
	push_n(c, 5);
	worker_free(c->w);
	c->w = NULL;
	assert_int_equal(atomic_load(&c->ran), 5);
	assert_int_equal(c->done, 0);
	assert_int_equal(c->dropped, 5);
	assert_int_equal(c->bad_drop, 0);
}

/* Jobs run but not yet handed back go to drop(), after those that were. */
static void
test_free_drops_undelivered(void **state)
{
	struct tctx *c = *state;

	push_n(c, 3);
	loop_until_done(c, 3);
	push_n(c, 7);
	wait_ran(c, 10);
	worker_free(c->w);
	c->w = NULL;
	assert_int_equal(c->done, 3);
	assert_int_equal(c->dropped, 7);
	assert_int_equal(c->bad_done, 0);
	assert_int_equal(c->bad_drop, 0);
}

/* done() may free the worker: the rest of its batch goes to drop(). */
static void
test_free_inside_done(void **state)
{
	struct tctx *c = *state;
	unsigned i;

	c->free_at = 2;
	push_n(c, 10);
	wait_ran(c, 10);
	/* All ten are in one batch now; the loop stops with the worker. */
	for (i = 0; i < 50 && c->w != NULL; i++)
		assert_int_equal(event_base_loop(c->base, EVLOOP_ONCE), 0);
	assert_null(c->w);
	assert_int_equal(c->done, 2);
	assert_int_equal(c->dropped, 8);
	assert_int_equal(c->bad_done, 0);
	assert_int_equal(c->bad_drop, 0);
	loop_for(c, 50);
	assert_int_equal(c->done, 2);
}

/*
 * 100000 quick jobs overfill the 64 KiB pipe while the loop sleeps: the
 * thread must not block on it, and the one byte left must bring all of
 * them back.  Then as many again with the loop running alongside.
 */
static void
test_full_pipe(void **state)
{
	struct tctx *c = *state;

	push_n(c, 100000);
	wait_ran(c, 100000);
	loop_until_done(c, 100000);
	push_n(c, 100000);
	loop_until_done(c, 200000);
	assert_int_equal(atomic_load(&c->ran), 200000);
	assert_int_equal(c->bad_done, 0);
	assert_int_equal(c->dropped, 0);
}

static void
test_free_null(void **state)
{
	worker_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_threads, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_finishes_held, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_drops_undelivered,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_inside_done, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_full_pipe, setup,
		    teardown),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
