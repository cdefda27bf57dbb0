/*
 * store_sync.c - the fsyncs of a commit group, several at a time.  A
 * group's files (and then its directories) are independent, and the disk
 * and the journal do better with many flushes in flight than with one
 * after another; the order between the phases (files, renames,
 * directories, index) stays as store_commit() sets it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "store/store_private.h"

#define STORE_SYNC_THREADS	8

struct store_par {
	int	(*fn)(void *ctx, size_t i);
	void	*ctx;
	size_t	 n;
	size_t	 next;			/* the next item, taken atomically */
	pthread_mutex_t mu;
	int	 err;			/* first failure */
	size_t	 err_at;
};

static void *
store_par_main(void *arg)
{
	struct store_par *p = arg;
	size_t i;
	int r;

	while ((i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED)) < p->n) {
		if ((r = p->fn(p->ctx, i)) == 0)
			continue;
		pthread_mutex_lock(&p->mu);
		if (p->err == 0 || i < p->err_at) {
			p->err = r;
			p->err_at = i;
		}
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

int
store_parallel(const struct store *s, size_t n, int (*fn)(void *, size_t),
    void *ctx, size_t *ret_fail)
{
	struct store_par p = { .fn = fn, .ctx = ctx, .n = n };
	pthread_t th[STORE_SYNC_THREADS];
	size_t i, nth = 0;
	int r;

	/* Fault hooks count calls: keep their order what the test expects. */
	if (s->fault.fsync != NULL || s->fault.renameat != NULL || n < 4) {
		for (i = 0; i < n; i++)
			if ((r = fn(ctx, i)) < 0) {
				*ret_fail = i;
				return r;
			}
		return 0;
	}
	pthread_mutex_init(&p.mu, NULL);
	for (i = 0; i < STORE_SYNC_THREADS && i < n; i++)
		if (pthread_create(&th[nth], NULL, store_par_main, &p) == 0)
			nth++;
	/* No thread at all: this one does the work. */
	if (nth == 0)
		store_par_main(&p);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&p.mu);
	if (p.err < 0)
		*ret_fail = p.err_at;
	return p.err;
}
