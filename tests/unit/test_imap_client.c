/*
 * test_imap_client.c - the IMAP client state machine against a scripted
 * server on 127.0.0.1 in the same event loop.  Each script is a transcript:
 * "S:" lines the server sends (several in one write when joined), "C:"
 * lines the client must send, exactly.  What reaches the owner (messages,
 * items, events, the end) is recorded and asserted.
 */
#include "imap/imap_client.h"
#include "scripted.h"

struct fixture {
	struct scripted sc;		/* the server */
	/* owner side */
	struct imap_client *client;
	enum session_fail fail;
	char	 why[1024];
	bool	 done;
	char	 bodies[8][256];
	uint32_t uids[8];
	size_t	 n_msgs;
	int	 items[8];
	uint32_t item_uids[8];
	size_t	 n_items;
	uint32_t known[4];
	size_t	 n_known;
	bool	 skip_folder;
	const char *authzid;
	uint64_t found, todo;
	int	 folders_done, folders_complete;
	int	 n_errors;		/* events at LOG_LVL_ERR */
	bool	 pause_first;		/* pause in the first message() */
	struct event *resume_ev;
};

struct membuf {
	char	 data[256];
	size_t	 len;
};

/* ---- the owner ---------------------------------------------------------- */

static void
o_ready(void *arg, const char *summary)
{
}

static bool
o_want(void *arg, const char *name, char delim)
{
	return strcmp(name, "Trash") != 0;
}

static int
o_open(void *arg, const struct session_folder *sf, uint32_t **known, size_t *n)
{
	struct fixture *f = arg;

	if (f->skip_folder)
		return 1;
	if (f->n_known > 0) {
		*known = calloc(f->n_known, sizeof **known);
		memcpy(*known, f->known, f->n_known * sizeof **known);
		*n = f->n_known;
	}
	return 0;
}

static void
o_planned(void *arg, const struct session_folder *sf, uint64_t found,
    uint64_t todo)
{
	struct fixture *f = arg;

	f->found += found;
	f->todo += todo;
}

static void *
o_begin(void *arg, uint64_t size)
{
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
	free(h);
}

static void
o_message(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, void *h, int64_t idate)
{
	struct fixture *f = arg;
	struct membuf *m = h;

	struct timeval later = { 0, 100 * 1000 };

	memcpy(f->bodies[f->n_msgs], m->data, m->len);
	f->uids[f->n_msgs++] = uid;
	free(m);
	/* Backpressure: the server's close arrives while we hold off. */
	if (f->pause_first && f->n_msgs == 1) {
		imap_client_pause(f->client);
		evtimer_add(f->resume_ev, &later);
	}
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	imap_client_resume(f->client);
}

static void
o_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
	struct fixture *f = arg;

	f->item_uids[f->n_items] = uid;
	f->items[f->n_items++] = (int)kind;
}

static void
o_event(void *arg, enum log_level lvl, const struct session_folder *sf,
    const char *text)
{
	struct fixture *f = arg;

	f->n_errors += lvl == LOG_LVL_ERR;
}

static void
o_folder_done(void *arg, const struct session_folder *sf, bool complete)
{
	struct fixture *f = arg;

	f->folders_done++;
	f->folders_complete += complete;
}

static void
o_done(void *arg, enum session_fail fail, const char *why)
{
	struct fixture *f = arg;

	f->done = true;
	f->fail = fail;
	snprintf(f->why, sizeof f->why, "%s", why);
	event_base_loopexit(f->sc.base, NULL);
}

static const struct session_ops owner_ops = {
	o_ready, o_want, o_open, NULL, o_planned, o_begin, o_write, o_end,
	o_discard, o_message, o_item, o_event, o_folder_done, o_done,
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	scripted_open(&f->sc);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	imap_client_free(f->client);
	if (f->resume_ev != NULL)
		event_free(f->resume_ev);
	scripted_close(&f->sc);
	free(f);
	return 0;
}

static void
run_script(struct fixture *f, const struct scripted_step *s, size_t n,
    enum net_tls tls, uint32_t timeout_ms, uint64_t max_size)
{
	struct imap_client_params p = { 0 };

