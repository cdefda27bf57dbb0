/*
 * mailstowd_start.c - catch-up at daemon start (and for a profile a reload
 * adds), as systemd's
 * Persistent=true: a profile whose schedule fired while the daemon was
 * down (a fire after the start of its newest recorded run) runs once now,
 * through the normal queue, with trigger "catch-up"; an `every D` profile
 * goes on D after its last run ended rather than at once.  The newest
 * run's result also seeds `status`, so it survives a restart.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "mailstowd.h"

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
	struct store_run_info info;
	time_t start, end;
	char iso[32];
	int64_t id;
	int r, missed;

	cp = conf_find_profile(md->conf->conf, p->name);
	if (cp == NULL || p->job != NULL)
		return;
	if ((r = store_last_run_info(md->store, p->name, &info)) < 0) {
		if (r != -ENOENT)
			md_log(LOG_LVL_WARN, &ctx, "profile %s: cannot read its "
			    "last run (%s); no catch-up", p->name, strerror(-r));
		return;
	}
	id = info.id;
	start = (time_t)info.started;
	end = (time_t)info.finished;
	/* `status` shows the last result even across restarts. */
	if (end != 0 && p->last_run == 0) {
		p->last_run = id;
		snprintf(p->last_status, sizeof p->last_status, "%s",
		    info.status);
		p->last_finished = end;
	}
	if (start == 0 || sched_kind(p->sched) == SCHED_MANUAL)
		return;
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

/* A profile a reload added: it may have runs from before it was removed,
 * and then catches up as it would at start. */
void
md_catch_up_added(struct md *md, struct md_prof *p)
{
	md_catch_up_prof(md, p, time(NULL));
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
