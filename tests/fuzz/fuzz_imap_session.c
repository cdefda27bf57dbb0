/*
 * fuzz_imap_session.c - the whole IMAP client state machine, not only its
 * parser: the input is what a server sends on a plaintext TCP connection
 * on 127.0.0.1, fed in writes whose boundaries come from its first bytes,
 * then the server half-closes.  The session must end by itself (done()
 * exactly once, before a hard cap), keep the session_ops contract and
 * leave nothing allocated.
 *
 * Input: byte 0 flags (FZ_F_*), byte 1 split seed, then the server bytes.
 */
#define _GNU_SOURCE	/* accept4() */
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
#include "imap/imap_client.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_F_SPLIT	0x03	/* 0 one write, 1 seeded sizes, 2 bytes, 3 lines */
#define FZ_F_STARTTLS	0x04	/* profile wants STARTTLS (pinned, no CA load) */
#define FZ_F_SINKFAIL	0x08	/* msg_write fails past 16 bytes */
#define FZ_F_PAUSE	0x10	/* pause in message(), resume from a timer */
#define FZ_F_SKIP	0x20	/* every other folder_open says "unchanged" */
#define FZ_F_CANCEL	0x40	/* cancel after the second message() */
#define FZ_F_NARROW	0x80	/* one UID per FETCH, one FETCH in flight */

#define FZ_MAX_MSG	4096		/* max_message_size */
#define FZ_MAX_UIDS	4096		/* delivered UIDs remembered per folder */
#define FZ_MAX_NAMES	256
#define FZ_BYTEWISE_MAX	2048		/* split mode 2: the rest goes at once */
#define FZ_CAP_SEC	5		/* longer than this is a hang */

/* The UIDs the stub archive "has" in every folder. */
static const uint32_t fz_known[] = { 2, 4, 6 };

struct fz_msg {
	uint64_t size;			/* announced by msg_begin */
	uint8_t	*data;
	size_t	 len;
	bool	 ended;
};

struct fz {
	struct event_base *base;
	struct imap_client *client;
	struct event *srv_ev, *cap_ev, *resume_ev, *cancel_ev, *accept_ev;
	int	 srv;			/* server end, -1 until accepted */
	uint8_t	 flags;
	bool	 done, in_folder;
	int	 opens, msgs, live;	/* live: sink handles not yet freed */
	uint32_t uids[FZ_MAX_UIDS];	/* delivered in the open folder */
	size_t	 n_uids;
	size_t	 stored;		/* bytes "archived", all messages */
	char	*names[FZ_MAX_NAMES];	/* folder names offered, distinct */
	size_t	 n_names;
};

static int fz_listen = -1;
static uint16_t fz_port;

/* The session broke a promise of base/session.h: a finding. */
static void
fz_bug(const char *what)
{
	fprintf(stderr, "fuzz_imap_session: %s\n", what);
	abort();
}

/* A name must be printable so it cannot forge a protocol or journal
 * line, whether it is only asked about or opened. */
static void
fz_check_printable(const char *name)
{
	const unsigned char *s;

	for (s = (const unsigned char *)name; *s != '\0'; s++)
		if (*s < 0x20 || *s == 0x7f)
			fz_bug("a folder name with a control byte");
}

/*
 * Folder names are how the archive tells folders apart (they never become
 * paths): two server folders must never be opened under one name.  Only
 * opened: a name that cannot be opened is asked about once per LIST line,
 * and a server may list it twice.
 */
static void
fz_check_name(struct fz *f, const char *name)
{
	size_t i;

	fz_check_printable(name);
	for (i = 0; i < f->n_names; i++)
		if (strcmp(f->names[i], name) == 0)
			fz_bug("two folders offered under one name");
	if (f->n_names < FZ_MAX_NAMES &&
	    (f->names[f->n_names] = strdup(name)) != NULL)
		f->n_names++;
}

/* Formatting always runs (the server's words go through it); the lines
 * are shown only with FZ_DEBUG set, to follow one input by hand. */
