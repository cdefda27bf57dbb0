/*
 * test_pop3_client.c - the POP3 client state machine against a scripted
 * server on 127.0.0.1 in the same event loop.  Each script is a transcript:
 * "S:" bytes the server sends (several replies in one write when joined),
 * "C:" lines the client must send, exactly and in order.  A DELE from the
 * client fails every test.  What reaches the owner (messages with their
 * UIDLs, items, events, the plan, the end) is recorded and asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>

#include "pop3/pop3_client.h"

struct step {
	char	 who;			/* 'S' server sends, 'C' client must send,
					 * 'X' server closes once its output is out */
	const char *text;		/* without CRLF for 'C'; raw bytes for 'S' */
	size_t	 len;			/* of 'S' text */
};

#define S(t)	{ 'S', t, sizeof(t) - 1 }
#define C(t)	{ 'C', t, 0 }
#define X()	{ 'X', NULL, 0 }

#define MAXM	8

struct membuf {
	char	 data[256];
	size_t	 len;
};

struct fixture {
	struct event_base *base;
	struct evconnlistener *lst;
	struct bufferevent *srv;
	uint16_t port;
	const struct step *script;
	size_t	 pos, n;
	char	 mismatch[1024];
	bool	 dele_seen;
	char	 client_sent[8192];	/* every client line, for leak checks */
	/* owner side */
	struct pop3_client *client;
	enum session_fail fail;
	char	 why[1024];
	bool	 done, ready;
	int	 opens, begins, discards;
	uint64_t begin_sizes[MAXM];
	char	 bodies[MAXM][256];
	size_t	 body_lens[MAXM];
	char	 keys[MAXM][80];	/* "" for NULL */
	size_t	 n_msgs;
	int	 items[MAXM];
	char	 item_keys[MAXM][80];
	char	 item_texts[MAXM][800];
	size_t	 n_items;
	char	 events[MAXM][800];
	int	 event_levels[MAXM];
	size_t	 n_events;
	const char *known_keys[4];	/* what the archive "has" */
	char	 asked[MAXM][80];	/* keys passed to keys_known */
	size_t	 n_asked;
	int	 keys_calls;
	bool	 skip_folder;
	bool	 cancel_on_message;
	uint64_t found, todo;
	int	 planned, folders_done, folders_complete;
	const char *sf_name;
	uint32_t sf_messages;
};

static void
srv_written(struct bufferevent *bev, void *arg)
{
	struct fixture *f = arg;

	if (f->pos < f->n && f->script[f->pos].who == 'X') {
		bufferevent_free(f->srv);
		f->srv = NULL;
		f->pos++;
	}
}

static void
srv_send_pending(struct fixture *f)
{
	while (f->pos < f->n && f->script[f->pos].who == 'S') {
		bufferevent_write(f->srv, f->script[f->pos].text,
		    f->script[f->pos].len);
		f->pos++;
	}
}

static void
srv_read(struct bufferevent *bev, void *arg)
{
	struct fixture *f = arg;
	char *line;
	size_t len;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &len,
	    EVBUFFER_EOL_CRLF_STRICT)) != NULL) {
		snprintf(f->client_sent + strlen(f->client_sent),
		    sizeof f->client_sent - strlen(f->client_sent), "%s\n",
		    line);
		if (strncasecmp(line, "DELE", 4) == 0)
			f->dele_seen = true;
		if (f->mismatch[0] != '\0') {
			/* keep the first mismatch */
		} else if (f->pos >= f->n || f->script[f->pos].who != 'C') {
			snprintf(f->mismatch, sizeof f->mismatch,
			    "unexpected client line '%s'", line);
		} else if (strcmp(line, f->script[f->pos].text) != 0) {
			snprintf(f->mismatch, sizeof f->mismatch,
			    "step %zu: expected '%s', got '%s'", f->pos,
			    f->script[f->pos].text, line);
		} else {
			f->pos++;
		}
		free(line);
		srv_send_pending(f);
	}
}

static void
srv_event(struct bufferevent *bev, short what, void *arg)
{
}

