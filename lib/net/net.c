/*
 * net.c - the life of an outgoing connection up to the moment a protocol
 * can talk: name lookup (evdns, or address literals only without a
 * resolver), a non-blocking connect to each address in turn, the one timer
 * that bounds all of it, and a teardown that is safe at any moment, also
 * from inside the ready callback.  TLS lives in net_tls.c.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "base/log.h"
#include "net_private.h"

static const char *const net_state_names[] = {
	"start", "resolving", "connecting", "handshake", "ready", "failed",
};
_Static_assert(sizeof net_state_names / sizeof *net_state_names == _NET_S_MAX,
    "one name per state");

static void	net_try_next(struct net_conn *);

void
net_enter(struct net_conn *c, enum net_state s)
{
	log_debug("net %s: %s -> %s", c->peer, net_state_names[c->state],
	    net_state_names[s]);
	c->state = s;
}

void
net_timer_arm(struct net_conn *c)
{
	struct timeval tv;

	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (c->timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

static void
net_peer_update(struct net_conn *c)
{
	if (c->addr[0] == '\0')
		snprintf(c->peer, sizeof c->peer, "%s", c->hostport);
	else
		snprintf(c->peer, sizeof c->peer, "%s (%s)", c->hostport,
		    c->addr);
}

/*
 * Give back everything that holds a socket, a request or a timer.  The
 * object itself stays, so that net_peer(), net_tls_summary() and the `why`
 * text remain valid until net_free().
 */
static void
net_release(struct net_conn *c)
{
	struct evdns_getaddrinfo_request *req;

	if (c->dns_req != NULL) {
		/* net_dns_cb gets EVUTIL_EAI_CANCEL for this, later. */
		req = c->dns_req;
		c->dns_req = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	if (c->conn_ev != NULL) {
		event_free(c->conn_ev);
		c->conn_ev = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->ai_list != NULL) {
		evutil_freeaddrinfo(c->ai_list);
		c->ai_list = c->ai_next = NULL;
	}
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (c->step != NULL)
		event_del(c->step);
}

/*
 * Every failure ends here.  Calling ready() is the last thing this does,
 * and every caller returns right after, because ready() may free `c`.
 */
void
net_fail(struct net_conn *c, int err, const char *fmt, ...)
{
	char buf[sizeof c->why];
	net_ready_fn *ready;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	memcpy(c->why, buf, sizeof c->why);
	log_debug("net %s: %s", c->peer, c->why);
	net_release(c);
	net_enter(c, NET_S_FAILED);
	ready = c->ready;
	c->ready = NULL;
	if (ready != NULL)
		ready(c, err, c->why, c->ready_arg);
}

/* Hand the bufferevent over.  Last action, like net_fail(). */
void
net_ready_ok(struct net_conn *c)
{
	net_ready_fn *ready;

	evtimer_del(c->timer);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	bufferevent_enable(c->bev, EV_READ);
	net_enter(c, NET_S_READY);
	/*
	 * Bytes that came with the end of the handshake sit in the input
	 * buffer and would not wake a read callback set later; one loop
	 * turn from now net_step_cb offers them to it.
	 */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		event_active(c->step, EV_TIMEOUT, 0);
	ready = c->ready;
	c->ready = NULL;
	if (ready != NULL)
		ready(c, 0, "", c->ready_arg);
}

static void
net_duration(uint32_t ms, char *out, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(out, len, "%us", (unsigned)(ms / 1000));
	else
		snprintf(out, len, "%ums", (unsigned)ms);
}

static void
net_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;
	char d[32];

	net_duration(c->timeout_ms, d, sizeof d);
	switch (c->state) {
	case NET_S_START:
	case NET_S_RESOLVING:
		net_fail(c, -ETIMEDOUT, "timed out after %s resolving %s", d,
		    c->host);
		return;
	case NET_S_CONNECTING:
		net_fail(c, -ETIMEDOUT, "timed out after %s connecting to %s",
		    d, c->peer);
		return;
	case NET_S_HANDSHAKE:
		net_fail(c, -ETIMEDOUT,
		    "timed out after %s in the TLS handshake with %s", d,
		    c->peer);
		return;
	default:
		return;
	}
}

/*
 * evdns may answer synchronously (literals, /etc/hosts, errors) from
 * inside evdns_getaddrinfo().  So the callback only stores the answer and
 * the work continues in net_step_cb on a later turn, never re-entering.
 */
static void
net_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct net_conn *c = arg;

	if (result == EVUTIL_EAI_CANCEL) {
		/* net_release() cancelled us.  evdns reports that on a
		 * later loop turn, when `c` may be freed: do not touch it. */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	c->dns_req = NULL;
	c->dns_done = true;
	c->dns_result = result;
	c->ai_list = res;
	event_active(c->step, EV_TIMEOUT, 0);
}

