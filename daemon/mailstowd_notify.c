/*
 * mailstowd_notify.c - the daemon's side of the systemd service protocol:
 * READY=1 / RELOADING=1 / STOPPING=1, a STATUS= line saying what runs and
 * what is next, and WATCHDOG=1 pings at half the watchdog interval.  All
 * of it is a no-op without NOTIFY_SOCKET.
 */
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "mailstowd.h"

void
md_notify_ready(struct md *md)
{
	char status[512];

	md_status_line(md, status, sizeof status);
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
md_notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000);
}

void
md_notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: interrupting runs");
}

void
md_notify_status(struct md *md)
{
	/* The daemon's one STATUS= line: sent only when it changes. */
	static char last[512];
	char status[512];

	if (md->stopping)
		return;
	md_status_line(md, status, sizeof status);
	if (strcmp(status, last) == 0)
		return;
	memcpy(last, status, sizeof last);
	sd_notifyf(0, "STATUS=%s", status);
}

static void
md_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

/* Ping at half of WATCHDOG_USEC when the service manager asks for it. */
int
md_watchdog_start(struct md *md)
{
	struct timeval tv;
	uint64_t usec;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	md->watchdog = event_new(md->base, -1, EV_PERSIST, md_watchdog_cb, md);
	if (md->watchdog == NULL)
		return -1;
	sd_notify(0, "WATCHDOG=1");
	return event_add(md->watchdog, &tv);
}