static void
srv_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int socklen, void *arg)
{
	struct fixture *f = arg;

	f->srv = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(f->srv, srv_read, srv_written, srv_event, f);
	bufferevent_enable(f->srv, EV_READ | EV_WRITE);
	srv_send_pending(f);
}

/* ---- the owner ---------------------------------------------------------- */

static void
o_ready(void *arg, const char *summary)
{
	struct fixture *f = arg;

	f->ready = true;
}

static bool
o_want(void *arg, const char *name, char delim)
{
	fail_msg("POP3 must not ask want_folder");
	return false;
}

static int
o_open(void *arg, const struct session_folder *sf, uint32_t **known, size_t *n)
{
	struct fixture *f = arg;

	f->opens++;
	f->sf_name = sf->name;
	f->sf_messages = sf->messages;
	assert_int_equal(sf->uidvalidity, 0);
	assert_int_equal(sf->delim, 0);
	return f->skip_folder ? 1 : 0;
}

static int
o_keys(void *arg, const struct session_folder *sf, const char *const *keys,
    size_t n, bool *ret_known)
{
	struct fixture *f = arg;
	size_t i, k;

	f->keys_calls++;
	for (i = 0; i < n; i++) {
		if (f->n_asked < MAXM)
			snprintf(f->asked[f->n_asked++], sizeof f->asked[0], "%s",
			    keys[i]);
		ret_known[i] = false;
		for (k = 0; k < 4 && f->known_keys[k] != NULL; k++)
			if (strcmp(keys[i], f->known_keys[k]) == 0)
				ret_known[i] = true;
	}
	return 0;
}

static void
o_planned(void *arg, const struct session_folder *sf, uint64_t found,
    uint64_t todo)
{
	struct fixture *f = arg;

	f->planned++;
	f->found += found;
	f->todo += todo;
}

static void *
o_begin(void *arg, uint64_t size)
{
	struct fixture *f = arg;

	if (f->begins < MAXM)
		f->begin_sizes[f->begins] = size;
	f->begins++;
	return calloc(1, sizeof(struct membuf));
}

static int
o_write(void *arg, void *h, const void *buf, size_t len)
{
	struct membuf *m = h;

	if (m->len + len >= sizeof m->data)
		return -1;
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	return 0;
}

static int
o_end(void *arg, void *h)
{
	return 0;
}

static void
o_discard(void *arg, void *h)
{
	struct fixture *f = arg;

	f->discards++;
	free(h);
}

static void
o_message(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, void *h, int64_t idate)
{
	struct fixture *f = arg;
	struct membuf *m = h;

	assert_int_equal(uid, 0);
	assert_true(f->n_msgs < MAXM);
	memcpy(f->bodies[f->n_msgs], m->data, m->len);
	f->body_lens[f->n_msgs] = m->len;
	snprintf(f->keys[f->n_msgs], sizeof f->keys[0], "%s",
	    key != NULL ? key : "");
	f->n_msgs++;
	free(m);
	/* The owner may stop the session from inside a callback. */
	if (f->cancel_on_message)
		pop3_client_cancel(f->client);
}

static void
o_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
	struct fixture *f = arg;

	assert_true(f->n_items < MAXM);
	snprintf(f->item_keys[f->n_items], sizeof f->item_keys[0], "%s",
	    key != NULL ? key : "");
	snprintf(f->item_texts[f->n_items], sizeof f->item_texts[0], "%s",
	    text);
	f->items[f->n_items++] = (int)kind;
}

static void
o_event(void *arg, enum log_level lvl, const struct session_folder *sf,
    const char *text)
{
	struct fixture *f = arg;

	assert_true(f->n_events < MAXM);
	f->event_levels[f->n_events] = (int)lvl;
	snprintf(f->events[f->n_events++], sizeof f->events[0], "%s", text);
}

static void
o_folder_done(void *arg, const struct session_folder *sf, bool complete)
{
	struct fixture *f = arg;

	assert_string_equal(sf->name, "INBOX");
	f->folders_done++;
	f->folders_complete += complete;
}

static void
o_done(void *arg, enum session_fail fail, const char *why)
{
	struct fixture *f = arg;

	assert_false(f->done);
	f->done = true;
	f->fail = fail;
	snprintf(f->why, sizeof f->why, "%s", why);
	event_base_loopexit(f->base, NULL);
}

