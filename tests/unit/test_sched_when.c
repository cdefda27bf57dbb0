/*
 * test_sched_when.c - what the daemon asks of a schedule besides the next
 * fire: the shortest period (which bounds a jitter), random delays within
 * [0, jitter), the catch-up decision at start (last run start and end,
 * schedule, zone, now -> run or not) and the zone check of the config.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sched/sched.h"

static time_t
utc(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	if (sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		fail_msg("bad time %s", iso);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static struct sched *
parse(const char *expr)
{
	struct sched *s;
	char err[256];

	if (sched_parse(expr, &s, err, sizeof err) != 0)
		fail_msg("%s: %s", expr, err);
	return s;
}

static void
expect_period(const char *expr, int code, uint64_t want)
{
	struct sched *s = parse(expr);
	uint64_t got = 4242;
	int r = sched_period(s, &got);

	sched_free(s);
	if (r != code || (code == 0 && got != want) ||
	    (code != 0 && got != 4242))
		fail_msg("\"%s\": r=%d period %llu, want r=%d %llu", expr, r,
		    (unsigned long long)got, code, (unsigned long long)want);
}

static void
test_period(void **state)
{
	expect_period("every 15m", 0, 900);
	expect_period("every 1h30m", 0, 5400);
	expect_period("*/15 * * * *", 0, 900);
	expect_period("* * * * *", 0, 60);
	expect_period("@hourly", 0, 3600);
	expect_period("@daily", 0, 86400);
	expect_period("@weekly", 0, 86400);
	expect_period("0 8,20 * * mon-fri", 0, 12 * 3600);
	/* 23:00 to the next day's 00:00 is the shortest gap. */
	expect_period("0 0,23 * * *", 0, 3600);
	expect_period("5,50 10 * * *", 0, 45 * 60);
	/* 10:50 to 11:05 across the hour. */
	expect_period("5,50 10,11 * * *", 0, 15 * 60);
	expect_period("manual", -ENOENT, 0);
}

static void
test_jitter_bounds(void **state)
{
	static uint8_t seen[1000];
	uint64_t v = 77, lo = UINT64_MAX, hi = 0;
	size_t i, distinct = 0;

	assert_int_equal(sched_jitter_ms(0, &v), 0);
	assert_int_equal(v, 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(sched_jitter_ms(1, &v), 0);
		assert_int_equal(v, 0);
	}
	for (i = 0; i < 20000; i++) {
		assert_int_equal(sched_jitter_ms(1000, &v), 0);
		assert_true(v < 1000);
		seen[v] = 1;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	for (i = 0; i < 1000; i++)
		distinct += seen[i];
	/* 20,000 uniform draws over 1,000 values miss one with probability
	 * about 1000 * e^-20: all are hit, both ends included. */
	assert_int_equal(distinct, 1000);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 999);
	/* An hour's jitter: below the hour, and not stuck at small values. */
	for (i = 0, hi = 0; i < 1000; i++) {
		assert_int_equal(sched_jitter_ms(3600000, &v), 0);
		assert_true(v < 3600000);
		hi = v > hi ? v : hi;
	}
	assert_true(hi > 1800000);
}

static void
expect_missed(const char *expr, const char *start, const char *end,
    const char *tz, const char *now, int want)
{
	struct sched *s = parse(expr);
	int r;

	r = sched_missed(s, start ? utc(start) : 0, end ? utc(end) : 0, tz,
	    utc(now));
	sched_free(s);
	if (r != want)
		fail_msg("\"%s\" last run %s..%s, now %s in %s: %d, want %d",
		    expr, start ? start : "-", end ? end : "-", now,
		    tz ? tz : "UTC", r, want);
}

