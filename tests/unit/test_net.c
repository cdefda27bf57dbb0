/*
 * test_net.c - lib/net end to end inside one process and one event base:
 * implicit TLS, STARTTLS, verification failures, pins, timeouts, refused
 * ports, teardown at any moment, and lookups through evdns against a fake
 * DNS server (and the system resolver for localhost).  The servers and
 * certificates are in net_test_servers.h and net_test_certs.h.
 */
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

static void
tcli_done(struct tcli *t)
{
	t->done = true;
	event_base_loopbreak(t->base);
}

static void	tcli_read_cb(struct bufferevent *, void *);
static void	tcli_event_cb(struct bufferevent *, short, void *);

static void
tcli_record(struct tcli *t, struct net_conn *c, const char *why)
{
	snprintf(t->summary, sizeof t->summary, "%s", net_tls_summary(c));
	snprintf(t->peer, sizeof t->peer, "%s", net_peer(c));
	t->tls = net_is_tls(c);
	(void)why;
}

static void
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

static void
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

static void
tcli_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tcli *t = arg;

	snprintf(t->line, sizeof t->line, "<event 0x%x>", (unsigned)what);
	tcli_done(t);
}

static void
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

static int
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

static int
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

static void
t_guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tenv *e = arg;

	e->guard_fired = true;
	event_base_loopbreak(e->base);
}

/* Run the loop until the client is done or `ms` have passed. */
static void
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

static void
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

static void
t_connect(struct tenv *e, const struct net_params *p)
{
	assert_int_equal(net_connect(e->base, e->dns, p, tcli_ready, &e->cli,
	    &e->cli.c), 0);
	assert_non_null(e->cli.c);
}