static const struct session_ops owner_ops = {
	o_ready, o_want, o_open, o_keys, o_planned, o_begin, o_write, o_end,
	o_discard, o_message, o_item, o_event, o_folder_done, o_done,
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;

	f->base = event_base_new();
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lst = evconnlistener_new_bind(f->base, srv_accept, f,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4,
	    (struct sockaddr *)&sin, sizeof sin);
	assert_non_null(f->lst);
	getsockname(evconnlistener_get_fd(f->lst), (struct sockaddr *)&sin, &len);
	f->port = ntohs(sin.sin_port);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	pop3_client_free(f->client);
	if (f->srv != NULL)
		bufferevent_free(f->srv);
	evconnlistener_free(f->lst);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
default_params(struct fixture *f, struct pop3_client_params *p)
{
	memset(p, 0, sizeof *p);
	p->net.host = "127.0.0.1";
	p->net.port = f->port;
	p->net.tls = NET_TLS_NONE;
	p->net.verify = true;
	p->net.timeout_ms = 5000;
	p->user = "alice";
	p->password = "s3cret";
	p->allow_plaintext = true;
	p->timeout_ms = 5000;
	p->max_message_size = 1 << 20;
}

static void
run_params(struct fixture *f, const struct step *s, size_t n,
    const struct pop3_client_params *p)
{
	struct timeval limit = { 10, 0 };

	f->script = s;
	f->n = n;
	assert_int_equal(pop3_client_start(f->base, NULL, p, &owner_ops, f,
	    &f->client), 0);
	event_base_loopexit(f->base, &limit);
	event_base_dispatch(f->base);
	assert_true(f->done);
	assert_false(f->dele_seen);
	/* Every handle begun was delivered or discarded. */
	assert_int_equal(f->begins, (int)f->n_msgs + f->discards);
}

static void
run_script(struct fixture *f, const struct step *s, size_t n,
    enum net_tls tls, uint32_t timeout_ms)
{
	struct pop3_client_params p;

	default_params(f, &p);
	p.net.tls = tls;
	p.timeout_ms = timeout_ms;
	run_params(f, s, n, &p);
}

#define NSTEPS(s)	(sizeof(s) / sizeof(s[0]))
#define RUN(f, s, tls, to) run_script(f, s, NSTEPS(s), tls, to)

/* base64("\0alice\0s3cret") */
#define PLAIN_B64 "AGFsaWNlAHMzY3JldA=="

#define GREET_SASL \
	S("+OK Dovecot ready.\r\n"), \
	C("CAPA"), \
	S("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n" \
	    "AUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"), \
	C("AUTH PLAIN " PLAIN_B64), \
	S("+OK Logged in.\r\n"), \
	C("CAPA"), \
	S("+OK\r\nTOP\r\nUIDL\r\nPIPELINING\r\n.\r\n")

#define GREET_NOPIPE \
	S("+OK ready\r\n"), \
	C("CAPA"), \
	S("+OK\r\nUIDL\r\nSASL PLAIN\r\n.\r\n"), \
	C("AUTH PLAIN " PLAIN_B64), \
	S("+OK\r\n"), \
	C("CAPA"), \
	S("+OK\r\nUIDL\r\n.\r\n")

static void
test_happy_path_sasl_ir(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_SASL,
		C("STAT"),
		S("+OK 3 300\r\n"),
		C("UIDL"),
		S("+OK\r\n1 uid-a\r\n2  uid-b \r\n3\tuid-c\r\n.\r\n"),
		C("LIST"),
		S("+OK 3 messages\r\n1 12\r\n2 20\r\n3 5\r\n.\r\n"),
		C("RETR 1"),
		C("RETR 3"),
		S("+OK 12 octets\r\nhello\r\n..dot\r\n.\r\n"
		    "+OK\r\nbye\r\n.\r\n"),
		C("QUIT"),
		S("+OK Logging out.\r\n"),
	};

	f->known_keys[0] = "uid-b";
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_true(f->ready);
	assert_int_equal(f->opens, 1);
	assert_string_equal(f->sf_name, "INBOX");
	assert_int_equal(f->sf_messages, 3);
	assert_int_equal(f->keys_calls, 1);
	assert_int_equal(f->n_asked, 3);
	assert_string_equal(f->asked[0], "uid-a");
	assert_string_equal(f->asked[1], "uid-b");
	assert_string_equal(f->asked[2], "uid-c");
	assert_int_equal(f->found, 3);
	assert_int_equal(f->todo, 2);
	assert_int_equal(f->n_msgs, 2);
	assert_int_equal(f->body_lens[0], 13);
	assert_memory_equal(f->bodies[0], "hello\r\n.dot\r\n", 13);
	assert_string_equal(f->keys[0], "uid-a");
	assert_int_equal(f->begin_sizes[0], 12);
	assert_int_equal(f->body_lens[1], 5);
	assert_memory_equal(f->bodies[1], "bye\r\n", 5);
	assert_string_equal(f->keys[1], "uid-c");
	assert_int_equal(f->begin_sizes[1], 5);
	assert_int_equal(f->n_items, 0);
	assert_int_equal(f->folders_done, 1);
	assert_int_equal(f->folders_complete, 1);
	assert_null(strstr(f->client_sent, "s3cret"));
}

