/*
 * test_net.c - lib/net end to end inside one process and one event base:
 * parameters, implicit TLS, verification failures and pins.  TCP,
 * STARTTLS and teardown: test_net_starttls.c; DNS: test_net_dns.c.  The
 * client side is in net_fixture.h.
 */
#include "net_fixture.h"

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
	};

	net_fx_env();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
