/*
 * test_thread.c - a helper thread lowers its own priority and only its
 * own: the loop thread that made it keeps its nice value.
 */
#define _GNU_SOURCE	/* gettid() */
#include <sys/resource.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/thread.h"

static int
my_nice(void)
{
	return getpriority(PRIO_PROCESS, (id_t)gettid());
}

static void *
helper(void *arg)
{
	int *seen = arg;

	thread_yield_to_loop();
	*seen = my_nice();
	return NULL;
}

static void
test_helper_below_loop(void **state)
{
	int before = my_nice(), seen = -100, want;
	pthread_t t;

	want = before + THREAD_HELPER_NICE > 19 ? 19 :
	    before + THREAD_HELPER_NICE;
	assert_int_equal(pthread_create(&t, NULL, helper, &seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(seen, want);
	assert_int_equal(my_nice(), before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helper_below_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