/* No SASL PLAIN: USER/PASS; CAPA refused after login keeps the old list. */
static void
test_user_pass_fallback(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\nUIDL\r\nSASL LOGIN CRAM-MD5\r\n.\r\n"),
		C("USER alice"),
		S("+OK\r\n"),
		C("PASS s3cret"),
		S("+OK maildrop locked\r\n"),
		C("CAPA"),
		S("-ERR not after login\r\n"),
		C("STAT"),
		S("+OK 1 5\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 5\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nm1\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_msgs, 1);
	assert_memory_equal(f->bodies[0], "m1\r\n", 4);
}

/* An RFC 1939 server without CAPA: USER/PASS, one RETR at a time. */
static void
test_capa_refused(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("-ERR unknown command\r\n"),
		C("USER alice"),
		S("+OK\r\n"),
		C("PASS s3cret"),
		S("+OK\r\n"),
		C("CAPA"),
		S("-ERR unknown command\r\n"),
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 5\r\n2 5\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nm1\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\nm2\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_msgs, 2);
}

static void
test_stls_not_offered(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\nSASL PLAIN\r\nUIDL\r\n.\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "STLS"));
	assert_false(f->ready);
	assert_string_equal(f->client_sent, "CAPA\n");
}

static void
test_stls_without_capa(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("-ERR what?\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_string_equal(f->client_sent, "CAPA\n");
}

static void
test_stls_refused(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nSTLS\r\nSASL PLAIN\r\n.\r\n"),
		C("STLS"),
		S("-ERR [SYS/TEMP] TLS not available right now\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "[SYS/TEMP] TLS not available"));
	assert_string_equal(f->client_sent, "CAPA\nSTLS\n");
}

/* The answer to STLS and an injected reply in one segment. */
static void
test_stls_injection(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nSTLS\r\nSASL PLAIN\r\n.\r\n"),
		C("STLS"),
		S("+OK Begin TLS negotiation now.\r\n+OK\r\nSASL PLAIN\r\n.\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "injection"));
	assert_string_equal(f->client_sent, "CAPA\nSTLS\n");
}

static void
test_auth_refused(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nRESP-CODES\r\nSASL PLAIN\r\n.\r\n"),
		C("AUTH PLAIN " PLAIN_B64),
		S("-ERR [AUTH] Authentication failed.\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "[AUTH] Authentication failed."));
	assert_non_null(strstr(f->why, "alice"));
	assert_null(strstr(f->why, "s3cret"));
	assert_null(strstr(f->why, PLAIN_B64));
	assert_false(f->ready);
	assert_int_equal(f->opens, 0);
}

/* A hostile server's words cannot forge lines in a protocol. */
static void
test_auth_refused_escaped(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\n.\r\n"),
		C("USER alice"),
		S("+OK\r\n"),
		C("PASS s3cret"),
		S("-ERR [IN-USE] locked\x1b[31m\rby another\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "[IN-USE] locked\\x1b[31m\\x0dby another"));
	assert_non_null(strstr(f->why, "another client"));
	assert_null(strstr(f->why, "\x1b"));
}

static void
test_plaintext_refused(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"),
	};

	default_params(f, &p);
	p.allow_plaintext = false;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "allow_plaintext"));
	assert_string_equal(f->client_sent, "CAPA\n");
}

/* RFC 1939 7's own example: the digest is of timestamp + password. */
static void
test_apop(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct step s[] = {
		S("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"),
		C("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
		S("+OK mrose's maildrop has 0 messages (0 octets)\r\n"),
		C("CAPA"),
		S("+OK\r\nUIDL\r\n.\r\n"),
		C("STAT"),
		S("+OK 0 0\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	default_params(f, &p);
	p.apop = true;
	p.user = "mrose";
	p.password = "tanstaaf";
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->planned, 1);
	assert_int_equal(f->found, 0);
	assert_int_equal(f->folders_complete, 1);
}

static void
test_apop_without_timestamp(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nUSER\r\n.\r\n"),
	};

	default_params(f, &p);
	p.apop = true;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "APOP"));
}

/* Too long for an initial response (RFC 5034 4): wait for "+". */
static void
test_auth_plain_continuation(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	unsigned char raw[300];
	char pw[241], b64[420];
	struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
		S("+OK\r\nSASL PLAIN\r\n.\r\n"),
		C("AUTH PLAIN"),
		S("+ \r\n"),
		C(b64),
		S("-ERR [AUTH] no\r\n"),
	};

	memset(pw, 'p', sizeof pw - 1);
	pw[sizeof pw - 1] = '\0';
	raw[0] = '\0';
	memcpy(raw + 1, "alice", 5);
	raw[6] = '\0';
	memcpy(raw + 7, pw, 240);
	EVP_EncodeBlock((unsigned char *)b64, raw, 247);
	default_params(f, &p);
	p.password = pw;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_null(strstr(f->why, b64));
}

/* Four RETRs go out before the first answer; the fifth follows it. */
static void
test_pipelined_retr(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_SASL,
		C("STAT"),
		S("+OK 5 50\r\n"),
		C("UIDL"),
		S("+OK\r\n1 u1\r\n2 u2\r\n3 u3\r\n4 u4\r\n5 u5\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 4\r\n2 4\r\n3 4\r\n4 4\r\n5 4\r\n.\r\n"),
		C("RETR 1"),
		C("RETR 2"),
		C("RETR 3"),
		C("RETR 4"),
		S("+OK\r\nm1\r\n.\r\n+OK\r\nm2\r\n.\r\n+OK\r\nm3\r\n.\r\n"
		    "+OK\r\nm4\r\n.\r\n"),
		C("RETR 5"),
		S("+OK\r\nm5\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};
	size_t i;

	/* A client that waited for each answer would hit the deadline. */
	RUN(f, s, NET_TLS_NONE, 2000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_msgs, 5);
	for (i = 0; i < 5; i++) {
		char want[8];

		snprintf(want, sizeof want, "m%zu\r\n", i + 1);
		assert_memory_equal(f->bodies[i], want, 4);
		snprintf(want, sizeof want, "u%zu", i + 1);
		assert_string_equal(f->keys[i], want);
	}
	assert_int_equal(f->folders_complete, 1);
}

static void
test_server_without_uidl(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("-ERR Unknown command: UIDL\r\n"),
		C("LIST"),
		S("+OK\r\n1 5\r\n2 5\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nm1\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\nm2\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	f->known_keys[0] = "a";
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->keys_calls, 0);
	assert_int_equal(f->todo, 2);
	assert_int_equal(f->n_msgs, 2);
	assert_string_equal(f->keys[0], "");
	assert_string_equal(f->keys[1], "");
	assert_int_equal(f->n_events, 1);
	assert_int_equal(f->event_levels[0], LOG_LVL_WARN);
	assert_non_null(strstr(f->events[0], "no UIDL"));
	assert_int_equal(f->folders_complete, 1);
}

/* Shared, empty, overlong, control bytes: no key, still fetched. */
static void
test_bad_uidls(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 6 60\r\n"),
		C("UIDL"),
		S("+OK\r\n1 good\r\n2 twin\r\n3 twin\r\n4\r\n"
		    "5 0123456789012345678901234567890123456789"
		    "0123456789012345678901234567890\r\n"
		    "6 a\x01b\r\njunk line\r\n99 beyond\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\nb\r\n.\r\n"),
		C("RETR 3"),
		S("+OK\r\nc\r\n.\r\n"),
		C("RETR 4"),
		S("+OK\r\nd\r\n.\r\n"),
		C("RETR 5"),
		S("+OK\r\ne\r\n.\r\n"),
		C("RETR 6"),
		S("+OK\r\nf\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};
	size_t i;

	f->known_keys[0] = "good";
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_asked, 1);
	assert_string_equal(f->asked[0], "good");
	assert_int_equal(f->found, 6);
	assert_int_equal(f->todo, 5);
	assert_int_equal(f->n_msgs, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(f->keys[i], "");
	/* One warning for the malformed lines, one for the unusable ids. */
	assert_int_equal(f->n_events, 2);
	assert_non_null(strstr(f->events[0], "2 lines"));
	assert_non_null(strstr(f->events[1], "5 messages have no usable UIDL"));
}

static void
test_connection_dropped_mid_retr(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 4\r\n2 100\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nok\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\npartial line\r\nand more\r\n."),
		X(),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_CONNECT);
	assert_non_null(strstr(f->why, "message 2"));
	/* The whole message is delivered; the partial one is not. */
	assert_int_equal(f->n_msgs, 1);
	assert_string_equal(f->keys[0], "a");
	assert_int_equal(f->begins, 2);
	assert_int_equal(f->discards, 1);
	assert_int_equal(f->folders_done, 0);
}

static void
test_silent_server_times_out(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("+OK ready\r\n"),
		C("CAPA"),
	};

	RUN(f, s, NET_TLS_NONE, 300);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TIMEOUT);
	assert_non_null(strstr(f->why, "capa"));
}