/* Connect with `p` and run until ready() or 10 s. */
static void
t_go(struct tenv *e, const struct net_params *p)
{
	t_connect(e, p);
	t_run(e, 10000);
	assert_false(e->guard_fired);
	assert_int_equal(e->cli.calls, 1);
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* ---- tests: parameters ----------------------------------------------- */

static void
test_params_invalid(void **state)
{
	struct tenv *e = *state;
	struct net_conn *c = (struct net_conn *)&c;
	struct net_params p;
	char big[300];

	t_params(&p, NULL, 993, NET_TLS_IMPLICIT);
	assert_int_equal(net_connect(e->base, NULL, &p, tcli_ready, NULL, &c),
	    -EINVAL);
	t_params(&p, "", 993, NET_TLS_IMPLICIT);
	assert_int_equal(net_connect(e->base, NULL, &p, tcli_ready, NULL, &c),
	    -EINVAL);
	t_params(&p, "127.0.0.1", 0, NET_TLS_IMPLICIT);
	assert_int_equal(net_connect(e->base, NULL, &p, tcli_ready, NULL, &c),
	    -EINVAL);
	t_params(&p, "127.0.0.1", 993, (enum net_tls)7);
	assert_int_equal(net_connect(e->base, NULL, &p, tcli_ready, NULL, &c),
	    -EINVAL);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	t_params(&p, big, 993, NET_TLS_IMPLICIT);
	assert_int_equal(net_connect(e->base, NULL, &p, tcli_ready, NULL, &c),
	    -EINVAL);
	t_params(&p, "127.0.0.1", 993, NET_TLS_IMPLICIT);
	assert_int_equal(net_connect(e->base, NULL, &p, NULL, NULL, &c),
	    -EINVAL);
	/* ret_ is written only on success. */
	assert_ptr_equal(c, (struct net_conn *)&c);
	net_free(NULL);
	assert_null(net_bev(NULL));
	assert_false(net_is_tls(NULL));
}

/* ---- tests: implicit TLS --------------------------------------------- */

static void
test_tls_verified_ip(void **state)
{
	struct tenv *e = *state;
	struct net_params p;
	char peer[64];

	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	e->cli.want_line = true;
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_true(e->cli.tls);
	assert_contains(e->cli.summary, "TLSv1.3, TLS_");
	assert_contains(e->cli.summary,
	    ", certificate verified for 127.0.0.1");
	snprintf(peer, sizeof peer, "127.0.0.1:%u (127.0.0.1)",
	    (unsigned)e->srv.port);
	assert_string_equal(e->cli.peer, peer);
	/* Data flows over the TLS bufferevent handed to us. */
	assert_string_equal(e->cli.line, "* OK tls ready");
	/* RFC 6066: no SNI for address literals. */
	assert_false(e->srv.sni_seen);
}

static void
test_tls_verified_name_sni(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	p.server_name = "localhost";
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_contains(e->cli.summary, "certificate verified for localhost");
	assert_true(e->srv.sni_seen);
	assert_string_equal(e->srv.sni, "localhost");
}

static void
t_expect_verify_fail(struct tenv *e, X509 *cert, const char *server_name,
    const char *reason)
{
	struct net_params p;
	char want[512];

	tsrv_start(&e->srv, e->base, TS_TLS, cert, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	p.server_name = server_name;
	t_go(e, &p);
	assert_int_equal(e->cli.err, -EPERM);
	if (server_name == NULL)
		snprintf(want, sizeof want, "certificate verify failed: %s "
		    "(127.0.0.1:%u)", reason, (unsigned)e->srv.port);
	else
		snprintf(want, sizeof want, "certificate verify failed: %s "
		    "(%s at 127.0.0.1:%u)", reason, server_name,
		    (unsigned)e->srv.port);
	assert_string_equal(e->cli.why, want);
	assert_false(e->cli.tls);
	assert_string_equal(e->cli.summary, "no TLS");
}

static void
test_tls_wrong_server_name(void **state)
{
	t_expect_verify_fail(*state, pki->good, "wrong.example",
	    "hostname mismatch");
}

static void
test_tls_cert_for_other_name(void **state)
{
	t_expect_verify_fail(*state, pki->wrong, "localhost",
	    "hostname mismatch");
}

static void
test_tls_wrong_ip(void **state)
{
	/* The cert's IP SAN is 127.0.0.1; 127.0.0.2 must not match it. */
	t_expect_verify_fail(*state, pki->good, "127.0.0.2",
	    "IP address mismatch");
}

static void
test_tls_nul_in_name(void **state)
{
	t_expect_verify_fail(*state, pki->nul, "localhost",
	    "hostname mismatch");
}

static void
test_tls_self_signed_unpinned(void **state)
{
	t_expect_verify_fail(*state, pki->self, NULL,
	    "self-signed certificate");
}

static void
test_tls_expired(void **state)
{
	t_expect_verify_fail(*state, pki->expired, NULL,
	    "certificate has expired");
}

static void
test_tls_system_store_rejects_test_ca(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	p.ca_file = NULL;
	t_go(e, &p);
	assert_int_equal(e->cli.err, -EPERM);
	assert_contains(e->cli.why, "certificate verify failed: ");
}

static void
test_tls_self_signed_pinned(void **state)
{
	struct tenv *e = *state;
	struct net_params p;
	char hex[65], want[128];

	tsrv_start(&e->srv, e->base, TS_TLS, pki->self, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	p.has_fingerprint = true;
	memcpy(p.fingerprint, pki->self_fp, 32);
	e->cli.want_line = true;
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	hex_encode(pki->self_fp, 32, hex);
	snprintf(want, sizeof want, ", certificate pinned sha256:%.16s\xe2\x80\xa6",
	    hex);
	assert_contains(e->cli.summary, want);
	assert_string_equal(e->cli.line, "* OK tls ready");
}

static void
test_tls_wrong_pin(void **state)
{
	struct tenv *e = *state;
	struct net_params p;
	char got[65], pin[65], want[512];

	/* A chain that verifies does not excuse a wrong pin. */
	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	p.has_fingerprint = true;
	memcpy(p.fingerprint, pki->good_fp, 32);
	p.fingerprint[31] ^= 0x01;
	t_go(e, &p);
	assert_int_equal(e->cli.err, -EPERM);
	hex_encode(pki->good_fp, 32, got);
	hex_encode(p.fingerprint, 32, pin);
	snprintf(want, sizeof want, "certificate fingerprint mismatch: server "
	    "sent sha256:%s, profile pins sha256:%s (127.0.0.1:%u)", got, pin,
	    (unsigned)e->srv.port);
	assert_string_equal(e->cli.why, want);
}

static void
test_tls_verify_false(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_TLS, pki->self, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	p.verify = false;
	p.ca_file = NULL;
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_true(e->cli.tls);
	assert_contains(e->cli.summary,
	    ", certificate NOT verified (verify: false)");
}

static void
test_tls10_server_refused(void **state)
{
	struct tenv *e = *state;
	struct net_params p;
	char want[128];

	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, TLS1_VERSION);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	t_go(e, &p);
	assert_int_equal(e->cli.err, -EPROTO);
	snprintf(want, sizeof want, "TLS handshake with 127.0.0.1:%u "
	    "(127.0.0.1) failed: error:", (unsigned)e->srv.port);
	assert_contains(e->cli.why, want);
	assert_contains(e->cli.why, "protocol");
}

static void
test_tls_plaintext_server(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_PLAIN, NULL, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	t_go(e, &p);
	assert_int_equal(e->cli.err, -EPROTO);
	assert_contains(e->cli.why, "TLS handshake with 127.0.0.1:");
	assert_contains(e->cli.why, "wrong version number");
	/* The error queue was read and cleared. */
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_tls_bad_ca_file(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	p.ca_file = "/nonexistent/mailstow-ca.pem";
	t_go(e, &p);
	assert_int_equal(e->cli.err, -EINVAL);
	assert_contains(e->cli.why,
	    "cannot load CA file /nonexistent/mailstow-ca.pem: ");
	/* Nothing was sent anywhere. */
	assert_int_equal(e->srv.accepted, 0);
}

/* ---- tests: TCP ------------------------------------------------------ */

static void
test_refused(void **state)
{
	struct tenv *e = *state;
	struct sockaddr_in sin;
	struct net_params p;
	char want[128];
	uint16_t port;
	int fd;

	/* A port that was free a moment ago. */
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	port = t_sock_port(fd);
	close(fd);
	t_params(&p, "127.0.0.1", port, NET_TLS_NONE);
	t_go(e, &p);
	assert_int_equal(e->cli.err, -ECONNREFUSED);
	snprintf(want, sizeof want, "connection refused by 127.0.0.1 port %u",
	    (unsigned)port);
	assert_string_equal(e->cli.why, want);
}

static double
t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
test_timeout_handshake(void **state)
{
	struct tenv *e = *state;
	struct net_params p;
	char want[128];
	double t0, dt;

	tsrv_start(&e->srv, e->base, TS_SILENT, NULL, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	p.timeout_ms = 300;
	t0 = t_now();
	t_go(e, &p);
	dt = t_now() - t0;
	assert_int_equal(e->cli.err, -ETIMEDOUT);
	snprintf(want, sizeof want, "timed out after 300ms in the TLS "
	    "handshake with 127.0.0.1:%u (127.0.0.1)", (unsigned)e->srv.port);
	assert_string_equal(e->cli.why, want);
	assert_true(dt >= 0.25 && dt < 3.0);
	assert_int_equal(e->srv.accepted, 1);
}

static void
test_plain_none(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_PLAIN, NULL, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_NONE);
	e->cli.want_line = true;
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_false(e->cli.tls);
	assert_string_equal(e->cli.summary, "no TLS");
	assert_string_equal(e->cli.line, "* OK plain");
	/* A connection made without STARTTLS cannot be upgraded. */
	assert_int_equal(net_starttls(e->cli.c, tcli_tls_ready, &e->cli),
	    -EINVAL);
}

static void
test_ipv6_literal(void **state)
{
	struct tenv *e = *state;
	struct net_params p;
	char want[64];

	if (!tsrv_start_at(&e->srv, e->base, TS_PLAIN, NULL, 0,
	    "::1"))
		skip();
	t_params(&p, "::1", e->srv.port, NET_TLS_NONE);
	e->cli.want_line = true;
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	snprintf(want, sizeof want, "[::1]:%u (::1)", (unsigned)e->srv.port);
	assert_string_equal(e->cli.peer, want);
	assert_string_equal(e->cli.line, "* OK plain");
}

/* ---- tests: STARTTLS ------------------------------------------------- */

static void
test_starttls_ok(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_STARTTLS, pki->good, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_STARTTLS);
	p.server_name = "localhost";
	e->cli.do_starttls = true;
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_int_equal(e->cli.starttls_ret, 0);
	assert_int_equal(e->cli.tls_calls, 1);
	assert_int_equal(e->cli.tls_err, 0);
	assert_true(e->cli.tls);
	assert_true(net_is_tls(e->cli.c));
	assert_contains(e->cli.summary, "certificate verified for localhost");
	assert_string_equal(e->srv.sni, "localhost");
	assert_string_equal(e->cli.line, "* OK tls ready");
	/* Twice is refused. */
	assert_int_equal(net_starttls(e->cli.c, tcli_tls_ready, &e->cli),
	    -EINVAL);
}

static void
test_starttls_tls12_greeting_with_finished(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	/*
	 * In TLS 1.2 the server's Finished and its greeting arrive
	 * together, so the greeting is already decrypted when ready()
	 * runs: it must still reach the read callback set there.
	 */
	tsrv_start(&e->srv, e->base, TS_STARTTLS, pki->good, TLS1_2_VERSION);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_STARTTLS);
	e->cli.do_starttls = true;
	t_go(e, &p);
	assert_int_equal(e->cli.tls_err, 0);
	assert_contains(e->cli.summary, "TLSv1.2, ");
	assert_string_equal(e->cli.line, "* OK tls ready");
}

static void
test_starttls_pending_bytes(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_STARTTLS_JUNK, NULL, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_STARTTLS);
	e->cli.do_starttls = true;
	e->cli.wait_bytes = 13;
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_true(e->cli.starttls_sent);
	assert_int_equal(e->cli.starttls_ret, -EPROTO);
	assert_int_equal(e->cli.tls_calls, 0);
	assert_false(net_is_tls(e->cli.c));
}