static void
fz_log_sink(enum log_level level, const char *line, void *arg)
{
	if (arg != NULL)
		fprintf(stderr, "%s\n", line);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
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
fz_alive(struct fz *f)
{
	if (f->done)
		fz_bug("callback after done()");
}

static void
o_ready(void *arg, const char *summary)
{
	fz_alive(arg);
	if (summary == NULL)
		fz_bug("ready() without a summary");
}

static bool
o_want(void *arg, const char *name, char delim)
{
	fz_alive(arg);
	if (name == NULL || name[0] == '\0')
		fz_bug("want_folder() with an empty name");
	fz_check_printable(name);
	return strcmp(name, "Trash") != 0;
}

static int
o_open(void *arg, const struct session_folder *sf, uint32_t **known,
    size_t *n)
{
	struct fz *f = arg;
	uint32_t *k;

	fz_alive(f);
	if (f->in_folder)
		fz_bug("folder_open() while a folder is open");
	fz_check_name(f, sf->name);
	if ((f->flags & FZ_F_SKIP) && f->opens++ % 2 == 1)
		return 1;
	if ((k = malloc(sizeof fz_known)) == NULL)
		return -ENOMEM;
	memcpy(k, fz_known, sizeof fz_known);
	*known = k;
	*n = sizeof fz_known / sizeof *fz_known;
	f->in_folder = true;
	f->n_uids = 0;
	return 0;
}

static void
o_planned(void *arg, const struct session_folder *sf, uint64_t found,
    uint64_t todo)
{
	struct fz *f = arg;

	fz_alive(f);
	if (!f->in_folder)
		fz_bug("folder_planned() outside an open folder");
	if (todo > found)
		fz_bug("more to fetch than found");
}

static void *
o_begin(void *arg, uint64_t size)
{
	struct fz *f = arg;
	struct fz_msg *m;

	fz_alive(f);
	if (size > FZ_MAX_MSG)
		fz_bug("msg_begin() above max_message_size");
	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->size = size;
	f->live++;
	return m;
}

static int
o_write(void *arg, void *h, const void *buf, size_t len)
{
	struct fz *f = arg;
	struct fz_msg *m = h;
	uint8_t *p;

	fz_alive(f);
	if (m == NULL || m->ended)
		fz_bug("msg_write() on no handle or an ended one");
	if (m->len + len > m->size)
		fz_bug("msg_write() past the announced size");
	if ((f->flags & FZ_F_SINKFAIL) && m->len + len > 16)
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
fz_msg_free(struct fz *f, struct fz_msg *m)
{
	free(m->data);
	free(m);
	f->live--;
}

static void
o_discard(void *arg, void *h)
{
	fz_alive(arg);
	if (h == NULL)
		fz_bug("msg_discard(NULL)");
	fz_msg_free(arg, h);
}

static void
fz_uid_check(struct fz *f, uint32_t uid)
{
	size_t i;

	if (!f->in_folder)
		fz_bug("a message or item outside an open folder");
	if (uid == 0)
		fz_bug("IMAP message or item with UID 0");
	for (i = 0; i < sizeof fz_known / sizeof *fz_known; i++)
		if (uid == fz_known[i])
			fz_bug("a UID the archive has was fetched again");
	for (i = 0; i < f->n_uids; i++)
		if (f->uids[i] == uid)
			fz_bug("one UID reported twice in one folder");
	if (f->n_uids < FZ_MAX_UIDS)
		f->uids[f->n_uids++] = uid;
}

static void
fz_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz *f = arg;

	if (!f->done)
		imap_client_resume(f->client);
}

static void
fz_cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz *f = arg;

	if (!f->done)
		imap_client_cancel(f->client);
}

/*
 * Cancel from inside message(), which the header allows and which once
 * freed the handle twice; -DFZ_CANCEL_DEFERRED cancels from a timer
 * instead, between callbacks, as the daemon's signal handling does.
 */
static void
fz_cancel(struct fz *f)
{
#ifndef FZ_CANCEL_DEFERRED
	imap_client_cancel(f->client);
#else
	struct timeval now = { 0, 0 };

	evtimer_add(f->cancel_ev, &now);
#endif
}

static void
o_message(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, void *h, int64_t idate)
{
	struct fz *f = arg;
	struct fz_msg *m = h;
	struct timeval now = { 0, 0 };

	fz_alive(f);
	fz_uid_check(f, uid);
	if (key != NULL)
		fz_bug("IMAP message with a key");
	if (m == NULL || !m->ended || m->len != m->size)
		fz_bug("message() with a handle not ended or short");
	f->stored += m->len;
	fz_msg_free(f, m);
	f->msgs++;
	if ((f->flags & FZ_F_CANCEL) && f->msgs == 2) {
		fz_cancel(f);
		return;
	}
	if (f->flags & FZ_F_PAUSE) {
		imap_client_pause(f->client);
		evtimer_add(f->resume_ev, &now);
	}
}

static void
o_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
	struct fz *f = arg;

	fz_alive(f);
	fz_uid_check(f, uid);
	if (text == NULL || key != NULL)
		fz_bug("item() without text or with a key");
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
	struct fz *f = arg;

	fz_alive(f);
	f->in_folder = false;
}

static void
o_done(void *arg, enum session_fail fail, const char *why)
{
	struct fz *f = arg;

	fz_alive(f);
	if (why == NULL || (fail != SESSION_OK && why[0] == '\0'))
		fz_bug("done() with no reason");
	/* The server half-closed: nothing is left to wait for. */
	if (fail == SESSION_FAIL_TIMEOUT)
		fz_bug("session timed out although the server had closed");
	f->done = true;
	log_debug("fuzz: done: %s: %s (%d messages, %zu bytes)",
	    session_fail_name(fail), why, f->msgs, f->stored);
	event_base_loopbreak(f->base);
}

