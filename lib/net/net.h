/*
 * net.h - outgoing connections on a libevent loop: async DNS (evdns),
 * non-blocking connect over IPv4 and IPv6 (addresses tried in order),
 * implicit TLS or a later STARTTLS upgrade over OpenSSL bufferevents.
 *
 * TLS policy (DESIGN.md rule 3): TLS 1.2 minimum; SNI; the chain is
 * verified against the system store or ca_file and the host name (or IP
 * SAN) is checked, unless the profile pins a SHA-256 fingerprint of the
 * leaf certificate (then exactly that certificate is accepted) or turned
 * verification off.  Names with embedded NULs never match.
 */
#ifndef MAILSTOW_NET_H
#define MAILSTOW_NET_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct bufferevent;
struct net_conn;

enum net_tls { NET_TLS_NONE, NET_TLS_IMPLICIT, NET_TLS_STARTTLS };

struct net_params {
	const char *host;		/* name or address literal */
	uint16_t port;
	enum net_tls tls;
	const char *ca_file;		/* NULL: system store */
	const char *server_name;	/* NULL: host */
	bool	 verify;
	bool	 has_fingerprint;
	uint8_t	 fingerprint[32];
	uint32_t timeout_ms;		/* DNS + connect + TLS handshake */
};

/*
 * Called exactly once per net_connect()/net_starttls().  err == 0: the
 * connection is ready and net_bev() is the bufferevent to use (its
 * callbacks are yours to set; it is enabled for reading).  err < 0: `why`
 * is a sentence for the protocol ("certificate verify failed: unable to get
 * local issuer certificate (imap.example.com:993)", "connection refused by
 * 127.0.0.1 port 993", "no address for host example.invalid").  The
 * callback may call net_free().
 */
typedef void net_ready_fn(struct net_conn *, int err, const char *why,
	    void *arg);

/*
 * More of the contract:
 * - ready() never runs inside net_connect()/net_starttls(); when either
 *   returns < 0 it never runs at all, nor after net_free().
 * - On success `why` is "".  Errors: -ENOENT no address for the host,
 *   -ECONNREFUSED (or another -errno) connect failed, -ETIMEDOUT the
 *   timer ran out, -EPROTO the handshake failed, -EPERM certificate or
 *   pin refused, -EINVAL the CA file cannot be loaded, -ENOMEM.
 * - timeout_ms 0 means 60 s; net_starttls() arms it anew.
 * - A pin takes precedence over verify: false.
 * - Bytes that arrive with the end of a handshake are offered to the
 *   owner's read callback one loop turn after ready().
 * - Callers ignore SIGPIPE (OpenSSL writes with plain write()).
 */

/* Start connecting.  For NET_TLS_IMPLICIT `ready` fires after the
 * handshake and verification; for NONE and STARTTLS after TCP connect. */
int	net_connect(struct event_base *, struct evdns_base *,
	    const struct net_params *, net_ready_fn *ready, void *arg,
	    struct net_conn **ret);

/*
 * Upgrade a plain connection to TLS after the server agreed to STARTTLS.
 * Refuses with -EPROTO if any bytes are waiting in the input buffer (they
 * were sent before the handshake and could be an injection: RFC 3207 / 
 * RFC 2595 reasoning).  `ready` fires once the handshake and verification
 * are done.
 */
int	net_starttls(struct net_conn *, net_ready_fn *ready, void *arg);

struct bufferevent *net_bev(struct net_conn *);
bool	net_is_tls(const struct net_conn *);
/* "TLSv1.3, TLS_AES_256_GCM_SHA384, certificate verified for NAME" or
 * "... certificate NOT verified (verify: false)" or "... pinned sha256:..".
 * Borrowed. */
const char *net_tls_summary(const struct net_conn *);
/* "host:port (address)" for messages. Borrowed. */
const char *net_peer(const struct net_conn *);
void	net_free(struct net_conn *);

#endif
