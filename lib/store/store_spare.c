/*
 * store_spare.c - temp files made ahead of need.  Creating a file can block
 * (inode allocation, a slow disk, NFS) and store_blob_begin() runs on the
 * event loop: a thread keeps a few created and open in a pool, the loop
 * takes one without waiting, and the last run's end empties the pool.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/thread.h"
#include "store_private.h"

#define STORE_TMP_TRIES		100
#define STORE_SPARE_RETRY_MS	500	/* rest after a failed creation */
#define STORE_SPARE_FD_SHARE	32	/* at most 1/32 of RLIMIT_NOFILE */
/* Refill below this many: early enough that the thread, which shares
 * the CPUs with the loop and the commit thread, is rarely overtaken. */
#define STORE_SPARE_LOW(cap)	((cap) - (cap) / 4)

struct store_spare {
	int	 fd;
	char	 name[STORE_TMPNAME_LEN];
};

/*
 * Everything below `mu` is guarded by it.  The mutex is held for a copy
 * of a pool entry or a flag, never across a system call, so the loop
 * thread that takes a spare waits at most for another such copy.
 */
struct store_spares {
	struct store	*s;		/* whose tmp/ */
	pthread_t	 th;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;		/* wakes the thread: refill, stop */
	pthread_cond_t	 quiet;		/* the thread left a creation */
	size_t		 cap;		/* pool size, <= STORE_TMP_SPARES */
	size_t		 n;		/* spares ready in pool[0..n-1] */
	bool		 filling;	/* fill up to cap, then rest until
					 * a quarter of the pool is used */
	bool		 stop;		/* store_close(): leave */
	bool		 hold;		/* test hook: make no files */
	bool		 waiting;	/* the thread sleeps on cv */
	bool		 busy;		/* it creates a file, unlocked */
	bool		 resting;	/* after an error, until retry_at */
	struct timespec	 retry_at;	/* CLOCK_MONOTONIC */
	unsigned	 errors;	/* failed creations so far */
	struct store_spare pool[STORE_TMP_SPARES];
};

int
store_tmp_create(struct store *s, int *ret_fd, char *name, size_t len)
{
	char try[STORE_TMPNAME_LEN];
	int i, fd, r;

	/*
	 * The lock makes this process the only writer; the pid and the
	 * sequence (shared by the spare thread and the loop, so atomic)
	 * make the name unique, O_EXCL makes sure.
	 */
	for (i = 0; i < STORE_TMP_TRIES; i++) {
		snprintf(try, sizeof try, "%ld-%llu.tmp", s->pid,
		    (unsigned long long)__atomic_add_fetch(&s->tmpseq, 1,
		    __ATOMIC_RELAXED));
		fd = openat(s->tmpfd, try, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC | O_NOFOLLOW, STORE_FILE_MODE);
		if (fd >= 0)
			break;
		if (errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EEXIST;
	/* Our mode, whatever the umask says (it is process-wide, and the
	 * daemon narrows it for a moment when it makes its socket). */
	if (fchmod(fd, STORE_FILE_MODE) < 0) {
		r = -errno;
		close(fd);
		unlinkat(s->tmpfd, try, 0);
		return r;
	}
	if (strlen(try) >= len) {
		close(fd);
		unlinkat(s->tmpfd, try, 0);
		return -ERANGE;
	}
	memcpy(name, try, strlen(try) + 1);
	*ret_fd = fd;
	return 0;
}

static void
store_spares_rest(struct store_spares *sp)
{
	long ns;

	clock_gettime(CLOCK_MONOTONIC, &sp->retry_at);
	ns = sp->retry_at.tv_nsec + STORE_SPARE_RETRY_MS * 1000000L;
	sp->retry_at.tv_sec += ns / 1000000000L;
	sp->retry_at.tv_nsec = ns % 1000000000L;
	sp->resting = true;
}

/* Under mu: is there a file to make now? */
static bool
store_spares_want(struct store_spares *sp)
{
	struct timespec now;

	if (sp->resting) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > sp->retry_at.tv_sec ||
		    (now.tv_sec == sp->retry_at.tv_sec &&
		    now.tv_nsec >= sp->retry_at.tv_nsec))
			sp->resting = false;
	}
	return sp->filling && !sp->hold && !sp->resting && sp->n < sp->cap;
}

