/*
 * scripted_pop3.h - the owner side of the POP3 client tests: a fixture
 * that records what reaches the owner (messages with their UIDLs, items,
 * events, the plan, the end), runs a session against the scripted server
 * (scripted.h) and fails any test whose client sends DELE.  Shared by
 * test_pop3_client.c and test_pop3_retr.c; static, included once each.
 */
#ifndef MAILSTOW_TEST_SCRIPTED_POP3_H
#define MAILSTOW_TEST_SCRIPTED_POP3_H

#include "pop3/pop3_client.h"
#include "scripted.h"

/*
 * test_pop3_client.c - the POP3 client state machine against a scripted
 * server on 127.0.0.1 in the same event loop.  Each script is a transcript:
 * "S:" bytes the server sends (several replies in one write when joined),
 * "C:" lines the client must send, exactly and in order.  A DELE from the
 * client fails every test.  What reaches the owner (messages with their
 * UIDLs, items, events, the plan, the end) is recorded and asserted.
 */
#define MAXM	8

struct membuf {
	char	 data[256];
	size_t	 len;
};

struct fixture {
	struct scripted sc;		/* the server; it watches for DELE */
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
	bool	 pause_first;		/* pause in the first message() */
	struct event *resume_ev;
	uint64_t found, todo;
	int	 planned, folders_done, folders_complete;
	const char *sf_name;
	uint32_t sf_messages;
};

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
	if (f->pause_first && f->n_msgs == 1) {
		struct timeval later = { 0, 100 * 1000 };

		pop3_client_pause(f->client);
		evtimer_add(f->resume_ev, &later);
	}
}

static void __attribute__((unused))
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	pop3_client_resume(f->client);
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
	event_base_loopexit(f->sc.base, NULL);
}

static const struct session_ops owner_ops = {
	o_ready, o_want, o_open, o_keys, o_planned, o_begin, o_write, o_end,
	o_discard, o_message, o_item, o_event, o_folder_done, o_done,
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	scripted_open(&f->sc);
	f->sc.forbid = "DELE";
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	pop3_client_free(f->client);
	if (f->resume_ev != NULL)
		event_free(f->resume_ev);
	scripted_close(&f->sc);
	free(f);
	return 0;
}

static void
default_params(struct fixture *f, struct pop3_client_params *p)
{
	memset(p, 0, sizeof *p);
	p->net.host = "127.0.0.1";
	p->net.port = f->sc.port;
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
run_params(struct fixture *f, const struct scripted_step *s, size_t n,
    const struct pop3_client_params *p)
{
	scripted_play(&f->sc, s, n);
	assert_int_equal(pop3_client_start(f->sc.base, NULL, p, &owner_ops, f,
	    &f->client), 0);
	scripted_loop(&f->sc);
	assert_true(f->done);
	assert_false(f->sc.forbid_seen);
	/* Every handle begun was delivered or discarded. */
	assert_int_equal(f->begins, (int)f->n_msgs + f->discards);
}

static void
run_script(struct fixture *f, const struct scripted_step *s, size_t n,
    enum net_tls tls, uint32_t timeout_ms)
{
	struct pop3_client_params p;

	default_params(f, &p);
	p.net.tls = tls;
	p.timeout_ms = timeout_ms;
	run_params(f, s, n, &p);
}

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

#endif
