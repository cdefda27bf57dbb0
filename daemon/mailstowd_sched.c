/*
 * mailstowd_sched.c - when profiles run: one timer per profile armed for
 * its next regular fire or retry, jobs pushed onto the run queue (global
 * and per-host limits, never a profile twice), runs started and ended on
 * the loop, retries with exponential backoff before the next regular fire,
 * and the control clients waiting on a job told what happened.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "base/util.h"
#include "mailstowd.h"

static void md_prof_timer_cb(evutil_socket_t, short, void *);

int64_t
md_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Next cron fire after `after_ms` in the profile's zone, in ms; 0 when
 * none (logged). */
static int64_t
md_prof_next_cron(struct md_prof *p, int64_t after_ms)
{
	time_t next;
	int r;

	if ((r = sched_next(p->sched, (time_t)(after_ms / 1000), p->timezone,
	    &next)) < 0) {
		md_log(LOG_LVL_WARN, &(struct md_logctx){ .profile = p->name },
		    "profile %s: schedule \"%s\" fires no more: %s", p->name,
		    p->schedule, r == -ERANGE ? "nothing within 5 years" :
		    strerror(-r));
		return 0;
	}
	return (int64_t)next * 1000;
}

/* `every D`: D in ms. */
static int64_t
md_prof_interval_ms(struct md_prof *p)
{
	uint64_t s;

	if (sched_period(p->sched, &s) < 0 || s == 0)
		return 60000;
	return (int64_t)s * 1000;
}

/* A fresh random delay for one fire: [0, jitter). */
static int64_t
md_prof_jitter(struct md_prof *p)
{
	uint64_t ms;
	int r;

	if (p->jitter_ms == 0)
		return 0;
	if ((r = sched_jitter_ms(p->jitter_ms, &ms)) < 0) {
		md_log(LOG_LVL_WARN, &(struct md_logctx){ .profile = p->name },
		    "profile %s: no random delay for this fire: %s", p->name,
		    strerror(-r));
		return 0;
	}
	return (int64_t)ms;
}

/*
 * Plan the cron fire after `after_ms`: the nominal time (kept, so the
 * fire after it is found from it whatever the delay) plus a new jitter.
 */
static void
md_prof_plan_cron(struct md_prof *p, int64_t after_ms)
{
	int64_t now = md_now_ms(), t = md_prof_next_cron(p, after_ms);

	/* Suspended or the clock jumped over fires: go on from now. */
	if (t != 0 && t <= now - 1000)
		t = md_prof_next_cron(p, now);
	p->next_nominal_ms = t;
	p->next_regular_ms = t != 0 ? t + md_prof_jitter(p) : 0;
}

/* `every D`: the fire at `from_ms`, delayed by a new jitter. */
void
md_prof_plan_every(struct md_prof *p, int64_t from_ms)
{
	p->next_nominal_ms = from_ms;
	p->next_regular_ms = from_ms + md_prof_jitter(p);
}

static int64_t
md_prof_due(const struct md_prof *p)
{
	if (p->next_retry_ms != 0 && (p->next_regular_ms == 0 ||
	    p->next_retry_ms < p->next_regular_ms))
		return p->next_retry_ms;
	return p->next_regular_ms;
}

void
md_prof_arm(struct md_prof *p)
{
	int64_t due = md_prof_due(p), d;
	struct timeval tv;

	if (p->timer == NULL)
		return;
	if (due == 0 || p->removed || p->md->stopping) {
		evtimer_del(p->timer);
		return;
	}
	d = due - md_now_ms();
	if (d < 0)
		d = 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(p->timer, &tv);
}

/* After load or reload; `changed`: new profile or new schedule text. */
void
md_prof_first_arm(struct md_prof *p, bool changed)
{
	int64_t now = md_now_ms();

	if (p->timer == NULL)
		p->timer = evtimer_new(p->md->base, md_prof_timer_cb, p);
	if (changed) {
		switch (sched_kind(p->sched)) {
		case SCHED_MANUAL:
			p->next_regular_ms = p->next_retry_ms = 0;
			break;
		case SCHED_CRON:
			md_prof_plan_cron(p, now);
			break;
		case SCHED_EVERY:
			/* The first run at start; later ones D after the end. */
			if (p->job != NULL)
				p->next_regular_ms = 0;
			else
				md_prof_plan_every(p, p->last_finished != 0 ?
				    (int64_t)p->last_finished * 1000 +
				    md_prof_interval_ms(p) : now);
			break;
		}
	}
	md_prof_arm(p);
}