/* Under mu: sleep until woken, or until the rest after an error ends. */
static void
store_spares_sleep(struct store_spares *sp)
{
	sp->waiting = true;
	if (sp->resting)
		pthread_cond_timedwait(&sp->cv, &sp->mu, &sp->retry_at);
	else
		pthread_cond_wait(&sp->cv, &sp->mu);
	sp->waiting = false;
}

static void *
store_spares_main(void *arg)
{
	struct store_spares *sp = arg;
	struct store *s = sp->s;
	struct store_spare one;
	int r;

	thread_yield_to_loop();
	pthread_mutex_lock(&sp->mu);
	while (!sp->stop) {
		if (!store_spares_want(sp)) {
			store_spares_sleep(sp);
			continue;
		}
		sp->busy = true;
		pthread_mutex_unlock(&sp->mu);
		r = store_tmp_create(s, &one.fd, one.name, sizeof one.name);
		pthread_mutex_lock(&sp->mu);
		sp->busy = false;
		pthread_cond_broadcast(&sp->quiet);
		/*
		 * EMFILE, ENOSPC, EACCES: not ours to report.  Rest a while;
		 * meanwhile the loop creates its files itself and meets
		 * (and reports) the same error if it persists.
		 */
		if (r < 0) {
			sp->errors++;
			store_spares_rest(sp);
			continue;
		}
		/* Only this thread adds, so n < cap still holds. */
		sp->pool[sp->n++] = one;
		if (sp->n == sp->cap)
			sp->filling = false;
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

/* How many spares this process can afford: they are open descriptors. */
static size_t
store_spares_cap(void)
{
	struct rlimit rl;
	rlim_t share;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY)
		return STORE_TMP_SPARES;
	share = rl.rlim_cur / STORE_SPARE_FD_SHARE;
	return share < STORE_TMP_SPARES ? (size_t)share : STORE_TMP_SPARES;
}

static int
store_spares_init(struct store_spares *sp)
{
	pthread_condattr_t ca;
	int r;

	if ((r = pthread_condattr_init(&ca)) != 0)
		return -r;
	/* Rests are timed on the monotonic clock: immune to clock steps. */
	if ((r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0 &&
	    (r = pthread_cond_init(&sp->cv, &ca)) == 0) {
		if ((r = pthread_cond_init(&sp->quiet, NULL)) != 0)
			pthread_cond_destroy(&sp->cv);
		else if ((r = pthread_mutex_init(&sp->mu, NULL)) != 0) {
			pthread_cond_destroy(&sp->quiet);
			pthread_cond_destroy(&sp->cv);
		}
	}
	pthread_condattr_destroy(&ca);
	return -r;
}

static void
store_spares_destroy(struct store_spares *sp)
{
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->quiet);
	pthread_cond_destroy(&sp->cv);
	free(sp);
}

/* Start the thread; on failure the handle goes without spares. */
static int
store_spares_start(struct store *s)
{
	struct store_spares *sp;
	sigset_t all, old;
	int r;

	s->spares_off = true;		/* one try per handle */
	if ((sp = calloc(1, sizeof *sp)) == NULL)
		return -ENOMEM;
	if ((sp->cap = store_spares_cap()) < 2)
		r = -EMFILE;
	else
		r = store_spares_init(sp);
	if (r < 0) {
		free(sp);
		return r;
	}
	sp->s = s;
	sp->filling = true;
	/* Signals are for the loop thread; the new thread inherits this. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&sp->th, NULL, store_spares_main, sp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		store_spares_destroy(sp);
		return -r;
	}
	/* Released: a run's end on a commit thread may read it at once. */
	__atomic_store_n(&s->spares, sp, __ATOMIC_RELEASE);
	s->spares_off = false;
	return 0;
}

int
store_spare_take(struct store *s, int *ret_fd, char *name, size_t len)
{
	struct store_spares *sp;
	struct store_spare one;
	bool got = false, kick = false;

	if (s->spares == NULL && (s->spares_off || store_spares_start(s) < 0))
		return -ENOENT;
	sp = s->spares;
	pthread_mutex_lock(&sp->mu);
	if (sp->n > 0) {
		one = sp->pool[--sp->n];
		got = true;
	}
	/* Wake the thread once per quarter pool, not once per message. */
	if (!sp->filling && sp->n <= STORE_SPARE_LOW(sp->cap)) {
		sp->filling = true;
		kick = sp->waiting;
	}
	pthread_mutex_unlock(&sp->mu);
	/* After the unlock: a woken thread finds the mutex free.  No wakeup
	 * is lost: `waiting` is only true inside pthread_cond_wait(). */
	if (kick)
		pthread_cond_signal(&sp->cv);
	if (!got)
		return -EAGAIN;
	/* Both buffers are STORE_TMPNAME_LEN in practice; be safe anyway. */
	if (strlen(one.name) >= len) {
		close(one.fd);
		unlinkat(s->tmpfd, one.name, 0);
		return -ERANGE;
	}
	memcpy(name, one.name, strlen(one.name) + 1);
	*ret_fd = one.fd;
	return 0;
}

void
store_spares_stop(struct store *s)
{
	struct store_spares *sp = s->spares;
	size_t i;

	if (sp == NULL)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->stop = true;
	pthread_mutex_unlock(&sp->mu);
	pthread_cond_signal(&sp->cv);
	pthread_join(sp->th, NULL);
	/* The thread is gone: the pool is ours alone now. */
	for (i = 0; i < sp->n; i++) {
		close(sp->pool[i].fd);
		unlinkat(s->tmpfd, sp->pool[i].name, 0);
	}
	__atomic_store_n(&s->spares, NULL, __ATOMIC_RELEASE);
	store_spares_destroy(sp);
}

/*
 * Empty the pool of the handle that owns it, and let the thread rest
 * until the next message.  Called from whichever thread records a run's
 * end (a commit thread, usually): it waits for a creation in flight, so
 * that no spare is left behind, and removes that file too.
 */
static void
store_spares_drain(struct store *root)
{
	struct store_spares *sp;
	struct store_spare old[STORE_TMP_SPARES];
	size_t i, n;

	if ((sp = __atomic_load_n(&root->spares, __ATOMIC_ACQUIRE)) == NULL)
		return;
	pthread_mutex_lock(&sp->mu);
	/* Not filling: only the next store_spare_take() wakes it. */
	sp->filling = false;
	while (sp->busy)
		pthread_cond_wait(&sp->quiet, &sp->mu);
	n = sp->n;
	memcpy(old, sp->pool, n * sizeof *old);
	sp->n = 0;
	pthread_mutex_unlock(&sp->mu);
	for (i = 0; i < n; i++) {
		close(old[i].fd);
		unlinkat(root->tmpfd, old[i].name, 0);
	}
}

void
store_spares_run_begun(struct store *s)
{
	struct store *root = s->parent != NULL ? s->parent : s;

	__atomic_add_fetch(&root->runs_open, 1, __ATOMIC_ACQ_REL);
}

void
store_spares_run_ended(struct store *s)
{
	struct store *root = s->parent != NULL ? s->parent : s;
	int n = __atomic_load_n(&root->runs_open, __ATOMIC_ACQUIRE);

	/* Never below zero: a run begun by another process ends here too. */
	do {
		if (n == 0)
			return;
	} while (!__atomic_compare_exchange_n(&root->runs_open, &n, n - 1,
	    false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	if (n == 1)
		store_spares_drain(root);
}

void
store_test_spares_hold(struct store *s, bool hold)
{
	struct store_spares *sp = s->spares;

	if (sp == NULL)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->hold = hold;
	pthread_mutex_unlock(&sp->mu);
	pthread_cond_signal(&sp->cv);
}

void
store_test_spares(struct store *s, struct store_spares_stat *ret)
{
	struct store_spares *sp = s->spares;
	struct timespec ms = { 0, 1000000 };
	int i;

	memset(ret, 0, sizeof *ret);
	if (sp == NULL)
		return;
	/* Settle: wait (up to 10 s) until the thread sleeps, so that the
	 * pool and tmp/ stay as they are until the caller acts again. */
	for (i = 0; i < 10000; i++) {
		pthread_mutex_lock(&sp->mu);
		if ((sp->waiting && !store_spares_want(sp)) || i == 9999)
			break;
		pthread_mutex_unlock(&sp->mu);
		nanosleep(&ms, NULL);
	}
	ret->started = true;
	ret->settled = sp->waiting && !store_spares_want(sp);
	ret->n = sp->n;
	ret->cap = sp->cap;
	ret->errors = sp->errors;
	pthread_mutex_unlock(&sp->mu);
}
