/*
 * mailstowd_conf.c - loading and reloading the configuration.  A new file
 * is loaded and every schedule parsed before anything changes; only then
 * is it swapped in.  Profile schedule state is carried over by name, runs
 * keep a reference to the config they started with, and a profile removed
 * while it runs stays until its run ends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/util.h"
#include "mailstowd.h"

int
md_conf_load(const char *path, struct md_conf **ret, char *err, size_t errlen)
{
	struct conf_error cerr;
	struct md_conf *mc;
	struct conf *c;
	struct sched *s;
	char serr[256];
	size_t i;
	int r;

	if ((r = conf_load(path, &c, &cerr)) < 0) {
		snprintf(err, errlen, "%s", cerr.text);
		return r;
	}
	for (i = 0; i < c->n_profiles; i++) {
		const struct conf_profile *p = &c->profiles[i];

		if (sched_parse(p->schedule, &s, serr, sizeof serr) < 0) {
			snprintf(err, errlen, "%s:%u: profile %s: schedule "
			    "\"%s\": %s", p->source_file ? p->source_file :
			    path, p->source_line, p->name, p->schedule, serr);
			conf_free(c);
			return -EINVAL;
		}
		sched_free(s);
	}
	if ((mc = calloc(1, sizeof *mc)) == NULL) {
		conf_free(c);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	mc->conf = c;
	mc->refs = 1;
	*ret = mc;
	return 0;
}

struct md_conf *
md_conf_ref(struct md_conf *mc)
{
	mc->refs++;
	return mc;
}

void
md_conf_unref(struct md_conf *mc)
{
	if (mc == NULL || --mc->refs > 0)
		return;
	conf_free(mc->conf);
	free(mc);
}

void
md_prof_free(struct md_prof *p)
{
	if (p == NULL)
		return;
	if (p->timer != NULL)
		event_free(p->timer);
	sched_free(p->sched);
	free(p->name);
	free(p->schedule);
	free(p->timezone);
	free(p->mailbox);
	free(p);
}

struct md_prof *
md_prof_find(struct md *md, const char *name)
{
	size_t i;

	for (i = 0; i < md->n_profs; i++)
		if (!md->profs[i]->removed && strcmp(md->profs[i]->name, name) == 0)
			return md->profs[i];
	return NULL;
}

/* What a profile of the new config will get, prepared before the swap. */
struct md_prep {
	struct md_prof *prof;		/* existing, or new */
	bool	 fresh;
	struct sched *sched;
	char	*schedule, *timezone, *mailbox;
	uint32_t jitter_ms;
};

static void
md_prep_free(struct md_prep *pp, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		sched_free(pp[i].sched);
		free(pp[i].schedule);
		free(pp[i].timezone);
		free(pp[i].mailbox);
		if (pp[i].fresh)
			md_prof_free(pp[i].prof);
	}
	free(pp);
}

/* Also a profile that was removed while it ran and now comes back. */
static struct md_prof *
md_prof_find_any(struct md *md, const char *name)
{
	size_t i;

	for (i = 0; i < md->n_profs; i++)
		if (strcmp(md->profs[i]->name, name) == 0)
			return md->profs[i];
	return NULL;
}

static int
md_prep_one(struct md *md, const struct conf_profile *p, struct md_prep *pp)
{
	char serr[256];

	pp->prof = md_prof_find_any(md, p->name);
	if (pp->prof == NULL) {
		if ((pp->prof = calloc(1, sizeof *pp->prof)) == NULL)
			return -ENOMEM;
		pp->fresh = true;
		pp->prof->md = md;
		if ((pp->prof->name = strdup(p->name)) == NULL)
			return -ENOMEM;
	}
	pp->schedule = strdup(p->schedule);
	/* A batch profile has no one mailbox: name the batch by its profile. */
	pp->mailbox = strdup(p->auth.user != NULL ? p->auth.user : p->name);
	if (pp->schedule == NULL || pp->mailbox == NULL)
		return -ENOMEM;
	if (p->timezone != NULL && (pp->timezone = strdup(p->timezone)) == NULL)
		return -ENOMEM;
	pp->jitter_ms = p->jitter_ms;
	return sched_parse(p->schedule, &pp->sched, serr, sizeof serr);
}

/* A profile that is no longer configured. */
static bool
md_prof_retire(struct md *md, struct md_prof *p)
{
	if (p->timer != NULL)
		evtimer_del(p->timer);
	if (p->job != NULL && p->job->running) {
		p->removed = true;
		return true;
	}
	if (p->job != NULL)
		md_job_forget(p->job, -ENOENT, "the profile was removed from "
		    "the configuration");
	md_prof_free(p);
	return false;
}