static void
md_waiters_end(struct md_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Send every waiting client its final line and forget them. */
static void
md_waiters_end(struct md_job *j, const char *fmt, ...)
{
	struct md_waiter *w;
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	while ((w = LIST_FIRST(&j->waiters)) != NULL) {
		LIST_REMOVE(w, entry);
		md_client_end(w->client, "%s", line);
		free(w);
	}
}

static int
md_waiter_add(struct md_job *j, struct md_client *cl)
{
	struct md_waiter *w;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return -ENOMEM;
	w->client = cl;
	LIST_INSERT_HEAD(&j->waiters, w, entry);
	return 0;
}

void
md_waiter_detach(struct md_job *j, struct md_client *cl)
{
	struct md_waiter *w;

	LIST_FOREACH(w, &j->waiters, entry)
		if (w->client == cl) {
			LIST_REMOVE(w, entry);
			free(w);
			return;
		}
}

static void
md_job_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct md_job *j = arg;

	run_free(j->run);
	md_conf_unref(j->conf);
	free(j);
}

/* Free after the current callback chain: run.c may still be on the stack. */
static void
md_job_free_later(struct md_job *j)
{
	struct timeval tv = { 0, 0 };

	if (event_base_once(j->md->base, -1, EV_TIMEOUT, md_job_free_cb, j,
	    &tv) < 0)
		md_log(LOG_LVL_WARN, NULL, "out of memory: a finished run "
		    "is not freed");
}

void
md_job_forget(struct md_job *j, int e, const char *why)
{
	md_host_forget(j->md, j);
	md_waiters_end(j, "error %s %s", ctl_errcode_name(e), why);
	j->prof->job = NULL;
	md_job_free_later(j);
}

void
md_job_drop_queued(struct md *md, int e, const char *why)
{
	struct md_job *j;

	while ((j = md_host_first_waiting(md)) != NULL ||
	    (j = ctl_queue_queued_at(md->queue, 0)) != NULL)
		md_job_forget(j, e, why);
}

static void
md_prof_after_run(struct md_prof *p, const char *status)
{
	struct md *md = p->md;
	int64_t now = md_now_ms(), t;

	if (sched_kind(p->sched) == SCHED_EVERY)
		md_prof_plan_every(p, now + md_prof_interval_ms(p));
	p->next_retry_ms = 0;
	if (strcmp(status, "failed") != 0) {
		p->retries = 0;
	} else if (sched_kind(p->sched) != SCHED_MANUAL &&
	    p->retries < MD_RETRY_MAX) {
		t = now + (int64_t)ctl_retry_delay_ms(md->retry_base_ms,
		    ++p->retries, MD_RETRY_CAP_MS);
		if (p->next_regular_ms == 0 || t < p->next_regular_ms) {
			p->next_retry_ms = t;
			md_log(LOG_LVL_INFO, &(struct md_logctx){
			    .profile = p->name, .mailbox = p->mailbox },
			    "profile %s: retry %u of %u in %llds", p->name,
			    p->retries, MD_RETRY_MAX,
			    (long long)(t - now + 999) / 1000);
		}
	}
	md_prof_arm(p);
}

static void
md_log_run_end(struct md_job *j, const struct run_result *res)
{
	const struct store_counts *c = &res->counts;
	struct md_logctx ctx = { j->prof->name, res->run_id, j->prof->mailbox,
	    NULL };
	enum log_level lvl = LOG_LVL_INFO;
	char hint[sizeof res->reason + 64] = "";

	if (strcmp(res->status, "failed") == 0) {
		lvl = LOG_LVL_ERR;
		snprintf(hint, sizeof hint, ": %s; see: mailstow protocol %lld",
		    res->reason, (long long)res->run_id);
	} else if (strcmp(res->status, "succeeded") != 0) {
		lvl = LOG_LVL_WARN;
	}
	md_log(lvl, &ctx, "profile %s run %lld: %s: found %llu archived %llu "
	    "skipped %llu failed %llu, %llu bytes in %llds%s", j->prof->name,
	    (long long)res->run_id, res->status, (unsigned long long)c->found,
	    (unsigned long long)c->archived, (unsigned long long)c->skipped,
	    (unsigned long long)c->failed, (unsigned long long)c->bytes,
	    (long long)(time(NULL) - j->started_at), hint);
}

