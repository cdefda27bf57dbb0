/*
 * fuzz_session.h - the harness the session fuzz targets share: a fake
 * server on 127.0.0.1 that feeds the input in split writes and then
 * half-closes, the event loop that drives the session to done(), and the
 * session_ops checks that do not depend on the protocol.  Each target
 * (fuzz_imap_session.c, fuzz_pop3_session.c) keeps its client, its params
 * and its protocol's checks.  Not a target itself: run.sh builds fuzz_*.c.
 *
 * The includer defines _GNU_SOURCE (accept4()) before any system header
 * and FZ_NAME, the target's name, before this one.  Its state starts with
 * a struct fz_run, and that state is the session_ops arg.
 */
#ifndef FUZZ_SESSION_H
#define FUZZ_SESSION_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/session.h"
#include "net/net.h"

#ifndef FZ_NAME
#error "define FZ_NAME, the target's name, before fuzz_session.h"
#endif

/* The flag bits of input byte 0 the harness reads; 0x20 and 0x80 are the
 * target's. */
#define FZ_F_SPLIT	0x03	/* 0 one write, 1 seeded sizes, 2 bytes, 3 lines */
#define FZ_F_STARTTLS	0x04	/* profile wants STARTTLS (pinned, no CA load) */
#define FZ_F_SINKFAIL	0x08	/* msg_write fails past 16 bytes */
#define FZ_F_PAUSE	0x10	/* pause in message(), resume from a timer */
#define FZ_F_CANCEL	0x40	/* cancel at the second message(): fz_cancel() */

#define FZ_MAX_MSG	4096		/* max_message_size */
#define FZ_BYTEWISE_MAX	2048		/* split mode 2: the rest goes at once */
#define FZ_CAP_SEC	5		/* longer than this is a hang */

struct fz_msg {
	uint64_t size;			/* announced by msg_begin */
	uint8_t	*data;
	size_t	 len;
	bool	 ended;
};

/* The client under test, as the harness drives it; c is fz_run.client. */
struct fz_client {
	void	(*pause)(void *c);
	void	(*resume)(void *c);
	void	(*cancel)(void *c);
	bool	 exact_size;		/* msg_begin()'s size is exact, no hint */
};

struct fz_run {
	struct event_base *base;
	const struct fz_client *cl;
	void	*client;		/* NULL until started */
	struct event *srv_ev, *cap_ev, *resume_ev, *cancel_ev, *accept_ev;
	int	 srv;			/* server end, -1 until accepted */
	uint8_t	 flags;
	bool	 done, in_folder;
	int	 msgs, live;		/* live: sink handles not yet freed */
	size_t	 stored;		/* bytes "archived", all messages */
};

static int fz_listen = -1;
static uint16_t fz_port;

/* The session broke a promise of base/session.h: a finding. */
static void
fz_bug(const char *what)
{
	fprintf(stderr, FZ_NAME ": %s\n", what);
	abort();
}

/* Formatting always runs (the server's words go through it); the lines
 * are shown only with FZ_DEBUG set, to follow one input by hand. */
static void
fz_log_sink(enum log_level level, const char *line, void *arg)
{
	if (arg != NULL)
		fprintf(stderr, "%s\n", line);
}

/* For LLVMFuzzerInitialize(): one listener serves every input. */
static int
fz_init(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;

	signal(SIGPIPE, SIG_IGN);
	log_set_sink(fz_log_sink, getenv("FZ_DEBUG"));
	log_set_level(LOG_LVL_DEBUG);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fz_listen = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fz_listen < 0 || bind(fz_listen, (struct sockaddr *)&sin,
	    sizeof sin) < 0 || listen(fz_listen, 64) < 0 ||
	    getsockname(fz_listen, (struct sockaddr *)&sin, &len) < 0)
		fz_bug("cannot listen on 127.0.0.1");
	fz_port = ntohs(sin.sin_port);
	return 0;
}

/* ---- the owner: session_ops that check the contract ------------------ */

static void
fz_alive(struct fz_run *r)
{
	if (r->done)
		fz_bug("callback after done()");
}

static void
o_ready(void *arg, const char *summary)
{
	fz_alive(arg);
	if (summary == NULL)
		fz_bug("ready() without a summary");
}

static void
o_planned(void *arg, const struct session_folder *sf, uint64_t found,
    uint64_t todo)
{
	struct fz_run *r = arg;

	fz_alive(r);
	if (!r->in_folder)
		fz_bug("folder_planned() outside an open folder");
	if (todo > found)
		fz_bug("more to fetch than found");
}

static void *
o_begin(void *arg, uint64_t size)
{
	struct fz_run *r = arg;
	struct fz_msg *m;

	fz_alive(r);
	if (size > FZ_MAX_MSG)
		fz_bug("msg_begin() above max_message_size");
	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->size = size;
	r->live++;
	return m;
}

