/*
 * net_test_servers.h - the other ends for test_net.c, all on one event
 * base in the test process: TLS, plaintext, STARTTLS and silent servers
 * on 127.0.0.1 (the kernel picks the port), and a fake DNS server that
 * answers a few names over UDP.  Static functions: included by one test.
 */
#ifndef MAILSTOW_NET_TEST_SERVERS_H
#define MAILSTOW_NET_TEST_SERVERS_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/util.h"
#include "net_test_certs.h"

#define GREETING_TLS	"* OK tls ready\r\n"
#define GREETING_PLAIN	"* OK plain\r\n"

/* ---- test servers ---------------------------------------------------- */

enum tsrv_mode {
	TS_TLS,			/* implicit TLS, greeting after handshake */
	TS_PLAIN,		/* plaintext greeting */
	TS_SILENT,		/* accepts, never speaks */
	TS_STARTTLS,		/* "* OK" then TLS accept */
	TS_STARTTLS_JUNK,	/* "* OK" and more plaintext in one write */
	TS_STARTTLS_INJECT,	/* "* OK", then plaintext instead of TLS */
	TS_GREET_ONLY,		/* "* OK", then silence */
};

struct tsrv {
	struct event_base	*base;
	struct evconnlistener	*lev;
	SSL_CTX			*ctx;
	enum tsrv_mode		 mode;
	uint16_t		 port;
	struct bufferevent	*conns[8];
	int			 nconns;
	int			 accepted;
	bool			 sni_seen;
	char			 sni[256];
	bool			 injected;
};

static __attribute__((unused)) int
tsrv_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tsrv *s = arg;
	const char *name;

	name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (name != NULL) {
		s->sni_seen = true;
		snprintf(s->sni, sizeof s->sni, "%s", name);
	}
	return SSL_TLSEXT_ERR_OK;
}

static __attribute__((unused)) SSL_CTX *
tsrv_ctx(struct tsrv *s, X509 *cert, int maxver)
{
	SSL_CTX *ctx;

	assert_non_null(ctx = SSL_CTX_new(TLS_server_method()));
	assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
	/* Every leaf certificate here shares one key. */
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pki->key), 1);
	if (maxver == TLS1_VERSION) {
		/* OpenSSL 3 refuses TLS 1.0 above security level 0. */
		SSL_CTX_set_security_level(ctx, 0);
		assert_int_equal(SSL_CTX_set_cipher_list(ctx,
		    "DEFAULT:@SECLEVEL=0"), 1);
		assert_int_equal(SSL_CTX_set_min_proto_version(ctx,
		    TLS1_VERSION), 1);
	}
	if (maxver != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(ctx, maxver),
		    1);
	SSL_CTX_set_tlsext_servername_callback(ctx, tsrv_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, s);
	return ctx;
}

static __attribute__((unused)) void
tsrv_inject_cb(struct bufferevent *bev, void *arg)
{
	struct tsrv *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* The client's ClientHello: it has called net_starttls(). */
	evbuffer_drain(in, evbuffer_get_length(in));
	if (!s->injected) {
		s->injected = true;
		bufferevent_write(bev, "* INJECTED\r\n", 12);
	}
}