static bool
md_str_eq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* Swap the prepared settings in; true when the profile is new. */
static bool
md_prep_commit(struct md_prep *pp)
{
	struct md_prof *p = pp->prof;
	/* A new zone or jitter moves the fire times as a new schedule does. */
	bool changed = pp->fresh || p->removed ||
	    strcmp(p->schedule, pp->schedule) != 0 ||
	    !md_str_eq(p->timezone, pp->timezone) ||
	    p->jitter_ms != pp->jitter_ms;
	bool added;

	sched_free(p->sched);
	free(p->schedule);
	free(p->timezone);
	free(p->mailbox);
	p->sched = pp->sched;
	p->schedule = pp->schedule;
	p->timezone = pp->timezone;
	p->jitter_ms = pp->jitter_ms;
	p->mailbox = pp->mailbox;
	pp->sched = NULL;
	pp->schedule = pp->timezone = pp->mailbox = NULL;
	added = pp->fresh;
	pp->fresh = false;
	p->removed = false;
	md_prof_first_arm(p, changed);
	return added;
}

static bool
md_prep_has(const struct md_prep *pp, size_t n, const struct md_prof *p)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pp[i].prof == p)
			return true;
	return false;
}

/* Swap in `mc` (the daemon takes over the caller's reference). */
int
md_apply_conf(struct md *md, struct md_conf *mc)
{
	const struct conf *c = mc->conf;
	struct md_prof **np;
	struct md_prep *pp;
	size_t i, n = 0;

	pp = calloc(c->n_profiles + 1, sizeof *pp);
	np = calloc(c->n_profiles + md->n_profs + 1, sizeof *np);
	for (i = 0; pp != NULL && np != NULL && i < c->n_profiles; i++)
		if (md_prep_one(md, &c->profiles[i], &pp[i]) < 0)
			break;
	if (pp == NULL || np == NULL || i < c->n_profiles) {
		md_prep_free(pp, pp != NULL ? c->n_profiles : 0);
		free(np);
		return -ENOMEM;
	}
	/* Nothing below can fail. */
	for (i = 0; i < md->n_profs; i++)
		if (!md_prep_has(pp, c->n_profiles, md->profs[i]) &&
		    md_prof_retire(md, md->profs[i]))
			np[n++] = md->profs[i];
	for (i = 0; i < c->n_profiles; i++)
		np[n++] = pp[i].prof;
	free(md->profs);
	md->profs = np;
	md->n_profs = n;
	md_conf_unref(md->conf);
	md->conf = mc;
	/* Each run holds a session of its host, so the queue's own count
	 * of runs per host never binds before the session budget. */
	md->per_host_max = c->daemon.max_connections_per_host;
	ctl_queue_set_limits(md->queue, c->daemon.max_concurrent_runs,
	    md->per_host_max);
	/* At start md_catch_up() sees every profile once the control
	 * socket is open; after, a reload catches up the ones it adds. */
	for (i = 0; i < c->n_profiles; i++)
		if (md_prep_commit(&pp[i]) && md->started != 0)
			md_catch_up_added(md, pp[i].prof);
	md_prep_free(pp, c->n_profiles);
	/* Larger limits may let waiting runs start. */
	md_host_pump_all(md);
	md_dispatch(md);
	return 0;
}

static void
md_reload_warn(struct md *md, const struct conf *nc)
{
	const struct conf *oc = md->conf->conf;

	if (strcmp(oc->archive_path, nc->archive_path) != 0)
		md_log(LOG_LVL_WARN, NULL, "reload: archive.path changed to %s; "
		    "the daemon keeps %s until it is restarted",
		    nc->archive_path, oc->archive_path);
	if (md->socket_override == NULL &&
	    strcmp(oc->daemon.control_socket, nc->daemon.control_socket) != 0)
		md_log(LOG_LVL_WARN, NULL, "reload: daemon.control_socket "
		    "changed; it takes effect when the daemon is restarted");
}

/* SIGHUP and the "reload" request.  -errno and err on failure. */
int
md_reload(struct md *md, char *err, size_t errlen)
{
	struct md_conf *mc;
	int r;

	md_notify_reloading();
	md_log(LOG_LVL_INFO, NULL, "reloading %s", md->config_path);
	if ((r = md_conf_load(md->config_path, &mc, err, errlen)) < 0) {
		md_log(LOG_LVL_ERR, NULL, "reload failed, keeping the running "
		    "configuration: %s", err);
		md_notify_ready(md);
		return r;
	}
	md_reload_warn(md, mc->conf);
	if ((r = md_apply_conf(md, mc)) < 0) {
		md_conf_unref(mc);
		snprintf(err, errlen, "out of memory");
		md_log(LOG_LVL_ERR, NULL, "reload failed, keeping the running "
		    "configuration: %s", err);
		md_notify_ready(md);
		return r;
	}
	md_log(LOG_LVL_INFO, NULL, "reloaded %s: %zu profiles",
	    md->config_path, md->conf->conf->n_profiles);
	md_notify_ready(md);
	return 0;
}