/* Never past max_message_size, nor past the announced size where that is
 * exact (o_begin() keeps it within max_message_size). */
static int
o_write(void *arg, void *h, const void *buf, size_t len)
{
	struct fz_run *r = arg;
	struct fz_msg *m = h;
	uint8_t *p;

	fz_alive(r);
	if (m == NULL || m->ended)
		fz_bug("msg_write() on no handle or an ended one");
	if (r->cl->exact_size && m->len + len > m->size)
		fz_bug("msg_write() past the announced size");
	if (m->len + len > FZ_MAX_MSG)
		fz_bug("msg_write() past max_message_size");
	if ((r->flags & FZ_F_SINKFAIL) && m->len + len > 16)
		return -ENOSPC;
	if (len == 0)
		return 0;
	if ((p = realloc(m->data, m->len + len)) == NULL)
		return -ENOMEM;
	memcpy(p + m->len, buf, len);
	m->data = p;
	m->len += len;
	return 0;
}

static int
o_end(void *arg, void *h)
{
	struct fz_msg *m = h;

	fz_alive(arg);
	if (m == NULL || m->ended)
		fz_bug("msg_end() twice");
	m->ended = true;
	return 0;
}

static void
fz_msg_free(struct fz_run *r, struct fz_msg *m)
{
	free(m->data);
	free(m);
	r->live--;
}

static void
o_discard(void *arg, void *h)
{
	fz_alive(arg);
	if (h == NULL)
		fz_bug("msg_discard(NULL)");
	fz_msg_free(arg, h);
}

/*
 * Cancel from inside message(), which the header allows and which once
 * freed the IMAP handle twice (pop3_retr.c takes the handle back before
 * message() and checks `finished` after every call out);
 * -DFZ_CANCEL_DEFERRED cancels from a timer instead, between callbacks,
 * as the daemon's signal handling does.
 */
static void
fz_cancel(struct fz_run *r)
{
#ifndef FZ_CANCEL_DEFERRED
	r->cl->cancel(r->client);
#else
	struct timeval now = { 0, 0 };

	evtimer_add(r->cancel_ev, &now);
#endif
}

/* The rest of message(), once the target has checked its arguments:
 * archive and free the handle, then cancel or pause as the flags say. */
static void
fz_delivered(struct fz_run *r, struct fz_msg *m)
{
	struct timeval now = { 0, 0 };

	r->stored += m->len;
	fz_msg_free(r, m);
	r->msgs++;
	if ((r->flags & FZ_F_CANCEL) && r->msgs == 2) {
		fz_cancel(r);
		return;
	}
	if (r->flags & FZ_F_PAUSE) {
		r->cl->pause(r->client);
		evtimer_add(r->resume_ev, &now);
	}
}

static void
o_event(void *arg, enum log_level lvl, const struct session_folder *sf,
    const char *text)
{
	fz_alive(arg);
	if (text == NULL || strchr(text, '\n') != NULL ||
	    strchr(text, '\r') != NULL)
		fz_bug("event text missing or with a line break");
}

static void
o_folder_done(void *arg, const struct session_folder *sf, bool complete)
{
	struct fz_run *r = arg;

	fz_alive(r);
	r->in_folder = false;
}

static void
o_done(void *arg, enum session_fail fail, const char *why)
{
	struct fz_run *r = arg;

	fz_alive(r);
	if (why == NULL || (fail != SESSION_OK && why[0] == '\0'))
		fz_bug("done() with no reason");
	/* The server half-closed: nothing is left to wait for. */
	if (fail == SESSION_FAIL_TIMEOUT)
		fz_bug("session timed out although the server had closed");
	r->done = true;
	log_debug("fuzz: done: %s: %s (%d messages, %zu bytes)",
	    session_fail_name(fail), why, r->msgs, r->stored);
	event_base_loopbreak(r->base);
}

/* ---- the server end --------------------------------------------------- */

static void
fz_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz_run *r = arg;

	if (!r->done)
		r->cl->resume(r->client);
}

static void
fz_cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz_run *r = arg;

	if (!r->done)
		r->cl->cancel(r->client);
}

/* Whatever the client sends is read and dropped. */
static void
fz_srv_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz_run *r = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		event_del(r->srv_ev);
}

static void
fz_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz_run *r = arg;

	if (r->srv >= 0)
		return;
	r->srv = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (r->srv < 0)
		return;
	r->srv_ev = event_new(r->base, r->srv, EV_READ | EV_PERSIST,
	    fz_srv_read_cb, r);
	if (r->srv_ev == NULL || event_add(r->srv_ev, NULL) < 0)
		fz_bug("cannot watch the server end");
	event_del(r->accept_ev);
}

