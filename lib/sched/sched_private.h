/*
 * sched_private.h - what the files of lib/sched share: the parsed
 * schedule, the civil calendar arithmetic, and time zones read from TZif
 * files (so that computing a fire time in a named zone never touches the
 * process-wide TZ variable).
 */
#ifndef MAILSTOW_SCHED_PRIVATE_H
#define MAILSTOW_SCHED_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "sched.h"

struct sched {
	enum sched_kind kind;
	uint64_t	 every_s;	/* SCHED_EVERY: the interval */
	uint64_t	 minutes;	/* bit n: minute n fires (0-59) */
	uint32_t	 hours;		/* bits 0-23 */
	uint32_t	 mdays;		/* bits 1-31 */
	uint32_t	 months;	/* bits 1-12 */
	uint32_t	 wdays;		/* bits 0-6, 0 = Sunday */
	bool		 mday_any;	/* the field was "*": the other day */
	bool		 wday_any;	/* field alone decides (cron's rule) */
};

/* Division rounding toward minus infinity, for times before 1970. */
static inline int64_t
sched_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Proleptic Gregorian calendar, days counted from 1970-01-01. */
int64_t	sched_days_from_civil(int64_t y, unsigned m, unsigned d);
void	sched_civil_from_days(int64_t days, int64_t *y, unsigned *m,
	    unsigned *d);
unsigned sched_weekday(int64_t days);		/* 0 = Sunday */
unsigned sched_month_days(int64_t y, unsigned m);

/*
 * A time zone: an IANA name read from $TZDIR or /usr/share/zoneinfo
 * (RFC 8536 TZif with its POSIX TZ footer), or NULL for the process's
 * local zone through localtime_r().  -EINVAL for a bad name or file.
 */
struct sched_zone;
int	sched_zone_load(const char *name, struct sched_zone **ret);
void	sched_zone_free(struct sched_zone *);
/* UTC offset in seconds (east positive) in effect at instant `t`. */
int	sched_zone_offset(const struct sched_zone *, int64_t t, int32_t *ret);

/* Parse a POSIX TZ rule string ("CET-1CEST,M3.5.0,M10.5.0/3") into a
 * zone with no transitions; for tests and TZif footers. */
int	sched_zone_from_posix(const char *tz, struct sched_zone **ret);

#endif
