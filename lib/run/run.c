/*
 * run.c - one archiving run of one profile: the protocol row, the
 * mailboxes (one, or a batch re-read from mailboxes_file every run), who
 * logs in for each (the user, or a master user acting for it), up to
 * max_parallel sessions at once, and the final status.  A mailbox that
 * fails is a failed item; the others go on.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/util.h"
#include "run/run_private.h"
#include "source/source.h"

void
run_event(struct run *r, enum store_level lvl, const char *mailbox,
    const char *folder, uint32_t uid, const char *fmt, ...)
{
	char text[1200];
	va_list ap;
	int err;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (run_worker_running(r))
		err = run_queue_event(r, lvl, mailbox, folder, uid, text);
	else
		err = store_run_event(r->p.store, r->id, lvl, mailbox, folder,
		    uid, text);
	if (err < 0)
		log_debug("run %lld: could not record event: %s",
		    (long long)r->id, strerror(-err));
}

void
run_counts_add(struct store_counts *a, const struct store_counts *b)
{
	a->found += b->found;
	a->archived += b->archived;
	a->skipped += b->skipped;
	a->failed += b->failed;
	a->bytes += b->bytes;
}

static const char *
run_status(const struct run *r)
{
	if (r->cancelled)
		return "interrupted";
	/* Every mailbox failed (or there was none to try): the run failed. */
	if (r->n_failed == r->n_mboxes)
		return "failed";
	return r->n_failed > 0 || r->errors > 0 || r->total.failed > 0 ?
	    "completed_with_errors" : "succeeded";
}

static void
run_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	r->done(r, &r->result, r->done_arg);
}

/*
 * The protocol row is final now; the owner hears of it from a fresh event,
 * since it may free the run, and this may be deep inside a session's
 * callback.
 */
static void
run_finish(struct run *r)
{
	int err;

	if (r->finished)
		return;
	r->finished = true;
	if (r->p.profile->multidrop.enabled)
		run_route_report(r);
	r->result.run_id = r->id;
	r->result.status = run_status(r);
	r->result.counts = r->total;
	if (run_worker_running(r) &&
	    run_queue_finish(r, r->result.status, &r->total) == 0)
		return;
	err = store_run_finish(r->p.store, r->id, r->result.status, &r->total);
	run_finish_written(r, err);
}

void
run_finish_written(struct run *r, int err)
{
	struct timeval now = { 0, 0 };

	if (err < 0)
		log_err("run %lld: could not record its end: %s",
		    (long long)r->id, strerror(-err));
	evtimer_add(r->fin_ev, &now);
}

/* The profile's max_parallel, capped by the daemon's per-host share. */
static uint32_t
run_max_sessions(const struct run *r)
{
	uint32_t n = r->p.profile->max_parallel;

	if (r->p.max_sessions != 0 && r->p.max_sessions < n)
		n = r->p.max_sessions;
	return n == 0 ? 1 : n;
}

/* The password of a mailbox's login, heap, wiped by the caller. */
static int
run_password(struct run *r, const struct conf_mailbox *mb, char **ret,
    struct conf_error *err)
{
	const struct conf_profile *p = r->p.profile;

	if (p->auth.master_user != NULL) {
		if (r->master_password == NULL)
			return -ENOENT;
		return (*ret = strdup(r->master_password)) == NULL ? -ENOMEM : 0;
	}
	if (mb->password_file != NULL)
		return conf_read_mailbox_password(p, mb, ret, err);
	if (p->auth.password_file == NULL && p->auth.password == NULL &&
	    p->auth.password_credential == NULL) {
		snprintf(err->text, sizeof err->text, "mailbox %s has no "
		    "password_file, and profile %s has neither a password "
		    "source nor auth.master_user; give one of them", mb->user,
		    p->name);
		return -EINVAL;
	}
	/* The profile's own password serves every mailbox without one. */
	return conf_read_password(p, ret, err);
}

static int
run_session_start(struct run_session *s, char *password)
{
	const struct conf_profile *p = s->r->p.profile;
	struct source_login login = { .user = s->mb->user, .password = password };
	const char *sep = p->auth.separator != NULL ? p->auth.separator : "*";
	char *user = NULL;
	int r;

	if (p->auth.master_user != NULL && p->auth.method == CONF_AUTH_AUTHZID) {
		login.user = p->auth.master_user;
		login.authzid = s->mb->user;
	} else if (p->auth.master_user != NULL) {
		/* Dovecot's "user*master" convention (auth_master_user_separator). */
		size_t n = strlen(s->mb->user) + strlen(sep) +
		    strlen(p->auth.master_user) + 1;

		if ((user = malloc(n)) == NULL)
			return -ENOMEM;
		snprintf(user, n, "%s%s%s", s->mb->user, sep,
		    p->auth.master_user);
		login.user = user;
	}
	r = source_start(s->r->p.base, s->r->p.dns, p, &login,
	    &run_session_ops, s, &s->src);
	free(user);
	return r;
}

