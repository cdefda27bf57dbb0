/*
 * net_test_certs.h - certificates for test_net.c, made at test time with
 * the OpenSSL API: a CA, a server certificate for localhost and
 * 127.0.0.1, an expired one, one for another name, one whose SAN hides a
 * NUL, and a self-signed one.  Static functions: included by one test only.
 */
#ifndef MAILSTOW_NET_TEST_CERTS_H
#define MAILSTOW_NET_TEST_CERTS_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Certificates shared by all tests, made once. */
struct pki {
	EVP_PKEY	*ca_key, *key;
	X509		*ca, *good, *self, *expired, *wrong, *nul;
	uint8_t		 self_fp[32], good_fp[32];
	char		 ca_path[64];
};
static __attribute__((unused)) struct pki *pki;

/* ---- certificates ---------------------------------------------------- */

static __attribute__((unused)) void
t_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* An unsigned certificate; t_sign() finishes it. */
static __attribute__((unused)) X509 *
t_cert_begin(EVP_PKEY *key, const char *cn, X509 *issuer, long from_days,
    long to_days, bool ca)
{
	static long serial = 1;
	X509 *x;

	assert_non_null(x = X509_new());
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x),
	    from_days * 86400L));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x),
	    to_days * 86400L));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x),
	    "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x,
	    X509_get_subject_name(issuer != NULL ? issuer : x)), 1);
	t_add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	if (ca)
		t_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	else
		t_add_ext(x, issuer != NULL ? issuer : x, NID_ext_key_usage,
		    "serverAuth");
	return x;
}

static __attribute__((unused)) X509 *
t_sign(X509 *x, EVP_PKEY *key)
{
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static __attribute__((unused)) X509 *
t_leaf(const char *cn, const char *san, long from_days, long to_days)
{
	X509 *x;

	x = t_cert_begin(pki->key, cn, pki->ca, from_days, to_days, false);
	if (san != NULL)
		t_add_ext(x, pki->ca, NID_subject_alt_name, san);
	return t_sign(x, pki->ca_key);
}

/* SAN dNSName "localhost\0.evil.test": must never match "localhost". */
static __attribute__((unused)) X509 *
t_nul_cert(void)
{
	static const char name[] = "localhost\0.evil.test";
	GENERAL_NAMES *gens;
	GENERAL_NAME *gn;
	ASN1_IA5STRING *s;
	X509 *x;

	x = t_cert_begin(pki->key, "nul.test", pki->ca, -1, 365, false);
	assert_non_null(gens = sk_GENERAL_NAME_new_null());
	assert_non_null(gn = GENERAL_NAME_new());
	assert_non_null(s = ASN1_IA5STRING_new());
	assert_int_equal(ASN1_STRING_set(s, name, sizeof name - 1), 1);
	assert_int_equal(ASN1_STRING_length(s), 20);
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT), 1);
	GENERAL_NAMES_free(gens);
	return t_sign(x, pki->ca_key);
}

static __attribute__((unused)) void
t_fingerprint(X509 *x, uint8_t out[32])
{
	unsigned int len = 0;

	assert_int_equal(X509_digest(x, EVP_sha256(), out, &len), 1);
	assert_int_equal(len, 32);
}

static __attribute__((unused)) int
group_setup(void **state)
{
	FILE *f;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	assert_non_null(pki = calloc(1, sizeof *pki));
	assert_non_null(pki->ca_key = EVP_EC_gen("P-256"));
	assert_non_null(pki->key = EVP_EC_gen("P-256"));
	pki->ca = t_sign(t_cert_begin(pki->ca_key, "mailstow test CA", NULL,
	    -1, 365, true), pki->ca_key);
	pki->good = t_leaf("localhost", "DNS:localhost,IP:127.0.0.1", -1, 365);
	pki->expired = t_leaf("localhost", "DNS:localhost,IP:127.0.0.1", -30,
	    -1);
	pki->wrong = t_leaf("other.example", "DNS:other.example", -1, 365);
	pki->nul = t_nul_cert();
	pki->self = t_sign(t_cert_begin(pki->key, "selfsigned.test", NULL, -1,
	    365, false), pki->key);
	t_fingerprint(pki->self, pki->self_fp);
	t_fingerprint(pki->good, pki->good_fp);

	snprintf(pki->ca_path, sizeof pki->ca_path, "/tmp/test_net_ca_XXXXXX");
	assert_true((fd = mkstemp(pki->ca_path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	assert_int_equal(PEM_write_X509(f, pki->ca), 1);
	assert_int_equal(fclose(f), 0);
	return 0;
}

static __attribute__((unused)) int
group_teardown(void **state)
{
	unlink(pki->ca_path);
	X509_free(pki->ca);
	X509_free(pki->good);
	X509_free(pki->self);
	X509_free(pki->expired);
	X509_free(pki->wrong);
	X509_free(pki->nul);
	EVP_PKEY_free(pki->ca_key);
	EVP_PKEY_free(pki->key);
	free(pki);
	return 0;
}

#endif
