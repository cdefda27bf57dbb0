/*
 * test_net_dns.c - lib/net lookups through evdns against a fake DNS
 * server (next address, NXDOMAIN, timeouts, freeing mid-lookup) and the
 * system resolver for localhost.  The client side is in net_fixture.h.
 */
#include "net_fixture.h"

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

	net_fx_env();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
