/*
 * test_loop_probe.c - the loop probe blames the right thing: a callback
 * that burns CPU shows as lateness with the loop thread on CPU, one that
 * sleeps as lateness with a voluntary switch and little CPU, one that
 * shares its CPU with a spinning thread as a wait for a CPU.  Only lower
 * bounds that the test itself guarantees are asserted, never a timing
 * the machine could miss.
 */
#define _GNU_SOURCE	/* sched_setaffinity() */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "base/loop_probe.h"

struct blocker {
	struct event_base *base;
	bool	 burn;		/* spin on the CPU, else sleep */
	int	 rounds;	/* timer fires left before the loop exits */
	struct event *ev;
};

static uint64_t
thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Fires every 30 ms; the second time it holds the loop for 80 ms. */
static void
blocker_cb(evutil_socket_t fd, short what, void *arg)
{
	struct blocker *b = arg;
	struct timeval tv = { 0, 30000 };

	if (--b->rounds == 2) {
		if (b->burn) {
			uint64_t until = thread_cpu_us() + 80000;

			while (thread_cpu_us() < until)
				;
		} else {
			struct timespec ts = { 0, 80000000 };

			while (nanosleep(&ts, &ts) != 0)
				;
		}
	}
	if (b->rounds == 0) {
		event_base_loopbreak(b->base);
		return;
	}
	evtimer_add(b->ev, &tv);
}

static void
run_blocked(bool burn, struct loop_probe_stats *st)
{
	struct blocker b = { .burn = burn, .rounds = 4 };
	struct timeval tv = { 0, 30000 };
	struct loop_probe *lp;

	b.base = event_base_new();
	assert_non_null(b.base);
	b.ev = evtimer_new(b.base, blocker_cb, &b);
	assert_int_equal(loop_probe_start(b.base, 10, &lp), 0);
	evtimer_add(b.ev, &tv);
	event_base_dispatch(b.base);
	loop_probe_stats(lp, st);
	loop_probe_free(lp);
	event_free(b.ev);
	event_base_free(b.base);
}

static void
test_burn_is_cpu(void **state)
{
	struct loop_probe_stats st;
	char line[512];

	run_blocked(true, &st);
	assert_true(st.ticks >= 2);
	/* 80 ms of CPU held the loop: the tick due inside it came late
	 * by most of that, and the loop thread was on CPU for it.  (Not
	 * cpu_in_max_us: on a loaded machine a preempted tick may be
	 * later still.) */
	assert_true(st.late_max_us >= 60000);
	assert_true(st.cpu_max_us >= 80000);
	assert_true(st.over_50ms >= 1);
	loop_probe_format(&st, line, sizeof line);
	assert_non_null(strstr(line, "loop probe: "));
	assert_non_null(strstr(line, "over 50 ms"));
}

static void
test_sleep_is_waiting(void **state)
{
	struct loop_probe_stats st;

	run_blocked(false, &st);
	assert_true(st.late_max_us >= 60000);
	/* Asleep, not on a CPU: at least one voluntary switch. */
	assert_true(st.nvcsw_in_max >= 1);
	assert_true(st.cpu_in_max_us < st.late_max_us);
	/* Asleep is not waiting for a CPU: the loop's own stall. */
	assert_true(st.own_max_us >= 40000);
}

static void *
spinner(void *arg)
{
	atomic_bool *stop = arg;

	while (!atomic_load(stop))
		;
	return NULL;
}

static void
test_preempted_is_runq(void **state)
{
	struct loop_probe_stats st;
	cpu_set_t was, one;
	atomic_bool stop = false;
	pthread_t t;

	if (access("/proc/thread-self/schedstat", R_OK) != 0)
		skip();
	/*
	 * The loop and a spinning thread on one CPU: the 80 ms burn takes
	 * longer than 80 ms of wall time, and the scheduler's fair share
	 * makes the loop wait for the CPU for a good part of it.
	 */
	assert_int_equal(sched_getaffinity(0, sizeof was, &was), 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
	assert_int_equal(pthread_create(&t, NULL, spinner, &stop), 0);
	run_blocked(true, &st);
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	assert_int_equal(sched_setaffinity(0, sizeof was, &was), 0);
	assert_true(st.late_max_us >= 60000);
	assert_true(st.runq_in_max_us >= 20000);
	/* Counted from arming: the 10 ms period is in it too. */
	assert_true(st.runq_in_max_us <= st.late_max_us + 15000);
	/* What the other thread took is not counted as the loop's own. */
	assert_true(st.own_max_us < st.late_max_us);
}

static void
test_bad_period(void **state)
{
	struct event_base *base = event_base_new();
	struct loop_probe *lp = NULL;

	assert_int_equal(loop_probe_start(base, 0, &lp), -EINVAL);
	assert_int_equal(loop_probe_start(base, 1001, &lp), -EINVAL);
	assert_null(lp);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burn_is_cpu),
		cmocka_unit_test(test_sleep_is_waiting),
		cmocka_unit_test(test_preempted_is_runq),
		cmocka_unit_test(test_bad_period),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
