/*
 * fuzz_pop3_session.c - the whole POP3 client state machine, not only its
 * parser: the input is what a server sends on a plaintext TCP connection
 * on 127.0.0.1, fed in writes whose boundaries come from its first bytes,
 * then the server half-closes.  The session must end by itself (done()
 * exactly once, before a hard cap), keep the session_ops contract (never
 * fetch a UIDL the archive has) and leave nothing allocated.
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
#include "pop3/pop3_client.h"
#include "pop3/pop3_parser.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_F_SPLIT	0x03	/* 0 one write, 1 seeded sizes, 2 bytes, 3 lines */
#define FZ_F_STARTTLS	0x04	/* profile wants STARTTLS (pinned, no CA load) */
#define FZ_F_SINKFAIL	0x08	/* msg_write fails past 16 bytes */
#define FZ_F_PAUSE	0x10	/* pause in message(), resume from a timer */
#define FZ_F_SKIP	0x20	/* folder_open says "unchanged" */
#define FZ_F_CANCEL	0x40	/* cancel inside the second message() */
#define FZ_F_APOP	0x80	/* log in with APOP, one RETR in flight */

#define FZ_MAX_MSG	4096		/* max_message_size */
#define FZ_MAX_KEYS	512		/* delivered UIDLs remembered */
#define FZ_BYTEWISE_MAX	2048		/* split mode 2: the rest goes at once */
#define FZ_CAP_SEC	5		/* longer than this is a hang */

/* The stub archive "has" every UIDL that starts with this. */
#define FZ_KNOWN_PREFIX	"k"

struct fz_msg {
	uint64_t size;			/* announced by msg_begin */
	uint8_t	*data;
	size_t	 len;
	bool	 ended;
};

struct fz {
	struct event_base *base;
	struct pop3_client *client;
	struct event *srv_ev, *cap_ev, *resume_ev, *cancel_ev, *accept_ev;
	int	 srv;			/* server end, -1 until accepted */
	uint8_t	 flags;
	bool	 done, in_folder;
	int	 opens, msgs, live;	/* live: sink handles not yet freed */
	char	*keys[FZ_MAX_KEYS];	/* UIDLs delivered */
	size_t	 n_keys;
	bool	 asked;			/* keys_known() was called */
	size_t	 stored;		/* bytes "archived", all messages */
};

static int fz_listen = -1;
static uint16_t fz_port;

/* The session broke a promise of base/session.h: a finding. */
static void
fz_bug(const char *what)
{
	fprintf(stderr, "fuzz_pop3_session: %s\n", what);
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

static int
o_open(void *arg, const struct session_folder *sf, uint32_t **known,
    size_t *n)
{
	struct fz *f = arg;

	fz_alive(f);
	if (f->in_folder || f->opens++ > 0)
		fz_bug("POP3 opened more than its one folder");
	if (sf == NULL || sf->name == NULL || strcmp(sf->name, "INBOX") != 0)
		fz_bug("the POP3 folder is not INBOX");
	if (f->flags & FZ_F_SKIP)
		return 1;
	f->in_folder = true;
	return 0;
}

static bool
fz_key_known(const char *key)
{
	return strncmp(key, FZ_KNOWN_PREFIX, strlen(FZ_KNOWN_PREFIX)) == 0;
}

static int
o_keys(void *arg, const struct session_folder *sf, const char *const *keys,
    size_t n, bool *ret_known)
{
	struct fz *f = arg;
	size_t i;

	fz_alive(f);
	if (!f->in_folder || f->asked)
		fz_bug("keys_known() outside the folder or twice");
	f->asked = true;
	for (i = 0; i < n; i++) {
		if (keys[i] == NULL || keys[i][0] == '\0' ||
		    strlen(keys[i]) > POP3_MAX_UIDL)
			fz_bug("keys_known() with an empty or long key");
		ret_known[i] = fz_key_known(keys[i]);
	}
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
	if (m->len + len > FZ_MAX_MSG)
		fz_bug("msg_write() past max_message_size");
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

/* A message or item: never one the archive has, never one key twice. */
static void
fz_key_check(struct fz *f, uint32_t uid, const char *key)
{
	size_t i;

	if (!f->in_folder)
		fz_bug("a message or item outside the open folder");
	if (uid != 0)
		fz_bug("POP3 message or item with a UID");
	if (key == NULL)
		return;
	if (fz_key_known(key))
		fz_bug("a UIDL the archive has was retrieved again");
	for (i = 0; i < f->n_keys; i++)
		if (strcmp(f->keys[i], key) == 0)
			fz_bug("one UIDL reported twice");
	if (f->n_keys < FZ_MAX_KEYS &&
	    (f->keys[f->n_keys] = strdup(key)) != NULL)
		f->n_keys++;
}

static void
fz_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz *f = arg;

	if (!f->done)
		pop3_client_resume(f->client);
}

static void
fz_cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz *f = arg;

	if (!f->done)
		pop3_client_cancel(f->client);
}

/*
 * pop3_retr.c takes the handle back before message() and checks
 * `finished` after every call out, so a cancel from inside a callback is
 * fuzzed directly; -DFZ_CANCEL_DEFERRED cancels from a timer, as the
 * daemon's signal handler does.
 */
static void
fz_cancel(struct fz *f)
{
#ifdef FZ_CANCEL_DEFERRED
	struct timeval now = { 0, 0 };

	evtimer_add(f->cancel_ev, &now);
#else
	pop3_client_cancel(f->client);
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
	fz_key_check(f, uid, key);
	if (m == NULL || !m->ended)
		fz_bug("message() with a handle not ended");
	f->stored += m->len;
	fz_msg_free(f, m);
	f->msgs++;
	if ((f->flags & FZ_F_CANCEL) && f->msgs == 2) {
		fz_cancel(f);
		return;
	}
	if (f->flags & FZ_F_PAUSE) {
		pop3_client_pause(f->client);
		evtimer_add(f->resume_ev, &now);
	}
}

static void
o_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
	struct fz *f = arg;

	fz_alive(f);
	fz_key_check(f, uid, key);
	if (text == NULL)
		fz_bug("item() without text");
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
	o_ready, NULL, o_open, o_keys, o_planned, o_begin, o_write, o_end,
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
fz_params(struct fz *f, struct pop3_client_params *p)
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
	p->max_messages = 100000;
	if (f->flags & FZ_F_APOP) {
		p->apop = true;
		p->window = 1;
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
	pop3_client_free(f->client);
	if (f->live != 0)
		fz_bug("a sink handle was neither delivered nor discarded");
	while (f->n_keys > 0)
		free(f->keys[--f->n_keys]);
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
	struct pop3_client_params p;
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
	if (pop3_client_start(f.base, NULL, &p, &fz_ops, &f, &f.client) < 0)
		fz_bug("pop3_client_start failed");
	while (f.srv < 0 && !f.done)
		event_base_loop(f.base, EVLOOP_ONCE);
	if (f.srv >= 0)
		fz_feed(&f, data + 2, size - 2, data[1]);
	while (!f.done)
		event_base_loop(f.base, EVLOOP_ONCE);
	fz_free(&f);
	return 0;
}