static void
test_starttls_injection(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_STARTTLS_INJECT, NULL, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_STARTTLS);
	e->cli.do_starttls = true;
	t_go(e, &p);
	assert_int_equal(e->cli.starttls_ret, 0);
	assert_true(e->srv.injected);
	assert_int_equal(e->cli.tls_calls, 1);
	assert_int_equal(e->cli.tls_err, -EPROTO);
	assert_contains(e->cli.tls_why, "TLS handshake with 127.0.0.1:");
	assert_contains(e->cli.tls_why, "wrong version number");
	/* The injected line never reached the protocol. */
	assert_string_equal(e->cli.line, "");
}

static void
test_starttls_timeout(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_GREET_ONLY, NULL, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_STARTTLS);
	p.timeout_ms = 300;
	e->cli.do_starttls = true;
	t_go(e, &p);
	assert_int_equal(e->cli.starttls_ret, 0);
	assert_int_equal(e->cli.tls_err, -ETIMEDOUT);
	assert_contains(e->cli.tls_why,
	    "timed out after 300ms in the TLS handshake with 127.0.0.1:");
}

/* ---- tests: teardown at any moment ----------------------------------- */

static void
test_free_before_loop(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	t_connect(e, &p);
	net_free(e->cli.c);
	e->cli.c = NULL;
	t_run(e, 100);
	assert_int_equal(e->cli.calls, 0);
	assert_int_equal(e->srv.accepted, 0);
}