static void
md_prof_sweep(struct md *md, struct md_prof *p)
{
	size_t i;

	for (i = 0; i < md->n_profs; i++)
		if (md->profs[i] == p) {
			memmove(&md->profs[i], &md->profs[i + 1],
			    (md->n_profs - i - 1) * sizeof *md->profs);
			md->n_profs--;
			break;
		}
	md_prof_free(p);
}

static void
md_job_done(struct run *run, const struct run_result *res, void *arg)
{
	struct md_job *j = arg;
	struct md_prof *p = j->prof;
	struct md *md = j->md;

	j->running = false;
	md_log_run_end(j, res);
	p->last_run = res->run_id;
	snprintf(p->last_status, sizeof p->last_status, "%s", res->status);
	p->last_finished = time(NULL);
	md_waiters_end(j, "done %lld %s", (long long)res->run_id, res->status);
	ctl_queue_finished(md->queue, p->name);
	md_host_release(md, j);
	p->job = NULL;
	md_job_free_later(j);
	if (p->removed)
		md_prof_sweep(md, p);
	else if (!md->stopping)
		md_prof_after_run(p, res->status);
	if (md->stopping) {
		if (ctl_queue_n_running(md->queue) == 0)
			event_base_loopexit(md->base, NULL);
		return;
	}
	md_dispatch(md);
	md_notify_status(md);
}

static void
md_job_started(struct md_job *j)
{
	struct md_logctx ctx = { j->prof->name, j->run_id, j->prof->mailbox,
	    NULL };
	struct md_waiter *w;

	md_log(LOG_LVL_INFO, &ctx, "profile %s run %lld: started (trigger %s)",
	    j->prof->name, (long long)j->run_id, j->trigger);
	LIST_FOREACH(w, &j->waiters, entry) {
		md_client_send(w->client, "started %lld", (long long)j->run_id);
		md_client_send(w->client, "progress run %lld of profile %s "
		    "started by mailstowd", (long long)j->run_id, j->prof->name);
	}
}

/* Sessions a run of `cp` can use: one per mailbox, at most max_parallel
 * (a mailboxes_file is read by the run: its length is not known here). */
static uint32_t
md_job_want(const struct conf_profile *cp)
{
	uint32_t n;

	if (cp == NULL || (cp->n_mailboxes == 0 && cp->mailboxes_file == NULL))
		return 1;
	n = cp->max_parallel > 0 ? cp->max_parallel : 1;
	if (cp->mailboxes_file == NULL && cp->n_mailboxes < n)
		n = (uint32_t)cp->n_mailboxes;
	return n;
}

static void
md_job_start(struct md_job *j, const struct conf_profile *cp)
{
	struct md *md = j->md;
	struct run_params rp = { 0 };
	int r;

	j->conf = md_conf_ref(md->conf);
	rp = (struct run_params){ .base = md->base, .dns = md->dns,
	    .store = md->store, .profile = cp, .trigger = j->trigger,
	    .max_sessions = j->sessions };
	if (cp == NULL)
		r = -ENOENT;
	else
		r = run_start(&rp, md_job_done, j, &j->run);
	if (r < 0) {
		md_log(LOG_LVL_ERR, &(struct md_logctx){ .profile =
		    j->prof->name }, "profile %s: could not start a run: %s",
		    j->prof->name, strerror(-r));
		md_waiters_end(j, "error io could not start a run: %s",
		    strerror(-r));
		ctl_queue_finished(md->queue, j->prof->name);
		md_host_release(md, j);
		j->prof->job = NULL;
		md_prof_after_run(j->prof, "failed");
		md_job_free_later(j);
		return;
	}
	j->running = true;
	j->run_id = run_id(j->run);
	j->started_at = time(NULL);
	if (strcmp(j->trigger, "schedule") == 0)
		j->prof->retries = 0;
	md_job_started(j);
}

