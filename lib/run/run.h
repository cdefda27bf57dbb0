/*
 * run.h - one archiving run of one profile: password, session, plan,
 * batched durable commits, and the protocol row with its events.  A run
 * is asynchronous on the caller's loop and protocol-neutral.
 */
#ifndef MAILSTOW_RUN_H
#define MAILSTOW_RUN_H

#include <stdint.h>

#include "conf/conf.h"
#include "store/store.h"

struct event_base;
struct evdns_base;
struct run;
struct oauth2_client;

struct run_params {
	struct event_base *base;
	struct evdns_base *dns;
	struct store	*store;		/* opened RDWR; borrowed */
	const struct conf_profile *profile;	/* borrowed for the run */
	const char	*trigger;	/* "manual", "schedule", ... */
	uint32_t	 batch_messages;	/* commit group; 0: 256 */
	uint64_t	 batch_bytes;		/* 0: 64 MiB */
	/* Sessions at once: at most this and the profile's max_parallel;
	 * 0: max_parallel.  The daemon's share of its per-host limit. */
	uint32_t	 max_sessions;
	/* Token endpoint client for OAuth2 profiles, borrowed; NULL: the
	 * run makes its own on `base`. */
	struct oauth2_client *oauth2;
};

struct run_result {
	int64_t	 run_id;
	const char *status;		/* "succeeded", "completed_with_errors",
					 * "failed", "interrupted" */
	struct store_counts counts;
	/* What ended a failed run, as in its protocol ("auth error: login
	 * as ... refused by ...: [AUTHENTICATIONFAILED] ..."); "" else. */
	char	 reason[1100];
};

/* Called once, from the loop, when the run's protocol row is final. */
typedef void run_done_fn(struct run *, const struct run_result *, void *arg);

/*
 * Begin a run.  Its protocol row exists when this returns 0; every later
 * outcome (even a password file that cannot be read) is reported through
 * `done`.  -errno only when not even the protocol row could be written.
 */
int	run_start(const struct run_params *, run_done_fn *done, void *arg,
	    struct run **ret);
/* Stop at the next message boundary; the run ends "interrupted". */
void	run_cancel(struct run *);
int64_t	run_id(const struct run *);
void	run_free(struct run *);

#endif