static void
t_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcli *t = arg;

	net_free(t->c);
	t->c = NULL;
}

/* Free after `ms` while something is in flight; ready() must not run. */
static void
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

static void
test_free_during_handshake(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_SILENT, NULL, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	t_free_after(e, &p, 100);
	assert_int_equal(e->srv.accepted, 1);
}

/* ---- tests: DNS ------------------------------------------------------ */

static void
test_no_resolver_name(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	t_params(&p, "localhost", 993, NET_TLS_NONE);
	t_go(e, &p);
	assert_int_equal(e->cli.err, -ENOENT);
	assert_contains(e->cli.why, "no address for host localhost: ");
	assert_contains(e->cli.why, "DNS resolver");
}

static void
t_fake_dns(struct tenv *e)
{
	char ns[32];

	fdns_start(&e->fdns, e->base);
	assert_non_null(e->dns = evdns_base_new(e->base, 0));
	snprintf(ns, sizeof ns, "127.0.0.1:%u", (unsigned)e->fdns.port);
	assert_int_equal(evdns_base_nameserver_ip_add(e->dns, ns), 0);
}

static void
test_dns_async(void **state)
{
	struct tenv *e = *state;
	struct net_params p;
	char want[64];

	t_fake_dns(e);
	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, 0);
	t_params(&p, "fake.test", e->srv.port, NET_TLS_IMPLICIT);
	p.server_name = "localhost";
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_true(e->fdns.queries > 0);
	snprintf(want, sizeof want, "fake.test:%u (127.0.0.1)",
	    (unsigned)e->srv.port);
	assert_string_equal(e->cli.peer, want);
	assert_contains(e->cli.summary, "certificate verified for localhost");
}

static void
test_dns_nxdomain(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	t_fake_dns(e);
	t_params(&p, "nosuch.invalid", 993, NET_TLS_IMPLICIT);
	t_go(e, &p);
	assert_int_equal(e->cli.err, -ENOENT);
	assert_contains(e->cli.why, "no address for host nosuch.invalid: ");
}

