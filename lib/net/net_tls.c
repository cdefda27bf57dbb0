/*
 * net_tls.c - TLS for a connection: the OpenSSL client context (TLS 1.2
 * minimum, system store or ca_file), per-connection SNI and host or IP
 * check, the implicit-TLS and STARTTLS handshakes over OpenSSL
 * bufferevents, certificate verification or SHA-256 pinning afterwards,
 * and the one-line summary a protocol entry shows.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "base/util.h"
#include "net_private.h"

#define NET_SHA256_LEN	32

bool
net_is_ip_literal(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, buf) == 1 ||
	    inet_pton(AF_INET6, name, buf) == 1;
}

/* The oldest error in OpenSSL's queue as text; the queue is emptied. */
static void
net_tls_queue_error(char *out, size_t len)
{
	unsigned long e;

	e = ERR_peek_error();
	if (e == 0)
		snprintf(out, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, out, len);
	ERR_clear_error();
}

static int
net_tls_setup_error(struct net_conn *c, SSL_CTX *ctx, int err,
    const char *what, const char *file)
{
	char e[256];

	net_tls_queue_error(e, sizeof e);
	if (file != NULL)
		snprintf(c->why, sizeof c->why, "%s %s: %s", what, file, e);
	else
		snprintf(c->why, sizeof c->why, "%s: %s", what, e);
	SSL_CTX_free(ctx);
	return err;
}

/*
 * One context per connection: cheap next to a handshake, and no state is
 * shared between profiles with different trust settings.  On failure the
 * sentence is left in c->why and net.c reports it through ready().
 */
int
net_tls_ctx_new(struct net_conn *c, const char *ca_file)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return net_tls_setup_error(c, NULL, -ENOMEM,
		    "cannot create a TLS context", NULL);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return net_tls_setup_error(c, ctx, -EINVAL,
		    "cannot require TLS 1.2", NULL);
	/* Renegotiation is not needed by any mail server and libevent's
	 * bufferevents handle it poorly; compression invites CRIME. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
			return net_tls_setup_error(c, ctx, -EINVAL,
			    "cannot load CA file", ca_file);
	} else if (c->verify && !c->pinned) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			return net_tls_setup_error(c, ctx, -EINVAL,
			    "cannot load the system CA store", NULL);
	}
	c->ctx = ctx;
	return 0;
}

/*
 * With a pin the chain and the name do not matter: exactly one
 * certificate is trusted, and it is compared after the handshake.  So
 * every chain is accepted here, and nothing is sent before the check.
 */
static int
net_tls_accept_for_pin(int preverify_ok, X509_STORE_CTX *x)
{
	return 1;
}

static SSL *
net_tls_ssl_new(struct net_conn *c)
{
	bool ip = net_is_ip_literal(c->server_name);
	SSL *ssl;

	if ((ssl = SSL_new(c->ctx)) == NULL)
		return NULL;
	/* RFC 6066 section 3: SNI carries host names, never literals. */
	if (!ip && SSL_set_tlsext_host_name(ssl, c->server_name) != 1)
		goto fail;
	if (c->pinned) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, net_tls_accept_for_pin);
	} else if (c->verify) {
		/* OpenSSL's checks refuse names with embedded NULs. */
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (ip) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
			    c->server_name) != 1)
				goto fail;
		} else if (SSL_set1_host(ssl, c->server_name) != 1)
			goto fail;
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/*
 * libevent keeps up to three errors per bufferevent, the first being the
 * SSL_get_error() code (library 0), then OpenSSL's queue oldest first.
 * They come back newest first; keep the oldest real one.
 */
static void
net_tls_bev_error(struct bufferevent *bev, short what, char *out, size_t len)
{
	unsigned long e, found = 0;

	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (ERR_GET_LIB(e) != 0)
			found = e;
	ERR_clear_error();
	if (found != 0)
		ERR_error_string_n(found, out, len);
	else if (what & BEV_EVENT_EOF)
		snprintf(out, len, "the server closed the connection");
	else
		snprintf(out, len, "the connection was closed or reset");
}

/* "host:port", or "name at host:port" when a server_name was given. */
static void
net_tls_who(const struct net_conn *c, char *out, size_t len)
{
	if (strcmp(c->server_name, c->host) == 0)
		snprintf(out, len, "%s", c->hostport);
	else
		snprintf(out, len, "%s at %s", c->server_name, c->hostport);
}

static void
net_tls_verify_failed(struct net_conn *c, long vr)
{
	char who[sizeof c->hostport * 2];

	net_tls_who(c, who, sizeof who);
	net_fail(c, -EPERM, "certificate verify failed: %s (%s)",
	    X509_verify_cert_error_string(vr), who);
}

static void
net_tls_handshake_failed(struct net_conn *c, short what)
{
	char detail[256];
	SSL *ssl;
	long vr;

	ssl = bufferevent_openssl_get_ssl(c->bev);
	vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (c->verify && !c->pinned && vr != X509_V_OK) {
		while (bufferevent_get_openssl_error(c->bev) != 0)
			continue;
		ERR_clear_error();
		net_tls_verify_failed(c, vr);
		return;
	}
	net_tls_bev_error(c->bev, what, detail, sizeof detail);
	net_fail(c, -EPROTO, "TLS handshake with %s failed: %s", c->peer,
	    detail);
}

