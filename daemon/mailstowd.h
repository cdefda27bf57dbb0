/*
 * mailstowd.h - what the daemon's files share: the daemon state, the
 * reference-counted config, per-profile schedule state and the job (one
 * queued or running run of a profile with the control clients waiting on
 * it).  Private to daemon/mailstowd*.c.
 */
#ifndef MAILSTOWD_H
#define MAILSTOWD_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "base/log.h"
#include "conf/conf.h"
#include "ctl/ctl.h"
#include "run/run.h"
#include "sched/sched.h"
#include "store/store.h"

#define MD_RETRY_MAX		5	/* retries of a failed run */
#define MD_RETRY_BASE_MS	60000	/* 1m, 2m, 4m, ... */
#define MD_RETRY_CAP_MS		(60ULL * 60 * 1000)
#define MD_STOP_TIMEOUT_S	10	/* wait for interrupted runs */
#define MD_CTL_MAX_CLIENTS	32
#define MD_CTL_IDLE_S		5	/* a peer must send its request by then */

struct md;
struct md_client;
struct md_host;
struct md_prof;

/* A loaded config; runs hold a reference so a reload cannot free theirs. */
struct md_conf {
	struct conf *conf;
	unsigned refs;
};

struct md_waiter {
	struct md_client *client;
	LIST_ENTRY(md_waiter) entry;
};

/*
 * Where a job is: waiting for a session of its host (not yet in the run
 * queue), in the run queue with one session of its host reserved, or
 * running with `sessions` of them held.
 */
enum md_jstate { MD_J_HOSTWAIT, MD_J_QUEUED, MD_J_RUNNING };

/* One queued or running run of a profile. */
struct md_job {
	struct md *md;
	struct md_prof *prof;
	char	 trigger[16];		/* "schedule", "manual", "retry",
					 * "catch-up" */
	struct md_conf *conf;		/* referenced while running */
	struct run *run;
	int64_t	 run_id;
	time_t	 queued_at, started_at;
	bool	 running;
	enum md_jstate state;
	struct md_host *host;		/* its server's session budget */
	uint32_t sessions;		/* held while running */
	TAILQ_ENTRY(md_job) hostq;	/* MD_J_HOSTWAIT */
	LIST_HEAD(, md_waiter) waiters;
};

/* The session budget of one server host, shared by all its runs. */
struct md_host {
	char	*name;
	uint32_t held;			/* sessions of running runs */
	uint32_t reserved;		/* one per job in the run queue */
	TAILQ_HEAD(, md_job) waiting;	/* FIFO of MD_J_HOSTWAIT jobs */
};

/* Schedule state of one profile, kept across reloads by name. */
struct md_prof {
	struct md *md;
	char	*name;
	char	*schedule;		/* text, to see whether it changed */
	char	*timezone;		/* NULL: the daemon's zone */
	uint32_t jitter_ms;
	char	*mailbox;		/* auth.user, for log fields */
	struct sched *sched;
	struct event *timer;
	int64_t	 next_nominal_ms;	/* cron: the fire time, no jitter */
	int64_t	 next_regular_ms;	/* wall clock ms, jitter added; 0: none */
	int64_t	 next_retry_ms;
	unsigned retries;
	int64_t	 last_run;		/* 0: none since the daemon started */
	char	 last_status[32];
	time_t	 last_finished;
	struct md_job *job;
	bool	 removed;		/* gone from the config; job still runs */
};

struct md {
	struct event_base *base;
	struct evdns_base *dns;
	struct store *store;
	const char *config_path;
	const char *socket_override;
	char	*socket_path;
	struct md_conf *conf;
	struct md_prof **profs;
	size_t	 n_profs;
	struct ctl_queue *queue;
	struct md_host **hosts;
	size_t	 n_hosts;
	uint32_t per_host_max;		/* daemon.max_connections_per_host */
	struct md_ctl *ctl;
	struct event *sig_hup, *sig_term, *sig_int, *watchdog, *stop_timer;
	uint64_t retry_base_ms;
	time_t	 started;
	bool	 stopping;
};

/* mailstowd_log.c */
struct md_logctx {
	const char *profile;
	int64_t	 run;			/* 0: none */
	const char *mailbox, *folder;
};
void	md_log_init(void);
void	md_log(enum log_level, const struct md_logctx *, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* mailstowd_notify.c */
void	md_notify_ready(struct md *);
void	md_notify_reloading(void);
void	md_notify_stopping(void);
void	md_notify_status(struct md *);
int	md_watchdog_start(struct md *);

/* mailstowd_conf.c */
int	md_conf_load(const char *path, struct md_conf **ret, char *err,
	    size_t errlen);
struct md_conf *md_conf_ref(struct md_conf *);
void	md_conf_unref(struct md_conf *);
int	md_apply_conf(struct md *, struct md_conf *);
int	md_reload(struct md *, char *err, size_t errlen);
void	md_prof_free(struct md_prof *);
struct md_prof *md_prof_find(struct md *, const char *name);

/* mailstowd_sched.c */
void	md_prof_first_arm(struct md_prof *, bool schedule_changed);
void	md_prof_arm(struct md_prof *);
void	md_dispatch(struct md *);
/* Queue a run of `p` (cl: a control client to tell, or NULL). */
int	md_job_submit(struct md *, struct md_prof *, const char *trigger,
	    struct md_client *cl);
/* `every D`: the next fire is at `from_ms`, plus a new random jitter. */
void	md_prof_plan_every(struct md_prof *, int64_t from_ms);
int	md_request_run(struct md *, const char *name, struct md_client *,
	    char *err, size_t errlen);
void	md_job_forget(struct md_job *, int neg_errno, const char *why);
void	md_job_drop_queued(struct md *, int neg_errno, const char *why);
void	md_cancel_all(struct md *);
void	md_waiter_detach(struct md_job *, struct md_client *);
int64_t	md_now_ms(void);

/* mailstowd_start.c: catch-up of fires missed while the daemon was down */
void	md_catch_up_added(struct md *, struct md_prof *);
void	md_catch_up(struct md *);

/* mailstowd_host.c: the per-host session budget */
/* Queue a new job: into the run queue with a session reserved, or onto
 * its host's waiting list.  -ENOMEM. */
int	md_host_admit(struct md *, struct md_job *, const char *host);
/* A job left the run queue to start: give it min(want, free sessions);
 * 0 when none are free (after a reload lowered the limit): the job went
 * back to the head of its host's waiting list. */
uint32_t md_host_take(struct md *, struct md_job *, uint32_t want);
/* A running job ended: its sessions go back, waiting jobs move on. */
void	md_host_release(struct md *, struct md_job *);
/* A job that never ran is dropped from wherever it waits. */
void	md_host_forget(struct md *, struct md_job *);
/* After a reload (the limit may have grown). */
void	md_host_pump_all(struct md *);
/* The first job waiting for any host, or NULL. */
struct md_job *md_host_first_waiting(const struct md *);
size_t	md_host_n_waiting(const struct md *);
void	md_hosts_free(struct md *);

/* mailstowd_ctl.c */
struct md_ctl;
int	md_ctl_open(struct md *, const char *path, struct md_ctl **ret,
	    char *err, size_t errlen);
void	md_ctl_stop_listening(struct md_ctl *);
void	md_ctl_free(struct md_ctl *);
void	md_client_send(struct md_client *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* The final line: send it and close once it is written. */
void	md_client_end(struct md_client *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* mailstowd_status.c */
int	md_status_print(struct md *, bool json, FILE *out);
int	md_status_line(struct md *, char *buf, size_t len);

#endif
