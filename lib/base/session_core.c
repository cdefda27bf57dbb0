/*
 * session_core.c - the timers and the outcome of a protocol session: the
 * deadline that ends a session whose server stops making progress, the
 * one report of how it ended, and pausing for a slow owner.
 */
#include <errno.h>
#include <stdio.h>

#include <event2/bufferevent.h>

#include "session_core.h"

static void
session_core_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session_core *sc = arg;

	sc->ops->done(sc->arg, sc->fail, sc->fail == SESSION_OK ? "" : sc->why);
}

int
session_core_init(struct session_core *sc, struct event_base *base,
    const struct session_ops *ops, void *arg, uint32_t timeout_ms,
    event_callback_fn on_deadline, event_callback_fn on_resume, void *owner)
{
	sc->ops = ops;
	sc->arg = arg;
	sc->timeout_ms = timeout_ms;
	sc->deadline = evtimer_new(base, on_deadline, owner);
	sc->done_ev = evtimer_new(base, session_core_done_cb, sc);
	sc->resume_ev = evtimer_new(base, on_resume, owner);
	if (sc->deadline == NULL || sc->done_ev == NULL ||
	    sc->resume_ev == NULL)
		return -ENOMEM;
	return 0;
}

void
session_core_clear(struct session_core *sc)
{
	if (sc->deadline != NULL)
		event_free(sc->deadline);
	if (sc->done_ev != NULL)
		event_free(sc->done_ev);
	if (sc->resume_ev != NULL)
		event_free(sc->resume_ev);
	sc->deadline = sc->done_ev = sc->resume_ev = NULL;
}

/*
 * The deadline: every command must see a complete response, or 64 KiB of
 * a listing or message, within timeout_ms of the last such progress (the
 * client decides what counts and re-arms).  An idle timeout alone would
 * let a server that trickles a byte now and then hold a session forever
 * (fetchmail CVE-2011-1947 is the classic).
 */
void
session_core_arm(struct session_core *sc)
{
	struct timeval tv;

	tv.tv_sec = sc->timeout_ms / 1000;
	tv.tv_usec = (sc->timeout_ms % 1000) * 1000;
	evtimer_add(sc->deadline, &tv);
}

void
session_core_stop(struct session_core *sc)
{
	if (sc->deadline != NULL)
		evtimer_del(sc->deadline);
	if (sc->resume_ev != NULL)
		evtimer_del(sc->resume_ev);
}

void
session_core_vwhy(struct session_core *sc, const char *fmt, va_list ap)
{
	vsnprintf(sc->why, sizeof sc->why, fmt, ap);
}

void
session_core_report(struct session_core *sc, enum session_fail fail)
{
	struct timeval now = { 0, 0 };

	sc->fail = fail;
	evtimer_add(sc->done_ev, &now);
}

void
session_core_pause(struct session_core *sc, struct bufferevent *bev)
{
	if (sc->paused)
		return;
	sc->paused = true;
	evtimer_del(sc->deadline);
	if (bev != NULL)
		bufferevent_disable(bev, EV_READ);
}

bool
session_core_resume(struct session_core *sc, struct bufferevent *bev)
{
	struct timeval now = { 0, 0 };

	if (!sc->paused)
		return false;
	sc->paused = false;
	if (bev != NULL)
		bufferevent_enable(bev, EV_READ);
	session_core_arm(sc);
	/* Replies may wait in the buffer with no new bytes to come. */
	evtimer_add(sc->resume_ev, &now);
	return true;
}

enum session_fail
session_connect_fail(int err)
{
	switch (err) {
	case -EPERM:
	case -EPROTO:
	case -EINVAL:
		return SESSION_FAIL_TLS;
	case -ETIMEDOUT:
		return SESSION_FAIL_TIMEOUT;
	case -ENOMEM:
		return SESSION_FAIL_LOCAL;
	default:
		return SESSION_FAIL_CONNECT;
	}
}
