/*
 * mailstowd_host.c - daemon.max_connections_per_host: one session budget
 * per server host over all runs.  A job enters the run queue only with a
 * session of its host reserved, so it can always start when the queue
 * lets it; at start it takes as many sessions as its profile can use and
 * the host has free.  Jobs of a host without a free session wait here, in
 * arrival order, until a run of that host ends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailstowd.h"

static uint32_t
md_host_free(const struct md *md, const struct md_host *h)
{
	uint64_t used = (uint64_t)h->held + h->reserved;

	/* A reload may have lowered the limit below what is in use. */
	return used >= md->per_host_max ? 0 : md->per_host_max - (uint32_t)used;
}

/* Host names are DNS names: compared without case. */
static struct md_host *
md_host_get(struct md *md, const char *name)
{
	struct md_host **nh, *h;
	size_t i;

	for (i = 0; i < md->n_hosts; i++)
		if (strcasecmp(md->hosts[i]->name, name) == 0)
			return md->hosts[i];
	if ((h = calloc(1, sizeof *h)) == NULL)
		return NULL;
	if ((h->name = strdup(name)) == NULL ||
	    (nh = reallocarray(md->hosts, md->n_hosts + 1, sizeof *nh)) ==
	    NULL) {
		free(h->name);
		free(h);
		return NULL;
	}
	TAILQ_INIT(&h->waiting);
	md->hosts = nh;
	md->hosts[md->n_hosts++] = h;
	return h;
}

static int
md_host_enqueue(struct md *md, struct md_job *j)
{
	int r;

	if ((r = ctl_queue_push(md->queue, j->prof->name, j->host->name,
	    j)) < 0)
		return r;
	j->host->reserved++;
	j->state = MD_J_QUEUED;
	return 0;
}

/* Move waiting jobs into the run queue while their host has room. */
static void
md_host_pump(struct md *md, struct md_host *h)
{
	struct md_job *j;

	while (!md->stopping && (j = TAILQ_FIRST(&h->waiting)) != NULL &&
	    md_host_free(md, h) > 0) {
		TAILQ_REMOVE(&h->waiting, j, hostq);
		if (md_host_enqueue(md, j) < 0) {
			/* Out of memory: try again when the next run ends. */
			TAILQ_INSERT_HEAD(&h->waiting, j, hostq);
			return;
		}
	}
}

int
md_host_admit(struct md *md, struct md_job *j, const char *host)
{
	struct md_host *h;

	if ((h = md_host_get(md, host != NULL ? host : "")) == NULL)
		return -ENOMEM;
	j->host = h;
	/* Behind jobs already waiting for this host, never past them. */
	if (TAILQ_EMPTY(&h->waiting) && md_host_free(md, h) > 0)
		return md_host_enqueue(md, j);
	j->state = MD_J_HOSTWAIT;
	TAILQ_INSERT_TAIL(&h->waiting, j, hostq);
	return 0;
}

uint32_t
md_host_take(struct md *md, struct md_job *j, uint32_t want)
{
	struct md_host *h = j->host;
	uint32_t n;

	h->reserved--;
	n = md_host_free(md, h);
	if (n == 0) {
		ctl_queue_finished(md->queue, j->prof->name);
		j->state = MD_J_HOSTWAIT;
		TAILQ_INSERT_HEAD(&h->waiting, j, hostq);
		return 0;
	}
	if (want == 0)
		want = 1;
	j->sessions = want < n ? want : n;
	h->held += j->sessions;
	j->state = MD_J_RUNNING;
	return j->sessions;
}

void
md_host_release(struct md *md, struct md_job *j)
{
	struct md_host *h = j->host;

	if (h == NULL || j->state != MD_J_RUNNING)
		return;
	h->held -= j->sessions;
	j->sessions = 0;
	md_host_pump(md, h);
}

void
md_host_forget(struct md *md, struct md_job *j)
{
	struct md_host *h = j->host;

	if (h == NULL)
		return;
	if (j->state == MD_J_QUEUED) {
		ctl_queue_remove(md->queue, j->prof->name);
		h->reserved--;
	} else if (j->state == MD_J_HOSTWAIT) {
		TAILQ_REMOVE(&h->waiting, j, hostq);
	} else {
		return;
	}
	j->host = NULL;
	md_host_pump(md, h);
}

void
md_host_pump_all(struct md *md)
{
	size_t i;

	for (i = 0; i < md->n_hosts; i++)
		md_host_pump(md, md->hosts[i]);
}

struct md_job *
md_host_first_waiting(const struct md *md)
{
	size_t i;

	for (i = 0; i < md->n_hosts; i++)
		if (!TAILQ_EMPTY(&md->hosts[i]->waiting))
			return TAILQ_FIRST(&md->hosts[i]->waiting);
	return NULL;
}

size_t
md_host_n_waiting(const struct md *md)
{
	const struct md_job *j;
	size_t i, n = 0;

	for (i = 0; i < md->n_hosts; i++)
		TAILQ_FOREACH(j, &md->hosts[i]->waiting, hostq)
			n++;
	return n;
}

void
md_hosts_free(struct md *md)
{
	size_t i;

	for (i = 0; i < md->n_hosts; i++) {
		free(md->hosts[i]->name);
		free(md->hosts[i]);
	}
	free(md->hosts);
	md->hosts = NULL;
	md->n_hosts = 0;
}
