/*
 * test_net_starttls.c - lib/net over TCP inside one process and one event
 * base: refused ports, timeouts, plain connections, IPv6 literals,
 * STARTTLS (with injected bytes before the handshake) and teardown at any
 * moment.  The client side is in net_fixture.h.
 */
#include "net_fixture.h"

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
test_free_during_handshake(void **state)
{
	struct tenv *e = *state;
	struct net_params p;

	tsrv_start(&e->srv, e->base, TS_SILENT, NULL, 0);
	t_params(&p, "127.0.0.1", e->srv.port, NET_TLS_IMPLICIT);
	t_free_after(e, &p, 100);
	assert_int_equal(e->srv.accepted, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
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
	};

	net_fx_env();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
