/*
 * run_commit.c - every write of a run to the store, off the loop thread.
 * A run has one worker thread with its own store handle (store_clone);
 * the loop hands it commit groups and protocol rows (events, folders, the
 * end) in one FIFO and goes on fetching; the worker fsyncs, renames and
 * commits in that order, and a pipe wakes the loop to count the results.
 * Nothing counts as archived before its group comes back committed
 * (DESIGN.md rules 1 and 5), and the loop never waits for the disk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/worker.h"
#include "run/run_private.h"
#include "source/source.h"

/* Groups in flight per session before it stops reading. */
#define RUN_MAX_OUTSTANDING	2

enum run_job_kind {
	RUN_JOB_COMMIT,			/* a group of messages */
	RUN_JOB_EVENT,			/* a protocol event */
	RUN_JOB_FOLDER,			/* a folder's counts (and state) */
	RUN_JOB_FINISH,			/* the run's final row */
};

struct run_job {
	struct worker_job wj;		/* the worker's link */
	enum run_job_kind kind;
	struct run *r;
	struct run_session *s;
	struct run_folder_rec *frec;
	struct run_pending *pending;
	size_t	 n_pending;
	struct store_msg *msgs;
	size_t	 n_msgs;
	int	 rc;
	char	 err[512];
	/* EVENT, FOLDER, FINISH */
	enum store_level lvl;
	char	*mailbox, *folder, *text;
	uint32_t uid;
	struct store_counts counts;
	struct store_folder_state st;
	bool	 set_state;
	const char *status;
};

struct run_worker {
	struct worker *w;		/* NULL until it runs */
	struct store *store;		/* the worker's own handle */
};

static void
run_job_free(struct run_job *j)
{
	size_t i;

	for (i = 0; i < j->n_pending; i++) {
		struct run_pending *pe = &j->pending[i];

		mime_fields_free(&pe->f);
		free(pe->folder);
		free(pe->uidl);
		conf_strings_free(pe->users, pe->n_users);
	}
	free(j->pending);
	free(j->msgs);
	free(j->mailbox);
	free(j->folder);
	free(j->text);
	free(j);
}

/* On the worker thread: one job against the worker's own handle. */
static void
run_job_run(struct worker_job *wj, void *arg)
{
	struct run_worker *w = arg;
	struct run_job *j = WORKER_JOB_OF(wj, struct run_job, wj);
	const char *profile = j->r->p.profile->name;
	int64_t id = j->r->id;

	switch (j->kind) {
	case RUN_JOB_COMMIT:
		j->rc = store_commit(w->store, j->msgs, j->n_msgs, j->err,
		    sizeof j->err);
		break;
	case RUN_JOB_EVENT:
		j->rc = store_run_event(w->store, id, j->lvl, j->mailbox,
		    j->folder, j->uid, j->text);
		break;
	case RUN_JOB_FOLDER:
		if (j->set_state)
			store_folder_state_set(w->store, profile, j->mailbox,
			    j->folder, &j->st);
		j->rc = store_run_folder(w->store, id, j->mailbox, j->folder,
		    &j->counts);
		break;
	case RUN_JOB_FINISH:
		j->rc = store_run_finish(w->store, id, j->status, &j->counts);
		break;
	}
}

/* A message counts once: archived if any of its users got it new. */
static void
run_job_count(struct run_job *j)
{
	struct run_folder_rec *f = j->frec;
	struct run *r = j->s->r;
	size_t i, k, n = 0;

	for (i = 0; i < j->n_pending; i++) {
		struct run_pending *pe = &j->pending[i];
		bool any_new = false;

		if (pe->n_users == 0) {
			n++;
			f->c.skipped++;
			continue;
		}
		for (k = 0; k < pe->n_users; k++, n++) {
			any_new |= !j->msgs[n].duplicate;
			if (r->p.profile->multidrop.enabled)
				run_tally(r, pe->users[k], j->msgs[n].duplicate);
		}
		if (any_new) {
			f->c.archived++;
			f->c.bytes += pe->size;
		} else {
			f->c.skipped++;
		}
	}
}

