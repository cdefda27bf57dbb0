/*
 * sched_when.c - what the daemon asks of a schedule besides its next fire:
 * its shortest period (to bound a jitter), a random delay to spread
 * starts, and whether a fire was missed while the daemon was down (the
 * catch-up decision, pure so that it is tested without a daemon).
 */
#include <sys/random.h>

#include <errno.h>

#include "sched_private.h"

#define SCHED_DAY_MIN	1440

int
sched_period(const struct sched *s, uint64_t *ret_s)
{
	unsigned h, m, t, first = 0, prev = 0, gap = SCHED_DAY_MIN, n = 0;

	if (s == NULL)
		return -EINVAL;
	if (s->kind == SCHED_MANUAL)
		return -ENOENT;
	if (s->kind == SCHED_EVERY) {
		*ret_s = s->every_s;
		return 0;
	}
	for (h = 0; h < 24; h++) {
		if (!(s->hours >> h & 1))
			continue;
		for (m = 0; m < 60; m++) {
			if (!(s->minutes >> m & 1))
				continue;
			t = h * 60 + m;
			if (n++ == 0)
				first = t;
			else if (t - prev < gap)
				gap = t - prev;
			prev = t;
		}
	}
	/* From the day's last fire to the next day's first. */
	if (n > 1 && SCHED_DAY_MIN - prev + first < gap)
		gap = SCHED_DAY_MIN - prev + first;
	*ret_s = (uint64_t)gap * 60;
	return 0;
}

int
sched_jitter_ms(uint64_t max_ms, uint64_t *ret)
{
	uint64_t v, floor;
	ssize_t n;

	if (max_ms == 0) {
		*ret = 0;
		return 0;
	}
	/* Values below `floor` would make v % max_ms favour small delays:
	 * draw again (rarely needed; max_ms is far below 2^64). */
	floor = (0 - max_ms) % max_ms;
	do {
		do
			n = getrandom(&v, sizeof v, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if (n != (ssize_t)sizeof v)
			return -EIO;
	} while (v < floor);
	*ret = v % max_ms;
	return 0;
}

int
sched_missed(const struct sched *s, time_t last_start, time_t last_end,
    const char *tz, time_t now)
{
	time_t next;
	int r;

	if (s == NULL)
		return -EINVAL;
	if (s->kind == SCHED_MANUAL || last_start == 0)
		return 0;
	if (s->kind == SCHED_EVERY) {
		if (last_end == 0 || last_end < last_start)
			last_end = last_start;
		return (int64_t)now - (int64_t)last_end >= (int64_t)s->every_s;
	}
	/* The first fire after the run began: missed if it is not later
	 * than now.  Many missed fires are still one answer. */
	r = sched_next(s, last_start, tz, &next);
	if (r == -ERANGE)
		return 0;
	if (r < 0)
		return r;
	return next <= now;
}
