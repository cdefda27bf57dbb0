/*
 * net_private.h - what net.c (lookup, connect, timer, teardown) and
 * net_tls.c (OpenSSL context, handshake, verification) share: the
 * connection object and the few functions each side calls in the other.
 */
#ifndef MAILSTOW_NET_PRIVATE_H
#define MAILSTOW_NET_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <netinet/in.h>
#include <openssl/ssl.h>

#include "net.h"

/* DNS names are at most 253 octets; anything longer is a config error. */
#define NET_HOST_MAX		255
#define NET_DEFAULT_TIMEOUT_MS	60000

enum net_state {
	NET_S_START,		/* waiting for the first loop turn */
	NET_S_RESOLVING,	/* evdns request in flight */
	NET_S_CONNECTING,	/* non-blocking connect to c->addr */
	NET_S_HANDSHAKE,	/* TLS handshake (implicit or STARTTLS) */
	NET_S_READY,		/* handed to the protocol */
	NET_S_FAILED,		/* ready() got an error; resources released */
	_NET_S_MAX,
};

struct evutil_addrinfo;
struct evdns_getaddrinfo_request;
struct event;

struct net_conn {
	struct event_base	*base;
	struct evdns_base	*dns;		/* may be NULL: literals only */
	enum net_state		 state;

	char			*host;
	char			*server_name;	/* SNI and certificate check */
	uint16_t		 port;
	enum net_tls		 tls;
	bool			 verify;
	bool			 pinned;
	uint8_t			 pin[32];
	uint32_t		 timeout_ms;

	net_ready_fn		*ready;		/* NULL once called */
	void			*ready_arg;

	struct event		*step;		/* deferred work, see net.c */
	struct event		*timer;		/* DNS + connect + handshake */
	struct event		*conn_ev;	/* connect() completion */
	int			 fd;		/* socket while connecting */

	struct evdns_getaddrinfo_request *dns_req;
	bool			 dns_done;
	int			 dns_result;
	struct evutil_addrinfo	*ai_list;
	struct evutil_addrinfo	*ai_next;
	int			 last_err;	/* of the last address tried */

	int			 setup_err;	/* TLS context failure, reported async */
	SSL_CTX			*ctx;
	struct bufferevent	*bev;
	bool			 is_tls;

	char			 addr[INET6_ADDRSTRLEN];
	char			 hostport[NET_HOST_MAX + 16];
	char			 peer[NET_HOST_MAX + 16 + INET6_ADDRSTRLEN + 4];
	char			 summary[256];
	char			 why[512];
};

/* net.c */
void	net_enter(struct net_conn *, enum net_state);
void	net_timer_arm(struct net_conn *);
void	net_fail(struct net_conn *, int err, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	net_ready_ok(struct net_conn *);

/* net_tls.c */
int	net_tls_ctx_new(struct net_conn *, const char *ca_file);
void	net_tls_start_implicit(struct net_conn *, int fd);
bool	net_is_ip_literal(const char *);

#endif