static void
run_start_next(struct run *r)
{
	struct conf_error cerr;
	struct run_session *s;
	char *password = NULL;
	int err;

	/* Sessions that fail at once end inside this loop: no recursion. */
	if (r->starting)
		return;
	r->starting = true;
	while (!r->cancelled && r->next_session < r->n_mboxes &&
	    r->n_active < run_max_sessions(r)) {
		s = &r->sessions[r->next_session++];
		r->n_active++;
		if (r->p.profile->auth.oauth2.enabled) {
			run_oauth2_login(s);
			continue;
		}
		err = run_password(r, s->mb, &password, &cerr);
		if (err == 0) {
			err = run_session_start(s, password);
			secret_free(password);
			password = NULL;
			if (err < 0)
				snprintf(cerr.text, sizeof cerr.text, "could not "
				    "start the session: %s", strerror(-err));
		}
		if (err < 0)
			run_session_over(s, SESSION_FAIL_LOCAL, cerr.text);
	}
	r->starting = false;
	if (r->n_over == r->n_mboxes || (r->cancelled && r->n_active == 0))
		run_finish(r);
}

void
run_session_over(struct run_session *s, enum session_fail fail, const char *why)
{
	struct run_folder_rec *f = s->frec;

	if (s->over || s->ending)
		return;
	s->ending = true;
	s->fail = fail;
	s->why = strdup(why != NULL ? why : "");
	/* Messages received whole before a failure are still good. */
	if (f != NULL) {
		run_commit(s);
		f->done_called = true;
		f->complete = false;
		s->frec = NULL;
		if (f->outstanding == 0)
			run_folder_finalize(s, f);
	}
	if (s->outstanding == 0)
		run_session_finished(s);
}

void
run_session_finished(struct run_session *s)
{
	struct run *r = s->r;
	const char *why = s->why != NULL ? s->why : "out of memory";

	if (s->over)
		return;
	s->over = true;
	store_writer_cancel(r->p.store, &s->wwait);
	s->write_wait = false;
	while (s->recs != NULL)
		run_folder_finalize(s, s->recs);
	r->errors += s->errors;
	if (s->fail == SESSION_FAIL_CANCELLED) {
		run_event(r, STORE_WARNING, s->mb->user, NULL, 0, "run "
		    "interrupted: %s; what was not committed is fetched next "
		    "run", why);
	} else if (s->fail != SESSION_OK) {
		r->n_failed++;
		run_event(r, STORE_ERROR, s->mb->user, NULL, 0, "%s error: %s",
		    session_fail_name(s->fail), why);
		snprintf(r->result.reason, sizeof r->result.reason,
		    "%s: %s error: %s", s->mb->user,
		    session_fail_name(s->fail), why);
	}
	r->n_active--;
	r->n_over++;
	run_start_next(r);
}

static int
run_load_mailboxes(struct run *r)
{
	const struct conf_profile *p = r->p.profile;
	struct conf_error cerr;
	char **warn = NULL;
	size_t i, n_warn = 0;

	if (conf_mailboxes_load(p, &r->mboxes, &r->n_mboxes, &warn, &n_warn,
	    &cerr) < 0) {
		run_event(r, STORE_ERROR, NULL, NULL, 0, "%s", cerr.text);
		snprintf(r->result.reason, sizeof r->result.reason, "%s",
		    cerr.text);
		return -1;
	}
	for (i = 0; i < n_warn; i++) {
		run_event(r, STORE_ERROR, NULL, NULL, 0, "%s", warn[i]);
		r->errors++;
	}
	conf_strings_free(warn, n_warn);
	if (r->n_mboxes == 0) {
		run_event(r, STORE_ERROR, NULL, NULL, 0, "profile %s lists no "
		    "mailbox to archive", p->name);
		return -1;
	}
	if ((r->sessions = calloc(r->n_mboxes, sizeof *r->sessions)) == NULL)
		return -1;
	for (i = 0; i < r->n_mboxes; i++) {
		r->sessions[i].r = r;
		r->sessions[i].mb = &r->mboxes[i];
	}
	return 0;
}