/* A server that trickles a message too slowly still hits the deadline. */
static void
test_stalled_retr_times_out(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 1 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 10\r\n.\r\n"),
		C("RETR 1"),
		S("+OK\r\nhalf a mess"),
	};

	RUN(f, s, NET_TLS_NONE, 300);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TIMEOUT);
	assert_int_equal(f->n_msgs, 0);
	assert_int_equal(f->discards, 1);
}

/* Oversize known from LIST (never retrieved) and found while streaming. */
static void
test_too_large(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 3 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 big\r\n2 liar\r\n3 small\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 5000\r\n2 3\r\n3 3\r\n.\r\n"),
		C("RETR 2"),
		S("+OK\r\n0123456789\r\n..more\r\n.\r\n"),
		C("RETR 3"),
		S("+OK\r\nok\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	default_params(f, &p);
	p.max_message_size = 10;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->todo, 3);
	assert_int_equal(f->n_items, 2);
	assert_int_equal(f->items[0], SESSION_ITEM_TOO_LARGE);
	assert_string_equal(f->item_keys[0], "big");
	assert_non_null(strstr(f->item_texts[0], "UIDL big"));
	assert_non_null(strstr(f->item_texts[0], "5000"));
	assert_int_equal(f->items[1], SESSION_ITEM_TOO_LARGE);
	assert_string_equal(f->item_keys[1], "liar");
	assert_int_equal(f->n_msgs, 1);
	assert_string_equal(f->keys[0], "small");
	assert_int_equal(f->discards, 1);
	assert_int_equal(f->folders_complete, 0);
}