static void
test_dns_next_address(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	/* 127.0.0.2 refuses; the second address is the server. */
	t_fake_dns(e);
	tsrv_start(&e->srv, e->base, TS_PLAIN, NULL, 0);
	t_params(&p, "multi.test", e->srv.port, NET_TLS_NONE);
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_contains(e->cli.peer, "(127.0.0.1)");
	assert_int_equal(e->srv.accepted, 1);
}

static void
test_dns_all_refused(void **state)
{
	struct tenv *e = *state;
	struct net_params p;
	char a[64];

	t_fake_dns(e);
	tsrv_start(&e->srv, e->base, TS_PLAIN, NULL, 0);
	t_params(&p, "dead.test", e->srv.port, NET_TLS_NONE);
	t_go(e, &p);
	assert_int_equal(e->cli.err, -ECONNREFUSED);
	/* evdns keeps the answer's order; the sentence names the last
	 * address tried. */
	snprintf(a, sizeof a, "connection refused by 127.0.0.3 port %u",
	    (unsigned)e->srv.port);
	assert_string_equal(e->cli.why, a);
	assert_int_equal(e->srv.accepted, 0);
}

static void
test_dns_timeout(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	t_fake_dns(e);
	t_params(&p, "slow.test", 993, NET_TLS_IMPLICIT);
	p.timeout_ms = 300;
	t_go(e, &p);
	assert_int_equal(e->cli.err, -ETIMEDOUT);
	assert_string_equal(e->cli.why,
	    "timed out after 300ms resolving slow.test");
}

static void
test_free_during_dns(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	t_fake_dns(e);
	t_params(&p, "slow.test", 993, NET_TLS_IMPLICIT);
	t_free_after(e, &p, 100);
	assert_true(e->fdns.queries > 0);
}

static struct evdns_base *
t_system_dns(struct tenv *e)
{
	e->dns = evdns_base_new(e->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	assert_non_null(e->dns);
	return e->dns;
}

static void
test_dns_system_localhost(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	/* evdns reads /etc/hosts with INITIALIZE_NAMESERVERS. */
	t_system_dns(e);
	tsrv_start(&e->srv, e->base, TS_TLS, pki->good, 0);
	t_params(&p, "localhost", e->srv.port, NET_TLS_IMPLICIT);
	t_go(e, &p);
	assert_int_equal(e->cli.err, 0);
	assert_contains(e->cli.peer, "(127.0.0.1)");
	assert_contains(e->cli.summary, "certificate verified for localhost");
	assert_true(e->srv.sni_seen);
}

static void
test_dns_system_nosuch(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	/* Fails either by NXDOMAIN or, with no reachable DNS, by the
	 * timer: in both cases quickly and naming the host. */
	t_system_dns(e);
	t_params(&p, "nosuch.invalid", 993, NET_TLS_IMPLICIT);
	p.timeout_ms = 2000;
	t_go(e, &p);
	assert_true(e->cli.err == -ENOENT || e->cli.err == -ETIMEDOUT);
	assert_contains(e->cli.why, "nosuch.invalid");
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_params_invalid),
		T(test_tls_verified_ip),
		T(test_tls_verified_name_sni),
		T(test_tls_wrong_server_name),
		T(test_tls_cert_for_other_name),
		T(test_tls_wrong_ip),
		T(test_tls_nul_in_name),
		T(test_tls_self_signed_unpinned),
		T(test_tls_expired),
		T(test_tls_system_store_rejects_test_ca),
		T(test_tls_self_signed_pinned),
		T(test_tls_wrong_pin),
		T(test_tls_verify_false),
		T(test_tls10_server_refused),
		T(test_tls_plaintext_server),
		T(test_tls_bad_ca_file),
		T(test_refused),
		T(test_timeout_handshake),
		T(test_plain_none),
		T(test_ipv6_literal),
		T(test_starttls_ok),
		T(test_starttls_tls12_greeting_with_finished),
		T(test_starttls_pending_bytes),
		T(test_starttls_injection),
		T(test_starttls_timeout),
		T(test_free_before_loop),
		T(test_free_during_handshake),
		T(test_no_resolver_name),
		T(test_dns_async),
		T(test_dns_nxdomain),
		T(test_dns_next_address),
		T(test_dns_all_refused),
		T(test_dns_timeout),
		T(test_free_during_dns),
		T(test_dns_system_localhost),
		T(test_dns_system_nosuch),
	};

	/* TEST_DEBUG=1 shows lib/net's debug lines on stderr. */
	if (getenv("TEST_DEBUG") != NULL)
		log_set_level(LOG_LVL_DEBUG);
	/* TEST_FILTER=test_dns_* runs a subset (handy under ASan). */
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