static const struct session_ops fz_ops = {
	o_ready, o_want, o_open, NULL, o_planned, o_begin, o_write, o_end,
	o_discard, o_message, o_item, o_event, o_folder_done, o_done,
};

/* ---- the server end --------------------------------------------------- */

/* Whatever the client sends is read and dropped. */
static void
fz_srv_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz *f = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		event_del(f->srv_ev);
}

static void
fz_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz *f = arg;

	if (f->srv >= 0)
		return;
	f->srv = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (f->srv < 0)
		return;
	f->srv_ev = event_new(f->base, f->srv, EV_READ | EV_PERSIST,
	    fz_srv_read_cb, f);
	if (f->srv_ev == NULL || event_add(f->srv_ev, NULL) < 0)
		fz_bug("cannot watch the server end");
	event_del(f->accept_ev);
}

static void
fz_cap_cb(evutil_socket_t fd, short what, void *arg)
{
	fz_bug("the session did not end within the cap: a hang");
}

/* One loop turn that does not wait, twice: deferred callbacks run too. */
static void
fz_turn(struct fz *f)
{
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Write all of it; 0, or -1 once the client has gone. */
static int
fz_send(struct fz *f, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0 && !f->done) {
		n = write(f->srv, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN)
			event_base_loop(f->base, EVLOOP_ONCE);
		else if (n < 0 && errno != EINTR)
			return -1;
	}
	fz_turn(f);
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
fz_feed(struct fz *f, const uint8_t *p, size_t len, uint8_t seed)
{
	uint32_t s = seed;
	size_t off = 0, n;

	while (off < len && !f->done) {
		n = fz_chunk(f->flags & FZ_F_SPLIT, &s, p + off, len - off,
		    off);
		if (n > len - off)
			n = len - off;
		if (fz_send(f, p + off, n) < 0)
			break;
		off += n;
	}
	shutdown(f->srv, SHUT_WR);
}

/* ---- one input -------------------------------------------------------- */

static void
fz_params(struct fz *f, struct imap_client_params *p)
{
	memset(p, 0, sizeof *p);
	p->net.host = "127.0.0.1";
	p->net.port = fz_port;
	p->net.timeout_ms = 2000;
	p->net.verify = true;
	if (f->flags & FZ_F_STARTTLS) {
		/* A pin: no CA store to load for each input. */
		p->net.tls = NET_TLS_STARTTLS;
		p->net.has_fingerprint = true;
		memset(p->net.fingerprint, 0xab, sizeof p->net.fingerprint);
	}
	p->user = "alice";
	p->password = "s3cret";
	p->allow_plaintext = true;
	p->timeout_ms = 2000;
	p->max_message_size = FZ_MAX_MSG;
	p->max_folder_messages = 100000;
	if (f->flags & FZ_F_NARROW) {
		p->fetch_batch = 1;
		p->fetch_window = 1;
	}
}

static void
fz_events_new(struct fz *f)
{
	struct timeval cap = { FZ_CAP_SEC, 0 };

	f->cap_ev = evtimer_new(f->base, fz_cap_cb, f);
	f->resume_ev = evtimer_new(f->base, fz_resume_cb, f);
	f->cancel_ev = evtimer_new(f->base, fz_cancel_cb, f);
	f->accept_ev = event_new(f->base, fz_listen, EV_READ | EV_PERSIST,
	    fz_accept_cb, f);
	if (f->cap_ev == NULL || f->resume_ev == NULL || f->cancel_ev == NULL ||
	    f->accept_ev == NULL ||
	    evtimer_add(f->cap_ev, &cap) < 0 ||
	    event_add(f->accept_ev, NULL) < 0)
		fz_bug("cannot create the harness events");
}

static void
fz_free(struct fz *f)
{
	size_t i;

	imap_client_free(f->client);
	for (i = 0; i < f->n_names; i++)
		free(f->names[i]);
	if (f->live != 0)
		fz_bug("a sink handle was neither delivered nor discarded");
	if (f->srv_ev != NULL)
		event_free(f->srv_ev);
	if (f->srv >= 0)
		close(f->srv);
	event_free(f->cap_ev);
	event_free(f->resume_ev);
	event_free(f->cancel_ev);
	event_free(f->accept_ev);
	event_base_free(f->base);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_client_params p;
	struct fz f;

	if (size < 2)
		return 0;
	memset(&f, 0, sizeof f);
	f.srv = -1;
	f.flags = data[0];
	if ((f.base = event_base_new()) == NULL)
		fz_bug("no event base");
	fz_events_new(&f);
	fz_params(&f, &p);
	if (imap_client_start(f.base, NULL, &p, &fz_ops, &f, &f.client) < 0)
		fz_bug("imap_client_start failed");
	while (f.srv < 0 && !f.done)
		event_base_loop(f.base, EVLOOP_ONCE);
	if (f.srv >= 0)
		fz_feed(&f, data + 2, size - 2, data[1]);
	while (!f.done)
		event_base_loop(f.base, EVLOOP_ONCE);
	fz_free(&f);
	return 0;
}
