/*
 * net_fixture.h - the client side the lib/net tests share: a test client
 * that records what its callbacks saw, an environment per test (event
 * base, test server, fake DNS server), a guarded loop run, and freeing a
 * connection while something is in flight.  The servers and certificates
 * are in net_test_servers.h and net_test_certs.h.  Static functions: each
 * test binary includes it once.
 */
#ifndef MAILSTOW_TEST_NET_FIXTURE_H
#define MAILSTOW_TEST_NET_FIXTURE_H

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net.h"

#include "net_test_certs.h"
#include "net_test_servers.h"

/* Not every includer uses every helper. */
#define NET_FX_FN	static __attribute__((unused))

/* ---- the client side ------------------------------------------------- */

struct tcli {
	struct event_base	*base;
	struct net_conn		*c;
	int			 calls;
	int			 err;
	char			 why[512];
	char			 summary[256];
	char			 peer[512];
	bool			 tls;
	bool			 want_line;
	char			 line[128];
	bool			 do_starttls;
	size_t			 wait_bytes;	/* buffered before STARTTLS */
	bool			 starttls_sent;
	int			 starttls_ret;
	int			 tls_calls;
	int			 tls_err;
	char			 tls_why[512];
	bool			 done;
};

struct tenv {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct tsrv		 srv;
	struct fdns		 fdns;
	struct tcli		 cli;
	bool			 guard_fired;
};

NET_FX_FN void
tcli_done(struct tcli *t)
{
	t->done = true;
	event_base_loopbreak(t->base);
}

NET_FX_FN void	tcli_read_cb(struct bufferevent *, void *);
NET_FX_FN void	tcli_event_cb(struct bufferevent *, short, void *);

NET_FX_FN void
tcli_record(struct tcli *t, struct net_conn *c, const char *why)
{
	snprintf(t->summary, sizeof t->summary, "%s", net_tls_summary(c));
	snprintf(t->peer, sizeof t->peer, "%s", net_peer(c));
	t->tls = net_is_tls(c);
	(void)why;
}

NET_FX_FN void
tcli_tls_ready(struct net_conn *c, int err, const char *why, void *arg)
{
	struct tcli *t = arg;

	t->tls_calls++;
	t->tls_err = err;
	snprintf(t->tls_why, sizeof t->tls_why, "%s", why);
	tcli_record(t, c, why);
	if (err < 0) {
		net_free(c);
		t->c = NULL;
		tcli_done(t);
		return;
	}
	assert_non_null(net_bev(c));
	bufferevent_setcb(net_bev(c), tcli_read_cb, NULL, tcli_event_cb, t);
}

NET_FX_FN void
tcli_read_cb(struct bufferevent *bev, void *arg)
{
	struct tcli *t = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	if (t->do_starttls && !t->starttls_sent &&
	    evbuffer_get_length(in) < t->wait_bytes)
		return;
	if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT)) == NULL)
		return;
	if (t->do_starttls && !t->starttls_sent) {
		assert_string_equal(line, "* OK");
		free(line);
		t->starttls_sent = true;
		t->starttls_ret = net_starttls(t->c, tcli_tls_ready, t);
		if (t->starttls_ret < 0)
			tcli_done(t);
		return;
	}
	snprintf(t->line, sizeof t->line, "%s", line);
	free(line);
	tcli_done(t);
}

NET_FX_FN void
tcli_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tcli *t = arg;

	snprintf(t->line, sizeof t->line, "<event 0x%x>", (unsigned)what);
	tcli_done(t);
}

NET_FX_FN void
tcli_ready(struct net_conn *c, int err, const char *why, void *arg)
{
	struct tcli *t = arg;

	t->calls++;
	t->err = err;
	assert_non_null(why);
	snprintf(t->why, sizeof t->why, "%s", why);
	tcli_record(t, c, why);
	if (err < 0) {
		assert_null(net_bev(c));
		/* Freeing from inside the callback is part of the contract. */
		net_free(c);
		t->c = NULL;
		tcli_done(t);
		return;
	}
	assert_non_null(net_bev(c));
	if (t->want_line || t->do_starttls) {
		bufferevent_setcb(net_bev(c), tcli_read_cb, NULL,
		    tcli_event_cb, t);
		return;
	}
	tcli_done(t);
}

NET_FX_FN int
test_setup(void **state)
{
	struct tenv *e;

	assert_non_null(e = calloc(1, sizeof *e));
	assert_non_null(e->base = event_base_new());
	e->cli.base = e->base;
	e->fdns.fd = -1;
	*state = e;
	return 0;
}

NET_FX_FN int
test_teardown(void **state)
{
	struct tenv *e = *state;

	net_free(e->cli.c);
	tsrv_stop(&e->srv);
	/* A cancelled evdns request is finished by a deferred callback:
	 * let it run before the bases go, or libevent leaks it. */
	event_base_loop(e->base, EVLOOP_NONBLOCK);
	if (e->dns != NULL)
		evdns_base_free(e->dns, 0);
	fdns_stop(&e->fdns);
	event_base_free(e->base);
	free(e);
	return 0;
}

NET_FX_FN void
t_guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tenv *e = arg;

	e->guard_fired = true;
	event_base_loopbreak(e->base);
}

/* Run the loop until the client is done or `ms` have passed. */
NET_FX_FN void
t_run(struct tenv *e, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *g;

	e->guard_fired = false;
	assert_non_null(g = evtimer_new(e->base, t_guard_cb, e));
	evtimer_add(g, &tv);
	event_base_dispatch(e->base);
	event_free(g);
}

NET_FX_FN void
t_params(struct net_params *p, const char *host, uint16_t port,
    enum net_tls tls)
{
	memset(p, 0, sizeof *p);
	p->host = host;
	p->port = port;
	p->tls = tls;
	p->ca_file = pki->ca_path;
	p->verify = true;
	p->timeout_ms = 5000;
}

NET_FX_FN void
t_connect(struct tenv *e, const struct net_params *p)
{
	assert_int_equal(net_connect(e->base, e->dns, p, tcli_ready, &e->cli,
	    &e->cli.c), 0);
	assert_non_null(e->cli.c);
}

/* Connect with `p` and run until ready() or 10 s. */
NET_FX_FN void
t_go(struct tenv *e, const struct net_params *p)
{
	t_connect(e, p);
	t_run(e, 10000);
	assert_false(e->guard_fired);
	assert_int_equal(e->cli.calls, 1);
}

NET_FX_FN void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

NET_FX_FN void
t_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcli *t = arg;

	net_free(t->c);
	t->c = NULL;
}

/* Free after `ms` while something is in flight; ready() must not run. */
NET_FX_FN void
t_free_after(struct tenv *e, const struct net_params *p, int ms)
{
	struct timeval tv = { 0, ms * 1000 };
	struct event *ev;

	t_connect(e, p);
	assert_non_null(ev = evtimer_new(e->base, t_free_cb, &e->cli));
	evtimer_add(ev, &tv);
	t_run(e, ms + 300);
	event_free(ev);
	assert_null(e->cli.c);
	assert_int_equal(e->cli.calls, 0);
}

/* TEST_DEBUG=1 shows lib/net's debug lines on stderr; TEST_FILTER=
 * test_dns_* runs a subset (handy under ASan). */
NET_FX_FN void
net_fx_env(void)
{
	if (getenv("TEST_DEBUG") != NULL)
		log_set_level(LOG_LVL_DEBUG);
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
}

#endif
