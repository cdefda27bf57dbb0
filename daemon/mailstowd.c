/*
 * mailstowd.c - the service: load the config, open the archive (holding
 * its lock for life), arm every profile's schedule on one libevent loop,
 * serve the control socket, and react to SIGHUP (reload) and SIGTERM /
 * SIGINT (interrupt runs, wait a bounded time, exit).  Stays in the
 * foreground, as systemd expects; see mailstowd(8).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "base/util.h"
#include "mailstowd.h"

#define MD_EXIT_CONFIG	2
#define MD_EXIT_FAIL	1

static void
md_usage(FILE *f)
{
	fprintf(f,
	    "usage: mailstowd [-v] [-c FILE] [--control-socket PATH]\n"
	    "\n"
	    "Runs the archiving profiles of FILE on their schedules until\n"
	    "SIGTERM; SIGHUP reloads FILE.  -c defaults to $MAILSTOW_CONFIG,\n"
	    "then /etc/mailstow/mailstow.yaml.  See mailstowd(8).\n");
}

static int
md_options(struct md *md, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "control-socket", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': md->config_path = optarg; break;
		case 's': md->socket_override = optarg; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': md_usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc)
		return -1;
	if (md->config_path == NULL)
		md->config_path = getenv("MAILSTOW_CONFIG");
	if (md->config_path == NULL)
		md->config_path = "/etc/mailstow/mailstow.yaml";
	return 0;
}

static struct evdns_base *
md_dns(struct event_base *base)
{
	struct evdns_base *dns;

	dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (dns == NULL) {
		/* No resolv.conf: /etc/hosts and address literals still work. */
		md_log(LOG_LVL_WARN, NULL, "no name servers configured; "
		    "resolving from /etc/hosts only");
		dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (dns != NULL)
			evdns_base_load_hosts(dns, NULL);
	}
	return dns;
}

static void
md_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct md *md = arg;

	md_log(LOG_LVL_WARN, NULL, "%zu runs did not end within %ds; exiting "
	    "anyway (the next start marks them interrupted)",
	    ctl_queue_n_running(md->queue), MD_STOP_TIMEOUT_S);
	event_base_loopexit(md->base, NULL);
}

static void
md_stop(struct md *md, int sig)
{
	struct timeval tv = { MD_STOP_TIMEOUT_S, 0 };
	size_t n = ctl_queue_n_running(md->queue);

	if (md->stopping) {
		md_log(LOG_LVL_WARN, NULL, "signal %d again: exiting now", sig);
		event_base_loopexit(md->base, NULL);
		return;
	}
	md->stopping = true;
	md_notify_stopping();
	md_log(LOG_LVL_INFO, NULL, "signal %d: stopping; %zu runs to "
	    "interrupt", sig, n);
	md_job_drop_queued(md, -ESHUTDOWN, "the daemon is shutting down");
	md_ctl_stop_listening(md->ctl);
	md_cancel_all(md);
	if (n == 0) {
		event_base_loopexit(md->base, NULL);
		return;
	}
	md->stop_timer = evtimer_new(md->base, md_stop_timeout, md);
	if (md->stop_timer == NULL || evtimer_add(md->stop_timer, &tv) < 0)
		event_base_loopexit(md->base, NULL);
}

static void
md_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct md *md = arg;
	char err[1024];

	if (sig == SIGHUP) {
		if (!md->stopping)
			md_reload(md, err, sizeof err);
		return;
	}
	md_stop(md, (int)sig);
}

static int
md_signals(struct md *md)
{
	md->sig_hup = evsignal_new(md->base, SIGHUP, md_on_signal, md);
	md->sig_term = evsignal_new(md->base, SIGTERM, md_on_signal, md);
	md->sig_int = evsignal_new(md->base, SIGINT, md_on_signal, md);
	if (md->sig_hup == NULL || md->sig_term == NULL || md->sig_int == NULL)
		return -ENOMEM;
	if (evsignal_add(md->sig_hup, NULL) < 0 ||
	    evsignal_add(md->sig_term, NULL) < 0 ||
	    evsignal_add(md->sig_int, NULL) < 0)
		return -EIO;
	return 0;
}