	scripted_play(&f->sc, s, n);
	p.net.host = "127.0.0.1";
	p.net.port = f->sc.port;
	p.net.tls = tls;
	p.net.verify = true;
	p.net.timeout_ms = 5000;
	p.user = "alice";
	p.password = "s3cret";
	p.authzid = f->authzid;
	p.allow_plaintext = true;
	p.timeout_ms = timeout_ms;
	p.max_message_size = max_size ? max_size : 1 << 20;
	assert_int_equal(imap_client_start(f->sc.base, NULL, &p, &owner_ops, f,
	    &f->client), 0);
	scripted_loop(&f->sc);
	assert_true(f->done);
}

#define RUN(f, s, tls, to, max) run_script(f, s, NSTEPS(s), tls, to, max)

/* base64("\0alice\0s3cret") */
#define PLAIN_B64 "AGFsaWNlAHMzY3JldA=="

static void
test_archive_happy_path(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR ESEARCH] hi\r\n"),
		C("a1 AUTHENTICATE PLAIN " PLAIN_B64),
		S("a1 OK [CAPABILITY IMAP4rev1 ESEARCH] logged in\r\n"),
		C("a2 LIST \"\" \"*\""),
		S("* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
		       "* LIST (\\Noselect) \"/\" Archive\r\n"
		       "* LIST () \"/\" Trash\r\n"
		       "* LIST () \"/\" \"Archive/&ZeVnLIqe-\"\r\n"
		       "a2 OK done\r\n"),
		C("a3 EXAMINE INBOX"),
		S("* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n"
		       "* OK [UIDNEXT 9] x\r\na3 OK [READ-ONLY] ok\r\n"),
		C("a4 UID SEARCH RETURN (ALL) ALL"),
		S("* ESEARCH (TAG \"a4\") UID ALL 4:5,8\r\na4 OK\r\n"),
		C("a5 UID FETCH 4,8 (UID RFC822.SIZE INTERNALDATE BODY.PEEK[])"),
		S("* 1 FETCH (UID 4 RFC822.SIZE 5 BODY[] {5}\r\nhello "
		       "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\")\r\n"
		       "* 3 FETCH (UID 8 BODY[] {3}\r\na\0b)\r\na5 OK\r\n"),
		C("a6 EXAMINE Archive/&ZeVnLIqe-"),
		S("* 0 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\na6 OK\r\n"),
		C("a7 LOGOUT"),
		S("* BYE bye\r\na7 OK\r\n"),
	};

	f->known[0] = 5;
	f->n_known = 1;
	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_msgs, 2);
	assert_int_equal(f->uids[0], 4);
	assert_memory_equal(f->bodies[0], "hello", 5);
	assert_int_equal(f->uids[1], 8);
	assert_memory_equal(f->bodies[1], "a\0b", 3);
	assert_int_equal(f->found, 3);
	assert_int_equal(f->todo, 2);
	assert_int_equal(f->folders_done, 2);
	assert_int_equal(f->folders_complete, 2);
}

/* A name listed three times is opened once; each extra one is an error. */
static void
test_name_listed_thrice(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR ESEARCH] hi\r\n"),
		C("a1 AUTHENTICATE PLAIN " PLAIN_B64),
		S("a1 OK [CAPABILITY IMAP4rev1 ESEARCH] logged in\r\n"),
		C("a2 LIST \"\" \"*\""),
		S("* LIST () \"/\" INBOX\r\n* LIST () \"/\" inbox\r\n"
		       "* LIST () \"/\" INBOX\r\na2 OK done\r\n"),
		C("a3 EXAMINE INBOX"),
		S("* 0 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\na3 OK\r\n"),
		C("a4 LOGOUT"),
		S("* BYE bye\r\na4 OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->folders_done, 1);
	assert_int_equal(f->n_errors, 2);
}

static void
test_login_without_auth_plain(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK ready\r\n"),
		C("a1 CAPABILITY"),
		S("* CAPABILITY IMAP4rev1\r\na1 OK\r\n"),
		C("a2 LOGIN alice s3cret"),
		S("a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "AUTHENTICATIONFAILED"));
	assert_null(strstr(f->why, "s3cret"));
}

static void
test_logindisabled_never_sends_login(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "LOGINDISABLED"));
}