/* Starting from an event keeps done() off the caller's stack. */
static void
run_start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	const struct conf_profile *p = r->p.profile;
	struct conf_error cerr;
	char werr[512];
	int err;

	if (r->cancelled || run_load_mailboxes(r) < 0) {
		run_finish(r);
		return;
	}
	/*
	 * Without the writer thread, the loop writes the bytes itself.  One
	 * serving another loop would hand our chunks back there: refused.
	 */
	if ((err = store_writer_start(r->p.store, r->p.base)) == -EINVAL) {
		snprintf(werr, sizeof werr, "the archive's writer thread serves "
		    "another event loop; one process runs one loop");
		run_event(r, STORE_ERROR, NULL, NULL, 0, "%s", werr);
		snprintf(r->result.reason, sizeof r->result.reason, "%s", werr);
		r->n_failed = r->n_mboxes;
		run_finish(r);
		return;
	}
	if (err < 0)
		log_debug("run %lld: no writer thread (%s); message bytes are "
		    "written on the loop", (long long)r->id, strerror(-err));
	if (run_worker_start(r, werr, sizeof werr) < 0) {
		run_event(r, STORE_ERROR, NULL, NULL, 0, "%s", werr);
		snprintf(r->result.reason, sizeof r->result.reason, "%s", werr);
		r->n_failed = r->n_mboxes;
		run_finish(r);
		return;
	}
	if (run_oauth2_init(r) < 0) {
		run_event(r, STORE_ERROR, NULL, NULL, 0, "could not set up the "
		    "OAuth2 token client (out of memory or libcurl)");
		snprintf(r->result.reason, sizeof r->result.reason,
		    "could not set up the OAuth2 token client");
		r->n_failed = r->n_mboxes;
		run_finish(r);
		return;
	}
	if (p->auth.master_user != NULL &&
	    conf_read_password(p, &r->master_password, &cerr) < 0) {
		run_event(r, STORE_ERROR, NULL, NULL, 0, "%s", cerr.text);
		snprintf(r->result.reason, sizeof r->result.reason, "%s",
		    cerr.text);
		r->n_failed = r->n_mboxes;
		run_finish(r);
		return;
	}
	run_start_next(r);
}

int
run_start(const struct run_params *rp, run_done_fn *done, void *arg,
    struct run **ret)
{
	struct timeval now = { 0, 0 };
	struct run *r;
	int err;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return -ENOMEM;
	r->p = *rp;
	if (r->p.batch_messages == 0)
		r->p.batch_messages = 256;
	if (r->p.batch_bytes == 0)
		r->p.batch_bytes = 64ULL << 20;
	r->done = done;
	r->done_arg = arg;
	r->ev = evtimer_new(rp->base, run_start_cb, r);
	r->fin_ev = evtimer_new(rp->base, run_finish_cb, r);
	if (r->ev == NULL || r->fin_ev == NULL) {
		run_free(r);
		return -ENOMEM;
	}
	if ((err = store_run_begin(rp->store, rp->profile->name, rp->trigger,
	    &r->id)) < 0) {
		run_free(r);
		return err;
	}
	evtimer_add(r->ev, &now);
	*ret = r;
	return 0;
}

void
run_cancel(struct run *r)
{
	size_t i;

	if (r == NULL || r->finished)
		return;
	r->cancelled = true;
	run_oauth2_cancel(r);
	for (i = 0; i < r->next_session; i++)
		if (!r->sessions[i].over && r->sessions[i].src != NULL)
			source_cancel(r->sessions[i].src);
}

int64_t
run_id(const struct run *r)
{
	return r->id;
}

void
run_free(struct run *r)
{
	size_t i;

	if (r == NULL)
		return;
	/* Joins the worker: a group it holds is finished first. */
	run_worker_free(r);
	run_oauth2_free(r);
	for (i = 0; i < r->n_mboxes && r->sessions != NULL; i++) {
		struct run_session *s = &r->sessions[i];

		store_writer_cancel(r->p.store, &s->wwait);
		source_free(s->src);
		run_pending_clear(s);
		free(s->pending);
		free(s->why);
		while (s->recs != NULL) {
			struct run_folder_rec *f = s->recs;

			s->recs = f->next;
			free(f->name);
			free(f);
		}
	}
	free(r->sessions);
	conf_mailboxes_free(r->mboxes, r->n_mboxes);
	secret_free(r->master_password);
	run_route_free(r);
	if (r->ev != NULL)
		event_free(r->ev);
	if (r->fin_ev != NULL)
		event_free(r->fin_ev);
	free(r);
}
