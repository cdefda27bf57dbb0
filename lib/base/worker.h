/*
 * worker.h - one thread that runs jobs in order off the loop thread, and
 * hands each back to the loop when it is done.  For the work that must
 * not stall the loop (DESIGN.md rule 5): the run's commits, the OAuth2
 * token file's fsyncs.
 */
#ifndef MAILSTOW_BASE_WORKER_H
#define MAILSTOW_BASE_WORKER_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct worker;

/*
 * Embedded in the caller's job struct; the worker owns `next` from
 * worker_push() until the job comes back through done() or drop().
 */
struct worker_job {
	struct worker_job *next;
};

/* The caller's struct that holds job `j` as member `member`. */
#define WORKER_JOB_OF(j, type, member) \
	((type *)(void *)((char *)(j) - offsetof(type, member)))

/*
 * What the worker does with a job; `arg` is worker_start()'s.  Every job
 * pushed gets run() once, then exactly one of done() or drop().
 */
struct worker_ops {
	/* On the worker's thread, one job at a time, in push order.  It
	 * must not touch what the loop thread owns. */
	void	(*run)(struct worker_job *, void *arg);
	/* On the loop thread, in push order, once run() returned: the job
	 * is the caller's again.  done() may push, and may worker_free()
	 * (the jobs not yet handed back then go to drop()). */
	void	(*done)(struct worker_job *, void *arg);
	/* From worker_free(), in push order, for each job run but not yet
	 * handed to done(): the job is the caller's again, to free.  The
	 * loop state done() would update may be gone by then. */
	void	(*drop)(struct worker_job *, void *arg);
};

/*
 * Start the thread, with every signal blocked, and arm a read event on
 * `base` that the thread's pipe wakes.  `ops` is borrowed until
 * worker_free().  Call on the loop's thread.  -ENOMEM, -EMFILE, -EAGAIN
 * and the like.
 */
int	worker_start(struct event_base *base, const struct worker_ops *ops,
	    void *arg, struct worker **ret);
/* Queue `j` to be run after every job pushed before it.  Never fails. */
void	worker_push(struct worker *, struct worker_job *j);
/* Test hook: while held, the thread starts no job (worker_free() still
 * finishes them all). */
void	worker_hold(struct worker *, bool hold);
/*
 * On the loop thread: run every job queued (even while held), join the
 * thread, hand the jobs whose done() has not run to drop(), free.  Blocks
 * until the last job is finished.  NULL is fine.
 */
void	worker_free(struct worker *);

#endif