static void
test_starttls_not_offered(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "STARTTLS"));
}

static void
test_starttls_refused(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"),
		C("a1 STARTTLS"),
		S("a1 BAD not now\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
}

/* The answer to STARTTLS and an injected response in one segment. */
static void
test_starttls_injection(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"),
		C("a1 STARTTLS"),
		S("a1 OK go ahead\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
	assert_non_null(strstr(f->why, "injection"));
}

static void
test_preauth_on_starttls_profile(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome\r\n"),
	};

	RUN(f, s, NET_TLS_STARTTLS, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TLS);
}

static void
test_silent_server_times_out(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"),
		C("a1 AUTHENTICATE PLAIN"),
	};

	RUN(f, s, NET_TLS_NONE, 300, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_TIMEOUT);
}

/* Expunged, oversized, unasked-for: each an item, none a message. */
static void
test_fetch_items(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n"),
		C("a1 AUTHENTICATE PLAIN " PLAIN_B64),
		S("a1 OK [CAPABILITY IMAP4rev1] in\r\n"),
		C("a2 LIST \"\" \"*\""),
		S("* LIST () \"/\" INBOX\r\na2 OK\r\n"),
		C("a3 EXAMINE INBOX"),
		S("* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\na3 OK\r\n"),
		C("a4 UID SEARCH ALL"),
		S("* SEARCH 1 2 3\r\na4 OK\r\n"),
		C("a5 UID FETCH 1:3 (UID RFC822.SIZE INTERNALDATE BODY.PEEK[])"),
		S("* 1 FETCH (UID 1 BODY[] {20}\r\n01234567890123456789)\r\n"
		       "* 9 FETCH (UID 99 BODY[] {2}\r\nzz)\r\n"
		       "* 2 FETCH (UID 2 BODY[] {2}\r\nok)\r\na5 OK\r\n"),
		C("a6 LOGOUT"),
		S("a6 OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000, 10);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->n_msgs, 1);
	assert_int_equal(f->uids[0], 2);
	assert_int_equal(f->n_items, 2);
	assert_int_equal(f->item_uids[0], 1);
	assert_int_equal(f->items[0], SESSION_ITEM_TOO_LARGE);
	assert_int_equal(f->item_uids[1], 3);
	assert_int_equal(f->items[1], SESSION_ITEM_VANISHED);
	/* Not complete: the next run must look at the folder again. */
	assert_int_equal(f->folders_complete, 0);
}

/* A UID set far larger than the folder never becomes a plan. */
static void
test_huge_uid_set_refused(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR ESEARCH] hi\r\n"),
		C("a1 AUTHENTICATE PLAIN " PLAIN_B64),
		S("a1 OK [CAPABILITY IMAP4rev1 ESEARCH] in\r\n"),
		C("a2 LIST \"\" \"*\""),
		S("* LIST () \"/\" INBOX\r\na2 OK\r\n"),
		C("a3 EXAMINE INBOX"),
		S("* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\na3 OK\r\n"),
		C("a4 UID SEARCH RETURN (ALL) ALL"),
		S("* ESEARCH (TAG \"a4\") UID ALL 1:4294967295\r\na4 OK\r\n"),
	};

	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_PROTOCOL);
	assert_int_equal(f->n_msgs, 0);
}

/* An unchanged folder costs one EXAMINE and nothing more. */
static void
test_unchanged_folder_skipped(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n"),
		C("a1 AUTHENTICATE PLAIN " PLAIN_B64),
		S("a1 OK [CAPABILITY IMAP4rev1] in\r\n"),
		C("a2 LIST \"\" \"*\""),
		S("* LIST () \"/\" INBOX\r\na2 OK\r\n"),
		C("a3 EXAMINE INBOX"),
		S("* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\na3 OK\r\n"),
		C("a4 LOGOUT"),
		S("a4 OK\r\n"),
	};

	f->skip_folder = true;
	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_OK);
	assert_int_equal(f->folders_complete, 1);
}