void
md_dispatch(struct md *md)
{
	const struct conf_profile *cp;
	struct md_job *j;
	void *arg;

	while (!md->stopping && ctl_queue_pop(md->queue, &arg) == 0) {
		j = arg;
		cp = conf_find_profile(md->conf->conf, j->prof->name);
		/* No session free: it went back to wait for its host. */
		if (md_host_take(md, j, md_job_want(cp)) == 0)
			continue;
		md_job_start(j, cp);
	}
	md_notify_status(md);
}

int
md_job_submit(struct md *md, struct md_prof *p, const char *trigger,
    struct md_client *cl)
{
	const struct conf_profile *cp;
	struct md_job *j;
	int r;

	cp = conf_find_profile(md->conf->conf, p->name);
	if (cp == NULL || (j = calloc(1, sizeof *j)) == NULL)
		return cp == NULL ? -ENOENT : -ENOMEM;
	j->md = md;
	j->prof = p;
	snprintf(j->trigger, sizeof j->trigger, "%s", trigger);
	j->queued_at = time(NULL);
	LIST_INIT(&j->waiters);
	if ((cl != NULL && (r = md_waiter_add(j, cl)) < 0) ||
	    (r = md_host_admit(md, j, cp->server.host)) < 0) {
		free(LIST_FIRST(&j->waiters));
		free(j);
		return r;
	}
	p->job = j;
	md_dispatch(md);
	return 0;
}

static void
md_prof_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct md_prof *p = arg;
	int64_t now = md_now_ms(), due = md_prof_due(p);
	bool regular;
	int r;

	if (due == 0 || p->md->stopping)
		return;
	if (now + 20 < due) {		/* the wall clock moved back */
		md_prof_arm(p);
		return;
	}
	regular = p->next_regular_ms != 0 && p->next_regular_ms <= now + 20;
	p->next_retry_ms = 0;
	if (regular && sched_kind(p->sched) == SCHED_CRON)
		md_prof_plan_cron(p, p->next_nominal_ms);
	else if (regular)
		p->next_regular_ms = 0;
	if (p->job != NULL)
		md_log(LOG_LVL_INFO, &(struct md_logctx){ .profile = p->name },
		    "profile %s: due, but still %s; this fire is skipped",
		    p->name, p->job->running ? "running" : "queued");
	else if ((r = md_job_submit(p->md, p, regular ? "schedule" : "retry",
	    NULL)) < 0)
		md_log(LOG_LVL_ERR, &(struct md_logctx){ .profile = p->name },
		    "profile %s: could not queue a run: %s", p->name,
		    strerror(-r));
	md_prof_arm(p);
}

int
md_request_run(struct md *md, const char *name, struct md_client *cl,
    char *err, size_t errlen)
{
	struct md_prof *p = md_prof_find(md, name);
	char since[32];

	if (md->stopping) {
		snprintf(err, errlen, "the daemon is shutting down");
		return -ESHUTDOWN;
	}
	if (p == NULL) {
		snprintf(err, errlen, "no profile '%s' in %s", name,
		    md->config_path);
		return -ENOENT;
	}
	if (p->job != NULL && p->job->running) {
		time_iso8601(p->job->started_at, since);
		snprintf(err, errlen, "profile %s is already running since %s "
		    "(run %lld)", name, since, (long long)p->job->run_id);
		return -EBUSY;
	}
	if (p->job != NULL) {
		/* Queued by its schedule: the request joins that run. */
		snprintf(p->job->trigger, sizeof p->job->trigger, "manual");
		if (md_waiter_add(p->job, cl) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		return 0;
	}
	if (md_job_submit(md, p, "manual", cl) < 0) {
		snprintf(err, errlen, "could not queue a run");
		return -ENOMEM;
	}
	return 0;
}

/* SIGTERM: no more fires, queued jobs dropped, running ones interrupted. */
void
md_cancel_all(struct md *md)
{
	size_t i;

	for (i = 0; i < md->n_profs; i++) {
		if (md->profs[i]->timer != NULL)
			evtimer_del(md->profs[i]->timer);
		if (md->profs[i]->job != NULL && md->profs[i]->job->running)
			run_cancel(md->profs[i]->job->run);
	}
}