static uint64_t
md_retry_base(void)
{
	const char *s = getenv("MAILSTOW_RETRY_BASE_MS");
	uint64_t v;

	/* For tests: make the backoff short enough to watch. */
	if (s != NULL && parse_u64(s, strlen(s), &v) == 0 && v > 0)
		return v;
	return MD_RETRY_BASE_MS;
}

/* Config, archive, loop, schedules, control socket: READY=1 after all. */
static int
md_start(struct md *md)
{
	char err[1024];
	struct md_conf *mc;
	int r;

	if (md_conf_load(md->config_path, &mc, err, sizeof err) < 0) {
		md_log(LOG_LVL_ERR, NULL, "%s", err);
		return MD_EXIT_CONFIG;
	}
	if (store_open(mc->conf->archive_path, STORE_RDWR, &md->store, err,
	    sizeof err) < 0) {
		md_log(LOG_LVL_ERR, NULL, "%s", err);
		md_conf_unref(mc);
		return MD_EXIT_FAIL;
	}
	md->retry_base_ms = md_retry_base();
	if ((md->base = event_base_new()) == NULL ||
	    (md->dns = md_dns(md->base)) == NULL ||
	    ctl_queue_new(mc->conf->daemon.max_concurrent_runs,
	    mc->conf->daemon.max_connections_per_host, &md->queue) < 0 ||
	    md_signals(md) < 0 ||
	    (r = md_apply_conf(md, mc)) < 0) {
		md_log(LOG_LVL_ERR, NULL, "cannot set up the event loop");
		md_conf_unref(mc);
		return MD_EXIT_FAIL;
	}
	if ((md->socket_path = strdup(md->socket_override != NULL ?
	    md->socket_override : md->conf->conf->daemon.control_socket)) ==
	    NULL || md_ctl_open(md, md->socket_path, &md->ctl, err,
	    sizeof err) < 0) {
		md_log(LOG_LVL_ERR, NULL, "%s", md->socket_path ? err :
		    "out of memory");
		return MD_EXIT_FAIL;
	}
	if (md_watchdog_start(md) < 0)
		md_log(LOG_LVL_WARN, NULL, "cannot arm the watchdog timer");
	md->started = time(NULL);
	md_catch_up(md);
	md_log(LOG_LVL_INFO, NULL, "started: %zu profiles from %s, archive "
	    "%s, control socket %s", md->conf->conf->n_profiles,
	    md->config_path, store_root(md->store), md->socket_path);
	md_notify_ready(md);
	return 0;
}

static void
md_event_free(struct event *ev)
{
	if (ev != NULL)
		event_free(ev);
}

static void
md_teardown(struct md *md)
{
	size_t i, left;

	/* Deferred frees of finished runs are due now. */
	if (md->base != NULL)
		event_base_loop(md->base, EVLOOP_NONBLOCK);
	left = md->queue != NULL ? ctl_queue_n_running(md->queue) : 0;
	md_ctl_free(md->ctl);
	for (i = 0; i < md->n_profs; i++)
		if (md->profs[i]->job == NULL)
			md_prof_free(md->profs[i]);
	free(md->profs);
	ctl_queue_free(md->queue);
	md_hosts_free(md);
	md_event_free(md->sig_hup);
	md_event_free(md->sig_term);
	md_event_free(md->sig_int);
	md_event_free(md->watchdog);
	md_event_free(md->stop_timer);
	md_conf_unref(md->conf);
	/*
	 * Runs that did not end in time still have threads that use the
	 * store (a commit waiting for the writer): leave it to the exit.
	 * Nothing is lost: what was not committed is fetched next run.
	 */
	if (left == 0)
		store_close(md->store);
	if (md->dns != NULL)
		evdns_base_free(md->dns, 0);
	if (md->base != NULL)
		event_base_free(md->base);
	free(md->socket_path);
}

int
main(int argc, char **argv)
{
	struct md md = { 0 };
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (md_options(&md, argc, argv) < 0) {
		md_usage(stderr);
		return MD_EXIT_CONFIG;
	}
	md_log_init();
	if ((rc = md_start(&md)) == 0) {
		event_base_dispatch(md.base);
		md_log(LOG_LVL_INFO, NULL, "stopped");
	}
	md_teardown(&md);
	return rc;
}
