/*
 * ctl.h - the control protocol between mailstowd and its clients: request
 * and reply framing, a small blocking client for the CLI, the daemon's run
 * queue (pure, so it is tested without a loop), retry backoff, and the
 * journald native-protocol encoder.
 *
 * Wire protocol on a UNIX stream socket, one request per connection:
 *
 *	C: run PROFILE | status | status json | reload	(one line, LF or CRLF,
 *							 at most CTL_LINE_MAX)
 *	S: queued TEXT		run: waiting for a free slot
 *	S: started RUN_ID	run: the protocol row exists
 *	S: progress TEXT	run: a line to show the user
 *	S: done RUN_ID STATUS	run: final; STATUS as in run.h
 *	S: data TEXT		status: one line of output
 *	S: ok			status, reload: success, end of reply
 *	S: error CODE TEXT	any: CODE is busy, noent, inval, perm,
 *				limit, shutdown, proto or io; the daemon
 *				closes the connection after it
 */
#ifndef MAILSTOW_CTL_H
#define MAILSTOW_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CTL_LINE_MAX		1024	/* request line, newline included */
#define CTL_REPLY_MAX		65536	/* one reply line, as the client reads */
#define CTL_PROFILE_MAX		256	/* profile name on the wire */

/* ---- client (blocking; for the CLI) ------------------------------------ */

/* Is a daemon listening on `path`?  0 yes; -ENOENT / -ECONNREFUSED no daemon; other -errno. */
int	ctl_probe(const char *path);
/*
 * Ask the daemon to run `profile` now and wait until it is over.  0: the
 * daemon ran it; *ret_run_id is its run id and `status` its final status
 * string ("succeeded", ...).  -EBUSY: already running (err has "profile P
 * is already running since <ISO time> (run N)").  -ENOENT: the daemon has
 * no such profile.  -ENOENT/-ECONNREFUSED from connect also mean no
 * daemon: distinguish with ctl_probe first.  Progress lines the daemon
 * streams are written to `progress` (may be NULL) as they come.
 */
int	ctl_run(const char *path, const char *profile, FILE *progress,
	    int64_t *ret_run_id, char *status, size_t statuslen, char *err,
	    size_t errlen);
/* Print the daemon's status (profiles, last result, next run, running, queued) as text or JSON to out. */
int	ctl_status(const char *path, bool json, FILE *out, char *err,
	    size_t errlen);
/* Ask for a reload; 0 when the new config was accepted, -EINVAL with err = the config error (file:line:col). */
int	ctl_reload(const char *path, char *err, size_t errlen);

/* ---- framing (shared by client and daemon) ----------------------------- */

enum ctl_cmd { CTL_CMD_RUN, CTL_CMD_STATUS, CTL_CMD_STATUS_JSON,
	CTL_CMD_RELOAD };

struct ctl_request {
	enum ctl_cmd cmd;
	char	 profile[CTL_PROFILE_MAX];	/* CTL_CMD_RUN only */
};

/*
 * Parse one request line (without its LF; a trailing CR is ignored).
 * 0 and *ret, or -EINVAL with a sentence in `err` for anything else:
 * unknown words, control bytes, a missing or overlong profile name.
 */
int	ctl_request_parse(const char *line, size_t len, struct ctl_request *ret,
	    char *err, size_t errlen);

/* Error codes on the wire <-> -errno. */
const char *ctl_errcode_name(int neg_errno);
int	ctl_errcode_parse(const char *word, size_t len);

/* ---- the daemon's run queue (pure) ------------------------------------- */

struct ctl_queue;

enum ctl_qstate { CTL_Q_NONE, CTL_Q_QUEUED, CTL_Q_RUNNING };

/*
 * FIFO of profiles waiting to run, with at most `max_running` running at
 * once, at most `max_per_host` of them against one server host, and never
 * a profile twice.  An entry whose host is at its limit does not block
 * entries behind it.
 */
int	ctl_queue_new(uint32_t max_running, uint32_t max_per_host,
	    struct ctl_queue **ret);
void	ctl_queue_free(struct ctl_queue *);
void	ctl_queue_set_limits(struct ctl_queue *, uint32_t max_running,
	    uint32_t max_per_host);
/* Append; -EEXIST when the profile is queued or running, -ENOMEM. */
int	ctl_queue_push(struct ctl_queue *, const char *profile,
	    const char *host, void *arg);
/*
 * Take the first entry allowed to start now and mark it running.  0 and
 * *ret_arg (the push argument), or -EAGAIN when nothing may start.
 */
int	ctl_queue_pop(struct ctl_queue *, void **ret_arg);
/* A running profile ended: its slot is free.  -ENOENT if not running. */
int	ctl_queue_finished(struct ctl_queue *, const char *profile);
/* Drop a queued (not running) profile; its arg, or NULL when none. */
void	*ctl_queue_remove(struct ctl_queue *, const char *profile);
enum ctl_qstate ctl_queue_state(const struct ctl_queue *, const char *profile);
/* The push argument of a queued or running profile, or NULL. */
void	*ctl_queue_arg(const struct ctl_queue *, const char *profile);
size_t	ctl_queue_n_running(const struct ctl_queue *);
size_t	ctl_queue_n_queued(const struct ctl_queue *);
/* The i-th queued entry's argument in FIFO order, or NULL past the end. */
void	*ctl_queue_queued_at(const struct ctl_queue *, size_t i);

/*
 * Delay before retry number `attempt` (1, 2, ...) of a failed run:
 * base, 2 base, 4 base, ... capped at `cap_ms`, without overflow.
 */
uint64_t ctl_retry_delay_ms(uint64_t base_ms, unsigned attempt, uint64_t cap_ms);

/* ---- journald native protocol ------------------------------------------ */

struct ctl_journal_field {
	const char *name;		/* upper case, digits, '_' */
	const char *value;		/* NULL: the field is left out */
};

/*
 * Encode fields as one datagram of systemd's native journal protocol:
 * "NAME=value\n", or for a value holding a newline "NAME\n" + 64-bit
 * little-endian length + value + "\n".  Returns the length written, or
 * -EINVAL (bad field name), -ENOBUFS (buffer too small).
 */
int	ctl_journal_encode(const struct ctl_journal_field *f, size_t n,
	    char *buf, size_t buflen);

#endif
