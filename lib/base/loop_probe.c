/*
 * loop_probe.c - a timer that records how late the loop fires it.  A tick
 * that comes late means every other event of the loop waited as long;
 * the loop thread's CPU time and context switches over the same stretch
 * say whether our callbacks ran long or the thread was not running.
 */
#define _GNU_SOURCE		/* RUSAGE_THREAD */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "loop_probe.h"

#define LOOP_PROBE_BUCKETS	1001	/* 1 ms each; the last is 1 s and up */

struct loop_probe {
	struct event	*ev;
	uint32_t	 period_us;
	uint64_t	 due_us;	/* when the armed tick should fire */
	uint64_t	 cpu_us;	/* the loop thread's CPU at arming */
	uint64_t	 runq_us;	/* its wait for a CPU at arming */
	int		 schedstat;	/* /proc/thread-self/schedstat or -1 */
	long		 nvcsw, nivcsw;
	struct loop_probe_stats st;
	uint64_t	 hist[LOOP_PROBE_BUCKETS];
};

static uint64_t
loop_probe_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * How long the loop thread has waited, runnable, for a CPU: the second
 * figure of schedstat.  Without it (no procfs, no schedstats) 0, and the
 * waits count as "not on a CPU" only.
 */
static uint64_t
loop_probe_runq(const struct loop_probe *lp)
{
	char buf[96];
	unsigned long long cpu_ns, wait_ns;
	ssize_t n;

	if (lp->schedstat < 0 ||
	    (n = pread(lp->schedstat, buf, sizeof buf - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &cpu_ns, &wait_ns) != 2)
		return 0;
	return (uint64_t)wait_ns / 1000;
}

static void
loop_probe_arm(struct loop_probe *lp)
{
	struct timeval tv = { 0, (suseconds_t)lp->period_us };
	struct rusage ru;

	if (lp->period_us >= 1000000) {
		tv.tv_sec = 1;
		tv.tv_usec = 0;
	}
	getrusage(RUSAGE_THREAD, &ru);
	lp->nvcsw = ru.ru_nvcsw;
	lp->nivcsw = ru.ru_nivcsw;
	lp->cpu_us = loop_probe_clock(CLOCK_THREAD_CPUTIME_ID);
	lp->runq_us = loop_probe_runq(lp);
	lp->due_us = loop_probe_clock(CLOCK_MONOTONIC) + lp->period_us;
	evtimer_add(lp->ev, &tv);
}

static void
loop_probe_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loop_probe *lp = arg;
	uint64_t now = loop_probe_clock(CLOCK_MONOTONIC);
	uint64_t cpu = loop_probe_clock(CLOCK_THREAD_CPUTIME_ID) - lp->cpu_us;
	uint64_t late = now > lp->due_us ? now - lp->due_us : 0;
	uint64_t rq = loop_probe_runq(lp);
	/* A failed read gives 0: never a wrapped difference. */
	uint64_t runq = rq > lp->runq_us ? rq - lp->runq_us : 0;
	uint64_t own = late > runq ? late - runq : 0;
	struct rusage ru;
	size_t b;

	getrusage(RUSAGE_THREAD, &ru);
	lp->st.ticks++;
	if (own > lp->st.own_max_us)
		lp->st.own_max_us = own;
	b = late / 1000;
	lp->hist[b < LOOP_PROBE_BUCKETS ? b : LOOP_PROBE_BUCKETS - 1]++;
	if (late > 50000)
		lp->st.over_50ms++;
	if (cpu > lp->st.cpu_max_us)
		lp->st.cpu_max_us = cpu;
	if (late >= lp->st.late_max_us) {
		lp->st.late_max_us = late;
		lp->st.cpu_in_max_us = cpu;
		lp->st.runq_in_max_us = runq;
		lp->st.nvcsw_in_max = (uint64_t)(ru.ru_nvcsw - lp->nvcsw);
		lp->st.nivcsw_in_max = (uint64_t)(ru.ru_nivcsw - lp->nivcsw);
	}
	loop_probe_arm(lp);
}

int
loop_probe_start(struct event_base *base, uint32_t period_ms,
    struct loop_probe **ret)
{
	struct loop_probe *lp;

	if (period_ms == 0 || period_ms > 1000)
		return -EINVAL;
	if ((lp = calloc(1, sizeof *lp)) == NULL)
		return -ENOMEM;
	if ((lp->ev = evtimer_new(base, loop_probe_tick, lp)) == NULL) {
		free(lp);
		return -ENOMEM;
	}
	lp->period_us = period_ms * 1000;
	lp->schedstat = open("/proc/thread-self/schedstat",
	    O_RDONLY | O_CLOEXEC);
	loop_probe_arm(lp);
	*ret = lp;
	return 0;
}

void
loop_probe_stats(const struct loop_probe *lp, struct loop_probe_stats *ret)
{
	uint64_t want, seen = 0;
	size_t b;

	*ret = lp->st;
	ret->late_p99_us = 0;
	if (lp->st.ticks == 0)
		return;
	want = lp->st.ticks - lp->st.ticks / 100;
	for (b = 0; b < LOOP_PROBE_BUCKETS; b++)
		if ((seen += lp->hist[b]) >= want) {
			ret->late_p99_us = (uint64_t)b * 1000;
			break;
		}
}

void
loop_probe_format(const struct loop_probe_stats *s, char *buf, size_t len)
{
	snprintf(buf, len, "loop probe: %llu ticks; longest late %.1f ms "
	    "(loop thread on CPU %.1f ms of it, waiting for a CPU %.1f ms, "
	    "%llu involuntary and %llu voluntary switches); most CPU in one "
	    "tick %.1f ms; p99 late under %.0f ms; %llu over 50 ms; longest "
	    "late not waiting for a CPU %.1f ms",
	    (unsigned long long)s->ticks, s->late_max_us / 1000.0,
	    s->cpu_in_max_us / 1000.0, s->runq_in_max_us / 1000.0,
	    (unsigned long long)s->nivcsw_in_max,
	    (unsigned long long)s->nvcsw_in_max, s->cpu_max_us / 1000.0,
	    s->late_p99_us / 1000.0 + 1, (unsigned long long)s->over_50ms,
	    s->own_max_us / 1000.0);
}

void
loop_probe_free(struct loop_probe *lp)
{
	if (lp == NULL)
		return;
	event_free(lp->ev);
	if (lp->schedstat >= 0)
		close(lp->schedstat);
	free(lp);
}