static __attribute__((unused)) struct bufferevent *
tsrv_tls_bev(struct tsrv *s, evutil_socket_t fd, struct bufferevent *under)
{
	SSL *ssl;

	assert_non_null(ssl = SSL_new(s->ctx));
	if (under != NULL)
		return bufferevent_openssl_filter_new(s->base, under, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	return bufferevent_openssl_socket_new(s->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static __attribute__((unused)) void
tsrv_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct tsrv *s = arg;
	struct bufferevent *bev, *plain = NULL;

	s->accepted++;
	if (s->nconns == (int)NELEM(s->conns)) {
		close(fd);
		return;
	}
	if (s->mode != TS_TLS)
		assert_non_null(plain = bufferevent_socket_new(s->base, fd,
		    BEV_OPT_CLOSE_ON_FREE));
	bev = plain;
	switch (s->mode) {
	case TS_TLS:
		bev = tsrv_tls_bev(s, fd, NULL);
		bufferevent_write(bev, GREETING_TLS, strlen(GREETING_TLS));
		break;
	case TS_PLAIN:
		bufferevent_write(bev, GREETING_PLAIN, strlen(GREETING_PLAIN));
		break;
	case TS_SILENT:
		break;
	case TS_STARTTLS:
		bufferevent_write(plain, "* OK\r\n", 6);
		bev = tsrv_tls_bev(s, -1, plain);
		bufferevent_write(bev, GREETING_TLS, strlen(GREETING_TLS));
		break;
	case TS_STARTTLS_JUNK:
		bufferevent_write(bev, "* OK\r\nEXTRA\r\n", 13);
		break;
	case TS_STARTTLS_INJECT:
		bufferevent_write(bev, "* OK\r\n", 6);
		bufferevent_setcb(bev, tsrv_inject_cb, NULL, NULL, s);
		bufferevent_enable(bev, EV_READ);
		break;
	case TS_GREET_ONLY:
		bufferevent_write(bev, "* OK\r\n", 6);
		break;
	}
	assert_non_null(bev);
	s->conns[s->nconns++] = bev;
}

static __attribute__((unused)) uint16_t
t_sock_port(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/*
 * Listen on `addr` (no port: the kernel picks one).  False when that
 * address family is missing here (no IPv6 in the container).
 */
static __attribute__((unused)) bool
tsrv_start_at(struct tsrv *s, struct event_base *base, enum tsrv_mode mode,
    X509 *cert, int maxver, const char *addr)
{
	struct sockaddr_storage ss;
	int sslen = sizeof ss;

	memset(s, 0, sizeof *s);
	s->base = base;
	s->mode = mode;
	if (cert != NULL)
		s->ctx = tsrv_ctx(s, cert, maxver);
	memset(&ss, 0, sizeof ss);
	assert_int_equal(evutil_parse_sockaddr_port(addr,
	    (struct sockaddr *)&ss, &sslen), 0);
	s->lev = evconnlistener_new_bind(base, tsrv_accept, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    16, (struct sockaddr *)&ss, sslen);
	if (s->lev == NULL)
		return false;
	s->port = t_sock_port(evconnlistener_get_fd(s->lev));
	return true;
}

static __attribute__((unused)) void
tsrv_start(struct tsrv *s, struct event_base *base, enum tsrv_mode mode,
    X509 *cert, int maxver)
{
	assert_true(tsrv_start_at(s, base, mode, cert, maxver,
	    "127.0.0.1"));
}

static __attribute__((unused)) void
tsrv_stop(struct tsrv *s)
{
	int i;

	for (i = 0; i < s->nconns; i++)
		bufferevent_free(s->conns[i]);
	s->nconns = 0;
	if (s->lev != NULL)
		evconnlistener_free(s->lev);
	s->lev = NULL;
	SSL_CTX_free(s->ctx);
	s->ctx = NULL;
}

/* ---- fake DNS server (UDP, RFC 1035 section 4.1) -------------------- */

struct fdns {
	evutil_socket_t	 fd;
	struct event	*ev;
	uint16_t	 port;
	int		 queries;
};

/* Answers for A queries; AAAA gets an empty NOERROR; "slow." none. */
static __attribute__((unused)) int
fdns_lookup(const char *name, const char **addrs)
{
	if (strcasecmp(name, "fake.test") == 0) {
		addrs[0] = "127.0.0.1";
		return 1;
	}
	if (strcasecmp(name, "multi.test") == 0) {
		addrs[0] = "127.0.0.2";
		addrs[1] = "127.0.0.1";
		return 2;
	}
	if (strcasecmp(name, "dead.test") == 0) {
		addrs[0] = "127.0.0.2";
		addrs[1] = "127.0.0.3";
		return 2;
	}
	if (strcasecmp(name, "slow.test") == 0)
		return -2;
	return -1;
}

static __attribute__((unused)) size_t
fdns_answer(uint8_t *r, size_t off, const char *addr)
{
	static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60,
	    0, 4 };

	memcpy(r + off, rr, sizeof rr);
	assert_int_equal(inet_pton(AF_INET, addr, r + off + sizeof rr), 1);
	return off + sizeof rr + 4;
}

static __attribute__((unused)) void
fdns_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fdns *d = arg;
	uint8_t q[512], r[600];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof from;
	const char *addrs[2];
	char name[256];
	size_t off = 12, nl = 0, i;
	ssize_t n;
	int qtype, nans;

	n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fromlen);
	if (n < 12)
		return;
	d->queries++;
	while (off < (size_t)n && q[off] != 0) {
		size_t len = q[off];

		if (len > 63 || off + 1 + len > (size_t)n || nl + len + 1 >=
		    sizeof name)
			return;
		if (nl > 0)
			name[nl++] = '.';
		memcpy(name + nl, q + off + 1, len);
		nl += len;
		off += 1 + len;
	}
	name[nl] = '\0';
	if (off + 5 > (size_t)n)
		return;
	qtype = q[off + 1] << 8 | q[off + 2];
	off += 5;
	nans = fdns_lookup(name, addrs);
	if (nans == -2)
		return;
	memcpy(r, q, off);
	r[2] = 0x80 | (q[2] & 0x01);
	r[3] = 0x80 | (nans < 0 ? 3 : 0);
	memset(r + 6, 0, 6);
	if (qtype == 1 && nans > 0) {
		r[7] = (uint8_t)nans;
		for (i = 0; i < (size_t)nans; i++)
			off = fdns_answer(r, off, addrs[i]);
	}
	sendto(fd, r, off, 0, (struct sockaddr *)&from, fromlen);
}

static __attribute__((unused)) void
fdns_start(struct fdns *d, struct event_base *base)
{
	struct sockaddr_in sin;

	memset(d, 0, sizeof *d);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) >= 0);
	assert_int_equal(bind(d->fd, (struct sockaddr *)&sin, sizeof sin), 0);
	d->port = t_sock_port(d->fd);
	assert_non_null(d->ev = event_new(base, d->fd, EV_READ | EV_PERSIST,
	    fdns_read_cb, d));
	assert_int_equal(event_add(d->ev, NULL), 0);
}

static __attribute__((unused)) void
fdns_stop(struct fdns *d)
{
	if (d->ev != NULL)
		event_free(d->ev);
	d->ev = NULL;
	if (d->fd > 0)
		close(d->fd);
	d->fd = -1;
}

#endif
