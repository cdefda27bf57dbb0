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

#endif