static void
net_resolve(struct net_conn *c)
{
	struct evdns_getaddrinfo_request *req;
	struct evutil_addrinfo hints;
	char port[8];

	if (c->setup_err < 0) {
		net_fail(c, c->setup_err, "%s", c->why);
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_NUMERICSERV;
	snprintf(port, sizeof port, "%u", (unsigned)c->port);
	net_enter(c, NET_S_RESOLVING);
	if (c->dns == NULL) {
		/* No resolver: only literals, which never block. */
		hints.ai_flags |= EVUTIL_AI_NUMERICHOST;
		c->dns_result = evutil_getaddrinfo(c->host, port, &hints,
		    &c->ai_list);
		c->dns_done = true;
		event_active(c->step, EV_TIMEOUT, 0);
		return;
	}
	req = evdns_getaddrinfo(c->dns, c->host, port, &hints, net_dns_cb, c);
	if (!c->dns_done) {
		if (req == NULL) {
			net_fail(c, -ENOMEM, "cannot start resolving %s",
			    c->host);
			return;
		}
		c->dns_req = req;
	}
}

static void
net_resolved(struct net_conn *c)
{
	if (c->dns_result == EVUTIL_EAI_NONAME && c->dns == NULL) {
		net_fail(c, -ENOENT, "no address for host %s: names need a "
		    "DNS resolver, only address literals work without one",
		    c->host);
		return;
	}
	if (c->dns_result != 0 || c->ai_list == NULL) {
		net_fail(c, -ENOENT, "no address for host %s: %s", c->host,
		    c->dns_result != 0 ? evutil_gai_strerror(c->dns_result) :
		    "empty answer");
		return;
	}
	c->ai_next = c->ai_list;
	net_enter(c, NET_S_CONNECTING);
	net_try_next(c);
}

/* Offer bytes buffered at ready time to the read callback set since. */
static void
net_redeliver(struct net_conn *c)
{
	bufferevent_data_cb readcb = NULL;

	if (c->bev == NULL)
		return;
	bufferevent_getcb(c->bev, &readcb, NULL, NULL, NULL);
	if (readcb != NULL &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ, 0);
}

static void
net_step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;

	switch (c->state) {
	case NET_S_START:
		net_resolve(c);
		return;
	case NET_S_RESOLVING:
		if (c->dns_done)
			net_resolved(c);
		return;
	case NET_S_READY:
		net_redeliver(c);
		return;
	default:
		return;
	}
}

static int
net_connect_error(struct net_conn *c, int e)
{
	if (e == ECONNREFUSED)
		snprintf(c->why, sizeof c->why,
		    "connection refused by %s port %u", c->addr,
		    (unsigned)c->port);
	else
		snprintf(c->why, sizeof c->why,
		    "cannot connect to %s port %u: %s", c->addr,
		    (unsigned)c->port, strerror(e));
	log_debug("net %s: %s", c->peer, c->why);
	return -e;
}

static void
net_connected(struct net_conn *c)
{
	int fd = c->fd;

	c->fd = -1;
	log_debug("net %s: TCP connected", c->peer);
	if (c->tls == NET_TLS_IMPLICIT) {
		net_tls_start_implicit(c, fd);
		return;
	}
	c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		net_fail(c, -ENOMEM, "out of memory connecting to %s",
		    c->peer);
		return;
	}
	net_ready_ok(c);
}

static void
net_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;
	socklen_t len = sizeof(int);
	int soerr = 0;

	event_free(c->conn_ev);
	c->conn_ev = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr == 0) {
		net_connected(c);
		return;
	}
	close(c->fd);
	c->fd = -1;
	c->last_err = net_connect_error(c, soerr);
	net_try_next(c);
}

/* 1: connected now, 0: in progress, < 0: this address failed. */
static int
net_try_addr(struct net_conn *c, const struct evutil_addrinfo *ai)
{
	const void *in;
	int fd, e;

	in = ai->ai_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
	if (evutil_inet_ntop(ai->ai_family, in, c->addr, sizeof c->addr) ==
	    NULL)
		snprintf(c->addr, sizeof c->addr, "?");
	net_peer_update(c);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    IPPROTO_TCP);
	if (fd < 0)
		return net_connect_error(c, errno);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		c->fd = fd;
		return 1;
	}
	if (errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return net_connect_error(c, e);
	}
	c->fd = fd;
	c->conn_ev = event_new(c->base, fd, EV_WRITE, net_connect_cb, c);
	if (c->conn_ev == NULL || event_add(c->conn_ev, NULL) < 0) {
		if (c->conn_ev != NULL)
			event_free(c->conn_ev);
		c->conn_ev = NULL;
		close(fd);
		c->fd = -1;
		return net_connect_error(c, ENOMEM);
	}
	return 0;
}

