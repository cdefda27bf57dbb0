/*
 * ctl_queue.c - the daemon's run queue: which profile may start next under
 * the global and per-host limits, and the rule that a profile never runs
 * twice at once.  Pure bookkeeping on an array in arrival order; the
 * daemon owns the arguments and the actual runs.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

struct ctl_qent {
	char	*profile;
	char	*host;
	void	*arg;
	bool	 running;
};

struct ctl_queue {
	struct ctl_qent *e;		/* running and queued, arrival order */
	size_t	 n, cap;
	uint32_t max_running, max_per_host;
};

int
ctl_queue_new(uint32_t max_running, uint32_t max_per_host,
    struct ctl_queue **ret)
{
	struct ctl_queue *q;

	if ((q = calloc(1, sizeof *q)) == NULL)
		return -ENOMEM;
	ctl_queue_set_limits(q, max_running, max_per_host);
	*ret = q;
	return 0;
}

static void
ctl_qent_clear(struct ctl_qent *e)
{
	free(e->profile);
	free(e->host);
}

void
ctl_queue_free(struct ctl_queue *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->n; i++)
		ctl_qent_clear(&q->e[i]);
	free(q->e);
	free(q);
}

void
ctl_queue_set_limits(struct ctl_queue *q, uint32_t max_running,
    uint32_t max_per_host)
{
	/* 0 would stop every run for good: treat it as 1. */
	q->max_running = max_running > 0 ? max_running : 1;
	q->max_per_host = max_per_host > 0 ? max_per_host : 1;
}

static ssize_t
ctl_queue_find(const struct ctl_queue *q, const char *profile)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->e[i].profile, profile) == 0)
			return (ssize_t)i;
	return -1;
}

int
ctl_queue_push(struct ctl_queue *q, const char *profile, const char *host,
    void *arg)
{
	struct ctl_qent *ne, e = { 0 };
	size_t cap;

	if (ctl_queue_find(q, profile) >= 0)
		return -EEXIST;
	if (q->n == q->cap) {
		cap = q->cap ? q->cap * 2 : 8;
		if ((ne = reallocarray(q->e, cap, sizeof *ne)) == NULL)
			return -ENOMEM;
		q->e = ne;
		q->cap = cap;
	}
	e.profile = strdup(profile);
	e.host = strdup(host != NULL ? host : "");
	if (e.profile == NULL || e.host == NULL) {
		ctl_qent_clear(&e);
		return -ENOMEM;
	}
	e.arg = arg;
	q->e[q->n++] = e;
	return 0;
}

static uint32_t
ctl_queue_host_running(const struct ctl_queue *q, const char *host)
{
	uint32_t n = 0;
	size_t i;

	for (i = 0; i < q->n; i++)
		if (q->e[i].running && strcmp(q->e[i].host, host) == 0)
			n++;
	return n;
}

int
ctl_queue_pop(struct ctl_queue *q, void **ret_arg)
{
	size_t i;

	if (ctl_queue_n_running(q) >= q->max_running)
		return -EAGAIN;
	for (i = 0; i < q->n; i++) {
		if (q->e[i].running ||
		    ctl_queue_host_running(q, q->e[i].host) >= q->max_per_host)
			continue;
		q->e[i].running = true;
		*ret_arg = q->e[i].arg;
		return 0;
	}
	return -EAGAIN;
}

static void
ctl_queue_delete(struct ctl_queue *q, size_t i)
{
	ctl_qent_clear(&q->e[i]);
	memmove(&q->e[i], &q->e[i + 1], (q->n - i - 1) * sizeof *q->e);
	q->n--;
}

int
ctl_queue_finished(struct ctl_queue *q, const char *profile)
{
	ssize_t i = ctl_queue_find(q, profile);

	if (i < 0 || !q->e[i].running)
		return -ENOENT;
	ctl_queue_delete(q, (size_t)i);
	return 0;
}

void *
ctl_queue_remove(struct ctl_queue *q, const char *profile)
{
	ssize_t i = ctl_queue_find(q, profile);
	void *arg;

	if (i < 0 || q->e[i].running)
		return NULL;
	arg = q->e[i].arg;
	ctl_queue_delete(q, (size_t)i);
	return arg;
}

enum ctl_qstate
ctl_queue_state(const struct ctl_queue *q, const char *profile)
{
	ssize_t i = ctl_queue_find(q, profile);

	if (i < 0)
		return CTL_Q_NONE;
	return q->e[i].running ? CTL_Q_RUNNING : CTL_Q_QUEUED;
}

void *
ctl_queue_arg(const struct ctl_queue *q, const char *profile)
{
	ssize_t i = ctl_queue_find(q, profile);

	return i < 0 ? NULL : q->e[i].arg;
}

size_t
ctl_queue_n_running(const struct ctl_queue *q)
{
	size_t i, n = 0;

	for (i = 0; i < q->n; i++)
		n += q->e[i].running;
	return n;
}

size_t
ctl_queue_n_queued(const struct ctl_queue *q)
{
	return q->n - ctl_queue_n_running(q);
}

void *
ctl_queue_queued_at(const struct ctl_queue *q, size_t idx)
{
	size_t i;

	for (i = 0; i < q->n; i++) {
		if (q->e[i].running)
			continue;
		if (idx-- == 0)
			return q->e[i].arg;
	}
	return NULL;
}
