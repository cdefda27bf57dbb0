/*
 * mailstowd_start.c - catch-up at daemon start, as systemd's
 * Persistent=true: a profile whose schedule fired while the daemon was
 * down (a fire after the start of its newest recorded run) runs once now,
 * through the normal queue, with trigger "catch-up"; an `every D` profile
 * goes on D after its last run ended rather than at once.
 */
#define _GNU_SOURCE		/* fopencookie() */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "mailstowd.h"

#define MD_HEAD_MAX	2048	/* bytes of a run's JSON kept: its head */

/* The first bytes written to a FILE; the rest is counted and dropped. */
struct md_head {
	char	 buf[MD_HEAD_MAX + 1];
	size_t	 len;
};

static ssize_t
md_head_write(void *cookie, const char *data, size_t n)
{
	struct md_head *h = cookie;
	size_t room = MD_HEAD_MAX - h->len;

	memcpy(h->buf + h->len, data, n < room ? n : room);
	h->len += n < room ? n : room;
	return (ssize_t)n;
}

/* `"key":"YYYY-MM-DDTHH:MM:SSZ"` in the head: 0 and *ret; *ret = 0 for
 * null; -EINVAL when it is not there. */
static int
md_head_time(const char *head, const char *key, time_t *ret)
{
	char pat[32];
	const char *p;
	struct tm tm;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	if ((p = strstr(head, pat)) == NULL)
		return -EINVAL;
	p += strlen(pat);
	if (strncmp(p, "null", 4) == 0) {
		*ret = 0;
		return 0;
	}
	memset(&tm, 0, sizeof tm);
	if (sscanf(p, "\"%4d-%2d-%2dT%2d:%2d:%2dZ\"", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret = timegm(&tm);
	return 0;
}

/*
 * Start and end of the profile's newest run: -ENOENT when it never ran.
 * Read through the protocol printer (store.h documents the JSON and its
 * key order), keeping only the run object's head: a run's events may be
 * many.
 */
static int
md_last_run_times(struct store *st, const char *profile, int64_t *ret_id,
    time_t *ret_start, time_t *ret_end)
{
	static const cookie_io_functions_t io = { .write = md_head_write };
	struct md_head h = { .len = 0 };
	time_t start, end;
	int64_t id;
	FILE *f;
	int r;

	if ((r = store_last_run(st, profile, &id)) < 0)
		return r;
	if ((f = fopencookie(&h, "w", io)) == NULL)
		return -errno;
	r = store_print_protocol(st, id, true, f);
	fclose(f);
	if (r < 0)
		return r;
	h.buf[h.len] = '\0';
	if (md_head_time(h.buf, "started", &start) < 0 || start == 0 ||
	    md_head_time(h.buf, "finished", &end) < 0)
		return -EINVAL;
	*ret_id = id;
	*ret_start = start;
	*ret_end = end;
	return 0;
}

/* `every D` with a recorded run: go on D after it ended, or (fires were
 * missed and are not caught up) at the next step of that series. */
static void
md_every_resume(struct md_prof *p, time_t end, time_t now, bool missed)
{
	uint64_t d;
	int64_t t;

	if (sched_period(p->sched, &d) < 0 || d == 0)
		return;
	t = (int64_t)end + (int64_t)d;
	if (missed)
		t += ((int64_t)now - t) / (int64_t)d * (int64_t)d + (int64_t)d;
	md_prof_plan_every(p, t * 1000);
}

static void
md_catch_up_prof(struct md *md, struct md_prof *p, time_t now)
{
	const struct conf_profile *cp;
	struct md_logctx ctx = { .profile = p->name };
	time_t start, end;
	char iso[32];
	int64_t id;
	int r, missed;

	cp = conf_find_profile(md->conf->conf, p->name);
	if (cp == NULL || p->job != NULL || sched_kind(p->sched) == SCHED_MANUAL)
		return;
	if ((r = md_last_run_times(md->store, p->name, &id, &start, &end)) < 0) {
		if (r != -ENOENT)
			md_log(LOG_LVL_WARN, &ctx, "profile %s: cannot read its "
			    "last run (%s); no catch-up", p->name, strerror(-r));
		return;
	}
	if ((missed = sched_missed(p->sched, start, end, p->timezone,
	    now)) < 0)
		return;
	if (sched_kind(p->sched) == SCHED_EVERY && !(missed && cp->catch_up))
		md_every_resume(p, end != 0 ? end : start, now, missed);
	time_iso8601(start, iso);
	if (missed && !cp->catch_up)
		md_log(LOG_LVL_INFO, &ctx, "profile %s: a fire was missed since "
		    "run %lld started at %s; not caught up (catch_up: false)",
		    p->name, (long long)id, iso);
	if (missed && cp->catch_up) {
		md_log(LOG_LVL_INFO, &ctx, "profile %s: a fire was missed since "
		    "run %lld started at %s; running it now", p->name,
		    (long long)id, iso);
		if (sched_kind(p->sched) == SCHED_EVERY)
			p->next_regular_ms = 0;
		if ((r = md_job_submit(md, p, "catch-up", NULL)) < 0)
			md_log(LOG_LVL_ERR, &ctx, "profile %s: could not queue "
			    "the catch-up run: %s", p->name, strerror(-r));
	}
	md_prof_arm(p);
}

void
md_catch_up(struct md *md)
{
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < md->n_profs; i++)
		if (!md->profs[i]->removed)
			md_catch_up_prof(md, md->profs[i], now);
}