static void
run_job_finished(struct run_job *j)
{
	struct run_session *s = j->s;
	struct run_folder_rec *f = j->frec;

	if (j->rc == 0) {
		run_job_count(j);
	} else {
		f->c.failed += j->n_pending;
		f->had_errors = true;
		s->errors++;
		run_event(s->r, STORE_ERROR, s->mb->user, f->name, 0, "%zu "
		    "messages could not be stored and will be fetched again "
		    "next run: %s", j->n_pending, j->err);
	}
	s->outstanding--;
	f->outstanding--;
	if (f->done_called && f->outstanding == 0)
		run_folder_finalize(s, f);
	run_session_flow(s);
	if (s->ending && s->outstanding == 0)
		run_session_finished(s);
}

/* On the loop: count what the worker wrote, in the order it wrote it. */
static void
run_job_done(struct worker_job *wj, void *arg)
{
	struct run_job *j = WORKER_JOB_OF(wj, struct run_job, wj);
	struct run *r = j->r;

	if (j->kind == RUN_JOB_COMMIT)
		run_job_finished(j);
	else if (j->kind == RUN_JOB_FINISH)
		run_finish_written(r, j->rc);
	else if (j->rc < 0)
		log_debug("run %lld: could not record a protocol row: %s",
		    (long long)r->id, strerror(-j->rc));
	run_job_free(j);
}

/* The run is being freed: its sessions may be gone, nothing is counted. */
static void
run_job_drop(struct worker_job *wj, void *arg)
{
	run_job_free(WORKER_JOB_OF(wj, struct run_job, wj));
}

static const struct worker_ops run_worker_ops = {
	.run = run_job_run,
	.done = run_job_done,
	.drop = run_job_drop,
};

int
run_worker_start(struct run *r, char *err, size_t errlen)
{
	struct run_worker *w;
	int rc;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return -ENOMEM;
	r->worker = w;
	if ((rc = store_clone(r->p.store, &w->store, err, errlen)) < 0)
		return rc;
	if ((rc = worker_start(r->p.base, &run_worker_ops, w, &w->w)) < 0) {
		snprintf(err, errlen, "cannot start the commit thread: %s",
		    strerror(-rc));
		return rc;
	}
	return 0;
}

/* Stop and join the worker; every job it had was finished before. */
void
run_worker_free(struct run *r)
{
	struct run_worker *w = r->worker;

	if (w == NULL)
		return;
	worker_free(w->w);
	store_close(w->store);
	free(w);
	r->worker = NULL;
}

/* One store entry per (message, archive user); they share the blob. */
static int
run_job_expand(struct run_job *j)
{
	const struct run_session *s = j->s;
	const struct conf_profile *p = s->r->p.profile;
	size_t i, k, n = 0;

	/* A message filed for nobody (multidrop "skip") is remembered once. */
	for (i = 0; i < j->n_pending; i++)
		n += j->pending[i].n_users ? j->pending[i].n_users : 1;
	if ((j->msgs = calloc(n ? n : 1, sizeof *j->msgs)) == NULL)
		return -ENOMEM;
	for (i = 0, n = 0; i < j->n_pending; i++) {
		struct run_pending *pe = &j->pending[i];

		if (pe->n_users == 0)
			j->msgs[n++] = (struct store_msg){
				.blob = pe->blob, .skipped = true,
				.profile = p->name, .mailbox = s->mb->user,
				.folder = pe->folder,
				.uidvalidity = pe->uidvalidity, .uid = pe->uid,
				.uidl = pe->uidl, .run_id = s->r->id,
			};
		for (k = 0; k < pe->n_users; k++)
			j->msgs[n++] = (struct store_msg){
				.blob = pe->blob, .archive_user = pe->users[k],
				.profile = p->name, .mailbox = s->mb->user,
				.folder = pe->folder,
				.uidvalidity = pe->uidvalidity, .uid = pe->uid,
				.uidl = pe->uidl,
				.internaldate = pe->internaldate,
				.message_id = pe->f.message_id,
				.date = pe->f.date, .from = pe->f.from,
				.to = pe->f.to, .subject = pe->f.subject,
				.run_id = s->r->id,
			};
	}
	j->n_msgs = n;
	return 0;
}