static void
test_connection_closed_mid_literal(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n"),
		C("a1 AUTHENTICATE PLAIN " PLAIN_B64),
		S("a1 OK [CAPABILITY IMAP4rev1] in\r\n"),
		C("a2 LIST \"\" \"*\""),
		S("* LIST () \"/\" INBOX\r\na2 OK\r\n"),
		C("a3 EXAMINE INBOX"),
		S("* 2 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\na3 OK\r\n"),
		C("a4 UID SEARCH ALL"),
		S("* SEARCH 1 2\r\na4 OK\r\n"),
		C("a5 UID FETCH 1:2 (UID RFC822.SIZE INTERNALDATE BODY.PEEK[])"),
		S("* 1 FETCH (UID 1 BODY[] {2}\r\nok)\r\n"
		       "* 2 FETCH (UID 2 BODY[] {100}\r\npartial"),
		X(),
	};

	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	/* The whole message is delivered; the partial one is not. */
	assert_int_equal(f->n_msgs, 1);
	assert_int_equal(f->uids[0], 1);
	assert_int_equal(f->fail, SESSION_FAIL_CONNECT);
}

/*
 * The server sends the last replies and closes while we are paused:
 * what it sent before the close is still read and delivered, and the
 * session ends as cleanly as the replies allow.
 */
static void
test_close_while_paused_keeps_replies(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n"),
		C("a1 AUTHENTICATE PLAIN " PLAIN_B64),
		S("a1 OK [CAPABILITY IMAP4rev1] in\r\n"),
		C("a2 LIST \"\" \"*\""),
		S("* LIST () \"/\" INBOX\r\na2 OK\r\n"),
		C("a3 EXAMINE INBOX"),
		S("* 2 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\na3 OK\r\n"),
		C("a4 UID SEARCH ALL"),
		S("* SEARCH 1 2\r\na4 OK\r\n"),
		C("a5 UID FETCH 1:2 (UID RFC822.SIZE INTERNALDATE BODY.PEEK[])"),
		/* Everything up to the LOGOUT's answer, then the close. */
		S("* 1 FETCH (UID 1 BODY[] {2}\r\nok)\r\n"
		       "* 2 FETCH (UID 2 BODY[] {3}\r\nyes)\r\na5 OK\r\n"
		       "* BYE bye\r\na6 OK\r\n"),
		X(),
	};

	f->pause_first = true;
	f->resume_ev = evtimer_new(f->sc.base, resume_cb, f);
	assert_non_null(f->resume_ev);
	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->n_msgs, 2);
	assert_memory_equal(f->bodies[1], "yes", 3);
	assert_int_equal(f->folders_complete, 1);
	assert_int_equal(f->fail, SESSION_OK);
}

/* A master user acting for bob: PLAIN carries bob as authzid. */
static void
test_master_user_authzid(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n"),
		C("a1 AUTHENTICATE PLAIN Ym9iAGFsaWNlAHMzY3JldA=="),
		S("a1 NO [AUTHORIZATIONFAILED] not allowed\r\n"),
	};

	f->authzid = "bob";
	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
	assert_non_null(strstr(f->why, "AUTHORIZATIONFAILED"));
}

/* Without AUTH=PLAIN a master-user login is impossible: no LOGIN sent. */
static void
test_master_user_needs_plain(void **state)
{
	struct fixture *f = *state;
	static const struct scripted_step s[] = {
		S("* OK [CAPABILITY IMAP4rev1] hi\r\n"),
	};

	f->authzid = "bob";
	RUN(f, s, NET_TLS_NONE, 5000, 0);
	assert_string_equal(f->sc.mismatch, "");
	assert_int_equal(f->fail, SESSION_FAIL_AUTH);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_archive_happy_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_listed_thrice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_without_auth_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logindisabled_never_sends_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_not_offered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_injection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preauth_on_starttls_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_items, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_uid_set_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchanged_folder_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_closed_mid_literal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_while_paused_keeps_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_user_authzid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_user_needs_plain, setup, teardown),
	};

	return cmocka_run_group_tests_name("imap_client", tests, NULL, NULL);
}