static void
net_try_next(struct net_conn *c)
{
	struct evutil_addrinfo *ai;
	int r;

	while ((ai = c->ai_next) != NULL) {
		c->ai_next = ai->ai_next;
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		r = net_try_addr(c, ai);
		if (r == 0)
			return;
		if (r == 1) {
			net_connected(c);
			return;
		}
		c->last_err = r;
	}
	if (c->last_err == 0) {
		net_fail(c, -EHOSTUNREACH, "no usable address for host %s",
		    c->host);
		return;
	}
	net_fail(c, c->last_err, "%s", c->why);
}

static int
net_params_check(const struct net_params *p)
{
	if (p->host == NULL || p->host[0] == '\0' ||
	    strlen(p->host) > NET_HOST_MAX)
		return -EINVAL;
	if (p->server_name != NULL && (p->server_name[0] == '\0' ||
	    strlen(p->server_name) > NET_HOST_MAX))
		return -EINVAL;
	if (p->port == 0)
		return -EINVAL;
	if (p->tls != NET_TLS_NONE && p->tls != NET_TLS_IMPLICIT &&
	    p->tls != NET_TLS_STARTTLS)
		return -EINVAL;
	return 0;
}

static struct net_conn *
net_conn_new(struct event_base *base, const struct net_params *p)
{
	struct net_conn *c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	c->base = base;
	c->fd = -1;
	c->port = p->port;
	c->tls = p->tls;
	c->verify = p->verify;
	c->pinned = p->has_fingerprint;
	memcpy(c->pin, p->fingerprint, sizeof c->pin);
	c->timeout_ms = p->timeout_ms != 0 ? p->timeout_ms :
	    NET_DEFAULT_TIMEOUT_MS;
	c->host = strdup(p->host);
	c->server_name = strdup(p->server_name != NULL ? p->server_name :
	    p->host);
	c->step = event_new(base, -1, 0, net_step_cb, c);
	c->timer = evtimer_new(base, net_timer_cb, c);
	if (c->host == NULL || c->server_name == NULL || c->step == NULL ||
	    c->timer == NULL) {
		net_free(c);
		return NULL;
	}
	if (strchr(c->host, ':') != NULL)
		snprintf(c->hostport, sizeof c->hostport, "[%s]:%u", c->host,
		    (unsigned)c->port);
	else
		snprintf(c->hostport, sizeof c->hostport, "%s:%u", c->host,
		    (unsigned)c->port);
	net_peer_update(c);
	return c;
}

/*
 * Nothing happens before the loop turns: ready() is never called from
 * inside net_connect(), so the caller always has *ret first.  A TLS
 * context that cannot be built (unreadable ca_file) is reported through
 * ready() like any other failure, with a sentence naming the file.
 */
int
net_connect(struct event_base *base, struct evdns_base *dns,
    const struct net_params *p, net_ready_fn *ready, void *arg,
    struct net_conn **ret)
{
	struct net_conn *c;
	int r;

	if (base == NULL || p == NULL || ready == NULL || ret == NULL)
		return -EINVAL;
	if ((r = net_params_check(p)) < 0)
		return r;
	if ((c = net_conn_new(base, p)) == NULL)
		return -ENOMEM;
	c->dns = dns;
	c->ready = ready;
	c->ready_arg = arg;
	if (c->tls != NET_TLS_NONE)
		c->setup_err = net_tls_ctx_new(c, p->ca_file);
	net_timer_arm(c);
	event_active(c->step, EV_TIMEOUT, 0);
	log_debug("net %s: connecting (tls %d, timeout %u ms)", c->peer,
	    (int)c->tls, (unsigned)c->timeout_ms);
	*ret = c;
	return 0;
}

struct bufferevent *
net_bev(struct net_conn *c)
{
	return c != NULL ? c->bev : NULL;
}

bool
net_is_tls(const struct net_conn *c)
{
	return c != NULL && c->is_tls;
}

const char *
net_peer(const struct net_conn *c)
{
	return c != NULL ? c->peer : "";
}

void
net_free(struct net_conn *c)
{
	if (c == NULL)
		return;
	c->ready = NULL;
	net_release(c);
	if (c->step != NULL)
		event_free(c->step);
	if (c->timer != NULL)
		event_free(c->timer);
	SSL_CTX_free(c->ctx);
	free(c->host);
	free(c->server_name);
	free(c);
}