static void
test_catch_up_cron(void **state)
{
	/* Hourly, last run two hours ago: missed -> run once. */
	expect_missed("@hourly", "2026-05-01T10:00:05", "2026-05-01T10:01:00",
	    "UTC", "2026-05-01T12:10:00", 1);
	/* Ten days of missed fires are still one "yes". */
	expect_missed("@hourly", "2026-04-21T10:00:05", "2026-04-21T10:01:00",
	    "UTC", "2026-05-01T12:10:00", 1);
	/* The last run started after the most recent fire: nothing. */
	expect_missed("@hourly", "2026-05-01T12:00:03", "2026-05-01T12:05:00",
	    "UTC", "2026-05-01T12:59:59", 0);
	/* A fire exactly at now counts; one second before it does not. */
	expect_missed("@hourly", "2026-05-01T12:00:03", NULL, "UTC",
	    "2026-05-01T13:00:00", 1);
	expect_missed("@hourly", "2026-05-01T12:00:03", NULL, "UTC",
	    "2026-05-01T12:59:59", 0);
	/* A run that began at the fire's own second is that fire. */
	expect_missed("@hourly", "2026-05-01T12:00:00", NULL, "UTC",
	    "2026-05-01T12:30:00", 0);
	/* Never ran, or manual: nothing was missed. */
	expect_missed("@hourly", NULL, NULL, "UTC", "2026-05-01T12:30:00", 0);
	expect_missed("manual", "2020-01-01T00:00:00", "2020-01-01T00:01:00",
	    "UTC", "2026-05-01T12:30:00", 0);
	/* A schedule that never fires misses nothing. */
	expect_missed("0 0 30 2 *", "2020-01-01T00:00:00", NULL, "UTC",
	    "2026-05-01T12:30:00", 0);
}

static void
test_catch_up_zone(void **state)
{
	/* 02:30 daily: Berlin's (00:30Z in summer) lies in the window, New
	 * York's (06:30Z) does not. */
	expect_missed("30 2 * * *", "2026-07-01T00:00:00", NULL,
	    "Europe/Berlin", "2026-07-01T01:00:00", 1);
	expect_missed("30 2 * * *", "2026-07-01T00:00:00", NULL,
	    "America/New_York", "2026-07-01T01:00:00", 0);
	expect_missed("30 2 * * *", "2026-07-01T00:00:00", NULL,
	    "America/New_York", "2026-07-01T06:30:00", 1);
	/* Berlin's spring gap: 02:30 on 29 March fires at 03:00 CEST
	 * (01:00Z): missed from then on, not before. */
	expect_missed("30 2 * * *", "2026-03-28T23:00:00", NULL,
	    "Europe/Berlin", "2026-03-29T00:59:59", 0);
	expect_missed("30 2 * * *", "2026-03-28T23:00:00", NULL,
	    "Europe/Berlin", "2026-03-29T01:00:00", 1);
	/* Autumn: 02:30 repeats on 25 October but fires only at the first
	 * (00:30Z); a run at that fire misses nothing at the second. */
	expect_missed("30 2 * * *", "2026-10-25T00:30:00", NULL,
	    "Europe/Berlin", "2026-10-25T01:45:00", 0);
	/* A bad zone is an error, not a guess. */
	expect_missed("30 2 * * *", "2026-07-01T00:00:00", NULL,
	    "Nowhere/City", "2026-07-01T01:00:00", -EINVAL);
}

static void
test_catch_up_every(void **state)
{
	/* every 1h: the last run ended two hours ago -> run. */
	expect_missed("every 1h", "2026-05-01T09:00:00", "2026-05-01T10:00:00",
	    NULL, "2026-05-01T12:00:00", 1);
	/* Ended 30 minutes ago: its next run is not due yet. */
	expect_missed("every 1h", "2026-05-01T11:00:00", "2026-05-01T11:30:00",
	    NULL, "2026-05-01T12:00:00", 0);
	/* Exactly D after the end: due. */
	expect_missed("every 1h", "2026-05-01T10:50:00", "2026-05-01T11:00:00",
	    NULL, "2026-05-01T12:00:00", 1);
	/* No end recorded: counted from the start. */
	expect_missed("every 1h", "2026-05-01T10:00:00", NULL, NULL,
	    "2026-05-01T11:00:01", 1);
	expect_missed("every 1h", "2026-05-01T10:30:00", NULL, NULL,
	    "2026-05-01T11:00:01", 0);
}

static void
test_zone_check(void **state)
{
	assert_int_equal(sched_zone_check("Europe/Berlin"), 0);
	assert_int_equal(sched_zone_check("America/New_York"), 0);
	assert_int_equal(sched_zone_check("UTC"), 0);
	assert_int_equal(sched_zone_check("Europe/Berln"), -EINVAL);
	assert_int_equal(sched_zone_check("../../etc/passwd"), -EINVAL);
	assert_int_equal(sched_zone_check("/etc/localtime"), -EINVAL);
	assert_int_equal(sched_zone_check(""), -EINVAL);
	assert_int_equal(sched_zone_check(NULL), -EINVAL);
	/* A directory is not a zone. */
	assert_int_equal(sched_zone_check("Europe"), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_period),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_catch_up_cron),
		cmocka_unit_test(test_catch_up_zone),
		cmocka_unit_test(test_catch_up_every),
		cmocka_unit_test(test_zone_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