static void
test_retr_refused(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 3 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n3 c\r\n.\r\n"),
		C("LIST"),
		S("-ERR no LIST today\r\n"),
		C("RETR 1"),
		S("-ERR There's no message 1.\r\n"),
		C("RETR 2"),
		S("-ERR [SYS/TEMP] Disk error\r\n"),
		C("RETR 3"),
		S("+OK\r\nc\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_items, 2);
	assert_int_equal(f->items[0], SESSION_ITEM_VANISHED);
	assert_string_equal(f->item_keys[0], "a");
	assert_int_equal(f->items[1], SESSION_ITEM_FAILED);
	assert_non_null(strstr(f->item_texts[1], "[SYS/TEMP] Disk error"));
	assert_int_equal(f->n_msgs, 1);
	assert_int_equal(f->begin_sizes[0], 0);	/* no LIST: size unknown */
	assert_int_equal(f->folders_complete, 0);
}

/* The owner says the maildrop needs no look: straight to QUIT. */
static void
test_folder_skipped(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	f->skip_folder = true;
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->folders_complete, 1);
	assert_int_equal(f->keys_calls, 0);
}

/* Everything archived already: no LIST, no RETR. */
static void
test_nothing_new(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	f->known_keys[0] = "a";
	f->known_keys[1] = "b";
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->found, 2);
	assert_int_equal(f->todo, 0);
	assert_int_equal(f->folders_complete, 1);
}

