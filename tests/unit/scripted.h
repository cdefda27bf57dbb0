/*
 * scripted.h - the scripted server the protocol client tests share: a
 * listener on 127.0.0.1 in the test's own event loop that plays a
 * transcript ("S:" bytes it sends, "C:" lines the client must send,
 * exactly and in order) and records every client line.  Also strict
 * base64 decoding for tests that compare SASL messages byte for byte.
 * Static functions: each test binary includes it once.
 */
#ifndef MAILSTOW_TEST_SCRIPTED_H
#define MAILSTOW_TEST_SCRIPTED_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>

/* Not every includer uses every helper. */
#define SCRIPTED_FN	static __attribute__((unused))

struct scripted_step {
	char	 who;			/* 'S' server sends `text` (len bytes,
					 * NULs allowed); 'C' client must
					 * send `text` exactly; 'B' client must
					 * send `text` + base64 of
					 * raw[0..raw_len); 'X' server closes
					 * once its output is out */
	const char *text;
	size_t	 len;			/* of 'S' text */
	const char *raw;
	size_t	 raw_len;
};

#define S(t)	{ 'S', t, sizeof(t) - 1, NULL, 0 }
#define C(t)	{ 'C', t, 0, NULL, 0 }
#define X()	{ 'X', NULL, 0, NULL, 0 }
#define NSTEPS(s)	(sizeof(s) / sizeof(s[0]))

struct scripted {
	struct event_base *base;
	struct evconnlistener *lst;
	struct bufferevent *srv;
	uint16_t port;
	const struct scripted_step *script;
	size_t	 pos, n;
	char	 mismatch[1024];	/* the first step the client missed */
	char	 sent[16384];		/* every client line, '\n'-joined */
	const char *forbid;		/* a command the client must never
					 * send (case-insensitive), or NULL */
	bool	 forbid_seen;
};

/* Strict base64 of a client line; the byte count, or -1. */
SCRIPTED_FN int
b64_decode(unsigned char *out, size_t outlen, const char *b64)
{
	size_t len = strlen(b64);
	int n, pad = 0;

	if (len % 4 != 0 || len / 4 * 3 > outlen)
		return -1;
	if (len > 0 && b64[len - 1] == '=')
		pad = len > 1 && b64[len - 2] == '=' ? 2 : 1;
	n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
	return n < 0 ? -1 : n - pad;
}

SCRIPTED_FN void
scripted_written(struct bufferevent *bev, void *arg)
{
	struct scripted *sc = arg;

	if (sc->pos < sc->n && sc->script[sc->pos].who == 'X') {
		bufferevent_free(sc->srv);
		sc->srv = NULL;
		sc->pos++;
	}
}

SCRIPTED_FN void
scripted_send_pending(struct scripted *sc)
{
	while (sc->pos < sc->n && sc->script[sc->pos].who == 'S') {
		bufferevent_write(sc->srv, sc->script[sc->pos].text,
		    sc->script[sc->pos].len);
		sc->pos++;
	}
	/* An 'X' waits for scripted_written(): the output must go out first. */
}

/* Does `line` match step `st`?  Writes why not into sc->mismatch. */
SCRIPTED_FN bool
scripted_match(struct scripted *sc, const struct scripted_step *st,
    const char *line)
{
	unsigned char raw[8192];
	size_t pl = strlen(st->text);
	int n;

	if (st->who == 'C') {
		if (strcmp(line, st->text) == 0)
			return true;
		snprintf(sc->mismatch, sizeof sc->mismatch, "step %zu: expected "
		    "'%s', got '%.900s'", sc->pos, st->text, line);
		return false;
	}
	if (strncmp(line, st->text, pl) != 0 ||
	    (n = b64_decode(raw, sizeof raw, line + pl)) < 0 ||
	    (size_t)n != st->raw_len || memcmp(raw, st->raw, (size_t)n) != 0) {
		snprintf(sc->mismatch, sizeof sc->mismatch, "step %zu: expected "
		    "'%s' + base64 of the %zu-byte message, got '%.900s'",
		    sc->pos, st->text, st->raw_len, line);
		return false;
	}
	return true;
}

SCRIPTED_FN void
scripted_read(struct bufferevent *bev, void *arg)
{
	struct scripted *sc = arg;
	char *line;
	size_t len;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &len,
	    EVBUFFER_EOL_CRLF_STRICT)) != NULL) {
		size_t have = strlen(sc->sent);

		snprintf(sc->sent + have, sizeof sc->sent - have, "%s\n", line);
		if (sc->forbid != NULL &&
		    strncasecmp(line, sc->forbid, strlen(sc->forbid)) == 0)
			sc->forbid_seen = true;
		if (sc->mismatch[0] != '\0') {
			/* Keep the first mismatch. */
		} else if (sc->pos >= sc->n || (sc->script[sc->pos].who != 'C' &&
		    sc->script[sc->pos].who != 'B')) {
			snprintf(sc->mismatch, sizeof sc->mismatch,
			    "unexpected client line '%.900s'", line);
		} else if (scripted_match(sc, &sc->script[sc->pos], line)) {
			sc->pos++;
		}
		free(line);
		scripted_send_pending(sc);
	}
}

SCRIPTED_FN void
scripted_event(struct bufferevent *bev, short what, void *arg)
{
}

SCRIPTED_FN void
scripted_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	struct scripted *sc = arg;

	sc->srv = bufferevent_socket_new(sc->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(sc->srv, scripted_read, scripted_written,
	    scripted_event, sc);
	bufferevent_enable(sc->srv, EV_READ | EV_WRITE);
	scripted_send_pending(sc);
}

/* An event base and a listener on 127.0.0.1 (the kernel picks the port). */
SCRIPTED_FN void
scripted_open(struct scripted *sc)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;

	sc->base = event_base_new();
	assert_non_null(sc->base);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sc->lst = evconnlistener_new_bind(sc->base, scripted_accept, sc,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4,
	    (struct sockaddr *)&sin, sizeof sin);
	assert_non_null(sc->lst);
	getsockname(evconnlistener_get_fd(sc->lst), (struct sockaddr *)&sin,
	    &len);
	sc->port = ntohs(sin.sin_port);
}

/* Free what scripted_open() made; the client must be freed first. */
SCRIPTED_FN void
scripted_close(struct scripted *sc)
{
	if (sc->srv != NULL)
		bufferevent_free(sc->srv);
	evconnlistener_free(sc->lst);
	event_base_free(sc->base);
}

/* The transcript the next connection plays. */
SCRIPTED_FN void
scripted_play(struct scripted *sc, const struct scripted_step *s, size_t n)
{
	sc->script = s;
	sc->n = n;
}

/* Run the loop until a callback exits it, at most 10 seconds. */
SCRIPTED_FN void
scripted_loop(struct scripted *sc)
{
	struct timeval limit = { 10, 0 };

	event_base_loopexit(sc->base, &limit);
	event_base_dispatch(sc->base);
}

#endif
