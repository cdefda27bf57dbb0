/*
 * sched.h - schedule expressions and next-fire computation, pure: no loop,
 * no clock of its own.  Expressions: 5-field cron (lists, ranges, steps,
 * month and weekday names), @hourly @daily @weekly @monthly @yearly,
 * "every DURATION" and "manual".
 */
#ifndef MAILSTOW_SCHED_H
#define MAILSTOW_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct sched;

enum sched_kind { SCHED_MANUAL, SCHED_CRON, SCHED_EVERY };

/*
 * Parse `text`.  0 and *ret on success; -EINVAL with a sentence in `err`
 * ("field 2 (hour): 25 is out of range 0-23") otherwise.
 */
int	sched_parse(const char *text, struct sched **ret, char *err, size_t errlen);
void	sched_free(struct sched *);
enum sched_kind sched_kind(const struct sched *);

/*
 * The first fire time strictly after `after` (unix seconds).  Cron times are
 * wall-clock times in zone `tz` (an IANA name; NULL: the process's local
 * zone).  Across DST: a wall time skipped in spring fires once at the first
 * valid instant after the gap; a wall time repeated in autumn fires once
 * (at its first occurrence).  For SCHED_EVERY the result is
 * `after` + interval (pass the end of the previous run).  -ENOENT for
 * manual, -ERANGE when nothing fires within 5 years (e.g. "0 0 30 2 *").
 */
int	sched_next(const struct sched *, time_t after, const char *tz, time_t *ret);

/*
 * Can sched_next() compute in zone `tz`: "UTC", or an IANA name
 * ("Europe/Berlin") whose TZif file under $TZDIR or /usr/share/zoneinfo
 * reads?  0; -EINVAL for a bad name, a missing or broken file; -ENOMEM.
 */
int	sched_zone_check(const char *tz);

/*
 * The shortest wall-clock time between two fires, in seconds: the
 * interval of "every D"; for cron the smallest gap between two fire
 * minutes of a day, the gap from a day's last fire to the next day's
 * first included (86400 when a day has one fire).  -ENOENT for manual.
 */
int	sched_period(const struct sched *, uint64_t *ret_s);

/*
 * A random delay in [0, max_ms), uniform, from getrandom(2): no generator
 * state anywhere.  0 for max_ms 0.  -errno when the kernel gives no
 * random bytes.
 */
int	sched_jitter_ms(uint64_t max_ms, uint64_t *ret);

/*
 * Catch-up at start, as systemd's Persistent=true: was a fire missed
 * since the newest recorded run, so that the profile should run once now?
 * Cron: a fire time lies in (last_start, now], in zone `tz`.  Every D: the
 * run ended (last_end; 0: use last_start) at least D before now.  Manual,
 * or no run ever recorded (last_start 0): nothing was missed.  1 run now,
 * 0 not, -EINVAL for a bad zone.  However many fires were missed, the
 * answer is one run.
 */
int	sched_missed(const struct sched *, time_t last_start, time_t last_end,
	    const char *tz, time_t now);

#endif
