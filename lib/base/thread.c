/*
 * thread.c - helper threads give way to the event loop.  On Linux the nice
 * value belongs to each thread (setpriority(2), NOTES), so a helper can
 * lower its own priority without touching the loop's; lowering needs no
 * privilege.
 */
#define _GNU_SOURCE	/* gettid() */
#include <sys/resource.h>

#include <errno.h>
#include <unistd.h>

#include "thread.h"

void
thread_yield_to_loop(void)
{
	id_t tid = (id_t)gettid();
	int cur;

	errno = 0;
	cur = getpriority(PRIO_PROCESS, tid);
	if (cur == -1 && errno != 0)
		return;
	cur += THREAD_HELPER_NICE;
	(void)setpriority(PRIO_PROCESS, tid, cur > 19 ? 19 : cur);
}