static void
run_job_push(struct run_worker *w, struct run_job *j)
{
	worker_push(w->w, &j->wj);
}

bool
run_worker_running(const struct run *r)
{
	return r->worker != NULL && r->worker->w != NULL;
}

int
run_queue_event(struct run *r, enum store_level lvl, const char *mailbox,
    const char *folder, uint32_t uid, const char *text)
{
	struct run_job *j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return -ENOMEM;
	j->kind = RUN_JOB_EVENT;
	j->r = r;
	j->lvl = lvl;
	j->uid = uid;
	if ((mailbox != NULL && (j->mailbox = strdup(mailbox)) == NULL) ||
	    (folder != NULL && (j->folder = strdup(folder)) == NULL) ||
	    (j->text = strdup(text)) == NULL) {
		run_job_free(j);
		return -ENOMEM;
	}
	run_job_push(r->worker, j);
	return 0;
}

int
run_queue_folder(struct run *r, const char *mailbox, const char *folder,
    const struct store_counts *c, const struct store_folder_state *st)
{
	struct run_job *j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return -ENOMEM;
	j->kind = RUN_JOB_FOLDER;
	j->r = r;
	j->counts = *c;
	if (st != NULL) {
		j->st = *st;
		j->set_state = true;
	}
	if ((j->mailbox = strdup(mailbox)) == NULL ||
	    (j->folder = strdup(folder)) == NULL) {
		run_job_free(j);
		return -ENOMEM;
	}
	run_job_push(r->worker, j);
	return 0;
}

int
run_queue_finish(struct run *r, const char *status,
    const struct store_counts *c)
{
	struct run_job *j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return -ENOMEM;
	j->kind = RUN_JOB_FINISH;
	j->r = r;
	j->status = status;
	j->counts = *c;
	run_job_push(r->worker, j);
	return 0;
}

void
run_session_flow(struct run_session *s)
{
	bool want = s->outstanding >= RUN_MAX_OUTSTANDING || s->write_wait;

	if (s->src == NULL || want == s->paused)
		return;
	s->paused = want;
	if (want)
		source_pause(s->src);
	else
		source_resume(s->src);
}

/*
 * Hand the session's group to the worker.  The session stops reading when
 * RUN_MAX_OUTSTANDING groups are in flight, so memory and temp files stay
 * bounded whatever the disk's speed.
 */
int
run_commit(struct run_session *s)
{
	struct run_worker *w = s->r->worker;
	struct run_job *j;

	if (s->n_pending == 0)
		return 0;
	if ((j = calloc(1, sizeof *j)) == NULL)
		goto nomem;
	j->kind = RUN_JOB_COMMIT;
	j->r = s->r;
	j->s = s;
	j->frec = s->frec;
	j->pending = s->pending;
	j->n_pending = s->n_pending;
	s->pending = NULL;
	s->n_pending = s->cap_pending = 0;
	s->pending_bytes = 0;
	if (run_job_expand(j) < 0) {
		s->pending = j->pending;
		s->n_pending = s->cap_pending = j->n_pending;
		j->pending = NULL;
		j->n_pending = 0;
		run_job_free(j);
		goto nomem;
	}
	s->outstanding++;
	j->frec->outstanding++;
	run_job_push(w, j);
	run_session_flow(s);
	return 0;
nomem:
	s->frec->c.failed += s->n_pending;
	s->frec->had_errors = true;
	s->errors++;
	run_event(s->r, STORE_ERROR, s->mb->user, s->frec->name, 0, "out of "
	    "memory: %zu messages will be fetched again next run",
	    s->n_pending);
	run_pending_clear(s);
	return -ENOMEM;
}