/* 0 and a summary phrase in `out`, or a failure already reported. */
static int
net_tls_check_pin(struct net_conn *c, X509 *cert, char *out, size_t len)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	char got[2 * NET_SHA256_LEN + 1], want[2 * NET_SHA256_LEN + 1];
	unsigned int mdlen = 0;

	if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 ||
	    mdlen != NET_SHA256_LEN) {
		ERR_clear_error();
		net_fail(c, -EPROTO, "cannot compute the certificate "
		    "fingerprint of %s", c->peer);
		return -EPROTO;
	}
	hex_encode(md, NET_SHA256_LEN, got);
	if (CRYPTO_memcmp(md, c->pin, NET_SHA256_LEN) != 0) {
		hex_encode(c->pin, NET_SHA256_LEN, want);
		net_fail(c, -EPERM, "certificate fingerprint mismatch: server "
		    "sent sha256:%s, profile pins sha256:%s (%s)", got, want,
		    c->hostport);
		return -EPERM;
	}
	snprintf(out, len, "certificate pinned sha256:%.16s\xe2\x80\xa6", got);
	return 0;
}

/* Second line of defence: the handshake already refused a bad chain. */
static int
net_tls_check_verified(struct net_conn *c, SSL *ssl, char *out, size_t len)
{
	long vr = SSL_get_verify_result(ssl);

	if (vr != X509_V_OK) {
		net_tls_verify_failed(c, vr);
		return -EPERM;
	}
	snprintf(out, len, "certificate verified for %s", c->server_name);
	return 0;
}

static void
net_tls_established(struct net_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char what[128];
	X509 *cert;

	if (ssl == NULL) {
		net_fail(c, -EPROTO, "no TLS session with %s", c->peer);
		return;
	}
	cert = SSL_get0_peer_certificate(ssl);
	if (cert == NULL && (c->pinned || c->verify)) {
		net_fail(c, -EPERM, "%s sent no certificate", c->peer);
		return;
	}
	if (c->pinned) {
		if (net_tls_check_pin(c, cert, what, sizeof what) < 0)
			return;
	} else if (c->verify) {
		if (net_tls_check_verified(c, ssl, what, sizeof what) < 0)
			return;
	} else {
		snprintf(what, sizeof what,
		    "certificate NOT verified (verify: false)");
	}
	snprintf(c->summary, sizeof c->summary, "%s, %s, %s",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl), what);
	c->is_tls = true;
	log_debug("net %s: %s", c->peer, c->summary);
	net_ready_ok(c);
}

static void
net_tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		net_tls_established(c);
	else
		net_tls_handshake_failed(c, what);
}

static void
net_tls_handshake_begin(struct net_conn *c)
{
	bufferevent_setcb(c->bev, NULL, NULL, net_tls_event_cb, c);
	net_enter(c, NET_S_HANDSHAKE);
}

void
net_tls_start_implicit(struct net_conn *c, int fd)
{
	char e[256];
	SSL *ssl;

	if ((ssl = net_tls_ssl_new(c)) == NULL) {
		net_tls_queue_error(e, sizeof e);
		close(fd);
		net_fail(c, -ENOMEM, "cannot set up TLS for %s: %s", c->peer,
		    e);
		return;
	}
	/* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl and fd, also
	 * when its creation fails (libevent frees them on that path). */
	c->bev = bufferevent_openssl_socket_new(c->base, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		net_fail(c, -ENOMEM, "out of memory starting TLS with %s",
		    c->peer);
		return;
	}
	net_tls_handshake_begin(c);
}

/*
 * The filter takes over the plain bufferevent: from now on every byte the
 * server sends goes through OpenSSL, so plaintext injected after the
 * server's "go ahead" breaks the handshake instead of becoming protocol
 * data.  Plaintext already buffered is refused before we start.
 */
int
net_starttls(struct net_conn *c, net_ready_fn *ready, void *arg)
{
	struct bufferevent *tls;
	SSL *ssl;

	if (c == NULL || ready == NULL)
		return -EINVAL;
	if (c->state != NET_S_READY || c->bev == NULL || c->is_tls ||
	    c->tls != NET_TLS_STARTTLS || c->ctx == NULL)
		return -EINVAL;
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		return -EPROTO;
	if ((ssl = net_tls_ssl_new(c)) == NULL) {
		ERR_clear_error();
		return -ENOMEM;
	}
	tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL)
		return -ENOMEM;
	c->bev = tls;
	c->ready = ready;
	c->ready_arg = arg;
	net_tls_handshake_begin(c);
	net_timer_arm(c);
	return 0;
}

const char *
net_tls_summary(const struct net_conn *c)
{
	if (c == NULL || !c->is_tls)
		return "no TLS";
	return c->summary;
}