static void
fz_cap_cb(evutil_socket_t fd, short what, void *arg)
{
	fz_bug("the session did not end within the cap: a hang");
}

/* One loop turn that does not wait, twice: deferred callbacks run too. */
static void
fz_turn(struct fz_run *r)
{
	event_base_loop(r->base, EVLOOP_NONBLOCK);
	event_base_loop(r->base, EVLOOP_NONBLOCK);
}

/* Write all of it; 0, or -1 once the client has gone. */
static int
fz_send(struct fz_run *r, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0 && !r->done) {
		n = write(r->srv, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN)
			event_base_loop(r->base, EVLOOP_ONCE);
		else if (n < 0 && errno != EINTR)
			return -1;
	}
	fz_turn(r);
	return 0;
}

/* Next chunk length for split mode `mode`. */
static size_t
fz_chunk(uint8_t mode, uint32_t *seed, const uint8_t *p, size_t left,
    size_t off)
{
	const uint8_t *nl;

	switch (mode) {
	case 1:
		*seed = *seed * 1103515245u + 12345u;
		return 1 + (*seed >> 16) % 64;
	case 2:
		return off < FZ_BYTEWISE_MAX ? 1 : left;
	case 3:
		nl = memchr(p, '\n', left);
		return nl != NULL ? (size_t)(nl - p) + 1 : left;
	default:
		return left;
	}
}

static void
fz_feed(struct fz_run *r, const uint8_t *p, size_t len, uint8_t seed)
{
	uint32_t s = seed;
	size_t off = 0, n;

	while (off < len && !r->done) {
		n = fz_chunk(r->flags & FZ_F_SPLIT, &s, p + off, len - off,
		    off);
		if (n > len - off)
			n = len - off;
		if (fz_send(r, p + off, n) < 0)
			break;
		off += n;
	}
	shutdown(r->srv, SHUT_WR);
}

/* ---- one input -------------------------------------------------------- */

/* The connection part of the target's params. */
static void
fz_net_params(const struct fz_run *r, struct net_params *n)
{
	n->host = "127.0.0.1";
	n->port = fz_port;
	n->timeout_ms = 2000;
	n->verify = true;
	if (r->flags & FZ_F_STARTTLS) {
		/* A pin: no CA store to load for each input. */
		n->tls = NET_TLS_STARTTLS;
		n->has_fingerprint = true;
		memset(n->fingerprint, 0xab, sizeof n->fingerprint);
	}
}

static void
fz_events_new(struct fz_run *r)
{
	struct timeval cap = { FZ_CAP_SEC, 0 };

	r->cap_ev = evtimer_new(r->base, fz_cap_cb, r);
	r->resume_ev = evtimer_new(r->base, fz_resume_cb, r);
	r->cancel_ev = evtimer_new(r->base, fz_cancel_cb, r);
	r->accept_ev = event_new(r->base, fz_listen, EV_READ | EV_PERSIST,
	    fz_accept_cb, r);
	if (r->cap_ev == NULL || r->resume_ev == NULL || r->cancel_ev == NULL ||
	    r->accept_ev == NULL ||
	    evtimer_add(r->cap_ev, &cap) < 0 ||
	    event_add(r->accept_ev, NULL) < 0)
		fz_bug("cannot create the harness events");
}

/* r is zeroed; flags is input byte 0.  The target starts the client next,
 * on r->base, and sets r->client. */
static void
fz_run_init(struct fz_run *r, const struct fz_client *cl, uint8_t flags)
{
	r->cl = cl;
	r->srv = -1;
	r->flags = flags;
	if ((r->base = event_base_new()) == NULL)
		fz_bug("no event base");
	fz_events_new(r);
}

/* Serve the input once the client connects, then wait for done(). */
static void
fz_run_serve(struct fz_run *r, const uint8_t *data, size_t size)
{
	while (r->srv < 0 && !r->done)
		event_base_loop(r->base, EVLOOP_ONCE);
	if (r->srv >= 0)
		fz_feed(r, data + 2, size - 2, data[1]);
	while (!r->done)
		event_base_loop(r->base, EVLOOP_ONCE);
}

/* After the target freed the client: every handle must be back. */
static void
fz_run_free(struct fz_run *r)
{
	if (r->live != 0)
		fz_bug("a sink handle was neither delivered nor discarded");
	if (r->srv_ev != NULL)
		event_free(r->srv_ev);
	if (r->srv >= 0)
		close(r->srv);
	event_free(r->cap_ev);
	event_free(r->resume_ev);
	event_free(r->cancel_ev);
	event_free(r->accept_ev);
	event_base_free(r->base);
}

#endif
