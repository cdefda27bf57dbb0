/*
 * sched_next.c - the next fire time of a schedule.  Cron fields are
 * matched against wall-clock time in a zone; the search walks days, then
 * hours, then minutes (bounded to 5 years), and turns each matching wall
 * time into an instant with the DST rules of sched.h: a skipped wall time
 * fires at the end of the gap, a repeated one only at its first pass.
 */
#include <errno.h>
#include <stdint.h>

#include "sched_private.h"

#define SCHED_SEARCH_DAYS	(5 * 366)
/* Instants we accept: about 30,000 years either side of 1970 keeps all
 * the day arithmetic far from overflow. */
#define SCHED_TIME_LIMIT	(INT64_C(1) << 40)
/* A wall time maps to instants within a day of it: sample the zone's
 * offsets every 3 hours over +-1 day to learn which ones can apply. */
#define SCHED_SAMPLE_STEP	(3 * 3600)
#define SCHED_SAMPLES		17

static int
sched_wall(const struct sched_zone *z, int64_t t, int64_t *ret)
{
	int32_t off;
	int r;

	if ((r = sched_zone_offset(z, t, &off)) < 0)
		return r;
	*ret = t + off;
	return 0;
}

/* The distinct offsets in effect around wall time `l`. */
static int
sched_offsets(const struct sched_zone *z, int64_t l, int32_t *offs,
    size_t *ret_n)
{
	size_t n = 0, i, k;
	int32_t o;
	int r;

	for (k = 0; k < SCHED_SAMPLES; k++) {
		int64_t t = l + ((int64_t)k - SCHED_SAMPLES / 2) *
		    SCHED_SAMPLE_STEP;

		if ((r = sched_zone_offset(z, t, &o)) < 0)
			return r;
		for (i = 0; i < n && offs[i] != o; i++)
			;
		if (i == n)
			offs[n++] = o;
	}
	*ret_n = n;
	return 0;
}

/* In a spring-forward gap: the first instant whose wall time is at or
 * after `l`, i.e. the end of the gap.  Wall time only moves forward
 * between lo and hi here, so a binary search finds it. */
static int
sched_gap_end(const struct sched_zone *z, int64_t l, int64_t lo, int64_t hi,
    int64_t *ret)
{
	int64_t w;
	int r;

	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;

		if ((r = sched_wall(z, mid, &w)) < 0)
			return r;
		if (w >= l)
			hi = mid;
		else
			lo = mid + 1;
	}
	if ((r = sched_wall(z, lo, &w)) < 0)
		return r;
	if (w < l)
		return 0;
	*ret = lo;
	return 1;
}

/*
 * The instant wall time `l` (local seconds) fires at: 1 and *ret, or 0
 * when it does not fire after `after`.  Of two instants (autumn) only the
 * first counts, even when it is already past.
 */
static int
sched_resolve(const struct sched_zone *z, int64_t l, int64_t after,
    int64_t *ret)
{
	int32_t offs[SCHED_SAMPLES], o, lo_o, hi_o;
	int64_t best = INT64_MAX, t;
	size_t n, i;
	int r;

	if ((r = sched_offsets(z, l, offs, &n)) < 0)
		return r;
	lo_o = hi_o = offs[0];
	for (i = 0; i < n; i++) {
		lo_o = offs[i] < lo_o ? offs[i] : lo_o;
		hi_o = offs[i] > hi_o ? offs[i] : hi_o;
		t = l - offs[i];
		if ((r = sched_zone_offset(z, t, &o)) < 0)
			return r;
		if (o == offs[i] && t < best)
			best = t;
	}
	if (best == INT64_MAX) {
		if ((r = sched_gap_end(z, l, l - hi_o, l - lo_o, &best)) <= 0)
			return r;
	}
	if (best <= after)
		return 0;
	*ret = best;
	return 1;
}

static bool
sched_day_matches(const struct sched *s, unsigned mday, unsigned wday)
{
	bool dm = s->mdays >> mday & 1, dw = s->wdays >> wday & 1;

	/* Cron's rule: with both day fields restricted, either may match. */
	if (s->mday_any || s->wday_any)
		return dm && dw;
	return dm || dw;
}

/* Try the hours and minutes of one matching day, from h0:m0 on. */
static int
sched_try_day(const struct sched *s, const struct sched_zone *z, int64_t day,
    unsigned h0, unsigned m0, int64_t after, int64_t *ret)
{
	unsigned h, m;
	int r;

	for (h = h0; h < 24; h++) {
		if (!(s->hours >> h & 1))
			continue;
		for (m = h == h0 ? m0 : 0; m < 60; m++) {
			if (!(s->minutes >> m & 1))
				continue;
			r = sched_resolve(z, day * 86400 + h * 3600 + m * 60,
			    after, ret);
			if (r != 0)
				return r;
		}
	}
	return 0;
}

static int
sched_cron_next(const struct sched *s, const struct sched_zone *z,
    int64_t after, int64_t *ret)
{
	int64_t w, first, day, y;
	unsigned h0, m0, mon, mday, sec;
	int r;

	/* Fire times are whole wall minutes: start at the minute after the
	 * one `after` falls in. */
	if ((r = sched_wall(z, after, &w)) < 0)
		return r;
	w = sched_floor_div(w, 60) * 60 + 60;
	first = sched_floor_div(w, 86400);
	sec = (unsigned)(w - first * 86400);
	h0 = sec / 3600;
	m0 = sec % 3600 / 60;
	for (day = first; day <= first + SCHED_SEARCH_DAYS; day++) {
		sched_civil_from_days(day, &y, &mon, &mday);
		if (!(s->months >> mon & 1)) {
			/* Skip the month: to its last day, then on. */
			day += sched_month_days(y, mon) - mday;
			continue;
		}
		if (!sched_day_matches(s, mday, sched_weekday(day)))
			continue;
		r = sched_try_day(s, z, day, day == first ? h0 : 0,
		    day == first ? m0 : 0, after, ret);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	return -ERANGE;
}

int
sched_next(const struct sched *s, time_t after, const char *tz, time_t *ret)
{
	struct sched_zone *z;
	int64_t t;
	int r;

	if (s == NULL)
		return -EINVAL;
	switch (s->kind) {
	case SCHED_MANUAL:
		return -ENOENT;
	case SCHED_EVERY:
		if ((int64_t)after > SCHED_TIME_LIMIT ||
		    (int64_t)after < -SCHED_TIME_LIMIT)
			return -ERANGE;
		*ret = (time_t)((int64_t)after + (int64_t)s->every_s);
		return 0;
	case SCHED_CRON:
		break;
	default:
		return -EINVAL;
	}
	if ((int64_t)after > SCHED_TIME_LIMIT || (int64_t)after < -SCHED_TIME_LIMIT)
		return -ERANGE;
	if ((r = sched_zone_load(tz, &z)) < 0)
		return r;
	r = sched_cron_next(s, z, (int64_t)after, &t);
	sched_zone_free(z);
	if (r < 0)
		return r;
	*ret = (time_t)t;
	return 0;
}
