/*
 * session_core.h - the lifecycle the IMAP and POP3 clients share: the
 * per-command deadline, the outcome (a category and a sentence) reported
 * to the owner once and from its own event, and pause/resume for
 * backpressure.  The client keeps its connection, its state machine and
 * whether it has finished; the core keeps the timers and the outcome.
 */
#ifndef MAILSTOW_BASE_SESSION_CORE_H
#define MAILSTOW_BASE_SESSION_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "session.h"

struct bufferevent;

struct session_core {
	const struct session_ops *ops;	/* borrowed: done() goes here */
	void	*arg;
	uint32_t timeout_ms;		/* the deadline, armed per command */
	struct event *deadline;
	struct event *done_ev;		/* reports the outcome */
	struct event *resume_ev;	/* processes what arrived while paused */
	bool	 paused;
	/*
	 * The connection closed (BEV_EVENT_* bits) with replies still
	 * buffered: those are processed first (at once, or on resume), and
	 * the close is reported only if the protocol needs more bytes.
	 */
	short	 lost;
	char	 lost_err[256];		/* the socket or TLS error then */
	enum session_fail fail;
	char	 why[1024];
};

/*
 * Make the timers on `base` for a zeroed core: when the deadline passes,
 * on_deadline(owner) is called; after a resume, on_resume(owner) reads
 * what waits in the input buffer.  0, or -ENOMEM (session_core_clear()
 * frees what was made).
 */
int	session_core_init(struct session_core *, struct event_base *,
	    const struct session_ops *, void *arg, uint32_t timeout_ms,
	    event_callback_fn on_deadline, event_callback_fn on_resume,
	    void *owner);
/* Free the timers; a zeroed core is fine. */
void	session_core_clear(struct session_core *);
/* (Re)start the deadline: timeout_ms from now. */
void	session_core_arm(struct session_core *);
/* Stop the deadline and a pending resume (the session is ending). */
void	session_core_stop(struct session_core *);
/* The sentence for a failure; cut to fit `why`. */
void	session_core_vwhy(struct session_core *, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));
/*
 * Call ops->done(fail, why) from a fresh event ("" for SESSION_OK), so
 * that no caller sees its owner free the session under its feet.  The
 * client calls this once, after its teardown.
 */
void	session_core_report(struct session_core *, enum session_fail);

/* What a failed net_connect() (its -errno) counts as: TLS for a refused
 * certificate or handshake, a timeout, local for memory, else connect. */
enum session_fail session_connect_fail(int err);
/*
 * Backpressure: pause stops reading from `bev` (NULL: not connected) and
 * the deadline, since the server is not the slow one; resume reads again,
 * re-arms the deadline and schedules on_resume for replies that already
 * wait in the buffer.  Repeated calls do nothing; resume returns whether
 * it resumed (the client then restarts its progress count).
 */
void	session_core_pause(struct session_core *, struct bufferevent *bev);
bool	session_core_resume(struct session_core *, struct bufferevent *bev);

#endif
