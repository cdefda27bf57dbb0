/*
 * run_private.h - what the files of a run share: the run (one profile,
 * one protocol row), its sessions (one per mailbox), and the commit group
 * of each session.
 */
#ifndef MAILSTOW_RUN_PRIVATE_H
#define MAILSTOW_RUN_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/session.h"
#include "mime/mime.h"
#include "run/run.h"

struct source;

/* A whole message waiting for its commit group. */
struct run_pending {
	struct store_blob *blob;
	struct mime_fields f;
	char	*folder;
	char	*uidl;			/* POP3: the session's key is borrowed */
	uint32_t uidvalidity, uid;
	int64_t	 internaldate;
	uint64_t size;
	char	**users;		/* archive users it goes to (>= 1) */
	size_t	 n_users;
};

/* What one archive user received, for multidrop protocols. */
struct run_tally {
	char	*user;
	uint64_t archived, skipped;
};

/*
 * A folder's counts live until its last commit group is back: only then
 * is it recorded, and marked complete when it was.
 */
struct run_folder_rec {
	struct run_folder_rec *next;	/* the session's open records */
	char	*name;
	struct store_counts c;
	struct store_folder_state st;
	bool	 had_errors, complete, done_called;
	unsigned outstanding;		/* groups at the worker */
};

struct run_session {
	struct run *r;
	const struct conf_mailbox *mb;
	struct source *src;
	bool	 over, ending, paused;
	enum session_fail fail;
	char	*why;
	struct run_folder_rec *frec;	/* the folder being walked */
	struct run_folder_rec *recs;	/* every record not yet finalized */
	uint64_t errors;
	unsigned outstanding;		/* groups at the worker */
	struct run_pending *pending;
	size_t	 n_pending, cap_pending;
	uint64_t pending_bytes;
	bool	 oauth2_retried;	/* a refused token was refreshed once */
	bool	 write_wait;		/* the store's writer is behind */
	struct store_waiter wwait;	/* ... and calls back when it is not */
};

struct run_worker;

struct run {
	struct run_params p;
	run_done_fn *done;
	void	*done_arg;
	int64_t	 id;
	struct event *ev;		/* deferred start */
	struct event *fin_ev;		/* deferred done() */
	struct run_result result;
	struct store_counts total;
	uint64_t errors;
	bool	 cancelled, finished;
	char	*master_password;	/* batch with master_user */
	struct conf_mailbox *mboxes;
	size_t	 n_mboxes;
	struct run_session *sessions;
	size_t	 next_session, n_active, n_over, n_failed;
	bool	 starting;		/* in run_start_next(): no recursion */
	struct run_worker *worker;
	struct run_tally *tallies;	/* multidrop */
	size_t	 n_tallies;
	char	**unknown;		/* multidrop: addresses no route knew */
	size_t	 n_unknown;
	bool	 unknown_truncated;
	/* OAuth2 profiles: sessions waiting for a token, one asked at once */
	struct oauth2_client *oauth2;
	bool	 oauth2_own;
	struct oauth2_request *oauth2_req;
	struct run_session **oauth2_wait;
	size_t	 oauth2_head, oauth2_tail;
	char	 oauth2_path[4096];
};

extern const struct session_ops run_session_ops;

void	run_event(struct run *, enum store_level, const char *mailbox,
	    const char *folder, uint32_t uid, const char *fmt, ...)
	    __attribute__((format(printf, 6, 7)));
void	run_counts_add(struct store_counts *, const struct store_counts *);
/* Drop a session's pending group, blobs included (their files unlinked). */
void	run_pending_clear(struct run_session *);
/* The session's protocol ended: flush its group, wait for its commits. */
void	run_session_over(struct run_session *, enum session_fail,
	    const char *why);
/* Its last commit is back: count it, start the next, maybe finish. */
void	run_session_finished(struct run_session *);
/* Record a folder whose last group is back. */
void	run_folder_finalize(struct run_session *, struct run_folder_rec *);

/* run_commit.c */
int	run_worker_start(struct run *, char *err, size_t errlen);
void	run_worker_free(struct run *);
/* Hand the session's group to the worker; -ENOMEM (counted, reported). */
int	run_commit(struct run_session *);
/* Pause the session's source while its commits or the store's writer
 * are behind, resume it once neither is. */
void	run_session_flow(struct run_session *);
/* Protocol rows, written by the worker in order with the commits. */
bool	run_worker_running(const struct run *);
int	run_queue_event(struct run *, enum store_level, const char *mailbox,
	    const char *folder, uint32_t uid, const char *text);
int	run_queue_folder(struct run *, const char *mailbox, const char *folder,
	    const struct store_counts *, const struct store_folder_state *st);
int	run_queue_finish(struct run *, const char *status,
	    const struct store_counts *);
/* run.c: the final row is written; report the end. */
void	run_finish_written(struct run *, int err);

/* run_oauth2.c */
int	run_oauth2_init(struct run *);
/* Get the session a token, then start its source (or end it). */
void	run_oauth2_login(struct run_session *);
/* From done(): a refused token is refreshed and tried once more. */
bool	run_oauth2_retry(struct run_session *, enum session_fail,
	    const char *why);
void	run_oauth2_cancel(struct run *);
void	run_oauth2_free(struct run *);

/* run_route.c: multidrop */
/* Archive users for the message with this header; 0 or -ENOMEM. */
int	run_route(struct run_session *, const char *hdr, size_t len,
	    char ***ret_users, size_t *ret_n);
void	run_tally(struct run *, const char *user, bool duplicate);
void	run_route_report(struct run *);
void	run_route_free(struct run *);

#endif
