/*
 * loop_probe.h - how late the event loop serves a timer: the measure of
 * the loop's longest stall (issue 7's "no stall over 50 ms"), split into
 * the loop thread's own CPU time and the time it waited (blocked in a
 * system call or descheduled), so a slow stretch can be blamed right.
 */
#ifndef MAILSTOW_BASE_LOOP_PROBE_H
#define MAILSTOW_BASE_LOOP_PROBE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct loop_probe;

/* The worst tick seen, and how the ticks were spread. */
struct loop_probe_stats {
	uint64_t ticks;
	uint64_t late_max_us;		/* longest lateness of one tick */
	uint64_t cpu_in_max_us;		/* loop thread CPU during that tick */
	uint64_t runq_in_max_us;	/* its wait for a CPU (preempted) */
	uint64_t nivcsw_in_max;		/* involuntary switches during it */
	uint64_t nvcsw_in_max;		/* voluntary (blocked) switches */
	uint64_t cpu_max_us;		/* most loop CPU in any one tick */
	uint64_t own_max_us;		/* longest lateness not spent waiting
					 * for a CPU: callbacks and blocking */
	uint64_t late_p99_us;
	uint64_t over_50ms;
};

/*
 * Arm a timer on `base` every `period_ms` (1-1000) on the calling thread,
 * which must be the loop's.  -EINVAL, -ENOMEM.
 */
int	loop_probe_start(struct event_base *base, uint32_t period_ms,
	    struct loop_probe **ret);
void	loop_probe_stats(const struct loop_probe *, struct loop_probe_stats *);
/* One line: "loop probe: ..." (no newline). */
void	loop_probe_format(const struct loop_probe_stats *, char *buf,
	    size_t len);
void	loop_probe_free(struct loop_probe *);

#endif