static void
test_limits(void **state)
{
	struct fixture *f = *state;
	struct pop3_client_params p;
	static const struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 3 10\r\n"),
		C("QUIT"),
		S("+OK\r\n"),
	};

	default_params(f, &p);
	p.max_messages = 2;
	run_params(f, s, NSTEPS(s), &p);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_events, 1);
	assert_int_equal(f->event_levels[0], LOG_LVL_ERR);
	assert_int_equal(f->folders_done, 1);
	assert_int_equal(f->folders_complete, 0);
}

static void
test_garbage_reply(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		S("* OK [CAPABILITY IMAP4rev1] this is IMAP\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "not a POP3 status line"));
}

static void
test_listing_flood(void **state)
{
	struct fixture *f = *state;
	static char flood[1100 * 6 + 16];
	struct step s[] = {
		GREET_NOPIPE,
		C("STAT"),
		S("+OK 1 10\r\n"),
		C("UIDL"),
		{ 'S', flood, 0 },
	};
	size_t i, n = 0;

	n += (size_t)sprintf(flood, "+OK\r\n");
	for (i = 0; i < 1100; i++)
		n += (size_t)sprintf(flood + n, "1 a\r\n");
	s[NSTEPS(s) - 1].len = n;
	run_script(f, s, NSTEPS(s), NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_PROTOCOL);
	assert_non_null(strstr(f->why, "more UIDL lines"));
}

/* Cancelled from inside message(): nothing more is delivered or sent. */
static void
test_cancel_from_callback(void **state)
{
	struct fixture *f = *state;
	static const struct step s[] = {
		GREET_SASL,
		C("STAT"),
		S("+OK 2 10\r\n"),
		C("UIDL"),
		S("+OK\r\n1 a\r\n2 b\r\n.\r\n"),
		C("LIST"),
		S("+OK\r\n1 4\r\n2 4\r\n.\r\n"),
		C("RETR 1"),
		C("RETR 2"),
		S("+OK\r\nm1\r\n.\r\n+OK\r\nm2\r\n.\r\n"),
	};

	f->cancel_on_message = true;
	RUN(f, s, NET_TLS_NONE, 5000);
	assert_string_equal(f->mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_CANCELLED);
	assert_int_equal(f->n_msgs, 1);
	assert_int_equal(f->folders_done, 0);
	assert_null(strstr(f->client_sent, "QUIT"));
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_happy_path_sasl_ir),
		T(test_user_pass_fallback),
		T(test_capa_refused),
		T(test_stls_not_offered),
		T(test_stls_without_capa),
		T(test_stls_refused),
		T(test_stls_injection),
		T(test_auth_refused),
		T(test_auth_refused_escaped),
		T(test_plaintext_refused),
		T(test_apop),
		T(test_apop_without_timestamp),
		T(test_auth_plain_continuation),
		T(test_pipelined_retr),
		T(test_server_without_uidl),
		T(test_bad_uidls),
		T(test_connection_dropped_mid_retr),
		T(test_silent_server_times_out),
		T(test_stalled_retr_times_out),
		T(test_too_large),
		T(test_retr_refused),
		T(test_folder_skipped),
		T(test_nothing_new),
		T(test_limits),
		T(test_garbage_reply),
		T(test_listing_flood),
		T(test_cancel_from_callback),
	};

	return cmocka_run_group_tests_name("pop3_client", tests, NULL, NULL);
}
